//! Terragnos Core's upgrade: a Docker Compose stack (api, worker) switched by image digest, a
//! bearer-token health check, PostgreSQL on the host (see the parent module for the lab).

use super::*;

/// The tools of Terragnos' upgrade pipe, in order.
const TERRAGNOS_PIPE: [&str; 8] = [
    "ugw-backup",
    "ugw-backup",
    "ugw-fetch",
    "ugw-migrate",
    "ugw-swap",
    "ugw-wait-healthy",
    "ugw-verify",
    "ugw-migrate",
];

/// The Terragnos lab on a database of the kit's cluster named after `test`; `None` (skipped,
/// or failed under CI=true) without Docker or PostgreSQL.
fn terragnos_lab(test: &str) -> Option<(ComposeLab, Database)> {
    if !kit::require("pg_dump") || !kit::require("pg_restore") {
        return None;
    }
    kit::docker::require_docker()?;
    let db = kit::postgres::database(test)?;
    let lab = ComposeLab::start(
        "terragnos",
        &["python3", "sha256sum", "docker-registry"],
        &[("DATABASE_URL", &db.url())],
    )?;
    Some((lab, db))
}

/// The image reference (`REPO@sha256:…`) the lab's install fetched: the old version's.
fn installed_reference(lab: &Lab) -> String {
    let project = String::from_utf8(lab.file(".env"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("COMPOSE_PROJECT_NAME="))
        .unwrap()
        .to_string();
    let install = lab.record(&format!("install-{project}.json"));
    install.steps[0].result["reference"]
        .as_str()
        .unwrap()
        .to_string()
}

fn terragnos_upgrade(lab: &ComposeLab, version: &str) -> kit::Outcome {
    let env = format!("{}/.env", lab.s());
    lab.run("upgrade.sh", &[version], &[("TERRAGNOS_ENV", &env)])
}

/// The api's token, from the lab's .env.
fn terragnos_token(lab: &Lab) -> String {
    let env = String::from_utf8(lab.file(".env")).unwrap();
    env.lines()
        .find_map(|l| l.strip_prefix("TERRAGNOS_API_TOKEN="))
        .unwrap()
        .to_string()
}

/// The version the api answers to a client with the token (and that it refuses one without).
fn terragnos_api_version(lab: &Lab) -> String {
    let bearer = format!("Authorization: Bearer {}", terragnos_token(lab));
    let (status, body) = get(lab.port("api"), "/health/ready", &[&bearer]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(lab.port("api"), "/health/ready", &[]).0, 401);
    version_in(&body)
}

#[test]
fn terragnos_upgrades_the_stack_with_the_token_kept_out_of_sight() {
    let Some((lab, db)) = terragnos_lab("rb_terragnos_ok") else {
        return;
    };
    let argv_log = lab.path().join("argv.log");
    let path = spy_on_tools(&lab.path().join("spy"), &argv_log);
    let env = format!("{}/.env", lab.s());
    let out = lab.run(
        "upgrade.sh",
        &["v1.5.0"],
        &[("TERRAGNOS_ENV", &env), ("PATH", &path)],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);

    let record = record_with(
        &lab,
        "state/upgrade-v1.5.0.json",
        true,
        &pipe_steps(&TERRAGNOS_PIPE, None),
    );
    // The backup is a pg_dump of this database; the client's view passed its three checks.
    assert_eq!(record.steps[0].result["pg"].as_array().unwrap().len(), 1);
    assert_eq!(
        record.steps[6].result["passed"], 3,
        "{:#}",
        record.steps[6].result
    );
    assert_eq!(terragnos_api_version(&lab), "v1.5.0");
    assert_eq!(lab.served("worker"), "v1.5.0");
    // Both containers run the image the fetch verified, by its digest.
    let fetched = &record.steps[2].result;
    assert_eq!(fetched["version"], "v1.5.0", "{fetched:#}");
    let reference = fetched["reference"].as_str().unwrap();
    assert!(reference.contains("@sha256:"), "{reference}");
    assert_eq!(lab.image_of("api"), reference);
    assert_eq!(lab.image_of("worker"), reference);
    assert_eq!(record.steps[4].result["current"], reference);
    // Expand before the swap, contract after it.
    assert_eq!(pg_columns(&db, "items"), ["id", "name", "note"]);
    assert!(pg_columns(&db, "legacy_sessions").is_empty());
    // The token went to the api (it answers 401 without it) but nowhere anyone reads: not in
    // what the run said, its records, or a command line.
    let token = terragnos_token(&lab);
    out.never_shows(&token);
    for (path, text) in texts_below(&lab.path().join("state")) {
        assert!(!text.contains(&token), "{} holds the token", path.display());
    }
    for (path, text) in texts_below(&lab.path().join("stack")) {
        assert!(!text.contains(&token), "{} holds the token", path.display());
    }
    let api_pid = kit::docker::inspect(&lab.container("api"), "{{.State.Pid}}");
    let cmdline = std::fs::read(format!("/proc/{api_pid}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("ugw-demo-app"));
    assert!(!String::from_utf8_lossy(&cmdline).contains(&token));
    let argv = std::fs::read_to_string(&argv_log).unwrap();
    assert!(
        argv.contains("ugw-wait-healthy "),
        "the spy saw no tool: {argv}"
    );
    assert!(
        !argv.contains(&token),
        "a tool had the token in its argv: {argv}"
    );
    // lab_stop takes down the project, its images and the registry.
    lab.stop_and_check();
}

#[test]
fn terragnos_a_release_that_fails_is_rolled_back_and_the_database_restored() {
    let Some((lab, db)) = terragnos_lab("rb_terragnos_bad") else {
        return;
    };
    let out = terragnos_upgrade(&lab, "v1.6.0");
    assert_eq!(out.code, 1, "{}", out.stderr);

    let record = record_with(
        &lab,
        "state/upgrade-v1.6.0.json",
        false,
        &[
            pipe_steps(&TERRAGNOS_PIPE, Some(5)),
            pipe_steps(&["ugw-swap", "ugw-backup", "ugw-wait-healthy"], None),
        ]
        .concat(),
    );
    assert_eq!(record.steps[5].error_kind(), "fail_condition");
    assert_eq!(terragnos_api_version(&lab), "v1.4.0");
    assert_eq!(lab.served("worker"), "v1.4.0");
    // Both containers on the old image again, by digest; the rollback names the bad one.
    let old = installed_reference(&lab);
    assert_eq!(lab.image_of("api"), old);
    assert_eq!(lab.image_of("worker"), old);
    let bad = record.steps[2].result["reference"].as_str().unwrap();
    assert_eq!(record.steps[4].result["current"], bad);
    let rollback = &record.steps[8].result;
    assert_eq!(
        (
            &rollback["rollback"],
            &rollback["current"],
            &rollback["marked_failed"]
        ),
        (&true.into(), &old.clone().into(), &bad.into()),
        "{rollback:#}"
    );
    // The bad release's migrations (v1.5.0's and its own) are gone with the restore.
    assert_eq!(pg_columns(&db, "items"), ["id", "name"]);
    assert_eq!(pg_columns(&db, "legacy_sessions"), ["id", "token"]);
    assert_eq!(db.sql("SELECT version FROM ugw.ugw_migrations"), ["1"]);
}
