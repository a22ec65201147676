//! ugw-backup through its real binary, on real files and real SQLite databases: round trips,
//! consistency under a writer, every corruption, hostile archives, no space, kill -9, locks,
//! prune rules and the in-place swap.

use crate::kit;

use kit::{Outcome, run, tool};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

fn backup(args: &[&str]) -> Outcome {
    let mut cmd = tool("ugw-backup");
    cmd.args(args);
    run(cmd)
}

fn backup_env(args: &[&str], env: (&str, &str)) -> Outcome {
    let mut cmd = tool("ugw-backup");
    cmd.args(args).env(env.0, env.1);
    run(cmd)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// One entry of a tree as the tests compare it.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Dir {
        mode: u32,
        mtime: i64,
    },
    File {
        mode: u32,
        mtime: i64,
        data: Vec<u8>,
    },
    Link(PathBuf),
}

fn tree(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<u8>, Node>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let name = path
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let node = if meta.file_type().is_symlink() {
            Node::Link(std::fs::read_link(&path).unwrap())
        } else if meta.is_dir() {
            walk(root, &path, out);
            Node::Dir {
                mode: meta.mode() & 0o7777,
                mtime: meta.mtime(),
            }
        } else {
            Node::File {
                mode: meta.mode() & 0o7777,
                mtime: meta.mtime(),
                data: std::fs::read(&path).unwrap(),
            }
        };
        out.insert(name, node);
    }
}

fn set_mtime(path: &Path, secs: u64) {
    let file = std::fs::File::open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// A tree with every kind of thing a backup must keep.
fn sample_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("plain.txt"), "hello\n").unwrap();
    std::fs::write(root.join("with space.conf"), "a = 1\n").unwrap();
    let odd = root.join(std::ffi::OsStr::from_bytes(b"caf\xe9-latin1"));
    std::fs::write(&odd, "non-UTF-8 name\n").unwrap();
    std::fs::write(root.join("sub/deeper/log.txt"), "line\n".repeat(50_000)).unwrap();
    std::fs::write(root.join("sub/secret"), "s3cret\n").unwrap();
    std::fs::set_permissions(
        root.join("sub/secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(root.join("sub/tool"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        root.join("sub/tool"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    std::os::unix::fs::symlink("sub/deeper/log.txt", root.join("current")).unwrap();
    std::os::unix::fs::symlink("../plain.txt", root.join("sub/up")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
    for (i, file) in ["plain.txt", "sub/deeper/log.txt", "sub/tool"]
        .iter()
        .enumerate()
    {
        set_mtime(&root.join(file), 1_500_000_000 + i as u64 * 1000);
    }
    std::fs::set_permissions(root.join("empty"), std::fs::Permissions::from_mode(0o700)).unwrap();
    set_mtime(&root.join("sub/deeper"), 1_400_000_000);
}

fn create(src: &Path, out: &Path, name: &str, extra: &[&str]) -> Outcome {
    let mut args = vec!["create", "--path", s(src), "--out", s(out), "--name", name];
    args.extend_from_slice(extra);
    backup(&args)
}

/// The archive's path from a create step.
fn archive_of(outcome: &Outcome) -> PathBuf {
    let step = outcome.last_step();
    assert_eq!(step.status, "ok", "{}", outcome.stderr);
    PathBuf::from(step.result["archive"].as_str().unwrap())
}

#[test]
fn a_tree_round_trips_through_create_verify_and_restore() {
    for codec in ["gzip", "zstd", "none"] {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("app");
        sample_tree(&src);
        let out = dir.path().join("backups");
        let created = create(
            &src,
            &out,
            "b1",
            &["--compress", codec, "--app-version", "1.2.0"],
        );
        created.succeeds();
        let archive = archive_of(&created);
        let step = created.last_step();
        assert_eq!(step.result["files"], 6, "{codec}: {:#}", step.result);
        assert_eq!(step.result["app_version"], "1.2.0");
        assert!(step.result["bytes"].as_u64().unwrap() > 0);
        let sha = std::fs::read_to_string(format!("{}.sha256", archive.display())).unwrap();
        assert!(sha.starts_with(step.result["sha256"].as_str().unwrap()));
        // `sha256sum -c` accepts the sidecar as it is.
        let check = kit::bash(
            &format!(
                "sha256sum -c {}.sha256",
                archive.file_name().unwrap().to_str().unwrap()
            ),
            &out,
        );
        check.succeeds();

        let verified = backup(&["verify", s(&archive)]);
        verified.succeeds();
        assert_eq!(verified.last_step().result["verified"], true);

        let to = dir.path().join("restored");
        backup(&["restore", s(&archive), "--to", s(&to)]).succeeds();
        let restored_root = to.join(src.strip_prefix("/").unwrap());
        assert_eq!(tree(&src), tree(&restored_root), "{codec}");
        assert!(to.join("ugw-manifest.json").exists());
    }
}

/// The gzip members of `archive`, each as (compressed bytes, whether its deflate stream opens
/// with a stored block).
fn gzip_members(archive: &[u8]) -> Vec<(usize, bool)> {
    let mut members = Vec::new();
    let mut rest = archive;
    while !rest.is_empty() {
        let mut member = flate2::bufread::GzDecoder::new(rest);
        std::io::copy(&mut member, &mut std::io::sink()).unwrap();
        let header_len = 10; // libdeflate writes no optional header fields
        let stored = rest[header_len] & 0b110 == 0;
        let after = member.into_inner();
        members.push((rest.len() - after.len(), stored));
        rest = after;
    }
    members
}

#[test]
fn gzip_and_tar_read_the_multi_member_archive_as_one_stream() {
    if !kit::require("gzip") || !kit::require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    sample_tree(&src);
    // Text and random runs across several 1 MiB chunks: deflated and stored members alike.
    let mut mixed = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for block in 0..12 {
        if block % 3 == 2 {
            for _ in 0..(256 * 1024 / 8) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                mixed.extend_from_slice(&rng.to_le_bytes());
            }
        } else {
            for i in 0..6000 {
                mixed.extend_from_slice(format!("{block} GET /api/items/{i} 200\n").as_bytes());
            }
        }
    }
    std::fs::write(src.join("mixed.log"), &mixed).unwrap();
    let archive = archive_of(&create(&src, &dir.path().join("out"), "m", &[]));

    let bytes = std::fs::read(&archive).unwrap();
    let members = gzip_members(&bytes);
    assert!(members.len() >= 4, "{members:?}");
    assert!(
        members.iter().any(|m| m.1) && members.iter().any(|m| !m.1),
        "{members:?}"
    );
    assert!(
        bytes.len() < mixed.len() * 3 / 4,
        "{} of {}",
        bytes.len(),
        mixed.len()
    );

    kit::bash(&format!("gzip -t '{}'", s(&archive)), dir.path()).succeeds();
    let listed = kit::bash(&format!("tar -tzf '{}'", s(&archive)), dir.path());
    listed.succeeds();
    assert!(
        listed.stdout.lines().any(|l| l.ends_with("app/mixed.log")),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.lines().any(|l| l == "ugw-manifest.json"),
        "{}",
        listed.stdout
    );
    let to = dir.path().join("untarred");
    std::fs::create_dir(&to).unwrap();
    kit::bash(
        &format!("tar -xzf '{}' -C '{}'", s(&archive), s(&to)),
        dir.path(),
    )
    .succeeds();
    assert_eq!(tree(&src), tree(&to.join(src.strip_prefix("/").unwrap())));

    let verified = backup(&["verify", s(&archive)]);
    verified.succeeds();
    assert_eq!(verified.last_step().result["verified"], true);
}

#[test]
fn hard_links_stay_links_and_modes_are_restored_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), "shared bytes").unwrap();
    std::fs::hard_link(src.join("a"), src.join("b")).unwrap();
    std::fs::set_permissions(src.join("a"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    let out = dir.path().join("out");
    // Given with a `..`, the path is stored resolved (a strict restore refuses `..`).
    let archive = archive_of(&create(&src.join("../app"), &out, "b", &[]));
    let to = dir.path().join("r");
    backup(&["restore", s(&archive), "--to", s(&to)]).succeeds();
    let root = to.join(src.strip_prefix("/").unwrap());
    let (a, b) = (
        std::fs::metadata(root.join("a")).unwrap(),
        std::fs::metadata(root.join("b")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "one file, two names");
    assert_eq!(
        a.mode() & 0o7777,
        0o4755,
        "a restore keeps the archived mode exactly"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("b.manifest.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"hardlink"), "{kinds:?}");
}

/// A writer that keeps two tables at equal counts, one transaction per pair of rows.
fn start_writer(db: &Path) -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let conn = Connection::open(db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, note TEXT);
         CREATE TABLE ledger(id INTEGER PRIMARY KEY, note TEXT);",
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut conn = conn;
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let mut n = 0u64;
        while !flag.load(Ordering::SeqCst) {
            let tx = conn.transaction().unwrap();
            tx.execute(
                "INSERT INTO orders(note) VALUES (?1)",
                [format!("order {n} {}", "x".repeat(200))],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO ledger(note) VALUES (?1)",
                [format!("entry {n}")],
            )
            .unwrap();
            tx.commit().unwrap();
            n += 1;
        }
        n
    });
    (stop, handle)
}

fn counts(db: &Path) -> (i64, i64, String) {
    let conn = Connection::open(db).unwrap();
    let orders = conn
        .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    let ledger = conn
        .query_row("SELECT count(*) FROM ledger", [], |r| r.get(0))
        .unwrap();
    let check = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    (orders, ledger, check)
}

#[test]
fn a_wal_database_written_during_the_backup_restores_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("app.db");
    let (stop, writer) = start_writer(&db);
    // Let the writer get going, so the backup meets a busy, growing database.
    assert!(
        kit::eventually(Duration::from_secs(10), || counts(&db).0 >= 500),
        "the writer wrote 500 rows"
    );
    let url = format!("sqlite://{}", db.display());
    let out = dir.path().join("out");
    let created = backup(&[
        "create",
        "--path",
        s(&data),
        "--db",
        &url,
        "--out",
        s(&out),
        "--name",
        "wal",
    ]);
    stop.store(true, Ordering::SeqCst);
    let written = writer.join().unwrap();
    // The live file given as --db is not also copied.
    created.succeeds().stderr_lacks("looks like a live SQLite");
    let archive = archive_of(&created);
    let to = dir.path().join("r");
    backup(&["restore", s(&archive), "--to", s(&to)]).succeeds();
    let snapshot = to.join("ugw-db/sqlite/0-app.db");
    let (orders, ledger, check) = counts(&snapshot);
    assert_eq!(check, "ok");
    assert_eq!(orders, ledger, "one transaction, both tables");
    assert!(
        orders >= 500 && (orders as u64) <= written,
        "{orders} of {written}"
    );
    // The live file and its -wal inside --path were left out of the copy.
    assert!(
        !to.join(data.strip_prefix("/").unwrap())
            .join("app.db")
            .exists()
    );
    assert!(
        !to.join(data.strip_prefix("/").unwrap())
            .join("app.db-wal")
            .exists()
    );
}

#[test]
fn an_in_place_restore_of_a_wal_database_restores_exactly_the_backed_up_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("app.db");
    std::fs::write(data.join("config.toml"), "v = 1\n").unwrap();
    // An open connection with checkpoints off keeps committed rows in the -wal.
    let live = Connection::open(&db).unwrap();
    live.pragma_update(None, "journal_mode", "WAL").unwrap();
    live.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    live.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);")
        .unwrap();
    let url = format!("sqlite://{}", db.display());
    let out = dir.path().join("out");
    let created = backup(&[
        "create",
        "--path",
        s(&data),
        "--db",
        &url,
        "--out",
        s(&out),
        "--name",
        "b",
    ]);
    let archive = archive_of(&created);
    live.execute_batch("INSERT INTO t VALUES (4), (5); DELETE FROM t WHERE x = 1;")
        .unwrap();
    std::fs::write(data.join("config.toml"), "v = 2\n").unwrap();
    assert!(std::fs::metadata(data.join("app.db-wal")).unwrap().len() > 0);

    let restored = backup(&["restore", s(&archive), "--in-place"]);
    restored.succeeds();
    let rows: Vec<i64> = live
        .prepare("SELECT x FROM t ORDER BY x")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        [1, 2, 3],
        "the open connection sees exactly the backed-up rows"
    );
    drop(live);
    let fresh = Connection::open(&db).unwrap();
    let count: i64 = fresh
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 3, "and so does a new one, with the -wal beside it");
    assert_eq!(
        std::fs::read_to_string(data.join("config.toml")).unwrap(),
        "v = 1\n"
    );
    assert!(
        !dir.path().join("data.ugw-before-restore").exists(),
        "removed after success"
    );
}

#[test]
fn an_in_place_restore_swaps_and_puts_the_previous_copy_back_when_it_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("state"), "backed up\n").unwrap();
    let db = dir.path().join("db/app.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x);")
        .unwrap();
    let url = format!("sqlite://{}", db.display());
    let out = dir.path().join("out");
    let archive = archive_of(&backup(&[
        "create",
        "--path",
        s(&data),
        "--db",
        &url,
        "--out",
        s(&out),
        "--name",
        "b",
    ]));
    std::fs::write(data.join("state"), "newer\n").unwrap();
    std::fs::write(data.join("added"), "x").unwrap();
    let inode_before = std::fs::metadata(&data).unwrap().ino();
    // The database restore (after the swap) cannot succeed: its file is now a folder.
    std::fs::remove_file(&db).unwrap();
    std::fs::create_dir(&db).unwrap();

    let failed = backup(&["restore", s(&archive), "--in-place"]);
    failed.assert_code(1);
    assert_eq!(
        std::fs::read_to_string(data.join("state")).unwrap(),
        "newer\n"
    );
    assert!(data.join("added").exists());
    assert_eq!(
        std::fs::metadata(&data).unwrap().ino(),
        inode_before,
        "the very same folder is back"
    );
    assert!(!dir.path().join("data.ugw-before-restore").exists());

    std::fs::remove_dir(&db).unwrap();
    backup(&["restore", s(&archive), "--in-place"]).succeeds();
    assert_eq!(
        std::fs::read_to_string(data.join("state")).unwrap(),
        "backed up\n"
    );
    assert!(!data.join("added").exists());
    assert_ne!(
        std::fs::metadata(&data).unwrap().ino(),
        inode_before,
        "swapped by rename"
    );
    assert!(!dir.path().join("data.ugw-before-restore").exists());

    // Everything gone, its folder included: it all comes back.
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::remove_dir_all(db.parent().unwrap()).unwrap();
    backup(&["restore", s(&archive), "--in-place"]).succeeds();
    assert_eq!(
        std::fs::read_to_string(data.join("state")).unwrap(),
        "backed up\n"
    );
    assert!(db.exists());
}

/// A fresh small backup: (temp dir, archive).
fn small_backup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    sample_tree(&src);
    // Incompressible bytes, stored as they are: a flipped byte there is only caught by hashes.
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("noise.bin"), noise).unwrap();
    let archive = archive_of(&create(
        &src,
        &dir.path().join("out"),
        "b",
        &["--compress", "none"],
    ));
    (dir, archive)
}

#[track_caller]
fn assert_corrupt(outcome: &Outcome, words: &str) {
    outcome.assert_code(1);
    let step = outcome.last_step();
    assert_eq!(step.error_kind(), "corrupt", "{}", outcome.stderr);
    let message = &step.error.as_ref().unwrap().message;
    assert!(message.contains(words), "{message}");
}

#[test]
fn each_corruption_is_caught_by_verify_and_restore_writes_nothing() {
    // A flipped byte inside a file's data names that entry.
    let (dir, archive) = small_backup();
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes.windows(8).position(|w| w == b"line\nlin").unwrap();
    bytes[at + 2] ^= 0x20;
    std::fs::write(&archive, &bytes).unwrap();
    assert_corrupt(&backup(&["verify", s(&archive)]), "log.txt");
    let to = dir.path().join("r");
    assert_corrupt(
        &backup(&["restore", s(&archive), "--to", s(&to)]),
        "log.txt",
    );
    assert!(!to.exists());

    // Truncated.
    let (_dir, archive) = small_backup();
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();
    assert_corrupt(&backup(&["verify", s(&archive)]), "");

    // A missing sidecar.
    let (_dir, archive) = small_backup();
    std::fs::remove_file(format!("{}.sha256", archive.display())).unwrap();
    assert_corrupt(&backup(&["verify", s(&archive)]), ".sha256");

    // The manifest sidecar tampered with (one hash changed, still valid JSON).
    let (_dir, archive) = small_backup();
    let manifest = archive.with_file_name("b.manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let (head, tail) = text.split_once("\"sha256\":\"").unwrap();
    let flipped = if tail.starts_with('0') { '1' } else { '0' };
    let tampered = format!("{head}\"sha256\":\"{flipped}{}", &tail[1..]);
    std::fs::write(&manifest, tampered).unwrap();
    let outcome = backup(&["verify", s(&archive)]);
    outcome.fails_with(kit::Kind::Corrupt);

    // A byte flipped in a gzip archive too (the usual case).
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    sample_tree(&src);
    let archive = archive_of(&create(&src, &dir.path().join("out"), "g", &[]));
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&archive, &bytes).unwrap();
    assert_corrupt(&backup(&["verify", s(&archive)]), "");
}

#[test]
fn a_hostile_archive_with_a_matching_manifest_is_still_refused_on_restore() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = kit::hostile_archives::write_all(dir.path());
    for hostile in &corpus {
        if matches!(hostile.name, "pax-path" | "gnu-longname") {
            continue; // their real names live in extension records this simple reader skips
        }
        if hostile.points_out_only {
            continue; // a symlink ugw archived is data: restored as a link (tests/it/conformance_tar.rs)
        }
        let archive = dir.path().join(format!("{}-backup.tar", hostile.name));
        let (manifest, tar) = as_backup(&std::fs::read(&hostile.tar).unwrap());
        std::fs::write(&archive, &tar).unwrap();
        std::fs::write(
            dir.path()
                .join(format!("{}-backup.manifest.json", hostile.name)),
            &manifest,
        )
        .unwrap();
        std::fs::write(
            format!("{}.sha256", archive.display()),
            format!("{}  x\n", sha256(&tar)),
        )
        .unwrap();
        let to = hostile.work_dir().join("out");
        let outcome = backup(&["restore", s(&archive), "--to", s(&to)]);
        outcome.assert_code(1);
        assert_eq!(
            outcome.last_step().error_kind(),
            "unsafe_input",
            "{}: {}",
            hostile.name,
            outcome.stderr
        );
        assert!(
            std::fs::read_dir(hostile.work_dir())
                .unwrap()
                .next()
                .is_none(),
            "{}",
            hostile.name
        );
        hostile.assert_untouched();
        // verify runs restore's checks: a backup it passes is one restore accepts.
        let verified = backup(&["verify", s(&archive)]);
        assert_eq!(verified.code, 1, "{}: {}", hostile.name, verified.stderr);
        assert_eq!(
            verified.last_step().error_kind(),
            "unsafe_input",
            "{}: {}",
            hostile.name,
            verified.stderr
        );
    }
}

fn sha256(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// A hostile archive dressed as a backup: a manifest that describes every entry exactly, inside
/// (as create writes it) and as the sidecar, so that verify passes and only unpack can refuse.
fn as_backup(hostile: &[u8]) -> (String, Vec<u8>) {
    use kit::hostile_archives::{Tar, entries};
    let mut tar = Tar::bare();
    let mut described = Vec::new();
    for entry in entries(hostile) {
        let kind = match entry.kind {
            b'5' => "dir",
            b'2' => "symlink",
            b'1' => "hardlink",
            _ => "file",
        };
        let name = String::from_utf8(entry.name.clone()).unwrap();
        described.push(serde_json::json!({
            "path": name, "type": kind, "size": entry.data.len(), "mode": entry.mode,
            "uid": 0, "gid": 0, "mtime": 0,
            "sha256": (kind == "file").then(|| sha256(&entry.data)),
            "link": (!entry.link.is_empty()).then(|| String::from_utf8(entry.link.clone()).unwrap()),
        }));
        tar = tar.entry(
            &entry.name,
            entry.kind,
            entry.mode,
            &entry.link,
            &entry.data,
        );
    }
    let manifest = serde_json::to_string(&serde_json::json!({
        "ugw_backup": 1, "name": "hostile", "host": "h", "app_version": null, "tool_version": "0",
        "created": "2026-11-30T00:00:00.000Z", "compress": "none", "roots": [],
        "entries": described, "sqlite": [], "pg": [], "changed_while_read": [],
    }))
    .unwrap();
    let tar = tar.file(b"ugw-manifest.json", manifest.as_bytes()).finish();
    (manifest, tar)
}

#[test]
fn no_space_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    sample_tree(&src);
    let out = dir.path().join("out");
    let outcome = backup_env(
        &["create", "--path", s(&src), "--out", s(&out), "--name", "b"],
        ("UGW_FAKE_FREE_BYTES", "1000"),
    );
    outcome.assert_code(1);
    let step = outcome.last_step();
    assert_eq!(step.error_kind(), "no_space");
    assert!(
        step.error.unwrap().message.contains("1000 B free"),
        "{}",
        outcome.stderr
    );
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".ugw-backup.lock")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // --no-space-check skips the check.
    let forced = backup_env(
        &[
            "create",
            "--path",
            s(&src),
            "--out",
            s(&out),
            "--name",
            "b",
            "--no-space-check",
        ],
        ("UGW_FAKE_FREE_BYTES", "1000"),
    );
    forced.succeeds();
}

#[test]
fn kill_9_mid_create_leaves_no_file_under_the_final_name() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..40 {
        use std::fmt::Write as _;
        let mut text = String::new();
        for n in 0..60_000 {
            let _ = writeln!(text, "{i} {n} some log text");
        }
        std::fs::write(src.join(format!("f{i}.log")), text).unwrap();
    }
    let out = dir.path().join("out");
    let mut cmd = tool("ugw-backup");
    cmd.args([
        "create",
        "--path",
        s(&src),
        "--out",
        s(&out),
        "--name",
        "k",
        "--level",
        "9",
        "--threads",
        "1",
    ]);
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut temp_seen = false;
    kit::eventually(Duration::from_secs(30), || {
        temp_seen = std::fs::read_dir(&out).is_ok_and(|d| {
            d.flatten().any(|e| {
                e.file_name().to_string_lossy().starts_with(".k.tar.gz.")
                    && e.metadata().is_ok_and(|m| m.len() > 0)
            })
        });
        temp_seen || child.try_wait().unwrap().is_some()
    });
    assert!(temp_seen, "the archive is written under a temp name first");
    child.kill().unwrap();
    child.wait().unwrap();
    for name in ["k.tar.gz", "k.tar.gz.sha256", "k.manifest.json"] {
        assert!(!out.join(name).exists(), "{name} exists after kill -9");
    }
}

#[test]
fn a_second_create_in_the_same_folder_waits_then_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    sample_tree(&src);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let lock = std::fs::File::create(out.join(".ugw-backup.lock")).unwrap();
    lock.lock().unwrap();
    let started = Instant::now();
    let outcome = create(&src, &out, "b", &["--lock-timeout", "300ms"]);
    outcome.assert_code(4);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(outcome.last_step().error_kind(), "busy");
    assert!(!out.join("b.tar.gz").exists());
    drop(lock);
    create(&src, &out, "b", &[]).succeeds();
}

#[test]
fn prune_keeps_the_newest_and_the_one_the_record_names() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    let out = dir.path().join("out");
    let mut records = Vec::new();
    for name in ["b1", "b2", "b3", "b4"] {
        let outcome = create(&src, &out, name, &[]);
        outcome.succeeds();
        records.push(outcome.stdout.clone());
        // Distinct creation times (the manifest's, to the millisecond).
        std::thread::sleep(Duration::from_millis(5));
    }
    // The record of the oldest backup comes in: it is spared.
    let mut cmd = tool("ugw-backup");
    cmd.args(["prune", "--out", s(&out), "--keep", "2"]);
    let outcome = kit::with_stdin(cmd, &records[0]);
    outcome.succeeds();
    let removed = outcome.last_step().result["removed"].clone();
    assert_eq!(removed.as_array().unwrap().len(), 1, "{removed}");
    assert!(removed[0].as_str().unwrap().ends_with("b2.tar.gz"));
    for name in ["b1", "b3", "b4"] {
        assert!(out.join(format!("{name}.tar.gz")).exists(), "{name}");
        assert!(out.join(format!("{name}.manifest.json")).exists(), "{name}");
    }
    assert!(!out.join("b2.manifest.json").exists() && !out.join("b2.tar.gz.sha256").exists());
    let listed = backup(&["list", "--out", s(&out)]);
    let names: Vec<String> = listed.last_step().result["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["b4", "b3", "b1"], "newest first");
    // create --keep prunes after success.
    create(&src, &out, "b5", &["--keep", "1"]).succeeds();
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar.gz"))
        .collect();
    assert_eq!(left, ["b5.tar.gz"]);
}

#[test]
fn restore_runs_on_a_failed_record_and_checks_the_app_version() {
    let (dir, archive) = small_backup();
    let failed = serde_json::json!({
        "ugw": 1, "run": "r", "ok": false,
        "steps": [{
            "tool": "ugw-swap", "tool_version": "0.1.0", "host": "h",
            "started": "2026-11-30T00:00:00.000Z", "elapsed_ms": 1, "status": "failed", "exit": 1,
            "changed": false, "dry_run": false,
            "error": {"kind": "restart_failed", "message": "the new version did not start"}
        }]
    })
    .to_string();
    let to = dir.path().join("r");
    let mut cmd = tool("ugw-backup");
    cmd.args([
        "restore",
        s(&archive),
        "--to",
        s(&to),
        "--expect-app-version",
        "2.0",
    ]);
    let outcome = kit::with_stdin(cmd, &failed);
    outcome.assert_code(1);
    let step = outcome.last_step();
    assert_eq!(step.status, "failed", "it ran (not skipped) and refused");
    assert!(
        step.error.unwrap().message.contains("app version"),
        "{}",
        outcome.stderr
    );
    assert!(!to.exists());
    let mut cmd = tool("ugw-backup");
    cmd.args([
        "restore",
        s(&archive),
        "--to",
        s(&to),
        "--expect-app-version",
        "2.0",
        "--force",
    ]);
    kit::with_stdin(cmd, &failed).succeeds();
    assert!(to.join("ugw-manifest.json").exists());
}

#[test]
fn verify_takes_the_archive_of_the_last_create_step() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    sample_tree(&src);
    let created = create(&src, &dir.path().join("out"), "b", &[]);
    let mut cmd = tool("ugw-backup");
    cmd.arg("verify");
    let outcome = kit::with_stdin(cmd, &created.stdout);
    outcome.succeeds();
    assert_eq!(
        outcome.last_step().result["archive"],
        created.last_step().result["archive"]
    );
}

/// A database of its own in the shared test cluster, or `None` (the test skips, or fails
/// under CI=true) without PostgreSQL and its client tools.
fn postgres_database(test: &str) -> Option<kit::postgres::Database> {
    if !(kit::require("psql") && kit::require("pg_dump") && kit::require("pg_restore")) {
        return None;
    }
    kit::postgres::database(test)
}

#[test]
fn a_postgres_database_is_dumped_verified_and_restored_in_place_without_its_password_in_sight() {
    let Some(db) = postgres_database("backup_dump_restore") else {
        return;
    };
    db.sql("CREATE TABLE orders(id int primary key, note text); INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 100) g;");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cmd = tool("ugw-backup");
    cmd.args([
        "create",
        "--db-env",
        "SHOP_URL",
        "--pg-globals",
        "--out",
        s(&out),
        "--name",
        "pg",
    ])
    .env("SHOP_URL", db.url_of_password_role());
    let created = run(cmd);
    created
        .succeeds()
        .stderr_has(format!("backing up PostgreSQL database {} to", db.name));
    let secret = kit::postgres::PASSWORD;
    created.never_shows(secret);
    let manifest = std::fs::read_to_string(out.join("pg.manifest.json")).unwrap();
    assert!(
        !manifest.contains(secret),
        "the manifest keeps the URL without its password"
    );
    let step = created.last_step();
    // The URL libpq takes, its password left to the environment (the user in the query, where
    // the scrubber does not take it for a credential).
    let shown = format!(
        "postgres://127.0.0.1:{}/{}?user={}&sslmode=prefer",
        db.port,
        db.name,
        kit::postgres::PASSWORD_ROLE
    );
    assert_eq!(step.result["pg"][0].as_str(), Some(shown.as_str()));
    assert!(manifest.contains(&shown), "{manifest}");
    let archive = archive_of(&created);
    backup(&["verify", s(&archive)]).succeeds();
    let to = dir.path().join("look");
    backup(&["restore", s(&archive), "--to", s(&to)]).succeeds();
    let globals = std::fs::read_to_string(to.join("ugw-db/pg/globals.sql")).unwrap();
    assert!(globals.contains("CREATE ROLE postgres"), "{globals}");

    db.sql("DELETE FROM orders WHERE id > 10; UPDATE orders SET note = 'changed';");
    // The recorded URL has no password: it comes from the environment, as for any libpq tool.
    let mut cmd = tool("ugw-backup");
    cmd.args(["restore", s(&archive), "--in-place"])
        .env("PGPASSWORD", secret);
    let restored = run(cmd);
    // No empty list of paths.
    restored.succeeds().stderr_lacks("restored in place: \n");
    assert_eq!(db.sql("SELECT count(*) FROM orders"), ["100"]);
    assert_eq!(db.sql("SELECT note FROM orders WHERE id = 5"), ["order 5"]);
}

#[test]
fn a_dump_cut_in_half_is_caught_and_no_backup_is_kept() {
    let Some(db) = postgres_database("backup_dump_cut") else {
        return;
    };
    db.sql("CREATE TABLE t AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g;");
    let dir = tempfile::tempdir().unwrap();
    // A pg_dump that writes only the first half of its dump (to stdout, where ugw-backup
    // takes it).
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = kit::bash("command -v pg_dump", dir.path())
        .stdout
        .trim()
        .to_string();
    std::fs::write(
        bin.join("pg_dump"),
        format!(
            "#!/bin/bash\nf=$(mktemp)\n{real} \"$@\" > \"$f\" || exit\n\
             head -c $(( $(stat -c %s \"$f\") / 2 )) \"$f\"; rm -f \"$f\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("pg_dump"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("out");
    let url = db.url_of_password_role();
    let mut cmd = tool("ugw-backup");
    cmd.args(["create", "--db", &url, "--out", s(&out), "--name", "cut"])
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        );
    let outcome = run(cmd);
    outcome.assert_code(1);
    assert_eq!(
        outcome.last_step().error_kind(),
        "corrupt",
        "{}",
        outcome.stderr
    );
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".ugw-backup.lock")
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // With a pg_restore that checks nothing, the cut dump gets into a backup: verify, with
    // the real pg_restore, reads every block and catches it.
    std::fs::write(bin.join("pg_restore"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(
        bin.join("pg_restore"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let mut cmd = tool("ugw-backup");
    cmd.args(["create", "--db", &url, "--out", s(&out), "--name", "cut"])
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        );
    let archive = archive_of(&run(cmd));
    let verified = backup(&["verify", s(&archive)]);
    verified.assert_code(1);
    let step = verified.last_step();
    assert_eq!(step.error_kind(), "corrupt");
    assert!(
        step.error
            .unwrap()
            .message
            .contains(&format!("ugw-db/pg/0-{}.dump", db.name)),
        "{}",
        verified.stderr
    );
}

#[test]
fn a_file_that_changes_while_read_is_flagged_and_fails_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    std::fs::create_dir_all(&src).unwrap();
    let growing = src.join("growing.log");
    std::fs::write(&growing, "x".repeat(32 << 20)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let appender = {
        let (stop, growing) = (Arc::clone(&stop), growing.clone());
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(growing)
                .unwrap();
            while !stop.load(Ordering::SeqCst) {
                file.write_all(b"one more line\n").unwrap();
            }
        })
    };
    let out = dir.path().join("out");
    let lenient = create(&src, &out, "lenient", &["--compress", "none"]);
    let strict = create(&src, &out, "strict", &["--compress", "none", "--strict"]);
    stop.store(true, Ordering::SeqCst);
    appender.join().unwrap();

    lenient.succeeds();
    assert_eq!(lenient.last_step().result["changed_while_read"], 1);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("lenient.manifest.json")).unwrap()).unwrap();
    let flagged = manifest["changed_while_read"][0].as_str().unwrap();
    assert!(flagged.ends_with("app/growing.log"), "{flagged}");
    lenient.stderr_has("changed while it was read");

    strict.fails_with(kit::Kind::CheckFailed);
    assert!(!out.join("strict.tar").exists());
}

#[test]
fn a_mount_point_is_restored_in_place_by_its_contents() {
    // A real mount in a private mount namespace: root only (CI runs as root).
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: mounting needs root");
        return;
    }
    if !kit::require("unshare") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let script = format!(
        r#"set -e
mount -t tmpfs tmpfs {data}
echo backed-up > {data}/state
ugw-backup create --path {data} --out {out} --name m --output none -q
echo newer > {data}/state; echo x > {data}/added
ugw-backup restore {out}/m.tar.gz --in-place --output none
echo "state=$(cat {data}/state)"
echo "entries=$(ls -A {data} | tr "\n" " ")"
mountpoint -q {data} && echo still-mounted
"#,
        data = s(&data),
        out = s(&dir.path().join("out")),
    );
    std::fs::write(dir.path().join("restore.sh"), script).unwrap();
    let outcome = kit::bash(
        "unshare -m --propagation private bash restore.sh",
        dir.path(),
    );
    outcome
        .succeeds()
        .stdout_has("state=backed-up")
        .stdout_has("entries=state \n")
        .stdout_has("still-mounted")
        .stderr_has("is a mount point");
}

#[test]
fn a_live_sqlite_file_inside_a_path_is_warned_about_unless_given_as_db() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("app.db");
    let live = Connection::open(&db).unwrap();
    live.pragma_update(None, "journal_mode", "WAL").unwrap();
    live.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let out = dir.path().join("out");
    let warned = create(&data, &out, "plain", &[]);
    warned
        .succeeds()
        .stderr_has("looks like a live SQLite database");
    let url = format!("sqlite://{}", db.display());
    let quiet = create(&data, &out, "snap", &["--db", &url]);
    quiet.succeeds().stderr_lacks("looks like a live SQLite");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("snap.manifest.json")).unwrap()).unwrap();
    let paths: Vec<&str> = manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        !paths.iter().any(|p| p.contains("data/app.db")),
        "the live file and its -wal are left out: {paths:?}"
    );
    assert_eq!(manifest["sqlite"][0]["integrity_check"], "ok");
}

#[test]
fn a_pg_dump_older_than_the_server_is_a_clear_error_and_the_password_stays_out_of_argv() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // Says what a real old pg_dump says, and writes down the argv and PGPASSWORD it got.
    std::fs::write(
        bin.join("pg_dump"),
        format!(
            "#!/bin/sh\necho \"$*\" > {argv}\necho \"$PGPASSWORD\" > {env}\n\
             echo 'pg_dump: error: aborting because of server version mismatch' >&2\n\
             echo 'pg_dump: detail: server version: 17.2; pg_dump version: 15.18' >&2\nexit 1\n",
            argv = s(&dir.path().join("argv")),
            env = s(&dir.path().join("env")),
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("pg_dump"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("out");
    let mut cmd = tool("ugw-backup");
    cmd.args([
        "create",
        "--db",
        "postgres://app:Hunter2-secret@127.0.0.1:1/shop",
        "--out",
        s(&out),
        "--name",
        "old",
    ])
    .env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    let outcome = run(cmd);
    outcome.assert_code(2);
    let message = outcome.last_step().error.unwrap().message;
    assert!(
        message.contains("pg_dump is older than the PostgreSQL server"),
        "{message}"
    );
    outcome.never_shows("Hunter2-secret");
    let argv = std::fs::read_to_string(dir.path().join("argv")).unwrap();
    assert!(
        !argv.contains("Hunter2-secret") && argv.contains("--format=custom"),
        "{argv}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("env"))
            .unwrap()
            .trim(),
        "Hunter2-secret"
    );
}

// ---- restore from the record: only this run's backup (issue 16, items 23, 24, 27) ----

/// ugw-backup with `--record record` (the record also goes to stdout, for `last_step`).
fn backup_in(record: &Path, args: &[&str]) -> Outcome {
    let mut cmd = tool("ugw-backup");
    cmd.args(args).arg("--record").arg(record);
    run(cmd)
}

/// `create --path DATA --out OUT --name NAME` as the first step of a new run in `record`.
fn create_in_new_run(record: &Path, data: &Path, out: &Path, name: &str) -> Outcome {
    backup_in(
        record,
        &[
            "create",
            "--path",
            s(data),
            "--out",
            s(out),
            "--name",
            name,
            "--new",
        ],
    )
}

/// A real failure in the record's run: a health check of a port nobody listens on.
fn fail_the_run(record: &Path) {
    let port = kit::free_port();
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args([
        "--url",
        &format!("http://127.0.0.1:{port}/health/ready"),
        "--timeout",
        "300ms",
        "--record",
        s(record),
    ]);
    let outcome = run(cmd);
    outcome.assert_code(1);
    assert!(!kit::parse_record(&std::fs::read_to_string(record).unwrap()).ok);
}

/// Append `step` to the record file as whoever can write it would.
fn append_step(record: &Path, step: serde_json::Value) {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
    json["steps"].as_array_mut().unwrap().push(step);
    std::fs::write(record, json.to_string()).unwrap();
}

fn run_of(record: &Path) -> String {
    kit::parse_record(&std::fs::read_to_string(record).unwrap()).run
}

/// A step of the record's run on this host, as `ugw-backup` would write it, with this result.
fn forged_step(record: &Path, result: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "tool": "ugw-backup", "tool_version": "0.1.0", "run": run_of(record),
        "host": ugw_shared::time::hostname(), "started": "2026-12-01T00:00:00.000Z",
        "elapsed_ms": 1, "status": "ok", "exit": 0, "changed": true, "dry_run": false,
        "result": result
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn a_restore_from_the_record_takes_this_runs_create_not_a_later_verify_of_another_archive() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let out = dir.path().join("out");
    std::fs::write(data.join("state"), "last night\n").unwrap();
    let nightly = archive_of(&create(&data, &out, "nightly", &[]));
    std::fs::write(data.join("state"), "this morning\n").unwrap();

    let record = dir.path().join("run.json");
    let created = create_in_new_run(&record, &data, &out, "today");
    let today = archive_of(&created);
    // Within the same run, a check of last night's archive: an ok step naming it.
    backup_in(&record, &["verify", s(&nightly)]).succeeds();
    // verify without ARCHIVE, after it, takes the create step's archive, not the verify's.
    let verified = backup_in(&record, &["verify"]);
    assert_eq!(verified.last_step().result["archive"], s(&today));
    std::fs::write(data.join("state"), "written by the failed release\n").unwrap();
    fail_the_run(&record);

    let restored = backup_in(&record, &["restore", "--in-place"]);
    restored.succeeds();
    let step = restored.last_step();
    assert_eq!(step.result["archive"], s(&today), "{}", restored.stderr);
    assert!(step.changed);
    assert_eq!(
        read(&data.join("state")),
        "this morning\n",
        "today's backup, not last night's"
    );
}

#[test]
fn the_failure_path_run_twice_does_not_wipe_what_the_node_wrote_in_between() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("state"), "before the upgrade\n").unwrap();
    let out = dir.path().join("out");
    let record = dir.path().join("run.json");
    let created = create_in_new_run(&record, &data, &out, "b");
    created.succeeds();
    std::fs::write(data.join("state"), "written by v2\n").unwrap();
    fail_the_run(&record);

    let first = backup_in(&record, &["restore", "--in-place"]);
    first.succeeds();
    assert!(first.last_step().changed);
    assert_eq!(read(&data.join("state")), "before the upgrade\n");

    // The node went back to work on the old release and took a write.
    std::fs::write(data.join("state"), "a customer's order\n").unwrap();
    let second = backup_in(&record, &["restore", "--in-place"]);
    second.succeeds();
    let step = second.last_step();
    assert!(!step.changed, "{}", second.stderr);
    second.stderr_has("already restored");
    assert_eq!(read(&data.join("state")), "a customer's order\n");

    // --force restores again, as asked.
    let forced = backup_in(&record, &["restore", "--in-place", "--force"]);
    forced.succeeds();
    assert!(forced.last_step().changed);
    assert_eq!(read(&data.join("state")), "before the upgrade\n");
}

#[test]
fn a_restore_on_a_run_that_made_no_backup_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("state"), "live\n").unwrap();
    let out = dir.path().join("out");
    // The run failed at its backup (the path is missing): the README's failure path line runs.
    let record = dir.path().join("run.json");
    backup_in(
        &record,
        &[
            "create",
            "--path",
            s(&dir.path().join("missing")),
            "--out",
            s(&out),
            "--new",
        ],
    )
    .assert_code(1);
    let outcome = backup_in(
        &record,
        &[
            "restore",
            "--in-place",
            "--expect-app-version",
            "1.0",
            "--output",
            "none",
        ],
    );
    outcome.succeeds().stderr_has("made no backup");
    let step = kit::parse_record(&read(&record)).steps.pop().unwrap();
    assert_eq!(step.status, "ok");
    assert!(!step.changed);

    // Another run's backup, pieced into this run's failed record, is not this run's either.
    let other = dir.path().join("other.json");
    let made = backup_in(
        &other,
        &[
            "create",
            "--path",
            s(&data),
            "--out",
            s(&out),
            "--name",
            "yesterday",
            "--new",
        ],
    );
    made.succeeds();
    let yesterday_step =
        serde_json::from_str::<serde_json::Value>(&read(&other)).unwrap()["steps"][0].clone();
    append_step(&record, yesterday_step);
    std::fs::write(data.join("state"), "live, newer\n").unwrap();
    let outcome = backup_in(&record, &["restore", "--in-place"]);
    outcome.succeeds().stderr_has("belongs to run");
    assert!(!outcome.last_step().changed);
    assert_eq!(read(&data.join("state")), "live, newer\n");
}

#[test]
fn a_forged_backup_step_never_rolls_another_folder_back() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    let other = dir.path().join("other-service");
    for (folder, text) in [(&app, "app: backed up\n"), (&other, "other: last week\n")] {
        std::fs::create_dir_all(folder).unwrap();
        std::fs::write(folder.join("state"), text).unwrap();
    }
    let out = dir.path().join("out");
    let other_created = create(&other, &out, "other", &[]);
    let other_archive = archive_of(&other_created);
    std::fs::write(other.join("state"), "other: today\n").unwrap();

    let record = dir.path().join("run.json");
    let created = create_in_new_run(&record, &app, &out, "app");
    let app_archive = archive_of(&created);
    // The same run, on another host (a copy of the record taken there), backs up too.
    let node2 = dir.path().join("node2.json");
    std::fs::copy(&record, &node2).unwrap();
    let on_node2 = backup_in(
        &node2,
        &[
            "create",
            "--path",
            s(&other),
            "--out",
            s(&out),
            "--name",
            "node2",
            "--host-id",
            "node2",
        ],
    );
    on_node2.succeeds();
    std::fs::write(app.join("state"), "app: broken by v2\n").unwrap();
    // Whoever can write the record adds a step of this run and host naming the other archive.
    append_step(
        &record,
        forged_step(&record, &serde_json::json!({"archive": s(&other_archive)})),
    );
    fail_the_run(&record);
    let restored = backup_in(&record, &["restore", "--in-place"]);
    restored.succeeds();
    assert_eq!(restored.last_step().result["archive"], s(&app_archive));
    assert_eq!(
        read(&app.join("state")),
        "app: backed up\n",
        "this app is restored"
    );
    assert_eq!(
        read(&other.join("state")),
        "other: today\n",
        "the other is not touched"
    );

    // Forged in full: a create step of this run and host with the other backup's own result.
    std::fs::write(app.join("state"), "app: written after\n").unwrap();
    let refused = |record: &Path, why: &str| {
        let outcome = backup_in(record, &["restore", "--in-place"]);
        outcome.assert_code(2);
        let step = outcome.last_step();
        assert_eq!(step.error_kind(), "bad_record", "{}", outcome.stderr);
        let message = &step.error.as_ref().unwrap().message;
        assert!(message.contains(why), "{message}");
        assert_eq!(read(&app.join("state")), "app: written after\n");
        assert_eq!(read(&other.join("state")), "other: today\n");
    };
    let full = dir.path().join("full.json");
    std::fs::copy(&record, &full).unwrap();
    append_step(&full, forged_step(&full, &other_created.last_step().result));
    refused(&full, "was made by run");

    // A backup of this very run, but made on another host, named by a step claiming this one.
    append_step(&node2, forged_step(&node2, &on_node2.last_step().result));
    fail_the_run(&node2);
    refused(&node2, "made on host \"node2\"");
}

#[test]
fn an_archive_replaced_under_the_name_of_this_runs_backup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("state"), "backed up\n").unwrap();
    let out = dir.path().join("out");
    let record = dir.path().join("run.json");
    let created = create_in_new_run(&record, &app, &out, "b");
    let archive = archive_of(&created);
    // Another backup of the same run and host, through a copy of the record, put in its place.
    std::fs::write(app.join("state"), "some other moment\n").unwrap();
    let copy = dir.path().join("copy.json");
    std::fs::copy(&record, &copy).unwrap();
    let later = archive_of(&backup_in(
        &copy,
        &["create", "--path", s(&app), "--out", s(&out), "--name", "c"],
    ));
    std::fs::rename(&later, &archive).unwrap();
    std::fs::rename(out.join("c.manifest.json"), out.join("b.manifest.json")).unwrap();
    std::fs::rename(
        format!("{}.sha256", later.display()),
        format!("{}.sha256", archive.display()),
    )
    .unwrap();
    std::fs::write(app.join("state"), "written by v2\n").unwrap();
    fail_the_run(&record);
    let outcome = backup_in(&record, &["restore", "--in-place"]);
    outcome.assert_code(2);
    let step = outcome.last_step();
    assert_eq!(step.error_kind(), "bad_record", "{}", outcome.stderr);
    assert!(
        step.error
            .unwrap()
            .message
            .contains("not the backup this run made"),
        "{}",
        outcome.stderr
    );
    assert_eq!(read(&app.join("state")), "written by v2\n");
}

// ---- each check of verify and create has a test only it passes (issue 25, items 7, 8, 9, 14) ----

/// One change made to a manifest, as JSON.
type Tamper = fn(&mut serde_json::Value);

#[test]
fn a_sidecar_manifest_field_no_entry_hash_covers_is_caught_by_the_comparison_with_the_inner_one() {
    // Each tampering keeps every entry's size and digest: only the comparison of the sidecar
    // with the manifest inside the archive can see it. The roots are where an in-place restore
    // writes; the app version is what --expect-app-version checks; a mode is what a restore sets.
    let tamperings: [(&str, Tamper); 3] = [
        ("app_version", |m| m["app_version"] = "9.9.9".into()),
        ("roots", |m| {
            m["roots"][0]["path"] = "/etc".into();
        }),
        ("mode", |m| {
            let entry = m["entries"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|e| e["type"] == "file")
                .unwrap();
            entry["mode"] = 0o4777.into();
        }),
    ];
    for (what, tamper) in tamperings {
        let (dir, archive) = small_backup();
        let sidecar = archive.with_file_name("b.manifest.json");
        let mut manifest: serde_json::Value = serde_json::from_str(&read(&sidecar)).unwrap();
        tamper(&mut manifest);
        std::fs::write(&sidecar, serde_json::to_vec(&manifest).unwrap()).unwrap();
        assert_corrupt(
            &backup(&["verify", s(&archive)]),
            "manifest sidecar differs from the manifest inside",
        );
        let to = dir.path().join("r");
        assert_corrupt(
            &backup(&["restore", s(&archive), "--to", s(&to)]),
            "differs",
        );
        assert!(!to.exists(), "{what}: nothing restored");
    }
}

#[test]
fn a_checksum_sidecar_with_another_digest_is_caught_though_the_archive_is_intact() {
    let (dir, archive) = small_backup();
    let sum = PathBuf::from(format!("{}.sha256", archive.display()));
    let real = read(&sum);
    let digest = real.split_whitespace().next().unwrap();
    let last = digest.chars().last().unwrap();
    let other = format!(
        "{}{}",
        &digest[..digest.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    std::fs::write(&sum, real.replacen(digest, &other, 1)).unwrap();
    assert_corrupt(
        &backup(&["verify", s(&archive)]),
        &format!("its sidecar says {other}"),
    );
    let to = dir.path().join("r");
    assert_corrupt(
        &backup(&["restore", s(&archive), "--to", s(&to)]),
        "its sidecar says",
    );
    assert!(!to.exists());
}

#[test]
fn a_sqlite_database_with_a_corrupt_b_tree_page_is_refused_and_no_backup_is_kept() {
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
    assert!(
        std::fs::metadata(&db).unwrap().len() > 40 * 4096,
        "many pages"
    );
    // The cell pointers of a leaf page of the table, overwritten: SQLite still opens the file
    // and copies every page, and only integrity_check sees the damage.
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[4 * 4096 + 8..4 * 4096 + 24].fill(0xff);
    std::fs::write(&db, &bytes).unwrap();
    let out = dir.path().join("out");
    let url = format!("sqlite://{}", db.display());
    let outcome = backup(&["create", "--db", &url, "--out", s(&out), "--name", "b"]);
    assert_corrupt(&outcome, "integrity_check");
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".ugw-backup.lock")
        .collect();
    assert!(
        left.is_empty(),
        "no archive, sidecar or temp file kept: {left:?}"
    );
}

/// `ugw-backup create` under strace, killed (SIGKILL, injected by strace) on entry to its
/// `kill_at`-th rename, or never when there are fewer; returns the strace log of the renames.
fn create_killed_at_rename(src: &Path, out: &Path, kill_at: usize, log: &Path) -> Outcome {
    let renames = "rename,renameat,renameat2";
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-f", "-qq", "-o", s(log), "-e"])
        .arg(format!("trace={renames}"))
        .arg("-e")
        .arg(format!("inject={renames}:signal=KILL:when={kill_at}"))
        .arg(kit::bin("ugw-backup"))
        .args(["create", "--path", s(src), "--out", s(out), "--name", "b"])
        .args(["--output", "none"])
        .env_remove("UGW_HOST_ID")
        .stdin(std::process::Stdio::null());
    run(cmd)
}

#[test]
fn a_sidecar_never_names_an_archive_that_is_not_complete_under_its_final_name() {
    if !kit::require("strace") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    sample_tree(&src);
    let log = dir.path().join("strace.log");
    // A kill before each rename in turn: whatever is left, a sidecar under its final name
    // comes after the archive under its final name, whole.
    let mut kill_at = 1;
    let finished = loop {
        let out = dir.path().join(format!("out{kill_at}"));
        let outcome = create_killed_at_rename(&src, &out, kill_at, &log);
        let archive = out.join("b.tar.gz");
        let sidecars = [out.join("b.manifest.json"), out.join("b.tar.gz.sha256")];
        for sidecar in &sidecars {
            assert!(
                !sidecar.exists() || archive.exists(),
                "killed at rename {kill_at}: {} names an archive that is not there",
                sidecar.display()
            );
        }
        if sidecars.iter().all(|p| p.exists()) {
            backup(&["verify", s(&archive)]).succeeds();
        }
        if outcome.code == 0 {
            break out;
        }
        assert!(
            kill_at < 10,
            "still killed at rename {kill_at}: {}",
            outcome.stderr
        );
        kill_at += 1;
    };
    assert!(
        kill_at > 3,
        "the archive and both sidecars were each killed before"
    );
    // And in the log of the run that finished: the archive is renamed before either sidecar.
    let text = read(&log);
    let renamed_to = |path: &Path| {
        let quoted = format!(", \"{}\"", path.display());
        text.lines()
            .position(|line| line.contains("rename") && line.contains(&quoted))
            .unwrap_or_else(|| panic!("no rename to {}:\n{text}", path.display()))
    };
    let archive = renamed_to(&finished.join("b.tar.gz"));
    let manifest = renamed_to(&finished.join("b.manifest.json"));
    let sum = renamed_to(&finished.join("b.tar.gz.sha256"));
    assert!(archive < manifest && archive < sum, "{text}");
}
