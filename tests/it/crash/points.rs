//! Each named failpoint armed (`UGW_FAILPOINT`), the tool seen dying by SIGKILL there, and the
//! invariants checked on what it left.

use super::scenarios::{self, Scenario, run_killed};

/// Arm `failpoint` in `scenario`'s run, see it die by SIGKILL, and check the invariants.
fn killed_at(scenario: &Scenario, failpoint: &str) {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    (scenario.prepare)(&work);
    let (ended, _) = run_killed((scenario.command)(&work), Some(failpoint), None);
    assert!(
        ended.killed(),
        "{}: {failpoint} was never hit (exit {:?}): {}",
        scenario.name,
        ended.code,
        ended.stderr
    );
    let violations = (scenario.check)(&work, &ended);
    assert!(
        violations.is_empty(),
        "{} killed at {failpoint}:\n{}",
        scenario.name,
        violations.join("\n")
    );
}

#[test]
fn the_record_file_write_killed_at_each_atomic_step() {
    let scenario = scenarios::record_file();
    for point in [
        "atomic.after-temp-write",
        "atomic.after-fsync",
        "atomic.after-rename",
        "record.after-write",
    ] {
        killed_at(&scenario, point);
    }
}

#[test]
fn migrate_killed_before_and_after_each_ledger_commit_on_sqlite() {
    for no_transaction in [false, true] {
        let scenario = scenarios::migrate_sqlite(no_transaction);
        for point in [
            "migrate.before-ledger-commit",
            "migrate.before-ledger-commit@3",
            "migrate.after-ledger-commit",
            "migrate.after-ledger-commit@4",
        ] {
            killed_at(&scenario, point);
        }
    }
}

#[test]
fn migrate_killed_before_and_after_each_ledger_commit_on_postgres() {
    for no_transaction in [false, true] {
        let Some(scenario) = scenarios::migrate_postgres(no_transaction) else {
            return;
        };
        for point in [
            "migrate.before-ledger-commit",
            "migrate.before-ledger-commit@3",
            "migrate.after-ledger-commit",
            "migrate.after-ledger-commit@4",
        ] {
            killed_at(&scenario, point);
        }
    }
}

#[test]
fn swap_killed_after_the_stage_move_and_after_the_switch() {
    for restart in [false, true] {
        let scenario = scenarios::swap_releases(restart);
        for point in ["swap.after-stage-move", "swap.after-current-switch"] {
            killed_at(&scenario, point);
        }
    }
    for restart in [false, true] {
        let binary = scenarios::swap_binary(restart);
        for point in [
            "atomic.after-temp-write",
            "atomic.after-fsync",
            "atomic.after-rename",
            "swap.after-current-switch",
        ] {
            killed_at(&binary, point);
        }
    }
}

#[test]
fn backup_killed_after_the_archive_rename_and_at_each_atomic_step() {
    let create = scenarios::backup_create();
    for point in [
        "atomic.after-temp-write",
        "atomic.after-fsync",
        "atomic.after-rename",
        "backup.after-archive-rename",
        "atomic.after-rename@2",
        "atomic.after-rename@3",
    ] {
        killed_at(&create, point);
    }
}

#[test]
fn restore_in_place_killed_mid_extract_after_the_move_aside_and_after_the_swap_in() {
    let restore = scenarios::backup_restore();
    for point in [
        "fetch.mid-extract@2",
        "backup.restore-after-swap-in",
        "backup.restore-after-move-aside",
    ] {
        killed_at(&restore, point);
    }
}

#[test]
fn fetch_killed_mid_download_mid_extract_and_at_the_rename() {
    let download = scenarios::fetch(false);
    for point in [
        "fetch.mid-download",
        "fetch.mid-download@5",
        "atomic.after-fsync",
        "atomic.after-rename",
    ] {
        killed_at(&download, point);
    }
    let extract = scenarios::fetch(true);
    for point in [
        "fetch.mid-download",
        "fetch.mid-extract",
        "fetch.mid-extract@20",
    ] {
        killed_at(&extract, point);
    }
}

#[test]
fn drain_killed_after_the_state_change_before_the_record() {
    killed_at(&scenarios::drain(), "drain.after-state-change");
}

/// Every failpoint the code has, and the test that kills a tool there (in this file, or
/// `compose.rs` for the one that needs Docker).
const POINTS: &[(&str, &str)] = &[
    (
        "atomic.after-temp-write",
        "the_record_file_write_killed_at_each_atomic_step",
    ),
    (
        "atomic.after-fsync",
        "the_record_file_write_killed_at_each_atomic_step",
    ),
    (
        "atomic.after-rename",
        "the_record_file_write_killed_at_each_atomic_step",
    ),
    (
        "record.after-write",
        "the_record_file_write_killed_at_each_atomic_step",
    ),
    (
        "migrate.before-ledger-commit",
        "migrate_killed_before_and_after_each_ledger_commit_on_sqlite",
    ),
    (
        "migrate.after-ledger-commit",
        "migrate_killed_before_and_after_each_ledger_commit_on_sqlite",
    ),
    (
        "swap.after-stage-move",
        "swap_killed_after_the_stage_move_and_after_the_switch",
    ),
    (
        "swap.after-current-switch",
        "swap_killed_after_the_stage_move_and_after_the_switch",
    ),
    (
        "backup.after-archive-rename",
        "backup_killed_after_the_archive_rename_and_at_each_atomic_step",
    ),
    (
        "backup.restore-after-swap-in",
        "restore_in_place_killed_mid_extract_after_the_move_aside_and_after_the_swap_in",
    ),
    (
        "backup.restore-after-move-aside",
        "restore_in_place_killed_mid_extract_after_the_move_aside_and_after_the_swap_in",
    ),
    (
        "fetch.mid-download",
        "fetch_killed_mid_download_mid_extract_and_at_the_rename",
    ),
    (
        "fetch.mid-extract",
        "fetch_killed_mid_download_mid_extract_and_at_the_rename",
    ),
    (
        "drain.after-state-change",
        "drain_killed_after_the_state_change_before_the_record",
    ),
    (
        "compose.after-pin-write",
        "killed_between_the_pin_write_and_up_the_old_digest_serves_a_rerun_and_its_rollback_complete",
    ),
];

/// The names of every `failpoint::hit("NAME")` in the Rust files under `dir`.
fn hits_under(dir: &std::path::Path, names: &mut std::collections::BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            hits_under(&path, names);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (_, after) in text
                .match_indices("failpoint::hit(\"")
                .map(|(at, m)| text.split_at(at + m.len()))
            {
                names.insert(after.split('"').next().unwrap().to_string());
            }
        }
    }
}

#[test]
fn every_failpoint_in_the_code_is_documented_and_killed_at_by_a_test() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut in_code = std::collections::BTreeSet::new();
    hits_under(&root.join("shared/src"), &mut in_code);
    hits_under(&root.join("tools"), &mut in_code);
    let tabled: std::collections::BTreeSet<String> =
        POINTS.iter().map(|(name, _)| (*name).to_string()).collect();
    assert_eq!(
        in_code, tabled,
        "the failpoints in the code against this table"
    );
    let documented = std::fs::read_to_string(root.join("shared/src/failpoint.rs")).unwrap();
    let tests = [include_str!("points.rs"), include_str!("compose.rs")].concat();
    for (name, test) in POINTS {
        assert!(
            documented.contains(&format!("`{name}`")),
            "{name} is not in failpoint.rs's list"
        );
        assert!(tests.contains(&format!("fn {test}(")), "no test {test}");
        let body = tests.split(&format!("fn {test}(")).nth(1).unwrap();
        let body = body.split("\n}\n").next().unwrap();
        assert!(
            body.contains(&format!("\"{name}\"")) || body.contains(&format!("\"{name}@")),
            "{test} never arms {name}"
        );
    }
}
