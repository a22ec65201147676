//! SIGKILLs spread evenly over each tool's run: one run is timed, then each of `KILLS` runs
//! is killed at k/KILLS of that time (k = 1..KILLS), and the invariants are checked after
//! each. Prints one table: kills, runs that finished before their kill, violations.

use super::scenarios::{self, Scenario, run_killed};
use std::sync::Mutex;
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

#[test]
fn sigkill_spread_over_each_tools_run_leaves_every_invariant_holding() {
    let mut all: Vec<Scenario> = vec![
        scenarios::record_file(),
        scenarios::migrate_sqlite(false),
        scenarios::migrate_sqlite(true),
        scenarios::swap_releases(false),
        scenarios::swap_releases(true),
        scenarios::swap_binary(),
        scenarios::backup_create(),
        scenarios::backup_restore(),
        scenarios::fetch(false),
        scenarios::fetch(true),
        scenarios::drain(),
    ];
    all.extend(scenarios::migrate_postgres(false));
    all.extend(scenarios::migrate_postgres(true));
    // Two at a time (the machine has two cores): the timed run and its kills share the load.
    let queue = Mutex::new(all.into_iter().enumerate().collect::<Vec<_>>());
    let rows = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let Some((index, scenario)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let tally = sweep(&scenario);
                    rows.lock().unwrap().push((index, tally));
                }
            });
        }
    });
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by_key(|(index, _)| *index);
    let mut table = format!(
        "\n{:<46} {:>9} {:>6} {:>15} {:>11}\n",
        "crash sweep: tool", "run (ms)", "kills", "finished first", "violations"
    );
    for (_, row) in &rows {
        table.push_str(&format!(
            "{:<46} {:>9} {:>6} {:>15} {:>11}\n",
            row.tool,
            row.measured.as_millis(),
            row.kills,
            row.finished_first,
            row.violations.len()
        ));
    }
    println!("{table}");
    let violations: Vec<String> = rows
        .iter()
        .flat_map(|(_, row)| row.violations.iter().map(|v| format!("{}: {v}", row.tool)))
        .collect();
    assert!(violations.is_empty(), "{table}\n{}", violations.join("\n"));
    for (_, row) in &rows {
        assert!(
            row.kills >= KILLS * 3 / 4,
            "{}: only {} of {KILLS} runs were killed before they finished{table}",
            row.tool,
            row.kills
        );
    }
}
