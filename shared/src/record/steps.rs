//! The steps of a record. The earlier ones stay the text they came in as, indexed by what
//! lookups need; a step is decoded into a `Step` only when a tool looks at it.

use super::{Status, Step, malformed};
use crate::error::Result;
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::fmt;
use std::ops::{Index, Range};
use std::sync::{Arc, OnceLock};

/// The steps of a record, oldest first, read like a `Vec<Step>` (`len`, `iter`, `[i]`,
/// `last`). The earlier ones, from the incoming record, are kept as their text (shared by
/// clones) and decoded once each when first looked at; the ones appended here are `Step`s.
#[derive(Clone, Default)]
pub struct Steps {
    earlier: Arc<Earlier>,
    added: Vec<Step>,
}

/// The incoming record's text, and where each of its steps is in it.
#[derive(Default)]
struct Earlier {
    text: String,
    steps: Vec<EarlierStep>,
}

pub(super) struct EarlierStep {
    start: u32,
    end: u32,
    head: OwnedHead,
    decoded: OnceLock<Box<Step>>,
}

/// What lookups need of a step, so that finding one never decodes the others.
struct OwnedHead {
    /// Shared by every step of the same tool.
    tool: Arc<str>,
    status: Status,
    exit: i32,
    dry_run: bool,
}

#[derive(Clone, Copy)]
pub(super) struct Head<'a> {
    pub(super) tool: &'a str,
    pub(super) status: Status,
    pub(super) exit: i32,
    pub(super) dry_run: bool,
}

impl Steps {
    /// The steps of an incoming record: `steps` indexes `text`.
    pub(super) fn earlier(text: String, steps: Vec<EarlierStep>) -> Self {
        Steps {
            earlier: Arc::new(Earlier { text, steps }),
            added: Vec::new(),
        }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.earlier.steps.len() + self.added.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[must_use]
    pub fn get(&self, index: usize) -> Option<&Step> {
        let earlier = self.earlier.steps.len();
        if index < earlier {
            Some(self.earlier.decode(index))
        } else {
            self.added.get(index - earlier)
        }
    }

    #[must_use]
    pub fn first(&self) -> Option<&Step> {
        self.get(0)
    }

    #[must_use]
    pub fn last(&self) -> Option<&Step> {
        self.len().checked_sub(1).and_then(|last| self.get(last))
    }

    #[must_use]
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            steps: self,
            range: 0..self.len(),
        }
    }

    /// Append a step (`Record::push` also recomputes `ok`).
    pub fn push(&mut self, step: Step) {
        self.added.push(step);
    }

    pub(super) fn heads(&self) -> impl DoubleEndedIterator<Item = Head<'_>> + ExactSizeIterator {
        let earlier = self.earlier.steps.iter().map(|s| Head {
            tool: &s.head.tool,
            status: s.head.status,
            exit: s.head.exit,
            dry_run: s.head.dry_run,
        });
        let added = self.added.iter().map(|s| Head {
            tool: &s.tool,
            status: s.status,
            exit: s.exit,
            dry_run: s.dry_run,
        });
        Chained(earlier.chain(added), self.len())
    }

    /// The text of step `index` as it came in, if it is an earlier step.
    /// The length of the incoming record's text.
    pub(super) fn text_len(&self) -> usize {
        self.earlier.text.len()
    }

    /// Whether two `Steps` share the incoming text (a clone does not copy it).
    #[cfg(test)]
    pub(super) fn shares_text_with(&self, other: &Steps) -> bool {
        Arc::ptr_eq(&self.earlier, &other.earlier)
    }

    pub(super) fn earlier_text(&self, index: usize) -> Option<&str> {
        let step = self.earlier.steps.get(index)?;
        Some(&self.earlier.text[step.start as usize..step.end as usize])
    }
}

impl Earlier {
    fn decode(&self, index: usize) -> &Step {
        let step = &self.steps[index];
        step.decoded.get_or_init(|| {
            let text = &self.text[step.start as usize..step.end as usize];
            Box::new(serde_json::from_str(text).expect("every step was decoded once in parse"))
        })
    }
}

/// A chain of iterators that knows its length (`Chain` is not `ExactSizeIterator`).
struct Chained<I>(I, usize);

impl<I: Iterator> Iterator for Chained<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let item = self.0.next()?;
        self.1 -= 1;
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: DoubleEndedIterator> DoubleEndedIterator for Chained<I> {
    fn next_back(&mut self) -> Option<I::Item> {
        let item = self.0.next_back()?;
        self.1 -= 1;
        Some(item)
    }
}

impl<I: Iterator> ExactSizeIterator for Chained<I> {}

impl Index<usize> for Steps {
    type Output = Step;
    fn index(&self, index: usize) -> &Step {
        let len = self.len();
        self.get(index)
            .unwrap_or_else(|| panic!("step index {index} out of range for {len} steps"))
    }
}

/// The steps of a record, oldest first.
pub struct Iter<'a> {
    steps: &'a Steps,
    range: Range<usize>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Step;
    fn next(&mut self) -> Option<&'a Step> {
        self.range.next().map(|i| &self.steps[i])
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.range.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.range.next_back().map(|i| &self.steps[i])
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Steps {
    type Item = &'a Step;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Steps {
    // Each step's tool and status: a full dump could be megabytes and decode every step.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.heads().map(|h| format!("{} {:?}", h.tool, h.status)))
            .finish()
    }
}

impl Serialize for Steps {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for index in 0..self.len() {
            match self.earlier_text(index) {
                Some(text) => {
                    let text = super::layout::compact(text);
                    let raw: &RawValue = serde_json::from_str(&text)
                        .map_err(<S::Error as serde::ser::Error>::custom)?;
                    seq.serialize_element(raw)?;
                }
                None => seq.serialize_element(&self[index])?,
            }
        }
        seq.end()
    }
}

/// Check every step (its fields of the documented types, its status one of the four
/// words) and note where it is in `text` and what lookups need of it. Each step is decoded
/// and dropped in turn, so memory stays close to the text's size.
pub(super) fn index_steps(text: &str, steps: &RawValue) -> Result<Vec<EarlierStep>> {
    let raws: Vec<&RawValue> =
        serde_json::from_str(steps.get()).map_err(|_| malformed("\"steps\" is not an array"))?;
    let mut tools: HashMap<String, Arc<str>> = HashMap::new();
    let mut indexed = Vec::with_capacity(raws.len());
    for (number, raw) in raws.iter().enumerate() {
        let step: Step = serde_json::from_str(raw.get())
            .map_err(|e| malformed(&format!("step {} {}", number + 1, step_error(&e))))?;
        let start = raw.get().as_ptr().addr() - text.as_ptr().addr();
        let end = start + raw.get().len();
        let tool = Arc::clone(
            tools
                .entry(step.tool)
                .or_insert_with_key(|tool| Arc::from(tool.as_str())),
        );
        indexed.push(EarlierStep {
            // The size cap keeps offsets well within u32.
            start: start as u32,
            end: end as u32,
            head: OwnedHead {
                tool,
                status: step.status,
                exit: step.exit,
                dry_run: step.dry_run,
            },
            decoded: OnceLock::new(),
        });
    }
    Ok(indexed)
}

/// Why a step did not decode, in words; an unknown status says which words are known.
fn step_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.contains("unknown variant") {
        // serde: "unknown variant `Failed`, expected one of `ok`, …"
        let word = text.split('`').nth(1).unwrap_or("?");
        format!("has the status \"{word}\", which is not one of ok, failed, skipped, interrupted")
    } else {
        format!("is not a valid step: {text}")
    }
}
