//! The update of `GitPulse` on Docker Compose: calendar-versioned images switched by digest,
//! maintenance mode, a smoke test, the database and the uploads volume restored on failure
//! (see the parent module for the lab).

use super::*;

fn gitpulse_lab() -> Option<ComposeLab> {
    ComposeLab::start(
        "gitpulse",
        &["python3", "sha256sum", "docker-registry"],
        &[],
    )
}

/// A setting of the lab's gitpulse.env.
fn gitpulse_setting(lab: &Lab, name: &str) -> String {
    let env = String::from_utf8(lab.file("gitpulse.env")).unwrap();
    let prefix = format!("{name}=");
    env.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in gitpulse.env"))
        .to_string()
}

/// The one upload in the lab's uploads volume, on the host (its mount point).
fn gitpulse_upload(lab: &Lab) -> PathBuf {
    let volume = gitpulse_setting(lab, "UPLOADS_VOLUME");
    let mountpoint =
        kit::docker::docker_ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", &volume]);
    Path::new(&mountpoint).join("avatar.png")
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

fn gitpulse_update(lab: &ComposeLab, version: &str) -> kit::Outcome {
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
    // The backup holds the uploads volume beside the database.
    let backup = record.steps[0].result.to_string();
    let volume = gitpulse_setting(&lab, "UPLOADS_VOLUME");
    assert!(backup.contains(&volume), "{backup}");
    // Both containers run the image the fetch verified, by its digest.
    let reference = record.steps[2].result["reference"].as_str().unwrap();
    assert!(reference.contains("@sha256:"), "{reference}");
    assert_eq!(lab.image_of("api"), reference);
    assert_eq!(lab.image_of("worker"), reference);
    // Maintenance mode: the flag file put there, waited out to zero in flight, then removed.
    let flag = lab.path().join("data/maintenance").display().to_string();
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
    assert!(!lab.exists("data/maintenance"));
    assert_eq!(get(lab.port("api"), "/health/lb", &[]).0, 200);
    // The smoke test's item was created and deleted on the new release.
    let (status, items) = get(lab.port("api"), "/items", &[]);
    assert_eq!((status, items.as_str()), (200, r#"{"items":[]}"#));
    let db = lab.path().join("data/gitpulse.db");
    assert_eq!(sqlite_columns(&db, "items"), ["id", "name", "note"]);
    assert!(sqlite_columns(&db, "legacy_sessions").is_empty());
    assert!(lab.exists("state/backups/gitpulse-2026.5.15-before-2026.5.17.post4.tar.gz"));
    // lab_stop takes down the project, its volume, its images and the registry.
    lab.stop_and_check();
}

#[test]
fn gitpulse_rolls_a_bad_release_back_by_restoring_the_backup() {
    let Some(lab) = gitpulse_lab() else { return };
    // The upload as the backup takes it; then, once the backup is made (a migration step has
    // its record only after the backup steps), the bad release overwrites it in the volume:
    // the restore must put it back.
    let upload = gitpulse_upload(&lab);
    let before = std::fs::read(&upload).unwrap();
    let env = format!("{}/gitpulse.env", lab.s());
    let path = overwrite_at_each_migration(&lab, &upload);
    let out = lab.run(
        "update.sh",
        &["2026.5.17.post5"],
        &[("GITPULSE_ENV", &env), ("PATH", &path)],
    );
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
    back_on_the_installed_image(&lab, &record);
    // The database as the backup had it: neither release's column, v1's table back.
    let db = lab.path().join("data/gitpulse.db");
    assert_eq!(sqlite_columns(&db, "items"), ["id", "name"]);
    assert_eq!(sqlite_columns(&db, "legacy_sessions"), ["id", "token"]);
    assert_eq!(std::fs::read(&upload).unwrap(), before);
    // Back in service only after the old release answered again.
    assert!(!lab.exists("data/maintenance"));
    assert_eq!(get(lab.port("api"), "/health/lb", &[]).0, 200);
    let (healthy, undone) = (span(&record.steps[12]).1, span(&record.steps[13]).0);
    assert!(
        undone >= healthy,
        "maintenance ended before the old release was healthy"
    );
}

/// A PATH whose `ugw-migrate` first overwrites `upload` (once it has its record, so after the
/// backup steps), then runs the real one: a bad release damaging the uploads during the run.
fn overwrite_at_each_migration(lab: &Lab, upload: &Path) -> String {
    let wrappers = lab.path().join("wrappers");
    std::fs::create_dir_all(&wrappers).unwrap();
    let migrate = wrappers.join("ugw-migrate");
    std::fs::write(
        &migrate,
        format!(
            "#!/bin/sh\nrecord=$(cat)\nprintf 'overwritten by the bad release' >'{}'\n\
             printf '%s\\n' \"$record\" | exec '{}' \"$@\"\n",
            upload.display(),
            kit::bin("ugw-migrate").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &migrate,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    format!("{}:{}", wrappers.display(), kit::path_with_bins())
}

/// Both containers on the image the lab installed, by digest, and the record's rollback step
/// (its eleventh) pinned that one and names the fetched bad one failed.
#[track_caller]
fn back_on_the_installed_image(lab: &ComposeLab, record: &Record) {
    let project = gitpulse_setting(lab, "COMPOSE_PROJECT_NAME");
    let install = lab.record(&format!("install-{project}.json"));
    let old = install.steps[0].result["reference"].as_str().unwrap();
    assert_eq!(lab.image_of("api"), old);
    assert_eq!(lab.image_of("worker"), old);
    let bad = record.steps[2].result["reference"].as_str().unwrap();
    let rollback = &record.steps[10].result;
    assert_eq!(
        (
            &rollback["rollback"],
            &rollback["current"],
            &rollback["marked_failed"]
        ),
        (&true.into(), &old.into(), &bad.into()),
        "{rollback:#}"
    );
}
