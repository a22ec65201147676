//! SIGKILLs spread evenly over each tool's run: one run is timed, then each of `KILLS` runs
//! is killed at k/KILLS of that time (k = 1..KILLS), and the invariants are checked after
//! each. Prints one table: kills, runs that finished before their kill, violations.

use super::scenarios::{self, Scenario, run_killed};
use std::time::Duration;

/// Kills per tool (the issue asks for at least 50).
const KILLS: u32 = 50;

/// One row of the table.
struct Tally {
    tool: &'static str,
    measured: Duration,
    kills: u32,
    finished_first: u32,
    violations: Vec<String>,
}

/// Time one run, then kill `KILLS` runs at even fractions of that time.
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
        kills: 0,
        finished_first: 0,
        violations: Vec::new(),
    };
    for k in 1..=KILLS {
        let dir = base.path().join(format!("k{k}"));
        std::fs::create_dir(&dir).unwrap();
        (scenario.prepare)(&dir);
        let (ended, _) = run_killed((scenario.command)(&dir), None, Some(measured * k / KILLS));
        if ended.killed() {
            tally.kills += 1;
        } else if ended.code == Some(0) {
            tally.finished_first += 1;
        } else {
            tally.violations.push(format!(
                "k={k}: exit {:?} without a kill: {}",
                ended.code, ended.stderr
            ));
        }
        for violation in (scenario.check)(&dir, &ended) {
            tally
                .violations
                .push(format!("k={k} (killed: {}): {violation}", ended.killed()));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    tally
}

/// Sweep `scenario`, print its row of the table, and fail on any violation.
fn sweep_and_report(scenario: &Scenario) {
    let row = sweep(scenario);
    println!(
        "crash sweep | {:<44} | run {:>5} ms | kills {:>3} | finished first {:>3} | violations {:>3}",
        row.tool,
        row.measured.as_millis(),
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
        row.kills >= KILLS / 4,
        "{}: only {} of {KILLS} runs were killed before they finished",
        row.tool,
        row.kills
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
    sweep_and_report(&scenarios::swap_binary());
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
