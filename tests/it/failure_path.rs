//! The failure path of ugw(7) runs as written on any failed record: an upgrade of a demo node
//! that fails at each step of the pipeline in turn (before the backup included), then the four
//! lines of UPGRADE AND ROLLBACK, with no condition around any of them, twice. Each time the
//! node ends where it began (`tests/support/failure_path.sh` says exactly what is checked), and
//! the second run changes nothing and keeps what the service wrote in between.

use crate::kit;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Eight failed upgrades and sixteen failure paths of a demo node, on a loaded machine too.
const LIMIT: Duration = Duration::from_secs(240);

/// Every step of the pipeline the upgrade is made to fail at, in pipeline order.
const STEPS: &[&str] = &[
    "baseline",
    "backup",
    "fetch",
    "migrate",
    "drain",
    "swap",
    "wait-healthy",
    "verify",
];

/// The lines the script runs are the ones ugw(7) and the README print: a reader can copy
/// them from either.
#[test]
fn the_script_runs_the_failure_path_as_ugw7_and_the_readme_write_it() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(repo.join("xtask/src/ugw.7.in")).unwrap();
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let script = std::fs::read_to_string(repo.join("tests/support/failure_path.sh")).unwrap();
    let first = "ugw-swap --root \"$ROOT\" --rollback";
    let ours = between(&script, first, "\nLINES");
    let lines =
        |text: &str| -> Vec<String> { text.lines().map(|l| l.trim().to_string()).collect() };
    assert_eq!(lines(ours), lines(between(&page, first, "\n.EE")), "ugw(7)");
    assert_eq!(
        lines(ours),
        lines(between(&readme, first, "\n```")),
        "README.md"
    );
    assert_eq!(
        lines(ours).len(),
        5,
        "four commands, one of them on two lines"
    );
}

#[test]
fn the_failure_path_puts_the_node_back_whichever_step_failed() {
    for program in [
        "bash",
        "python3",
        "sqlite3",
        "curl",
        "start-stop-daemon",
        "sha256sum",
        "tar",
    ] {
        if !kit::require(program) {
            return;
        }
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = kit::bin("ugw-swap");
    let bin = bin.parent().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut script = Command::new("bash");
    script
        .arg(repo.join("tests/support/failure_path.sh"))
        .arg(repo)
        .arg(bin)
        .arg(work.path())
        .args(STEPS);
    // A group of its own: if the test gives up, TERM reaches the script and the tool it runs.
    script
        .process_group(0)
        .env_remove("UGW_HOST_ID")
        .stdin(Stdio::null());
    let out = kit::run_within(script, LIMIT);
    let said: Vec<&str> = out.stdout.lines().collect();
    let expected: Vec<String> = STEPS.iter().map(|s| format!("ok {s}")).collect();
    assert_eq!(said, expected, "stderr:\n{}", out.stderr);
    out.succeeds();
    // Each upgrade failed where it was meant to.
    for (step, tool) in [
        ("baseline", "ugw-verify"),
        ("backup", "ugw-backup"),
        ("fetch", "ugw-fetch"),
        ("migrate", "ugw-migrate"),
        ("drain", "ugw-drain"),
        ("swap", "ugw-swap"),
        ("wait-healthy", "ugw-wait-healthy"),
        ("verify", "ugw-verify"),
    ] {
        out.stderr_has(format!("-- {step}: the upgrade failed at {tool} "));
    }
}

/// The text of `text` from `start` up to (not including) the first `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}"));
    let rest = &text[from..];
    &rest[..rest
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?}"))]
}
