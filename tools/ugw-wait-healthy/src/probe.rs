//! One round of probes: every target is checked at the same time (the shared
//! `poll::parallel`), so that a hung server or command is abandoned at the deadline, and the
//! answers are judged against the target's checks here, on the calling thread.

use crate::plan::{HttpChecks, HttpSend, Plan};
use std::time::{Duration, Instant};
use ugw_shared::cancel::Cancel;
use ugw_shared::http::expect::{QUOTE_BYTES, first_text, json_body, status_text};
use ugw_shared::http::{BODY_LIMIT, HttpClient, HttpResponse, JqBudget, MissKind, Request};
use ugw_shared::jq::JqInput;
use ugw_shared::poll::{self, Arrived, Attempt, AttemptError};
use ugw_shared::results::{TargetKind, WaitTarget};
use ugw_shared::runner::{self, Ended, RunOutcome, RunSpec};
use ugw_shared::scrub::excerpt;
use ugw_shared::time::{human, millis};
use ugw_shared::{Result, tcp, version};

/// How much of a body goes into the record.
const EXCERPT_BYTES: usize = 512;

#[derive(Debug)]
pub enum Target {
    Http {
        url: String,
        send: HttpSend,
        checks: Box<HttpChecks>,
    },
    Tcp {
        addr: String,
    },
    Cmd {
        command: String,
    },
}

impl Target {
    pub fn label(&self) -> String {
        match self {
            Target::Http { url, .. } => url.clone(),
            Target::Tcp { addr } => format!("tcp {addr}"),
            Target::Cmd { command } => format!("cmd '{command}'"),
        }
    }

    fn kind(&self) -> TargetKind {
        match self {
            Target::Http { .. } => TargetKind::Http,
            Target::Tcp { .. } => TargetKind::Tcp,
            Target::Cmd { .. } => TargetKind::Cmd,
        }
    }
}

/// Why an attempt did not pass, as a state: stderr prints a line when it changes, so a
/// latency or a message that differs only in its figures is not a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Miss {
    #[default]
    None,
    Status(u16),
    TooSlow,
    TimedOut,
    Assertion,
    Command(Ended),
    Other,
}

impl From<MissKind> for Miss {
    fn from(kind: MissKind) -> Miss {
        match kind {
            MissKind::Status(code) => Miss::Status(code),
            MissKind::TooSlow => Miss::TooSlow,
            MissKind::Assertion => Miss::Assertion,
        }
    }
}

/// What one attempt at one target found.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub passed: bool,
    /// Why it did not pass.
    pub reason: Option<String>,
    pub miss: Miss,
    /// No answer in time: the target may be slow, not down, so this never counts as down.
    pub timed_out: bool,
    /// A fail-fast condition matched.
    pub fatal: Option<String>,
    pub status: Option<u16>,
    pub exit_code: Option<i32>,
    pub latency: Option<Duration>,
    pub excerpt: Option<String>,
    pub retry_after: Option<Duration>,
    /// The attempt failed only because the overall deadline cut it short; it says nothing
    /// new about the target.
    pub cut_by_deadline: bool,
    /// The version the body named when it was not the expected one (what
    /// `--fail-if-version-differs` counts).
    pub other_version: Option<String>,
}

impl Verdict {
    fn failed(error: AttemptError) -> Self {
        Verdict {
            reason: Some(error.message),
            miss: if error.timed_out {
                Miss::TimedOut
            } else {
                Miss::Other
            },
            timed_out: error.timed_out,
            ..Verdict::default()
        }
    }

    fn missed(&mut self, miss: Miss, reason: String) {
        self.miss = miss;
        self.reason = Some(reason);
    }

    /// Whether this answer meets the goal: passing, or with --until-down, failing for real.
    pub fn meets(&self, until_down: bool) -> bool {
        if until_down {
            !self.passed && !self.timed_out
        } else {
            self.passed
        }
    }
}

pub struct Round {
    pub verdicts: Vec<Verdict>,
    /// The longest `Retry-After` a failing target asked for.
    pub retry_after: Option<Duration>,
}

impl Round {
    /// Whether this round met the goal within the round (every target, or one with `--any`):
    /// an attempt the deadline cut short met nothing, whatever the target did before.
    pub fn meets_goal(&self, plan: &Plan) -> bool {
        let met = |v: &Verdict| v.meets(plan.until_down) && !v.cut_by_deadline;
        if plan.any {
            self.verdicts.iter().any(met)
        } else {
            self.verdicts.iter().all(met)
        }
    }
}

enum Raw {
    Http(std::result::Result<HttpResponse, AttemptError>),
    Tcp(std::result::Result<Duration, AttemptError>),
    Cmd(Result<RunOutcome>),
}

/// Check every target once, all attempts ending by `until` (at the latest the overall
/// `deadline`). `Err` on a signal, or when a jq expression outlives the deadline.
pub fn run_round(plan: &Plan, until: Instant, deadline: Instant, cancel: &Cancel) -> Result<Round> {
    let started = Instant::now();
    let until_is_deadline = until >= deadline;
    // jq expressions run against the overall deadline and the cancel token: a runaway one
    // ends the run (kind `timeout`, naming it) instead of outliving both.
    let jq = JqBudget {
        until: deadline,
        cancel,
    };
    let attempts = plan.targets.iter().map(|t| attempt(plan, t, until, cancel));
    let arrived = poll::parallel(attempts.collect(), until, cancel)?;
    // In a round cut short by the overall deadline, a timeout (or an answer that came only as
    // the deadline struck) is the deadline's doing, not news about the target.
    let cut_at = until.checked_sub(Duration::from_millis(5)).unwrap_or(until);
    let verdicts: Vec<Verdict> = plan
        .targets
        .iter()
        .zip(arrived)
        .map(|(target, arrived)| {
            let at = arrived.as_ref().map(|a| a.at);
            let mut verdict = judge(target, arrived, until - started, jq)?;
            verdict.cut_by_deadline = until_is_deadline
                && !verdict.passed
                && (verdict.timed_out || at.is_none_or(|at| at >= cut_at));
            Ok(verdict)
        })
        .collect::<Result<_>>()?;
    let retry_after = verdicts
        .iter()
        .filter(|v| !v.passed)
        .filter_map(|v| v.retry_after)
        .max();
    Ok(Round {
        verdicts,
        retry_after,
    })
}

/// The attempt at `target`, to run on its own thread.
fn attempt(plan: &Plan, target: &Target, until: Instant, cancel: &Cancel) -> Attempt<Raw> {
    match target {
        Target::Http { url, send, .. } => {
            let client = plan.client.clone().expect("an HTTP target has a client");
            let (request, cancel) = (send.request(url), cancel.clone());
            Attempt::new(move || Raw::Http(http_attempt(&client, request, until, &cancel)))
        }
        Target::Tcp { addr } => {
            let addr = addr.clone();
            Attempt::new(move || Raw::Tcp(tcp::connect(&addr, until)))
        }
        Target::Cmd { command } => {
            let (spec, cancel) = (RunSpec::new(command, until), cancel.clone());
            Attempt::with_children(move || Raw::Cmd(runner::run(&spec, &cancel)))
        }
    }
}

/// One request, read whole by `until`; a signal ends it at once (its thread is abandoned on
/// a signal, but it must not go on talking to the service meanwhile).
fn http_attempt(
    client: &HttpClient,
    request: Request,
    until: Instant,
    cancel: &Cancel,
) -> std::result::Result<HttpResponse, AttemptError> {
    client.fetch_request(request, until, BODY_LIMIT, cancel)
}

fn judge(
    target: &Target,
    arrived: Option<Arrived<Raw>>,
    allowed: Duration,
    jq: JqBudget,
) -> Result<Verdict> {
    let Some(Arrived { value: raw, .. }) = arrived else {
        return Ok(Verdict::failed(AttemptError::timed_out(allowed)));
    };
    Ok(match (target, raw) {
        (Target::Http { checks, .. }, Raw::Http(Ok(response))) => {
            judge_http(checks, &response, jq)?
        }
        (_, Raw::Http(Err(e)) | Raw::Tcp(Err(e))) => Verdict::failed(e),
        (_, Raw::Tcp(Ok(latency))) => Verdict {
            passed: true,
            latency: Some(latency),
            ..Verdict::default()
        },
        (_, Raw::Cmd(Ok(outcome))) => judge_cmd(&outcome),
        (_, Raw::Cmd(Err(e))) => Verdict::failed(AttemptError::new(e.message)),
        (_, Raw::Http(Ok(_))) => unreachable!("only an HTTP target fetches"),
    })
}

fn judge_cmd(outcome: &RunOutcome) -> Verdict {
    let mut verdict = Verdict {
        passed: outcome.success(),
        timed_out: outcome.ended == Ended::TimedOut,
        exit_code: outcome.exit_code(),
        latency: Some(outcome.elapsed),
        excerpt: Some(outcome.said_excerpt(EXCERPT_BYTES)).filter(|e| !e.is_empty()),
        ..Verdict::default()
    };
    if !outcome.success() {
        // The last thing the command said on stderr is usually why it failed.
        let said = last_line(&outcome.stderr)
            .map(|line| format!(": '{}'", excerpt(line, QUOTE_BYTES)))
            .unwrap_or_default();
        verdict.missed(
            Miss::Command(outcome.ended),
            format!("{}{said}", outcome.describe()),
        );
    }
    verdict
}

/// The last line of `bytes` with something in it.
fn last_line(bytes: &[u8]) -> Option<&[u8]> {
    bytes
        .split(|b| *b == b'\n')
        .rev()
        .find(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
}

fn judge_http(checks: &HttpChecks, response: &HttpResponse, jq: JqBudget) -> Result<Verdict> {
    let mut verdict = Verdict {
        status: Some(response.status),
        latency: Some(response.latency),
        excerpt: Some(excerpt(&response.body, EXCERPT_BYTES)),
        retry_after: response.retry_after,
        ..Verdict::default()
    };
    // The body is parsed only when an assertion needs JSON.
    let json = checks.needs_json().then(|| json_body(response));
    verdict.fatal = fail_fast(checks, response, json.as_ref(), jq)?;
    if let Some(missed) = checks.expect.judge(response, json.as_ref(), jq)? {
        verdict.missed(missed.kind.into(), missed.reason);
    } else if let Some(Ok(body)) = &json
        && let Some((found, reason)) = check_version(checks, body, &response.body, jq)?
    {
        verdict.other_version = found;
        verdict.missed(Miss::Assertion, reason);
    }
    verdict.passed = verdict.reason.is_none() && verdict.fatal.is_none();
    Ok(verdict)
}

/// A fail-fast condition that matched, in words: it ends the wait whatever else holds.
fn fail_fast(
    checks: &HttpChecks,
    response: &HttpResponse,
    json: Option<&std::result::Result<JqInput, String>>,
    jq: JqBudget,
) -> Result<Option<String>> {
    if let Some(Ok(body)) = json {
        for expr in &checks.fail_if {
            if expr.holds_until(body, jq.until, jq.cancel)? == Ok(true) {
                return Ok(Some(format!(
                    "--fail-if '{}' is true (body '{}')",
                    expr.text(),
                    excerpt(&response.body, QUOTE_BYTES)
                )));
            }
        }
    }
    Ok(checks
        .fail_status
        .as_ref()
        .filter(|set| set.contains(response.status))
        .map(|_| format!("status {} matches --fail-status", status_text(response))))
}

/// Whether the body names the `--expect-version`: `None` when it does (or none is
/// expected), else why not, with the other version it names (what
/// `--fail-if-version-differs` counts).
fn check_version(
    checks: &HttpChecks,
    body: &JqInput,
    raw: &[u8],
    jq: JqBudget,
) -> Result<Option<(Option<String>, String)>> {
    let Some(wanted) = checks.expect_version.as_ref() else {
        return Ok(None);
    };
    Ok(match first_text(&checks.version_path, body, jq)? {
        Ok(Some(found)) if version::same(&found, wanted) => None,
        Ok(Some(found)) => {
            let reason = format!("version {found}, expecting {wanted}");
            Some((Some(found), reason))
        }
        Ok(None) => Some((
            None,
            format!(
                "no version at {} in the body{}",
                checks.version_path.text(),
                version_hint(raw)
            ),
        )),
        Err(e) => Some((None, e)),
    })
}

/// At most this many paths are suggested.
const HINT_PATHS: usize = 5;

/// `; paths that look like versions: .datasette.version ("0.64.8"), …; give --version-path`:
/// where the body keeps something that looks like a version, for a body that has none at
/// `--version-path` (empty when it has nothing of the kind).
fn version_hint(raw: &[u8]) -> String {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return String::new();
    };
    let mut found = Vec::new();
    version_like_paths(&body, String::new(), 0, &mut found);
    if found.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = found
        .iter()
        .take(HINT_PATHS)
        .map(|(path, value)| format!("{path} (\"{}\")", excerpt(value.as_bytes(), QUOTE_BYTES)))
        .collect();
    format!(
        "; paths that look like versions: {}; give the one to read with --version-path",
        shown.join(", ")
    )
}

/// How deep the search for versions goes into a body.
const HINT_DEPTH: usize = 6;

/// Every path (in jq syntax, in the body's order) to a string that looks like a version.
fn version_like_paths(
    value: &serde_json::Value,
    path: String,
    depth: usize,
    found: &mut Vec<(String, String)>,
) {
    use serde_json::Value;
    if depth > HINT_DEPTH || found.len() > HINT_PATHS {
        return;
    }
    match value {
        Value::String(text) if looks_like_version(text) => {
            let path = if path.is_empty() { ".".into() } else { path };
            found.push((path, text.clone()));
        }
        Value::Object(map) => {
            for (key, inner) in map {
                version_like_paths(inner, format!("{path}{}", jq_key(key)), depth + 1, found);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                version_like_paths(inner, format!("{path}[{index}]"), depth + 1, found);
            }
        }
        _ => {}
    }
}

/// `.name`, or `["odd key"]` for a key jq cannot take bare.
fn jq_key(key: &str) -> String {
    let bare = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if bare {
        format!(".{key}")
    } else {
        format!("[{}]", serde_json::Value::String(key.to_string()))
    }
}

/// `1.2`, `v1.2.3`, `0.65.0rc1`, `2.0.0-beta.1+build5`: numbers joined by dots (at least two),
/// an optional `v`, an optional label after.
fn looks_like_version(text: &str) -> bool {
    let rest = text.strip_prefix(['v', 'V']).unwrap_or(text);
    let numeric_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (numbers, label) = rest.split_at(numeric_end);
    let parts: Vec<&str> = numbers.split('.').collect();
    parts.len() >= 2
        && parts.iter().all(|p| !p.is_empty())
        && label.len() <= 32
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
}

/// What stderr last said about a target; a new line is printed when this changes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shown {
    Passing,
    Failing(Miss),
    Down,
    Slow,
    StillUp,
}

impl Shown {
    fn of(verdict: &Verdict, until_down: bool) -> Self {
        match (verdict.meets(until_down), until_down) {
            (true, false) => Shown::Passing,
            (false, false) => Shown::Failing(verdict.miss.clone()),
            (true, true) => Shown::Down,
            (false, true) if verdict.timed_out => Shown::Slow,
            (false, true) => Shown::StillUp,
        }
    }

    fn word(&self) -> &'static str {
        match self {
            Shown::Passing => "passing",
            Shown::Failing(_) => "failing",
            Shown::Down => "down",
            Shown::Slow => "not answering in time (slow, not down)",
            Shown::StillUp => "still up",
        }
    }
}

/// What the record and stderr say about one target over the whole wait.
#[derive(Debug)]
pub struct TargetState {
    pub label: String,
    kind: TargetKind,
    pub attempts: u64,
    passes: u64,
    last: Option<Verdict>,
    /// Whether the last real answer met the goal.
    met: bool,
    /// The last reason it did not meet the goal.
    last_miss: Option<String>,
    pub fatal: Option<String>,
    shown: Option<Shown>,
    /// `--fail-if-version-differs N`, and the other version answering now, for how many
    /// rounds in a row.
    version_differs: Option<u32>,
    other_version: Option<(String, u32)>,
}

impl TargetState {
    pub fn new(target: &Target, version_differs: Option<u32>) -> Self {
        TargetState {
            version_differs,
            other_version: None,
            label: target.label(),
            kind: target.kind(),
            attempts: 0,
            passes: 0,
            last: None,
            met: false,
            last_miss: None,
            fatal: None,
            shown: None,
        }
    }

    /// Take one verdict; returns a line for stderr when the state changed.
    pub fn record(&mut self, verdict: Verdict, until_down: bool) -> Option<String> {
        self.attempts += 1;
        if verdict.cut_by_deadline && self.last.is_some() {
            // Keep the last real answer: "timed out after 91 ms" at the deadline says nothing.
            return None;
        }
        if verdict.passed {
            self.passes += 1;
        }
        self.fatal.clone_from(&verdict.fatal);
        if self.fatal.is_none() {
            self.fatal = self.count_other_version(&verdict);
        }
        self.met = verdict.meets(until_down);
        let detail = describe(&verdict);
        if !self.met {
            self.last_miss = Some(match (until_down, verdict.timed_out) {
                (false, _) => detail.clone(),
                (true, true) => format!("{detail}: slow, not down"),
                (true, false) if detail.is_empty() => "still answering (ok)".to_string(),
                (true, false) => format!("still answering ({detail})"),
            });
        }
        let shown = Shown::of(&verdict, until_down);
        let line = (self.shown.as_ref() != Some(&shown)).then(|| {
            if detail.is_empty() {
                format!("{}: {}", self.label, shown.word())
            } else {
                format!("{}: {} ({detail})", self.label, shown.word())
            }
        });
        self.shown = Some(shown);
        self.last = Some(verdict);
        line
    }

    /// Count a round that answered another version (the same one as the round before, or the
    /// count starts again); at `--fail-if-version-differs` rounds, why the wait ends.
    fn count_other_version(&mut self, verdict: &Verdict) -> Option<String> {
        let limit = self.version_differs?;
        let Some(found) = verdict.other_version.clone() else {
            self.other_version = None;
            return None;
        };
        let rounds = match self.other_version.take() {
            Some((before, rounds)) if before == found => rounds + 1,
            _ => 1,
        };
        self.other_version = Some((found.clone(), rounds));
        (rounds >= limit).then(|| {
            format!(
                "{} (the same {} {} in a row, --fail-if-version-differs {limit}): another release answers",
                verdict.reason.clone().unwrap_or_else(|| format!("version {found}")),
                rounds,
                if rounds == 1 { "round" } else { "rounds" },
            )
        })
    }

    pub fn goal_met(&self) -> bool {
        self.met
    }

    pub fn has_missed(&self) -> bool {
        self.last_miss.is_some()
    }

    pub fn last_failure(&self, until_down: bool) -> String {
        self.last_miss.clone().unwrap_or_else(|| {
            if until_down {
                "still answering".into()
            } else {
                "never checked".into()
            }
        })
    }

    pub fn to_result(&self) -> WaitTarget {
        let last = self.last.clone().unwrap_or_default();
        WaitTarget {
            target: self.label.clone(),
            kind: self.kind,
            attempts: self.attempts,
            passes: self.passes,
            passing: last.passed,
            last_status: last.status,
            last_exit: last.exit_code,
            last_error: last.fatal.or(last.reason),
            last_latency_ms: last.latency.map(millis),
            body_excerpt: last.excerpt,
        }
    }
}

/// A verdict in a few words: `200 in 12 ms`, or why it failed.
fn describe(verdict: &Verdict) -> String {
    if !verdict.passed {
        return verdict.reason.clone().unwrap_or_default();
    }
    match (verdict.status, verdict.latency) {
        (Some(code), Some(latency)) => format!("{code} in {}", human(latency)),
        (None, Some(latency)) => format!("in {}", human(latency)),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use ugw_shared::http::{HttpConfig, Method};
    use ugw_shared::scrub::Scrubber;

    /// What SIGTERM trips the token with (the tool crate does not link libc).
    const SIGTERM: i32 = 15;

    #[test]
    fn a_signal_ends_an_http_attempt_in_flight_at_once() {
        // A server that takes the request and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().take(1).collect();
            std::thread::sleep(Duration::from_secs(30));
            drop(held);
        });
        let client = HttpClient::new(HttpConfig::default(), &Scrubber::default()).unwrap();
        let cancel = Cancel::default();
        let trip = cancel.clone();
        let tripped_at = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            trip.trip(SIGTERM);
            Instant::now()
        });
        let until = Instant::now() + Duration::from_secs(20);
        let request = Request::new(Method::POST, &url).body("x");
        let err = http_attempt(&client, request, until, &cancel).unwrap_err();
        let ended = Instant::now();
        let tripped_at = tripped_at.join().unwrap();
        assert!(
            ended.saturating_duration_since(tripped_at) < Duration::from_millis(150),
            "the attempt ended {:?} after the signal: {err}",
            ended - tripped_at
        );
        assert!(!err.timed_out, "{err}");
    }
}
