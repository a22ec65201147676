//! Which connections ugw-migrate takes for a pooler (issue 19, item 11): PgBouncer is asked
//! (its console), over TCP and over its Unix socket, in transaction mode, whether or not our
//! user may use its console; a plain TCP port-forward to the server is a direct connection.

use crate::kit;

use kit::Outcome;
use kit::migrations::migrate;
use kit::postgres::{Database, database};

fn ledger_rows(db: &Database) -> Vec<String> {
    if db.sql("SELECT to_regclass('ugw.ugw_migrations') IS NULL") == ["t"] {
        return vec!["0".to_string()];
    }
    db.sql("SELECT count(*) FROM ugw.ugw_migrations")
}

fn one_migration() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0001_a.sql"), "CREATE TABLE a (id int);\n").unwrap();
    dir
}

fn assert_refused_as_pgbouncer(out: &Outcome, db: &Database, how: &str) {
    out.clone()
        .case(how)
        .fails_with(kit::Kind::Pooler)
        .stderr_has("PgBouncer");
    assert_eq!(ledger_rows(db), ["0"], "{how}: nothing ran");
}

#[test]
fn pg_a_tcp_port_forward_is_a_direct_connection() {
    let Some(db) = database("port_forward") else {
        return;
    };
    let proxy = kit::proxy::forward_port(db.port);
    let url = format!(
        "postgres://postgres@127.0.0.1:{proxy}/{}?sslmode=disable",
        db.name
    );
    let dir = one_migration();
    migrate(&["up", "--db", &url, "--dir", kit::s(dir.path())]).succeeds();
    assert_eq!(ledger_rows(&db), ["1"]);
}

#[test]
fn pg_pgbouncer_in_transaction_mode_is_refused_over_tcp_and_its_unix_socket() {
    let Some(db) = database("bouncer_tx") else {
        return;
    };
    let Some(cluster) = kit::postgres::cluster() else {
        return;
    };
    let dir = one_migration();
    for console_user in [true, false] {
        let Some((port, socket_dir)) = cluster.pgbouncer_with("transaction", console_user) else {
            return;
        };
        let tcp = format!(
            "postgres://postgres@127.0.0.1:{port}/{}?sslmode=disable",
            db.name
        );
        let socket = format!(
            "postgres://postgres@/{}?host={}&port={port}&sslmode=disable",
            db.name,
            socket_dir.display()
        );
        for (how, url) in [("tcp", &tcp), ("unix socket", &socket)] {
            let how = format!("{how}, console user {console_user}");
            let out = migrate(&["up", "--db", url, "--dir", kit::s(dir.path())]);
            assert_refused_as_pgbouncer(&out, &db, &how);
        }
    }
}
