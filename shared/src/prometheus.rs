//! Prometheus text exposition, read the way ugw needs it: the samples of one scrape, selected by
//! a metric name and label matchers and summed over their label sets (`ugw-drain`'s in-flight
//! gauge, `ugw-verify`'s assertions), histograms turned into quantiles from the change between
//! two scrapes (the server's own view of latency over a window), and counter deltas that survive
//! a restarted process. Only the text format (version 0.0.4, which `OpenMetrics` text also
//! parses as, for what we read) is supported.

use std::collections::BTreeMap;
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

impl Exposition {
    /// Parse a whole scrape. Comments (`# HELP`, `# TYPE`, others) are skipped; a malformed
    /// sample line is an error naming its line, since a half-read scrape would give wrong sums.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut samples = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let sample = parse_sample(line).map_err(|message| ParseError {
                line: index + 1,
                message,
            })?;
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
    #[must_use]
    pub fn sum(&self, selector: &Selector) -> Option<f64> {
        let mut picked = self.select(selector).map(|s| s.value).peekable();
        picked.peek()?;
        Some(picked.sum())
    }

    /// The histogram `selector` names (by its base name, without `_bucket`), its series summed
    /// bucket by bucket; `None` when the scrape has no bucket of it. The `le` label is matched
    /// by the bucket, so the selector must not constrain it.
    #[must_use]
    pub fn histogram(&self, selector: &Selector) -> Option<Histogram> {
        let buckets_of = Selector {
            name: format!("{}_bucket", selector.name),
            matchers: selector.matchers.clone(),
        };
        let mut by_bound: BTreeMap<Bound, f64> = BTreeMap::new();
        for sample in self.select(&buckets_of) {
            let le = sample.labels.get("le")?;
            let bound = parse_value(le).ok()?;
            *by_bound.entry(Bound(bound)).or_default() += sample.value;
        }
        if by_bound.is_empty() {
            return None;
        }
        Some(Histogram {
            buckets: by_bound.into_iter().map(|(b, c)| (b.0, c)).collect(),
        })
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

/// Cumulative bucket counts by upper bound, ascending, the last one `+Inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// How many observations it holds (the `+Inf` bucket).
    #[must_use]
    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |b| b.1)
    }

    /// What was observed between `earlier` and this scrape, bucket by bucket. When the process
    /// restarted in between (its count went down), everything it holds now is new.
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
                .map(|&(bound, count)| (bound, (count - before(bound)).max(0.0)))
                .collect(),
        }
    }

    /// The `q` quantile (0..=1), interpolated linearly inside its bucket as Prometheus's
    /// `histogram_quantile` does; `None` with no observation. A quantile in the `+Inf` bucket
    /// is the highest finite bound: all we know is that it is above it.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 || !(0.0..=1.0).contains(&q) {
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
/// process restarted), so all of `after` is growth: never a negative rate.
#[must_use]
pub fn counter_delta(before: f64, after: f64) -> f64 {
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
    /// Parse `name` or `name{matchers}`; regexes are anchored, as in `PromQL`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, rest) = split_name(text);
        if !is_metric_name(name) {
            return Err(format!(
                "not a metric name: {:?}",
                scrub::excerpt(name.as_bytes(), 80)
            ));
        }
        let mut matchers = Vec::new();
        let rest = rest.trim();
        if !rest.is_empty() {
            let inner = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .ok_or_else(|| format!("after the name {name:?}, want {{label=\"value\",...}}"))?;
            for (label, op, value) in parse_label_pairs(inner, true)? {
                matchers.push(match op {
                    "=" => Matcher::Equal(label, value),
                    "!=" => Matcher::NotEqual(label, value),
                    "=~" => Matcher::Matches(label, anchored(&value)?),
                    _ => Matcher::NotMatches(label, anchored(&value)?),
                });
            }
        }
        Ok(Selector {
            name: name.to_string(),
            matchers,
        })
    }

    #[must_use]
    pub fn matches(&self, sample: &Sample) -> bool {
        sample.name == self.name && self.matchers.iter().all(|m| m.holds(&sample.labels))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.matchers.is_empty() {
            return Ok(());
        }
        let parts: Vec<String> = self
            .matchers
            .iter()
            .map(|m| match m {
                Matcher::Equal(l, v) => format!("{l}={v:?}"),
                Matcher::NotEqual(l, v) => format!("{l}!={v:?}"),
                Matcher::Matches(l, r) => format!("{l}=~{:?}", unanchored(r)),
                Matcher::NotMatches(l, r) => format!("{l}!~{:?}", unanchored(r)),
            })
            .collect();
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

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn split_name(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    text.split_at(end)
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let (name, rest) = split_name(line);
    if !is_metric_name(name) {
        return Err(format!(
            "not a sample line: {:?}",
            scrub::excerpt(line.as_bytes(), 80)
        ));
    }
    let mut labels = BTreeMap::new();
    let rest = if let Some(after) = rest.strip_prefix('{') {
        let close = closing_brace(after).ok_or("a label set without its closing }")?;
        for (label, op, value) in parse_label_pairs(&after[..close], false)? {
            debug_assert_eq!(op, "=");
            labels.insert(label, value);
        }
        &after[close + 1..]
    } else {
        rest
    };
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| format!("{name}: no value"))
        .and_then(parse_value)?;
    // An optional timestamp may follow; anything after it is not the text format.
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("{name}: not a timestamp: {timestamp:?}"))?;
    }
    if fields.next().is_some() {
        return Err(format!("{name}: unexpected text after the value"));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Where the label set closes, skipping braces inside quoted values.
fn closing_brace(text: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text
            .parse::<f64>()
            .map_err(|_| format!("not a number: {:?}", scrub::excerpt(text.as_bytes(), 40))),
    }
}

/// `label OP "value", ...` with `\\`, `\"` and `\n` escapes; operators other than `=` only
/// when `operators` (a selector, not a sample).
fn parse_label_pairs(
    text: &str,
    operators: bool,
) -> Result<Vec<(String, &'static str, String)>, String> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let label = &rest[..end];
        if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "not a label name at {:?}",
                scrub::excerpt(rest.as_bytes(), 40)
            ));
        }
        rest = rest[end..].trim_start();
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .ok_or_else(|| format!("label {label}: want =, !=, =~ or !~"))?;
        if op != "=" && !operators {
            return Err(format!("label {label}: a sample's labels use ="));
        }
        rest = rest[op.len()..].trim_start();
        let (value, after) = quoted_value(rest)
            .ok_or_else(|| format!("label {label}: want a value in double quotes"))?;
        pairs.push((label.to_string(), op, value));
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(after_comma) => rest = after_comma.trim_start(),
            None if rest.is_empty() => {}
            None => return Err(format!("after label {label}: want , or }}")),
        }
    }
    Ok(pairs)
}

fn quoted_value(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            _ => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP http_requests_total Requests answered.
# TYPE http_requests_total counter
http_requests_total{code="200",path="/work"} 90
http_requests_total{code="500",path="/work"} 7
http_requests_total{code="503",path="/health/ready"} 3 1700000000000
http_requests_in_flight 2
odd{msg="a \"quoted\" } brace\\ and\nline"} 1.5e3
# TYPE lat histogram
lat_bucket{path="/work",le="0.1"} 10
lat_bucket{path="/work",le="0.5"} 30
lat_bucket{path="/work",le="+Inf"} 40
lat_bucket{path="/x",le="0.1"} 5
lat_bucket{path="/x",le="0.5"} 5
lat_bucket{path="/x",le="+Inf"} 5
lat_sum{path="/work"} 9
lat_count{path="/work"} 40
"#;

    fn sum(selector: &str) -> Option<f64> {
        Exposition::parse(SCRAPE)
            .unwrap()
            .sum(&Selector::parse(selector).unwrap())
    }

    #[test]
    fn sums_over_label_sets_and_matchers() {
        assert_eq!(sum("http_requests_total"), Some(100.0));
        assert_eq!(sum(r#"http_requests_total{code=~"5.."}"#), Some(10.0));
        assert_eq!(sum(r#"http_requests_total{code!="200"}"#), Some(10.0));
        assert_eq!(
            sum(r#"http_requests_total{code!~"5..",path="/work"}"#),
            Some(90.0)
        );
        // Anchored: "5" alone matches no code.
        assert_eq!(sum(r#"http_requests_total{code=~"5"}"#), None);
        assert_eq!(sum("http_requests_in_flight"), Some(2.0));
        // A label the series lacks is empty.
        assert_eq!(sum(r#"http_requests_in_flight{pod=""}"#), Some(2.0));
        assert_eq!(sum("no_such_metric"), None);
    }

    #[test]
    fn label_values_keep_their_escapes_and_braces() {
        let scrape = Exposition::parse(SCRAPE).unwrap();
        let odd = scrape.samples.iter().find(|s| s.name == "odd").unwrap();
        assert_eq!(odd.labels["msg"], "a \"quoted\" } brace\\ and\nline");
        assert!((odd.value - 1500.0).abs() < f64::EPSILON);
    }

    #[test]
    fn malformed_lines_name_their_line_number() {
        for (text, line) in [
            ("ok 1\nbroken\n", 2),
            ("x{a=\"1\" 2\n", 1),
            ("x 1 2 3\n", 1),
            ("x{a=1} 2\n", 1),
            ("x{a!=\"1\"} 2\n", 1),
            ("\n\nx one\n", 3),
        ] {
            let error = Exposition::parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}: {error}");
        }
        assert!(Exposition::parse("x +Inf\ny NaN\nz -1e-3 12\n").is_ok());
    }

    #[test]
    fn selectors_reject_what_they_cannot_mean() {
        for bad in ["", "9lives", "x{", "x{a}", "x{a=b}", "x{a=~\"(\"}", "x y"] {
            assert!(Selector::parse(bad).is_err(), "{bad:?}");
        }
        let s = Selector::parse(r#" x{a="1", b=~"2|3" } "#).unwrap();
        assert_eq!(s.to_string(), r#"x{a="1",b=~"2|3"}"#);
    }

    #[test]
    fn histograms_sum_their_series_and_give_quantiles() {
        let scrape = Exposition::parse(SCRAPE).unwrap();
        let all = scrape.histogram(&Selector::parse("lat").unwrap()).unwrap();
        assert_eq!(
            all.buckets,
            vec![(0.1, 15.0), (0.5, 35.0), (f64::INFINITY, 45.0)]
        );
        let work = scrape
            .histogram(&Selector::parse(r#"lat{path="/work"}"#).unwrap())
            .unwrap();
        // Rank 20 of 40 lies halfway through the (0.1, 0.5] bucket's 20 observations.
        assert!((work.quantile(0.5).unwrap() - 0.3).abs() < 1e-9);
        // Rank 5 in the first bucket interpolates from 0.
        assert!((work.quantile(0.125).unwrap() - 0.05).abs() < 1e-9);
        // In +Inf: the highest finite bound.
        assert!((work.quantile(0.99).unwrap() - 0.5).abs() < 1e-9);
        assert!(
            scrape
                .histogram(&Selector::parse("nothing").unwrap())
                .is_none()
        );
    }

    #[test]
    fn a_window_is_the_difference_of_two_scrapes_and_survives_a_restart() {
        let before = Histogram {
            buckets: vec![(0.1, 100.0), (1.0, 100.0), (f64::INFINITY, 100.0)],
        };
        let after = Histogram {
            buckets: vec![(0.1, 100.0), (1.0, 110.0), (f64::INFINITY, 110.0)],
        };
        let window = after.since(&before);
        assert!((window.count() - 10.0).abs() < f64::EPSILON);
        // Every new observation is slow: the window says so though the totals are mostly fast.
        assert!(window.quantile(0.5).unwrap() > 0.1);
        assert!(after.quantile(0.5).unwrap() <= 0.1);
        // A restarted process: its counts start again below the old ones.
        let restarted = Histogram {
            buckets: vec![(0.1, 3.0), (1.0, 4.0), (f64::INFINITY, 4.0)],
        };
        assert_eq!(restarted.since(&before), restarted);
        assert_eq!(Histogram { buckets: vec![] }.quantile(0.5), None);
    }

    #[test]
    fn counter_deltas_are_never_negative() {
        assert!((counter_delta(10.0, 15.0) - 5.0).abs() < f64::EPSILON);
        assert!((counter_delta(10.0, 4.0) - 4.0).abs() < f64::EPSILON);
    }
}
