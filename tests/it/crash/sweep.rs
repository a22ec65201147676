//! SIGKILLs spread evenly over each tool's run: one run is timed, then runs are killed at
//! even fractions of that time, spread over (0, 0.9 × the run), until `KILLS` kills have
//! landed; the invariants are checked after each. A run that finishes before its kill
//! shrinks the window to how long it took (the timed run was slower than the rest: a cold
//! cache, a busy machine), and its fraction is tried again. Prints one row per tool: kills,
//! runs that finished before their kill, violations.

use super::scenarios::{self, Scenario, run_killed};
use std::time::Duration;

/// Kills that must land per tool (the issue asks for at least 50).
const KILLS: u32 = 50;

/// At most this many runs per tool, kills and finished-first together: a run whose time
/// keeps falling under every window fails the sweep rather than looping.
const MAX_RUNS: u32 = 2 * KILLS;

/// The share of the window the kills are spread over: the last tenth is left out, since a
/// run a little quicker than the window would finish before a kill scheduled there.
const WINDOW_SHARE: f64 = 0.9;

/// One row of the table.
struct Tally {
    tool: &'static str,
    measured: Duration,
    window: Duration,
    kills: u32,
    finished_first: u32,
    violations: Vec<String>,
}

/// When the `nth` kill (from 0) lands in a window of `window`: the middle of its share of
/// (0, `WINDOW_SHARE` × `window`), so the kills spread evenly over the run.
fn kill_moment(nth: u32, window: Duration) -> Duration {
    window.mul_f64(WINDOW_SHARE * (f64::from(nth) + 0.5) / f64::from(KILLS))
}

/// Time one run, then kill runs at even fractions of that time until `KILLS` have landed.
fn sweep(scenario: &Scenario) -> Tally {
    let base = tempfile::tempdir().unwrap();
    let timed = base.path().join("timed");
    std::fs::create_dir(&timed).unwrap();
    (scenario.prepare)(&timed);
    let (ended, measured) = run_killed((scenario.command)(&timed), None, None);
    assert_eq!(
        ended.code,
        Some(0),
        "{}: the timed run failed: {}",
        scenario.name,
        ended.stderr
    );
    let mut tally = Tally {
        tool: scenario.name,
        measured,
        window: measured,
        kills: 0,
        finished_first: 0,
        violations: Vec::new(),
    };
    for run in 1..=MAX_RUNS {
        if tally.kills >= KILLS {
            break;
        }
        let dir = base.path().join(format!("r{run}"));
        std::fs::create_dir(&dir).unwrap();
        (scenario.prepare)(&dir);
        let at = kill_moment(tally.kills, tally.window);
        let (ended, took) = run_killed((scenario.command)(&dir), None, Some(at));
        if ended.killed() {
            tally.kills += 1;
        } else if ended.code == Some(0) {
            tally.finished_first += 1;
            tally.window = tally.window.min(took);
        } else {
            tally.violations.push(format!(
                "run {run} (kill at {at:?}): exit {:?} without a kill: {}",
                ended.code, ended.stderr
            ));
        }
        for violation in (scenario.check)(&dir, &ended) {
            tally.violations.push(format!(
                "run {run} (kill at {at:?}, killed: {}): {violation}",
                ended.killed()
            ));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    tally
}

/// Sweep `scenario`, print its row of the table, and fail on any violation or on fewer than
/// `KILLS` kills landed.
fn sweep_and_report(scenario: &Scenario) {
    let row = sweep(scenario);
    println!(
        "crash sweep | {:<44} | run {:>4} ms | window {:>4} ms | kills {:>3} | finished first {:>3} | violations {:>3}",
        row.tool,
        row.measured.as_millis(),
        row.window.as_millis(),
        row.kills,
        row.finished_first,
        row.violations.len()
    );
    assert!(
        row.violations.is_empty(),
        "{}: {} violations:\n{}",
        row.tool,
        row.violations.len(),
        row.violations.join("\n")
    );
    assert!(
        row.kills >= KILLS,
        "{}: only {} kills landed in {MAX_RUNS} runs ({} finished before their kill)",
        row.tool,
        row.kills,
        row.finished_first
    );
}

#[test]
fn record_file_writes() {
    sweep_and_report(&scenarios::record_file());
}

#[test]
fn migrate_sqlite_transactional() {
    sweep_and_report(&scenarios::migrate_sqlite(false));
}

#[test]
fn migrate_sqlite_no_transaction() {
    sweep_and_report(&scenarios::migrate_sqlite(true));
}

#[test]
fn migrate_postgres_transactional() {
    if let Some(scenario) = scenarios::migrate_postgres(false) {
        sweep_and_report(&scenario);
    }
}

#[test]
fn migrate_postgres_no_transaction() {
    if let Some(scenario) = scenarios::migrate_postgres(true) {
        sweep_and_report(&scenario);
    }
}

#[test]
fn swap_releases() {
    sweep_and_report(&scenarios::swap_releases(false));
}

#[test]
fn swap_releases_with_restart() {
    sweep_and_report(&scenarios::swap_releases(true));
}

#[test]
fn swap_binary() {
    sweep_and_report(&scenarios::swap_binary(false));
}

#[test]
fn swap_binary_with_restart() {
    sweep_and_report(&scenarios::swap_binary(true));
}

#[test]
fn backup_create() {
    sweep_and_report(&scenarios::backup_create());
}

#[test]
fn backup_restore_in_place() {
    sweep_and_report(&scenarios::backup_restore());
}

#[test]
fn fetch_download() {
    sweep_and_report(&scenarios::fetch(false));
}

#[test]
fn fetch_extract() {
    sweep_and_report(&scenarios::fetch(true));
}

#[test]
fn drain_flag_file() {
    sweep_and_report(&scenarios::drain());
}
