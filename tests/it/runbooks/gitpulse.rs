//! The update of `GitPulse`: calendar versions, maintenance mode, a smoke test, a restore on failure
//! (see the parent module for the lab).

use super::*;

fn gitpulse_lab() -> Option<Lab> {
    Lab::start("gitpulse", &["python3", "setsid", "sha256sum"], &[])
}

/// The tools of the `GitPulse` update pipe, in order.
const GITPULSE_PIPE: [&str; 10] = [
    "ugw-backup",
    "ugw-backup",
    "ugw-fetch",
    "ugw-drain",
    "ugw-migrate",
    "ugw-swap",
    "ugw-wait-healthy",
    "ugw-verify",
    "ugw-migrate",
    "ugw-drain",
];

fn gitpulse_update(lab: &Lab, version: &str) -> kit::Outcome {
    let env = format!("{}/gitpulse.env", lab.s());
    lab.run("update.sh", &[version], &[("GITPULSE_ENV", &env)])
}

#[test]
fn gitpulse_updates_to_a_calendar_version_through_maintenance_mode() {
    let Some(lab) = gitpulse_lab() else { return };
    let out = gitpulse_update(&lab, "2026.5.17.post4");
    assert_eq!(out.code, 0, "{}", out.stderr);

    let record = record_with(
        &lab,
        "state/update-2026.5.17.post4.json",
        true,
        &pipe_steps(&GITPULSE_PIPE, None),
    );
    assert_eq!(record.steps[2].result["version"], "2026.5.17.post4");
    // Maintenance mode: the flag file put there, waited out to zero in flight, then removed.
    let flag = lab.path().join("maintenance").display().to_string();
    let (on, off) = (&record.steps[3].result, &record.steps[9].result);
    assert_eq!(
        (
            &on["method"],
            &on["flag_file"],
            &on["state_after"],
            &on["inflight_end"]
        ),
        (
            &"flag_file".into(),
            &flag.clone().into(),
            &"present".into(),
            &0.into()
        ),
        "{on:#}"
    );
    assert_eq!(
        (&off["undo"], &off["flag_file"], &off["state_after"]),
        (&true.into(), &flag.into(), &"absent".into()),
        "{off:#}"
    );
    assert_eq!(
        record.steps[7].result["passed"], 4,
        "{:#}",
        record.steps[7].result
    );
    assert_eq!(lab.served("api"), "2026.5.17.post4");
    assert_eq!(lab.served("worker"), "2026.5.17.post4");
    // Out of maintenance mode again: the flag is gone and the balancer's check passes.
    assert!(!lab.exists("maintenance"));
    assert_eq!(get(lab.port("api"), "/health/lb", &[]).0, 200);
    // The smoke test's item was created and deleted on the new release.
    let (status, items) = get(lab.port("api"), "/items", &[]);
    assert_eq!((status, items.as_str()), (200, r#"{"items":[]}"#));
    let db = lab.path().join("data/gitpulse.db");
    assert_eq!(sqlite_columns(&db, "items"), ["id", "name", "note"]);
    assert!(sqlite_columns(&db, "legacy_sessions").is_empty());
    assert!(lab.exists("state/backups/gitpulse-2026.5.15-before-2026.5.17.post4.tar.gz"));
}

#[test]
fn gitpulse_rolls_a_bad_release_back_by_restoring_the_backup() {
    let Some(lab) = gitpulse_lab() else { return };
    // Written after the backup's snapshot would be lost by a restore; written before, kept.
    let upload = lab.path().join("data/uploads/avatar.png");
    let before = std::fs::read(&upload).unwrap();
    let out = gitpulse_update(&lab, "2026.5.17.post5");
    assert_eq!(out.code, 1, "{}", out.stderr);

    let record = record_with(
        &lab,
        "state/update-2026.5.17.post5.json",
        false,
        &[
            "ugw-backup ok",
            "ugw-backup ok",
            "ugw-fetch ok",
            "ugw-drain ok",
            "ugw-migrate ok",
            "ugw-swap ok",
            "ugw-wait-healthy failed",
            "ugw-verify skipped",
            "ugw-migrate skipped",
            "ugw-drain skipped",
            "ugw-swap ok",
            "ugw-backup ok",
            "ugw-wait-healthy ok",
            "ugw-drain ok",
        ],
    );
    assert_eq!(lab.served("api"), "2026.5.15");
    assert_eq!(lab.served("worker"), "2026.5.15");
    assert!(lab.exists("gitpulse/releases/2026.5.17.post5/.ugw-failed"));
    // The database as the backup had it: neither release's column, v1's table back.
    let db = lab.path().join("data/gitpulse.db");
    assert_eq!(sqlite_columns(&db, "items"), ["id", "name"]);
    assert_eq!(sqlite_columns(&db, "legacy_sessions"), ["id", "token"]);
    assert_eq!(std::fs::read(&upload).unwrap(), before);
    // Back in service only after the old release answered again.
    assert!(!lab.exists("maintenance"));
    assert_eq!(get(lab.port("api"), "/health/lb", &[]).0, 200);
    let (healthy, undone) = (span(&record.steps[12]).1, span(&record.steps[13]).0);
    assert!(
        undone >= healthy,
        "maintenance ended before the old release was healthy"
    );
}
