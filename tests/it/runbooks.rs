//! The five published upgrade runbooks redone with ugw (examples/runbooks/), each run for real
//! in its lab of demo nodes: the upgrade that goes through, and a bad release that must be
//! rolled back. The assertions read what an operator would look at afterwards: the exit code,
//! the records, the version each node answers, the files on disk, the database.

use crate::kit;

use kit::Record;
use kit::haproxy::{self, HaProxy, Server};
use kit::load::Load;
use kit::postgres::Database;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

// ---- the lab ----

/// A runbook's lab in a temp folder (built by its lab.sh), stopped when dropped, even when
/// the test fails.
struct Lab {
    dir: tempfile::TempDir,
    runbook: &'static str,
}

impl Lab {
    /// `examples/runbooks/RUNBOOK/lab.sh DIR` with `env`; `None` (skipped, or failed under
    /// CI=true) when a component the runbook needs is missing.
    fn start(runbook: &'static str, needs: &[&str], env: &[(&str, &str)]) -> Option<Lab> {
        if !needs.iter().all(|component| kit::require(component)) {
            return None;
        }
        let lab = Lab {
            dir: tempfile::Builder::new()
                .prefix("ugw-rb-")
                .tempdir()
                .unwrap(),
            runbook,
        };
        let lab_sh = examples().join(runbook).join("lab.sh");
        let out = lab.bash(&[lab_sh.to_str().unwrap(), lab.s()], env);
        assert_eq!(out.code, 0, "lab.sh failed:\n{}", out.stderr);
        Some(lab)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn s(&self) -> &str {
        self.path().to_str().unwrap()
    }

    /// Run the runbook's `script` with `args` and `env`, as an operator would (stdin closed).
    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> kit::Outcome {
        let script = self.script(script);
        let mut command_line = vec![script.as_str()];
        command_line.extend_from_slice(args);
        let out = self.bash(&command_line, env);
        eprintln!("{} said:\n{}{}", self.runbook, out.stdout, out.stderr);
        out
    }

    /// The path of one of the runbook's files.
    fn script(&self, name: &str) -> String {
        examples()
            .join(self.runbook)
            .join(name)
            .to_str()
            .unwrap()
            .to_string()
    }

    fn bash(&self, argv: &[&str], env: &[(&str, &str)]) -> kit::Outcome {
        self.program("bash", argv, env)
    }

    /// `program` with `argv` in the lab's folder, the binaries on PATH, stdin closed.
    fn program(&self, program: &str, argv: &[&str], env: &[(&str, &str)]) -> kit::Outcome {
        let mut cmd = Command::new(program);
        cmd.args(argv)
            .current_dir(self.path())
            .env("PATH", kit::path_with_bins())
            .env("UGW_BIN_DIR", kit::bin("ugw-demo-app").parent().unwrap())
            .env_remove("UGW_HOST_ID")
            .stdin(Stdio::null());
        for (name, value) in env {
            cmd.env(name, value);
        }
        kit::run(cmd)
    }

    /// A record the runbook left, decoded strictly.
    fn record(&self, relative: &str) -> Record {
        let path = self.path().join(relative);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        kit::parse_record(&text)
    }

    fn file(&self, relative: &str) -> Vec<u8> {
        std::fs::read(self.path().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
    }

    fn exists(&self, relative: &str) -> bool {
        self.path().join(relative).exists()
    }

    /// The port NODE listens on (LAB/NODE/port).
    fn port(&self, node: &str) -> u16 {
        String::from_utf8(self.file(&format!("{node}/port")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The pid of NODE's service (LAB/NODE/app.pid).
    fn pid(&self, node: &str) -> String {
        String::from_utf8(self.file(&format!("{node}/app.pid"))).unwrap()
    }

    /// The version NODE answers on /health/ready, read by hand (not by the tool under test).
    fn served(&self, node: &str) -> String {
        let (status, body) = get(self.port(node), "/health/ready", &[]);
        assert_eq!(status, 200, "{node}: {body}");
        version_in(&body)
    }
}

/// Drop the lab and check that it stopped every process it started (each `*.pid` file).
fn stop_and_check(lab: Lab) {
    let pids: Vec<i32> = texts_below(lab.path())
        .into_iter()
        .filter(|(path, _)| path.extension().is_some_and(|e| e == "pid"))
        .filter_map(|(_, text)| text.trim().parse().ok())
        .collect();
    assert!(!pids.is_empty());
    drop(lab);
    for pid in pids {
        assert!(
            kit::gone(pid, Duration::from_secs(2)),
            "pid {pid} still runs"
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let lib = examples().join("lib.sh");
        let _ = Command::new("bash")
            .arg("-c")
            .arg(r#"source "$1" && lab_stop "$2""#)
            .args(["lab_stop", lib.to_str().unwrap(), self.s()])
            .stdin(Stdio::null())
            .status();
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/runbooks")
}

/// GET `path` on 127.0.0.1:`port` with `headers`: the status and the body; status 0 when
/// nothing listens there.
fn get(port: u16, path: &str, headers: &[&str]) -> (u16, String) {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let extra = headers.join("\r\n") + if headers.is_empty() { "" } else { "\r\n" };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn version_in(body: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    json["version"].as_str().unwrap_or_default().to_string()
}

// ---- reading records ----

/// `tool status` of every step, in order.
fn steps(record: &Record) -> Vec<String> {
    record
        .steps
        .iter()
        .map(|s| format!("{} {}", s.tool, s.status))
        .collect()
}

/// The record at `relative`, which must be ok (or failed) with exactly these steps.
#[track_caller]
fn record_with(lab: &Lab, relative: &str, ok: bool, expected: &[impl AsRef<str>]) -> Record {
    let record = lab.record(relative);
    assert_eq!(record.ok, ok, "{relative}: {record:#?}");
    let expected: Vec<&str> = expected.iter().map(AsRef::as_ref).collect();
    assert_eq!(steps(&record), expected, "{relative}");
    record
}

/// The steps a pipe of `tools` leaves when the one at `failed` fails: those before it ok, the
/// ones after it skipped (they received a failed record); all ok when none fails.
fn pipe_steps(tools: &[&str], failed: Option<usize>) -> Vec<String> {
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let status = match failed {
                Some(f) if i == f => "failed",
                Some(f) if i > f => "skipped",
                _ => "ok",
            };
            format!("{tool} {status}")
        })
        .collect()
}

/// When a step started and ended, in ms since the epoch (the record's UTC timestamps).
fn span(step: &kit::Step) -> (u64, u64) {
    let start = epoch_ms(&step.started);
    (start, start + step.elapsed_ms)
}

/// `2026-11-21T23:59:01.123Z` in ms since the epoch.
fn epoch_ms(stamp: &str) -> u64 {
    let n = |range: std::ops::Range<usize>| -> i64 { stamp[range].parse().unwrap() };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let ms = ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23);
    u64::try_from(ms).unwrap()
}

// ---- Guts: validators one at a time, the leader last, a binary under systemd ----

const VALIDATORS: [&str; 4] = ["validator1", "validator2", "validator3", "validator4"];

fn guts_lab() -> Option<Lab> {
    Lab::start("guts", &["python3", "setsid", "sha256sum"], &[])
}

fn guts_upgrade(lab: &Lab, version: &str) -> kit::Outcome {
    let conf = format!("{}/upgrade.conf", lab.s());
    lab.run(
        "validator-upgrade.sh",
        &[version],
        &[("GUTS_UPGRADE_CONF", &conf)],
    )
}

#[test]
fn guts_validators_go_one_at_a_time_and_the_leader_last() {
    let Some(lab) = guts_lab() else { return };
    let out = guts_upgrade(&lab, "v1.1.0");
    assert_eq!(out.code, 0, "{}", out.stderr);

    let new = lab.file("www/guts-node-v1.1.0-linux-amd64");
    let old = lab.file("www/guts-node-v1.0.0-linux-amd64");
    let mut spans = Vec::new();
    for v in VALIDATORS {
        let record = record_with(
            &lab,
            &format!("state/records/{v}.json"),
            true,
            &[
                "ugw-backup ok",
                "ugw-fetch ok",
                "ugw-swap ok",
                "ugw-wait-healthy ok",
            ],
        );
        assert!(record.steps.iter().all(|s| s.host == v), "{record:#?}");
        assert_eq!(lab.served(v), "v1.1.0", "{v}");
        assert_eq!(lab.file(&format!("{v}/bin/guts-node")), new, "{v}");
        assert_eq!(lab.file(&format!("{v}/bin/guts-node.ugw-prev")), old, "{v}");
        assert!(lab.exists(&format!("state/backups/{v}/{v}-before-v1.1.0.tar.gz")));
        let (first, last) = (&record.steps[0], record.steps.last().unwrap());
        spans.push((v, span(first).0, span(last).1));
    }
    // One at a time: each validator started after the one before it was healthy; the leader
    // (validator3) last.
    spans.sort_by_key(|&(_, start, _)| start);
    let order: Vec<&str> = spans.iter().map(|&(v, _, _)| v).collect();
    assert_eq!(
        order,
        ["validator1", "validator2", "validator4", "validator3"],
    );
    for pair in spans.windows(2) {
        assert!(pair[1].1 >= pair[0].2, "overlap: {pair:?}");
    }
    let fleet = lab.record("state/records/fleet.json");
    assert!(fleet.ok, "{fleet:#?}");
    assert_eq!(steps(&fleet), ["ugw-verify ok"]);
}

#[test]
fn guts_a_validator_that_fails_gets_its_binary_back_and_the_rollout_stops() {
    let Some(lab) = guts_lab() else { return };
    let pids: Vec<String> = VALIDATORS.iter().map(|v| lab.pid(v)).collect();
    let out = guts_upgrade(&lab, "v1.2.0");
    assert_eq!(out.code, 1, "{}", out.stderr);

    let record = record_with(
        &lab,
        "state/records/validator1.json",
        false,
        &[
            "ugw-backup ok",
            "ugw-fetch ok",
            "ugw-swap ok",
            "ugw-wait-healthy failed",
            "ugw-swap ok",
            "ugw-wait-healthy ok",
        ],
    );
    assert_eq!(record.steps[3].error_kind(), "fail_condition");
    // The binary marked failed is the one fetched (by its sha256).
    assert_eq!(
        record.steps[4].result["marked_failed"],
        record.steps[1].result["sha256"]
    );
    let old = lab.file("www/guts-node-v1.0.0-linux-amd64");
    assert_eq!(lab.file("validator1/bin/guts-node"), old);
    assert_eq!(
        lab.file("validator1/bin/guts-node.ugw-failed"),
        lab.file("www/guts-node-v1.2.0-linux-amd64")
    );
    assert_eq!(lab.served("validator1"), "v1.0.0");
    // The others were never touched: no record, the same binary and process as before.
    for (v, pid) in VALIDATORS.iter().zip(&pids).skip(1) {
        assert!(!lab.exists(&format!("state/records/{v}.json")), "{v}");
        assert_eq!(lab.file(&format!("{v}/bin/guts-node")), old, "{v}");
        assert!(!lab.exists(&format!("{v}/bin/guts-node.ugw-prev")), "{v}");
        assert_eq!(&lab.pid(v), pid, "{v} was restarted");
        assert_eq!(lab.served(v), "v1.0.0", "{v}");
    }
    stop_and_check(lab);
}

// ---- shared checks ----

/// A lab whose runbook uses PostgreSQL: a database of the kit's private cluster, named after
/// the test, given to lab.sh as `DATABASE_URL`.
fn pg_lab(runbook: &'static str, test: &str) -> Option<(Lab, Database)> {
    if !kit::require("pg_dump") || !kit::require("pg_restore") {
        return None;
    }
    let db = kit::postgres::database(test)?;
    let lab = Lab::start(
        runbook,
        &["python3", "setsid", "sha256sum"],
        &[("DATABASE_URL", &db.url())],
    )?;
    Some((lab, db))
}

/// The columns of `table` in the PostgreSQL database, in order; empty when it does not exist.
fn pg_columns(db: &Database, table: &str) -> Vec<String> {
    db.sql(&format!(
        "SELECT column_name FROM information_schema.columns WHERE table_name = '{table}' ORDER BY ordinal_position"
    ))
}

/// The columns of `table` in a SQLite file; empty when it does not exist.
fn sqlite_columns(path: &Path, table: &str) -> Vec<String> {
    let db = rusqlite::Connection::open(path).unwrap();
    let mut query = db
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap();
    query
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every file below `dir`, read as (lossy) text: where a secret must not be.
fn texts_below(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                todo.push(path);
            } else if entry.file_type().unwrap().is_file() {
                let bytes = std::fs::read(&path).unwrap();
                found.push((path, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    found
}

/// Whether the process of pid file `relative` still runs.
fn runs(lab: &Lab, relative: &str) -> bool {
    let Ok(pid) = std::fs::read_to_string(lab.path().join(relative)) else {
        return false;
    };
    !kit::gone(pid.trim().parse().unwrap(), Duration::ZERO)
}

/// A folder of stand-ins for each ugw tool that append their command line to `log` and exec
/// the real tool (which runs as it would): what anyone running `ps` would have seen. Returns
/// a PATH with that folder first.
fn spy_on_tools(dir: &Path, log: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let bins = kit::bin("ugw-wait-healthy").parent().unwrap().to_path_buf();
    for entry in std::fs::read_dir(&bins).unwrap().map(Result::unwrap) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("ugw-") || name.contains('.') {
            continue;
        }
        let spy = dir.join(&name);
        std::fs::write(
            &spy,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$0 $*\" >>'{}'\nexec '{}' \"$@\"\n",
                log.display(),
                entry.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&spy, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    format!("{}:{}", dir.display(), kit::path_with_bins())
}

// ---- Terragnos Core: a Compose stack, a bearer-token health check, PostgreSQL ----

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

// ---- GitPulse: calendar versions, SQLite, maintenance mode, smoke test, restore ----

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

// ---- GitLab: Rails nodes behind nginx, an Ansible play, post-deployment migrations ----

const RAILS: [&str; 3] = ["rails1", "rails2", "rails3"];

fn gitlab_upgrade(lab: &Lab, version: &str) -> kit::Outcome {
    let inventory = format!("{}/inventory.yml", lab.s());
    let playbook = lab.script("zero-downtime-upgrade.yml");
    let temp = format!("{}/ansible-tmp", lab.s());
    let out = lab.program(
        "ansible-playbook",
        &[
            "-i",
            &inventory,
            &playbook,
            "-e",
            &format!("gitlab_version={version}"),
        ],
        &[
            ("ANSIBLE_LOCAL_TEMP", &temp),
            ("ANSIBLE_REMOTE_TEMP", &temp),
            ("ANSIBLE_NOCOLOR", "1"),
            ("ANSIBLE_RETRY_FILES_ENABLED", "0"),
        ],
    );
    eprintln!("ansible-playbook said:\n{}{}", out.stdout, out.stderr);
    out
}

fn gitlab_lab(test: &str) -> Option<(Lab, Database)> {
    if !kit::require("ansible-playbook") || !kit::require("nginx") {
        return None;
    }
    pg_lab("gitlab", test)
}

/// The version a Rails node answers through its nginx (the load balancer's view).
fn through_nginx(lab: &Lab, node: &str) -> (u16, String) {
    let port = String::from_utf8(lab.file(&format!("{node}/nginx_port"))).unwrap();
    get(port.trim().parse().unwrap(), "/-/readiness", &[])
}

#[test]
fn gitlab_rails_nodes_one_at_a_time_and_post_migrations_after_all_of_them() {
    if !HaProxy::available() {
        return;
    }
    let Some((lab, db)) = gitlab_lab("rb_gitlab_ok") else {
        return;
    };
    let nginx_before: Vec<String> = RAILS
        .iter()
        .map(|n| String::from_utf8(lab.file(&format!("{n}/nginx.pid"))).unwrap())
        .collect();
    // The external load balancer the procedure requires, checking /-/readiness, with load
    // through it all along. nginx closes its port at once on QUIT, before any check can see
    // it: the balancer retries a refused connection on another node.
    let servers: Vec<Server> = RAILS
        .iter()
        .map(|n| {
            let port = String::from_utf8(lab.file(&format!("{n}/nginx_port"))).unwrap();
            Server::new(n, &format!("127.0.0.1:{}", port.trim()), true)
        })
        .collect();
    let options = haproxy::Options {
        check_path: "/-/readiness".into(),
        backend_extra: vec!["retries 3".into(), "option redispatch".into()],
        ..haproxy::Options::default()
    };
    let balancer = HaProxy::start_with(&servers, &options);
    for n in RAILS {
        assert!(
            balancer.wait_status(n, "UP", Duration::from_secs(10)),
            "{n} never UP"
        );
    }
    let load = Load::start(
        &format!("{}/work?ms=20", balancer.url()),
        40,
        Duration::from_secs(120),
    );
    let out = gitlab_upgrade(&lab, "16.2.0");
    let failures = load.failures();
    let tally = load.stop();
    assert_eq!(out.code, 0);
    assert_eq!(tally.bad(), 0, "{tally:?}: {failures:?}");
    assert!(tally.ok >= 40, "too little load to tell: {tally:?}");

    let mut spans = Vec::new();
    for (node, old_nginx) in RAILS.iter().zip(&nginx_before) {
        let mut expected = vec!["ugw-drain ok", "ugw-fetch ok"];
        if *node == "rails1" {
            expected.push("ugw-migrate ok");
        }
        expected.extend(["ugw-swap ok", "ugw-wait-healthy ok", "ugw-wait-healthy ok"]);
        if *node == "rails1" {
            expected.push("ugw-migrate ok");
        }
        let record = record_with(
            &lab,
            &format!("{node}/upgrade-16.2.0.json"),
            true,
            &expected,
        );
        assert!(record.steps.iter().all(|s| s.host == *node), "{record:#?}");
        let drained = &record.steps[0].result;
        assert_eq!(drained["method"], "signal", "{drained:#}");
        assert_eq!(drained["pid"].to_string(), old_nginx.trim(), "{drained:#}");
        // nginx was drained (its old master is gone) and started again; the node answers the
        // new release through it.
        assert!(kit::gone(old_nginx.trim().parse().unwrap(), Duration::ZERO));
        let (status, body) = through_nginx(&lab, node);
        assert_eq!(
            (status, version_in(&body).as_str()),
            (200, "16.2.0"),
            "{node}"
        );
        spans.push((span(&record.steps[0]).0, span(&record.steps[4]).1));
        if *node == "rails1" {
            assert_eq!(record.steps[2].result["phase"], "pre");
            assert_eq!(record.steps[6].result["phase"], "post");
            spans.push((span(&record.steps[6]).0, span(&record.steps[6]).1));
        }
    }
    // One node at a time, the deploy node first, and the post-deployment migrations (kept
    // second in `spans`) only after the last node was ready.
    let post = spans.remove(1);
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "nodes overlap: {spans:?}");
    }
    assert!(
        post.0 >= spans[2].1,
        "post migrations before rails3 was done"
    );
    assert_eq!(pg_columns(&db, "items"), ["id", "name", "note"]);
    assert!(pg_columns(&db, "legacy_sessions").is_empty());
    stop_and_check(lab);
}

#[test]
fn gitlab_a_failed_deploy_node_is_rolled_back_left_drained_and_stops_the_play() {
    let Some((lab, db)) = gitlab_lab("rb_gitlab_bad") else {
        return;
    };
    let pids: Vec<String> = RAILS
        .iter()
        .map(|n| String::from_utf8(lab.file(&format!("{n}/nginx.pid"))).unwrap())
        .collect();
    // A release that skips a minor one is refused before anything changes.
    let out = gitlab_upgrade(&lab, "16.3.0");
    assert_eq!(out.code, 2, "ansible-playbook's code for a failed host");
    assert!(
        out.stdout
            .contains("16.1.0 to 16.3.0 skips a minor release")
    );
    assert!(!lab.exists("rails1/upgrade-16.3.0.json"));
    assert!(runs(&lab, "rails1/nginx.pid"));

    let out = gitlab_upgrade(&lab, "16.2.1");
    assert_eq!(out.code, 2, "ansible-playbook's code for a failed host");

    record_with(
        &lab,
        "rails1/upgrade-16.2.1.json",
        false,
        &[
            "ugw-drain ok",
            "ugw-fetch ok",
            "ugw-migrate ok",
            "ugw-swap ok",
            "ugw-wait-healthy failed",
            "ugw-swap ok",
            "ugw-wait-healthy ok",
        ],
    );
    // rails1 runs 16.1.0 again, behind an nginx that stays stopped: out of traffic.
    assert_eq!(lab.served("rails1"), "16.1.0");
    assert!(kit::gone(pids[0].trim().parse().unwrap(), Duration::ZERO));
    assert!(!runs(&lab, "rails1/nginx.pid"));
    assert_eq!(through_nginx(&lab, "rails1").0, 0, "nothing listens");
    // The other nodes were never touched, and the post-deployment migrations never ran.
    for (node, pid) in RAILS.iter().zip(&pids).skip(1) {
        assert!(
            !lab.exists(&format!("{node}/upgrade-16.2.1.json")),
            "{node}"
        );
        assert_eq!(
            &String::from_utf8(lab.file(&format!("{node}/nginx.pid"))).unwrap(),
            pid
        );
        let (status, body) = through_nginx(&lab, node);
        assert_eq!(
            (status, version_in(&body).as_str()),
            (200, "16.1.0"),
            "{node}"
        );
    }
    assert_eq!(pg_columns(&db, "legacy_sessions"), ["id", "token"]);
}

// ---- Keeptrusts: database, API, console, then gateways one at a time ----

const COMPONENTS: [&str; 4] = ["api", "console", "gateway1", "gateway2"];

fn keeptrusts_update(lab: &Lab, version: &str) -> kit::Outcome {
    let conf = format!("{}/upgrade.conf", lab.s());
    lab.run(
        "rolling-update.sh",
        &[version],
        &[("KEEPTRUSTS_CONF", &conf)],
    )
}

/// HAProxy in front of the gateways, checking each one's `/health/lb` (what the drain's flag
/// file turns to 503), with no retry that could hide a request sent to a gateway going down.
fn gateway_balancer(lab: &Lab) -> HaProxy {
    let servers: Vec<Server> = ["gateway1", "gateway2"]
        .iter()
        .map(|g| Server::new(g, &format!("127.0.0.1:{}", lab.port(g)), true))
        .collect();
    let options = haproxy::Options {
        check_path: "/health/lb".into(),
        backend_extra: vec!["retries 0".into()],
        ..haproxy::Options::default()
    };
    let balancer = HaProxy::start_with(&servers, &options);
    for g in ["gateway1", "gateway2"] {
        assert!(
            balancer.wait_status(g, "UP", Duration::from_secs(10)),
            "{g} never UP"
        );
    }
    balancer
}

#[test]
fn keeptrusts_updates_in_dependency_order_with_gateways_one_at_a_time() {
    if !HaProxy::available() {
        return;
    }
    let Some((lab, db)) = pg_lab("keeptrusts", "rb_keeptrusts_ok") else {
        return;
    };
    // Traffic through the gateways all along: not one request may fail.
    let balancer = gateway_balancer(&lab);
    let load = Load::start(
        &format!("{}/work?ms=20", balancer.url()),
        40,
        Duration::from_secs(90),
    );
    let out = keeptrusts_update(&lab, "2.5.0");
    let failures = load.failures();
    let tally = load.stop();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(tally.bad(), 0, "{tally:?}: {failures:?}");
    assert!(tally.ok >= 40, "too little load to tell: {tally:?}");
    for g in ["gateway1", "gateway2"] {
        assert_eq!(balancer.status(g), "UP", "{g} left out of the balancer");
    }

    let record = lab.record("state/rolling-update-2.5.0.json");
    assert!(record.ok, "{record:#?}");
    assert!(record.steps.iter().all(|s| s.status == "ok"));
    // Who did what, in order: the swaps and the gateways' drains, checks and returns.
    let order: Vec<String> = record
        .steps
        .iter()
        .filter(|s| ["ugw-swap", "ugw-drain", "ugw-migrate"].contains(&s.tool.as_str()))
        .map(|s| format!("{} {}", s.tool, s.host))
        .collect();
    let host = &record.steps[0].host;
    assert_eq!(
        order,
        [
            // The migration runs as the api component, which fetched the release it reads.
            "ugw-migrate api".into(),
            "ugw-swap api".into(),
            "ugw-swap console".into(),
            "ugw-drain gateway1".into(),
            "ugw-swap gateway1".into(),
            "ugw-drain gateway1".into(),
            "ugw-drain gateway2".into(),
            "ugw-swap gateway2".into(),
            "ugw-drain gateway2".into(),
            format!("ugw-migrate {host}"),
            format!("ugw-migrate {host}"),
        ]
    );
    // Each gateway was checked while still out of the balancer, before it went back.
    for gateway in ["gateway1", "gateway2"] {
        let at = |tool: &str| {
            record
                .steps
                .iter()
                .rposition(|s| s.tool == tool && s.host == gateway)
                .unwrap()
        };
        assert!(at("ugw-swap") < at("ugw-verify") && at("ugw-verify") < at("ugw-drain"));
        assert!(!lab.exists(&format!("{gateway}/lb-drained")));
    }
    // Compared with the baseline taken before anything changed: latency and memory judged.
    let compared = &record.steps.last().unwrap().result;
    let measures: Vec<&str> = compared["comparison"]
        .as_array()
        .unwrap_or_else(|| panic!("no comparison: {compared:#}"))
        .iter()
        .map(|c| c["measure"].as_str().unwrap())
        .collect();
    assert!(
        measures.contains(&"p95_ms") && measures.contains(&"memory_bytes"),
        "{compared:#}"
    );
    for c in COMPONENTS {
        assert_eq!(lab.served(c), "2.5.0", "{c}");
    }
    assert_eq!(pg_columns(&db, "items"), ["id", "name", "note"]);
    assert!(pg_columns(&db, "legacy_sessions").is_empty());
}

#[test]
fn keeptrusts_a_failed_api_takes_the_platform_back_and_restores_the_database() {
    let Some((lab, db)) = pg_lab("keeptrusts", "rb_keeptrusts_bad") else {
        return;
    };
    let pids: Vec<String> = COMPONENTS.iter().map(|c| lab.pid(c)).collect();
    let out = keeptrusts_update(&lab, "2.5.1");
    assert_eq!(out.code, 1, "{}", out.stderr);

    let record = lab.record("state/rolling-update-2.5.1.json");
    assert!(!record.ok);
    let failed: Vec<String> = record
        .steps
        .iter()
        .filter(|s| s.status != "ok")
        .map(|s| format!("{} {} {}", s.tool, s.host, s.status))
        .collect();
    assert_eq!(failed, ["ugw-wait-healthy api failed"]);
    let tail: Vec<String> = steps(&record).split_off(record.steps.len() - 6);
    assert_eq!(
        tail,
        [
            "ugw-swap ok",
            "ugw-backup ok",
            "ugw-wait-healthy ok",
            "ugw-wait-healthy ok",
            "ugw-wait-healthy ok",
            "ugw-wait-healthy ok"
        ]
    );
    for c in COMPONENTS {
        assert_eq!(lab.served(c), "2.4.0", "{c}");
    }
    assert!(lab.exists("api/releases/2.5.1/.ugw-failed"));
    // Only the api had moved: the console and gateways kept their process and release.
    for (c, pid) in COMPONENTS.iter().zip(&pids).skip(1) {
        assert_eq!(&lab.pid(c), pid, "{c} was restarted");
        assert!(!lab.exists(&format!("{c}/releases/2.5.1")), "{c}");
    }
    assert_eq!(pg_columns(&db, "items"), ["id", "name"]);
    assert_eq!(pg_columns(&db, "legacy_sessions"), ["id", "token"]);
}

// ---- the README's tables ----

/// Every `FOLDER/FILE:LINE` the README's tables name holds, on that line, the first snippet
/// of the row's "with ugw" column: the tables cannot drift from the runbooks they describe.
#[test]
fn the_readme_tables_point_at_the_lines_that_do_each_step() {
    let readme = std::fs::read_to_string(examples().join("README.md")).unwrap();
    let mut per_file = std::collections::BTreeMap::<String, usize>::new();
    for row in readme.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let Some(place) = cells.last().and_then(|c| backticked(c)) else {
            continue;
        };
        let Some((file, line)) = place.rsplit_once(':') else {
            continue;
        };
        let Ok(line) = line.parse::<usize>() else {
            continue;
        };
        let snippet = backticked(cells[1]).unwrap_or_else(|| panic!("no snippet: {row}"));
        let text = std::fs::read_to_string(examples().join(file)).unwrap();
        let at = text.lines().nth(line - 1).unwrap_or_default();
        assert!(
            at.contains(snippet),
            "{file}:{line} is {at:?}, not {snippet:?}"
        );
        *per_file.entry(file.to_string()).or_default() += 1;
    }
    let files: Vec<&str> = per_file.keys().map(String::as_str).collect();
    assert_eq!(
        files,
        [
            "gitlab/zero-downtime-upgrade.yml",
            "gitpulse/update.sh",
            "guts/validator-upgrade.sh",
            "keeptrusts/rolling-update.sh",
            "terragnos/upgrade.sh"
        ]
    );
    assert!(per_file.values().all(|&n| n >= 10), "{per_file:?}");
}

/// The text of the first `…` in `cell`.
fn backticked(cell: &str) -> Option<&str> {
    let (_, rest) = cell.split_once('`')?;
    Some(rest.split_once('`')?.0)
}
