//! ugw-verify: replaces the runbook's last lines, `curl /health/ready | jq`, a smoke test by
//! hand, and "compare with baseline: latency similar, errors not up, memory stable", which
//! nobody measures. It runs named checks (HTTP, TLS, commands, Prometheus metrics, fleet
//! versions) in parallel with their own deadlines, and compares what they measure with a
//! baseline taken before the upgrade.
#![forbid(unsafe_code)]

mod baseline;
mod check;
mod cmd;
mod compare;
mod earlier;
mod flags;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod junit;
mod metrics;
mod plan;
mod schedule;
mod spec;
mod strict_json;
mod table;
mod template;
mod tls;
mod versions;

use check::{Shared, Verdict};
use clap::{Arg, ArgMatches, Command};
use compare::Tolerances;
use serde::Serialize;
use spec::Check;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use ugw_shared::cli::flag;
use ugw_shared::http::scoped::{Positioned, positioned};
use ugw_shared::http::{self, HttpClient, HttpFlags};
use ugw_shared::jq::JqInput;
use ugw_shared::results::{CheckResult, Comparison, Verified, VerifyBaseline};
use ugw_shared::time::{millis, parse_duration, rfc3339_millis};
use ugw_shared::{Ctx, Error, ErrorKind, Result, StepResult, tool_command};

const EXAMPLES: &str = "\
Examples:
  # The service answers ready, with the version just fetched, within 300 ms:
  ugw-verify --http http://127.0.0.1:8080/health/ready --expect '.status == \"ok\"' --max-latency 300ms

  # The checks of a file, four at a time, with a JUnit report for CI:
  ugw-verify --checks smoke.json --parallel 4 --junit verify-junit.xml

  # Before the upgrade, measure; after it, compare (p95 +20%, errors +0.1 points, memory +25%):
  ugw-verify baseline --checks smoke.json --record upgrade.json --new
  ugw-verify --checks smoke.json --compare --record upgrade.json

  # A baseline kept in a file of its own, and a stricter latency tolerance:
  ugw-verify baseline --checks smoke.json --save baseline.json
  ugw-verify --checks smoke.json --compare --baseline baseline.json --latency-tolerance 10%
";

/// The subcommand that measures before an upgrade.
const BASELINE_COMMAND: &str = "baseline";

/// The flags that define checks and how they run, as given to the main command or to
/// `baseline`; `--status`, `--expect` and `--max-latency` with their positions, since each
/// applies to the `--http` before it (or, before the first, to every one).
#[derive(Debug, Default)]
pub(crate) struct CheckFlags {
    pub checks: Option<PathBuf>,
    pub http: Vec<Positioned<String>>,
    pub status: Vec<Positioned<String>>,
    pub expect: Vec<Positioned<String>>,
    pub max_latency: Vec<Positioned<Duration>>,
    pub cmd: Vec<Positioned<String>>,
    pub parallel: usize,
    pub junit: Option<PathBuf>,
    pub client: HttpFlags,
}

/// The ids of the check flags, each written once: `check_args()` defines them, and
/// `from_matches` reads them.
impl CheckFlags {
    const CHECKS: &str = "checks";
    const HTTP: &str = "http";
    const STATUS: &str = "status";
    const EXPECT: &str = "expect";
    const MAX_LATENCY: &str = "max-latency";
    const CMD: &str = "cmd";
    const PARALLEL: &str = "parallel";
    const JUNIT: &str = "junit";

    fn from_matches(m: &ArgMatches) -> Self {
        CheckFlags {
            checks: m.get_one::<PathBuf>(CheckFlags::CHECKS).cloned(),
            http: positioned(m, CheckFlags::HTTP),
            status: positioned(m, CheckFlags::STATUS),
            expect: positioned(m, CheckFlags::EXPECT),
            max_latency: positioned(m, CheckFlags::MAX_LATENCY),
            cmd: positioned(m, CheckFlags::CMD),
            // It has a default in `check_args()`, which clap always fills in.
            parallel: *m
                .get_one::<u32>(CheckFlags::PARALLEL)
                .expect("--parallel has a default") as usize,
            junit: m.get_one::<PathBuf>(CheckFlags::JUNIT).cloned(),
            client: HttpFlags::from_matches(m),
        }
    }

    /// The flag that names a check, when one was given on the command line.
    fn names_a_check(&self) -> Option<&'static str> {
        if !self.http.is_empty() {
            Some(CheckFlags::HTTP)
        } else if !self.cmd.is_empty() {
            Some(CheckFlags::CMD)
        } else {
            None
        }
    }
}

/// Every flag of this tool, read once from clap's matches; nothing below `run` sees them.
#[derive(Debug)]
pub(crate) struct Options {
    mode: Mode,
    /// The check flags of the command that runs (the main one, or `baseline`).
    checks: CheckFlags,
    /// A check flag given to the main command when `baseline` runs (a mistake).
    before_baseline: Option<&'static str>,
    compare: bool,
    baseline: Option<PathBuf>,
    baseline_any_host: bool,
    tolerances: Tolerances,
    save: Option<PathBuf>,
}

/// The ids of the other flags, each written once: `command()` and `compare_args()` define
/// them, and `from_matches` reads them.
impl Options {
    const SAVE: &str = "save";
    const COMPARE: &str = "compare";
    const BASELINE: &str = "baseline";
    const BASELINE_ANY_HOST: &str = "baseline-any-host";
    const LATENCY_TOLERANCE: &str = "latency-tolerance";
    const LATENCY_FLOOR: &str = "latency-floor";
    const ERROR_TOLERANCE: &str = "error-tolerance";
    const MEMORY_TOLERANCE: &str = "memory-tolerance";
    const MEMORY_FLOOR: &str = "memory-floor";

    fn from_matches(m: &ArgMatches) -> Self {
        let main = CheckFlags::from_matches(m);
        let (mode, checks, before_baseline) = match m.subcommand() {
            Some((BASELINE_COMMAND, sub)) => {
                // `--checks` counts only as given on the command line (it has no default).
                let given = main
                    .checks
                    .as_ref()
                    .map(|_| CheckFlags::CHECKS)
                    .or_else(|| main.names_a_check());
                (Mode::Baseline, CheckFlags::from_matches(sub), given)
            }
            _ => (Mode::Verify, main, None),
        };
        let save = match m.subcommand() {
            Some((BASELINE_COMMAND, sub)) => sub.get_one::<PathBuf>(Options::SAVE).cloned(),
            _ => None,
        };
        let fraction = |id: &str| m.get_one::<f64>(id).copied().unwrap_or_default();
        Options {
            mode,
            checks,
            before_baseline,
            compare: m.get_flag(Options::COMPARE),
            baseline: m.get_one::<PathBuf>(Options::BASELINE).cloned(),
            baseline_any_host: m.get_flag(Options::BASELINE_ANY_HOST),
            tolerances: Tolerances {
                latency: fraction(Options::LATENCY_TOLERANCE),
                latency_floor: m
                    .get_one::<Duration>(Options::LATENCY_FLOOR)
                    .copied()
                    .unwrap_or_default(),
                errors: fraction(Options::ERROR_TOLERANCE),
                memory: fraction(Options::MEMORY_TOLERANCE),
                memory_floor: fraction(Options::MEMORY_FLOOR),
            },
            save,
        }
    }
}

/// This tool as `cli` and xtask see it: never run after a failure, 5 minutes by default.
#[must_use]
pub fn tool() -> ugw_shared::cli::Tool {
    ugw_shared::cli::Tool::new(command(), run).default_timeout("5m")
}

/// The flags that define checks, and how they run; the main command and `baseline` both
/// take them.
fn check_args() -> Vec<Arg> {
    let mut args = vec![
        flag::path(
            CheckFlags::CHECKS,
            "FILE.json",
            "Run the checks of this file ({\"checks\": [...]}; see below)",
        ),
        flag::repeated_text(
            CheckFlags::HTTP,
            "URL",
            "Check that a GET of URL answers (the flags after it apply to it)",
        ),
        flag::repeated_text(
            CheckFlags::STATUS,
            "LIST",
            "The status the --http before it must answer: 200, 2xx, 200-299 [default: 2xx]",
        ),
        flag::repeated_text(
            CheckFlags::EXPECT,
            "JQ",
            "A jq expression on the JSON body of the --http before it that must be true (repeatable)",
        ),
        flag::repeated(
            CheckFlags::MAX_LATENCY,
            "DURATION",
            clap::builder::ValueParser::new(parse_duration),
            "The --http before it must answer within this",
        ),
        flag::repeated_text(
            CheckFlags::CMD,
            "COMMAND",
            "Check that a command (sh -c, its own process group) exits 0",
        ),
        flag::value(
            CheckFlags::PARALLEL,
            "N",
            clap::value_parser!(u32).range(1..=64),
            "Run up to N checks at once (a latency check always runs alone)",
        )
        .default_value("4"),
        flag::path(
            CheckFlags::JUNIT,
            "FILE",
            "Also write a JUnit XML report (one testcase per check), e.g. for GitLab's artifacts:reports:junit",
        ),
    ];
    args.extend(http::args());
    args
}

/// The clap command: the common flags, then this tool's own.
#[must_use]
pub fn command() -> Command {
    tool_command(
        "ugw-verify",
        "Prove an upgrade worked: HTTP, TLS, command, metrics and version checks, and a comparison with a baseline",
    )
    .long_about(
        "Run named checks: HTTP requests with status, jq, regex and latency assertions (and N \
         samples judged on p50/p95), TLS certificates, commands, Prometheus metrics, and the \
         versions of a fleet. Checks run in parallel, each with its own timeout; a check waits \
         for those it names in `after` or whose captured values it uses. `baseline` measures \
         before an upgrade; --compare fails a check whose p95 latency, error ratio or memory \
         grew beyond its tolerance. Any failed check: exit 1, kind check_failed; too few \
         samples to judge: kind insufficient_data.\n\n\
         HTTP answers are judged as ugw-wait-healthy judges a --url: the status must be 2xx \
         unless status (--status) says otherwise; a body is read up to 16 MiB (a larger one fails \
         every JSON assertion and capture); a jq expression still running at the check's \
         deadline is never a pass: the check failed as timed out (on a signal, the run is \
         interrupted).\n\n\
         A checks file is {\"checks\": [...]} (or a bare list). Every check has a unique name, a \
         type, and optionally timeout (\"5s\"), after (names it runs after) and always (run even \
         when a check it runs after failed: a cleanup). \
         http: url, method, headers, body (text or JSON), status (2xx), expect (jq expressions), \
         body_regex, max_latency, capture ({\"id\": \".id\"}, used later as ${capture:id}), or \
         samples (N requests) with p50, p95, max_errors (0) and min_samples (20). \
         ${env:NAME} reads the environment in url, headers and body (a header's value is never shown). \
         tls: host, port (443), server_name, min_days (14), cacert. \
         cmd: command (sh -c) or argv, exit (0), stdout_regex, expect (jq on JSON stdout). \
         metrics: url, assert ([\"process_resident_memory_bytes <= 512MiB\"]: a selector with =, \
         !=, =~ matchers, summed, compared with < <= == != >= >), histogram with quantile and max \
         (from bucket deltas over the window), window (\"10s\"), measure ([\"latency\", \
         \"errors\", \"memory\"]), headers (for an endpoint behind a token). \
         versions: urls, path (.version), expect (a version, \"same\", or by default the last \
         ugw-fetch step's), headers. \
         record: expect (jq expressions on the record that came in). \
         Measuring checks (http with samples, metrics with measure) are what baseline keeps and \
         --compare judges.",
    )
    .after_long_help(EXAMPLES)
    .mut_arg("timeout", |a| a.help("Deadline for every check together"))
    .next_help_heading("Checks")
    .args(check_args())
    .next_help_heading("Comparison with a baseline")
    .args(compare_args())
    .subcommand(
        Command::new(BASELINE_COMMAND)
            .about("Measure before an upgrade: run the measuring checks and keep what they saw in the record (or --save FILE)")
            .args(check_args())
            .arg(
                flag::path(Options::SAVE, "FILE", "Also write the baseline to FILE (atomically), for --compare --baseline FILE"),
            ),
    )
}

/// The flags of `--compare`: where the baseline is, and how much worse is too much.
fn compare_args() -> Vec<Arg> {
    let fraction = clap::builder::ValueParser::new(compare::fraction);
    let points = clap::builder::ValueParser::new(compare::points);
    vec![
        flag::switch(Options::COMPARE, "Compare what the measuring checks measure with the baseline (the last ok `ugw-verify baseline` step of the record, or --baseline FILE)"),
        flag::path(Options::BASELINE, "FILE", "Read the baseline from FILE (written by `ugw-verify baseline --save FILE`)")
        .requires(Options::COMPARE),
        flag::switch(Options::BASELINE_ANY_HOST, "Compare with a baseline taken on another host (refused by default: other hardware, other figures)")
        .requires(Options::COMPARE),
        flag::value(Options::LATENCY_TOLERANCE, "PERCENT", fraction.clone(), "Fail when p95 latency grew by more than this")
        .default_value("20%"),
        flag::duration(Options::LATENCY_FLOOR, "A p95 growth smaller than this is noise, never a failure")
        .default_value("5ms"),
        flag::value(Options::ERROR_TOLERANCE, "POINTS", points, "Fail when the error ratio (5xx over all) rose by more than this many percentage points")
        .default_value("0.1"),
        flag::value(Options::MEMORY_TOLERANCE, "PERCENT", fraction, "Fail when resident memory grew by more than this")
        .default_value("25%"),
        flag::value(Options::MEMORY_FLOOR, "SIZE", clap::builder::ValueParser::new(baseline::memory_floor), "A memory growth smaller than this is allocator noise, never a failure")
        .default_value("8MiB"),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Verify,
    Baseline,
}

impl Mode {
    fn word(self) -> &'static str {
        match self {
            Mode::Verify => "verify",
            Mode::Baseline => "baseline",
        }
    }
}

/// `ugw-verify --checks f baseline`: the checks were given to the wrong command.
fn refuse_checks_before_baseline(opts: &Options) -> Result<()> {
    match opts.before_baseline {
        Some(id) => Err(Error::usage(format!(
            "--{id} goes after `baseline` (ugw-verify baseline --{id} ...)"
        ))),
        None => Ok(()),
    }
}

/// The `always` checks keep their own timeouts out of `--timeout`: when that is all of it,
/// the others could not run at all, and the run is refused before it starts.
fn refuse_no_time_left(checks: &[Check], deadline: std::time::Instant) -> Result<()> {
    let reserved = schedule::reserved_for_always(checks);
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    if reserved.is_zero() || reserved < left {
        return Ok(());
    }
    let cleanups: Vec<&str> = checks
        .iter()
        .filter(|c| c.always)
        .map(|c| c.name.as_str())
        .collect();
    Err(Error::usage(format!(
        "the always checks ({}) keep {} for themselves, and --timeout leaves {}: nothing for \
         the others; give a longer --timeout or shorter timeouts to the always checks",
        cleanups.join(", "),
        ugw_shared::time::human(reserved),
        ugw_shared::time::human(left)
    )))
}

/// What a dry run says: the checks it would run, and nothing sent.
/// What a dry-run step of this tool says it would have done (its `mode`).
#[derive(Serialize, serde::Deserialize)]
struct DryRunStep {
    mode: String,
}

impl ugw_shared::results::ToolResult for DryRunStep {
    const TOOL: &'static str = "ugw-verify";
}

/// In a dry run: whether this run's newest ugw-verify step is a dry-run baseline, which
/// `--compare` would have compared with (a whole pipeline can be dry-run).
fn planned_baseline(ctx: &Ctx) -> bool {
    ctx.this_run()
        .dry_run_result::<DryRunStep>(ctx.dry_run)
        .ok()
        .flatten()
        .is_some_and(|step| step.mode == "baseline")
}

fn dry_run(ctx: &Ctx, mode: Mode, checks: &[Check], compare: bool) -> StepResult {
    let would_run: Vec<String> = checks.iter().map(|c| c.name.clone()).collect();
    ctx.reporter
        .info(&format!("dry run: would run {}", would_run.join(", ")));
    let planned = Planned {
        mode: mode.word(),
        would_run,
        compare,
    };
    StepResult::unchanged(serde_json::to_value(planned).expect("a plan serialises"))
}

/// What a dry run says it would do.
#[derive(Serialize)]
struct Planned {
    mode: &'static str,
    would_run: Vec<String>,
    compare: bool,
}

/// Run the checks (and the comparison), report them, and say which failed.
pub fn run(ctx: &mut Ctx, m: &ArgMatches) -> Result<StepResult> {
    let opts = Options::from_matches(m);
    let mode = opts.mode;
    refuse_checks_before_baseline(&opts)?;
    let mut checks = plan::load(ctx, &opts.checks)?;
    if mode == Mode::Baseline {
        checks = baseline::measuring_only(checks)?;
    }
    let baseline = match mode {
        Mode::Verify if opts.compare => {
            match baseline::find(ctx, opts.baseline.as_deref(), &checks) {
                // The baseline step before may have been a dry run too: nothing to find yet.
                Err(e) if ctx.dry_run && opts.baseline.is_none() => {
                    if planned_baseline(ctx) {
                        ctx.reporter.info(
                            "dry run: would compare with the baseline of this run's dry-run \
                             `ugw-verify baseline` step (not measured: dry-run)",
                        );
                    } else {
                        ctx.reporter.warn(&format!("dry run: {}", e.message));
                    }
                    None
                }
                found => Some(found?),
            }
        }
        _ => None,
    };
    if let Some(b) = &baseline {
        baseline::same_host(ctx, opts.baseline_any_host, b)?;
    }
    if let Some(path) = &opts.checks.junit {
        junit::check_writable(path, !ctx.dry_run)?;
    }
    let deadline = ctx.step_deadline();
    refuse_no_time_left(&checks, deadline)?;
    if ctx.dry_run {
        let compare =
            baseline.is_some() || (mode == Mode::Verify && opts.compare && planned_baseline(ctx));
        return Ok(dry_run(ctx, mode, &checks, compare));
    }
    let shared = Arc::new(Shared {
        client: HttpClient::new(opts.checks.client.config(ctx.scrubber())?, ctx.scrubber())?,
        record: incoming(ctx),
        scrubber: ctx.scrubber().clone(),
        cancel: ctx.cancel.clone(),
    });
    let checks: Vec<Arc<Check>> = checks.into_iter().map(Arc::new).collect();
    ctx.reporter
        .info(&format!("running {} checks", checks.len()));
    let ran = schedule::run_all(&checks, &shared, opts.checks.parallel, deadline)?;
    let mut results: Vec<CheckResult> = checks
        .iter()
        .zip(ran)
        .map(|(c, r)| result_of(c, r))
        .collect();
    let comparison = baseline
        .as_ref()
        .map(|b| baseline::apply(&mut results, &checks, b, &opts.tolerances))
        .unwrap_or_default();
    table::show(&ctx.reporter, &results, &comparison);
    if let Some(path) = &opts.checks.junit {
        let xml = junit::render(
            &results,
            ctx.started.elapsed().as_secs_f64(),
            &ctx.host,
            ctx.scrubber(),
        );
        ugw_shared::atomic::write_atomic(path, xml.as_bytes())?;
    }
    finish(ctx, mode, opts.save.as_deref(), results, comparison)
}

/// The record that came in, as jq sees it (scrubbed, as it would be shown).
fn incoming(ctx: &Ctx) -> JqInput {
    let text = ctx.record().to_json(false, ctx.scrubber());
    let value: serde_json::Value = serde_json::from_str(&text).expect("a record is JSON");
    JqInput::from_value(&value)
}

/// The step's result, or the failure that lists the checks that did not pass.
fn finish(
    ctx: &Ctx,
    mode: Mode,
    save: Option<&std::path::Path>,
    checks: Vec<CheckResult>,
    comparison: Vec<Comparison>,
) -> Result<StepResult> {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.clone())
        .collect();
    let baseline = (mode == Mode::Baseline).then(|| VerifyBaseline {
        taken: rfc3339_millis(std::time::SystemTime::now()),
        host: ctx.host.clone(),
        checks: checks
            .iter()
            .filter_map(|c| Some((c.name.clone(), c.observation.clone()?)))
            .collect(),
    });
    let verified = Verified {
        mode: mode.word().into(),
        passed: checks.iter().filter(|c| c.ok).count() as u64,
        failed: failed.clone(),
        checks,
        comparison,
        baseline,
    };
    let value = serde_json::to_value(&verified).expect("a verify result serialises");
    if !failed.is_empty() {
        let short_of_data = verified
            .checks
            .iter()
            .filter(|c| !c.ok)
            .all(|c| c.outcome == Verdict::Insufficient.word());
        let (kind, what) = if short_of_data {
            (ErrorKind::InsufficientData, "too few samples to judge")
        } else {
            (ErrorKind::CheckFailed, "checks failed")
        };
        return Err(Error::new(kind, format!("{what}: {}", failed.join(", "))).with_result(value));
    }
    if let (Some(path), Some(baseline)) = (save, &verified.baseline) {
        let text = serde_json::to_string_pretty(baseline).expect("a baseline serialises") + "\n";
        ugw_shared::atomic::write_atomic(path, text.as_bytes())?;
        ctx.reporter
            .info(&format!("baseline saved to {}", path.display()));
    }
    ctx.reporter
        .info(&format!("{} checks passed", verified.passed));
    Ok(StepResult::typed(false, &verified))
}

fn result_of(check: &Check, ran: schedule::Ran) -> CheckResult {
    let o = ran.outcome;
    CheckResult {
        name: check.name.clone(),
        kind: check.kind.word().into(),
        ok: o.verdict == Verdict::Passed,
        outcome: o.verdict.word().into(),
        expected: o.expected,
        observed: o.observed,
        elapsed_ms: millis(ran.elapsed),
        message: o.message,
        observation: o.observation,
        captured: o.captured.into_iter().map(|(name, _)| name).collect(),
    }
}
