//! ugw-wait-healthy: replaces `until curl -sf …; do sleep 5; done`. It polls HTTP, TCP and
//! command targets until all pass in the same round (or, with `--until-down`, all fail),
//! with a hard deadline, and says in the record what each target last did.

mod plan;
mod probe;

use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Command};
use plan::Plan;
use probe::{Round, TargetState};
use serde_json::{Value, json};
use std::time::Instant;
use ugw_shared::poll::Poller;
use ugw_shared::time::{human, millis, parse_duration};
use ugw_shared::{Ctx, Error, ErrorKind, Result, StepResult, http, tool_command};

const EXAMPLES: &str = "\
Examples:
  # Wait up to 2 minutes for the service to say it is ready, then once more to be sure:
  ugw-wait-healthy --url http://127.0.0.1:8080/health/ready --expect '.status == \"ok\"' --successes 2

  # After a swap: wait until the new version (from the ugw-fetch step of the record) answers:
  ugw-fetch … | ugw-swap … | ugw-wait-healthy --url http://127.0.0.1:8080/health/ready --expect-version

  # The database port and a command must both pass, and stay passing for 10 s:
  ugw-wait-healthy --tcp 127.0.0.1:5432 --cmd 'pg_isready -q' --stable-for 10s --timeout 5m

  # Stop at once when the service reports a failed start instead of waiting out the deadline:
  ugw-wait-healthy --url http://[::1]:8080/health/ready --fail-if '.status == \"failed\"'

  # Wait for the old process to stop answering before starting the new one:
  ugw-wait-healthy --until-down --tcp 127.0.0.1:8080 --timeout 30s

  # A secret header, read from the environment and never printed:
  ugw-wait-healthy --url https://app.internal/health --header-env 'Authorization=HEALTH_TOKEN' --cacert /etc/app/ca.pem";

/// This tool as `cli` and xtask see it: never an inverse, a 2-minute default deadline.
#[must_use]
pub fn tool() -> ugw_shared::cli::Tool {
    ugw_shared::cli::Tool::new(command(), run).default_timeout("2m")
}

/// The clap command: the common flags, then this tool's own.
#[must_use]
pub fn command() -> Command {
    let duration = clap::builder::ValueParser::new(parse_duration);
    tool_command(
        "ugw-wait-healthy",
        "Wait until a service is healthy: HTTP, TCP and command checks with a hard deadline",
    )
    .long_about(
        "Wait until every target passes in the same round: HTTP(S) URLs with status, jq, regex, \
         version and latency assertions, TCP ports, and commands. Polls on a steady beat with a \
         hard deadline that is never overrun by more than a few tens of milliseconds; stops at \
         once on a fail-fast condition. With --until-down, waits until every target fails instead.",
    )
    .after_long_help(EXAMPLES)
    .mut_arg("timeout", |a| a.help("Overall deadline (never overrun by more than 50 ms)"))
    .next_help_heading("Targets (repeatable, mixable; all must pass in the same round)")
    .arg(Arg::new("url").long("url").value_name("URL").action(ArgAction::Append).help("An HTTP or HTTPS URL to GET"))
    .arg(
        Arg::new("tcp")
            .long("tcp")
            .value_name("HOST:PORT")
            .action(ArgAction::Append)
            .help("A TCP port that must accept a connection (IPv6 as [::1]:8080)"),
    )
    .arg(
        Arg::new("cmd")
            .long("cmd")
            .value_name("COMMAND")
            .action(ArgAction::Append)
            .help("A command (run by sh -c, in its own process group) that must exit 0"),
    )
    .group(ArgGroup::new("targets").args(["url", "tcp", "cmd"]).multiple(true).required(true))
    .next_help_heading("HTTP assertions (apply to every --url)")
    .arg(
        Arg::new("status")
            .long("status")
            .value_name("LIST")
            .help("Acceptable status codes: 200, 200,204, 2xx, 200-299 [default: 2xx]"),
    )
    .arg(
        Arg::new("expect")
            .long("expect")
            .value_name("JQ")
            .action(ArgAction::Append)
            .help("A jq expression on the JSON body that must yield true (repeatable)"),
    )
    .arg(Arg::new("body-regex").long("body-regex").value_name("RE").help("A regular expression the body must match"))
    .arg(
        Arg::new("expect-version")
            .long("expect-version")
            .value_name("V")
            .num_args(0..=1)
            .default_missing_value("")
            .help("The body's version must equal V (v1.1.0 = 1.1.0); without V, the version of the last ugw-fetch step"),
    )
    .arg(
        Arg::new("version-path")
            .long("version-path")
            .value_name("JQ")
            .default_value(".version")
            .help("Where the version is in the body"),
    )
    .arg(
        Arg::new("max-latency")
            .long("max-latency")
            .value_name("DURATION")
            .value_parser(duration.clone())
            .help("A response slower than this fails the attempt"),
    )
    .arg(Arg::new("method").long("method").value_name("METHOD").default_value("GET").help("The HTTP method"))
    .args(http::args())
    .next_help_heading("Fail fast (exit 1 at once, kind fail_condition)")
    .arg(
        Arg::new("fail-if")
            .long("fail-if")
            .value_name("JQ")
            .action(ArgAction::Append)
            .help("Stop at once when this jq expression on the body yields true (e.g. '.status == \"failed\"')"),
    )
    .arg(Arg::new("fail-status").long("fail-status").value_name("LIST").help("Stop at once on these status codes (e.g. 500,501)"))
    .next_help_heading("Timing")
    .arg(
        Arg::new("attempt-timeout")
            .long("attempt-timeout")
            .value_name("DURATION")
            .value_parser(duration.clone())
            .default_value("5s")
            .help("Longest one attempt may take (clipped to the time left)"),
    )
    .arg(
        Arg::new("interval")
            .long("interval")
            .value_name("DURATION")
            .value_parser(duration.clone())
            .help("Time between the starts of two rounds [default: 100ms, or 1s with a --cmd target]"),
    )
    .arg(
        Arg::new("max-interval")
            .long("max-interval")
            .value_name("DURATION")
            .value_parser(duration.clone())
            .help("Back off exponentially (with jitter) while failing, up to this"),
    )
    .arg(
        Arg::new("successes")
            .long("successes")
            .value_name("N")
            .value_parser(clap::value_parser!(u32).range(1..))
            .default_value("1")
            .help("Passing rounds needed in a row"),
    )
    .arg(
        Arg::new("stable-for")
            .long("stable-for")
            .value_name("DURATION")
            .value_parser(duration)
            .help("Targets must keep passing for this long"),
    )
    .arg(
        Arg::new("until-down")
            .long("until-down")
            .action(ArgAction::SetTrue)
            .help("Wait until every target fails (e.g. for the old process to stop)"),
    )
}

/// Poll until healthy (or down), the deadline, a fail-fast condition or a signal.
pub fn run(ctx: &mut Ctx, matches: &ArgMatches) -> Result<StepResult> {
    let plan = Plan::from_matches(ctx, matches)?;
    let goal = if plan.until_down { "down" } else { "healthy" };
    let labels: Vec<String> = plan.targets.iter().map(probe::Target::label).collect();

    if ctx.dry_run {
        ctx.reporter.info(&format!(
            "dry run: would wait up to {} for {} to be {goal}",
            human(plan.timeout),
            labels.join(", ")
        ));
        return Ok(StepResult::unchanged(json!({
            "would_wait_for": labels,
            "mode": if plan.until_down { "down" } else { "up" },
            "timeout_ms": millis(plan.timeout),
            "expect_version": plan.expect_version,
        })));
    }

    ctx.reporter.info(&format!(
        "waiting up to {} for {} to be {goal}",
        human(plan.timeout),
        labels.join(", ")
    ));
    let mut states: Vec<TargetState> = plan.targets.iter().map(TargetState::new).collect();
    let mut poller = Poller::new(plan.poll_plan(), ctx.started);
    let mut in_a_row = 0u32;
    let mut passing_since: Option<Instant> = None;
    let mut healthy_at: Option<Instant> = None;

    let outcome = loop {
        let attempt_until = poller.begin_round();
        let round = match probe::run_round(&plan, attempt_until, poller.deadline(), &ctx.cancel) {
            Ok(round) => round,
            Err(interrupted) => break Err(interrupted),
        };
        let Round {
            verdicts,
            retry_after,
        } = round;
        let mut fatal = None;
        for (state, verdict) in states.iter_mut().zip(verdicts) {
            if let Some(line) = state.record(verdict, plan.until_down) {
                ctx.reporter.info(&line);
            }
            if let Some(reason) = state.fatal.clone().filter(|_| fatal.is_none()) {
                fatal = Some(format!("{}: {reason}", state.label));
            }
        }
        if let Some(reason) = fatal {
            break Err(Error::new(ErrorKind::FailCondition, reason));
        }
        if states.iter().all(TargetState::goal_met) {
            in_a_row += 1;
            let since = *passing_since.get_or_insert_with(Instant::now);
            let stable = plan.stable_for.is_none_or(|d| since.elapsed() >= d);
            if in_a_row >= plan.successes && stable {
                healthy_at = Some(Instant::now());
                break Ok(());
            }
        } else {
            in_a_row = 0;
            passing_since = None;
        }
        match poller.wait_next(in_a_row > 0, retry_after, &ctx.cancel) {
            Ok(true) => {}
            Ok(false) => {
                break Err(Error::new(
                    ErrorKind::Timeout,
                    timeout_message(&plan, &states, goal),
                ));
            }
            Err(interrupted) => break Err(interrupted),
        }
    };

    let end = Instant::now();
    let result = json!({
        "healthy": outcome.is_ok(),
        "mode": if plan.until_down { "down" } else { "up" },
        "targets": states.iter().map(TargetState::to_json).collect::<Vec<Value>>(),
        "rounds": poller.rounds(),
        "attempts": states.iter().map(|s| s.attempts).sum::<u64>(),
        "elapsed_ms": millis(end - ctx.started),
        "time_to_healthy_ms": healthy_at.map(|t| millis(t - ctx.started)),
        "deadline_overrun_ms": millis(poller.overrun(end)),
        "expect_version": plan.expect_version,
    });
    match outcome {
        Ok(()) => {
            ctx.reporter.info(&format!(
                "{goal} after {} ({} round{})",
                human(end - ctx.started),
                poller.rounds(),
                if poller.rounds() == 1 { "" } else { "s" }
            ));
            Ok(StepResult::unchanged(result))
        }
        Err(err) => Err(err.with_result(result)),
    }
}

fn timeout_message(plan: &Plan, states: &[TargetState], goal: &str) -> String {
    let describe = |s: &TargetState| {
        format!(
            "{}: {} (after {} attempts)",
            s.label,
            s.last_failure(plan.until_down),
            s.attempts
        )
    };
    let failing: Vec<String> = states
        .iter()
        .filter(|s| !s.goal_met())
        .map(describe)
        .collect();
    let detail = if failing.is_empty() {
        // Passing right now, but not for long enough: say what broke the streak.
        let last: Vec<String> = states
            .iter()
            .filter(|s| s.has_missed())
            .map(describe)
            .collect();
        format!(
            "the targets pass now but not {} (--successes/--stable-for); last failure: {}",
            plan.stability(),
            if last.is_empty() {
                "none".to_string()
            } else {
                last.join("; ")
            }
        )
    } else {
        failing.join("; ")
    };
    format!(
        "not {goal} within --timeout {}: {detail}",
        human(plan.timeout)
    )
}
