//! The `cmd` check: a command (through `sh -c`, or an argv) through the shared runner, in its
//! own process group, killed at the check's deadline; judged on its exit code, its stdout
//! against a regex, and jq expectations on its stdout read as JSON.

use crate::check::{Outcome, expectations};
use crate::spec::{CmdCheck, Program};
use std::fmt::Write as _;
use std::time::Instant;
use ugw_shared::cancel::Cancel;
use ugw_shared::http::JqBudget;
use ugw_shared::http::expect::QUOTE_BYTES;
use ugw_shared::jq::parse_json;
use ugw_shared::runner::{self, Ended, RunOutcome, RunSpec};
use ugw_shared::scrub::excerpt;
use ugw_shared::time::human;

pub fn run(cmd: &CmdCheck, until: Instant, cancel: &Cancel) -> Outcome {
    let expected = expected(cmd);
    let (spec, shown) = match &cmd.program {
        Program::Shell(line) => (RunSpec::new(line, until), line.clone()),
        Program::Argv(argv) => (RunSpec::argv(&argv[0], &argv[1..], until), argv.join(" ")),
    };
    let outcome = match runner::run(&spec, cancel) {
        Ok(outcome) => outcome,
        Err(e) => {
            let why = format!("'{shown}': {}", e.message);
            return Outcome::failed(expected, "not run".into(), why);
        }
    };
    let observed = match outcome.ended {
        Ended::TimedOut => outcome.describe(),
        _ => format!("{} in {}", outcome.describe(), human(outcome.elapsed)),
    };
    match judge(cmd, &outcome, until, cancel) {
        Ok(()) => Outcome::passed(expected, observed),
        Err(why) => Outcome::failed(expected, observed, why),
    }
}

fn expected(cmd: &CmdCheck) -> String {
    let mut expected = format!("exit {}", cmd.exit);
    if let Some(re) = &cmd.stdout_regex {
        let _ = write!(expected, ", stdout =~ /{}/", re.as_str());
    }
    for e in &cmd.expect {
        let _ = write!(expected, ", {}", e.text());
    }
    expected
}

/// The first thing about the run that fails the check, in words.
fn judge(
    cmd: &CmdCheck,
    outcome: &RunOutcome,
    until: Instant,
    cancel: &Cancel,
) -> Result<(), String> {
    if outcome.ended == Ended::TimedOut {
        return Err(outcome.describe());
    }
    if outcome.ended != Ended::Exited(cmd.exit) {
        let said = outcome.said_excerpt(QUOTE_BYTES);
        return Err(format!(
            "{}, expecting exit {}: '{said}'",
            outcome.describe(),
            cmd.exit
        ));
    }
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    if let Some(re) = cmd.stdout_regex.as_ref().filter(|re| !re.is_match(&stdout)) {
        let quoted = excerpt(&outcome.stdout, QUOTE_BYTES);
        return Err(format!(
            "stdout does not match /{}/: '{quoted}'",
            re.as_str()
        ));
    }
    if cmd.expect.is_empty() {
        return Ok(());
    }
    let json = parse_json(&outcome.stdout).map_err(|e| e.replace("the body", "stdout"))?;
    let context = format!("stdout '{}'", excerpt(&outcome.stdout, QUOTE_BYTES));
    expectations(&cmd.expect, &json, &context, JqBudget { until, cancel })
}
