//! ugw-migrate against the migrations that broke it (issue 19's critical cases): a column
//! named `begin`, a comment holding `*/`, transaction control inside a file, SET leaking from
//! one file into the next, a migration that empties `search_path`, a table rebuild's PRAGMA,
//! `resolve --forget` of a migration that succeeded, another session's SQL in a warning, a
//! CR LF inside a string. Real SQLite files and the test PostgreSQL cluster.

use crate::kit;

use kit::Outcome;
use kit::migrations::{Dir, migrate};
use kit::postgres::{Database, database};
use std::time::Duration;

/// What these tests ask of a migrations folder besides the kit's.
impl Dir {
    fn sqlite_tables(&self) -> Vec<String> {
        let conn = self.sqlite();
        let mut q = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        q.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn sqlite_ledger(&self) -> Vec<(i64, bool)> {
        let conn = self.sqlite();
        let mut q = conn
            .prepare("SELECT version, success FROM ugw_migrations ORDER BY version")
            .unwrap();
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// `up --create`: every test here starts from a folder with no database yet.
    fn up_sqlite(&self, extra: &[&str]) -> Outcome {
        let url = self.sqlite_url();
        let dir = self.s();
        let mut args = vec!["up", "--create", "--db", &url, "--dir", &dir];
        args.extend_from_slice(extra);
        migrate(&args)
    }

    fn up_pg(&self, db: &Database, extra: &[&str]) -> Outcome {
        let url = db.url();
        let dir = self.s();
        let mut args = vec!["up", "--db", &url, "--dir", &dir];
        args.extend_from_slice(extra);
        migrate(&args)
    }

    fn lint(&self, dialect_url: &str) -> Outcome {
        migrate(&["lint", "--db", dialect_url, "--dir", &self.s()])
    }
}

/// The ledger rows of `ledger` (a qualified name), `(version, success)`; none without one.
fn pg_ledger_in(db: &Database, ledger: &str) -> Vec<(i64, bool)> {
    let mut client = db.client();
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&ledger])
        .unwrap()
        .get(0);
    if !exists {
        return Vec::new();
    }
    client
        .query(
            &format!("SELECT version, success FROM {ledger} ORDER BY version"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn pg_ledger(db: &Database) -> Vec<(i64, bool)> {
    pg_ledger_in(db, "ugw.ugw_migrations")
}

/// `schema.table` of every table named `table`.
fn pg_where(db: &Database, table: &str) -> Vec<String> {
    db.client()
        .query(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_name = $1 ORDER BY 1",
            &[&table],
        )
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

fn error_message(out: &Outcome) -> String {
    out.last_step().error.map(|e| e.message).unwrap_or_default()
}

/// The rules of `lint`'s findings, in order.
fn lint_rules(out: &Outcome) -> Vec<String> {
    out.last_step().result["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings: {}", out.stdout))
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

// ---- 1. a column named `begin` ----

const BEGIN_COLUMN: &str = "CREATE TABLE shifts (id int, begin timestamptz);\nDROP TABLE users;\n";

#[test]
fn sqlite_a_column_named_begin_does_not_hide_a_drop_table() {
    let dir = Dir::new();
    dir.sqlite()
        .execute_batch("CREATE TABLE users (id INTEGER)")
        .unwrap();
    dir.file("0001_shifts.sql", BEGIN_COLUMN);
    let out = dir.up_sqlite(&[]);
    out.fails_with(kit::Kind::UnsafeMigration);
    assert!(
        error_message(&out).contains("0001_shifts.sql:2: drop-table"),
        "{}",
        out.stderr
    );
    assert_eq!(
        dir.sqlite_tables(),
        ["ugw_migrations", "users"],
        "nothing ran"
    );
    let lint = dir.lint(&dir.sqlite_url());
    lint.assert_code(1);
    assert_eq!(lint_rules(&lint), ["drop-table"]);
}

#[test]
fn pg_a_column_named_begin_does_not_hide_a_drop_table() {
    let Some(db) = database("begin_column") else {
        return;
    };
    db.sql("CREATE TABLE users (id int)");
    let dir = Dir::new();
    dir.file("0001_shifts.sql", BEGIN_COLUMN);
    let out = dir.up_pg(&db, &[]);
    out.fails_with(kit::Kind::UnsafeMigration);
    assert!(
        error_message(&out).contains("0001_shifts.sql:2: drop-table"),
        "{}",
        out.stderr
    );
    assert_eq!(pg_where(&db, "users"), ["public.users"]);
    assert!(pg_where(&db, "shifts").is_empty());
    assert_eq!(lint_rules(&dir.lint(&db.url())), ["drop-table"]);
}

/// In a no-transaction file each statement goes alone: a `begin` column merged them into
/// one batch, and CREATE INDEX CONCURRENTLY failed "inside a transaction block".
#[test]
fn pg_a_no_transaction_file_with_a_begin_column_runs_each_statement_alone() {
    let Some(db) = database("begin_no_tx") else {
        return;
    };
    let dir = Dir::new();
    dir.file(
        "0001_shifts.sql",
        "-- ugw:no-transaction\nCREATE TABLE shifts (id int, begin timestamptz);\n\
         CREATE INDEX CONCURRENTLY shifts_begin ON shifts (begin);\n",
    );
    dir.up_pg(&db, &[]).succeeds();
    assert_eq!(pg_ledger(&db), [(1, true)]);
    assert_eq!(
        db.sql("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'shifts_begin'::regclass"),
        ["true"]
    );
}

// ---- 2. SQLite does not nest block comments ----

#[test]
fn sqlite_a_comment_holding_a_glob_does_not_hide_a_drop_table() {
    let dir = Dir::new();
    dir.sqlite()
        .execute_batch("CREATE TABLE users (id INTEGER)")
        .unwrap();
    dir.file(
        "0001_note.sql",
        "/* backups in /tmp/*.db */\nDROP TABLE users;\n",
    );
    let out = dir.up_sqlite(&[]);
    out.assert_code(1);
    assert!(
        error_message(&out).contains("0001_note.sql:2: drop-table"),
        "{}",
        out.stderr
    );
    assert_eq!(dir.sqlite_tables(), ["ugw_migrations", "users"]);
    assert_eq!(lint_rules(&dir.lint(&dir.sqlite_url())), ["drop-table"]);
}

/// A no-transaction file ran as SQLite read it while ugw skipped the statement after the
/// comment: now ugw runs what SQLite sees.
#[test]
fn sqlite_a_no_transaction_file_runs_the_statement_after_such_a_comment() {
    let dir = Dir::new();
    dir.file(
        "post/0001_marker.sql",
        "-- ugw:no-transaction\n/* old files in /tmp/*.db */\nCREATE TABLE marker (id INTEGER);\n",
    );
    dir.up_sqlite(&["--phase", "post"]).succeeds();
    assert!(dir.sqlite_tables().contains(&"marker".to_string()));
    assert_eq!(dir.sqlite_ledger(), [(1, true)]);
}

// ---- 3. transaction control inside a transactional file ----

#[test]
fn pg_transaction_control_in_a_file_is_refused_before_anything_runs() {
    let Some(db) = database("tx_control") else {
        return;
    };
    for (file, sql) in [
        ("0001_rollback.sql", "CREATE TABLE a (id int);\nROLLBACK;\n"),
        (
            "0001_commit.sql",
            "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE a (id int);\n",
        ),
        ("0001_end.sql", "CREATE TABLE a (id int);\nEND;\n"),
        (
            "0001_release.sql",
            "CREATE TABLE a (id int);\nRELEASE SAVEPOINT s;\n",
        ),
        ("0001_vacuum.sql", "CREATE TABLE a (id int);\nVACUUM;\n"),
    ] {
        let dir = Dir::new();
        dir.file(file, sql);
        let out = dir.up_pg(&db, &["--allow-unsafe"]);
        out.assert_code(1);
        assert_eq!(out.last_step().error_kind(), "unsafe_migration", "{file}");
        assert!(
            error_message(&out).contains("transaction-control"),
            "{file}: {}",
            out.stderr
        );
        assert!(pg_where(&db, "a").is_empty(), "{file}: something ran");
        assert!(pg_ledger(&db).is_empty(), "{file}");
        let rules = lint_rules(&dir.lint(&db.url()));
        assert!(
            !rules.is_empty() && rules.iter().all(|r| r == "transaction-control"),
            "{file}: {rules:?}"
        );
    }
    // A savepoint of the file's own, released or rolled back to, stays inside the transaction.
    let dir = Dir::new();
    dir.file(
        "0001_savepoints.sql",
        "CREATE TABLE a (id int);\nSAVEPOINT s;\nINSERT INTO a VALUES (1);\nROLLBACK TO SAVEPOINT s;\nRELEASE s;\n",
    );
    dir.up_pg(&db, &[]).succeeds();
    assert_eq!(db.sql("SELECT count(*) FROM a"), ["0"]);
    // The post phase is not linted for zero-downtime, but its transaction control is refused.
    dir.file("post/0002_commit.sql", "COMMIT;\n");
    let out = dir.up_pg(&db, &["--phase", "post"]);
    out.assert_code(1);
    assert!(error_message(&out).contains("post/0002_commit.sql:1: transaction-control"));
    assert_eq!(lint_rules(&dir.lint(&db.url())), ["transaction-control"]);
}

#[test]
fn sqlite_transaction_control_in_a_file_is_refused_and_a_no_transaction_file_may_vacuum() {
    for sql in [
        "CREATE TABLE a (x);\nCOMMIT;\nCREATE TABLE b (x);\n",
        "CREATE TABLE a (x);\nEND TRANSACTION;\n",
        "CREATE TABLE a (x);\nROLLBACK;\n",
        "BEGIN;\nCREATE TABLE a (x);\n",
        "CREATE TABLE a (x);\nVACUUM;\n",
    ] {
        let dir = Dir::new();
        dir.file("0001_a.sql", sql);
        let out = dir.up_sqlite(&["--allow-unsafe"]);
        out.assert_code(1);
        assert!(
            error_message(&out).contains("transaction-control"),
            "{sql}: {}",
            out.stderr
        );
        assert!(
            !dir.path().join("app.db").exists() || dir.sqlite_tables() == ["ugw_migrations"],
            "{sql}: {:?}",
            dir.sqlite_tables()
        );
    }
    let dir = Dir::new();
    dir.file(
        "0001_a.sql",
        "-- ugw:no-transaction\nCREATE TABLE a (x);\nVACUUM;\n",
    );
    dir.up_sqlite(&[]).succeeds();
    assert_eq!(dir.sqlite_ledger(), [(1, true)]);
}

// ---- 4. session state does not leak into the next file ----

#[test]
fn pg_a_set_in_one_file_does_not_reach_the_next() {
    let Some(db) = database("set_leak") else {
        return;
    };
    db.sql("CREATE SCHEMA reporting");
    let dir = Dir::new();
    // Each SET is followed by a plain file: the no-transaction one's and the transactional
    // one's must both end with their file.
    dir.file(
        "0001_no_tx.sql",
        "-- ugw:no-transaction\nSET search_path TO reporting, public;\nCREATE TABLE daily (id int);\n",
    )
    .file("0002_invoices.sql", "CREATE TABLE invoices (id int);\n")
    .file(
        "0003_reporting.sql",
        "SET search_path TO reporting, public;\nCREATE TABLE summary (id int);\n",
    )
    .file("0004_payments.sql", "CREATE TABLE payments (id int);\n");
    let out = dir.up_pg(&db, &[]);
    out.succeeds();
    assert_eq!(pg_where(&db, "daily"), ["reporting.daily"]);
    assert_eq!(pg_where(&db, "summary"), ["reporting.summary"]);
    for (table, expected) in [
        ("invoices", "public.invoices"),
        ("payments", "public.payments"),
    ] {
        assert_eq!(pg_where(&db, table), [expected], "as in a run of its own");
    }
    assert_eq!(pg_ledger(&db), [(1, true), (2, true), (3, true), (4, true)]);
}

#[test]
fn sqlite_a_pragma_in_one_file_does_not_reach_the_next() {
    let dir = Dir::new();
    // In a run of its own, 0002's orphan row is refused (ugw-migrate's connection checks
    // foreign keys); 0001 turning them off must not let it through in the same run.
    dir.file("0001_fk_off.sql", "-- ugw:no-transaction\nPRAGMA foreign_keys = OFF;\n")
        .file(
            "0002_orphan.sql",
            "CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (p INTEGER REFERENCES p (id));\nINSERT INTO c VALUES (7);\n",
        );
    let out = dir.up_sqlite(&[]);
    out.assert_code(1);
    assert!(
        error_message(&out).contains("FOREIGN KEY constraint failed"),
        "{}",
        out.stderr
    );
    assert_eq!(dir.sqlite_ledger(), [(1, true)]);
    assert!(!dir.sqlite_tables().contains(&"c".to_string()));
}

// ---- 5. the ledger is qualified with its schema ----

#[test]
fn pg_a_migration_that_empties_search_path_keeps_its_ledger() {
    let Some(db) = database("empty_path") else {
        return;
    };
    let dir = Dir::new();
    dir.file(
        "0001_dump_style.sql",
        "SELECT pg_catalog.set_config('search_path', '', false);\nCREATE TABLE public.a (id int);\n",
    )
    .file(
        "0002_postgrest_style.sql",
        "-- ugw:no-transaction\nSET search_path = test, pg_catalog;\nCREATE TABLE public.b (id int);\n",
    )
    .file("0003_c.sql", "CREATE TABLE c (id int);\n");
    let out = dir.up_pg(&db, &[]);
    out.succeeds();
    assert_eq!(pg_ledger(&db), [(1, true), (2, true), (3, true)]);
    assert_eq!(pg_where(&db, "c"), ["public.c"]);
    migrate(&["status", "--check", "--db", &db.url(), "--dir", &dir.s()]).succeeds();
}

/// The default ledger is `ugw.ugw_migrations`, which no session setting moves. The session's
/// current schema did: a migration that sets the database's `search_path` to a schema it
/// creates made the next run look for the ledger there, miss it, and run 0001 again
/// ("schema app already exists"). The next file's own tables follow the new path.
#[test]
fn pg_the_ledger_stays_put_when_a_migration_moves_the_sessions_schema() {
    let Some(db) = database("schema_moves") else {
        return;
    };
    let dir = Dir::new();
    dir.file(
        "0001_app_schema.sql",
        &format!(
            "CREATE SCHEMA app;\nALTER DATABASE {} SET search_path = app, public;\nCREATE TABLE app.items (id int);\n",
            db.name
        ),
    );
    dir.up_pg(&db, &[]).succeeds();
    dir.file("0002_invoices.sql", "CREATE TABLE invoices (id int);\n");
    let next = dir.up_pg(&db, &[]);
    next.succeeds();
    let applied: Vec<i64> = next.last_step().result["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["version"].as_i64().unwrap())
        .collect();
    assert_eq!(applied, [2], "{}", next.stderr);
    assert_eq!(pg_where(&db, "ugw_migrations"), ["ugw.ugw_migrations"]);
    assert_eq!(pg_ledger(&db), [(1, true), (2, true)]);
    assert_eq!(pg_where(&db, "invoices"), ["app.invoices"]);
    migrate(&["status", "--check", "--db", &db.url(), "--dir", &dir.s()]).succeeds();
}

/// A ledger an older ugw-migrate made in the schema its session started in (`public`) is
/// found there and kept: no second ledger in `ugw`, and only the new file runs.
#[test]
fn pg_a_ledger_an_older_ugw_made_in_public_is_found_and_kept() {
    let Some(db) = database("older_ledger") else {
        return;
    };
    let first = "CREATE TABLE a (id int);\n";
    db.sql(&format!(
        "CREATE TABLE a (id int);\n\
         CREATE TABLE ugw_migrations (version bigint PRIMARY KEY, name text NOT NULL, \
           phase text NOT NULL CHECK (phase IN ('pre', 'post')), checksum text NOT NULL, \
           checksum_algorithm text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), \
           duration_ms bigint NOT NULL, applied_by text NOT NULL, success boolean NOT NULL);\n\
         INSERT INTO ugw_migrations (version, name, phase, checksum, checksum_algorithm, duration_ms, applied_by, success) \
           VALUES (1, 'a', 'pre', '{}', 'sha256', 3, 'node1 pid 1 ugw-migrate 0.1.0', true);",
        kit::sha256(first.as_bytes())
    ));
    let dir = Dir::new();
    dir.file("0001_a.sql", first)
        .file("0002_b.sql", "CREATE TABLE b (id int);\n");
    let versions = |list: &serde_json::Value| -> Vec<i64> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| m["version"].as_i64().unwrap())
            .collect()
    };
    let plan = migrate(&["plan", "--db", &db.url(), "--dir", &dir.s()]);
    plan.succeeds();
    assert_eq!(versions(&plan.last_step().result["would_apply"]), [2]);
    let status = migrate(&["status", "--db", &db.url(), "--dir", &dir.s()]);
    status.succeeds();
    assert_eq!(versions(&status.last_step().result["applied"]), [1]);
    assert_eq!(versions(&status.last_step().result["pending"]["pre"]), [2]);
    let out = dir.up_pg(&db, &[]);
    out.succeeds();
    assert_eq!(out.last_step().result["applied"][0]["version"], 2);
    assert_eq!(
        out.last_step().result["applied"].as_array().unwrap().len(),
        1
    );
    assert_eq!(pg_where(&db, "ugw_migrations"), ["public.ugw_migrations"]);
    assert_eq!(
        pg_ledger_in(&db, "public.ugw_migrations"),
        [(1, true), (2, true)]
    );
}

#[test]
fn pg_ledger_schema_puts_the_ledger_in_a_schema_of_its_own() {
    let Some(db) = database("ledger_schema") else {
        return;
    };
    let dir = Dir::new();
    dir.file("0001_a.sql", "CREATE TABLE a (id int);\n");
    dir.up_pg(&db, &["--ledger-schema", "ugw ledger"])
        .succeeds();
    assert_eq!(
        pg_ledger_in(&db, "\"ugw ledger\".ugw_migrations"),
        [(1, true)]
    );
    assert!(pg_ledger(&db).is_empty(), "nothing in the default schema");
    let status = migrate(&[
        "status",
        "--check",
        "--ledger-schema",
        "ugw ledger",
        "--db",
        &db.url(),
        "--dir",
        &dir.s(),
    ]);
    status.succeeds();
}

/// A history whose first file is `pg_dump --schema-only` output (it empties `search_path`
/// and carries psql's `\restrict` lines): applied to a fresh database, and baselined on one
/// that already has that schema.
#[test]
fn pg_a_history_starting_from_a_pg_dump_file_applies_and_baselines() {
    let (Some(source), Some(fresh), Some(existing)) = (
        database("dump_source"),
        database("dump_fresh"),
        database("dump_existing"),
    ) else {
        return;
    };
    source.sql(
        "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, begin timestamptz);\n\
         CREATE INDEX users_email ON users (email);\n\
         CREATE FUNCTION user_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM users; END;\n\
         CREATE VIEW active AS SELECT id FROM users WHERE email <> '';",
    );
    let dump = std::process::Command::new("pg_dump")
        .args(["--schema-only", "--no-owner", &source.url()])
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8(dump.stdout).unwrap();
    assert!(dump.contains("set_config('search_path', '', false)"));
    let dir = Dir::new();
    dir.file("0001_baseline.sql", &dump)
        .file("0002_invoices.sql", "CREATE TABLE invoices (id int);\n");

    let out = dir.up_pg(&fresh, &[]);
    out.succeeds();
    assert_eq!(pg_ledger(&fresh), [(1, true), (2, true)]);
    assert_eq!(pg_where(&fresh, "invoices"), ["public.invoices"]);
    assert_eq!(fresh.sql("SELECT user_count()"), ["0"]);

    // The same schema made by psql, then adopted: only 0002 runs.
    let psql = std::process::Command::new("psql")
        .args([
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-1",
            "-d",
            &existing.url(),
            "-f",
        ])
        .arg(dir.path().join("0001_baseline.sql"))
        .output()
        .unwrap();
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    migrate(&["baseline", "1", "--db", &existing.url(), "--dir", &dir.s()]).succeeds();
    let out = dir.up_pg(&existing, &[]);
    out.succeeds();
    let applied: Vec<i64> = out.last_step().result["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["version"].as_i64().unwrap())
        .collect();
    assert_eq!(applied, [2]);
    assert_eq!(pg_ledger(&existing), [(1, true), (2, true)]);
}

// ---- 6. a transactional file setting PRAGMA foreign_keys itself ----

#[test]
fn sqlite_a_table_rebuild_setting_the_pragma_itself_is_refused_naming_the_directive() {
    let dir = Dir::new();
    dir.sqlite()
        .execute_batch(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);\n\
             CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) ON DELETE CASCADE);\n\
             INSERT INTO parent VALUES (1, 'a');\nINSERT INTO child VALUES (1), (1), (1);",
        )
        .unwrap();
    let rebuild = "CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');\n\
                   INSERT INTO parent_new SELECT id, coalesce(name, '') FROM parent;\n\
                   DROP TABLE parent;\nALTER TABLE parent_new RENAME TO parent;\n";
    dir.file(
        "post/0001_rebuild.sql",
        &format!("PRAGMA foreign_keys = OFF;\n{rebuild}PRAGMA foreign_keys = ON;\n"),
    );
    let out = dir.up_sqlite(&["--phase", "post"]);
    out.assert_code(1);
    assert!(
        error_message(&out).contains("0001_rebuild.sql:1: pragma-foreign-keys")
            && error_message(&out).contains("-- ugw:foreign-keys-off"),
        "{}",
        out.stderr
    );
    let children = |dir: &Dir| -> i64 {
        dir.sqlite()
            .query_row("SELECT count(*) FROM child", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(children(&dir), 3);
    // The directive does it: set before the transaction, checked before the commit.
    dir.file(
        "post/0001_rebuild.sql",
        &format!("-- ugw:foreign-keys-off\n{rebuild}"),
    );
    dir.up_sqlite(&["--phase", "post"]).succeeds();
    assert_eq!(children(&dir), 3, "0 of 3 child rows would be a cascade");
}

// ---- 7. resolve --forget of a migration that succeeded ----

#[test]
fn sqlite_resolve_forget_refuses_a_successful_migration_without_force() {
    let dir = Dir::new();
    dir.file(
        "0001_accounts.sql",
        "CREATE TABLE accounts (balance INTEGER);\nINSERT INTO accounts VALUES (100);\n",
    )
    .file(
        "0002_double.sql",
        "UPDATE accounts SET balance = balance * 2;\n",
    );
    dir.up_sqlite(&[]).succeeds();
    let url = dir.sqlite_url();
    let out = migrate(&["resolve", "2", "--forget", "--db", &url, "--dir", &dir.s()]);
    out.assert_code(2);
    assert!(
        error_message(&out).contains("applied successfully")
            && error_message(&out).contains("--force"),
        "{}",
        out.stderr
    );
    dir.up_sqlite(&[]).succeeds();
    let balance = |dir: &Dir| -> i64 {
        dir.sqlite()
            .query_row("SELECT balance FROM accounts", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(balance(&dir), 200, "ran once");
    migrate(&[
        "resolve",
        "2",
        "--forget",
        "--force",
        "--db",
        &url,
        "--dir",
        &dir.s(),
    ])
    .succeeds();
    assert_eq!(dir.sqlite_ledger(), [(1, true)]);
}

// ---- 8. another session's SQL never shows ----

#[test]
fn pg_an_old_transaction_is_reported_without_its_query_text() {
    let Some(db) = database("xact_secret") else {
        return;
    };
    let secret = "Hunter2-xact-5e7c";
    let mut holder = db.client();
    holder.batch_execute("BEGIN").unwrap();
    holder
        .batch_execute(&format!(
            "SET LOCAL application_name = 'reporting'; SELECT '{secret}' AS password"
        ))
        .unwrap();
    // The other transaction is older than the five seconds that get reported.
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let mut watcher = db.client();
    assert!(
        kit::eventually(Duration::from_secs(20), || {
            let age: f64 = watcher
                .query_one(
                    "SELECT extract(epoch FROM clock_timestamp() - xact_start)::float8 * 1000 \
                     FROM pg_stat_activity WHERE pid = $1",
                    &[&holder_pid],
                )
                .unwrap()
                .get(0);
            age >= 5_500.0
        }),
        "the other transaction is 5.5 s old"
    );
    let dir = Dir::new();
    dir.file("0001_a.sql", "CREATE TABLE a (id int);\n");
    let out = dir.up_pg(&db, &[]);
    out.succeeds();
    let warnings = out.last_step().result["warnings"].to_string();
    assert!(
        warnings.contains("a transaction has been open for"),
        "{warnings}"
    );
    assert!(
        warnings.contains("user postgres") && warnings.contains("reporting"),
        "{warnings}"
    );
    out.stderr_lacks(secret).stdout_lacks(secret);
    holder.batch_execute("ROLLBACK").unwrap();
}

// ---- 18. a CR LF inside a string literal is data ----

#[test]
fn sqlite_a_crlf_inside_a_string_reaches_the_database_as_written() {
    let dir = Dir::new();
    dir.file(
        "0001_notes.sql",
        "CREATE TABLE notes (body TEXT);\r\nINSERT INTO notes VALUES ('line one\r\nline two');\r\n",
    );
    dir.up_sqlite(&[]).succeeds();
    let body: String = dir
        .sqlite()
        .query_row("SELECT body FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(body, "line one\r\nline two");
}

// ---- 16. other tools' conventions, and what is skipped is said ----

#[test]
fn sqlite_a_sqlx_directive_an_upper_case_name_and_a_symlink() {
    let dir = Dir::new();
    dir.file(
        "0001_a.sql",
        "-- no-transaction\nCREATE TABLE a (x);\nVACUUM;\n",
    )
    .file("0002_b.SQL", "CREATE TABLE b (x);\n");
    let out = dir.up_sqlite(&[]);
    out.succeeds()
        .stderr_has("skipped")
        .stderr_has("0002_b.SQL");
    assert_eq!(dir.sqlite_ledger(), [(1, true)]);
    std::os::unix::fs::symlink("/nowhere/0003_c.sql", dir.path().join("0003_c.sql")).unwrap();
    let out = dir.up_sqlite(&[]);
    out.assert_code(2);
    assert!(
        error_message(&out).contains("0003_c.sql is a symbolic link"),
        "{}",
        out.stderr
    );
}

// ---- 17. a rule's actions in a no-transaction file; error lines ----

#[test]
fn pg_a_no_transaction_rule_stays_whole_and_errors_name_the_files_own_line() {
    let Some(db) = database("rule_lines") else {
        return;
    };
    let dir = Dir::new();
    dir.file(
        "0001_rule.sql",
        "-- ugw:no-transaction\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\n\
         CREATE RULE copy AS ON INSERT TO a DO ALSO (INSERT INTO b VALUES (NEW.id); INSERT INTO b VALUES (NEW.id + 1));\n",
    );
    dir.up_pg(&db, &[]).succeeds();
    db.sql("INSERT INTO a VALUES (1)");
    assert_eq!(db.sql("SELECT count(*) FROM b"), ["2"]);
    dir.file(
        "0002_bad.sql",
        "-- ugw:no-transaction\nCREATE TABLE c (id int);\n-- one\n-- two\n-- three\n\nSELECT nope FROM c;\n",
    );
    let out = dir.up_pg(&db, &[]);
    out.assert_code(1);
    assert!(
        error_message(&out).contains("0002_bad.sql: line 7:"),
        "{}",
        out.stderr
    );
}

// ---- 15. a fresh database takes the whole history ----

const HISTORY: &str = "CREATE TABLE users (id int PRIMARY KEY, name text, email text);\n";
const LATER: &str =
    "ALTER TABLE users DROP COLUMN name;\nCREATE INDEX users_email ON users (email);\n";

#[test]
fn pg_a_fresh_database_applies_a_history_with_findings_as_warnings() {
    let (Some(fresh), Some(running)) = (database("fresh_history"), database("running_history"))
    else {
        return;
    };
    let dir = Dir::new();
    dir.file("0001_users.sql", HISTORY)
        .file("0002_tidy.sql", LATER);
    let out = dir.up_pg(&fresh, &[]);
    out.succeeds();
    assert_eq!(pg_ledger(&fresh), [(1, true), (2, true)]);
    let warnings = out.last_step().result["warnings"].to_string();
    assert!(
        warnings.contains("a fresh database") && warnings.contains("drop-column"),
        "{warnings}"
    );
    out.stderr_has("a fresh database");
    // A database with tables of its own is not fresh: the same history is refused there.
    running.sql("CREATE TABLE sessions (id int)");
    let out = dir.up_pg(&running, &[]);
    out.fails_with(kit::Kind::UnsafeMigration);
    assert!(pg_ledger(&running).is_empty());
}

#[test]
fn sqlite_a_fresh_database_applies_a_history_with_findings_as_warnings() {
    let dir = Dir::new();
    dir.file("0001_users.sql", HISTORY)
        .file("0002_tidy.sql", LATER);
    let out = dir.up_sqlite(&[]);
    out.succeeds().stderr_has("a fresh database");
    assert_eq!(dir.sqlite_ledger(), [(1, true), (2, true)]);
}

// ---- issue 21, item 18: the SQLite ledger's name ----

#[test]
fn sqlite_ledger_table_names_the_ledger_and_status_finds_it_there() {
    let dir = Dir::new();
    dir.file("0001_a.sql", "CREATE TABLE a (x);\n");
    dir.up_sqlite(&["--ledger-table", "_ugw_ledger"]).succeeds();
    assert_eq!(dir.sqlite_tables(), ["_ugw_ledger", "a"]);
    let url = dir.sqlite_url();
    let status = migrate(&[
        "status",
        "--check",
        "--ledger-table",
        "_ugw_ledger",
        "--db",
        &url,
        "--dir",
        &dir.s(),
    ]);
    status.succeeds();
    // Run again under the same name: nothing to do, no second ledger.
    dir.up_sqlite(&["--ledger-table", "_ugw_ledger"]).succeeds();
    assert_eq!(dir.sqlite_tables(), ["_ugw_ledger", "a"]);
}
