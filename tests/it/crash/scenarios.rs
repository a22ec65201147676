//! The set-ups the crash tests kill a tool in, each with the invariants that must hold after a
//! kill at any moment: what the set-up is, the run to kill, and the check (invariants, the
//! failure path and a rerun), which returns each violation it found as a sentence.

use super::kit;
use kit::file_server::{FileServer, Served};
use kit::{s, sha256};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use ugw_shared::atomic::is_temp_name;

/// One tool run to kill, and what must hold after the kill.
pub struct Scenario {
    pub name: &'static str,
    /// Make the set-up in `dir` (a fresh, empty folder).
    pub prepare: Box<dyn Fn(&Path) + Send + Sync>,
    /// The run that is killed.
    pub command: Box<dyn Fn(&Path) -> Command + Send + Sync>,
    /// The invariants after the kill, the failure path and a rerun: each violation found.
    pub check: Check,
}

/// A scenario's check: the folder the run worked in and how it ended, to the violations.
pub type Check = Box<dyn Fn(&Path, &Ended) -> Vec<String> + Send + Sync>;

/// How a killed (or finished) run ended.
#[derive(Debug)]
pub struct Ended {
    /// The signal that ended it (9 for SIGKILL); `None` when it exited.
    pub signal: Option<i32>,
    pub code: Option<i32>,
    pub stderr: String,
}

impl Ended {
    pub fn killed(&self) -> bool {
        self.signal == Some(libc::SIGKILL)
    }
}

/// Run `cmd` (with `UGW_FAILPOINT=failpoint` when given), killing it with SIGKILL after
/// `kill_after` when given and it is still running then; returns how it ended and how long it
/// ran: until it exited, or until the kill when it was killed.
pub fn run_killed(
    mut cmd: Command,
    failpoint: Option<&str>,
    kill_after: Option<Duration>,
) -> (Ended, Duration) {
    if let Some(name) = failpoint {
        cmd.env("UGW_FAILPOINT", name);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("the tool starts");
    let exited = exit_watch(&child);
    let took = match kill_after {
        Some(after) => {
            if let Ok(at) = exited.recv_timeout(after) {
                at - started
            } else {
                // Not yet exited, and not reaped (the watch waits with WNOWAIT), so the pid is
                // still this child's: the kill lands, or finds it exiting this very moment.
                let _ = child.kill();
                started.elapsed()
            }
        }
        None => exited
            .recv_timeout(Duration::from_secs(30))
            .map_or_else(|_| started.elapsed(), |at| at - started),
    };
    let output = kit::wait_bounded(child, Duration::from_secs(30));
    (
        Ended {
            signal: output.status.signal(),
            code: output.status.code(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        },
        took,
    )
}

/// The moment `child` exits, sent once it has: a thread waits for it with `WNOWAIT`, which
/// leaves it to be reaped by its `Child` (so no other process can have its pid before the
/// kill) while telling exactly when a run that finished before its kill ended.
fn exit_watch(child: &std::process::Child) -> std::sync::mpsc::Receiver<Instant> {
    use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
    let pid = Pid::from_child(child);
    let (send, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Interrupted is asked again; any other end (exited, or no such child) is the end.
        while let Err(rustix::io::Errno::INTR) = waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {}
        let _ = send.send(Instant::now());
    });
    exited
}

/// Run `cmd` to its end (no failpoint): the failure path and the rerun.
fn finish(cmd: Command) -> kit::Outcome {
    kit::run(cmd)
}

/// The entries of `dir` that are neither one of `finals` nor a temp name of one of them:
/// what a crash left under a name no one expects.
fn strays(dir: &Path, finals: &[&str]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|entry| {
            !finals.iter().any(|name| {
                entry == name
                    || ["tmp", "unpack", "exchange"]
                        .iter()
                        .any(|kind| is_temp_name(entry, name, kind))
            }) && !is_some_temp_name(entry)
        })
        .map(|entry| format!("{}: unexpected entry {entry}", dir.display()))
        .collect()
}

/// A temp name of any file (`.NAME.XXXXXXXXXX.KIND`), and the `-journal` SQLite keeps
/// beside one (a database snapshot written under a temp name): what a crash may leave, but
/// never under a final name.
fn is_some_temp_name(entry: &str) -> bool {
    ["tmp", "unpack", "exchange", "tmp-journal", "tmp-wal"]
        .iter()
        .any(|kind| {
            let Some(head) = entry.strip_suffix(&format!(".{kind}")) else {
                return false;
            };
            let Some(dot) = head
                .len()
                .checked_sub(ugw_shared::atomic::TEMP_RANDOM_LEN + 1)
            else {
                return false;
            };
            head.get(1..dot)
                .is_some_and(|name| !name.is_empty() && is_temp_name(entry, name, kind))
        })
}

/// Every file under `dir`, relative path -> content.
fn tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                walk(root, &path, out);
            } else {
                let content = std::fs::read(&path).unwrap_or_default();
                out.insert(path.strip_prefix(root).unwrap().to_path_buf(), content);
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A copy of `dir` beside it (`cp -a`), for a rerun that must start from what the kill left
/// while the failure path runs on the original.
fn copy_of(dir: &Path) -> PathBuf {
    let copy = dir.with_extension("rerun");
    let status = Command::new("cp")
        .arg("-a")
        .arg(dir)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    copy
}

fn violation_if(bad: bool, text: impl FnOnce() -> String) -> Vec<String> {
    if bad { vec![text()] } else { Vec::new() }
}

/// Rerun `cmd` and expect exit 0.
fn rerun_ok(what: &str, cmd: Command) -> Vec<String> {
    let out = finish(cmd);
    violation_if(out.code != 0, || {
        format!("{what}: rerun exit {}: {}", out.code, out.stderr.trim())
    })
}

// ---- --record FILE ----

/// `ugw-wait-healthy --record FILE`, appending a step to a record of one step.
pub fn record_file() -> Scenario {
    fn cmd(dir: &Path) -> Command {
        let mut cmd = kit::tool("ugw-wait-healthy");
        cmd.args(["--record", s(&dir.join("run.json")), "--cmd", "true"]);
        cmd
    }
    Scenario {
        name: "--record FILE",
        prepare: Box::new(|dir| {
            let mut first = kit::tool("ugw-wait-healthy");
            first.args([
                "--record",
                s(&dir.join("run.json")),
                "--new",
                "--cmd",
                "true",
            ]);
            finish(first).assert_code(0);
        }),
        command: Box::new(cmd),
        check: Box::new(|dir, _| {
            let mut bad = strays(dir, &["run.json", "run.json.lock"]);
            let Some(text) = std::fs::read_to_string(dir.join("run.json")).ok() else {
                return vec!["run.json is gone".into()];
            };
            let Ok(record) = serde_json::from_str::<kit::Record>(&text) else {
                return vec![format!("run.json does not parse: {text:?}")];
            };
            let steps = record.steps.len();
            bad.extend(violation_if(!(1..=2).contains(&steps), || {
                format!("{steps} steps")
            }));
            let last = record.steps.last().unwrap();
            bad.extend(violation_if(
                last.status != "ok" || last.tool != "ugw-wait-healthy",
                || format!("last step {} {}", last.tool, last.status),
            ));
            bad.extend(rerun_ok("record", cmd(dir)));
            let after = std::fs::read_to_string(dir.join("run.json")).unwrap_or_default();
            let again = serde_json::from_str::<kit::Record>(&after).map_or(0, |r| r.steps.len());
            bad.extend(violation_if(again != steps + 1, || {
                format!("the rerun's step is missing: {again} steps after {steps}")
            }));
            bad
        }),
    }
}

// ---- ugw-migrate ----

/// Where a migration scenario's database is.
#[derive(Clone)]
enum Db {
    Sqlite,
    Postgres(String),
}

impl Db {
    fn url(&self, dir: &Path) -> String {
        match self {
            Db::Sqlite => format!("sqlite://{}/app.db", s(dir)),
            Db::Postgres(url) => url.clone(),
        }
    }

    /// A fresh schema (PostgreSQL) for the next run; SQLite's database is in the fresh folder.
    fn reset(&self) {
        if let Db::Postgres(url) = self {
            let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
            client
                .batch_execute(
                    "DROP SCHEMA IF EXISTS ugw CASCADE; DROP SCHEMA public CASCADE; \
                     CREATE SCHEMA public;",
                )
                .unwrap();
        }
    }

    /// The first column of each row of `sql`, as text.
    fn query(&self, dir: &Path, sql: &str) -> Vec<String> {
        match self {
            Db::Sqlite => {
                let Ok(conn) = rusqlite::Connection::open(dir.join("app.db")) else {
                    return Vec::new();
                };
                let Ok(mut q) = conn.prepare(sql) else {
                    return Vec::new();
                };
                q.query_map([], |r| {
                    r.get::<_, rusqlite::types::Value>(0).map(|v| match v {
                        rusqlite::types::Value::Integer(i) => i.to_string(),
                        rusqlite::types::Value::Text(t) => t,
                        other => format!("{other:?}"),
                    })
                })
                .unwrap()
                .map(Result::unwrap)
                .collect()
            }
            Db::Postgres(url) => {
                let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
                client
                    .simple_query(sql)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| match m {
                        postgres::SimpleQueryMessage::Row(row) => {
                            Some(row.get(0).unwrap_or("").to_string())
                        }
                        _ => None,
                    })
                    .collect()
            }
        }
    }

    /// The ledger: (version, success) for each row; empty when there is no ledger yet.
    fn ledger(&self, dir: &Path) -> Vec<(i64, bool)> {
        let (table, success) = match self {
            Db::Sqlite => ("ugw_migrations", "success"),
            Db::Postgres(_) => ("ugw.ugw_migrations", "success::int"),
        };
        let exists = match self {
            Db::Sqlite => !self
                .query(
                    dir,
                    "SELECT name FROM sqlite_master WHERE name = 'ugw_migrations'",
                )
                .is_empty(),
            Db::Postgres(_) => {
                self.query(dir, "SELECT to_regclass('ugw.ugw_migrations') IS NOT NULL") == ["t"]
            }
        };
        if !exists {
            return Vec::new();
        }
        let rows = self.query(
            dir,
            &format!("SELECT version || ':' || {success} FROM {table} ORDER BY version"),
        );
        rows.iter()
            .map(|row| {
                let (v, ok) = row.split_once(':').unwrap();
                (v.parse().unwrap(), ok == "1")
            })
            .collect()
    }

    /// The tables of the application's schema.
    fn tables(&self, dir: &Path) -> Vec<String> {
        match self {
            Db::Sqlite => self.query(
                dir,
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 't%' ORDER BY name",
            ),
            Db::Postgres(_) => self.query(
                dir,
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
            ),
        }
    }
}

/// How many migrations each scenario has.
const MIGRATIONS: i64 = 4;

/// The files: version N creates `tN` (transactional) or `tNa` and `tNb` (no-transaction, two
/// statements, so a kill can fall between them).
fn migration_sql(version: i64, no_transaction: bool) -> String {
    if no_transaction {
        format!(
            "-- ugw:no-transaction\nCREATE TABLE t{version}a (x INTEGER);\nCREATE TABLE t{version}b (x INTEGER);\n"
        )
    } else {
        format!("CREATE TABLE t{version} (x INTEGER);\nINSERT INTO t{version} VALUES (1);\n")
    }
}

fn migrate_cmd(db: &Db, dir: &Path) -> Command {
    let mut cmd = kit::tool("ugw-migrate");
    cmd.env_remove("DATABASE_URL").args([
        "up",
        "--create",
        "--db",
        &db.url(dir),
        "--dir",
        s(&dir.join("migrations")),
    ]);
    cmd
}

/// The tables version `v` creates.
fn tables_of(version: i64, no_transaction: bool) -> Vec<String> {
    if no_transaction {
        vec![format!("t{version}a"), format!("t{version}b")]
    } else {
        vec![format!("t{version}")]
    }
}

/// The ledger against the schema: a row with success means all of its tables; a table
/// without a row is applied-but-unrecorded; a row without success (dirty) only for a
/// no-transaction file, and only the last one.
fn ledger_matches_schema(db: &Db, dir: &Path, no_transaction: bool) -> (Vec<String>, Option<i64>) {
    let ledger = db.ledger(dir);
    let tables = db.tables(dir);
    let mut bad = Vec::new();
    let mut dirty = None;
    for version in 1..=MIGRATIONS {
        let expected = tables_of(version, no_transaction);
        let present: Vec<&String> = expected.iter().filter(|t| tables.contains(t)).collect();
        match ledger.iter().find(|(v, _)| *v == version) {
            Some((_, true)) if present.len() != expected.len() => bad.push(format!(
                "version {version} recorded applied but {} of its {} tables exist",
                present.len(),
                expected.len()
            )),
            Some((_, false)) if !no_transaction => {
                bad.push(format!("transactional version {version} flagged dirty"));
            }
            Some((_, false)) => dirty = Some(version),
            None if !present.is_empty() => {
                bad.push(format!("version {version} applied but not recorded"));
            }
            _ => {}
        }
    }
    if let Some(d) = dirty
        && ledger.iter().any(|(v, _)| *v > d)
    {
        bad.push(format!("rows after the dirty version {d}"));
    }
    (bad, dirty)
}

/// `ugw-migrate up` on SQLite or PostgreSQL, transactional files or no-transaction ones.
fn migrate_scenario(name: &'static str, db: Db, no_transaction: bool) -> Scenario {
    let for_prepare = db.clone();
    let for_command = db.clone();
    Scenario {
        name,
        prepare: Box::new(move |dir| {
            for_prepare.reset();
            let files = dir.join("migrations");
            std::fs::create_dir_all(files.join("post")).unwrap();
            for version in 1..=MIGRATIONS {
                std::fs::write(
                    files.join(format!("{version:04}_m{version}.sql")),
                    migration_sql(version, no_transaction),
                )
                .unwrap();
            }
        }),
        command: Box::new(move |dir| migrate_cmd(&for_command, dir)),
        check: Box::new(move |dir, _| {
            let (mut bad, dirty) = ledger_matches_schema(&db, dir, no_transaction);
            if let Some(version) = dirty {
                // The failure path of a dirty no-transaction file: it refuses to go on until
                // resolved; the operator finishes the file by hand and marks it applied.
                let refused = finish(migrate_cmd(&db, dir));
                bad.extend(violation_if(refused.code == 0, || {
                    format!("up went on over the dirty version {version}")
                }));
                let existing = db.tables(dir);
                let mut finish_by_hand = String::new();
                for table in tables_of(version, true) {
                    if !existing.contains(&table) {
                        use std::fmt::Write as _;
                        let _ = write!(finish_by_hand, "CREATE TABLE {table} (x INTEGER);");
                    }
                }
                if !finish_by_hand.is_empty() {
                    match &db {
                        Db::Sqlite => rusqlite::Connection::open(dir.join("app.db"))
                            .unwrap()
                            .execute_batch(&finish_by_hand)
                            .unwrap(),
                        Db::Postgres(url) => postgres::Client::connect(url, postgres::NoTls)
                            .unwrap()
                            .batch_execute(&finish_by_hand)
                            .unwrap(),
                    }
                }
                let mut resolve = kit::tool("ugw-migrate");
                resolve.env_remove("DATABASE_URL").args([
                    "resolve",
                    &version.to_string(),
                    "--applied",
                    "--db",
                    &db.url(dir),
                    "--dir",
                    s(&dir.join("migrations")),
                ]);
                bad.extend(rerun_ok("resolve --applied", resolve));
            }
            bad.extend(rerun_ok("migrate up", migrate_cmd(&db, dir)));
            let ledger = db.ledger(dir);
            bad.extend(violation_if(
                ledger.len() != MIGRATIONS as usize || ledger.iter().any(|(_, ok)| !ok),
                || format!("after the rerun the ledger is {ledger:?}"),
            ));
            bad.extend(ledger_matches_schema(&db, dir, no_transaction).0);
            bad
        }),
    }
}

pub fn migrate_sqlite(no_transaction: bool) -> Scenario {
    let name = if no_transaction {
        "ugw-migrate up (SQLite, no-transaction)"
    } else {
        "ugw-migrate up (SQLite)"
    };
    migrate_scenario(name, Db::Sqlite, no_transaction)
}

/// `None` when PostgreSQL is not here (the test skips, or fails under CI=true).
pub fn migrate_postgres(no_transaction: bool) -> Option<Scenario> {
    let (name, db_name) = if no_transaction {
        (
            "ugw-migrate up (PostgreSQL, no-transaction)",
            "crash_pg_notx",
        )
    } else {
        ("ugw-migrate up (PostgreSQL)", "crash_pg_tx")
    };
    let db = kit::postgres::database(db_name)?;
    Some(migrate_scenario(
        name,
        Db::Postgres(db.url()),
        no_transaction,
    ))
}

// ---- ugw-swap ----

fn write_release(dir: &Path, version: &str) {
    let bin = dir.join("staging").join(version).join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for i in 0..4 {
        std::fs::write(
            bin.join(format!("f{i}")),
            format!("{version} file {i}\n").repeat(200),
        )
        .unwrap();
    }
}

fn swap_cmd(dir: &Path, restart: bool) -> Command {
    let mut cmd = kit::tool("ugw-swap");
    cmd.current_dir(dir)
        .args(["--root", "root", "--from", "staging/v2", "--release", "v2"]);
    if restart {
        let restart = format!("cat {}/root/current/bin/f0 > {}/restarted", s(dir), s(dir));
        cmd.args(["--restart", &restart]);
        cmd.current_dir(dir);
    }
    cmd
}

/// `current`'s release, and whether its tree is exactly what was staged for it.
fn live_release(dir: &Path) -> Result<String, String> {
    let link = std::fs::read_link(dir.join("root/current"))
        .map_err(|e| format!("current does not resolve: {e}"))?;
    let version = link
        .strip_prefix("releases")
        .map_err(|_| format!("current -> {}", link.display()))?
        .to_string_lossy()
        .into_owned();
    let live = tree(&dir.join("root/releases").join(&version));
    let staged = tree(&dir.join("staging").join(&version));
    if live.keys().filter(|k| k.starts_with("bin")).count() != staged.len()
        || staged
            .iter()
            .any(|(k, v)| live.get(k).is_none_or(|l| l != v))
    {
        return Err(format!("current -> {version}, which is incomplete"));
    }
    Ok(version)
}

/// `ugw-swap --root` from v1 to v2, with or without `--restart`.
pub fn swap_releases(restart: bool) -> Scenario {
    Scenario {
        name: if restart {
            "ugw-swap releases --restart"
        } else {
            "ugw-swap releases"
        },
        prepare: Box::new(|dir| {
            write_release(dir, "v1");
            write_release(dir, "v2");
            let mut first = kit::tool("ugw-swap");
            first.current_dir(dir).args([
                "--root",
                "root",
                "--from",
                "staging/v1",
                "--release",
                "v1",
            ]);
            finish(first).assert_code(0);
        }),
        command: Box::new(move |dir| swap_cmd(dir, restart)),
        check: Box::new(move |dir, _| {
            let mut bad = strays(
                &dir.join("root"),
                &["current", "releases", ".ugw-swap.lock"],
            );
            for entry in std::fs::read_dir(dir.join("root/releases"))
                .unwrap()
                .flatten()
            {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') && name != "v1" && name != "v2" {
                    bad.push(format!("releases/{name}: unexpected"));
                }
            }
            let live = match live_release(dir) {
                Ok(version) => version,
                Err(why) => return [bad, vec![why]].concat(),
            };
            let rerun_dir = copy_of(dir);
            // The failure path: a rollback puts v1 back when v2 went live.
            if live == "v2" {
                let mut rollback = kit::tool("ugw-swap");
                rollback
                    .current_dir(dir)
                    .args(["--root", "root", "--rollback"]);
                bad.extend(rerun_ok("swap --rollback", rollback));
                bad.extend(violation_if(live_release(dir) != Ok("v1".into()), || {
                    format!("after the rollback: {:?}", live_release(dir))
                }));
            }
            // Killed between the switch and the restart, the rerun restarts by the note the
            // killed run left in v2 (no --force-restart needed).
            bad.extend(rerun_ok("swap", swap_cmd(&rerun_dir, restart)));
            bad.extend(violation_if(
                live_release(&rerun_dir) != Ok("v2".into()),
                || format!("after the rerun: {:?}", live_release(&rerun_dir)),
            ));
            if restart {
                let seen = std::fs::read_to_string(rerun_dir.join("restarted")).unwrap_or_default();
                bad.extend(violation_if(!seen.starts_with("v2 file 0"), || {
                    format!("the rerun's restart saw {seen:?}")
                }));
            }
            let _ = std::fs::remove_dir_all(&rerun_dir);
            bad
        }),
    }
}

const BINARY_V1: &[u8] = b"#!/bin/sh\necho v1\n";

fn binary_v2() -> Vec<u8> {
    let mut bytes = b"#!/bin/sh\necho v2\n".to_vec();
    bytes.extend(std::iter::repeat_n(b'#', 200_000));
    bytes.push(b'\n');
    bytes
}

fn binary_cmd(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = kit::tool("ugw-swap");
    cmd.current_dir(dir).args(["--target", "app"]).args(extra);
    cmd
}

/// `binary_cmd` with `extra`, and with `--restart` running the binary into `restarted`
/// when `restart` (so what was restarted is seen).
fn binary_swap_cmd(dir: &Path, restart: bool, extra: &[&str]) -> Command {
    let mut cmd = binary_cmd(dir, extra);
    if restart {
        let restart = format!("sh {}/app > {}/restarted", s(dir), s(dir));
        cmd.args(["--restart", &restart]);
    }
    cmd
}

/// What the last `--restart` ran: the binary's output, or nothing.
fn restarted(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("restarted")).unwrap_or_default()
}

/// `ugw-swap --target app --from new`, with or without `--restart`: the binary is v1 or v2,
/// whole; the rollback puts v1 back (and restarts it), a rerun installs v2 (and restarts it).
pub fn swap_binary(restart: bool) -> Scenario {
    let swap = move |dir: &Path| binary_swap_cmd(dir, restart, &["--from", "staging/new"]);
    Scenario {
        name: if restart {
            "ugw-swap binary --restart"
        } else {
            "ugw-swap binary"
        },
        prepare: Box::new(|dir| {
            std::fs::create_dir(dir.join("staging")).unwrap();
            std::fs::write(dir.join("app"), BINARY_V1).unwrap();
            std::fs::write(dir.join("staging/new"), binary_v2()).unwrap();
        }),
        command: Box::new(swap),
        check: Box::new(move |dir, _| {
            let mut bad = strays(
                dir,
                &[
                    "app",
                    "app.ugw-prev",
                    "app.ugw-restart-pending",
                    "staging",
                    "restarted",
                    ".app.ugw-swap.lock",
                    "app.ugw-swap.lock",
                ],
            );
            let live = std::fs::read(dir.join("app")).unwrap_or_default();
            let v2 = binary_v2();
            if live != BINARY_V1 && live != v2 {
                bad.push(format!("app is neither v1 nor v2 ({} bytes)", live.len()));
                return bad;
            }
            if let Ok(prev) = std::fs::read(dir.join("app.ugw-prev")) {
                bad.extend(violation_if(prev != BINARY_V1, || {
                    "app.ugw-prev is not v1".into()
                }));
            }
            let rerun_dir = copy_of(dir);
            if live == v2 {
                bad.extend(rerun_ok(
                    "swap --rollback",
                    binary_swap_cmd(dir, restart, &["--rollback"]),
                ));
                bad.extend(violation_if(
                    std::fs::read(dir.join("app")).unwrap_or_default() != BINARY_V1,
                    || "the rollback did not put v1 back".into(),
                ));
                bad.extend(violation_if(restart && restarted(dir) != "v1\n", || {
                    format!("the rollback restarted {:?}", restarted(dir))
                }));
            }
            // Killed between the install and the restart, the rerun restarts by the note the
            // killed run left beside app (no --force-restart needed).
            bad.extend(rerun_ok("swap binary", swap(&rerun_dir)));
            bad.extend(violation_if(
                std::fs::read(rerun_dir.join("app")).unwrap_or_default() != v2,
                || "after the rerun app is not v2".into(),
            ));
            bad.extend(violation_if(
                restart && restarted(&rerun_dir) != "v2\n",
                || format!("the rerun restarted {:?}", restarted(&rerun_dir)),
            ));
            let _ = std::fs::remove_dir_all(&rerun_dir);
            bad
        }),
    }
}

// ---- ugw-backup ----

fn make_data(dir: &Path) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("config"), "backed up\n").unwrap();
    let blob: Vec<u8> = (0..400_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(data.join("blob"), blob).unwrap();
    rusqlite::Connection::open(data.join("app.db"))
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3);")
        .unwrap();
}

fn create_cmd(dir: &Path, name: &str) -> Command {
    let data = dir.join("data");
    let mut cmd = kit::tool("ugw-backup");
    cmd.args([
        "create",
        "--path",
        s(&data),
        "--db",
        &format!("sqlite://{}", s(&data.join("app.db"))),
        "--out",
        s(&dir.join("out")),
        "--name",
        name,
    ]);
    cmd
}

/// `ugw-backup verify ARCHIVE` passes.
fn verifies(archive: &Path) -> bool {
    let mut cmd = kit::tool("ugw-backup");
    cmd.args(["verify", s(archive)]);
    finish(cmd).code == 0
}

/// `ugw-backup create`: what carries a final name is whole.
pub fn backup_create() -> Scenario {
    Scenario {
        name: "ugw-backup create",
        prepare: Box::new(make_data),
        command: Box::new(|dir| create_cmd(dir, "b")),
        check: Box::new(|dir, _| {
            let out = dir.join("out");
            let mut bad = strays(
                &out,
                &[
                    "b.tar.gz",
                    "b.tar.gz.sha256",
                    "b.manifest.json",
                    ".ugw-backup.lock",
                ],
            );
            let archive = out.join("b.tar.gz");
            if archive.exists() {
                // Whole under its final name: the gzip stream reads to its end.
                let listed = Command::new("tar")
                    .arg("tzf")
                    .arg(&archive)
                    .output()
                    .unwrap();
                bad.extend(violation_if(!listed.status.success(), || {
                    "b.tar.gz is under its final name but not whole".into()
                }));
            }
            if out.join("b.tar.gz.sha256").exists() {
                bad.extend(violation_if(!verifies(&archive), || {
                    "b.tar.gz has its checksum but does not verify".into()
                }));
            }
            if let Ok(text) = std::fs::read_to_string(out.join("b.manifest.json")) {
                bad.extend(violation_if(
                    serde_json::from_str::<serde_json::Value>(&text).is_err(),
                    || "b.manifest.json does not parse".into(),
                ));
            }
            bad.extend(rerun_ok("backup create", create_cmd(dir, "b2")));
            bad.extend(violation_if(!verifies(&out.join("b2.tar.gz")), || {
                "the rerun's archive does not verify".into()
            }));
            bad
        }),
    }
}

fn restore_cmd(dir: &Path) -> Command {
    let mut cmd = kit::tool("ugw-backup");
    cmd.args(["restore", s(&dir.join("out/b.tar.gz")), "--in-place"]);
    cmd
}

/// The data folder as backed up (`Some(true)`), as changed since (`Some(false)`), or neither.
fn data_state(dir: &Path) -> Option<bool> {
    let data = dir.join("data");
    let config = std::fs::read_to_string(data.join("config")).ok()?;
    let rows: Vec<i64> = rusqlite::Connection::open_with_flags(
        data.join("app.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()?
    .prepare("SELECT x FROM t ORDER BY x")
    .ok()?
    .query_map([], |r| r.get(0))
    .ok()?
    .collect::<Result<_, _>>()
    .ok()?;
    let added = data.join("added").exists();
    match (config.as_str(), rows.as_slice(), added) {
        ("backed up\n", [1, 2, 3], false) => Some(true),
        ("changed\n", [1, 2, 3, 4], true) => Some(false),
        _ => None,
    }
}

/// `ugw-backup restore --in-place` over data changed since the backup.
pub fn backup_restore() -> Scenario {
    Scenario {
        name: "ugw-backup restore --in-place",
        prepare: Box::new(|dir| {
            make_data(dir);
            finish(create_cmd(dir, "b")).assert_code(0);
            let data = dir.join("data");
            std::fs::write(data.join("config"), "changed\n").unwrap();
            std::fs::write(data.join("added"), "x").unwrap();
            rusqlite::Connection::open(data.join("app.db"))
                .unwrap()
                .execute_batch("INSERT INTO t VALUES (4);")
                .unwrap();
        }),
        command: Box::new(restore_cmd),
        check: Box::new(|dir, _| {
            let mut bad = Vec::new();
            // The data as backed up or as it was: the database is restored after the folder,
            // so a kill between them may leave the folder restored and the database not.
            let data = dir.join("data");
            let config = std::fs::read_to_string(data.join("config")).unwrap_or_default();
            bad.extend(violation_if(
                config != "backed up\n" && config != "changed\n",
                || format!("data/config is {config:?}: the data folder is missing or half"),
            ));
            // The failure path: the restore again, and the data is as backed up.
            bad.extend(rerun_ok("restore --in-place", restore_cmd(dir)));
            bad.extend(violation_if(data_state(dir) != Some(true), || {
                "after the rerun the data is not as backed up".into()
            }));
            bad.extend(strays(dir, &["data", "out"]));
            bad
        }),
    }
}

// ---- ugw-fetch ----

/// A file server kept for the life of the test binary: every fetch scenario shares it.
fn server() -> &'static FileServer {
    static SERVER: std::sync::OnceLock<FileServer> = std::sync::OnceLock::new();
    SERVER.get_or_init(FileServer::start)
}

fn artifact() -> Vec<u8> {
    (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect()
}

/// A .tar.gz of 40 small files under `app/` (made by the system's tar).
fn release_archive() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    for i in 0..40 {
        std::fs::write(app.join(format!("f{i:02}")), release_file(i)).unwrap();
    }
    let archive = dir.path().join("release.tar.gz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .arg("app")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(&archive).unwrap()
}

/// The content of the release archive's file number `i`.
fn release_file(i: u32) -> Vec<u8> {
    format!("file {i}\n").repeat(500).into_bytes()
}

fn fetch_cmd(dir: &Path, name: &str, bytes: &[u8], extract: bool) -> Command {
    let url = server().url(name);
    let mut cmd = kit::tool("ugw-fetch");
    cmd.args([
        "--url",
        &url,
        "--sha256",
        &sha256(bytes),
        "--dest",
        s(&dir.join("dest")),
    ]);
    if extract {
        cmd.args(["--extract", "--name", "out"]);
    }
    cmd
}

/// `ugw-fetch` of a 1.5 MB artifact, or `--extract` of a release archive.
pub fn fetch(extract: bool) -> Scenario {
    let (name, bytes) = if extract {
        ("release.tar.gz", release_archive())
    } else {
        ("app.bin", artifact())
    };
    server().put(name, Served::new(&bytes));
    let for_command = bytes.clone();
    Scenario {
        name: if extract {
            "ugw-fetch --extract"
        } else {
            "ugw-fetch"
        },
        prepare: Box::new(|dir| std::fs::create_dir(dir.join("dest")).unwrap()),
        command: Box::new(move |dir| fetch_cmd(dir, name, &for_command, extract)),
        check: Box::new(move |dir, _| {
            let dest = dir.join("dest");
            let finals = if extract {
                ["out", ".ugw-fetch.lock", name]
            } else {
                [name, ".ugw-fetch.lock", name]
            };
            let mut bad = strays(&dest, &finals);
            let whole = |dest: &Path| {
                if extract {
                    let files = tree(&dest.join("out"));
                    files.keys().filter(|k| k.starts_with("app")).count() == 40
                        && (0..40).all(|i| {
                            [format!("app/f{i:02}"), format!("f{i:02}")]
                                .iter()
                                .any(|p| files.get(Path::new(p)) == Some(&release_file(i)))
                        })
                } else {
                    std::fs::read(dest.join(name)).is_ok_and(|b| b == bytes)
                }
            };
            let final_name = if extract { "out" } else { name };
            if dest.join(final_name).exists() {
                bad.extend(violation_if(!whole(&dest), || {
                    format!("{final_name} is under its final name but not whole")
                }));
            }
            bad.extend(rerun_ok("fetch", fetch_cmd(dir, name, &bytes, extract)));
            bad.extend(violation_if(!whole(&dest), || {
                format!("after the rerun {final_name} is not whole")
            }));
            bad
        }),
    }
}

// ---- ugw-drain ----

fn drain_cmd(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = kit::tool("ugw-drain");
    cmd.args(["--flag-file", s(&dir.join("flag"))]).args(extra);
    cmd
}

/// `ugw-drain --flag-file`: the flag is there whole or not at all; `--undo --always` (the
/// failure path, with no record from the killed run) puts the node back in traffic.
pub fn drain() -> Scenario {
    Scenario {
        name: "ugw-drain",
        prepare: Box::new(|_| {}),
        command: Box::new(|dir| drain_cmd(dir, &["--port", "1", "--lb-grace", "0s"])),
        check: Box::new(|dir, _| {
            let mut bad = strays(dir, &["flag", "flag.lock", ".ugw-drain.lock"]);
            let rerun_dir = copy_of(dir);
            bad.extend(rerun_ok(
                "drain --undo --always",
                drain_cmd(dir, &["--undo", "--always"]),
            ));
            bad.extend(violation_if(dir.join("flag").exists(), || {
                "the undo left the node out of traffic".into()
            }));
            bad.extend(rerun_ok(
                "drain",
                drain_cmd(&rerun_dir, &["--port", "1", "--lb-grace", "0s"]),
            ));
            bad.extend(violation_if(!rerun_dir.join("flag").exists(), || {
                "after the rerun the node is not drained".into()
            }));
            let _ = std::fs::remove_dir_all(&rerun_dir);
            bad
        }),
    }
}
