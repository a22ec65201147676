//! Issue 21 item 16, ugw-swap's half: the folder a `ugw-fetch --extract` step of this run
//! staged is moved (renamed) into `releases/`, not copied, when staging and releases are on
//! one file system, so a release is on disk once; across file systems it is copied as before.
//! What is moved is what the fetch step verified (a folder changed since is refused and left
//! where it was), and once the staged folder is gone a rerun, `--rollback` and `status` still
//! work from the releases alone.

use crate::kit;

use kit::{Outcome, current, run, s, tool};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `app-VERSION.tar.gz` holding `bin/app` (saying `VERSION`) and `conf/app.toml`, in `dir`.
fn archive(dir: &Path, version: &str) -> PathBuf {
    let tree = dir.join(format!("build/{version}"));
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::create_dir_all(tree.join("conf")).unwrap();
    std::fs::write(tree.join("bin/app"), format!("#!/bin/sh\necho {version}\n")).unwrap();
    std::fs::write(tree.join("conf/app.toml"), "port = 8080\n").unwrap();
    let archive = dir.join(format!("app-{version}.tar.gz"));
    let made = std::process::Command::new("tar")
        .args(["czf", s(&archive), "-C", s(&tree), "bin", "conf"])
        .status()
        .unwrap();
    assert!(made.success());
    archive
}

/// The real `ugw-fetch --extract` of `archive` into `staging` (as `app-VERSION`), starting
/// the run's record at `record`: the staged folder.
fn fetch(archive: &Path, staging: &Path, record: &Path) -> PathBuf {
    let digest = ugw_shared::digest::sha256_file(archive).unwrap();
    let mut cmd = tool("ugw-fetch");
    cmd.args([
        "--url",
        &format!("file://{}", s(archive)),
        "--sha256",
        &digest,
        "--dest",
        s(staging),
        "--extract",
        "--record",
        s(record),
        "--new",
    ]);
    let step = run(cmd).succeeds().last_step();
    PathBuf::from(step.result["path"].as_str().unwrap())
}

fn swap_with_record(root: &Path, record: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = tool("ugw-swap");
    cmd.args(["--root", s(root), "--record", s(record)])
        .args(extra);
    run(cmd)
}

/// The inode of every file under `dir`, by its path inside.
fn inodes(dir: &Path) -> Vec<(String, u64)> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        let meta = std::fs::symlink_metadata(&entry).unwrap();
        if meta.is_file() && !entry.ends_with(".ugw-release") {
            let inside = entry.strip_prefix(dir).unwrap().display().to_string();
            found.push((inside, meta.ino()));
        }
    }
    found.sort();
    found
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(walk(&path));
        }
        all.push(path);
    }
    all
}

#[test]
fn a_staged_folder_on_the_same_file_system_is_moved_into_releases_not_copied() {
    if !kit::require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (root, staging, record) = (
        dir.path().join("app"),
        dir.path().join("staging"),
        dir.path().join("run.json"),
    );
    let staged = fetch(&archive(dir.path(), "v1.0.0"), &staging, &record);
    let before = inodes(&staged);
    assert!(before.iter().any(|(p, _)| p == "bin/app"), "{before:?}");

    let out = swap_with_record(&root, &record, &[]);
    out.succeeds().stderr_has("moved");
    assert_eq!(current(&root), "releases/v1.0.0");
    let release = root.join("releases/v1.0.0");
    // The same inodes: renamed, so on disk once, and the staged folder is gone.
    assert_eq!(inodes(&release), before);
    assert!(!staged.exists());
    assert_eq!(kit::fetched_names(&staging), Vec::<String>::new());

    // The fetch step's path is gone: a rerun of the swap on this record finds the release it
    // moved, and there is nothing to do.
    let again = swap_with_record(&root, &record, &[]);
    again
        .succeeds()
        .stderr_has("already current; nothing to do");
    assert!(!again.last_step().changed);

    // status and --rollback work from the releases alone.
    let v2 = fetch(&archive(dir.path(), "v2.0.0"), &staging, &record);
    swap_with_record(&root, &record, &[]).succeeds();
    assert!(!v2.exists());
    let mut status = tool("ugw-swap");
    status.args(["status", "--root", s(&root)]);
    let listed = run(status).succeeds().last_step();
    assert_eq!(listed.result["current"], "v2.0.0");
    assert_eq!(listed.result["previous"], "v1.0.0");
    let mut back = tool("ugw-swap");
    back.args(["--root", s(&root), "--rollback"]);
    run(back).succeeds();
    assert_eq!(current(&root), "releases/v1.0.0");
    assert_eq!(
        std::fs::read_to_string(root.join("current/bin/app")).unwrap(),
        "#!/bin/sh\necho v1.0.0\n"
    );
}

#[test]
fn a_staged_folder_on_another_file_system_is_copied_and_stays_staged() {
    if !kit::require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    let Some(_mounted) = kit::mounts::Mounted::tmpfs(&staging, "size=8m") else {
        return;
    };
    let (root, record) = (dir.path().join("app"), dir.path().join("run.json"));
    let staged = fetch(&archive(dir.path(), "v1.0.0"), &staging, &record);
    let before = inodes(&staged);

    let out = swap_with_record(&root, &record, &[]);
    out.succeeds().stderr_lacks("moved");
    assert_eq!(current(&root), "releases/v1.0.0");
    assert!(staged.join("bin/app").exists(), "the staged folder stays");
    assert_eq!(inodes(&staged), before);
    assert_eq!(
        std::fs::read_to_string(root.join("current/bin/app")).unwrap(),
        "#!/bin/sh\necho v1.0.0\n"
    );
    assert_ne!(
        std::fs::metadata(root.join("current/bin/app"))
            .unwrap()
            .dev(),
        std::fs::metadata(staged.join("bin/app")).unwrap().dev()
    );
}

#[test]
fn a_staged_folder_changed_after_the_fetch_is_refused_and_left_where_it_was() {
    if !kit::require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (root, staging, record) = (
        dir.path().join("app"),
        dir.path().join("staging"),
        dir.path().join("run.json"),
    );
    let staged = fetch(&archive(dir.path(), "v1.0.0"), &staging, &record);
    std::fs::write(staged.join("bin/app"), "#!/bin/sh\necho evil\n").unwrap();

    let out = swap_with_record(&root, &record, &[]);
    out.fails_with(kit::Kind::ChecksumMismatch);
    assert!(!root.join("current").exists());
    assert!(
        !root.join("releases/v1.0.0").exists(),
        "nothing under the release's name"
    );
    assert_eq!(
        std::fs::read_to_string(staged.join("bin/app")).unwrap(),
        "#!/bin/sh\necho evil\n",
        "left where the fetch staged it"
    );
}

/// A `--from` given by hand (not what a fetch step of this run staged) is the operator's own
/// folder: it is copied, never taken away.
#[test]
fn a_folder_given_by_hand_is_copied_not_moved() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let from = kit::staged_release(dir.path(), "v1", "one");
    let out = kit::swap(&["--root", s(&root), "--from", s(&from), "--release", "v1"]);
    out.succeeds();
    assert!(from.join("bin/app").exists());
    assert_ne!(
        std::fs::metadata(from.join("bin/app")).unwrap().ino(),
        std::fs::metadata(root.join("releases/v1/bin/app"))
            .unwrap()
            .ino()
    );
}

/// A `--link` whose shared path does not exist is refused before the staged folder is moved
/// out of staging: the fetch step's folder stays where it was (a rerun after the operator
/// makes the shared file finds it), and nothing is under the release's name.
#[test]
fn a_missing_link_target_is_refused_before_the_staged_folder_is_moved() {
    if !kit::require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (root, staging, record) = (
        dir.path().join("app"),
        dir.path().join("staging"),
        dir.path().join("run.json"),
    );
    let staged = fetch(&archive(dir.path(), "v1.0.0"), &staging, &record);
    let before = inodes(&staged);
    // The record as the fetch left it, for the rerun (the failed swap ends this one's run).
    let retry = dir.path().join("retry.json");
    std::fs::copy(&record, &retry).unwrap();

    let out = swap_with_record(&root, &record, &["--link", "shared/app.env:.env"]);
    out.fails_with(kit::Kind::NotFound)
        .stderr_has("--link")
        .stderr_lacks("moved");
    assert_eq!(
        inodes(&staged),
        before,
        "the staged folder is left untouched"
    );
    assert!(!root.join("current").exists());
    assert!(!root.join("releases/v1.0.0").exists());

    // Once the shared file is there, the same swap moves the folder it left in place.
    std::fs::create_dir_all(root.join("shared")).unwrap();
    std::fs::write(root.join("shared/app.env"), "PORT=8080\n").unwrap();
    swap_with_record(&root, &retry, &["--link", "shared/app.env:.env"])
        .succeeds()
        .stderr_has("moved");
    assert_eq!(
        std::fs::read_to_string(root.join("current/.env")).unwrap(),
        "PORT=8080\n"
    );
}
