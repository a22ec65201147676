//! ugw-migrate against real SQLite files and a private PostgreSQL cluster: what runs, what
//! is refused, what the ledger and the schema say afterwards, and what many nodes at once
//! or a killed run leave behind.

use crate::kit;

use kit::migrations::{Dir, migrate};
use kit::observe::Background;
use kit::postgres::{Database, database};
use kit::{Outcome, tool, wait_bounded};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

// ---- the result, strictly ----

/// `up`'s step result, read with the type the tool writes it with.
type UpResult = ugw_shared::results::Migrated;

fn up_result(out: &Outcome) -> UpResult {
    let step = out.last_step();
    serde_json::from_value(step.result.clone())
        .unwrap_or_else(|e| panic!("not an up result ({e}): {:#}", step.result))
}

fn versions(result: &UpResult) -> Vec<i64> {
    result.applied.iter().map(|a| a.version).collect()
}

// ---- running it ----

fn sqlite_ledger(dir: &Dir) -> Vec<(i64, String, bool)> {
    let conn = dir.sqlite();
    let mut q = conn
        .prepare("SELECT version, phase, success FROM ugw_migrations ORDER BY version")
        .unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn sqlite_columns(dir: &Dir, table: &str) -> Vec<String> {
    let conn = dir.sqlite();
    let mut q = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap();
    q.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn pg_ledger(db: &Database) -> Vec<(i64, String, bool)> {
    let mut client = db.client();
    let exists: bool = client
        .query_one("SELECT to_regclass('ugw.ugw_migrations') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    if !exists {
        return Vec::new();
    }
    client
        .query(
            "SELECT version, phase, success FROM ugw.ugw_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn pg_columns(db: &Database, table: &str) -> Vec<String> {
    db.client()
        .query(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn two_pre_one_post() -> Dir {
    let dir = Dir::new();
    dir.file(
        "0001_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n",
    )
    .file(
        "0002_email.sql",
        "ALTER TABLE users ADD COLUMN email TEXT;\n",
    )
    .file(
        "post/0003_drop_name.sql",
        "ALTER TABLE users DROP COLUMN name;\n",
    );
    dir
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .fold(String::new(), |mut hex, b| {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

// ---- SQLite ----

/// Every file in `dir`, sorted: what a refused run must leave as it was.
fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A mistyped SQLite path must not start a fresh, empty database (issue 19 item 9): `up` and
/// `baseline` refuse it with exit 2, naming the path and `--create`, and leave nothing behind
/// (not even the lock file); `--create` makes it; an existing database needs no flag.
#[test]
fn sqlite_a_missing_database_is_made_only_with_create() {
    let dir = two_pre_one_post();
    let typo = dir.path().join("ap.db");
    let url = format!("sqlite://{}", typo.display());
    let before = listing(dir.path());
    for args in [
        vec!["up", "--db", &url, "--dir", &dir.s()],
        vec!["baseline", "1", "--db", &url, "--dir", &dir.s()],
        vec!["resolve", "--db", &url, "--dir", &dir.s()],
    ] {
        let out = migrate(&args);
        out.assert_code(2);
        assert_eq!(out.last_step().error_kind(), "usage", "{args:?}");
        out.stderr_has(typo.display().to_string());
        assert_eq!(listing(dir.path()), before, "{args:?} made something");
    }
    let refused = migrate(&["up", "--db", &url, "--dir", &dir.s()]);
    refused.stderr_has("--create");

    let created = migrate(&["up", "--create", "--db", &url, "--dir", &dir.s()]);
    created.succeeds();
    assert_eq!(versions(&up_result(&created)), [1, 2]);
    assert!(typo.is_file());

    // The database exists now: the next release's run needs no --create.
    let post = migrate(&["up", "--phase", "post", "--db", &url, "--dir", &dir.s()]);
    post.succeeds();
    assert_eq!(versions(&up_result(&post)), [3]);
}

#[test]
fn sqlite_fresh_up_applies_the_pre_phase_and_a_second_up_is_a_no_op() {
    let dir = two_pre_one_post();
    let out = migrate(&[
        "up",
        "--create",
        "--db",
        &dir.sqlite_url(),
        "--dir",
        &dir.s(),
    ]);
    out.succeeds();
    let step = out.last_step();
    assert!(step.changed);
    let result = up_result(&out);
    assert_eq!(versions(&result), [1, 2]);
    assert_eq!(result.phase, "pre");
    assert_eq!(result.db, dir.sqlite_url());
    assert_eq!(result.dir, dir.s());
    assert!(result.warnings.is_empty());
    assert_eq!(result.applied[0].name, "users");
    assert_eq!(result.applied[1].phase, "pre");
    assert!(result.applied.iter().all(|a| a.duration_ms < 60_000));
    assert_eq!(result.pending.len(), 1);
    assert_eq!(
        (
            result.pending[0].version,
            result.pending[0].name.as_str(),
            result.pending[0].phase.as_str()
        ),
        (3, "drop_name", "post")
    );
    assert_eq!(
        result.pending[0].checksum,
        sha256_hex(b"ALTER TABLE users DROP COLUMN name;\n")
    );
    assert_eq!(
        sqlite_ledger(&dir),
        [(1, "pre".into(), true), (2, "pre".into(), true)]
    );
    assert_eq!(sqlite_columns(&dir, "users"), ["id", "name", "email"]);
    let (checksum, algorithm, by): (String, String, String) = dir
        .sqlite()
        .query_row(
            "SELECT checksum, checksum_algorithm, applied_by FROM ugw_migrations WHERE version = 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        checksum,
        sha256_hex(b"ALTER TABLE users ADD COLUMN email TEXT;\n")
    );
    assert_eq!(algorithm, "sha256");
    assert!(by.contains(" pid ") && by.contains("ugw-migrate"), "{by}");
    assert_eq!(
        out.stderr.matches("applied 000").count(),
        2,
        "{}",
        out.stderr
    );

    let again = migrate(&["up", "--db", &dir.sqlite_url(), "--dir", &dir.s()]);
    again.succeeds();
    assert!(!again.last_step().changed);
    assert!(up_result(&again).applied.is_empty());
    assert_eq!(sqlite_ledger(&dir).len(), 2);
}

#[test]
fn sqlite_post_waits_for_pre_then_runs_after_it() {
    let dir = two_pre_one_post();
    let db = dir.sqlite_url();
    let early = migrate(&[
        "up",
        "--create",
        "--phase",
        "post",
        "--db",
        &db,
        "--dir",
        &dir.s(),
    ]);
    early
        .fails_with(kit::Kind::PrePending)
        .stderr_has("0001_users.sql, 0002_email.sql");
    assert!(sqlite_ledger(&dir).is_empty(), "nothing ran");

    migrate(&["up", "--db", &db, "--dir", &dir.s()]).succeeds();
    let post = migrate(&["up", "--phase", "post", "--db", &db, "--dir", &dir.s()]);
    post.succeeds();
    let result = up_result(&post);
    assert_eq!(versions(&result), [3]);
    assert_eq!(result.applied[0].phase, "post");
    assert!(result.pending.is_empty());
    assert_eq!(sqlite_columns(&dir, "users"), ["id", "email"]);
    assert_eq!(sqlite_ledger(&dir)[2], (3, "post".into(), true));

    let status = migrate(&["status", "--check", "--db", &db, "--dir", &dir.s()]);
    status.succeeds();
    let result = status.last_step().result;
    assert_eq!(result["applied"].as_array().unwrap().len(), 3);
    assert_eq!(
        result["pending"],
        serde_json::json!({"pre": [], "post": []})
    );
}

#[test]
fn sqlite_a_failing_migration_rolls_back_and_records_nothing() {
    let dir = Dir::new();
    dir.file("0001_users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY);\n")
        .file(
            "0002_broken.sql",
            "CREATE TABLE audit (id INTEGER);\nINSERT INTO users (id) VALUES (1);\nINSERT INTO nowhere VALUES (1);\n",
        );
    let out = migrate(&[
        "up",
        "--create",
        "--db",
        &dir.sqlite_url(),
        "--dir",
        &dir.s(),
    ]);
    out.assert_code(1);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "migration_failed");
    assert!(
        step.error
            .as_ref()
            .unwrap()
            .message
            .contains("0002_broken.sql")
    );
    assert!(step.error.as_ref().unwrap().message.contains("nowhere"));
    let result: UpResult = serde_json::from_value(step.result).unwrap();
    assert_eq!(
        versions(&result),
        [1],
        "what did apply is in the failed step"
    );
    assert_eq!(sqlite_ledger(&dir), [(1, "pre".into(), true)]);
    assert!(
        sqlite_columns(&dir, "audit").is_empty(),
        "the table was rolled back"
    );
    let users: i64 = dir
        .sqlite()
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 0, "the insert was rolled back");
}

#[test]
fn sqlite_a_failed_no_transaction_migration_is_dirty_until_resolved() {
    let dir = Dir::new();
    dir.file(
        "0001_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    )
    .file(
        "0002_half.sql",
        "-- ugw:no-transaction\nCREATE TABLE half (id INTEGER);\nINSERT INTO nowhere VALUES (1);\n",
    )
    .file("0003_later.sql", "CREATE TABLE later (id INTEGER);\n");
    let db = dir.sqlite_url();
    let out = migrate(&["up", "--create", "--db", &db, "--dir", &dir.s()]);
    // The statement's line.
    out.fails_with(kit::Kind::MigrationFailed)
        .stderr_has("0002_half.sql:3");
    assert_eq!(
        sqlite_ledger(&dir),
        [(1, "pre".into(), true), (2, "pre".into(), false)]
    );
    assert_eq!(
        sqlite_columns(&dir, "half"),
        ["id"],
        "outside a transaction: half-applied"
    );

    for _ in 0..2 {
        let dirty = migrate(&["up", "--db", &db, "--dir", &dir.s()]);
        dirty
            .fails_with(kit::Kind::Dirty)
            .stderr_has("resolve 2 --applied");
    }
    let listed = migrate(&["resolve", "--db", &db, "--dir", &dir.s()]);
    listed.succeeds();
    assert_eq!(listed.last_step().result["failed"][0]["version"], 2);

    // The operator finishes it by hand and says so.
    dir.sqlite()
        .execute_batch("CREATE TABLE nowhere (id INTEGER)")
        .unwrap();
    let resolved = migrate(&["resolve", "2", "--applied", "--db", &db, "--dir", &dir.s()]);
    resolved.succeeds();
    assert!(resolved.last_step().changed);
    assert_eq!(sqlite_ledger(&dir)[1], (2, "pre".into(), true));
    let out = migrate(&["up", "--db", &db, "--dir", &dir.s()]);
    out.succeeds();
    assert_eq!(versions(&up_result(&out)), [3]);
}

#[test]
fn sqlite_forget_runs_a_failed_no_transaction_migration_again() {
    let dir = Dir::new();
    dir.file(
        "0001_half.sql",
        "-- ugw:no-transaction\nCREATE TABLE IF NOT EXISTS half (id INTEGER);\nINSERT INTO gate VALUES (1);\n",
    );
    let db = dir.sqlite_url();
    migrate(&["up", "--create", "--db", &db, "--dir", &dir.s()]).assert_code(1);
    migrate(&["resolve", "1", "--forget", "--db", &db, "--dir", &dir.s()]).succeeds();
    assert!(sqlite_ledger(&dir).is_empty());
    dir.sqlite()
        .execute_batch("CREATE TABLE gate (id INTEGER)")
        .unwrap();
    let out = migrate(&["up", "--db", &db, "--dir", &dir.s()]);
    out.succeeds();
    assert_eq!(sqlite_ledger(&dir), [(1, "pre".into(), true)]);
}

#[test]
fn a_crlf_only_change_is_not_a_mismatch_and_a_real_change_is() {
    let dir = Dir::new();
    dir.file(
        "0001_users.sql",
        "CREATE TABLE users (id INTEGER);\nCREATE TABLE b (id INTEGER);\n",
    );
    let db = dir.sqlite_url();
    migrate(&["up", "--create", "--db", &db, "--dir", &dir.s()]).succeeds();

    dir.file(
        "0001_users.sql",
        "\u{FEFF}CREATE TABLE users (id INTEGER);\r\nCREATE TABLE b (id INTEGER);\r\n",
    );
    migrate(&["up", "--db", &db, "--dir", &dir.s()]).succeeds();
    migrate(&["status", "--check", "--db", &db, "--dir", &dir.s()]).succeeds();

    dir.file(
        "0001_users.sql",
        "CREATE TABLE users (id INTEGER, x TEXT);\n",
    );
    dir.file("0002_more.sql", "CREATE TABLE more (id INTEGER);\n");
    let out = migrate(&["up", "--db", &db, "--dir", &dir.s()]);
    out.fails_with(kit::Kind::ChecksumMismatch)
        .stderr_has("0001_users.sql");
    assert_eq!(sqlite_ledger(&dir).len(), 1, "nothing ran");
    let status = migrate(&["status", "--check", "--db", &db, "--dir", &dir.s()]);
    status.assert_code(1);
    assert_eq!(status.last_step().result["changed"][0]["version"], 1);

    let out = migrate(&["up", "--allow-changed", "--db", &db, "--dir", &dir.s()]);
    out.succeeds();
    assert_eq!(versions(&up_result(&out)), [2]);
}

#[test]
fn an_out_of_order_version_is_refused_unless_allowed() {
    let dir = Dir::new();
    dir.file("0001_a.sql", "CREATE TABLE a (id INTEGER);\n")
        .file("0003_c.sql", "CREATE TABLE c (id INTEGER);\n");
    let db = dir.sqlite_url();
    migrate(&["up", "--create", "--db", &db, "--dir", &dir.s()]).succeeds();
    dir.file("0002_b.sql", "CREATE TABLE b (id INTEGER);\n");
    let out = migrate(&["up", "--db", &db, "--dir", &dir.s()]);
    out.fails_with(kit::Kind::OutOfOrder)
        .stderr_has("0002_b.sql");
    let plan = migrate(&["plan", "--db", &db, "--dir", &dir.s()]);
    plan.assert_code(1);
    assert_eq!(
        plan.last_step().error_kind(),
        "out_of_order",
        "plan says what up would do"
    );
    let out = migrate(&["up", "--allow-out-of-order", "--db", &db, "--dir", &dir.s()]);
    out.succeeds();
    assert_eq!(versions(&up_result(&out)), [2]);
    assert_eq!(sqlite_columns(&dir, "b"), ["id"]);
}

#[test]
fn a_post_version_below_the_newest_pre_is_not_out_of_order() {
    let dir = Dir::new();
    dir.file("0001_a.sql", "CREATE TABLE a (id INTEGER, old TEXT);\n")
        .file("post/0002_drop_old.sql", "ALTER TABLE a DROP COLUMN old;\n")
        .file("0003_c.sql", "CREATE TABLE c (id INTEGER);\n");
    let db = dir.sqlite_url();
    migrate(&["up", "--create", "--db", &db, "--dir", &dir.s()]).succeeds();
    let out = migrate(&["up", "--phase", "post", "--db", &db, "--dir", &dir.s()]);
    out.succeeds();
    assert_eq!(versions(&up_result(&out)), [2]);
}

#[test]
fn plan_says_what_up_would_run_and_writes_nothing() {
    let dir = two_pre_one_post();
    let out = migrate(&["plan", "--db", &dir.sqlite_url(), "--dir", &dir.s()]);
    out.succeeds();
    let result = out.last_step().result;
    let would: Vec<i64> = result["would_apply"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_i64().unwrap())
        .collect();
    assert_eq!(would, [1, 2]);
    assert_eq!(
        result["would_apply"][0]["checksum"],
        sha256_hex(b"CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n")
    );
    assert!(
        !dir.path().join("app.db").exists(),
        "plan created no database"
    );
    assert!(
        !dir.path().join("app.db.ugw-migrate.lock").exists(),
        "and took no lock"
    );
    let dry = migrate(&[
        "up",
        "--dry-run",
        "--db",
        &dir.sqlite_url(),
        "--dir",
        &dir.s(),
    ]);
    dry.succeeds();
    assert!(dry.last_step().dry_run);
    assert!(!dir.path().join("app.db").exists());
}

#[test]
fn up_refuses_unsafe_pre_deploy_ddl_unless_allowed_and_lint_names_it() {
    let dir = Dir::new();
    dir.file(
        "0001_users.sql",
        "CREATE TABLE users (id INTEGER, name TEXT);\n",
    );
    let db = dir.sqlite_url();
    migrate(&["up", "--create", "--db", &db, "--dir", &dir.s()]).succeeds();
    dir.file(
        "0002_drop.sql",
        "-- tidy up\nALTER TABLE users\n  DROP COLUMN name;\n",
    );
    let lint = migrate(&["lint", "--db", &db, "--dir", &dir.s()]);
    lint.fails_with(kit::Kind::UnsafeMigration);
    let finding = &lint.last_step().result["findings"][0];
    assert_eq!(finding["file"], "0002_drop.sql");
    assert_eq!(finding["line"], 3);
    assert_eq!(finding["rule"], "drop-column");
    assert!(finding["fix"].as_str().unwrap().contains("post/"));
    lint.stderr_has("0002_drop.sql:3: drop-column");

    let out = migrate(&["up", "--db", &db, "--dir", &dir.s()]);
    out.fails_with(kit::Kind::UnsafeMigration)
        .stderr_has("drop-column");
    assert_eq!(sqlite_columns(&dir, "users"), ["id", "name"]);
    migrate(&["up", "--allow-unsafe", "--db", &db, "--dir", &dir.s()]).succeeds();
    assert_eq!(sqlite_columns(&dir, "users"), ["id"]);

    let allowed = Dir::new();
    allowed.file(
        "0001_drop.sql",
        "-- ugw:allow drop-table\nDROP TABLE IF EXISTS legacy;\n",
    );
    let lint = migrate(&["lint", "--db", &db, "--dir", &allowed.s()]);
    lint.succeeds();
    assert_eq!(lint.last_step().result["findings"], serde_json::json!([]));
}

#[test]
fn baseline_adopts_an_existing_schema_without_running_it() {
    let dir = two_pre_one_post();
    dir.sqlite()
        .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
        .unwrap();
    let out = migrate(&[
        "baseline",
        "2",
        "--db",
        &dir.sqlite_url(),
        "--dir",
        &dir.s(),
    ]);
    out.succeeds();
    assert_eq!(
        out.last_step().result["adopted"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        sqlite_ledger(&dir),
        [(1, "pre".into(), true), (2, "pre".into(), true)]
    );
    let up = migrate(&["up", "--db", &dir.sqlite_url(), "--dir", &dir.s()]);
    up.succeeds();
    assert!(
        up_result(&up).applied.is_empty(),
        "the existing tables were not created again"
    );
}

#[test]
fn sqlite_foreign_keys_off_rebuilds_a_table_and_checks_references_before_commit() {
    let dir = Dir::new();
    dir.file(
        "0001_tables.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\nCREATE TABLE orders (id INTEGER, user_id INTEGER REFERENCES users (id));\n\
         INSERT INTO users VALUES (1);\nINSERT INTO orders VALUES (1, 1);\n",
    )
    .file(
        "post/0002_rebuild.sql",
        "-- ugw:foreign-keys-off\nCREATE TABLE users_new (id INTEGER PRIMARY KEY, note TEXT);\n\
         INSERT INTO users_new (id) SELECT id FROM users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;\n",
    )
    .file(
        "post/0003_orphan.sql",
        "-- ugw:foreign-keys-off\nDELETE FROM users;\n",
    );
    let db = dir.sqlite_url();
    let conn_url = &db;
    migrate(&["up", "--create", "--db", conn_url, "--dir", &dir.s()]).succeeds();
    let out = migrate(&["up", "--phase", "post", "--db", conn_url, "--dir", &dir.s()]);
    out.assert_code(1).stderr_has("foreign_key_check");
    assert_eq!(
        sqlite_columns(&dir, "users"),
        ["id", "note"],
        "the rebuild committed"
    );
    assert_eq!(sqlite_ledger(&dir).len(), 2, "the orphaning delete did not");
    let users: i64 = dir
        .sqlite()
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 1);
}

/// Eight `up` processes, each held on its stdin until the test writes to all of them at once.
struct Racers {
    children: Vec<Child>,
}

impl Racers {
    fn start(n: usize, args: &[&str]) -> Racers {
        let children = (0..n)
            .map(|_| {
                let mut cmd = tool("ugw-migrate");
                cmd.args(["--in", "-"])
                    .args(args)
                    .env_remove("DATABASE_URL")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                cmd.spawn().expect("ugw-migrate starts")
            })
            .collect();
        Racers { children }
    }

    /// Release them together (an empty record on every stdin) and collect how each ended.
    fn release(mut self) -> Vec<(u32, Outcome)> {
        let record = "{\"ugw\":1,\"run\":\"race\",\"ok\":true,\"steps\":[]}\n";
        let mut pipes: Vec<_> = self
            .children
            .iter_mut()
            .map(|c| c.stdin.take().unwrap())
            .collect();
        for pipe in &mut pipes {
            pipe.write_all(record.as_bytes()).unwrap();
        }
        drop(pipes);
        let started = Instant::now();
        self.children
            .drain(..)
            .map(|child| {
                let pid = child.id();
                let output = wait_bounded(child, Duration::from_secs(90));
                let outcome = Outcome::from(&output, started.elapsed());
                (pid, outcome)
            })
            .collect()
    }
}

/// Each version applied by exactly one of the racers.
fn applied_once(outcomes: &[(u32, Outcome)], expected: &[i64]) {
    let mut all: Vec<i64> = outcomes
        .iter()
        .filter(|(_, o)| o.code == 0)
        .flat_map(|(_, o)| versions(&up_result(o)))
        .collect();
    all.sort_unstable();
    assert_eq!(
        all, expected,
        "each migration applied by exactly one process"
    );
}

/// The losers of a short --lock-timeout exit 4 and name the winner.
fn losers_name_the_holder(outcomes: &[(u32, Outcome)]) {
    let winners: Vec<u32> = outcomes
        .iter()
        .filter(|(_, o)| o.code == 0)
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "one winner: {:#?}",
        outcomes.iter().map(|(_, o)| &o.stderr).collect::<Vec<_>>()
    );
    let losers: Vec<&Outcome> = outcomes
        .iter()
        .filter(|(_, o)| o.code != 0)
        .map(|(_, o)| o)
        .collect();
    assert_eq!(losers.len(), outcomes.len() - 1);
    for loser in losers {
        loser.fails_with(kit::Kind::Busy);
        let message = loser.last_step().error.unwrap().message;
        assert!(
            message.contains(&format!("ugw-migrate {}@", winners[0]))
                || message.contains(&format!("pid {} ", winners[0])),
            "names the holder {}: {message}",
            winners[0]
        );
    }
}

fn race_dir(slow: &str) -> Dir {
    let dir = Dir::new();
    dir.file("0001_counter.sql", "CREATE TABLE counter (n INTEGER);\n")
        .file("0002_count.sql", "INSERT INTO counter VALUES (1);\n")
        .file("0003_slow.sql", slow)
        .file("0004_count.sql", "INSERT INTO counter VALUES (2);\n");
    dir
}

const SQLITE_SLOW: &str = "CREATE TABLE slow AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT x FROM c;\n";
const PG_SLOW: &str = "SELECT pg_sleep(1.5);\n";

#[test]
fn sqlite_eight_processes_at_once_apply_each_migration_exactly_once() {
    let dir = race_dir(SQLITE_SLOW);
    let db = dir.sqlite_url();
    let outcomes = Racers::start(8, &["up", "--create", "--db", &db, "--dir", &dir.s()]).release();
    for (_, o) in &outcomes {
        o.succeeds();
    }
    applied_once(&outcomes, &[1, 2, 3, 4]);
    assert_eq!(sqlite_ledger(&dir).len(), 4);
    let rows: Vec<i64> = {
        let conn = dir.sqlite();
        let mut q = conn.prepare("SELECT n FROM counter ORDER BY n").unwrap();
        q.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(rows, [1, 2], "each insert ran once");
}

#[test]
fn sqlite_racers_past_a_short_lock_timeout_exit_4_naming_the_holder() {
    let dir = race_dir(SQLITE_SLOW);
    let db = dir.sqlite_url();
    let outcomes = Racers::start(
        8,
        &[
            "up",
            "--create",
            "--db",
            &db,
            "--dir",
            &dir.s(),
            "--lock-timeout",
            "100ms",
        ],
    )
    .release();
    losers_name_the_holder(&outcomes);
    applied_once(&outcomes, &[1, 2, 3, 4]);
}

// ---- PostgreSQL ----

#[test]
fn pg_fresh_up_then_no_op_then_post() {
    let Some(db) = database("fresh_up") else {
        return;
    };
    let dir = two_pre_one_post();
    let out = migrate(&["up", "--db", &db.url(), "--dir", &dir.s()]);
    out.succeeds();
    let result = up_result(&out);
    assert_eq!(versions(&result), [1, 2]);
    assert_eq!(
        result.db,
        format!(
            "postgres://127.0.0.1:{}/{}?user=postgres&sslmode=disable",
            db.port, db.name
        )
    );
    assert_eq!(
        pg_ledger(&db),
        [(1, "pre".into(), true), (2, "pre".into(), true)]
    );
    assert_eq!(pg_columns(&db, "users"), ["id", "name", "email"]);
    let again = migrate(&["up", "--db", &db.url(), "--dir", &dir.s()]);
    again.succeeds();
    assert!(up_result(&again).applied.is_empty());
    let early = migrate(&["status", "--check", "--db", &db.url(), "--dir", &dir.s()]);
    early.assert_code(1);
    assert_eq!(early.last_step().result["pending"]["post"][0]["version"], 3);
    migrate(&[
        "up",
        "--phase",
        "post",
        "--db",
        &db.url(),
        "--dir",
        &dir.s(),
    ])
    .succeeds();
    assert_eq!(pg_columns(&db, "users"), ["id", "email"]);
    migrate(&["status", "--check", "--db", &db.url(), "--dir", &dir.s()]).succeeds();
}

#[test]
fn pg_a_failing_migration_rolls_back_and_records_nothing() {
    let Some(db) = database("failing") else {
        return;
    };
    let dir = Dir::new();
    dir.file("0001_users.sql", "CREATE TABLE users (id int);\n")
        .file(
            "0002_broken.sql",
            "CREATE TABLE audit (id int);\n\nINSERT INTO nowhere VALUES (1);\n",
        );
    let out = migrate(&["up", "--db", &db.url(), "--dir", &dir.s()]);
    out.fails_with(kit::Kind::MigrationFailed)
        .stderr_has("0002_broken.sql: line 3:");
    assert_eq!(pg_ledger(&db), [(1, "pre".into(), true)]);
    assert!(pg_columns(&db, "audit").is_empty());
}

#[test]
fn pg_a_failed_concurrent_index_is_dirty_and_resolve_drops_its_invalid_index() {
    let Some(db) = database("dirty") else { return };
    let dir = Dir::new();
    dir.file(
        "0001_users.sql",
        "CREATE TABLE users (email text);\nINSERT INTO users VALUES ('a'), ('a');\n",
    )
    .file(
        "0002_unique.sql",
        "-- ugw:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY users_email ON users (email);\n",
    );
    let url = db.url();
    let out = migrate(&["up", "--db", &url, "--dir", &dir.s()]);
    out.assert_code(1);
    assert_eq!(
        pg_ledger(&db),
        [(1, "pre".into(), true), (2, "pre".into(), false)]
    );
    let dirty = migrate(&["up", "--db", &url, "--dir", &dir.s()]);
    dirty.fails_with(kit::Kind::Dirty);

    let listed = migrate(&["resolve", "--db", &url, "--dir", &dir.s()]);
    listed.succeeds();
    assert_eq!(
        listed.last_step().result["invalid_indexes"],
        serde_json::json!(["public.users_email"])
    );
    let dropped = migrate(&[
        "resolve",
        "--drop-invalid-indexes",
        "--db",
        &url,
        "--dir",
        &dir.s(),
    ]);
    dropped.succeeds();
    assert_eq!(
        dropped.last_step().result["dropped_indexes"],
        serde_json::json!(["public.users_email"])
    );
    let left: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'users_email'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);

    migrate(&["resolve", "2", "--forget", "--db", &url, "--dir", &dir.s()]).succeeds();
    db.client()
        .batch_execute("DELETE FROM users WHERE ctid <> (SELECT min(ctid) FROM users)")
        .unwrap();
    migrate(&["up", "--db", &url, "--dir", &dir.s()]).succeeds();
    assert_eq!(pg_ledger(&db)[1], (2, "pre".into(), true));
    let valid: bool = db
        .client()
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(valid);
}

#[test]
fn pg_eight_processes_at_once_apply_each_migration_exactly_once() {
    let Some(db) = database("race") else { return };
    let dir = race_dir(PG_SLOW);
    let url = db.url();
    let outcomes = Racers::start(8, &["up", "--db", &url, "--dir", &dir.s()]).release();
    for (_, o) in &outcomes {
        o.succeeds();
    }
    applied_once(&outcomes, &[1, 2, 3, 4]);
    assert_eq!(pg_ledger(&db).len(), 4);
    let rows: Vec<i32> = db
        .client()
        .query("SELECT n FROM counter ORDER BY n", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, [1, 2]);
    let waited = outcomes
        .iter()
        .map(|(_, o)| up_result(o).lock_wait_ms)
        .max()
        .unwrap();
    assert!(
        waited >= 1000,
        "the others waited for the slow one: {waited} ms"
    );
}

#[test]
fn pg_racers_past_a_short_lock_timeout_exit_4_naming_the_holder() {
    let Some(db) = database("race_busy") else {
        return;
    };
    let dir = race_dir(PG_SLOW);
    let url = db.url();
    let outcomes = Racers::start(
        8,
        &[
            "up",
            "--db",
            &url,
            "--dir",
            &dir.s(),
            "--lock-timeout",
            "200ms",
        ],
    )
    .release();
    losers_name_the_holder(&outcomes);
    applied_once(&outcomes, &[1, 2, 3, 4]);
}

/// ugw-migrate with `args` in the background, its stderr read while it runs.
fn watched(args: &[&str]) -> Background {
    let mut cmd = tool("ugw-migrate");
    cmd.args(args).env_remove("DATABASE_URL");
    Background::start(cmd)
}

#[test]
fn pg_kill_9_during_a_long_migration_leaves_nothing_and_a_rerun_applies_it() {
    let Some(db) = database("kill9") else { return };
    let dir = Dir::new();
    db.client()
        .batch_execute(
            "CREATE TABLE test_control (seconds float8); INSERT INTO test_control VALUES (60)",
        )
        .unwrap();
    dir.file(
        "0001_long.sql",
        "CREATE TABLE big (id int);\nSELECT pg_sleep((SELECT seconds FROM test_control));\n",
    );
    let url = db.url();
    let run = watched(&["up", "--db", &url, "--dir", &dir.s()]);
    let mut watcher = db.client();
    let mut backend: Option<i32> = None;
    assert!(
        kit::eventually(Duration::from_secs(20), || {
            backend = watcher
                .query(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'ugw-migrate %' AND query LIKE '%pg_sleep%' AND state = 'active'",
                    &[],
                )
                .unwrap()
                .first()
                .map(|r| r.get(0));
            backend.is_some()
        }),
        "the migration's statement never showed in pg_stat_activity"
    );
    run.signal(libc::SIGKILL);
    let killed = run.finish();
    assert_eq!(killed.code, -1, "killed by the signal");
    let backend = backend.unwrap();
    assert!(
        kit::eventually(Duration::from_secs(10), || {
            watcher
                .query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&backend])
                .unwrap()
                .is_empty()
        }),
        "the orphaned backend ended (client_connection_check_interval)"
    );
    assert!(
        pg_columns(&db, "big").is_empty(),
        "the schema change was rolled back"
    );
    assert!(pg_ledger(&db).is_empty(), "no ledger row");
    watcher
        .batch_execute("UPDATE test_control SET seconds = 0")
        .unwrap();
    let rerun = migrate(&[
        "up",
        "--db",
        &url,
        "--dir",
        &dir.s(),
        "--lock-timeout",
        "5s",
    ]);
    rerun.succeeds();
    assert_eq!(versions(&up_result(&rerun)), [1]);
    assert_eq!(pg_columns(&db, "big"), ["id"]);
}

#[test]
fn pg_ddl_blocked_by_an_open_transaction_gives_up_after_its_lock_timeout_and_retries() {
    let Some(db) = database("ddl_blocked") else {
        return;
    };
    let dir = Dir::new();
    db.client().batch_execute("CREATE TABLE t (a int)").unwrap();
    dir.file("0001_add.sql", "ALTER TABLE t ADD COLUMN b int;\n");
    let url = db.url();
    let mut blocker = db.client();
    blocker.batch_execute("BEGIN; SELECT * FROM t").unwrap();

    let started = Instant::now();
    let out = migrate(&[
        "up",
        "--db",
        &url,
        "--dir",
        &dir.s(),
        "--ddl-lock-timeout",
        "200ms",
        "--ddl-retries",
        "2",
    ]);
    out.assert_code(1);
    // Three attempts of 200 ms and two backoffs (250 ms, 500 ms), each jittered down to 75 %
    // of its length (poll::Backoff's one rule): at least 600 + 562 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(1150),
        "{:?}",
        started.elapsed()
    );
    out.stderr_has("retry 1/2")
        .stderr_has("retry 2/2")
        .stderr_has("gave up after 3 attempts");
    assert_eq!(out.last_step().error_kind(), "migration_failed");
    assert!(pg_ledger(&db).is_empty());
    assert_eq!(pg_columns(&db, "t"), ["a"]);

    // The blocker ends while the tool backs off: the retry applies it.
    let run = watched(&[
        "up",
        "--db",
        &url,
        "--dir",
        &dir.s(),
        "--ddl-lock-timeout",
        "200ms",
        "--ddl-retries",
        "5",
    ]);
    run.wait_for_stderr("retry 1/5", Duration::from_secs(20));
    blocker.batch_execute("COMMIT").unwrap();
    let out = run.finish();
    out.succeeds();
    assert_eq!(pg_columns(&db, "t"), ["a", "b"]);
    assert_eq!(pg_ledger(&db), [(1, "pre".into(), true)]);
}

#[test]
fn pg_a_long_migration_says_it_is_still_running() {
    let Some(db) = database("heartbeat") else {
        return;
    };
    let dir = Dir::new();
    dir.file("0001_slow.sql", "SELECT pg_sleep(1);\n");
    let out = migrate(&[
        "up",
        "--db",
        &db.url(),
        "--dir",
        &dir.s(),
        "--heartbeat",
        "300ms",
    ]);
    out.succeeds();
    let beats = out.stderr.matches("still running 0001_slow.sql").count();
    assert!((2..=4).contains(&beats), "{}", out.stderr);
    out.stderr_has("applied 0001_slow.sql in");
}

#[test]
fn pg_a_pgbouncer_that_reaches_the_server_over_its_socket_is_refused() {
    let Some(db) = database("pgbouncer") else {
        return;
    };
    let Some(bouncer) = kit::postgres::cluster().and_then(kit::postgres::Cluster::pgbouncer) else {
        return;
    };
    let dir = Dir::new();
    dir.file("0001_a.sql", "CREATE TABLE a (id int);\n");
    let url = format!(
        "postgres://postgres@127.0.0.1:{bouncer}/{}?sslmode=disable",
        db.name
    );
    // Through this pooler the server sees a socket client: the port check has nothing to go on.
    let mut through = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let server_port: Option<i32> = through
        .query_one("SELECT inet_server_port()", &[])
        .unwrap()
        .get(0);
    assert_eq!(server_port, None);
    drop(through);

    let out = migrate(&["up", "--db", &url, "--dir", &dir.s()]);
    out.assert_code(1);
    assert_eq!(out.last_step().error_kind(), "pooler", "{}", out.stderr);
    out.stderr_has("PgBouncer");
    assert!(pg_ledger(&db).is_empty());
    let allowed = migrate(&["up", "--allow-pooler", "--db", &url, "--dir", &dir.s()]);
    allowed.succeeds();
    assert_eq!(pg_ledger(&db).len(), 1);
    // A direct connection is not taken for a pooler (its server has no `pgbouncer` database).
    dir.file("0002_b.sql", "CREATE TABLE b (id int);\n");
    migrate(&["up", "--db", &db.url(), "--dir", &dir.s()]).succeeds();
    assert_eq!(pg_ledger(&db).len(), 2);
}

#[test]
fn a_password_in_the_url_never_appears_in_any_output() {
    let Some(db) = database("secret") else { return };
    let password = "Sup3r-s3cret-pw";
    let dir = Dir::new();
    dir.file("0001_a.sql", "CREATE TABLE a (id int);\n")
        .file("0002_broken.sql", "INSERT INTO nowhere VALUES (1);\n");
    let url = db.url_with_password(password);
    let bad_port = format!(
        "postgres://postgres:{password}@127.0.0.1:1/{}?sslmode=disable",
        db.name
    );
    let runs = [
        migrate(&["up", "--db", &url, "--dir", &dir.s()]),
        migrate(&["status", "--db", &url, "--dir", &dir.s(), "--pretty"]),
        migrate(&["plan", "--db", &url, "--dir", &dir.s()]),
        migrate(&["up", "--db", &bad_port, "--dir", &dir.s()]),
        migrate(&[
            "up",
            "--db",
            &format!("{url}&sslmode=bogus"),
            "--dir",
            &dir.s(),
        ]),
        {
            let mut cmd = tool("ugw-migrate");
            cmd.args(["up", "--dir", &dir.s()])
                .env("DATABASE_URL", &url);
            kit::run(cmd)
        },
    ];
    for out in &runs {
        out.never_shows(password).stdout_lacks("s3cret");
    }
    assert_eq!(
        runs[0].code, 1,
        "the broken migration failed: {}",
        runs[0].stderr
    );
    runs[0].stdout_has("?user=postgres&password=***&sslmode=disable");
    assert_eq!(runs[3].code, 1);
    runs[3].stderr_has("cannot connect");
    assert_eq!(runs[4].code, 2);
    assert_eq!(pg_ledger(&db), [(1, "pre".into(), true)]);
}

#[test]
fn the_dir_defaults_to_the_fetched_artifacts_migrations_folder() {
    let artifact = tempfile::tempdir().unwrap();
    let migrations = artifact.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(
        migrations.join("0001_a.sql"),
        "CREATE TABLE a (id INTEGER);\n",
    )
    .unwrap();
    let record = kit::fetch_record_at(artifact.path(), "v2");
    let db = format!("sqlite://{}/app.db", artifact.path().display());
    let mut cmd = tool("ugw-migrate");
    cmd.args(["up", "--create", "--db", &db])
        .env_remove("DATABASE_URL");
    let out = kit::with_stdin(cmd, &record);
    out.succeeds();
    let record = out.record();
    assert_eq!(record.steps.len(), 2);
    let result: UpResult = serde_json::from_value(record.steps[1].result.clone()).unwrap();
    assert_eq!(versions(&result), [1]);
    assert_eq!(PathBuf::from(&result.dir), migrations);
}

#[test]
fn pg_sigint_during_a_migration_cancels_the_statement_and_records_nothing() {
    let Some(db) = database("sigint") else { return };
    let dir = Dir::new();
    dir.file(
        "0001_long.sql",
        "CREATE TABLE big (id int);\nSELECT pg_sleep(60);\n",
    );
    let url = db.url();
    let run = watched(&["up", "--db", &url, "--dir", &dir.s()]);
    let mut watcher = db.client();
    let active = |watcher: &mut postgres::Client| {
        !watcher
            .query(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'ugw-migrate %' AND query LIKE '%pg_sleep%' AND state = 'active'",
                &[],
            )
            .unwrap()
            .is_empty()
    };
    assert!(kit::eventually(Duration::from_secs(20), || active(
        &mut watcher
    )));
    let sent = Instant::now();
    run.signal(libc::SIGINT);
    let out = run.finish();
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    out.assert_code(130);
    let step = out.last_step();
    assert_eq!(
        (step.status.as_str(), step.error_kind()),
        ("interrupted", "interrupted")
    );
    assert!(
        !active(&mut watcher),
        "the statement was cancelled, not left running"
    );
    assert!(pg_ledger(&db).is_empty());
    assert!(pg_columns(&db, "big").is_empty());
}

#[test]
fn pg_an_old_transaction_is_reported_and_max_xact_age_refuses_to_start() {
    let Some(db) = database("xact_age") else {
        return;
    };
    let dir = Dir::new();
    dir.file("0001_a.sql", "CREATE TABLE a (id int);\n");
    let url = db.url();
    let mut blocker = db.client();
    blocker.batch_execute("BEGIN; SELECT 1").unwrap();
    let blocker_pid: i32 = blocker
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let mut watcher = db.client();
    assert!(
        kit::eventually(Duration::from_secs(10), || {
            let age: f64 = watcher
                .query_one(
                    "SELECT extract(epoch FROM clock_timestamp() - xact_start)::float8 * 1000 \
                     FROM pg_stat_activity WHERE pid = $1",
                    &[&blocker_pid],
                )
                .unwrap()
                .get(0);
            age >= 400.0
        }),
        "the blocker's transaction is 400 ms old"
    );
    let out = migrate(&[
        "up",
        "--db",
        &url,
        "--dir",
        &dir.s(),
        "--max-xact-age",
        "300ms",
    ]);
    out.assert_code(1)
        .stderr_has(format!("backend pid {blocker_pid}"))
        .stderr_has("--max-xact-age");
    assert!(pg_ledger(&db).is_empty());
    let out = migrate(&[
        "up",
        "--db",
        &url,
        "--dir",
        &dir.s(),
        "--max-xact-age",
        "1h",
    ]);
    out.succeeds();
    assert_eq!(pg_ledger(&db).len(), 1);
    blocker.batch_execute("COMMIT").unwrap();
}

#[test]
fn pg_statement_timeout_and_the_step_deadline_stop_a_long_migration() {
    let Some(db) = database("timeouts") else {
        return;
    };
    let dir = Dir::new();
    dir.file(
        "0001_long.sql",
        "CREATE TABLE big (id int);\nSELECT pg_sleep(30);\n",
    );
    let url = db.url();
    let out = migrate(&[
        "up",
        "--db",
        &url,
        "--dir",
        &dir.s(),
        "--statement-timeout",
        "300ms",
    ]);
    out.fails_with(kit::Kind::MigrationFailed)
        .stderr_has("statement timeout");
    assert!(out.took() < Duration::from_secs(20), "{:?}", out.took());

    let out = migrate(&["up", "--db", &url, "--dir", &dir.s(), "--timeout", "1s"]);
    out.fails_with(kit::Kind::Timeout).stderr_has("rolled back");
    assert!(
        out.took() >= Duration::from_secs(1) && out.took() < Duration::from_secs(20),
        "{:?}",
        out.took()
    );
    assert!(pg_ledger(&db).is_empty());
    assert!(pg_columns(&db, "big").is_empty());
}

#[test]
fn pg_a_standby_is_refused() {
    let Some(db) = database("standby") else {
        return;
    };
    let Some(port) = kit::postgres::cluster().and_then(kit::postgres::Cluster::standby) else {
        return;
    };
    let dir = Dir::new();
    dir.file("0001_a.sql", "CREATE TABLE a (id int);\n");
    // The standby is a copy of the whole cluster, with this test's database in it.
    let url = format!(
        "postgres://postgres@127.0.0.1:{port}/{}?sslmode=disable",
        db.name
    );
    let out = migrate(&["up", "--db", &url, "--dir", &dir.s()]);
    out.assert_code(2).stderr_has("is a standby");
    let status = migrate(&["status", "--db", &url, "--dir", &dir.s()]);
    status.succeeds();
    assert_eq!(
        status.last_step().result["pending"]["pre"][0]["version"],
        1,
        "reading is fine"
    );
}

#[test]
fn pg_tls_require_and_verify_full_connect_encrypted_and_an_unknown_ca_is_refused() {
    let Some(db) = database("tls") else { return };
    let cert = kit::postgres::cluster().unwrap().cert.display().to_string();
    let dir = Dir::new();
    dir.file("0001_a.sql", "CREATE TABLE a (id int);\n")
        .file("0002_b.sql", "CREATE TABLE b (id int);\n");
    // This role is refused unless the connection is encrypted (pg_hba hostnossl … reject).
    let base = format!(
        "postgres://{}@127.0.0.1:{}/{}",
        kit::postgres::TLS_ONLY,
        db.port,
        db.name
    );
    let plain = migrate(&[
        "up",
        "--db",
        &format!("{base}?sslmode=disable"),
        "--dir",
        &dir.s(),
    ]);
    plain.assert_code(1).stderr_has("no encryption");

    let require = format!("{base}?sslmode=require");
    let out = migrate(&["up", "--target", "1", "--db", &require, "--dir", &dir.s()]);
    out.succeeds();
    assert_eq!(versions(&up_result(&out)), [1]);
    let verified = format!("{base}?sslmode=verify-full&sslrootcert={cert}");
    let out = migrate(&["up", "--db", &verified, "--dir", &dir.s()]);
    out.succeeds();
    assert_eq!(versions(&up_result(&out)), [2]);
    assert!(up_result(&out).db.contains("sslmode=verify-full"));
    assert_eq!(pg_ledger(&db).len(), 2);

    let other = tempfile::tempdir().unwrap();
    let (unknown_ca, _) = kit::self_signed(other.path());
    let unknown = format!(
        "{base}?sslmode=verify-ca&sslrootcert={}",
        unknown_ca.display()
    );
    let refused = migrate(&["status", "--db", &unknown, "--dir", &dir.s()]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    refused.stderr_has("certificate");
    let no_root = migrate(&[
        "status",
        "--db",
        &format!("{base}?sslmode=verify-ca"),
        "--dir",
        &dir.s(),
    ]);
    no_root.assert_code(2).stderr_has("sslrootcert");
}

#[test]
fn an_applied_migration_whose_file_is_gone_is_a_warning_in_the_record() {
    let dir = Dir::new();
    dir.file("0001_a.sql", "CREATE TABLE a (id INTEGER);\n");
    let db = dir.sqlite_url();
    migrate(&["up", "--create", "--db", &db, "--dir", &dir.s()]).succeeds();
    std::fs::remove_file(dir.path().join("0001_a.sql")).unwrap();
    dir.file("0002_b.sql", "CREATE TABLE b (id INTEGER);\n");
    let out = migrate(&["up", "--db", &db, "--dir", &dir.s()]);
    out.succeeds();
    let result = up_result(&out);
    assert_eq!(versions(&result), [2]);
    assert_eq!(result.warnings.len(), 1, "{:?}", result.warnings);
    assert!(
        result.warnings[0].contains("1_a has no file"),
        "{:?}",
        result.warnings
    );
    out.stderr_has("warning: applied migration 1_a has no file");
    let status = migrate(&["status", "--db", &db, "--dir", &dir.s()]);
    status.succeeds();
    assert_eq!(status.last_step().result["missing_files"][0]["version"], 1);
}

#[test]
fn sqlite_sigint_during_a_migration_interrupts_it_and_records_nothing() {
    let dir = Dir::new();
    dir.file(
        "0001_slow.sql",
        "CREATE TABLE slow AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) SELECT x FROM c;\n",
    );
    let db = dir.sqlite_url();
    let run = watched(&["up", "--create", "--db", &db, "--dir", &dir.s()]);
    let lock = dir.path().join("app.db.ugw-migrate.lock");
    assert!(
        kit::eventually(Duration::from_secs(20), || std::fs::metadata(&lock)
            .is_ok_and(|m| m.len() > 0)),
        "the run took its lock"
    );
    // Into the statement (either way, it stops): SQLite runs it in the tool's own process.
    let before = kit::observe::cpu_time(run.pid());
    assert!(
        kit::eventually(Duration::from_secs(20), || {
            kit::observe::cpu_time(run.pid()) >= before + Duration::from_millis(100)
        }),
        "the statement runs"
    );
    let sent = Instant::now();
    run.signal(libc::SIGINT);
    let out = run.finish();
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    out.fails_with(kit::Kind::Interrupted);
    assert!(sqlite_ledger(&dir).is_empty());
    assert!(sqlite_columns(&dir, "slow").is_empty(), "rolled back");
}

// ---- the ledger row and its migration commit together ----

// A trigger makes every ledger insert fail. `up` must exit 1 with neither the migration's
// table nor its row there: a COMMIT before the row would keep the table, applied and
// unrecorded, to be run again by the next `up`. Once the ledger takes rows again the same
// file applies.

/// The failed step of `up` whose ledger insert failed, and the ledger left: only row 1.
fn assert_refused_ledger_rolls_back(out: &Outcome, ledger: &[(i64, String, bool)]) {
    out.assert_code(1);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "migration_failed", "{}", out.stderr);
    let message = &step.error.as_ref().unwrap().message;
    assert!(message.contains("0002_audit.sql"), "{message}");
    assert!(message.contains("the ledger is read-only"), "{message}");
    let result: UpResult = serde_json::from_value(step.result).unwrap();
    assert!(versions(&result).is_empty(), "{:?}", versions(&result));
    assert_eq!(ledger, [(1, "pre".to_string(), true)], "no row for 2");
}

fn audit_after_users() -> Dir {
    let dir = Dir::new();
    dir.file(
        "0001_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
    );
    dir
}

#[test]
fn sqlite_a_failing_ledger_insert_rolls_its_migration_back() {
    let dir = audit_after_users();
    let up = || {
        migrate(&[
            "up",
            "--create",
            "--db",
            &dir.sqlite_url(),
            "--dir",
            &dir.s(),
        ])
    };
    up().succeeds();
    dir.sqlite()
        .execute_batch(
            "CREATE TRIGGER ledger_read_only BEFORE INSERT ON ugw_migrations \
             BEGIN SELECT RAISE(ABORT, 'the ledger is read-only'); END;",
        )
        .unwrap();
    dir.file(
        "0002_audit.sql",
        "CREATE TABLE audit (id INTEGER);\nINSERT INTO users (id) VALUES (1);\n",
    );
    let out = up();
    assert_refused_ledger_rolls_back(&out, &sqlite_ledger(&dir));
    assert!(
        sqlite_columns(&dir, "audit").is_empty(),
        "the migration was committed without its ledger row"
    );
    let users: i64 = dir
        .sqlite()
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 0, "the insert was rolled back with the ledger row");

    dir.sqlite()
        .execute_batch("DROP TRIGGER ledger_read_only")
        .unwrap();
    up().succeeds();
    assert_eq!(
        sqlite_ledger(&dir),
        [(1, "pre".into(), true), (2, "pre".into(), true)]
    );
    assert_eq!(sqlite_columns(&dir, "audit"), ["id"]);
}

#[test]
fn pg_a_failing_ledger_insert_rolls_its_migration_back() {
    let Some(db) = database("ledger_refused") else {
        return;
    };
    let dir = audit_after_users();
    let up = || migrate(&["up", "--db", &db.url(), "--dir", &dir.s()]);
    up().succeeds();
    db.sql(
        "CREATE FUNCTION ledger_read_only() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'the ledger is read-only'; END $$; \
         CREATE TRIGGER ledger_read_only BEFORE INSERT ON ugw.ugw_migrations \
         FOR EACH ROW EXECUTE FUNCTION ledger_read_only();",
    );
    dir.file(
        "0002_audit.sql",
        "CREATE TABLE audit (id int);\nINSERT INTO users (id) VALUES (1);\n",
    );
    let out = up();
    assert_refused_ledger_rolls_back(&out, &pg_ledger(&db));
    assert!(
        pg_columns(&db, "audit").is_empty(),
        "the migration was committed without its ledger row"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM users"),
        ["0"],
        "the insert was rolled back with the ledger row"
    );

    db.sql("DROP TRIGGER ledger_read_only ON ugw.ugw_migrations");
    up().succeeds();
    assert_eq!(
        pg_ledger(&db),
        [(1, "pre".into(), true), (2, "pre".into(), true)]
    );
    assert_eq!(pg_columns(&db, "audit"), ["id"]);
}
