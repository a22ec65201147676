//! The `metrics` check: a Prometheus endpoint scraped at the start and the end of the check's
//! window. Assertions (`process_resident_memory_bytes <= 512MiB`) read the last scrape; a
//! histogram quantile and the measures (latency, error ratio, memory) read what changed
//! between the two, so they describe the window, not the process's whole life. A restarted
//! process (its counters went down) counts from its restart, never as a negative rate.

use crate::check::Outcome;
use crate::spec::{HistogramBound, Measure, MetricsCheck};
use std::time::{Duration, Instant};
use ugw_shared::cancel::Cancel;
use ugw_shared::http::{HttpClient, Request};
use ugw_shared::prometheus::{Exposition, Histogram, Selector, counter_delta, scrape_request};
use ugw_shared::results::Observation;
use ugw_shared::time::{human, millis};

/// What the measures read, by the names the common client libraries export.
const LATENCY: &str = "http_request_duration_seconds";
const REQUESTS: &str = "http_requests_total";
const ERRORS: &str = "http_requests_total{code=~\"5..\"}";
const MEMORY: &str = "process_resident_memory_bytes";
const CPU: &str = "process_cpu_seconds_total";
const STARTED: &str = "process_start_time_seconds";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
}

impl Op {
    const ALL: [(&'static str, Op); 6] = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Eq => (left - right).abs() <= f64::EPSILON * right.abs().max(1.0),
            Op::Ne => (left - right).abs() > f64::EPSILON * right.abs().max(1.0),
            Op::Ge => left >= right,
            Op::Gt => left > right,
        }
    }
}

/// `[sum(]SELECTOR[)] OP VALUE`: the samples the selector picks, summed, compared.
#[derive(Debug)]
pub struct Assertion {
    pub text: String,
    selector: Selector,
    op: Op,
    value: f64,
}

impl Assertion {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (left, op, right) = split_at_operator(text).ok_or_else(|| {
            format!("'{text}' is not 'METRIC{{labels}} OP VALUE' (OP one of < <= == != >= >)")
        })?;
        let left = left.trim();
        let inner = left
            .strip_prefix("sum(")
            .and_then(|l| l.strip_suffix(')'))
            .unwrap_or(left);
        let selector = Selector::parse(inner).map_err(|e| format!("'{text}': {e}"))?;
        let value = parse_value(right.trim()).map_err(|e| format!("'{text}': {e}"))?;
        Ok(Assertion {
            text: text.trim().to_string(),
            selector,
            op,
            value,
        })
    }
}

/// The operator outside braces and quotes (label matchers have `=` and `!=` of their own).
fn split_at_operator(text: &str) -> Option<(&str, Op, &str)> {
    let (mut depth, mut quoted, mut escaped) = (0i32, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '{' if !quoted => depth += 1,
            '}' if !quoted => depth -= 1,
            _ if depth == 0 && !quoted => {
                if let Some((word, op)) = Op::ALL.iter().find(|(w, _)| text[i..].starts_with(w)) {
                    let rest = &text[i + word.len()..];
                    if rest.starts_with(['<', '>', '=']) {
                        return None;
                    }
                    return Some((&text[..i], *op, rest));
                }
            }
            _ => {}
        }
    }
    None
}

/// A number with an optional unit: `512MiB`, `1.5GB`, `250ms`, `2s`, `5%`, `1e3`.
pub fn parse_value(text: &str) -> Result<f64, String> {
    const UNITS: [(&str, f64); 12] = [
        ("KiB", 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("TiB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("KB", 1e3),
        ("kB", 1e3),
        ("MB", 1e6),
        ("GB", 1e9),
        ("ms", 1e-3),
        ("us", 1e-6),
        ("s", 1.0),
        ("%", 0.01),
    ];
    let (number, scale) = UNITS
        .iter()
        .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, *scale)))
        .unwrap_or((text, 1.0));
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(|n| n * scale)
        .ok_or_else(|| format!("'{text}' is not a number (units: KiB MiB GiB KB MB GB ms us s %)"))
}

/// Two scrapes `window` apart (one without a window), then the judgement.
pub fn run(
    check: &MetricsCheck,
    url: &str,
    headers: &[(String, String)],
    client: &HttpClient,
    until: Instant,
    cancel: &Cancel,
) -> Outcome {
    let expected = expected(check);
    let scrape = |client: &HttpClient, url: &str, until: Instant, cancel: &Cancel| {
        let request = headers
            .iter()
            .fold(Request::get(url), |r, (name, value)| r.header(name, value));
        scrape_request(client, request, url, until, cancel)
    };
    let started = Instant::now();
    let first = match check.window {
        Some(_) => match scrape(client, url, until, cancel) {
            Ok(first) => Some(first),
            Err(e) => return Outcome::failed(expected, "no scrape".into(), e),
        },
        None => None,
    };
    if let Some(window) = check.window {
        let end = (started + window).min(until);
        if cancel.sleep_until(end).is_err() {
            return Outcome::failed(expected, "interrupted".into(), "interrupted".into());
        }
    }
    let last = match scrape(client, url, until, cancel) {
        Ok(last) => last,
        Err(e) => return Outcome::failed(expected, "no scrape".into(), e),
    };
    let window = started.elapsed();
    judge(check, first.as_ref(), &last, window, expected)
}

fn expected(check: &MetricsCheck) -> String {
    let mut parts: Vec<String> = check.asserts.iter().map(|a| a.text.clone()).collect();
    if let Some(h) = &check.histogram {
        parts.push(format!(
            "q{} of {} <= {}",
            h.quantile,
            h.selector,
            human(h.max)
        ));
    }
    if !check.measure.is_empty() {
        parts.push(format!(
            "at least {} requests in the window",
            check.min_samples
        ));
    }
    parts.join(", ")
}

/// What the scrapes showed, and what fails the check; `short` when there were too few
/// observations to judge.
#[derive(Default)]
struct Findings {
    observed: Vec<String>,
    failures: Vec<String>,
    short: Option<String>,
}

fn judge(
    check: &MetricsCheck,
    first: Option<&Exposition>,
    last: &Exposition,
    window: Duration,
    expected: String,
) -> Outcome {
    let mut found = Findings::default();
    for assertion in &check.asserts {
        assert_on(assertion, last, &mut found);
    }
    let reset = restarted(first, last);
    if let Some(bound) = &check.histogram {
        let h = window_histogram(first, last, &bound.selector, reset);
        if h.is_none() && has_buckets(last, &bound.selector) {
            // Buckets that make no histogram (a NaN count, no +Inf): no reading to judge.
            found.short = Some(format!(
                "the buckets of {} are not numbers to judge",
                bound.selector
            ));
        } else {
            quantile_within(bound, h.as_ref(), check.min_samples, &mut found);
        }
    }
    let measured =
        (!check.measure.is_empty()).then(|| measure(&check.measure, first, last, window, reset));
    if let Some((o, unreadable)) = &measured {
        found.observed.push(describe(o));
        let counts = check.measure.iter().any(|m| *m != Measure::Memory);
        if counts && o.requests < u64::from(check.min_samples) {
            found.short = Some(format!(
                "{} requests in the window, fewer than {}: too few to judge",
                o.requests, check.min_samples
            ));
        }
        // A figure that is not a number is no reading: never judged, never a pass.
        if !unreadable.is_empty() {
            found.short = Some(unreadable.join("; "));
        } else if check.measure.contains(&Measure::Memory) && o.memory_bytes.is_none() {
            found.failures.push(format!("no sample of {MEMORY}"));
        }
    }
    let observation = measured.map(|(o, _)| o);
    let observed = found.observed.join(", ");
    let outcome = match found.short {
        Some(why) if found.failures.is_empty() => Outcome::insufficient(expected, observed, why),
        _ if found.failures.is_empty() => Outcome::passed(expected, observed),
        _ => Outcome::failed(expected, observed, found.failures.join("; ")),
    };
    outcome.observed_as(observation)
}

fn assert_on(assertion: &Assertion, last: &Exposition, found: &mut Findings) {
    let Some(value) = last.sum(&assertion.selector) else {
        let why = format!("{}: no sample of {}", assertion.text, assertion.selector);
        found.failures.push(why);
        return;
    };
    found
        .observed
        .push(format!("{} = {}", assertion.selector, shown(value)));
    if !assertion.op.holds(value, assertion.value) {
        found
            .failures
            .push(format!("{} is {}", assertion.text, shown(value)));
    }
}

/// Whether the scrape has buckets of the histogram `selector` names, read or not.
fn has_buckets(scrape: &Exposition, selector: &Selector) -> bool {
    let buckets = Selector {
        name: format!("{}_bucket", selector.name),
        matchers: selector.matchers.clone(),
    };
    scrape.select(&buckets).next().is_some()
}

/// The quantile of what the histogram observed in the window, within its bound.
fn quantile_within(
    bound: &HistogramBound,
    histogram: Option<&Histogram>,
    min_samples: u32,
    found: &mut Findings,
) {
    let Some(h) = histogram else {
        found
            .failures
            .push(format!("no histogram {}", bound.selector));
        return;
    };
    if !h.count().is_finite() {
        found.short = Some(format!(
            "{} counts {} observations: not a number to judge",
            bound.selector,
            h.count()
        ));
        return;
    }
    if h.count() < f64::from(min_samples) {
        found.observed.push(format!("{} observations", h.count()));
        found.short = Some(format!(
            "{} has {} observations in the window, fewer than {min_samples}",
            bound.selector,
            h.count()
        ));
        return;
    }
    // A bucket that is not a number (NaN) gives no quantile: no reading, never 0 and a pass.
    let Some(q) = h.quantile(bound.quantile).filter(|q| q.is_finite()) else {
        found.short = Some(format!(
            "the buckets of {} give no q{}: a bucket is not a number",
            bound.selector, bound.quantile
        ));
        return;
    };
    found
        .observed
        .push(format!("q{} {}", bound.quantile, seconds(q)));
    if q > bound.max.as_secs_f64() {
        found.failures.push(format!(
            "q{} of {} is {}, over {}",
            bound.quantile,
            bound.selector,
            seconds(q),
            human(bound.max)
        ));
    }
}

/// The process restarted between the scrapes: its start time moved (by a second or more; it
/// is written in seconds), or its request counter went down.
fn restarted(first: Option<&Exposition>, last: &Exposition) -> bool {
    let Some(first) = first else { return false };
    let get = |e: &Exposition, s: &str| e.sum(&Selector::parse(s).expect("a valid selector"));
    let moved = matches!((get(first, STARTED), get(last, STARTED)), (Some(a), Some(b)) if (a - b).abs() >= 1.0);
    let fell = matches!((get(first, REQUESTS), get(last, REQUESTS)), (Some(a), Some(b)) if b < a);
    moved || fell
}

/// The histogram of what was observed in the window (everything, after a restart or without
/// a first scrape).
fn window_histogram(
    first: Option<&Exposition>,
    last: &Exposition,
    selector: &Selector,
    reset: bool,
) -> Option<Histogram> {
    let now = last.histogram(selector)?;
    match first.and_then(|f| f.histogram(selector)) {
        Some(before) if !reset => Some(now.since(&before)),
        _ => Some(now),
    }
}

/// How much the counters `selector` picks grew in the window, series by series (matched by
/// their labels): a series that went down was reset and counts from 0, one that is new in the
/// window counts whole, and after a restart everything counts. `None` when the last scrape
/// has none of them. Summing first and subtracting after would let one series' reset eat
/// another's growth (an error counter that fell while the total rose: a ratio of 300%).
fn window_increase(
    first: Option<&Exposition>,
    last: &Exposition,
    selector: &Selector,
    reset: bool,
) -> Option<f64> {
    let before = first.filter(|_| !reset);
    let mut grown = last
        .select(selector)
        .map(|now| {
            // The first of a series listed twice is the one read, as Prometheus does.
            let earlier = before.and_then(|f| {
                f.select(selector)
                    .find(|s| s.name == now.name && s.labels == now.labels)
            });
            earlier.map_or(now.value, |b| counter_delta(b.value, now.value))
        })
        .peekable();
    grown.peek()?;
    Some(grown.sum())
}

/// The measures of the window, and the figures that were not numbers (NaN, an infinity, a
/// negative count): those are left out of the observation, never read as 0.
fn measure(
    measures: &[Measure],
    first: Option<&Exposition>,
    last: &Exposition,
    window: Duration,
    reset: bool,
) -> (Observation, Vec<String>) {
    let selector = |s: &str| Selector::parse(s).expect("a valid selector");
    let increase = |s: &str| window_increase(first, last, &selector(s), reset);
    let mut unreadable = Vec::new();
    let mut readable = |what: &str, value: Option<f64>| match value {
        Some(v) if !v.is_finite() || v < 0.0 => {
            unreadable.push(format!("{what} is {v}: not a figure to judge"));
            None
        }
        other => other,
    };
    let mut o = Observation {
        source: "metrics".into(),
        counter_reset: reset,
        window_ms: millis(window),
        ..Observation::default()
    };
    if measures.contains(&Measure::Latency)
        && let Some(h) = window_histogram(first, last, &selector(LATENCY), reset)
        && let Some(count) = readable(&format!("the count of {LATENCY}"), Some(h.count()))
    {
        o.requests = count as u64;
        if count > 0.0 {
            let q = |q: f64| h.quantile(q).map(|s| s * 1000.0);
            o.p50_ms = readable(&format!("p50 of {LATENCY}"), q(0.5).or(Some(f64::NAN)));
            o.p95_ms = readable(&format!("p95 of {LATENCY}"), q(0.95).or(Some(f64::NAN)));
        }
    }
    if measures.contains(&Measure::Errors) {
        let total = readable(REQUESTS, increase(REQUESTS)).unwrap_or(0.0);
        // No 5xx series yet is no error yet; a 5xx series that is not a number is no reading.
        let errors = match increase(ERRORS) {
            None => Some(0.0),
            read => readable(ERRORS, read),
        };
        o.requests = o.requests.max(total as u64);
        if let Some(errors) = errors {
            o.errors = Some(errors as u64);
            // The error series are some of the request series, each counted by its own
            // growth, so the ratio is within 0..1.
            o.error_ratio = (total > 0.0).then(|| errors / total);
        }
    }
    if measures.contains(&Measure::Memory) {
        o.memory_bytes = readable(MEMORY, last.sum(&selector(MEMORY)));
        let seconds = window.as_secs_f64();
        o.cpu_ratio = readable(CPU, increase(CPU))
            .filter(|_| first.is_some() && seconds > 0.0)
            .map(|c| c / seconds);
    }
    (o, unreadable)
}

/// The observation in one phrase for the table.
pub fn describe(o: &Observation) -> String {
    let mut parts = Vec::new();
    if o.p95_ms.is_some() || o.errors.is_some() {
        parts.push(format!("{} requests", o.requests));
    }
    if let (Some(p50), Some(p95)) = (o.p50_ms, o.p95_ms) {
        parts.push(format!("p50 {p50:.1} ms, p95 {p95:.1} ms"));
    }
    if let Some(errors) = o.errors {
        let ratio = o.error_ratio.unwrap_or_default() * 100.0;
        parts.push(format!("{errors} errors ({ratio:.2}%)"));
    }
    if let Some(bytes) = o.memory_bytes {
        parts.push(format!("RSS {:.1} MiB", bytes / 1024.0 / 1024.0));
    }
    if o.counter_reset {
        parts.push("restarted in the window".into());
    }
    parts.join(", ")
}

fn seconds(s: f64) -> String {
    format!("{:.1} ms", s * 1000.0)
}

/// A metric value as people read it: whole numbers without a fraction.
fn shown(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertions_read_selector_operator_and_value_with_units() {
        let a = Assertion::parse("process_resident_memory_bytes <= 512MiB").unwrap();
        assert_eq!((a.op, a.value), (Op::Le, 512.0 * 1024.0 * 1024.0));
        let a =
            Assertion::parse(r#"sum(http_requests_total{code=~"5..",path!="/x"}) == 0"#).unwrap();
        assert_eq!(
            (a.op, a.value, a.selector.name.as_str()),
            (Op::Eq, 0.0, "http_requests_total")
        );
        assert_eq!(a.selector.matchers.len(), 2);
        let a = Assertion::parse(r#"up{job="a>b"} > 0.5"#).unwrap();
        assert_eq!((a.op, a.value), (Op::Gt, 0.5));
        assert!((parse_value("250ms").unwrap() - 0.25).abs() < 1e-12);
        for bad in ["up", "up >< 1", "up > lots", "{x=\"1\"} > 1", "up => 1"] {
            assert!(Assertion::parse(bad).is_err(), "{bad}");
        }
    }

    fn scrape_of(text: &str) -> Exposition {
        Exposition::parse(text).unwrap()
    }

    #[test]
    fn measures_count_the_window_and_survive_a_restart() {
        let first = scrape_of(
            "http_requests_total{code=\"200\"} 100\nhttp_requests_total{code=\"500\"} 10\nprocess_start_time_seconds 1000\n",
        );
        let grew = scrape_of(
            "http_requests_total{code=\"200\"} 190\nhttp_requests_total{code=\"500\"} 20\nprocess_start_time_seconds 1000\nprocess_resident_memory_bytes 1048576\n",
        );
        let (o, _) = measure(
            &[Measure::Errors, Measure::Memory],
            Some(&first),
            &grew,
            Duration::from_secs(1),
            false,
        );
        assert_eq!((o.requests, o.errors), (100, Some(10)));
        assert!((o.error_ratio.unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(o.memory_bytes, Some(1_048_576.0));
        // A new process: fewer requests than before, and a new start time.
        let restarted_scrape = scrape_of(
            "http_requests_total{code=\"200\"} 40\nhttp_requests_total{code=\"500\"} 12\nprocess_start_time_seconds 2000\n",
        );
        let reset = restarted(Some(&first), &restarted_scrape);
        assert!(reset);
        let (o, _) = measure(
            &[Measure::Errors],
            Some(&first),
            &restarted_scrape,
            Duration::from_secs(1),
            reset,
        );
        assert_eq!(
            (o.requests, o.errors),
            (52, Some(12)),
            "counted from the restart, not 12 - 10"
        );
        assert!(o.counter_reset);
    }
}
