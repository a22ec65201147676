//! `ugw-swap --rollback` on the record as an adversary or an unlucky operator gives it (issue
//! 20 items 2 and 16): the `previous` a swap step names is checked as `--release` is (a forged
//! `../../evil` or `/etc` is refused, nothing switched), only this run's swap of this root on
//! this host is followed, and `--root`/`--target` find that swap however they are spelled.

use crate::kit;

use kit::{Outcome, current, s, swap, tool, with_stdin};
use std::path::{Path, PathBuf};

/// `dir/app` with releases v1 and v2 staged by ugw-swap, v2 current; the stdout of v2's swap.
fn root_with_two(dir: &Path) -> (PathBuf, String) {
    let root = dir.join("app");
    let mut last = String::new();
    for (name, content) in [("v1", "one"), ("v2", "two")] {
        let from = dir.join("staging").join(name);
        std::fs::create_dir_all(&from).unwrap();
        std::fs::write(from.join("app.txt"), content).unwrap();
        let out = swap(&["--root", s(&root), "--from", s(&from), "--release", name]);
        last.clone_from(&out.succeeds().stdout);
    }
    assert_eq!(current(&root), "releases/v2");
    (root, last)
}

/// The record in `stdout` with a failed health check appended (the run failed after its
/// swap), and `edit` applied to its swap step first.
fn failed_after(stdout: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut record: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    record["ok"] = false.into();
    let run = record["run"].clone();
    let steps = record["steps"].as_array_mut().unwrap();
    edit(steps.last_mut().unwrap());
    steps.push(serde_json::json!({
        "tool": "ugw-wait-healthy", "tool_version": "0.1.0", "run": run,
        "host": ugw_shared::time::hostname(), "started": "2026-11-21T23:59:02.123Z",
        "elapsed_ms": 5, "status": "failed", "exit": 1, "changed": false, "dry_run": false,
        "error": {"kind": "timeout", "message": "not healthy"}}));
    record.to_string()
}

fn rollback(root_arg: &str, record: &str, cwd: &Path) -> Outcome {
    let mut cmd = tool("ugw-swap");
    cmd.args(["--root", root_arg, "--rollback"])
        .current_dir(cwd);
    with_stdin(cmd, record)
}

#[test]
fn a_forged_previous_release_is_refused_and_nothing_is_switched() {
    let dir = tempfile::tempdir().unwrap();
    let (root, stdout) = root_with_two(dir.path());
    // What a forged previous would reach: a folder outside releases/, and /etc.
    std::fs::create_dir_all(dir.path().join("evil")).unwrap();
    std::fs::write(dir.path().join("evil/app.txt"), "evil").unwrap();
    for forged in ["../../evil", "/etc", "..", ".hidden", "v1/../../evil"] {
        let record = failed_after(&stdout, |step| {
            step["result"]["previous"] = forged.into();
        });
        let out = rollback(s(&root), &record, dir.path());
        let step = out.assert_code(2).last_step();
        assert_eq!(step.error_kind(), "bad_record", "{forged}");
        assert!(
            step.error.as_ref().unwrap().message.contains(forged),
            "{forged}: {:?}",
            step.error
        );
        assert_eq!(current(&root), "releases/v2", "{forged}");
        assert!(!root.join("releases/v2/.ugw-failed").exists(), "{forged}");
    }
    // A later swap on that root still works: nothing was left half-done.
    let v3 = dir.path().join("staging/v3");
    std::fs::create_dir_all(&v3).unwrap();
    std::fs::write(v3.join("app.txt"), "three").unwrap();
    swap(&["--root", s(&root), "--from", s(&v3), "--release", "v3"]).succeeds();
}

/// A `previous` that names a symbolic link planted in releases/ is not followed either: the
/// rollback goes to the real release before.
#[test]
fn a_previous_that_is_a_planted_symlink_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (root, stdout) = root_with_two(dir.path());
    std::fs::create_dir_all(dir.path().join("evil")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("evil"), root.join("releases/planted")).unwrap();
    let record = failed_after(&stdout, |step| {
        step["result"]["previous"] = "planted".into();
    });
    let out = rollback(s(&root), &record, dir.path());
    assert!(out.succeeds().last_step().changed);
    assert_eq!(current(&root), "releases/v1");
}

/// A swap step of another host, or of another root, is not this run's switch of this root.
#[test]
fn a_swap_step_of_another_host_or_root_is_not_taken_back() {
    let dir = tempfile::tempdir().unwrap();
    let (root, stdout) = root_with_two(dir.path());
    let record = failed_after(&stdout, |step| step["host"] = "node-a".into());
    let out = rollback(s(&root), &record, dir.path());
    let step = out.succeeds().last_step();
    assert!(!step.changed);
    assert_eq!(
        current(&root),
        "releases/v2",
        "host A's swap is not undone here"
    );

    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let record = failed_after(&stdout, |step| {
        step["result"]["root"] = s(&other).into();
    });
    let out = rollback(s(&root), &record, dir.path());
    assert!(!out.succeeds().last_step().changed);
    assert_eq!(current(&root), "releases/v2");
}

/// One way to write the root: the `--root` argument, and the folder to run the tool in.
type Spelling = fn(&Path) -> (String, PathBuf);

/// `--root ROOT/`, `ROOT/./`, a relative path or a path through a symlink all name the root
/// the run swapped: the rollback takes that swap back.
#[test]
fn a_rollback_finds_the_swap_however_the_root_is_spelled() {
    let spellings: [Spelling; 4] = [
        |root| (format!("{}/", s(root)), PathBuf::from("/")),
        |root| (format!("{}/./", s(root)), PathBuf::from("/")),
        |root| ("app".to_string(), root.parent().unwrap().to_path_buf()),
        |root| {
            let link = root.parent().unwrap().join("via-link");
            std::os::unix::fs::symlink(root, &link).unwrap();
            (s(&link).to_string(), PathBuf::from("/"))
        },
    ];
    for spell in spellings {
        let dir = tempfile::tempdir().unwrap();
        let (root, stdout) = root_with_two(dir.path());
        let (arg, cwd) = spell(&root);
        let out = rollback(&arg, &failed_after(&stdout, |_| {}), &cwd);
        let step = out.succeeds().last_step();
        assert!(step.changed, "--root {arg}: {}", out.stderr);
        assert_eq!(current(&root), "releases/v1", "--root {arg}");
        assert!(
            root.join("releases/v2/.ugw-failed").exists(),
            "--root {arg}"
        );
    }
}

/// Binary mode the same: `--target DIR/./app` or a relative path finds the run's swap of it.
#[test]
fn a_binary_rollback_finds_the_swap_however_the_target_is_spelled() {
    for relative in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("app");
        std::fs::write(&target, "#!/bin/sh\necho old\n").unwrap();
        let new = dir.path().join("app-new");
        std::fs::write(&new, "#!/bin/sh\necho new\n").unwrap();
        let out = swap(&["--target", s(&target), "--from", s(&new)]);
        let record = failed_after(&out.succeeds().stdout, |_| {});
        let (arg, cwd) = if relative {
            ("app".to_string(), dir.path().to_path_buf())
        } else {
            (format!("{}/./app", s(dir.path())), PathBuf::from("/"))
        };
        let mut cmd = tool("ugw-swap");
        cmd.args(["--target", &arg, "--rollback"]).current_dir(&cwd);
        let back = with_stdin(cmd, &record);
        assert!(back.succeeds().last_step().changed, "--target {arg}");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "#!/bin/sh\necho old\n",
            "--target {arg}"
        );
    }
}
