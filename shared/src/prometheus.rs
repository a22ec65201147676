//! Prometheus text exposition, read the way ugw needs it: the samples of one scrape, selected by
//! a metric name and label matchers and summed over their label sets (`ugw-drain`'s in-flight
//! gauge, `ugw-verify`'s assertions), histograms turned into quantiles from the change between
//! two scrapes (the server's own view of latency over a window), and counter deltas that survive
//! a restarted process.
//!
//! The parser reads what Prometheus 3 reads from a text scrape, in both of its text formats:
//! the classic format (0.0.4) and `OpenMetrics` text (exemplars after `# `, float timestamps,
//! `# UNIT`, and `# EOF`, past which nothing is read), with quoted UTF-8 metric and label names
//! (`{"my.metric",l="v"}`). It is stricter where a lenient reading would give a wrong number: a
//! series listed twice in one scrape, or a label named twice in one sample, is an error, never
//! a sum.
//!
//! Values are IEEE doubles and a scrape may hold `NaN` and `±Inf`: `sum` and `Histogram::count`
//! can be non-finite and callers must check `is_finite` (or use `try_sum`/`try_histogram`, which
//! name the series that is not a number); `quantile` has no answer for a histogram holding one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Instant;

use regex::Regex;

use crate::cancel::Cancel;
use crate::http::{HttpClient, Request};
use crate::scrub;

/// One line of a scrape: a sample of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// The series as the text format writes it (`name{label="value",...}`, or
    /// `{"my.metric",...}` for a name the classic format cannot spell), for messages.
    #[must_use]
    pub fn series(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let bare = is_metric_name(&self.name);
        if !bare {
            parts.push(quoted(&self.name));
        }
        for (label, value) in &self.labels {
            parts.push(format!("{}={}", label_name_shown(label), quoted(value)));
        }
        match (bare, parts.is_empty()) {
            (true, true) => self.name.clone(),
            (true, false) => format!("{}{{{}}}", self.name, parts.join(",")),
            (false, _) => format!("{{{}}}", parts.join(",")),
        }
    }
}

/// Every sample of one scrape, in the order the server wrote them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    pub samples: Vec<Sample>,
}

/// A line that is not Prometheus text, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A series whose reading is not a number ugw can judge by: a `NaN` or infinite sample, a sum
/// past the largest double, a histogram bucket without a usable bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The series (or the selector, for a sum that overflowed), as the text format writes it.
    pub series: String,
    /// What is wrong with it: "reads NaN", "has no +Inf bucket".
    pub why: String,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.series, self.why)
    }
}

impl std::error::Error for Unreadable {}

impl Exposition {
    /// Parse a whole scrape, classic text or `OpenMetrics` text. Comments (`# HELP`, `# TYPE`,
    /// `# UNIT`, others) and blank lines are skipped, and nothing after `# EOF` is read. A
    /// malformed sample line is an error naming its line, since a half-read scrape would give
    /// wrong sums; so is a series listed twice (Prometheus keeps the first and drops the rest),
    /// since adding the two would count it twice.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut samples = Vec::new();
        // Where each series was first seen, by its identity (see `series_key`).
        let mut seen: HashMap<(String, Vec<(String, String)>), usize> = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim_matches([' ', '\t', '\r']);
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                if comment.starts_with([' ', '\t']) && comment.trim_matches([' ', '\t']) == "EOF" {
                    break;
                }
                continue;
            }
            let sample = parse_sample(line).map_err(|message| ParseError {
                line: number,
                message,
            })?;
            if let Some(first) = seen.insert(series_key(&sample), number) {
                return Err(ParseError {
                    line: number,
                    message: format!(
                        "the series {} is listed twice (first on line {first}): its samples would \
                         be counted twice",
                        scrub::excerpt(sample.series().as_bytes(), 160)
                    ),
                });
            }
            samples.push(sample);
        }
        Ok(Exposition { samples })
    }

    /// The samples `selector` picks.
    pub fn select<'a>(&'a self, selector: &'a Selector) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| selector.matches(s))
    }

    /// The sum of the samples `selector` picks, or `None` when it picks none: an absent
    /// metric is not zero (a gauge the application forgot to export must not read as idle).
    ///
    /// The sum is IEEE arithmetic: a picked `NaN` or `±Inf` sample (or an overflow) makes it
    /// non-finite, never a finite number. Callers must check `is_finite` before comparing it
    /// (`NaN` compares false with everything, and `NaN.max(0.0)` is `0.0`); `try_sum` does that
    /// check and names the series.
    #[must_use]
    pub fn sum(&self, selector: &Selector) -> Option<f64> {
        let mut picked = self.select(selector).map(|s| s.value).peekable();
        picked.peek()?;
        Some(picked.sum())
    }

    /// `sum`, refusing a reading that is not a finite number: the first picked sample that is
    /// `NaN` or infinite, or a sum that overflowed.
    pub fn try_sum(&self, selector: &Selector) -> Result<Option<f64>, Unreadable> {
        if let Some(sample) = self.select(selector).find(|s| !s.value.is_finite()) {
            return Err(Unreadable {
                series: scrub::excerpt(sample.series().as_bytes(), 160),
                why: format!("reads {}", shown_value(sample.value)),
            });
        }
        match self.sum(selector) {
            Some(sum) if !sum.is_finite() => Err(Unreadable {
                series: selector.to_string(),
                why: "sums past the largest number a double holds".to_string(),
            }),
            sum => Ok(sum),
        }
    }

    /// The histogram `selector` names (by its base name, without `_bucket`), its series summed
    /// bucket by bucket; `None` when the scrape has no bucket of it, or when a bucket is not a
    /// number (see `try_histogram`): no answer rather than a quantile that compares as a pass.
    /// The `le` label is matched by the bucket, so the selector must not constrain it.
    #[must_use]
    pub fn histogram(&self, selector: &Selector) -> Option<Histogram> {
        self.try_histogram(selector).ok().flatten()
    }

    /// `histogram`, saying which bucket makes it unreadable: one without an `le` label or with
    /// one that is not a number (or is `NaN`), a count that is `NaN` or infinite, or a series
    /// without its `+Inf` bucket (whose count is the total every quantile is a rank of).
    /// `Ok(None)` when the scrape has no bucket of it.
    pub fn try_histogram(&self, selector: &Selector) -> Result<Option<Histogram>, Unreadable> {
        let buckets_of = Selector {
            name: format!("{}_bucket", selector.name),
            matchers: selector.matchers.clone(),
        };
        let unreadable = |sample: &Sample, why: String| Unreadable {
            series: scrub::excerpt(sample.series().as_bytes(), 160),
            why,
        };
        let mut by_bound: BTreeMap<Bound, f64> = BTreeMap::new();
        // Each series of the histogram (its labels but `le`), and whether it has `+Inf`.
        let mut totals: BTreeMap<Vec<(&str, &str)>, (bool, &Sample)> = BTreeMap::new();
        for sample in self.select(&buckets_of) {
            let Some(le) = sample.labels.get("le") else {
                return Err(unreadable(sample, "has no le label".into()));
            };
            let bound = match parse_value(le) {
                Ok(bound) if !bound.is_nan() => bound,
                _ => return Err(unreadable(sample, "has no number for its bound".into())),
            };
            if !sample.value.is_finite() {
                let why = format!("reads {}", shown_value(sample.value));
                return Err(unreadable(sample, why));
            }
            let series = sample
                .labels
                .iter()
                .filter(|(label, _)| *label != "le")
                .map(|(label, value)| (label.as_str(), value.as_str()))
                .collect();
            totals.entry(series).or_insert((false, sample)).0 |= bound == f64::INFINITY;
            *by_bound.entry(Bound(bound)).or_default() += sample.value;
        }
        if let Some((_, (_, sample))) = totals.iter().find(|(_, (has_inf, _))| !has_inf) {
            return Err(unreadable(
                sample,
                "is of a series without its +Inf bucket".into(),
            ));
        }
        if by_bound.is_empty() {
            return Ok(None);
        }
        let histogram = Histogram {
            buckets: by_bound.into_iter().map(|(b, c)| (b.0, c)).collect(),
        };
        if !histogram.is_readable() {
            return Err(Unreadable {
                series: buckets_of.to_string(),
                why: "sums past the largest number a double holds".into(),
            });
        }
        Ok(Some(histogram))
    }
}

/// What makes two samples one series: the name and the labels, without the empty ones (an
/// empty label is no label, in Prometheus as in a selector), and a bucket bound or a quantile
/// read as the number it is (`le="1"` and `le="1.0"` are one bucket, as Prometheus reads them).
fn series_key(sample: &Sample) -> (String, Vec<(String, String)>) {
    let labels = sample
        .labels
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(label, value)| {
            let number = matches!(label.as_str(), "le" | "quantile")
                .then(|| parse_value(value).ok())
                .flatten();
            let value = number.map_or_else(|| value.clone(), |n| format!("{n:?}"));
            (label.clone(), value)
        })
        .collect();
    (sample.name.clone(), labels)
}

/// A value as the text format writes it (`NaN`, `+Inf`, `-Inf`, or the number).
fn shown_value(value: f64) -> String {
    match value {
        v if v.is_nan() => "NaN".into(),
        f64::INFINITY => "+Inf".into(),
        f64::NEG_INFINITY => "-Inf".into(),
        v => v.to_string(),
    }
}

/// An upper bound that sorts as a number (`+Inf` last); bounds are never NaN once parsed.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound(f64);
impl Eq for Bound {}
impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Cumulative bucket counts by upper bound, ascending, the last one `+Inf`. One built by hand
/// (or left by `since`) may break that rule or hold a `NaN`: `quantile` then has no answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// How many observations it holds (the `+Inf` bucket). Not finite when a bucket is not a
    /// number: callers must check `is_finite` (`NaN < n` is false, so it passes a minimum).
    #[must_use]
    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |b| b.1)
    }

    /// Every bound a number and every count finite, the last bound `+Inf`: what a quantile
    /// needs to be one.
    fn is_readable(&self) -> bool {
        self.buckets.last().is_some_and(|b| b.0 == f64::INFINITY)
            && self
                .buckets
                .iter()
                .all(|&(bound, count)| !bound.is_nan() && count.is_finite())
    }

    /// What was observed between `earlier` and this scrape, bucket by bucket. When the process
    /// restarted in between (its count went down), everything it holds now is new. A bucket
    /// that is not a number on either side stays one (never clamped to 0, which would read as
    /// "nothing observed").
    #[must_use]
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        if self.count() < earlier.count() {
            return self.clone();
        }
        let before = |bound: f64| {
            earlier
                .buckets
                .iter()
                .find(|(b, _)| b.total_cmp(&bound).is_eq())
                .map_or(0.0, |b| b.1)
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|&(bound, count)| {
                    let grew = count - before(bound);
                    // `NaN.max(0.0)` is 0: keep the NaN so the window has no quantile.
                    (bound, if grew.is_nan() { grew } else { grew.max(0.0) })
                })
                .collect(),
        }
    }

    /// The `q` quantile (0..=1), interpolated linearly inside its bucket as Prometheus's
    /// `histogram_quantile` does; `None` with no observation, and `None` when a bound is `NaN`,
    /// a count is `NaN` or infinite, or the last bucket is not `+Inf` (where Prometheus answers
    /// `NaN`): never a number made of one that is not. A quantile in the `+Inf` bucket is the
    /// highest finite bound: all we know is that it is above it.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if !self.is_readable() || total <= 0.0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * total;
        let mut lower_bound = 0.0;
        let mut lower_count = 0.0;
        for &(bound, count) in &self.buckets {
            if count >= rank {
                if bound.is_infinite() {
                    return Some(lower_bound);
                }
                let inside = count - lower_count;
                if inside <= 0.0 {
                    return Some(bound);
                }
                return Some(lower_bound + (bound - lower_bound) * (rank - lower_count) / inside);
            }
            lower_bound = bound;
            lower_count = count;
        }
        Some(lower_bound)
    }
}

/// How much a counter grew from `before` to `after`. A counter that went down was reset (its
/// process restarted), so all of `after` is growth: never a negative rate. `NaN` when either
/// reading is not finite (a `NaN` before must not read as a reset and pass `after` as growth).
#[must_use]
pub fn counter_delta(before: f64, after: f64) -> f64 {
    if !(before.is_finite() && after.is_finite()) {
        return f64::NAN;
    }
    if after >= before {
        after - before
    } else {
        after
    }
}

/// How a label is compared.
#[derive(Debug, Clone)]
pub enum Matcher {
    Equal(String, String),
    NotEqual(String, String),
    Matches(String, Regex),
    NotMatches(String, Regex),
}

impl Matcher {
    fn holds(&self, labels: &BTreeMap<String, String>) -> bool {
        // A label the series lacks counts as empty, as in PromQL.
        let value = |name: &String| labels.get(name).map_or("", String::as_str);
        match self {
            Matcher::Equal(name, want) => value(name) == want,
            Matcher::NotEqual(name, want) => value(name) != want,
            Matcher::Matches(name, re) => re.is_match(value(name)),
            Matcher::NotMatches(name, re) => !re.is_match(value(name)),
        }
    }
}

/// A metric name and label matchers: `name{label="v",other!="w",code=~"5.."}`.
#[derive(Debug, Clone)]
pub struct Selector {
    pub name: String,
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// Parse `name`, `name{matchers}` or, for a name the classic format cannot spell,
    /// `{"my.metric",matchers}` (as `PromQL` in Prometheus 3 writes it); label names may be
    /// quoted too. Regexes are anchored, as in `PromQL`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let mut cursor = Cursor::new(text);
        let mut name = cursor.name(true).map(str::to_string);
        let mut matchers = Vec::new();
        cursor.skip_blanks();
        if cursor.eat('{') {
            for item in label_set(&mut cursor, true)? {
                match item {
                    LabelItem::Name(quoted) if name.is_none() => name = Some(quoted),
                    LabelItem::Name(quoted) => {
                        return Err(format!(
                            "a second metric name {:?} in {:?}",
                            scrub::excerpt(quoted.as_bytes(), 80),
                            scrub::excerpt(text.as_bytes(), 80)
                        ));
                    }
                    LabelItem::Pair(label, op, value) => matchers.push(match op {
                        "=" => Matcher::Equal(label, value),
                        "!=" => Matcher::NotEqual(label, value),
                        "=~" => Matcher::Matches(label, anchored(&value)?),
                        _ => Matcher::NotMatches(label, anchored(&value)?),
                    }),
                }
            }
            cursor.skip_blanks();
        }
        let Some(name) = name else {
            return Err(format!(
                "not a metric name: {:?}",
                scrub::excerpt(text.as_bytes(), 80)
            ));
        };
        if !cursor.at_end() {
            return Err(format!(
                "after the name {name:?}, want {{label=\"value\",...}}, not {:?}",
                scrub::excerpt(cursor.rest().as_bytes(), 40)
            ));
        }
        Ok(Selector { name, matchers })
    }

    #[must_use]
    pub fn matches(&self, sample: &Sample) -> bool {
        sample.name == self.name && self.matchers.iter().all(|m| m.holds(&sample.labels))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bare = is_metric_name(&self.name);
        if bare {
            f.write_str(&self.name)?;
            if self.matchers.is_empty() {
                return Ok(());
            }
        }
        let mut parts: Vec<String> = Vec::new();
        if !bare {
            parts.push(quoted(&self.name));
        }
        parts.extend(self.matchers.iter().map(|m| match m {
            Matcher::Equal(l, v) => format!("{}={}", label_name_shown(l), quoted(v)),
            Matcher::NotEqual(l, v) => format!("{}!={}", label_name_shown(l), quoted(v)),
            Matcher::Matches(l, r) => format!("{}=~{}", label_name_shown(l), quoted(unanchored(r))),
            Matcher::NotMatches(l, r) => {
                format!("{}!~{}", label_name_shown(l), quoted(unanchored(r)))
            }
        }));
        write!(f, "{{{}}}", parts.join(","))
    }
}

fn anchored(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("bad label regex {pattern:?}: {e}"))
}

fn unanchored(re: &Regex) -> &str {
    let s = re.as_str();
    s.strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(s)
}

/// Scrape `url` whole (at most 16 MiB) before `until` and parse it. The error is one line for
/// a step's message: the status, the transport failure, or the line that is not Prometheus text.
pub fn scrape(
    client: &HttpClient,
    url: &str,
    until: Instant,
    cancel: &Cancel,
) -> Result<Exposition, String> {
    scrape_request(client, Request::get(url), url, until, cancel)
}

/// `scrape` with a request of the caller's (headers for an endpoint behind a token).
pub fn scrape_request(
    client: &HttpClient,
    request: Request,
    url: &str,
    until: Instant,
    cancel: &Cancel,
) -> Result<Exposition, String> {
    const LIMIT: usize = 16 << 20;
    let response = client
        .fetch_request(request, until, LIMIT, cancel)
        .map_err(|e| format!("scraping {url}: {e}"))?;
    if !(200..300).contains(&response.status) {
        return Err(format!(
            "scraping {url}: status {} {}",
            response.status, response.reason
        ));
    }
    if response.truncated {
        return Err(format!("scraping {url}: the answer is over 16 MiB"));
    }
    let text = String::from_utf8_lossy(&response.body);
    Exposition::parse(&text).map_err(|e| format!("scraping {url}: not Prometheus text: {e}"))
}

/// A name the classic format writes bare: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label name the classic format writes bare: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    !name.contains(':') && is_metric_name(name)
}

/// Text in double quotes, for messages and a selector shown back.
fn quoted(text: &str) -> String {
    format!("{text:?}")
}

fn label_name_shown(label: &str) -> String {
    if is_label_name(label) {
        label.to_string()
    } else {
        quoted(label)
    }
}

/// A place in one line, read token by token. Blanks (spaces and tabs) may stand between the
/// tokens of a sample, as Prometheus's classic parser allows (`name {l = "v"} 1`).
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, at: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn at_end(&self) -> bool {
        self.at == self.text.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        let found = self.rest().starts_with(c);
        if found {
            self.at += c.len_utf8();
        }
        found
    }

    /// Skip spaces and tabs; whether there were any.
    fn skip_blanks(&mut self) -> bool {
        let rest = self.rest();
        let skipped = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        self.at += skipped;
        skipped > 0
    }

    /// Everything up to the next blank: a value or a timestamp.
    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }

    /// A bare metric name (`colons`) or label name, if one starts here.
    fn name(&mut self, colons: bool) -> Option<&'a str> {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':')))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        self.at += end;
        Some(name)
    }

    /// A double-quoted string, if one starts here. `\\`, `\"` and `\n` are escapes; a backslash
    /// before any other character is kept with it (`"\d"` reads `\d`), as Prometheus,
    /// prometheus/common and `client_python` read it.
    fn quoted(&mut self) -> Result<Option<String>, String> {
        let Some(body) = self.rest().strip_prefix('"') else {
            return Ok(None);
        };
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += 1 + i + 1;
                    return Ok(Some(out));
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, escaped @ ('\\' | '"'))) => out.push(escaped),
                    Some((_, other)) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => break,
                },
                _ => out.push(c),
            }
        }
        Err(format!(
            "a quoted string without its closing \": {:?}",
            scrub::excerpt(self.rest().as_bytes(), 40)
        ))
    }
}

/// One item of a label set: a quoted metric name (`{"my.metric",...}`) or a label pair.
enum LabelItem {
    Name(String),
    Pair(String, &'static str, String),
}

/// The items of a label set, the cursor just past its `{` and left just past its `}`.
/// Operators other than `=` only when `operators` (a selector, not a sample). A trailing comma
/// is allowed, as Prometheus allows it.
fn label_set(cursor: &mut Cursor<'_>, operators: bool) -> Result<Vec<LabelItem>, String> {
    let mut items = Vec::new();
    loop {
        cursor.skip_blanks();
        if cursor.eat('}') {
            return Ok(items);
        }
        if cursor.at_end() {
            return Err("a label set without its closing }".into());
        }
        let (label, was_quoted) = if let Some(label) = cursor.quoted()? {
            (label, true)
        } else if let Some(label) = cursor.name(false) {
            (label.to_string(), false)
        } else {
            return Err(format!(
                "not a label name at {:?}",
                scrub::excerpt(cursor.rest().as_bytes(), 40)
            ));
        };
        if label.is_empty() {
            return Err("an empty name in a label set".into());
        }
        cursor.skip_blanks();
        if was_quoted && matches!(cursor.peek(), Some(',' | '}')) {
            items.push(LabelItem::Name(label));
        } else {
            let shown = label_name_shown(&label);
            let op = ["=~", "!~", "!=", "="]
                .into_iter()
                .find(|op| cursor.rest().starts_with(op))
                .ok_or_else(|| format!("label {shown}: want =, !=, =~ or !~"))?;
            if op != "=" && !operators {
                return Err(format!("label {shown}: a sample's labels use ="));
            }
            cursor.at += op.len();
            cursor.skip_blanks();
            let value = cursor
                .quoted()?
                .ok_or_else(|| format!("label {shown}: want a value in double quotes"))?;
            items.push(LabelItem::Pair(label, op, value));
            cursor.skip_blanks();
        }
        if !cursor.eat(',') && cursor.peek() != Some('}') {
            return Err(if cursor.at_end() {
                "a label set without its closing }".into()
            } else {
                format!(
                    "in a label set, want , or }} at {:?}",
                    scrub::excerpt(cursor.rest().as_bytes(), 40)
                )
            });
        }
    }
}

/// The labels of a sample's or an exemplar's label set: each name once, `__name__` never (it
/// is the metric name, written before the set or quoted inside it).
fn sample_labels(
    items: Vec<LabelItem>,
    name: &mut Option<String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for item in items {
        match item {
            LabelItem::Name(quoted_name) => {
                if let Some(first) = name {
                    return Err(format!(
                        "the metric name is given twice ({:?} and {:?})",
                        scrub::excerpt(first.as_bytes(), 60),
                        scrub::excerpt(quoted_name.as_bytes(), 60)
                    ));
                }
                *name = Some(quoted_name);
            }
            LabelItem::Pair(label, _, value) => {
                if label == "__name__" {
                    return Err(
                        "a label __name__: the metric name is written before the labels \
                                or quoted inside them"
                            .into(),
                    );
                }
                if labels.contains_key(&label) {
                    return Err(format!(
                        "the label {} is given twice in one sample",
                        quoted(&scrub::excerpt(label.as_bytes(), 60))
                    ));
                }
                labels.insert(label, value);
            }
        }
    }
    Ok(labels)
}

/// `name{labels} value [timestamp] [# {labels} value [timestamp]]`: the classic format and
/// `OpenMetrics` text; the metric name may instead be quoted inside the label set.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let not_a_sample = || {
        format!(
            "not a sample line: {:?}",
            scrub::excerpt(line.as_bytes(), 80)
        )
    };
    let mut cursor = Cursor::new(line);
    let mut name = cursor.name(true).map(str::to_string);
    let blank_after_name = cursor.skip_blanks();
    let labels = if cursor.eat('{') {
        let items = label_set(&mut cursor, false)?;
        sample_labels(items, &mut name)?
    } else if name.is_some() && blank_after_name {
        BTreeMap::new()
    } else {
        // `my.metric 1`, `9x 1`, `x-y 1`: a name the classic format cannot spell bare.
        return Err(not_a_sample());
    };
    let Some(name) = name else {
        return Err(format!("{}: it has no metric name", not_a_sample()));
    };
    let shown = scrub::excerpt(name.as_bytes(), 80);
    cursor.skip_blanks();
    let value = cursor.word();
    if value.is_empty() {
        return Err(format!("{shown}: no value"));
    }
    let value = parse_value(value).map_err(|e| format!("{shown}: {e}"))?;
    let mut timestamp = false;
    loop {
        cursor.skip_blanks();
        if cursor.at_end() {
            break;
        }
        if cursor.eat('#') {
            exemplar(&mut cursor).map_err(|e| format!("{shown}: exemplar: {e}"))?;
            break;
        }
        if timestamp {
            return Err(format!("{shown}: unexpected text after the timestamp"));
        }
        parse_timestamp(cursor.word()).map_err(|e| format!("{shown}: {e}"))?;
        timestamp = true;
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// An `OpenMetrics` exemplar, the cursor just past its `#`: ` {labels} value [timestamp]`.
/// Read to check it, then dropped: ugw judges by the samples.
fn exemplar(cursor: &mut Cursor<'_>) -> Result<(), String> {
    if !cursor.skip_blanks() || !cursor.eat('{') {
        return Err("after the value, want a timestamp or `# {labels} value`".into());
    }
    let items = label_set(cursor, false)?;
    let mut no_name = None;
    sample_labels(items, &mut no_name)?;
    if no_name.is_some() {
        return Err("an exemplar has labels, not a metric name".into());
    }
    cursor.skip_blanks();
    let value = cursor.word();
    if value.is_empty() {
        return Err("no value".into());
    }
    parse_value(value)?;
    cursor.skip_blanks();
    if !cursor.at_end() {
        parse_timestamp(cursor.word())?;
        cursor.skip_blanks();
    }
    if !cursor.at_end() {
        return Err("unexpected text after its timestamp".into());
    }
    Ok(())
}

/// Milliseconds (classic) or seconds with a fraction (`OpenMetrics`): a finite number either
/// way. ugw reads the scrape as of now, so its value is not kept.
fn parse_timestamp(text: &str) -> Result<(), String> {
    match parse_value(text) {
        Ok(t) if t.is_finite() => Ok(()),
        _ => Err(format!(
            "not a timestamp: {:?}",
            scrub::excerpt(text.as_bytes(), 40)
        )),
    }
}

/// A sample value as Prometheus reads it (Go's `ParseFloat` without hexadecimal or `_`):
/// decimal and exponent forms, `NaN`, `Inf`, `+Inf`, `-Inf` (in any case, as `ParseFloat`);
/// not `0x10`, not a signed `NaN`, not a decimal too large for a double (`1e400`).
/// (Rust's `f64` parser already refuses hexadecimal, `p` exponents and `_`, which Prometheus
/// refuses before `ParseFloat` would read them.)
fn parse_value(text: &str) -> Result<f64, String> {
    let bad = |why: &str| format!("{why}: {:?}", scrub::excerpt(text.as_bytes(), 40));
    let value: f64 = text.parse().map_err(|_| bad("not a number"))?;
    let lower = text.to_ascii_lowercase();
    if value.is_nan() && lower != "nan" {
        return Err(bad("not a number"));
    }
    if value.is_infinite() && !lower.contains("inf") {
        return Err(bad("a number too large for a double"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests;
