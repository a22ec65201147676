//! Symbolic links and strangers' folders planted in `--root` (issue 20 item 1): `releases/`
//! and every release ugw-swap uses must be real folders of the invoking user or root, a prune
//! removes only releases ugw staged, and says on stderr which (item 1); a re-deploy clears a
//! failed mark and never drops a --link silently (item 17).

use crate::kit;

use kit::{current, s, swap};
use std::path::{Path, PathBuf};

fn artifact(dir: &Path, name: &str) -> PathBuf {
    let folder = dir.join("staging").join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("app.txt"), name).unwrap();
    folder
}

#[test]
fn a_releases_folder_that_is_a_planted_symlink_is_refused_and_nothing_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    std::fs::create_dir_all(&root).unwrap();
    let data = dir.path().join("data");
    for n in 0..3 {
        std::fs::create_dir_all(data.join(format!("customer{n}"))).unwrap();
        std::fs::write(data.join(format!("customer{n}/rows")), "precious").unwrap();
    }
    let link = root.join("releases");
    std::os::unix::fs::symlink(&data, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    let v1 = artifact(dir.path(), "v1");
    let out = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v1),
        "--release",
        "v1",
        "--keep",
        "2",
    ]);
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "unsafe_input");
    assert!(
        step.error
            .as_ref()
            .unwrap()
            .message
            .contains("symbolic link"),
        "{:?}",
        step.error
    );
    for n in 0..3 {
        assert_eq!(
            std::fs::read_to_string(data.join(format!("customer{n}/rows"))).unwrap(),
            "precious"
        );
    }
    assert!(!data.join("v1").exists(), "nothing staged through the link");
    assert!(!root.join("current").exists());
}

#[test]
fn a_release_that_is_a_planted_symlink_with_a_copied_marker_never_goes_live() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let v1 = artifact(dir.path(), "v1");
    swap(&["--root", s(&root), "--from", s(&v1), "--release", "v1"]).succeeds();
    // The attacker's folder, with the marker a real v2 would carry (its digest is public).
    let v2 = artifact(dir.path(), "v2");
    let digest = ugw_shared::digest::sha256_path(&v2, &[".ugw-release", ".ugw-failed"]).unwrap();
    let evil = dir.path().join("evil");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::write(evil.join("app.txt"), "evil").unwrap();
    std::fs::write(
        evil.join(".ugw-release"),
        serde_json::json!({"version": "v2", "sha256": digest, "staged_ns": 1}).to_string(),
    )
    .unwrap();
    std::os::unix::fs::symlink(&evil, root.join("releases/v2")).unwrap();
    for force in [false, true] {
        let mut args = vec!["--root", s(&root), "--from", s(&v2), "--release", "v2"];
        if force {
            args.push("--force");
        }
        let out = swap(&args);
        assert_eq!(out.assert_code(1).last_step().error_kind(), "unsafe_input");
        assert_eq!(current(&root), "releases/v1", "force {force}");
        assert_eq!(
            std::fs::read_to_string(evil.join("app.txt")).unwrap(),
            "evil"
        );
    }
    // Status lists it, but not as a release ugw staged.
    let status = swap(&["--root", s(&root), "status"]);
    let releases = status.succeeds().last_step().result["releases"].clone();
    assert_eq!(releases.as_array().unwrap().len(), 1, "{releases}");
}

#[test]
fn a_prune_removes_only_releases_ugw_staged_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    // Older than every release: a prune by age would take it first.
    std::fs::create_dir_all(root.join("releases/notes")).unwrap();
    std::fs::write(root.join("releases/notes/todo"), "keep me").unwrap();
    // v1 is handed to another user after it was staged: no longer a folder of ours.
    let mut last = None;
    for name in ["v1", "v2", "v3", "v4"] {
        let from = artifact(dir.path(), name);
        let out = swap(&[
            "--root",
            s(&root),
            "--from",
            s(&from),
            "--release",
            name,
            "--keep",
            "2",
        ]);
        out.succeeds();
        last = Some(out);
        if name == "v1" {
            std::os::unix::fs::chown(root.join("releases/v1"), Some(65534), None).unwrap();
        }
    }
    assert_eq!(
        std::fs::read_to_string(root.join("releases/notes/todo")).unwrap(),
        "keep me"
    );
    assert!(
        root.join("releases/v1").exists(),
        "another user's folder stays"
    );
    assert!(
        !root.join("releases/v2").exists(),
        "v2 was staged by ugw: pruned"
    );
    last.expect("four swaps ran")
        .stderr_has("pruned 1 old release(s) beyond --keep 2: releases/v2");
    assert_eq!(current(&root), "releases/v4");
}

/// Issue 20 item 17: a release marked failed and later re-deployed successfully is live and
/// healthy: its mark goes, and a later rollback from v3 goes back to it, not past it.
#[test]
fn a_successful_redeploy_clears_the_failed_mark() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let (v1, v2, v3) = (
        artifact(dir.path(), "v1"),
        artifact(dir.path(), "v2"),
        artifact(dir.path(), "v3"),
    );
    let deploy = |from: &Path, version: &str| {
        swap(&["--root", s(&root), "--from", s(from), "--release", version]).succeeds();
    };
    deploy(&v1, "v1");
    deploy(&v2, "v2");
    swap(&["--root", s(&root), "--rollback"]).succeeds();
    assert!(root.join("releases/v2/.ugw-failed").exists());
    // A release marked failed is swapped in again only with --force (issue 21 item 15).
    let again = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v2),
        "--release",
        "v2",
        "--force",
    ]);
    assert!(again.succeeds().last_step().changed);
    assert!(
        !root.join("releases/v2/.ugw-failed").exists(),
        "{}",
        again.stderr
    );
    again.stderr_has("clears the mark");
    deploy(&v3, "v3");
    swap(&["--root", s(&root), "--rollback"]).succeeds();
    assert_eq!(current(&root), "releases/v2", "v2 was live and healthy");
}

/// A `--link` given when re-deploying a release staged without it is refused, not silently
/// left out; the same link it was staged with is fine.
#[test]
fn a_link_a_staged_release_lacks_is_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    std::fs::create_dir_all(root.join("shared")).unwrap();
    std::fs::write(root.join("shared/.env"), "A=1").unwrap();
    std::fs::write(root.join("shared/db.yml"), "db: x").unwrap();
    let (v1, v2) = (artifact(dir.path(), "v1"), artifact(dir.path(), "v2"));
    let with = |from: &Path, version: &str, link: &str| {
        swap(&[
            "--root",
            s(&root),
            "--from",
            s(from),
            "--release",
            version,
            "--link",
            link,
        ])
    };
    with(&v1, "v1", "shared/.env:.env").succeeds();
    with(&v2, "v2", "shared/.env:.env").succeeds();
    let refused = with(&v1, "v1", "shared/db.yml:db.yml");
    let step = refused.assert_code(2).last_step();
    assert!(
        step.error.as_ref().unwrap().message.contains("--force"),
        "{:?}",
        step.error
    );
    assert_eq!(current(&root), "releases/v2");
    with(&v1, "v1", "shared/.env:.env").succeeds();
    assert_eq!(current(&root), "releases/v1");
    assert_eq!(
        std::fs::read_to_string(root.join("current/.env")).unwrap(),
        "A=1"
    );
}
