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
