//! Running one check: what it expected, what it observed, and whether that passed. HTTP
//! checks are here; the other types have files of their own. A check runs on a thread of its
//! own and keeps its deadline itself (the client and the runner are given it).

use crate::spec::{Check, HttpCheck, Kind, Samples};
use crate::template::Template;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ugw_shared::cancel::Cancel;
use ugw_shared::http::expect::{QUOTE_BYTES, first_text, json_body};
use ugw_shared::http::{BODY_LIMIT, HttpClient, HttpResponse, JqBudget, Request};
use ugw_shared::jq::{JqExpr, JqInput};
use ugw_shared::poll::Attempt;
use ugw_shared::results::Observation;
use ugw_shared::scrub::{Scrubber, excerpt};
use ugw_shared::time::{human, millis};
use ugw_shared::{Error, ErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed,
    /// Too few samples to judge: never a pass.
    Insufficient,
    /// Not run: a check it needs did not pass, or a value it needs was not captured.
    Skipped,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Insufficient => "insufficient_data",
            Verdict::Skipped => "skipped",
        }
    }
}

/// What one check found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    pub expected: String,
    pub observed: String,
    pub message: Option<String>,
    pub observation: Option<Observation>,
    pub captured: Vec<(String, String)>,
}

impl Outcome {
    pub fn passed(expected: String, observed: String) -> Self {
        Outcome {
            verdict: Verdict::Passed,
            expected,
            observed,
            message: None,
            observation: None,
            captured: Vec::new(),
        }
    }

    pub fn failed(expected: String, observed: String, why: String) -> Self {
        Outcome {
            verdict: Verdict::Failed,
            message: Some(why),
            ..Outcome::passed(expected, observed)
        }
    }

    pub fn insufficient(expected: String, observed: String, why: String) -> Self {
        Outcome {
            verdict: Verdict::Insufficient,
            ..Outcome::failed(expected, observed, why)
        }
    }

    pub fn skipped(why: String) -> Self {
        Outcome {
            verdict: Verdict::Skipped,
            ..Outcome::failed(String::new(), "not run".into(), why)
        }
    }

    #[must_use]
    pub fn observed_as(mut self, observation: Option<Observation>) -> Self {
        self.observation = observation;
        self
    }
}

/// What every check may need, shared by the threads that run them.
pub struct Shared {
    pub client: HttpClient,
    /// The record that came in, for `record` checks.
    pub record: JqInput,
    pub scrubber: Scrubber,
    pub cancel: Cancel,
}

/// The attempt that runs `check` on its own thread, ending by `until`.
pub fn attempt(
    check: Arc<Check>,
    shared: Arc<Shared>,
    captured: HashMap<String, String>,
    until: Instant,
) -> Attempt<Outcome> {
    let children = matches!(check.kind, Kind::Cmd(_));
    let run = move || run(&check, &shared, &captured, until);
    if children {
        Attempt::with_children(run)
    } else {
        Attempt::new(run)
    }
}

fn run(
    check: &Check,
    shared: &Shared,
    captured: &HashMap<String, String>,
    until: Instant,
) -> Outcome {
    let fill = |t: &crate::template::Template| t.render(captured);
    match &check.kind {
        Kind::Http(http) => match prepare(http, captured, &shared.scrubber) {
            Ok(request) => match &http.samples {
                Some(samples) => run_samples(http, samples, &request, shared, until),
                None => run_http(http, request.build(), shared, until),
            },
            Err(why) => Outcome::skipped(why),
        },
        Kind::Cmd(cmd) => crate::cmd::run(cmd, until, &shared.cancel),
        Kind::Tls(tls) => crate::tls::run(tls, until, &shared.cancel),
        Kind::Metrics(m) => {
            let target = fill(&m.url)
                .and_then(|u| checked(&u, &shared.scrubber))
                .and_then(|url| Ok((url, render_headers(&m.headers, captured, &shared.scrubber)?)));
            match target {
                Ok((url, headers)) => {
                    crate::metrics::run(m, &url, &headers, &shared.client, until, &shared.cancel)
                }
                Err(why) => Outcome::skipped(why),
            }
        }
        Kind::Versions(v) => crate::versions::run(v, captured, shared, until),
        Kind::Record(expect) => crate::earlier::run(expect, &shared.record, until, &shared.cancel),
    }
}

pub fn checked(url: &str, scrubber: &Scrubber) -> Result<String, String> {
    ugw_shared::http::check_url(url, scrubber)
        .map(|_| url.to_string())
        .map_err(|e| e.message)
}

/// A request with its captures filled in, ready to be sent (again, for samples).
struct Prepared {
    method: ugw_shared::http::Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Prepared {
    fn build(&self) -> Request {
        let mut request = Request::new(self.method.clone(), &self.url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        match &self.body {
            Some(body) => request.body(body.clone()),
            None => request,
        }
    }
}

fn prepare(
    http: &HttpCheck,
    captured: &HashMap<String, String>,
    scrubber: &Scrubber,
) -> Result<Prepared, String> {
    let url = checked(&http.url.render(captured)?, scrubber)?;
    let headers = render_headers(&http.headers, captured, scrubber)?;
    let body = http.body.as_ref().map(|b| b.render(captured)).transpose()?;
    Ok(Prepared {
        method: http.method.clone(),
        url,
        headers,
        body,
    })
}

/// Header values with their captures filled in; a value in a header whose name marks it
/// secret is a secret from now on, whoever captured it (a token from a login answer).
pub fn render_headers(
    headers: &[(String, Template)],
    captured: &HashMap<String, String>,
    scrubber: &Scrubber,
) -> Result<Vec<(String, String)>, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = value.render(captured)?;
            if Scrubber::is_secret_name(name) {
                scrubber.add_secret(&value);
            }
            Ok((name.clone(), value))
        })
        .collect()
}

fn run_http(http: &HttpCheck, request: Request, shared: &Shared, until: Instant) -> Outcome {
    let expected = http.expect.describe();
    let response = match shared
        .client
        .fetch_request(request, until, BODY_LIMIT, &shared.cancel)
    {
        Ok(response) => response,
        Err(e) => return Outcome::failed(expected, "no answer".into(), e.message),
    };
    let observed = format!("{} in {}", response.status, human(response.latency));
    let jq = JqBudget {
        until,
        cancel: &shared.cancel,
    };
    match judge_http(http, &response, jq) {
        Ok(Ok(captured)) => Outcome {
            captured,
            ..Outcome::passed(expected, observed)
        },
        Ok(Err(why)) => Outcome::failed(expected, observed, why),
        Err(cut) => Outcome::failed(expected, observed, cut_short(&cut)),
    }
}

/// A jq evaluation the check's deadline or a signal cut short: never a pass. At the
/// deadline the check timed out, as one that never answered does; on a signal the run is
/// interrupted (`schedule` ends it), and the check says so.
pub fn cut_short(cut: &Error) -> String {
    match cut.kind {
        ErrorKind::Timeout => format!("timed out: {}", cut.message),
        _ => cut.message.clone(),
    }
}

/// The first assertion that fails, in words (inner `Err`); else the captured values. An
/// outer `Err` when a jq evaluation was cut short (see [`cut_short`]).
fn judge_http(
    http: &HttpCheck,
    response: &HttpResponse,
    jq: JqBudget,
) -> ugw_shared::Result<Result<Vec<(String, String)>, String>> {
    let json = http
        .expect
        .reads_json(!http.capture.is_empty())
        .then(|| json_body(response));
    if let Some(missed) = http.expect.judge(response, json.as_ref(), jq)? {
        return Ok(Err(missed.reason));
    }
    let Some(Ok(json)) = json else {
        return Ok(Ok(Vec::new()));
    };
    let mut captured = Vec::new();
    for (name, path) in &http.capture {
        match first_text(path, &json, jq)? {
            Ok(Some(value)) => captured.push((name.clone(), value)),
            Ok(None) => {
                return Ok(Err(format!(
                    "capture {name}: {} is null or absent in '{}'",
                    path.text(),
                    excerpt(&response.body, QUOTE_BYTES)
                )));
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(captured))
}

/// The first value of `expr` as text, in words when it cannot be read (a jq error, or an
/// evaluation cut short).
pub fn jq_first(expr: &JqExpr, input: &JqInput, jq: JqBudget) -> Result<Option<String>, String> {
    match first_text(expr, input, jq) {
        Ok(found) => found,
        Err(cut) => Err(cut_short(&cut)),
    }
}

/// Every jq expectation holds on `json` (what `context` says it is), or the first that
/// does not, in words.
pub fn expectations(
    expect: &[JqExpr],
    json: &JqInput,
    context: &str,
    jq: JqBudget,
) -> Result<(), String> {
    match ugw_shared::http::expect::expect_all(expect, json, context, jq) {
        Ok(None) => Ok(()),
        Ok(Some(why)) => Err(why),
        Err(cut) => Err(cut_short(&cut)),
    }
}

/// N requests one after another; latency percentiles over those answered, errors counted.
fn run_samples(
    http: &HttpCheck,
    samples: &Samples,
    request: &Prepared,
    shared: &Shared,
    until: Instant,
) -> Outcome {
    let expected = samples_expected(http, samples);
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(samples.count as usize);
    // Errors: every request not answered with a wanted status; `unanswered` those of them
    // with no answer at all (refused, reset, cut), which have no latency.
    let (mut errors, mut unanswered, mut last_error) = (0u64, 0u64, None);
    for _ in 0..samples.count {
        if Instant::now() >= until || shared.cancel.signal().is_some() {
            break;
        }
        match shared
            .client
            .fetch_request(request.build(), until, BODY_LIMIT, &shared.cancel)
        {
            Ok(response) => {
                latencies.push(response.latency);
                if !http.expect.status.contains(response.status) {
                    errors += 1;
                    last_error = Some(format!("status {}", response.status));
                }
            }
            // The deadline cut it: not an answer, and not the service's error either.
            Err(e) if e.timed_out && Instant::now() >= until => break,
            Err(e) => {
                errors += 1;
                unanswered += 1;
                last_error = Some(e.message);
            }
        }
    }
    let observation = samples_observation(&mut latencies, errors, unanswered, started.elapsed());
    judge_samples(samples, expected, observation, last_error)
}

fn samples_expected(http: &HttpCheck, samples: &Samples) -> String {
    let mut parts = vec![format!(
        "{} x status {}",
        samples.count,
        http.expect.status.text()
    )];
    if let Some(p50) = samples.p50 {
        parts.push(format!("p50 <= {}", human(p50)));
    }
    if let Some(p95) = samples.p95 {
        parts.push(format!("p95 <= {}", human(p95)));
    }
    parts.push(format!("at most {} errors", samples.max_errors));
    parts.join(", ")
}

/// `errors` of the requests were not answered with a wanted status, `unanswered` of those
/// not answered at all: the ratio is errors over every request sent (answered or not).
fn samples_observation(
    latencies: &mut [Duration],
    errors: u64,
    unanswered: u64,
    took: Duration,
) -> Observation {
    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let answered = latencies.len() as u64;
    let attempted = answered + unanswered;
    Observation {
        source: "samples".into(),
        requests: answered,
        p50_ms: percentile(latencies, 0.50).map(ms),
        p95_ms: percentile(latencies, 0.95).map(ms),
        errors: Some(errors),
        error_ratio: (attempted > 0).then(|| errors as f64 / attempted as f64),
        window_ms: millis(took),
        ..Observation::default()
    }
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn judge_samples(
    samples: &Samples,
    expected: String,
    o: Observation,
    last_error: Option<String>,
) -> Outcome {
    let observed = crate::metrics::describe(&o);
    let errors = o.errors.unwrap_or(0);
    let mut failures = Vec::new();
    if errors > u64::from(samples.max_errors) {
        failures.push(format!(
            "{errors} errors, more than {} (last: {})",
            samples.max_errors,
            last_error.unwrap_or_default()
        ));
    }
    if o.requests < u64::from(samples.min_samples) && failures.is_empty() {
        let why = format!(
            "{} answered requests, fewer than {}: too few to judge",
            o.requests, samples.min_samples
        );
        return Outcome::insufficient(expected, observed, why).observed_as(Some(o));
    }
    for (name, bound, value) in [
        ("p50", samples.p50, o.p50_ms),
        ("p95", samples.p95, o.p95_ms),
    ] {
        if let (Some(bound), Some(value)) = (bound, value)
            && value > bound.as_secs_f64() * 1000.0
        {
            failures.push(format!("{name} {value:.1} ms, over {}", human(bound)));
        }
    }
    let outcome = if failures.is_empty() {
        Outcome::passed(expected, observed)
    } else {
        Outcome::failed(expected, observed, failures.join("; "))
    };
    outcome.observed_as(Some(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let sorted: Vec<Duration> = (1..=20).map(ms).collect();
        assert_eq!(percentile(&sorted, 0.5), Some(ms(10)));
        assert_eq!(percentile(&sorted, 0.95), Some(ms(19)));
        assert_eq!(percentile(&sorted[..1], 0.95), Some(ms(1)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn too_few_samples_is_never_a_pass() {
        let samples = Samples {
            count: 5,
            p50: None,
            p95: Some(Duration::from_secs(1)),
            max_errors: 0,
            min_samples: 20,
        };
        let mut fast = vec![Duration::from_millis(1); 5];
        let o = samples_observation(&mut fast, 0, 0, Duration::from_millis(5));
        let outcome = judge_samples(&samples, String::new(), o, None);
        assert_eq!(outcome.verdict, Verdict::Insufficient);
    }
}
