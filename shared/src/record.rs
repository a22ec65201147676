//! The upgrade record that flows through the pipe: parsing with its limits, the typed
//! lookup of earlier steps, appending a step and recomputing `ok`, and writing it out.
//!
//! Earlier steps are kept as the text they came in, and go out as they came in: a record
//! that passes through a tool does not grow, and costs little more memory than its size
//! (a step is decoded only when a tool looks at it).

use crate::error::{Error, Result, exit};
use crate::scrub::Scrubber;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

mod layout;
mod steps;
mod this_run;

use layout::{compact, relayout};
use steps::index_steps;
pub use steps::{Iter, Steps};
pub use this_run::ThisRun;

/// The record format's major version; a record with another major is refused.
pub const MAJOR: u64 = 1;
/// Records larger than this are refused (nothing legitimate gets near it).
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Record {
    pub ugw: u64,
    pub run: String,
    /// False once any step failed or was interrupted; recomputed, never trusted from input.
    pub ok: bool,
    pub steps: Steps,
    /// Fields written by newer tools, kept as they are.
    pub extra: Map<String, Value>,
}

/// A step's status: the four documented words, nothing else (an unknown word is a bad
/// record, never taken for "not failed").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
    Interrupted,
}

impl Status {
    /// Whether a step with this status makes the run fail.
    #[must_use]
    pub fn fails(self) -> bool {
        matches!(self, Status::Failed | Status::Interrupted)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepError {
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub tool: String,
    #[serde(default)]
    pub tool_version: String,
    /// The run the step was written in (the record's `run` when the tool ran). A record
    /// concatenated from two runs, or a step copied from another record, shows here; a step
    /// without it (an older ugw wrote it) is never acted on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub started: String,
    #[serde(default)]
    pub elapsed_ms: u64,
    pub status: Status,
    #[serde(default)]
    pub exit: i32,
    #[serde(default)]
    pub changed: bool,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub result: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Step {
    /// Whether this step makes the run fail.
    #[must_use]
    pub fn failed(&self) -> bool {
        self.status.fails()
    }

    /// Whether the step was written in run `run` on host `host`: only such a step may decide
    /// what a tool changes.
    #[must_use]
    pub fn belongs_to(&self, run: &str, host: &str) -> bool {
        !self.run.is_empty() && self.run == run && self.host == host
    }
}

impl Record {
    #[must_use]
    pub fn new(run: String) -> Self {
        Record {
            ugw: MAJOR,
            run,
            ok: true,
            steps: Steps::default(),
            extra: Map::new(),
        }
    }

    /// Parse a record from bytes, with the checks every reader needs: the size cap, a JSON
    /// object, the known major version, steps of the documented shape. `ok` is recomputed,
    /// never trusted.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        check_size(bytes.len())?;
        Self::parse_owned(bytes.to_vec())
    }

    /// `parse`, keeping `bytes` as the text of the earlier steps instead of a copy of them.
    pub fn parse_owned(bytes: Vec<u8>) -> Result<Self> {
        check_size(bytes.len())?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            not_json(&format!("invalid UTF-8 at byte {at}"), e.as_bytes())
        })?;
        let top = parse_top(&text)?;
        check_major(top.ugw.as_ref())?;
        let run = match top.run {
            Some(Value::String(run)) => run,
            Some(_) => return Err(malformed("\"run\" is not a string")),
            None => return Err(malformed("it has no \"run\" field")),
        };
        if top.ok.as_ref().is_some_and(|ok| !ok.is_boolean()) {
            return Err(malformed("\"ok\" is neither true nor false"));
        }
        let steps = match top.steps {
            Some(raw) => index_steps(&text, raw)?,
            None => Vec::new(),
        };
        let extra = top.extra;
        let mut record = Record {
            ugw: MAJOR,
            run,
            ok: true,
            steps: Steps::earlier(text, steps),
            extra,
        };
        record.recompute_ok();
        Ok(record)
    }

    pub fn recompute_ok(&mut self) {
        self.ok = !self.steps.heads().any(|h| h.status.fails());
    }

    /// The step that made the run fail, if any: the last failed or interrupted one.
    #[must_use]
    pub fn failure(&self) -> Option<&Step> {
        let (index, _) = self
            .steps
            .heads()
            .enumerate()
            .rfind(|(_, h)| h.status.fails())?;
        self.steps.get(index)
    }

    /// The exit code a tool that skips because of this record ends with.
    #[must_use]
    pub fn failure_exit(&self) -> i32 {
        let exit = self
            .steps
            .heads()
            .rfind(|h| h.status.fails())
            .map(|h| h.exit);
        // Only 1..=255 survive as a process exit code; 256 would read as success.
        match exit {
            Some(code) if (1..=255).contains(&code) => code,
            _ => exit::FAILED,
        }
    }

    /// The steps a tool may act on: those of this run, written on `host` (ugw(7), WHAT A TOOL
    /// TRUSTS). Every lookup of an earlier step goes through it.
    #[must_use]
    pub fn this_run<'a>(&'a self, host: &'a str) -> ThisRun<'a> {
        ThisRun::new(self, host)
    }

    pub fn push(&mut self, step: Step) {
        self.steps.push(step);
        self.recompute_ok();
    }

    /// The record as JSON text (no final newline), scrubbed: compact on one line, or indented.
    /// Earlier steps go out as they came in (only the whitespace between their tokens may
    /// change), unless scrubbing masks something in them.
    #[must_use]
    pub fn to_json(&self, pretty: bool, scrubber: &Scrubber) -> String {
        let mut head = Value::Object(Map::from_iter([
            ("ugw".to_string(), Value::from(self.ugw)),
            ("run".to_string(), Value::from(self.run.as_str())),
            ("ok".to_string(), Value::from(self.ok)),
        ]));
        scrubber.scrub_value(&mut head);
        let mut extra = Value::Object(self.extra.clone());
        scrubber.scrub_value(&mut extra);

        let mut out = String::with_capacity(self.steps.text_len() + 4096);
        out.push('{');
        push_members(&mut out, &head);
        out.push_str(",\"steps\":[");
        for index in 0..self.steps.len() {
            if index > 0 {
                out.push(',');
            }
            if let Some(text) = self.steps.earlier_text(index) {
                out.push_str(&scrubbed_earlier(text, scrubber));
            } else {
                let mut step = serde_json::to_value(&self.steps[index]).expect("a step serialises");
                scrubber.scrub_value(&mut step);
                out.push_str(&step.to_string());
            }
        }
        out.push(']');
        if !self.extra.is_empty() {
            out.push(',');
            push_members(&mut out, &extra);
        }
        out.push('}');
        if pretty { relayout(&out, true) } else { out }
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4 + self.extra.len()))?;
        map.serialize_entry("ugw", &self.ugw)?;
        map.serialize_entry("run", &self.run)?;
        map.serialize_entry("ok", &self.ok)?;
        map.serialize_entry("steps", &self.steps)?;
        for (name, value) in &self.extra {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

// ---- parsing ----

fn check_size(len: usize) -> Result<()> {
    if len > MAX_BYTES {
        return Err(Error::bad_record(format!(
            "the record is larger than {} MiB; refusing it",
            MAX_BYTES / (1024 * 1024)
        )));
    }
    Ok(())
}

fn not_json(why: &str, bytes: &[u8]) -> Error {
    Error::bad_record(format!(
        "the input is not valid JSON ({why}): '{}'",
        crate::scrub::excerpt(bytes, 60)
    ))
}

fn malformed(why: &str) -> Error {
    Error::bad_record(format!("the record is malformed: {why}"))
}

fn check_major(ugw: Option<&Value>) -> Result<()> {
    match ugw.and_then(Value::as_u64) {
        Some(MAJOR) => Ok(()),
        Some(other) => Err(Error::bad_record(format!(
            "the record is of format version {other}; this tool reads version {MAJOR} (upgrade ugw on this host)"
        ))),
        None => Err(Error::bad_record(
            "the JSON object has no numeric \"ugw\" field, so it is not a ugw record",
        )),
    }
}

/// The top level of a record, its steps left as text.
#[derive(Default)]
struct Top<'a> {
    ugw: Option<Value>,
    run: Option<Value>,
    ok: Option<Value>,
    steps: Option<&'a RawValue>,
    extra: Map<String, Value>,
}

fn parse_top(text: &str) -> Result<Top<'_>> {
    let is_object = text.trim_start().starts_with('{');
    serde_json::from_str::<Top>(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            not_json(&e.to_string(), text.as_bytes())
        } else if !is_object {
            // Not an object; but say "not JSON" when that is the real trouble further on.
            match serde_json::from_str::<IgnoredAny>(text) {
                Err(e) => not_json(&e.to_string(), text.as_bytes()),
                Ok(_) => {
                    Error::bad_record("the input is JSON but not an object, so not a ugw record")
                }
            }
        } else {
            malformed(&e.to_string())
        }
    })
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_map(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Top<'de>, A::Error> {
        fn once<T, E: de::Error>(
            slot: &mut Option<T>,
            value: T,
            name: &'static str,
        ) -> std::result::Result<(), E> {
            if slot.replace(value).is_some() {
                return Err(E::duplicate_field(name));
            }
            Ok(())
        }
        let mut top = Top::default();
        while let Some(name) = map.next_key::<String>()? {
            match name.as_str() {
                "ugw" => once(&mut top.ugw, map.next_value()?, "ugw")?,
                "run" => once(&mut top.run, map.next_value()?, "run")?,
                "ok" => once(&mut top.ok, map.next_value()?, "ok")?,
                "steps" => once(&mut top.steps, map.next_value()?, "steps")?,
                _ => {
                    let value = map.next_value()?;
                    top.extra.insert(name, value);
                }
            }
        }
        Ok(top)
    }
}

// ---- writing ----

/// `"name":value,…` of an object's members, compact.
fn push_members(out: &mut String, object: &Value) {
    let Value::Object(members) = object else {
        return;
    };
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::from(name.as_str()).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    }
}

/// An earlier step's text for the output: as it came in (compacted) unless scrubbing masks
/// something in it.
fn scrubbed_earlier<'a>(text: &'a str, scrubber: &Scrubber) -> Cow<'a, str> {
    let mut value: Value =
        serde_json::from_str(text).expect("every step was decoded once in parse");
    let before = value.clone();
    scrubber.scrub_value(&mut value);
    if value == before {
        compact(text)
    } else {
        Cow::Owned(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step of run "r" on host "h" (also for the tests of `this_run`).
    pub(super) fn step(tool: &str, status: Status, exit: i32) -> Step {
        Step {
            tool: tool.into(),
            tool_version: "0".into(),
            run: "r".into(),
            host: "h".into(),
            started: String::new(),
            elapsed_ms: 0,
            status,
            exit,
            changed: false,
            dry_run: false,
            result: serde_json::json!({"version": "v2"}),
            error: None,
            extra: Map::new(),
        }
    }

    fn out(record: &Record) -> String {
        record.to_json(false, &Scrubber::default())
    }

    #[test]
    fn ok_is_recomputed_not_trusted() {
        let text =
            br#"{"ugw":1,"run":"r","ok":true,"steps":[{"tool":"a","status":"failed","exit":4}]}"#;
        let record = Record::parse(text).unwrap();
        assert!(!record.ok);
        assert_eq!(record.failure_exit(), 4);
        assert_eq!(record.failure().unwrap().tool, "a");
        let text = br#"{"ugw":1,"run":"r","steps":[{"tool":"a","status":"failed","exit":256}]}"#;
        assert_eq!(Record::parse(text).unwrap().failure_exit(), 1);
    }

    #[test]
    fn a_status_that_is_not_one_of_the_four_words_is_a_bad_record() {
        for word in ["Failed", "bogus", "OK", ""] {
            let text = format!(
                r#"{{"ugw":1,"run":"r","steps":[{{"tool":"a","status":"ok"}},{{"tool":"b","status":"{word}"}}]}}"#
            );
            let err = Record::parse(text.as_bytes()).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::BadRecord, "{word}");
            assert!(
                err.message
                    .contains(&format!("step 2 has the status \"{word}\""))
                    && err.message.contains("ok, failed, skipped, interrupted"),
                "{word}: {}",
                err.message
            );
        }
        let text = br#"{"ugw":1,"run":"r","steps":[{"tool":"a","status":3}]}"#;
        assert!(
            Record::parse(text)
                .unwrap_err()
                .message
                .contains("step 1 is not a valid step")
        );
    }

    #[test]
    fn unknown_fields_pass_through() {
        let text = br#"{"ugw":1,"run":"r","ok":true,"future":[1],"steps":[{"tool":"a","status":"ok","x":{"y":2}}]}"#;
        let record = Record::parse(text).unwrap();
        let out = out(&record);
        assert!(out.contains(r#""future":[1]"#), "{out}");
        assert!(out.contains(r#""x":{"y":2}"#), "{out}");
        assert_eq!(record.steps[0].extra["x"], serde_json::json!({"y": 2}));
    }

    #[test]
    fn earlier_steps_go_out_as_they_came_in() {
        // Sparse, with escapes and numbers serde_json would write differently.
        let steps = [
            r#"{"tool":"a","status":"ok"}"#,
            r#"{"status":"skipped","tool":"caf\u00e9","n":1.0e3,"big":123456789012345678901234567890}"#,
            r#"{"tool":"b","status":"failed","exit":4,"error":{"kind":"k","message":"m \"q\""}}"#,
        ];
        let text = format!(
            r#"{{"ugw":1,"run":"r","ok":false,"steps":[{}],"z":{{}}}}"#,
            steps.join(",")
        );
        let mut record = Record::parse(text.as_bytes()).unwrap();
        assert_eq!(out(&record), text);
        record.push(step("c", Status::Ok, 0));
        let out = out(&record);
        assert!(out.starts_with(&text[..text.find(']').unwrap()]), "{out}");
        assert_eq!(
            out.len() - text.len(),
            serde_json::to_string(&record.steps[3]).unwrap().len() + 1
        );
    }

    #[test]
    fn indented_steps_come_out_compact_or_indented_as_asked() {
        let record = Record::parse(
            b"{\"ugw\":1,\"run\":\"r\",\"steps\":[ {\n  \"tool\" : \"a b\",\n\t\"status\":\"ok\", \"result\": {\"l\": [1, [], {}]}} ]}",
        )
        .unwrap();
        let compact = out(&record);
        assert_eq!(
            compact,
            r#"{"ugw":1,"run":"r","ok":true,"steps":[{"tool":"a b","status":"ok","result":{"l":[1,[],{}]}}]}"#
        );
        // The same layout as serde_json's own pretty printer.
        let pretty = record.to_json(true, &Scrubber::default());
        let value: Value = serde_json::from_str(&compact).unwrap();
        assert_eq!(pretty, serde_json::to_string_pretty(&value).unwrap());
        // A record that went out indented comes back the same.
        assert_eq!(
            Record::parse(pretty.as_bytes())
                .unwrap()
                .to_json(true, &Scrubber::default()),
            pretty
        );
        // Through serde too (what `serde_json::to_string(&record)` gives).
        assert_eq!(serde_json::to_string(&record).unwrap(), compact);
        assert_eq!(serde_json::to_value(&record).unwrap(), value);
    }

    #[test]
    fn a_secret_in_an_earlier_step_is_masked_on_the_way_out() {
        let scrubber = Scrubber::default();
        scrubber.add_secret("s3cr3t-value");
        let text = br#"{"ugw":1,"run":"r","steps":[{"tool":"a","status":"ok","result":{"note":"x s3cr3t-value y","n":1.50}},{"tool":"b","status":"ok","n":1.50}]}"#;
        let record = Record::parse(text).unwrap();
        let out = record.to_json(false, &scrubber);
        assert!(!out.contains("s3cr3t-value"), "{out}");
        assert!(
            out.contains(r#"{"tool":"b","status":"ok","n":1.50}"#),
            "untouched: {out}"
        );
    }

    #[test]
    fn unknown_major_and_non_records_are_refused() {
        let message = |text: &[u8]| Record::parse(text).unwrap_err().message;
        assert!(message(br#"{"ugw":2,"run":"r","steps":[]}"#).contains("version 2"));
        assert!(message(br#"{"ugw":2,"run":5}"#).contains("version 2"));
        assert!(message(b"[1]").contains("not an object"));
        assert!(message(b"[1,").contains("not valid JSON"));
        assert!(message(b"{\"a\":1}").contains("no numeric \"ugw\""));
        assert!(message(b"{not json").contains("not valid JSON"));
        assert!(message(b"{\"ugw\":1,\"run\":\"r\"} x").contains("not valid JSON"));
        assert!(message(b"{\"ugw\":1,\"run\":\"\xff\"}").contains("invalid UTF-8 at byte 16"));
        assert!(message(br#"{"ugw":1,"run":"r","steps":{}}"#).contains("not an array"));
        assert!(message(br#"{"ugw":1,"run":"r","ok":"yes"}"#).contains("\"ok\""));
        assert!(message(br#"{"ugw":1,"ugw":1,"run":"r"}"#).contains("duplicate field"));
        assert!(message(br#"{"ugw":1}"#).contains("no \"run\""));
        let big = vec![b' '; MAX_BYTES + 1];
        assert!(message(&big).contains("larger than 16 MiB"));
    }

    #[test]
    fn steps_read_like_a_vec() {
        let text = br#"{"ugw":1,"run":"r","steps":[{"tool":"a","status":"ok"},{"tool":"b","status":"skipped"}]}"#;
        let mut record = Record::parse(text).unwrap();
        record.push(step("c", Status::Ok, 0));
        let tools: Vec<&str> = record.steps.iter().map(|s| s.tool.as_str()).collect();
        assert_eq!(tools, ["a", "b", "c"]);
        let back: Vec<&str> = record.steps.iter().rev().map(|s| s.tool.as_str()).collect();
        assert_eq!(back, ["c", "b", "a"]);
        assert_eq!(record.steps.len(), 3);
        assert_eq!(record.steps.first().unwrap().tool, "a");
        assert_eq!(record.steps.last().unwrap().tool, "c");
        assert_eq!(record.steps[1].status, Status::Skipped);
        assert_eq!(
            record.steps[1].tool_version, "",
            "missing fields read as defaults"
        );
        assert!(record.steps.get(3).is_none());
        assert_eq!((&record.steps).into_iter().count(), 3);
        // A clone shares the earlier steps' text instead of copying it.
        let copy = record.clone();
        assert!(copy.steps.shares_text_with(&record.steps));
    }
}
