//! `ugw-backup create` killed (SIGKILL) while it snapshots a SQLite database: the snapshot's
//! temp file and the files SQLite keeps beside it (`-journal` while the pages are copied,
//! `-wal` and `-shm` once the copy is opened in WAL mode) are left in `--out`. The next create
//! (under the folder's lock) removes every one of them, and only those: a file of someone
//! else's that looks alike stays.

use crate::kit;

use rusqlite::Connection;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// A WAL database of about 120 MB of incompressible rows: its snapshot takes long enough to
/// be killed in the middle.
fn big_database(path: &Path) {
    let db = Connection::open(path).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120000)
         INSERT INTO blobs (body) SELECT randomblob(1000) FROM n;",
    )
    .unwrap();
}

/// The hidden entries of `out` (every temp name a create writes begins with a dot).
fn hidden(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_create_killed_mid_snapshot_leaves_nothing_after_the_next_create() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    big_database(&db);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Someone's own file, named like a snapshot's journal but not a temp name of ugw's.
    let not_ours = out.join(".notes.sqlite-0.tmp-journal");
    std::fs::write(&not_ours, "someone's").unwrap();

    let url = format!("sqlite://{}", kit::s(&db));
    let mut create = kit::tool("ugw-backup");
    create
        .args([
            "create",
            "--db",
            &url,
            "--out",
            kit::s(&out),
            "--name",
            "b1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = create.spawn().unwrap();
    // The copy of the pages is under way while its rollback journal is there.
    let copying = kit::eventually(Duration::from_secs(60), || {
        hidden(&out)
            .iter()
            .any(|name| name.starts_with(".b1.sqlite-0.") && name.ends_with(".tmp-journal"))
    });
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        copying,
        "the snapshot's journal never appeared ({status:?})"
    );
    let left = hidden(&out);
    assert!(
        left.iter()
            .any(|n| n.ends_with(".tmp-journal") && n.contains(".b1.sqlite-0.")),
        "the kill left no journal to clean: {left:?}"
    );

    let mut again = kit::tool("ugw-backup");
    again.args([
        "create",
        "--db",
        &url,
        "--out",
        kit::s(&out),
        "--name",
        "b2",
    ]);
    let second = kit::run(again);
    second.assert_code(0);
    let archive = second.last_step().result["archive"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(Path::new(&archive).is_file(), "{archive}");
    assert_eq!(
        hidden(&out),
        // The folder's lock stays, as after every create.
        [".notes.sqlite-0.tmp-journal", ".ugw-backup.lock"],
        "left behind\n{}",
        second.stderr
    );
    assert!(not_ours.exists());
}
