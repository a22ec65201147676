//! One round of probes: every target is checked at the same time, each on its own thread so
//! that a hung server or command can be abandoned at the deadline, and the answers are judged
//! against the plan here, on the calling thread.

use crate::plan::Plan;
use serde_json::{Value, json};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use ugw_shared::cancel::Cancel;
use ugw_shared::http::HttpResponse;
use ugw_shared::jq::{JqInput, parse_json};
use ugw_shared::poll::AttemptError;
use ugw_shared::runner::{self, Ended, RunOutcome, RunSpec};
use ugw_shared::scrub::excerpt;
use ugw_shared::time::{human, millis};
use ugw_shared::{Result, tcp, version};

/// How much of a body goes into the record.
const EXCERPT_BYTES: usize = 512;
/// How much of a body is read for the assertions.
const BODY_LIMIT: usize = 1024 * 1024;
/// After a signal, how long a command probe gets to kill its process group.
const KILL_GRACE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub enum Target {
    Http { url: String },
    Tcp { addr: String },
    Cmd { command: String },
}

impl Target {
    pub fn label(&self) -> String {
        match self {
            Target::Http { url } => url.clone(),
            Target::Tcp { addr } => format!("tcp {addr}"),
            Target::Cmd { command } => format!("cmd '{command}'"),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Target::Http { .. } => "http",
            Target::Tcp { .. } => "tcp",
            Target::Cmd { .. } => "cmd",
        }
    }
}

/// What one attempt at one target found.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub passed: bool,
    /// Why it did not pass.
    pub reason: Option<String>,
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
}

impl Verdict {
    fn failed(error: AttemptError) -> Self {
        Verdict {
            reason: Some(error.message),
            timed_out: error.timed_out,
            ..Verdict::default()
        }
    }

    /// Whether this answer meets the goal: passing, or with --until-down, failing for real.
    fn meets(&self, until_down: bool) -> bool {
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

enum Raw {
    Http(std::result::Result<HttpResponse, AttemptError>),
    Tcp(std::result::Result<Duration, AttemptError>),
    Cmd(Result<RunOutcome>),
}

/// Check every target once, all attempts ending by `until`; judging them (jq included) ends
/// by the overall `deadline`.
pub fn run_round(plan: &Plan, until: Instant, deadline: Instant, cancel: &Cancel) -> Result<Round> {
    let until_is_deadline = until >= deadline;
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    for (index, target) in plan.targets.iter().enumerate() {
        let tx = tx.clone();
        let target = target.clone();
        let client = plan.client.clone();
        let method = plan.method.clone();
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            let raw = match &target {
                Target::Http { url } => Raw::Http(
                    client
                        .expect("an HTTP target has a client")
                        .fetch(&method, url, until, BODY_LIMIT),
                ),
                Target::Tcp { addr } => Raw::Tcp(tcp::connect(addr, until)),
                Target::Cmd { command } => {
                    Raw::Cmd(runner::run(&RunSpec::new(command, until), &cancel))
                }
            };
            let _ = tx.send((index, raw));
        });
    }
    drop(tx);
    let mut raws: Vec<Option<Raw>> = plan.targets.iter().map(|_| None).collect();
    let mut arrived: Vec<Option<Instant>> = plan.targets.iter().map(|_| None).collect();
    let mut missing = raws.len();
    // A little slack past `until`: the probes enforce it themselves, this only covers a
    // thread that is slow to report; a probe still out after it is abandoned.
    let collect_until = until + Duration::from_millis(15);
    while missing > 0 {
        match cancel.recv_until(&rx, collect_until) {
            Ok(Some((index, raw))) => {
                raws[index] = Some(raw);
                arrived[index] = Some(Instant::now());
                missing -= 1;
            }
            Ok(None) => break,
            Err(interrupted) => {
                // Command probes kill their process groups within a few milliseconds; give them
                // that, and nothing to HTTP and TCP probes, which hold no children.
                let commands_out = plan
                    .targets
                    .iter()
                    .zip(&raws)
                    .filter(|(t, r)| matches!(t, Target::Cmd { .. }) && r.is_none())
                    .count();
                let grace = Instant::now() + KILL_GRACE;
                let mut reported = 0;
                while reported < commands_out {
                    match rx.recv_timeout(grace.saturating_duration_since(Instant::now())) {
                        Ok((_, Raw::Cmd(_))) => reported += 1,
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                return Err(interrupted);
            }
        }
    }
    let mut verdicts: Vec<Verdict> = raws
        .into_iter()
        .map(|raw| {
            Ok(match raw {
                None => Verdict::failed(AttemptError::timed_out(
                    until.saturating_duration_since(started),
                )),
                Some(Raw::Http(Ok(response))) => judge_http(plan, &response, deadline, cancel)?,
                Some(Raw::Http(Err(e)) | Raw::Tcp(Err(e))) => Verdict::failed(e),
                Some(Raw::Tcp(Ok(latency))) => Verdict {
                    passed: true,
                    latency: Some(latency),
                    ..Verdict::default()
                },
                Some(Raw::Cmd(Ok(outcome))) => judge_cmd(&outcome),
                Some(Raw::Cmd(Err(e))) => Verdict::failed(AttemptError::new(e.message)),
            })
        })
        .collect::<Result<_>>()?;
    // In a round cut short by the overall deadline, a timeout (or an answer that came only as
    // the deadline struck) is the deadline's doing, not news about the target.
    let cut_at = until.checked_sub(Duration::from_millis(5)).unwrap_or(until);
    for (verdict, arrived) in verdicts.iter_mut().zip(arrived) {
        verdict.cut_by_deadline = until_is_deadline
            && !verdict.passed
            && (verdict.timed_out || arrived.is_none_or(|at| at >= cut_at));
    }
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

fn judge_cmd(outcome: &RunOutcome) -> Verdict {
    let output = if outcome.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        &outcome.stderr
    } else {
        &outcome.stdout
    };
    Verdict {
        passed: outcome.success(),
        reason: (!outcome.success()).then(|| outcome.describe()),
        timed_out: outcome.ended == Ended::TimedOut,
        exit_code: match outcome.ended {
            Ended::Exited(code) => Some(code),
            _ => None,
        },
        latency: Some(outcome.elapsed),
        excerpt: Some(excerpt(output, EXCERPT_BYTES)).filter(|e| !e.is_empty()),
        ..Verdict::default()
    }
}

/// A runaway jq expression ends the run at `deadline` (kind `timeout`), or at a signal.
fn judge_http(
    plan: &Plan,
    response: &HttpResponse,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<Verdict> {
    let mut verdict = Verdict {
        status: Some(response.status),
        latency: Some(response.latency),
        excerpt: Some(excerpt(&response.body, EXCERPT_BYTES)),
        retry_after: response.retry_after,
        ..Verdict::default()
    };
    // The body is parsed only when an assertion needs JSON.
    let json = plan.needs_json().then(|| parse_json(&response.body));
    // Fail-fast conditions first: they end the wait whatever else holds.
    if plan
        .fail_status
        .as_ref()
        .is_some_and(|set| set.contains(response.status))
    {
        verdict.fatal = Some(format!(
            "status {} matches --fail-status",
            status_text(response)
        ));
    }
    if let Some(Ok(body)) = &json {
        for expr in &plan.fail_if {
            if expr.holds_until(body, deadline, cancel)?.unwrap_or(false) {
                verdict.fatal = Some(format!(
                    "--fail-if '{}' is true (body '{}')",
                    expr.text(),
                    excerpt(&response.body, 80)
                ));
                break;
            }
        }
    }
    verdict.reason = check_http(plan, response, json.as_ref(), deadline, cancel)?;
    verdict.passed = verdict.reason.is_none() && verdict.fatal.is_none();
    Ok(verdict)
}

/// The first assertion that fails, in words; `None` when all hold. `Err` only when a jq
/// expression outlives the deadline or a signal arrives.
fn check_http(
    plan: &Plan,
    response: &HttpResponse,
    json: Option<&std::result::Result<JqInput, String>>,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<Option<String>> {
    if !plan.status.contains(response.status) {
        return Ok(Some(format!("status {}", status_text(response))));
    }
    if let Some(max) = plan.max_latency.filter(|max| response.latency > *max) {
        return Ok(Some(format!(
            "answered in {}, over --max-latency {}",
            human(response.latency),
            human(max)
        )));
    }
    if response.truncated && (!plan.expect.is_empty() || plan.expect_version.is_some()) {
        return Ok(Some(format!(
            "the body is larger than {} KiB",
            BODY_LIMIT / 1024
        )));
    }
    if let Some(re) = &plan.body_regex
        && !re.is_match(&String::from_utf8_lossy(&response.body))
    {
        return Ok(Some(format!(
            "the body does not match --body-regex '{}': '{}'",
            re.as_str(),
            excerpt(&response.body, 80)
        )));
    }
    if plan.expect.is_empty() && plan.expect_version.is_none() {
        return Ok(None);
    }
    let body = match json {
        None => return Ok(None),
        Some(Ok(body)) => body,
        Some(Err(e)) => return Ok(Some(e.clone())),
    };
    for expr in &plan.expect {
        match expr.eval_until(body, deadline, cancel)? {
            Ok(outputs) if outputs.holds() => {}
            Ok(outputs) => {
                return Ok(Some(format!(
                    "--expect '{}' is not true: it gave {} (body '{}')",
                    expr.text(),
                    outputs.shown(80),
                    excerpt(&response.body, 80)
                )));
            }
            Err(e) => return Ok(Some(e)),
        }
    }
    if let Some(wanted) = &plan.expect_version {
        match plan
            .version_path
            .eval_until(body, deadline, cancel)?
            .map(|outputs| outputs.first_text())
        {
            Ok(Some(found)) if version::same(&found, wanted) => {}
            Ok(Some(found)) => return Ok(Some(format!("version {found}, expecting {wanted}"))),
            Ok(None) => {
                return Ok(Some(format!(
                    "no version at {} in the body",
                    plan.version_path.text()
                )));
            }
            Err(e) => return Ok(Some(e)),
        }
    }
    Ok(None)
}

fn status_text(response: &HttpResponse) -> String {
    if response.reason.is_empty() {
        response.status.to_string()
    } else {
        format!("{} {}", response.status, response.reason)
    }
}

/// What the record and stderr say about one target over the whole wait.
#[derive(Debug)]
pub struct TargetState {
    pub label: String,
    kind: &'static str,
    pub attempts: u64,
    passes: u64,
    last: Option<Verdict>,
    /// Whether the last answer met the goal.
    met: bool,
    /// The last reason it did not meet the goal.
    last_miss: Option<String>,
    pub fatal: Option<String>,
    shown: Option<String>,
}

impl TargetState {
    pub fn new(target: &Target) -> Self {
        TargetState {
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
        self.met = verdict.meets(until_down);
        let state = match (self.met, until_down) {
            (true, false) => "passing",
            (false, false) => "failing",
            (true, true) => "down",
            (false, true) if verdict.timed_out => "not answering in time (slow, not down)",
            (false, true) => "still up",
        };
        let detail = if verdict.passed {
            match (verdict.status, verdict.latency) {
                (Some(code), Some(latency)) => format!("{code} in {}", human(latency)),
                (None, Some(latency)) => format!("in {}", human(latency)),
                _ => String::new(),
            }
        } else {
            verdict.reason.clone().unwrap_or_default()
        };
        if !self.met {
            self.last_miss = Some(match (until_down, verdict.timed_out) {
                (false, _) => detail.clone(),
                (true, true) => format!("{detail}: slow, not down"),
                (true, false) => format!(
                    "still answering ({})",
                    if detail.is_empty() { "ok" } else { &detail }
                ),
            });
        }
        // One line per change: the state, or the kind of failure (digits folded away so a
        // changing latency is not a change).
        let folded = if self.met {
            String::new()
        } else {
            detail.replace(|c: char| c.is_ascii_digit(), "")
        };
        let key = format!("{state}:{folded}");
        let line = (self.shown.as_deref() != Some(key.as_str())).then(|| {
            if detail.is_empty() {
                format!("{}: {state}", self.label)
            } else {
                format!("{}: {state} ({detail})", self.label)
            }
        });
        self.shown = Some(key);
        self.last = Some(verdict);
        line
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

    pub fn to_json(&self) -> Value {
        let last = self.last.clone().unwrap_or_default();
        json!({
            "target": self.label,
            "kind": self.kind,
            "attempts": self.attempts,
            "passes": self.passes,
            "passing": last.passed,
            "last_status": last.status,
            "last_exit": last.exit_code,
            "last_error": last.fatal.or(last.reason),
            "last_latency_ms": last.latency.map(millis),
            "body_excerpt": last.excerpt,
        })
    }
}
