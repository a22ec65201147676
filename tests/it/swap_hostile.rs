//! ugw-swap on hostile or unusual release content (issue 20): `--link` never writes through a
//! symbolic link the release holds, and what a copy keeps, cleans and reports.

use crate::kit;

use kit::mounts::Mounted;
use kit::{current, s, staged_release as artifact, swap};
use std::os::unix::fs::{PermissionsExt, symlink};

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
            "--release",
            "v1",
            "--link",
            link,
        ]);
        let step = out.assert_code(1).last_step();
        assert_eq!(step.error_kind(), "unsafe_input", "{link}: {}", out.stderr);
        out.stderr_has("symbolic link");
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
        "--release",
        "v1",
        "--link",
        "shared/db.yml:config/db.yml",
        "--link",
        "shared/cache:data/cache",
    ])
    .succeeds();
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
        "--release",
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
        "--release",
        "v2",
        "--restart",
        "trap '' TERM; sleep 60",
        "--restart-timeout",
        "1s",
    ]);
    let took = started.elapsed();
    out.assert_code(1);
    // Two restarts (after the switch, and after switching back), a second each.
    assert!(took < std::time::Duration::from_secs(4), "{took:?}");
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
    swap(&["--root", s(&root), "--from", s(&v1), "--release", "v1"]).succeeds();
    let started = dir.path().join("restart-started");
    let restart = format!("touch {}; sleep 30", s(&started));
    let mut cmd = kit::tool("ugw-swap");
    cmd.args([
        "--root",
        s(&root),
        "--from",
        s(&v2),
        "--release",
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
    let step = out.succeeds().last_step();
    assert!(step.changed, "{}", out.stderr);
    assert_eq!(current(&root), "releases/v1");
    assert!(root.join("releases/v2/.ugw-failed").exists());
}

/// Item 18: a copied release keeps every folder's mode exactly.
#[test]
fn a_copied_release_keeps_folder_modes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let from = artifact(dir.path(), "v1", "one");
    for (folder, mode) in [
        ("secrets", 0o700),
        ("tmp", 0o1777),
        ("ro", 0o555),
        ("g", 0o2750),
    ] {
        std::fs::create_dir_all(from.join(folder)).unwrap();
        if folder == "secrets" {
            std::fs::write(from.join("secrets/key"), "k").unwrap();
        }
        std::fs::set_permissions(from.join(folder), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    swap(&["--root", s(&root), "--from", s(&from), "--release", "v1"]).succeeds();
    for (folder, mode) in [
        ("secrets", 0o700),
        ("tmp", 0o1777),
        ("ro", 0o555),
        ("g", 0o2750),
    ] {
        let got = std::fs::metadata(root.join("current").join(folder))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(got & 0o7777, mode, "{folder}: {:o}", got & 0o7777);
    }
}

/// Item 20: a killed run's copies in releases/ are removed by the next swap; a look-alike or
/// another user's folder is not.
#[test]
fn a_killed_swaps_staging_copies_are_cleaned_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let v1 = artifact(dir.path(), "v1", "one");
    swap(&["--root", s(&root), "--from", s(&v1), "--release", "v1"]).succeeds();
    let releases = root.join("releases");
    for left in [
        ".v2.1765100000123456789.staging",
        ".v0.1765100000000000001.pruning",
    ] {
        std::fs::create_dir_all(releases.join(left).join("bin")).unwrap();
    }
    std::fs::create_dir_all(releases.join(".v2.notanumber.staging")).unwrap();
    let foreign = releases.join(".v3.1765100000000000002.staging");
    std::fs::create_dir_all(&foreign).unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    let v2 = artifact(dir.path(), "v2", "two");
    let out = swap(&["--root", s(&root), "--from", s(&v2), "--release", "v2"]);
    out.succeeds();
    let mut left: Vec<String> = std::fs::read_dir(&releases)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            ".v2.notanumber.staging",
            ".v3.1765100000000000002.staging",
            "v1",
            "v2"
        ],
        "{}",
        out.stderr
    );
}

/// Item 22: a full disk is kind `no_space` in both modes, and nothing is switched.
#[test]
fn a_full_disk_is_no_space_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    let Some(_mount) = Mounted::tmpfs(&small, "size=1m") else {
        return;
    };
    let from = artifact(dir.path(), "big", "x");
    let noise: Vec<u8> = (0..4 << 20).map(|i: u32| (i * 7 + i / 251) as u8).collect();
    std::fs::write(from.join("bin/big"), &noise).unwrap();
    let root = small.join("app");
    let out = swap(&["--root", s(&root), "--from", s(&from), "--release", "v1"]);
    assert_eq!(
        out.assert_code(1).last_step().error_kind(),
        "no_space",
        "{}",
        out.stderr
    );
    assert!(!root.join("current").exists());

    let target = small.join("app-bin");
    std::fs::write(&target, "#!/bin/sh\n").unwrap();
    let out = swap(&["--target", s(&target), "--from", s(&from.join("bin/big"))]);
    assert_eq!(
        out.assert_code(1).last_step().error_kind(),
        "no_space",
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "#!/bin/sh\n");
}

/// Item 25: a symlinked --from is named as a link in both modes, not "neither a file nor a
/// folder" or "Too many levels of symbolic links".
#[test]
fn a_symlinked_from_is_named_as_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let from = artifact(dir.path(), "v1", "one");
    let link = dir.path().join("v1-link");
    symlink(&from, &link).unwrap();
    let root = dir.path().join("app");
    let out = swap(&["--root", s(&root), "--from", s(&link), "--release", "v1"]);
    let message = out.assert_code(2).last_step().error.unwrap().message;
    assert!(message.contains("is a symbolic link (to "), "{message}");
    let target = dir.path().join("bin-app");
    std::fs::write(&target, "old").unwrap();
    let file_link = dir.path().join("app-link");
    symlink(from.join("bin/app"), &file_link).unwrap();
    let out = swap(&["--target", s(&target), "--from", s(&file_link)]);
    let message = out.assert_code(2).last_step().error.unwrap().message;
    assert!(message.contains("is a symbolic link (to "), "{message}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
}
