//! ugw-backup under attack (issue 18): each case a real tree, SQLite database, PostgreSQL
//! database or mount that once made a backup verify but not restore, or a restore or prune
//! write or delete where it should not. Each test failed on the code before its fix.
//! `UGW_BACKUP_UNDER_TEST` runs another ugw-backup binary (an older build, to see them fail).

use crate::kit;

use kit::hostile_archives::{Tar, entries};
use kit::mounts::Mounted;
use kit::{Outcome, run, s};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn tool() -> Command {
    match std::env::var_os("UGW_BACKUP_UNDER_TEST") {
        Some(bin) => {
            let mut cmd = Command::new(bin);
            cmd.env_remove("UGW_HOST_ID")
                .stdin(std::process::Stdio::null());
            cmd
        }
        None => kit::tool("ugw-backup"),
    }
}

fn backup(args: &[&str]) -> Outcome {
    let mut cmd = tool();
    cmd.args(args);
    run(cmd)
}

fn archive_of(outcome: &Outcome) -> PathBuf {
    outcome.succeeds();
    PathBuf::from(outcome.last_step().result["archive"].as_str().unwrap())
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sqlite_db(path: &Path, rows: i64) -> Connection {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let db = Connection::open(path).unwrap();
    db.execute_batch("CREATE TABLE IF NOT EXISTS t(x);")
        .unwrap();
    for i in 0..rows {
        db.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
    }
    db
}

fn rows(db: &Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

fn entries_of(archive: &Path) -> Vec<String> {
    let (stem, _) = archive.to_str().unwrap().rsplit_once(".tar").unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&read(Path::new(&format!("{stem}.manifest.json")))).unwrap();
    manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn overlapping_and_repeated_paths_are_backed_up_once_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    write(&app.join("uploads/photo"), "jpeg\n");
    write(&app.join("conf"), "a = 1\n");
    let out = dir.path().join("out");
    let uploads = app.join("uploads");
    let created = backup(&[
        "create",
        "--path",
        s(&app),
        "--path",
        s(&uploads),
        "--path",
        s(&app),
        "--out",
        s(&out),
        "--name",
        "b",
    ]);
    let archive = archive_of(&created);
    created.stderr_has("inside --path");
    let names = entries_of(&archive);
    let photo = names
        .iter()
        .filter(|n| n.ends_with("uploads/photo"))
        .count();
    assert_eq!(photo, 1, "{names:?}");
    backup(&["verify", s(&archive)]).succeeds();
    backup(&["restore", s(&archive), "--to", s(&dir.path().join("to"))]).succeeds();
    write(&app.join("uploads/photo"), "changed\n");
    backup(&["restore", s(&archive), "--in-place"]).succeeds();
    assert_eq!(read(&app.join("uploads/photo")), "jpeg\n");
}

#[test]
fn a_path_that_is_a_symlink_to_a_folder_is_followed_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("releases/v1");
    write(&real.join("a"), "one\n");
    write(&real.join("b"), "two\n");
    let link = dir.path().join("current");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = dir.path().join("out");
    let created = backup(&[
        "create",
        "--path",
        s(&link),
        "--out",
        s(&out),
        "--name",
        "b",
    ]);
    let archive = archive_of(&created);
    assert_eq!(created.last_step().result["files"], 2, "{}", created.stderr);
    created.stderr_has("is a symlink");
    write(&real.join("a"), "changed\n");
    backup(&["restore", s(&archive), "--in-place"]).succeeds();
    assert_eq!(read(&real.join("a")), "one\n");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn the_out_folder_inside_a_backed_up_path_is_left_out_and_survives_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    write(&app.join("state"), "v1\n");
    let out = app.join("backups");
    let mut archives = Vec::new();
    for name in ["b1", "b2", "b3"] {
        let created = backup(&[
            "create",
            "--path",
            s(&app),
            "--out",
            s(&out),
            "--name",
            name,
        ]);
        created.stderr_has("is the --out folder");
        archives.push(archive_of(&created));
        write(&app.join("state"), &format!("after {name}\n"));
    }
    let names = entries_of(&archives[2]);
    assert!(!names.iter().any(|n| n.contains("backups")), "{names:?}");
    backup(&["restore", s(&archives[1]), "--in-place"]).succeeds();
    assert_eq!(read(&app.join("state")), "after b1\n");
    for archive in &archives {
        assert!(archive.is_file(), "{} survives", archive.display());
        backup(&["verify", s(archive)]).succeeds();
    }
}

#[test]
fn create_never_writes_through_links_planted_at_its_temp_names() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    sqlite_db(&db, 3);
    let victim = dir.path().join("victim.db");
    sqlite_db(&victim, 40);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // exec keeps bash's PID: the names the old code derived from it are planted first.
    let script = format!(
        "ln -s {victim} {out}/.b.sqlite-0.$$.tmp; ln -s {out}/readable-dump {out}/.b.pg-0.$$.tmp; exec {bin} create --db sqlite://{db} --out {out} --name b",
        victim = s(&victim),
        out = s(&out),
        db = s(&db),
        bin = std::env::var("UGW_BACKUP_UNDER_TEST")
            .unwrap_or_else(|_| kit::bin("ugw-backup").display().to_string()),
    );
    let outcome = kit::bash(&script, dir.path());
    assert_eq!(
        rows(&victim),
        40,
        "the database a planted link named is untouched"
    );
    outcome.succeeds();
    let snapshot = dir.path().join("to");
    backup(&["restore", s(&out.join("b.tar.gz")), "--to", s(&snapshot)]).succeeds();
    assert_eq!(rows(&snapshot.join("ugw-db/sqlite/0-app.db")), 3);
}

#[test]
fn an_in_place_restore_refuses_symlinks_planted_at_live_paths() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(&data.join("state"), "backed up\n");
    let db = dir.path().join("db/app.db");
    sqlite_db(&db, 3);
    let out = dir.path().join("out");
    let archive = archive_of(&backup(&[
        "create",
        "--path",
        s(&data),
        "--db",
        &format!("sqlite://{}", db.display()),
        "--out",
        s(&out),
        "--name",
        "b",
    ]));
    // The database replaced by a link to another one, then by a dangling link.
    let other = dir.path().join("other.db");
    sqlite_db(&other, 40);
    std::fs::remove_file(&db).unwrap();
    std::os::unix::fs::symlink(&other, &db).unwrap();
    let refused = backup(&["restore", s(&archive), "--in-place"]);
    refused.assert_code(1);
    assert_eq!(
        refused.last_step().error_kind(),
        "unsafe_input",
        "{}",
        refused.stderr
    );
    assert_eq!(rows(&other), 40, "never written through the link");
    assert_eq!(read(&data.join("state")), "backed up\n");
    std::fs::remove_file(&db).unwrap();
    let created_through = dir.path().join("created-through.db");
    std::os::unix::fs::symlink(&created_through, &db).unwrap();
    backup(&["restore", s(&archive), "--in-place"]).assert_code(1);
    assert!(
        !created_through.exists(),
        "no file made through a dangling link"
    );
    // The folder replaced by a link to another folder.
    std::fs::remove_file(&db).unwrap();
    sqlite_db(&db, 0);
    let elsewhere = dir.path().join("elsewhere");
    write(&elsewhere.join("keep"), "mine\n");
    std::fs::rename(&data, dir.path().join("data.moved")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &data).unwrap();
    let refused = backup(&["restore", s(&archive), "--in-place"]);
    refused.assert_code(1);
    assert_eq!(
        refused.last_step().error_kind(),
        "unsafe_input",
        "{}",
        refused.stderr
    );
    assert!(
        std::fs::symlink_metadata(&data)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(read(&elsewhere.join("keep")), "mine\n");
    // Once the link is gone the restore goes through.
    std::fs::remove_file(&data).unwrap();
    backup(&["restore", s(&archive), "--in-place"]).succeeds();
    assert_eq!(rows(&db), 3);
}

#[test]
fn a_wal_database_on_a_mount_point_is_restored_into_the_file_the_app_holds_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Some(_mount) = Mounted::tmpfs(&data, "size=64m") else {
        return;
    };
    let db = data.join("app.db");
    let app = sqlite_db(&db, 5);
    app.pragma_update(None, "journal_mode", "WAL").unwrap();
    write(&data.join("state"), "backed up\n");
    let out = dir.path().join("out");
    let archive = archive_of(&backup(&[
        "create",
        "--path",
        s(&data),
        "--db",
        &format!("sqlite://{}", db.display()),
        "--out",
        s(&out),
        "--name",
        "m",
    ]));
    app.execute_batch("INSERT INTO t VALUES (100), (101);")
        .unwrap();
    write(&data.join("state"), "newer\n");
    let restored = backup(&["restore", s(&archive), "--in-place"]);
    restored.succeeds().stderr_has("is a mount point");
    let seen: i64 = app
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 5, "the app's own connection sees the restored rows");
    app.execute_batch("INSERT INTO t VALUES (200);").unwrap();
    assert_eq!(rows(&db), 6, "the app's next write lands in the live file");
    assert_eq!(read(&data.join("state")), "backed up\n");
}

/// A database of the test cluster named `name` (quoted as an identifier), and a client on it.
fn odd_database(name: &str) -> Option<(u16, postgres::Client)> {
    if !(kit::require("psql") && kit::require("pg_dump") && kit::require("pg_restore")) {
        return None;
    }
    let cluster = kit::postgres::cluster()?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    let mut admin = postgres::Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            cluster.port
        ),
        postgres::NoTls,
    )
    .unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {quoted}"))
        .unwrap();
    let client = postgres::Config::new()
        .host("127.0.0.1")
        .port(cluster.port)
        .user("postgres")
        .dbname(name)
        .connect(postgres::NoTls)
        .unwrap();
    Some((cluster.port, client))
}

fn url_of(port: u16, name: &str) -> String {
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("postgres://postgres@127.0.0.1:{port}/{encoded}?sslmode=disable")
}

fn marker(client: &mut postgres::Client) -> String {
    client
        .query_one("SELECT note FROM marker", &[])
        .unwrap()
        .get(0)
}

#[test]
fn postgres_databases_with_odd_names_are_restored_into_themselves_and_nowhere_else() {
    let names = [
        "t_bk_shop#1",
        "t_bk_q?x=1",
        "t_bk_a/b",
        "t_bk_50%",
        "t_bk_my shop",
        "t_bk_o'q\"d",
    ];
    // What an unescaped URL of the odd names reads as.
    let Some((port, mut decoy)) = odd_database("t_bk_shop") else {
        return;
    };
    let (_, mut decoy_q) = odd_database("t_bk_q").unwrap();
    for client in [&mut decoy, &mut decoy_q] {
        client
            .batch_execute("CREATE TABLE marker(note text); INSERT INTO marker VALUES ('decoy');")
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    for (index, name) in names.iter().enumerate() {
        let (_, mut client) = odd_database(name).unwrap();
        client
            .batch_execute(
                "CREATE TABLE marker(note text); INSERT INTO marker VALUES ('backed up');",
            )
            .unwrap();
        let out = dir.path().join(format!("out{index}"));
        let created = backup(&[
            "create",
            "--db",
            &url_of(port, name),
            "--out",
            s(&out),
            "--name",
            "pg",
        ]);
        let archive = archive_of(&created);
        client
            .batch_execute("UPDATE marker SET note = 'changed'")
            .unwrap();
        let restored = backup(&["restore", s(&archive), "--in-place"]);
        restored.succeeds();
        assert_eq!(
            marker(&mut client),
            "backed up",
            "{name}: {}",
            restored.stderr
        );
        let manifest = read(&out.join("pg.manifest.json"));
        assert!(manifest.contains("\"connection\""), "{manifest}");
    }
    assert_eq!(marker(&mut decoy), "decoy");
    assert_eq!(marker(&mut decoy_q), "decoy");
}

#[test]
fn an_in_place_restore_into_another_database_than_the_one_backed_up_needs_force() {
    let Some((port, mut backed_up)) = odd_database("t_bk_origin") else {
        return;
    };
    let (_, mut other) = odd_database("t_bk_other").unwrap();
    backed_up
        .batch_execute("CREATE TABLE marker(note text); INSERT INTO marker VALUES ('origin');")
        .unwrap();
    other
        .batch_execute("CREATE TABLE marker(note text); INSERT INTO marker VALUES ('other');")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let archive = archive_of(&backup(&[
        "create",
        "--db",
        &url_of(port, "t_bk_origin"),
        "--out",
        s(&out),
        "--name",
        "pg",
    ]));
    let other_url = url_of(port, "t_bk_other");
    let refused = backup(&["restore", s(&archive), "--in-place", "--pg", &other_url]);
    refused.assert_code(2).stderr_has("t_bk_origin");
    assert_eq!(marker(&mut other), "other");
    backup(&[
        "restore",
        s(&archive),
        "--in-place",
        "--pg",
        &other_url,
        "--force",
    ])
    .succeeds();
    assert_eq!(marker(&mut other), "origin");
}

#[test]
fn prune_removes_only_this_hosts_ugw_backups_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    write(&app.join("f"), "x");
    let out = dir.path().join("out");
    for name in ["b1", "b2", "b3"] {
        archive_of(&backup(&[
            "create",
            "--path",
            s(&app),
            "--out",
            s(&out),
            "--name",
            name,
        ]));
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut cmd = tool();
    cmd.args([
        "create",
        "--path",
        s(&app),
        "--out",
        s(&out),
        "--name",
        "elsewhere",
    ])
    .env("UGW_HOST_ID", "another-host");
    archive_of(&run(cmd));
    std::thread::sleep(Duration::from_millis(5));
    // Newer than every backup, and none of them one.
    write(&out.join("customer-export.tar.gz"), "not a backup");
    write(&out.join("release.tar"), "not a backup");
    std::fs::create_dir_all(out.join("x.tar.gz")).unwrap();
    write(
        &out.join(".b9.tar.gz.AbCdEfGhIj.tmp"),
        "left by a killed create",
    );
    let pruned = backup(&["prune", "--out", s(&out), "--keep", "2"]);
    pruned.succeeds();
    let removed = pruned.last_step().result["removed"].clone();
    assert_eq!(removed.as_array().unwrap().len(), 1, "{removed}");
    assert!(
        removed[0].as_str().unwrap().ends_with("/b1.tar.gz"),
        "{removed}"
    );
    pruned.stderr_has("b1.tar.gz");
    for kept in [
        "b2.tar.gz",
        "b3.tar.gz",
        "elsewhere.tar.gz",
        "customer-export.tar.gz",
        "release.tar",
    ] {
        assert!(out.join(kept).is_file(), "{kept} kept");
    }
    assert!(out.join("x.tar.gz").is_dir());
    assert!(!out.join("b1.manifest.json").exists());
    assert!(
        !out.join(".b9.tar.gz.AbCdEfGhIj.tmp").exists(),
        "a killed create's partial file"
    );
}

#[test]
fn a_failed_in_place_restore_puts_back_the_sqlite_database_it_had_restored() {
    let Some((port, mut client)) = odd_database("t_bk_rollback") else {
        return;
    };
    client
        .batch_execute("CREATE TABLE marker(note text); INSERT INTO marker VALUES ('backed up');")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(&data.join("state"), "backed up\n");
    let db = dir.path().join("db/app.db");
    sqlite_db(&db, 3);
    let out = dir.path().join("out");
    let archive = archive_of(&backup(&[
        "create",
        "--path",
        s(&data),
        "--db",
        &format!("sqlite://{}", db.display()),
        "--db",
        &url_of(port, "t_bk_rollback"),
        "--out",
        s(&out),
        "--name",
        "b",
    ]));
    write(&data.join("state"), "newer\n");
    sqlite_db(&db, 4);
    // The PostgreSQL restore, the last step, cannot connect: its database was renamed.
    drop(client);
    let mut admin = postgres::Client::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        postgres::NoTls,
    )
    .unwrap();
    for statement in [
        "DROP DATABASE IF EXISTS t_bk_rollback_moved WITH (FORCE)",
        "ALTER DATABASE t_bk_rollback RENAME TO t_bk_rollback_moved",
    ] {
        admin.batch_execute(statement).unwrap();
    }
    let failed = backup(&["restore", s(&archive), "--in-place"]);
    // It got that far.
    failed.assert_code(1).stderr_has("restored through SQLite");
    assert_eq!(
        rows(&db),
        7,
        "the writes since the backup are back: {}",
        failed.stderr
    );
    assert_eq!(read(&data.join("state")), "newer\n");
    assert!(!dir.path().join("data.ugw-before-restore").exists());
}

#[test]
fn a_path_with_a_trailing_slash_restores_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(&data.join("state"), "backed up\n");
    let out = dir.path().join("out");
    let with_slash = format!("{}/", data.display());
    let archive = archive_of(&backup(&[
        "create",
        "--path",
        &with_slash,
        "--out",
        s(&out),
        "--name",
        "b",
    ]));
    write(&data.join("state"), "newer\n");
    backup(&["restore", s(&archive), "--in-place"]).succeeds();
    assert_eq!(read(&data.join("state")), "backed up\n");
}

#[test]
fn a_sqlite_database_locked_by_a_writer_ends_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let writer = sqlite_db(&db, 3);
    writer
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO t VALUES (9);")
        .unwrap();
    let started = Instant::now();
    let outcome = backup(&[
        "create",
        "--db",
        &format!("sqlite://{}", db.display()),
        "--out",
        s(&dir.path().join("out")),
        "--name",
        "b",
        "--timeout",
        "1s",
    ]);
    let took = started.elapsed();
    outcome.assert_code(1);
    assert_eq!(
        outcome.last_step().error_kind(),
        "timeout",
        "{}",
        outcome.stderr
    );
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    writer.execute_batch("COMMIT").unwrap();
}

#[test]
fn libpq_variables_in_the_environment_never_redirect_a_dump() {
    let Some((port, mut client)) = odd_database("t_bk_env") else {
        return;
    };
    client
        .batch_execute("CREATE TABLE marker(note text); INSERT INTO marker VALUES ('here');")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tool();
    cmd.args([
        "create",
        "--db",
        &url_of(port, "t_bk_env"),
        "--out",
        s(&dir.path().join("out")),
        "--name",
        "pg",
    ])
    // Nobody listens there: a dump that took it would fail.
    .env("PGHOSTADDR", "127.0.0.2")
    .env("PGSERVICE", "no-such-service");
    let outcome = run(cmd);
    outcome.succeeds();
}

#[test]
fn a_bind_mounted_folder_and_a_bind_mounted_file_restore_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("volume");
    write(&source.join("state"), "backed up\n");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let Some(_folder) = Mounted::bind(&source, &data) else {
        return;
    };
    let real_conf = dir.path().join("secrets/app.conf");
    write(&real_conf, "key = 1\n");
    let conf = dir.path().join("app.conf");
    write(&conf, "");
    let Some(_file) = Mounted::bind(&real_conf, &conf) else {
        return;
    };
    let out = dir.path().join("out");
    let archive = archive_of(&backup(&[
        "create",
        "--path",
        s(&data),
        "--path",
        s(&conf),
        "--out",
        s(&out),
        "--name",
        "b",
    ]));
    write(&data.join("state"), "newer\n");
    write(&data.join("added"), "x");
    write(&conf, "key = 2\n");
    let restored = backup(&["restore", s(&archive), "--in-place"]);
    restored.succeeds();
    assert_eq!(
        read(&source.join("state")),
        "backed up\n",
        "into the mounted volume"
    );
    assert!(!source.join("added").exists());
    assert_eq!(read(&real_conf), "key = 1\n", "into the mounted file");
    assert!(!dir.path().join("app.conf.ugw-before-restore").exists());
}

/// `len` bytes no compressor can shrink (so that compressing them takes a while).
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn a_file_deleted_while_the_backup_runs_is_left_out_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a-big"), noise(8 << 20)).unwrap();
    write(&data.join("z-gone"), "deleted meanwhile\n");
    // Its other name, after it in the walk: it carries the data once the first name is gone.
    std::fs::hard_link(data.join("z-gone"), data.join("zz-link")).unwrap();
    let out = dir.path().join("out");
    let mut cmd = tool();
    cmd.args([
        "create",
        "--path",
        s(&data),
        "--out",
        s(&out),
        "--name",
        "b",
        "--compress",
        "zstd",
        "--level",
        "19",
        "--threads",
        "1",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let child = cmd.spawn().unwrap();
    // The archive's temp file is there once the walk is done and a-big is being read.
    let writing = kit::eventually(Duration::from_secs(20), || {
        std::fs::read_dir(&out).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(".b.tar.zst"))
        })
    });
    assert!(writing, "create started writing");
    std::fs::remove_file(data.join("z-gone")).unwrap();
    let output = kit::wait_bounded(child, Duration::from_secs(60));
    let outcome = Outcome::from(&output, started.elapsed());
    outcome.succeeds();
    assert_eq!(outcome.last_step().result["changed_while_read"], 1);
    outcome.stderr_has("z-gone vanished");
    let archive = archive_of(&outcome);
    backup(&["verify", s(&archive)]).succeeds();
    let to = dir.path().join("to");
    backup(&["restore", s(&archive), "--to", s(&to)]).succeeds();
    let copy = to.join(data.strip_prefix("/").unwrap());
    assert_eq!(read(&copy.join("zz-link")), "deleted meanwhile\n");
    assert!(!copy.join("z-gone").exists());
}

#[test]
fn a_full_disk_under_no_space_check_is_no_space() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let Some(_mount) = Mounted::tmpfs(&out, "size=1m") else {
        return;
    };
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("big"), noise(4 << 20)).unwrap();
    let outcome = backup(&[
        "create",
        "--path",
        s(&data),
        "--out",
        s(&out),
        "--name",
        "b",
        "--no-space-check",
        "--compress",
        "none",
    ]);
    outcome.assert_code(1);
    assert_eq!(
        outcome.last_step().error_kind(),
        "no_space",
        "{}",
        outcome.stderr
    );
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".ugw-backup.lock")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_corrupt_sqlite_database_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let connection = Connection::open(&db).unwrap();
    connection
        .execute_batch(
            "PRAGMA page_size = 4096;
             CREATE TABLE orders(id INTEGER PRIMARY KEY, note TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO orders SELECT i, printf('%0100d', i) FROM n;",
        )
        .unwrap();
    drop(connection);
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[4 * 4096 + 8..4 * 4096 + 24].fill(0xff);
    std::fs::write(&db, &bytes).unwrap();
    let outcome = backup(&[
        "create",
        "--db",
        &format!("sqlite://{}", db.display()),
        "--out",
        s(&dir.path().join("out")),
        "--name",
        "b",
    ]);
    outcome.assert_code(1);
    let step = outcome.last_step();
    assert_eq!(step.error_kind(), "corrupt");
    let message = step.error.unwrap().message;
    assert!(!message.contains('\n'), "one line: {message:?}");
}

/// A TCP port that completes connections and never says a word (a hung server).
fn silent_server() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

#[test]
fn a_pg_dump_past_the_timeout_is_a_timeout_and_the_urls_connect_timeout_applies() {
    if !kit::require("pg_dump") {
        return;
    }
    let (_listener, port) = silent_server();
    let dir = tempfile::tempdir().unwrap();
    let outcome = backup(&[
        "create",
        "--db",
        &format!("postgres://postgres@127.0.0.1:{port}/shop?sslmode=disable"),
        "--out",
        s(&dir.path().join("out")),
        "--name",
        "b",
        "--timeout",
        "1s",
    ]);
    outcome.assert_code(1);
    let step = outcome.last_step();
    assert_eq!(step.error_kind(), "timeout", "{}", outcome.stderr);
    assert!(!step.error.unwrap().message.trim().is_empty());
    // The URL's own connect_timeout ends it well before a long --timeout.
    let outcome = backup(&[
        "create",
        "--db",
        &format!("postgres://postgres@127.0.0.1:{port}/shop?sslmode=disable&connect_timeout=1"),
        "--out",
        s(&dir.path().join("out")),
        "--name",
        "b2",
        "--timeout",
        "30s",
    ]);
    outcome.assert_code(1);
    assert!(
        outcome.took() < Duration::from_secs(10),
        "took {:?}",
        outcome.took()
    );
}

#[test]
fn a_postgres_backup_on_read_only_storage_verifies_and_restores() {
    let Some((port, mut client)) = odd_database("t_bk_read_only") else {
        return;
    };
    client
        .batch_execute("CREATE TABLE marker(note text); INSERT INTO marker VALUES ('backed up');")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    archive_of(&backup(&[
        "create",
        "--db",
        &url_of(port, "t_bk_read_only"),
        "--out",
        s(&out),
        "--name",
        "pg",
    ]));
    let read_only = dir.path().join("ro");
    std::fs::create_dir_all(&read_only).unwrap();
    let Some(_mount) = Mounted::bind(&out, &read_only) else {
        return;
    };
    let remounted = Command::new("mount")
        .args(["-o", "remount,bind,ro", s(&read_only)])
        .status()
        .unwrap();
    assert!(remounted.success());
    let archive = read_only.join("pg.tar.gz");
    backup(&["verify", s(&archive)]).succeeds();
    client
        .batch_execute("UPDATE marker SET note = 'changed'")
        .unwrap();
    backup(&["restore", s(&archive), "--in-place"]).succeeds();
    assert_eq!(marker(&mut client), "backed up");
}

#[test]
fn the_partial_file_of_a_killed_create_is_removed_by_the_next_create() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(&data.join("f"), "x");
    let out = dir.path().join("out");
    let partial = out.join(".b1.tar.gz.Xy12Zw34Qp.tmp");
    write(&partial, "half an archive");
    let not_ours = out.join(".notes.tmp");
    write(&not_ours, "someone's");
    archive_of(&backup(&[
        "create",
        "--path",
        s(&data),
        "--out",
        s(&out),
        "--name",
        "b2",
    ]));
    assert!(!partial.exists());
    assert!(not_ours.exists(), "only the names a create writes");
}

#[test]
fn a_hot_journal_is_named_with_what_it_means() {
    if !kit::require("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    // A writer that dies mid-transaction (its pages spilled into the file): a hot journal.
    let writer = "import sqlite3, os, sys\n\
        c = sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE t(x)')\n\
        c.executemany('INSERT INTO t VALUES (?)', [(i,) for i in range(20000)]); c.commit()\n\
        c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('PRAGMA cache_size=1')\n\
        c.execute('BEGIN'); c.execute('UPDATE t SET x = x + 1'); os._exit(0)\n";
    let status = Command::new("python3")
        .args(["-c", writer, s(&db)])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(dir.path().join("app.db-journal").exists());
    let outcome = backup(&[
        "create",
        "--db",
        &format!("sqlite://{}", db.display()),
        "--out",
        s(&dir.path().join("out")),
        "--name",
        "b",
    ]);
    outcome.assert_code(1);
    let message = outcome.last_step().error.unwrap().message;
    assert!(message.contains("hot journal"), "{message}");
    assert!(!message.contains('\n'), "{message:?}");
}

/// `chattr +i` on a file, undone when dropped (so the temp folder can go).
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Option<Immutable> {
        let status = Command::new("chattr").arg("+i").arg(path).status();
        if status.is_ok_and(|s| s.success()) {
            return Some(Immutable(path.to_path_buf()));
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: chattr +i is not permitted"
        );
        eprintln!("SKIPPED: chattr +i is not permitted here");
        None
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn prune_goes_on_past_a_backup_it_cannot_remove_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    write(&app.join("f"), "x");
    let out = dir.path().join("out");
    for name in ["b0", "b1", "b2", "b3"] {
        archive_of(&backup(&[
            "create",
            "--path",
            s(&app),
            "--out",
            s(&out),
            "--name",
            name,
        ]));
        std::thread::sleep(Duration::from_millis(5));
    }
    let Some(_stuck) = Immutable::set(&out.join("b0.tar.gz.sha256")) else {
        return;
    };
    let pruned = backup(&["prune", "--out", s(&out), "--keep", "2"]);
    pruned.succeeds();
    let result = pruned.last_step().result;
    assert_eq!(result["removed"].as_array().unwrap().len(), 1, "{result}");
    assert!(
        result["removed"][0]
            .as_str()
            .unwrap()
            .ends_with("/b1.tar.gz")
    );
    assert!(
        result["not_removed"][0]
            .as_str()
            .unwrap()
            .ends_with("/b0.tar.gz"),
        "{result}"
    );
    pruned.stderr_has("cannot remove");
    assert!(
        out.join("b0.tar.gz").is_file(),
        "left whole: its checksum goes first"
    );
}

#[test]
fn an_older_manifest_whose_url_names_another_database_than_its_dump_is_refused() {
    let Some((port, mut backed_up)) = odd_database("t_bk_url#1") else {
        return;
    };
    let (_, mut decoy) = odd_database("t_bk_url").unwrap();
    for (client, note) in [(&mut backed_up, "backed up"), (&mut decoy, "decoy")] {
        client
            .batch_execute(&format!(
                "CREATE TABLE marker(note text); INSERT INTO marker VALUES ('{note}');"
            ))
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let archive = archive_of(&backup(&[
        "create",
        "--db",
        &url_of(port, "t_bk_url#1"),
        "--out",
        s(&out),
        "--name",
        "pg",
        "--compress",
        "none",
    ]));
    // The manifest as ugw-backup wrote it before the connection fields: the URL unescaped.
    let mut tar = Tar::bare();
    let mut manifest = String::new();
    for entry in entries(&std::fs::read(&archive).unwrap()) {
        if entry.name == b"ugw-manifest.json" {
            let mut json: serde_json::Value = serde_json::from_slice(&entry.data).unwrap();
            let dump = &mut json["pg"][0];
            dump.as_object_mut().unwrap().remove("connection");
            dump["url"] =
                format!("postgres://127.0.0.1:{port}/t_bk_url#1?user=postgres&sslmode=disable")
                    .into();
            manifest = json.to_string();
            continue;
        }
        tar = tar.entry(
            &entry.name,
            entry.kind,
            entry.mode,
            &entry.link,
            &entry.data,
        );
    }
    let bytes = tar.file(b"ugw-manifest.json", manifest.as_bytes()).finish();
    std::fs::write(&archive, &bytes).unwrap();
    std::fs::write(out.join("pg.manifest.json"), &manifest).unwrap();
    std::fs::write(
        out.join("pg.tar.sha256"),
        format!("{}  pg.tar\n", kit::sha256(&bytes)),
    )
    .unwrap();
    backup(&["verify", s(&archive)]).succeeds();
    let refused = backup(&["restore", s(&archive), "--in-place"]);
    refused.assert_code(1);
    assert_eq!(
        refused.last_step().error_kind(),
        "corrupt",
        "{}",
        refused.stderr
    );
    assert_eq!(
        marker(&mut decoy),
        "decoy",
        "never restored into another database"
    );
}
