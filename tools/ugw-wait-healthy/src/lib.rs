//! ugw-wait-healthy: replaces `until curl -sf …; do sleep 5; done`. It polls HTTP, TCP and
//! command targets until all pass in the same round (or, with `--until-down`, all fail),
//! with a hard deadline, and says in the record what each target last did.
#![forbid(unsafe_code)]

mod plan;
mod probe;
mod watch;
mod watched;

use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Command};
use plan::Plan;
use serde::Serialize;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;
use ugw_shared::cli::flag;
use ugw_shared::http::scoped::{Positioned, positioned};
use ugw_shared::http::{self, HttpFlags};
use ugw_shared::results::WaitMode;
use ugw_shared::time::{human, millis, parse_duration};
use ugw_shared::{Ctx, Result, StepResult, tool_command};
use watch::Watch;

/// The ids of this tool's flags, each written once: `command()` defines them, and
/// `Options::from_matches` reads them.
mod id {
    ugw_shared::flag_ids! {
        URL, TCP, CMD,
        STATUS, EXPECT, BODY_REGEX, EXPECT_VERSION, VERSION_PATH, MAX_LATENCY, METHOD, DATA,
        DATA_FILE, FAIL_IF, FAIL_STATUS, FAIL_IF_VERSION_DIFFERS,
        PID, PIDFILE,
        ATTEMPT_TIMEOUT, INTERVAL, MAX_INTERVAL, SUCCESSES, STABLE_FOR, MAX_FAILURES, ONCE, ANY,
        UNTIL_DOWN, COMMAND,
    }
}

/// A target flag: which of `--url`, `--tcp`, `--cmd` it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetFlag {
    Url,
    Tcp,
    Cmd,
}

impl TargetFlag {
    /// The flag's name, for messages (`--tcp`).
    pub fn name(self) -> &'static str {
        match self {
            TargetFlag::Url => id::URL,
            TargetFlag::Tcp => id::TCP,
            TargetFlag::Cmd => id::CMD,
        }
    }
}

/// The HTTP flags that apply to the `--url` they follow (or, before the first target, to
/// every `--url`), with their positions.
#[derive(Debug, Default)]
pub(crate) struct Scoped {
    pub method: Vec<Positioned<String>>,
    pub data: Vec<Positioned<String>>,
    pub data_file: Vec<Positioned<PathBuf>>,
    pub status: Vec<Positioned<String>>,
    pub expect: Vec<Positioned<String>>,
    pub body_regex: Vec<Positioned<String>>,
    pub expect_version: Vec<Positioned<String>>,
    pub version_path: Vec<Positioned<String>>,
    pub max_latency: Vec<Positioned<Duration>>,
    pub fail_if: Vec<Positioned<String>>,
    pub fail_status: Vec<Positioned<String>>,
}

impl Scoped {
    /// Each flag given, by name, with the positions it was given at.
    pub fn given(&self) -> Vec<(&'static str, Vec<usize>)> {
        fn at<T>(given: &[Positioned<T>]) -> Vec<usize> {
            given.iter().map(|p| p.index).collect()
        }
        [
            (id::METHOD, at(&self.method)),
            (id::DATA, at(&self.data)),
            (id::DATA_FILE, at(&self.data_file)),
            (id::STATUS, at(&self.status)),
            (id::EXPECT, at(&self.expect)),
            (id::BODY_REGEX, at(&self.body_regex)),
            (id::EXPECT_VERSION, at(&self.expect_version)),
            (id::VERSION_PATH, at(&self.version_path)),
            (id::MAX_LATENCY, at(&self.max_latency)),
            (id::FAIL_IF, at(&self.fail_if)),
            (id::FAIL_STATUS, at(&self.fail_status)),
        ]
        .into_iter()
        .filter(|(_, indices)| !indices.is_empty())
        .collect()
    }
}

/// Every flag of this tool, read once from clap's matches; nothing below `run` sees them.
#[derive(Debug)]
pub(crate) struct Options {
    /// `--url`, `--tcp` and `--cmd`, in command-line order.
    pub targets: Vec<Positioned<(TargetFlag, String)>>,
    pub scoped: Scoped,
    pub http: HttpFlags,
    pub fail_if_version_differs: Option<u32>,
    pub pid: Option<i32>,
    pub pidfile: Option<PathBuf>,
    pub attempt_timeout: Duration,
    pub interval: Option<Duration>,
    pub max_interval: Option<Duration>,
    pub successes: u32,
    pub stable_for: Option<Duration>,
    pub max_failures: u32,
    pub once: bool,
    pub any: bool,
    pub until_down: bool,
    /// The words after `--`.
    pub command: Vec<OsString>,
}

impl Options {
    fn from_matches(m: &ArgMatches) -> Self {
        let mut targets = Vec::new();
        for (flag, kind) in [
            (id::URL, TargetFlag::Url),
            (id::TCP, TargetFlag::Tcp),
            (id::CMD, TargetFlag::Cmd),
        ] {
            targets.extend(
                positioned::<String>(m, flag)
                    .into_iter()
                    .map(|p| Positioned {
                        index: p.index,
                        value: (kind, p.value),
                    }),
            );
        }
        targets.sort_by_key(|p| p.index);
        let strings = |flag: &str| positioned::<String>(m, flag);
        let duration = |flag: &str| m.get_one::<Duration>(flag).copied();
        Options {
            targets,
            scoped: Scoped {
                method: strings(id::METHOD),
                data: strings(id::DATA),
                data_file: positioned(m, id::DATA_FILE),
                status: strings(id::STATUS),
                expect: strings(id::EXPECT),
                body_regex: strings(id::BODY_REGEX),
                expect_version: strings(id::EXPECT_VERSION),
                version_path: strings(id::VERSION_PATH),
                max_latency: positioned(m, id::MAX_LATENCY),
                fail_if: strings(id::FAIL_IF),
                fail_status: strings(id::FAIL_STATUS),
            },
            http: HttpFlags::from_matches(m),
            fail_if_version_differs: m.get_one::<u32>(id::FAIL_IF_VERSION_DIFFERS).copied(),
            pid: m.get_one::<i32>(id::PID).copied(),
            pidfile: m.get_one::<PathBuf>(id::PIDFILE).cloned(),
            // It has a default in `command()`, which clap always fills in.
            attempt_timeout: duration(id::ATTEMPT_TIMEOUT)
                .expect("--attempt-timeout has a default"),
            interval: duration(id::INTERVAL),
            max_interval: duration(id::MAX_INTERVAL),
            successes: m.get_one::<u32>(id::SUCCESSES).copied().unwrap_or(1),
            stable_for: duration(id::STABLE_FOR),
            max_failures: m.get_one::<u32>(id::MAX_FAILURES).copied().unwrap_or(0),
            once: m.get_flag(id::ONCE),
            any: m.get_flag(id::ANY),
            until_down: m.get_flag(id::UNTIL_DOWN),
            command: m
                .get_many::<OsString>(id::COMMAND)
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
        }
    }
}

const EXAMPLES: &str = "\
Examples:
  # Wait up to 2 minutes for the service to say it is ready, then once more to be sure:
  ugw-wait-healthy --url http://127.0.0.1:8080/health/ready --expect '.status == \"ok\"' --successes 2

  # After a swap: wait until the new version (from the ugw-fetch step of the record) answers:
  ugw-fetch --url \"$BASE/app-$V-linux-amd64.tar.gz\" --sha256-url \"$BASE/SHA256SUMS\" --dest /opt/app/staging --extract \\
    | ugw-swap --root /opt/app | ugw-wait-healthy --url http://127.0.0.1:8080/health/ready --expect-version

  # The database port and a command must both pass, and stay passing for 10 s:
  ugw-wait-healthy --tcp 127.0.0.1:5432 --cmd 'pg_isready -q' --stable-for 10s --timeout 5m

  # The version where the body keeps it (Datasette: --version-path .datasette.version), and
  # another version answering 20 rounds in a row is a failure, not a wait:
  ugw-wait-healthy --url http://127.0.0.1:8080/health/ready --version-path .version --expect-version v1.1.0 --fail-if-version-differs 20

  # Stop at once when the service reports a failed start instead of waiting out the deadline:
  ugw-wait-healthy --url http://[::1]:8080/health/ready --fail-if '.status == \"failed\"'

  # Wait for the old process to stop answering before starting the new one:
  ugw-wait-healthy --until-down --tcp 127.0.0.1:8080 --timeout 30s

  # The process alive, and ready with a status of ok: an assertion after a --url applies to it
  # alone, one before the first target to every --url:
  ugw-wait-healthy --status 200 --url http://127.0.0.1:8080/health/live --url http://127.0.0.1:8080/health/ready --expect '.status == \"ok\"'

  # One of three replicas answering is enough (--any: the leader among N):
  ugw-wait-healthy --any --url http://127.0.0.1:8080/health/ready --url http://127.0.0.1:8081/health/ready --url http://127.0.0.1:8082/health/ready

  # One check, no polling: exit 0 or 1 at once. --body-regex is multi-line, like grep:
  ugw-wait-healthy --once --url http://127.0.0.1:8080/metrics --body-regex '^http_requests_in_flight 0$'

  # A body with every attempt (--data, or --data-file; with --method POST for a POST smoke check):
  ugw-wait-healthy --url http://127.0.0.1:8080/debug/echo --header 'Content-Type: application/json' --data '{\"probe\":\"smoke\"}' --expect '.headers[\"content-length\"] == \"17\"'

  # A container's entrypoint: run the server in place of the tool once the database answers
  # (the record goes only to --record FILE; a failed wait runs nothing):
  ugw-wait-healthy --tcp db:5432 --timeout 1m --record start.json --new -- echo the server starts here

  # A CI log without the record, which the file keeps:
  ugw-wait-healthy --output none --record ci-record.json --new --url http://127.0.0.1:8080/health/ready

  # A watch that forgives two failed rounds while the service must stay up for 5 seconds:
  ugw-wait-healthy --url http://127.0.0.1:8080/health/ready --stable-for 5s --max-failures 2 --timeout 1m

  # A secret header, read from the environment and never printed:
  ugw-wait-healthy --url https://app.internal/health --header-env 'Authorization=HEALTH_TOKEN' --cacert /etc/app/ca.pem";

/// This tool as `cli` and xtask see it: never an inverse, a 2-minute default deadline.
#[must_use]
pub fn tool() -> ugw_shared::cli::Tool {
    ugw_shared::cli::Tool::new(command(), run).default_timeout("2m")
}

/// The clap command: the common flags, then this tool's own.
#[must_use]
#[expect(
    clippy::too_many_lines,
    reason = "one flag after another: a builder reads best whole"
)]
pub fn command() -> Command {
    tool_command(
        "ugw-wait-healthy",
        "Wait until a service is healthy: HTTP, TCP and command checks with a hard deadline",
    )
    .long_about(
        "Wait until every target passes in the same round: HTTP(S) URLs with status, jq, regex, \
         version and latency assertions, TCP ports, and commands. Polls on a steady beat with a \
         hard deadline that is never overrun by more than a few tens of milliseconds; stops at \
         once on a fail-fast condition. With --until-down, waits until every target fails instead. \
         After --, runs a program in place of the tool once healthy (a container's entrypoint).\n\n\
         HTTP answers are judged as ugw-verify judges its http checks: the status must be 2xx \
         unless --status says otherwise; a body is read up to 16 MiB (a larger one fails every \
         JSON assertion); a jq expression still running at the deadline is never a pass: the \
         wait ends with kind timeout (on a signal, interrupted), naming it.",
    )
    .after_long_help(EXAMPLES)
    .mut_arg("timeout", |a| a.help("Overall deadline (never overrun by more than 50 ms)"))
    .next_help_heading("Targets (repeatable, mixable; all must pass in the same round)")
    .arg(flag::repeated_text(id::URL, "URL", "An HTTP or HTTPS URL to GET"))
    .arg(
        flag::repeated_text(id::TCP, "HOST:PORT", "A TCP port that must accept a connection (IPv6 as [::1]:8080)"),
    )
    .arg(
        flag::repeated_text(id::CMD, "COMMAND", "A command (run by sh -c, in its own process group) that must exit 0"),
    )
    .group(ArgGroup::new("targets").args([id::URL, id::TCP, id::CMD]).multiple(true).required(true))
    .next_help_heading("HTTP requests and assertions (before the first target: for every --url; after a --url: for it alone)")
    .arg(
        flag::repeated_text(id::STATUS, "LIST", "Acceptable status codes: 200, 200,204, 2xx, 200-299 [default: 2xx]"),
    )
    .arg(
        flag::repeated_text(id::EXPECT, "JQ", "A jq expression on the JSON body that must yield true (repeatable)"),
    )
    .arg(
        flag::repeated_text(id::BODY_REGEX, "RE", "A regular expression the body must match; multi-line: ^ and $ match at every line (repeatable)"),
    )
    .arg(
        Arg::new(id::EXPECT_VERSION)
            .long(id::EXPECT_VERSION)
            .value_name("V")
            .num_args(0..=1)
            .action(ArgAction::Append)
            .default_missing_value(plan::FROM_THE_RECORD)
            .help("The body's version must equal V (v1.1.0 = 1.1.0); without V, the version this run's ugw-swap --rollback went back to, else the version of the last ugw-fetch step"),
    )
    .arg(
        flag::repeated_text(id::VERSION_PATH, "JQ", "Where the version is in the body [default: .version]"),
    )
    .arg(
        flag::repeated(id::MAX_LATENCY, "DURATION", clap::builder::ValueParser::new(parse_duration), "A response slower than this fails the attempt"),
    )
    .arg(
        flag::repeated_text(id::METHOD, "METHOD", "The HTTP method [default: GET]"),
    )
    .arg(
        flag::repeated_text(id::DATA, "STRING", "Send this body with every attempt (with --method POST for a POST; the method is kept)")
            .conflicts_with(id::DATA_FILE),
    )
    .arg(
        flag::repeated(id::DATA_FILE, "PATH", clap::value_parser!(std::path::PathBuf), "Send this file's content (read once, at most 8 MiB) as the body of every attempt"),
    )
    .args(http::args())
    .next_help_heading("Fail fast (exit 1 at once, kind fail_condition)")
    .arg(
        flag::repeated_text(id::FAIL_IF, "JQ", "Stop at once when this jq expression on the body yields true (e.g. '.status == \"failed\"')"),
    )
    .arg(
        flag::repeated_text(id::FAIL_STATUS, "LIST", "Stop at once on these status codes (e.g. 500,501)"),
    )
    .arg(
        flag::count(id::FAIL_IF_VERSION_DIFFERS, "Stop when a --url answers the same other version than --expect-version N rounds in a row (another release runs)"),
    )
    .next_help_heading("The service's process (exit 1 at once, kind process_exited, when it exits)")
    .arg(
        flag::value(id::PID, "PID", clap::value_parser!(i32).range(1..), "The process just started: when it exits, the wait fails at once, with its exit status when known")
            .conflicts_with(id::PIDFILE),
    )
    .arg(
        flag::path(id::PIDFILE, "FILE", "As --pid, the pid read from FILE (read each round until it names one; then that process is watched)"),
    )
    .next_help_heading("Timing")
    .arg(
        flag::duration(id::ATTEMPT_TIMEOUT, "Longest one attempt may take (clipped to the time left)")
            .default_value("5s"),
    )
    .arg(
        flag::duration(id::INTERVAL, "Time between the starts of two rounds, at least 10ms [default: 100ms, or 1s with a --cmd target]"),
    )
    .arg(
        flag::duration(id::MAX_INTERVAL, "Back off exponentially (with jitter) while failing, up to this, from the first failure \
                 [default: keep --interval for 10s, then back off up to 1s]"),
    )
    .arg(
        flag::count(id::SUCCESSES, "Passing rounds needed in a row")
            .default_value("1"),
    )
    .arg(
        flag::duration(id::STABLE_FOR, "Targets must keep passing for this long"),
    )
    .arg(
        flag::value(id::MAX_FAILURES, "N", clap::value_parser!(u32), "With --stable-for: forgive up to N failed rounds within the window instead of starting it over"),
    )
    .arg(
        flag::switch(id::ONCE, "One round, no polling: exit 0 when the targets pass, 1 when not"),
    )
    .arg(
        flag::switch(id::ANY, "One passing target is enough (e.g. the leader among N)"),
    )
    .arg(
        flag::switch(id::UNTIL_DOWN, "Wait until every target fails (e.g. for the old process to stop)"),
    )
    .arg(
        Arg::new(id::COMMAND)
            .value_name("CMD")
            .num_args(0..)
            .last(true)
            .value_parser(clap::value_parser!(OsString))
            .help(
                "After --: run this program in place of the tool once healthy (a container's \
                 entrypoint); the record then goes only to --record FILE",
            ),
    )
}

/// What a dry run says it would do.
#[derive(Serialize)]
struct Planned<'a> {
    would_wait_for: Vec<String>,
    mode: WaitMode,
    timeout_ms: u64,
    expect_version: Option<&'a str>,
    /// Whether it would run the program after `--` once healthy (its words are not
    /// repeated: they may hold a secret).
    then_exec: bool,
}

/// Poll until healthy (or down), the deadline, a fail-fast condition or a signal.
pub fn run(ctx: &mut Ctx, matches: &ArgMatches) -> Result<StepResult> {
    let plan = Plan::new(ctx, Options::from_matches(matches))?;
    let labels: Vec<String> = plan.targets.iter().map(probe::Target::label).collect();
    let goal = if plan.until_down { "down" } else { "healthy" };
    if ctx.dry_run {
        ctx.reporter.info(&format!(
            "dry run: would wait up to {} for {} to be {goal}",
            human(plan.timeout),
            labels.join(", ")
        ));
        return Ok(dry_run(&plan, labels));
    }
    ctx.reporter.info(&format!(
        "waiting up to {} for {} to be {goal}",
        human(plan.timeout),
        labels.join(", ")
    ));
    let deadline = ctx.step_deadline();
    let mut watch = Watch::new(&plan, ctx.started, deadline);
    let outcome = watch.run(ctx);
    let result = watch.result(ctx.started);
    if let Err(err) = outcome {
        let result = serde_json::to_value(&result).expect("a wait result serialises");
        return Err(err.with_result(result));
    }
    ctx.reporter.info(&watch.summary(goal, ctx.started));
    let step = StepResult::typed(false, &result);
    Ok(match plan.then_run {
        Some(argv) => step.then_exec(argv),
        None => step,
    })
}

fn dry_run(plan: &Plan, labels: Vec<String>) -> StepResult {
    let planned = Planned {
        would_wait_for: labels,
        mode: plan.mode(),
        timeout_ms: millis(plan.timeout),
        expect_version: plan.expect_version(),
        then_exec: plan.then_run.is_some(),
    };
    StepResult::unchanged(serde_json::to_value(&planned).expect("a dry run serialises"))
}
