//! Every wait of ugw-migrate ends by --timeout and at a signal (issue 19, item 10): the
//! ledger locked by another session, a server that takes the connection and never answers,
//! a SQLite database another writer holds, and DDL lock retries. Also item 12: a
//! no-transaction file's DDL gives up after --ddl-lock-timeout like any other.

use crate::kit;

use kit::Outcome;
use kit::postgres::{Database, database};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn migrate_within(args: &[&str], limit: Duration) -> Outcome {
    let mut cmd = kit::tool("ugw-migrate");
    cmd.args(args).env_remove("DATABASE_URL");
    kit::run_within(cmd, limit)
}

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in files {
        std::fs::write(dir.path().join(name), sql).unwrap();
    }
    dir
}

/// A session of the test's own holding an ACCESS EXCLUSIVE lock on the ledger.
fn lock_the_ledger(db: &Database) -> postgres::Client {
    let mut holder = db.client();
    holder
        .batch_execute("BEGIN; LOCK TABLE ugw.ugw_migrations IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    holder
}

#[test]
fn pg_a_locked_ledger_costs_at_most_the_timeout_in_up_status_and_plan() {
    let Some(db) = database("ledger_locked") else {
        return;
    };
    let dir = folder(&[("0001_a.sql", "CREATE TABLE a (id int);\n")]);
    let path = kit::s(dir.path()).to_string();
    migrate_within(&["up", "--db", &db.url(), "--dir", &path], kit::RUN_LIMIT).succeeds();
    std::fs::write(dir.path().join("0002_b.sql"), "CREATE TABLE b (id int);\n").unwrap();
    let holder = lock_the_ledger(&db);
    for sub in ["up", "status", "plan"] {
        let out = migrate_within(
            &[sub, "--timeout", "2s", "--db", &db.url(), "--dir", &path],
            Duration::from_secs(8),
        );
        out.assert_code(1);
        assert_eq!(
            out.last_step().error_kind(),
            "timeout",
            "{sub}: {}",
            out.stderr
        );
        assert!(
            out.took() < Duration::from_secs(4),
            "{sub} took {:?}",
            out.took()
        );
    }
    drop(holder);
    assert!(
        db.sql("SELECT to_regclass('public.b')::text")
            .iter()
            .all(String::is_empty)
    );
}

#[test]
fn pg_sigterm_ends_a_wait_on_a_locked_ledger_at_once() {
    let Some(db) = database("ledger_locked_term") else {
        return;
    };
    let dir = folder(&[("0001_a.sql", "CREATE TABLE a (id int);\n")]);
    let path = kit::s(dir.path()).to_string();
    migrate_within(&["up", "--db", &db.url(), "--dir", &path], kit::RUN_LIMIT).succeeds();
    let _holder = lock_the_ledger(&db);
    let child = kit::tool("ugw-migrate")
        .args(["status", "--db", &db.url(), "--dir", &path])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the status query is queued behind the lock.
    assert!(kit::eventually(Duration::from_secs(10), || {
        db.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name LIKE 'ugw-migrate%'",
        ) == ["1"]
    }));
    let (code, record) = kit::interrupt(child, libc::SIGTERM);
    assert_ne!(code, Some(0));
    assert_eq!(record.steps[0].error_kind(), "interrupted");
}

/// A listener that takes connections and never says a word.
#[test]
fn pg_a_server_that_never_answers_costs_at_most_the_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for stream in listener.incoming().take(2) {
            kept.push(stream);
        }
        std::thread::sleep(Duration::from_secs(20));
    });
    let dir = folder(&[("0001_a.sql", "CREATE TABLE a (id int);\n")]);
    let url = format!("postgres://postgres@127.0.0.1:{port}/x?sslmode=disable&connect_timeout=1");
    let started = Instant::now();
    let out = migrate_within(
        &[
            "status",
            "--timeout",
            "2s",
            "--db",
            &url,
            "--dir",
            kit::s(dir.path()),
        ],
        Duration::from_secs(10),
    );
    out.assert_code(1);
    assert_eq!(out.last_step().error_kind(), "timeout", "{}", out.stderr);
    assert!(
        started.elapsed() < Duration::from_millis(3_500),
        "{:?}",
        started.elapsed()
    );
    drop(held);
}

#[test]
fn sqlite_a_writer_holding_the_database_costs_at_most_the_timeout() {
    let dir = folder(&[("0001_a.sql", "CREATE TABLE a (id INTEGER);\n")]);
    let db_path = dir.path().join("app.db");
    let writer = rusqlite::Connection::open(&db_path).unwrap();
    writer
        .execute_batch("CREATE TABLE app (x INTEGER); BEGIN IMMEDIATE; INSERT INTO app VALUES (1);")
        .unwrap();
    let url = format!("sqlite://{}", db_path.display());
    let out = migrate_within(
        &[
            "up",
            "--timeout",
            "3s",
            "--db",
            &url,
            "--dir",
            kit::s(dir.path()),
        ],
        Duration::from_secs(15),
    );
    out.assert_code(1);
    assert!(out.took() < Duration::from_secs(5), "{:?}", out.took());
    writer.execute_batch("COMMIT").unwrap();
}

/// A reader holding the table: the retries stop when another would end past --timeout.
#[test]
fn pg_ddl_retries_stop_before_the_timeout() {
    let Some(db) = database("retries_deadline") else {
        return;
    };
    db.sql("CREATE TABLE t (id int)");
    let mut reader = db.client();
    reader.batch_execute("BEGIN; SELECT * FROM t").unwrap();
    let dir = folder(&[("0001_c.sql", "ALTER TABLE t ADD COLUMN c int;\n")]);
    let out = migrate_within(
        &[
            "up",
            "--ddl-lock-timeout",
            "100ms",
            "--ddl-retries",
            "10",
            "--timeout",
            "6s",
            "--db",
            &db.url(),
            "--dir",
            kit::s(dir.path()),
        ],
        Duration::from_secs(20),
    );
    out.assert_code(1);
    assert_eq!(out.last_step().error_kind(), "timeout", "{}", out.stderr);
    assert!(out.took() < Duration::from_secs(6), "{:?}", out.took());
    reader.batch_execute("ROLLBACK").unwrap();
}

/// Item 12: a no-transaction file's ALTER TABLE waits --ddl-lock-timeout, not for as long
/// as the reader holds the table (with the application's queries queued behind it).
#[test]
fn pg_a_no_transaction_file_gives_up_after_the_ddl_lock_timeout() {
    let Some(db) = database("no_tx_lock_timeout") else {
        return;
    };
    db.sql("CREATE TABLE t (id int)");
    let mut reader = db.client();
    reader.batch_execute("BEGIN; SELECT * FROM t").unwrap();
    let dir = folder(&[(
        "0001_c.sql",
        "-- ugw:no-transaction\nALTER TABLE t ADD COLUMN c int;\n",
    )]);
    let out = migrate_within(
        &[
            "up",
            "--allow-unsafe",
            "--ddl-lock-timeout",
            "300ms",
            "--db",
            &db.url(),
            "--dir",
            kit::s(dir.path()),
        ],
        Duration::from_secs(20),
    );
    out.assert_code(1).stderr_has("lock timeout");
    assert!(out.took() < Duration::from_secs(3), "{:?}", out.took());
    reader.batch_execute("ROLLBACK").unwrap();
    // The file's own SET of lock_timeout is left alone: it may ask for longer.
    assert_eq!(
        db.sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 't'"),
        ["1"]
    );
}

#[test]
fn sqlite_sigterm_ends_a_wait_for_another_writer_at_once() {
    let dir = folder(&[("0001_a.sql", "CREATE TABLE a (id INTEGER);\n")]);
    let db_path = dir.path().join("app.db");
    let writer = rusqlite::Connection::open(&db_path).unwrap();
    writer
        .execute_batch("CREATE TABLE app (x INTEGER); BEGIN IMMEDIATE; INSERT INTO app VALUES (1);")
        .unwrap();
    let url = format!("sqlite://{}", db_path.display());
    let mut child = kit::tool("ugw-migrate")
        .args(["up", "--db", &url, "--dir", kit::s(dir.path())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It waits for the writer (its busy wait), long past its start-up.
    assert!(!kit::eventually(Duration::from_millis(800), || {
        child.try_wait().unwrap().is_some()
    }));
    let (code, record) = kit::interrupt(child, libc::SIGTERM);
    assert_ne!(code, Some(0));
    assert_eq!(record.steps[0].error_kind(), "interrupted");
    writer.execute_batch("COMMIT").unwrap();
}
