//! Terragnos Core's upgrade: a Compose stack, a bearer-token health check, PostgreSQL (see the
//! parent module for the lab).

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

fn terragnos_upgrade(lab: &Lab, version: &str) -> kit::Outcome {
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
    let Some((lab, db)) = pg_lab("terragnos", "rb_terragnos_ok") else {
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
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", lab.pid("api").trim())).unwrap();
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
}

#[test]
fn terragnos_a_release_that_fails_is_rolled_back_and_the_database_restored() {
    let Some((lab, db)) = pg_lab("terragnos", "rb_terragnos_bad") else {
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
    assert_eq!(
        std::fs::read_link(lab.path().join("stack/current")).unwrap(),
        Path::new("releases/v1.4.0")
    );
    assert!(lab.exists("stack/releases/v1.6.0/.ugw-failed"));
    // The bad release's migrations (v1.5.0's and its own) are gone with the restore.
    assert_eq!(pg_columns(&db, "items"), ["id", "name"]);
    assert_eq!(pg_columns(&db, "legacy_sessions"), ["id", "token"]);
    assert_eq!(db.sql("SELECT version FROM ugw.ugw_migrations"), ["1"]);
}
