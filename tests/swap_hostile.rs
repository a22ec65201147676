//! ugw-swap on hostile or unusual release content (issue 20): `--link` never writes through a
//! symbolic link the release holds, and what a copy keeps, cleans and reports.

mod kit;

use kit::{current, s, swap};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// A release folder `staging/<name>` under `dir` whose `bin/app` holds `content`.
fn artifact(dir: &Path, name: &str, content: &str) -> PathBuf {
    let folder = dir.join("staging").join(name);
    std::fs::create_dir_all(folder.join("bin")).unwrap();
    std::fs::write(folder.join("bin/app"), content).unwrap();
    folder
}

/// Item 4: a release holding `config -> /outside` or `data -> /outside2` never makes
/// `--link` replace or delete what those point to.
#[test]
fn a_link_target_through_a_symlink_in_the_release_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    std::fs::create_dir_all(root.join("shared/cache")).unwrap();
    std::fs::write(root.join("shared/db.yml"), "db: prod").unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("db.yml"), "not yours").unwrap();
    let outside2 = dir.path().join("outside2");
    std::fs::create_dir_all(outside2.join("cache")).unwrap();
    std::fs::write(outside2.join("cache/keep"), "keep me").unwrap();
    let from = artifact(dir.path(), "v1", "one");
    symlink(&outside, from.join("config")).unwrap();
    symlink(&outside2, from.join("data")).unwrap();

    for link in ["shared/db.yml:config/db.yml", "shared/cache:data/cache"] {
        let out = swap(&[
            "--root",
            s(&root),
            "--from",
            s(&from),
            "--version",
            "v1",
            "--link",
            link,
        ]);
        let step = out.assert_code(1).last_step();
        assert_eq!(step.error_kind(), "unsafe_input", "{link}: {}", out.stderr);
        assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
        assert!(!root.join("current").exists(), "nothing was switched");
    }
    let kept = std::fs::symlink_metadata(outside.join("db.yml")).unwrap();
    assert!(kept.is_file(), "/outside/db.yml is still the file it was");
    assert_eq!(
        std::fs::read_to_string(outside.join("db.yml")).unwrap(),
        "not yours"
    );
    assert_eq!(
        std::fs::read_to_string(outside2.join("cache/keep")).unwrap(),
        "keep me"
    );

    // Without the planted links, a nested TARGET gets its folders and its link.
    std::fs::remove_file(from.join("config")).unwrap();
    std::fs::remove_file(from.join("data")).unwrap();
    std::fs::create_dir_all(from.join("data/cache")).unwrap();
    std::fs::write(from.join("data/cache/old"), "replaced").unwrap();
    swap(&[
        "--root",
        s(&root),
        "--from",
        s(&from),
        "--version",
        "v1",
        "--link",
        "shared/db.yml:config/db.yml",
        "--link",
        "shared/cache:data/cache",
    ])
    .assert_code(0);
    assert_eq!(current(&root), "releases/v1");
    assert_eq!(
        std::fs::read_to_string(root.join("current/config/db.yml")).unwrap(),
        "db: prod"
    );
    assert!(
        std::fs::symlink_metadata(root.join("current/data/cache"))
            .unwrap()
            .is_symlink()
    );
    assert!(
        from.join("data/cache/old").exists(),
        "the staged copy is untouched"
    );
    let _ = std::fs::Permissions::from_mode(0o755);
}

/// Item 14: a restart that ignores SIGTERM is killed by the deadline; the grace between TERM
/// and KILL comes out of it, and is not added to it.
#[test]
fn a_restart_that_ignores_term_ends_by_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let v1 = artifact(dir.path(), "v1", "one");
    let started = std::time::Instant::now();
    let out = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v1),
        "--version",
        "v1",
        "--restart",
        "trap '' TERM; sleep 60",
        "--timeout",
        "2s",
    ]);
    let took = started.elapsed();
    out.assert_code(1);
    assert!(took < std::time::Duration::from_millis(3500), "{took:?}");
    let v2 = artifact(dir.path(), "v2", "two");
    let started = std::time::Instant::now();
    let out = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v2),
        "--version",
        "v2",
        "--restart",
        "trap '' TERM; sleep 60",
        "--restart-timeout",
        "1s",
    ]);
    let took = started.elapsed();
    out.assert_code(1);
    // Two restarts (after the switch, and after switching back), a second each.
    assert!(took < std::time::Duration::from_millis(4000), "{took:?}");
}

/// Item 15: SIGTERM during `--restart` leaves the new release live and exits 143; the
/// interrupted step records what was switched, and `--rollback` on that record takes it back.
#[test]
fn a_swap_interrupted_during_its_restart_is_rolled_back_from_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let (v1, v2) = (
        artifact(dir.path(), "v1", "one"),
        artifact(dir.path(), "v2", "two"),
    );
    swap(&["--root", s(&root), "--from", s(&v1), "--version", "v1"]).assert_code(0);
    let started = dir.path().join("restart-started");
    let restart = format!("touch {}; sleep 30", s(&started));
    let mut cmd = kit::tool("ugw-swap");
    cmd.args([
        "--root",
        s(&root),
        "--from",
        s(&v2),
        "--version",
        "v2",
        "--restart",
        &restart,
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null());
    let child = cmd.spawn().unwrap();
    assert!(kit::eventually(std::time::Duration::from_secs(20), || {
        started.exists()
    }));
    kit::signal(child.id().cast_signed(), libc::SIGTERM);
    let output = kit::wait_bounded(child, std::time::Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(143));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(current(&root), "releases/v2", "the new release was live");
    let step = kit::parse_record(&stdout).steps.pop().unwrap();
    assert_eq!(step.status, "interrupted");
    assert_eq!(step.result["current"], "v2", "{:?}", step.result);
    assert_eq!(step.result["previous"], "v1");

    let mut back = kit::tool("ugw-swap");
    back.args(["--root", s(&root), "--rollback"]);
    let out = kit::with_stdin(back, &stdout);
    let step = out.assert_code(0).last_step();
    assert!(step.changed, "{}", out.stderr);
    assert_eq!(current(&root), "releases/v1");
    assert!(root.join("releases/v2/.ugw-failed").exists());
}
