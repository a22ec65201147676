//! ugw-swap through the real binary, on real folders: release-folder and binary mode, no
//! change on a rerun, rollback and its failed marker, pruning, restart reverts, the lock, and
//! a reader that never sees a missing release during 1,000 swaps.

use crate::kit;

use kit::{Step, current, s, swap, tool, with_stdin};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A release folder `name` under `dir`, holding `app.txt` = `content`.
fn artifact(dir: &Path, name: &str, content: &str) -> PathBuf {
    let folder = dir.join("staging").join(name);
    std::fs::create_dir_all(folder.join("bin")).unwrap();
    std::fs::write(folder.join("app.txt"), content).unwrap();
    std::fs::write(folder.join("bin/run"), "#!/bin/sh\n").unwrap();
    folder
}

/// A record with one earlier step of `tool`, as that tool would have written it.
fn record_with(tool: &str, status: &str, exit: i32, result: &serde_json::Value) -> String {
    serde_json::json!({"ugw": 1, "run": "r", "ok": status == "ok", "steps": [{
        "tool": tool, "tool_version": "0.1.0", "run": "r", "host": ugw_shared::time::hostname(),
        "started": "2026-11-21T23:59:01.123Z", "elapsed_ms": 5, "status": status, "exit": exit,
        "changed": status == "ok", "dry_run": false, "result": result}]})
    .to_string()
}

/// The record `stdout` holds, with a failed health check appended: the run failed after it.
fn failed_after(stdout: &str) -> String {
    let mut record: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    record["ok"] = false.into();
    let run = record["run"].clone();
    record["steps"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "tool": "ugw-wait-healthy", "tool_version": "0.1.0", "run": run, "host": ugw_shared::time::hostname(),
        "started": "2026-11-21T23:59:02.123Z", "elapsed_ms": 5, "status": "failed", "exit": 1,
        "changed": false, "dry_run": false,
        "error": {"kind": "timeout", "message": "not healthy"}}));
    record.to_string()
}

/// A rollback on a failed run takes back that run's own switch and nothing more: a run that
/// failed before its swap, or whose swap switched back by itself, keeps the release running,
/// and a second rollback of the same run does not go one release further.
#[test]
fn a_rollback_takes_back_only_what_the_failed_run_switched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    for (name, content) in [("v1", "one"), ("v2", "two")] {
        let from = artifact(dir.path(), name, content);
        swap(&["--root", s(&root), "--from", s(&from), "--release", name]).succeeds();
    }
    let rollback_on = |record: &str| {
        let mut cmd = tool("ugw-swap");
        cmd.args(["--root", s(&root), "--rollback"]);
        with_stdin(cmd, record)
    };

    // The download of v3 failed: this run never switched anything.
    let fetch_failed = record_with("ugw-fetch", "failed", 1, &serde_json::Value::Null);
    let out = rollback_on(&fetch_failed);
    let step = out.succeeds().last_step();
    assert!(!step.changed, "{step:?}");
    assert_eq!(field(&step, "current"), "v2");
    out.stderr_has("never switched");
    assert_eq!(current(&root), "releases/v2");
    assert!(!root.join("releases/v2/.ugw-failed").exists());

    // v3's restart failed and the swap switched back to v2 by itself.
    let v3 = artifact(dir.path(), "v3", "three");
    let reverted = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v3),
        "--release",
        "v3",
        "--restart",
        "false",
    ]);
    reverted.assert_code(1);
    assert_eq!(current(&root), "releases/v2");
    let out = rollback_on(&reverted.stdout);
    assert!(!out.succeeds().last_step().changed);
    assert_eq!(current(&root), "releases/v2");
    assert!(!root.join("releases/v2/.ugw-failed").exists());

    // v4 went live and then failed its health check: that switch is taken back, once.
    let v4 = artifact(dir.path(), "v4", "four");
    let live = swap(&["--root", s(&root), "--from", s(&v4), "--release", "v4"]);
    let failed = failed_after(&live.succeeds().stdout);
    let back = rollback_on(&failed);
    let step = back.succeeds().last_step();
    assert!(step.changed);
    assert_eq!(current(&root), "releases/v2");
    assert!(root.join("releases/v4/.ugw-failed").exists());
    let again = rollback_on(&back.stdout);
    let step = again.succeeds().last_step();
    assert!(!step.changed, "{step:?}");
    again.stderr_has("already rolled");
    assert_eq!(current(&root), "releases/v2", "not one release further");

    // By hand, without a failed run, a rollback goes to the release before.
    swap(&["--root", s(&root), "--rollback"]).succeeds();
    assert_eq!(current(&root), "releases/v1");
}

/// Binary mode keeps the same rule: a failed run that never replaced the binary keeps it.
#[test]
fn binary_mode_rollback_on_a_run_that_never_replaced_the_binary_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("app");
    std::fs::write(&target, "#!/bin/sh\necho old\n").unwrap();
    let new = dir.path().join("app-new");
    std::fs::write(&new, "#!/bin/sh\necho new\n").unwrap();
    swap(&["--target", s(&target), "--from", s(&new)]).succeeds();
    let fetch_failed = record_with("ugw-fetch", "failed", 1, &serde_json::Value::Null);
    let mut cmd = tool("ugw-swap");
    cmd.args(["--target", s(&target), "--rollback"]);
    let out = with_stdin(cmd, &fetch_failed);
    assert!(!out.succeeds().last_step().changed);
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "#!/bin/sh\necho new\n",
        "the binary running stays"
    );
}

fn field(step: &Step, name: &str) -> serde_json::Value {
    step.result[name].clone()
}

#[test]
fn swap_then_again_without_change_then_rollback_marks_the_release_left_failed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let (v1, v2) = (
        artifact(dir.path(), "v1", "one"),
        artifact(dir.path(), "v2", "two"),
    );

    let first = swap(&["--root", s(&root), "--from", s(&v1), "--release", "v1"]);
    let step = first.succeeds().last_step();
    assert!(step.changed);
    assert_eq!(field(&step, "current"), "v1");
    assert_eq!(field(&step, "previous"), serde_json::Value::Null);
    assert_eq!(current(&root), "releases/v1");
    assert_eq!(
        std::fs::read_to_string(root.join("current/app.txt")).unwrap(),
        "one"
    );

    let second = swap(&["--root", s(&root), "--from", s(&v2), "--release", "v2"]);
    let step = second.succeeds().last_step();
    assert!(step.changed);
    assert_eq!(
        (field(&step, "previous"), field(&step, "current")),
        ("v1".into(), "v2".into())
    );
    assert_eq!(
        std::fs::read_to_string(root.join("current/app.txt")).unwrap(),
        "two"
    );

    let again = swap(&["--root", s(&root), "--from", s(&v2), "--release", "v2"]);
    let step = again.succeeds().last_step();
    assert!(
        !step.changed,
        "swapping to the current release changes nothing"
    );
    assert_eq!(field(&step, "changed"), false);

    // The rollback runs on a failed record: it is the failure path. The run's own swap is in it
    // (the last one, which found v2 current already), then the health check that failed.
    let failed = failed_after(&again.stdout);
    let mut cmd = tool("ugw-swap");
    cmd.args(["--root", s(&root), "--rollback"]);
    let back = with_stdin(cmd, &failed);
    let step = back.succeeds().last_step();
    assert_eq!(step.status, "ok");
    assert_eq!(
        (field(&step, "previous"), field(&step, "current")),
        ("v2".into(), "v1".into())
    );
    assert_eq!(field(&step, "marked_failed"), "v2");
    assert_eq!(current(&root), "releases/v1");
    assert!(
        root.join("releases/v2/.ugw-failed").exists(),
        "kept for forensics, marked"
    );

    let status = swap(&["--root", s(&root), "status"]);
    let step = status.succeeds().last_step();
    assert_eq!(field(&step, "current"), "v1");
    let releases = field(&step, "releases");
    assert_eq!(releases[1]["version"], "v2");
    assert_eq!(releases[1]["failed"], true);
    assert!(!step.changed);

    // A later rollback skips the failed release: nothing is before v1.
    let none = swap(&["--root", s(&root), "--rollback"]);
    assert_eq!(none.assert_code(1).last_step().error_kind(), "not_found");
    assert_eq!(current(&root), "releases/v1");
}

#[test]
fn from_and_version_come_from_the_last_fetch_step_and_a_single_file_gets_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let file = dir.path().join("app-1.2.3");
    std::fs::write(&file, "binary").unwrap();
    // The digest ugw-fetch verified: the artifact is hashed again and must have it.
    let sha256 = ugw_shared::digest::sha256_file(&file).unwrap();
    let record = record_with(
        "ugw-fetch",
        "ok",
        0,
        &serde_json::json!({"url": "https://example.invalid/app-1.2.3", "path": s(&file),
            "sha256": sha256, "bytes": 6, "version": "1.2.3", "verified": true, "resumed": false}),
    );
    let mut cmd = tool("ugw-swap");
    cmd.args(["--root", s(&root)]);
    let out = with_stdin(cmd, &record);
    assert_eq!(out.succeeds().record().steps.len(), 2);
    assert_eq!(current(&root), "releases/1.2.3");
    assert_eq!(
        std::fs::read_to_string(root.join("current/app-1.2.3")).unwrap(),
        "binary"
    );
}

#[test]
fn another_artifact_under_a_staged_version_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let v1 = artifact(dir.path(), "v1", "one");
    swap(&["--root", s(&root), "--from", s(&v1), "--release", "v1"]).succeeds();
    std::fs::write(v1.join("app.txt"), "one, rebuilt").unwrap();
    let refused = swap(&["--root", s(&root), "--from", s(&v1), "--release", "v1"]);
    let step = refused.assert_code(2).last_step();
    assert!(step.error.as_ref().unwrap().message.contains("--force"));
    assert_eq!(
        std::fs::read_to_string(root.join("current/app.txt")).unwrap(),
        "one"
    );
    let forced = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v1),
        "--release",
        "v1",
        "--force",
    ]);
    assert!(forced.succeeds().last_step().changed);
    assert_eq!(
        std::fs::read_to_string(root.join("current/app.txt")).unwrap(),
        "one, rebuilt"
    );
}

#[test]
fn a_hand_made_current_is_adopted_and_shared_paths_are_linked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    std::fs::create_dir_all(root.join("current")).unwrap();
    std::fs::write(root.join("current/app.txt"), "by hand").unwrap();
    std::fs::create_dir_all(root.join("shared")).unwrap();
    std::fs::write(root.join("shared/.env"), "SECRET=1").unwrap();
    let v2 = artifact(dir.path(), "v2", "two");
    std::fs::write(v2.join(".env"), "from the artifact").unwrap();
    let out = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v2),
        "--release",
        "v2",
        "--link",
        "shared/.env:.env",
    ]);
    let step = out.succeeds().last_step();
    let adopted = field(&step, "adopted").as_str().unwrap().to_string();
    assert_eq!(field(&step, "previous"), adopted.as_str());
    assert_eq!(
        std::fs::read_to_string(root.join("releases").join(&adopted).join("app.txt")).unwrap(),
        "by hand"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("current/.env")).unwrap(),
        "SECRET=1"
    );
    assert!(
        std::fs::symlink_metadata(root.join("current/.env"))
            .unwrap()
            .is_symlink()
    );
    let back = swap(&["--root", s(&root), "--rollback"]);
    back.succeeds();
    assert_eq!(
        std::fs::read_to_string(root.join("current/app.txt")).unwrap(),
        "by hand"
    );
}

#[test]
fn prune_keeps_current_previous_and_a_newer_failed_release() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    for v in 1..=4 {
        let a = artifact(dir.path(), &format!("v{v}"), &format!("{v}"));
        swap(&[
            "--root",
            s(&root),
            "--from",
            s(&a),
            "--release",
            &format!("v{v}"),
            "--keep",
            "10",
        ])
        .succeeds();
    }
    // v4 fails and is rolled back: v3 is current, v4 failed and younger than it.
    swap(&["--root", s(&root), "--rollback"]).succeeds();
    // Back to the staged v2 (no copy: same digest), keeping one release.
    let v2 = dir.path().join("staging/v2");
    let out = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v2),
        "--release",
        "v2",
        "--keep",
        "1",
    ]);
    let step = out.succeeds().last_step();
    let pruned: Vec<String> = serde_json::from_value(field(&step, "pruned")).unwrap();
    assert_eq!(pruned, ["v1"]);
    let mut left: Vec<String> = std::fs::read_dir(root.join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["v2", "v3", "v4"],
        "current, previous, and the failed v4 younger than v2"
    );
    let v5 = artifact(dir.path(), "v5", "5");
    let out = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v5),
        "--release",
        "v5",
        "--keep",
        "2",
    ]);
    let pruned: Vec<String> =
        serde_json::from_value(field(&out.succeeds().last_step(), "pruned")).unwrap();
    assert_eq!(
        pruned,
        ["v3", "v4"],
        "a failed release older than current goes too"
    );
}

#[test]
fn a_failing_restart_switches_back_and_restarts_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let log = dir.path().join("restarts.log");
    let (v1, v2) = (
        artifact(dir.path(), "v1", "one"),
        artifact(dir.path(), "v2", "two"),
    );
    swap(&["--root", s(&root), "--from", s(&v1), "--release", "v1"]).succeeds();
    // The "service" starts only on v1: it reads the live release, as a real restart would.
    let restart = format!(
        "cat {0}/current/app.txt >> {1}; echo >> {1}; grep -q one {0}/current/app.txt",
        s(&root),
        s(&log)
    );
    let out = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v2),
        "--release",
        "v2",
        "--restart",
        &restart,
    ]);
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "restart_failed");
    let restarts = field(&step, "restarts");
    assert_eq!(restarts[0]["phase"], "after_switch");
    assert_eq!(restarts[0]["ok"], false);
    assert_eq!(restarts[1]["phase"], "after_revert");
    assert_eq!(restarts[1]["ok"], true);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "two\none\n",
        "ran on v2, then on v1"
    );
    assert_eq!(current(&root), "releases/v1");
    assert!(root.join("releases/v2/.ugw-failed").exists());
}

#[test]
fn dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let (v1, v2) = (
        artifact(dir.path(), "v1", "one"),
        artifact(dir.path(), "v2", "two"),
    );
    swap(&["--root", s(&root), "--from", s(&v1), "--release", "v1"]).succeeds();
    let out = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v2),
        "--release",
        "v2",
        "--dry-run",
    ]);
    let step = out.succeeds().last_step();
    assert!(step.dry_run && !step.changed);
    assert!(
        field(&step, "would")
            .as_str()
            .unwrap()
            .contains("releases/v2")
    );
    assert_eq!(current(&root), "releases/v1");
    assert!(!root.join("releases/v2").exists());
}

#[test]
fn a_reader_never_sees_a_missing_or_partial_release_during_1000_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let (v1, v2) = (
        artifact(dir.path(), "v1", "one"),
        artifact(dir.path(), "v2", "two"),
    );
    swap(&["--root", s(&root), "--from", s(&v1), "--release", "v1"]).succeeds();
    swap(&["--root", s(&root), "--from", s(&v2), "--release", "v2"]).succeeds();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (app, stop) = (root.join("current/app.txt"), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let text = std::fs::read_to_string(&app).expect("current always resolves");
                assert!(text == "one" || text == "two", "partial release: {text:?}");
                reads += 1;
            }
            reads
        })
    };
    for i in 0..1000 {
        let (from, version) = if i % 2 == 0 { (&v1, "v1") } else { (&v2, "v2") };
        let out = swap(&[
            "--root",
            s(&root),
            "--from",
            s(from),
            "--release",
            version,
            "--output",
            "none",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    stop.store(true, Ordering::SeqCst);
    assert!(reader.join().expect("the reader never failed") > 1000);
    assert_eq!(current(&root), "releases/v2");
}

/// ugw-swap with `args`, started in the background with its stdout and stderr piped.
fn spawn_swap(args: &[&str]) -> Child {
    let mut cmd = tool("ugw-swap");
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

/// A swap with `args` whose `--restart` holds its lock until the test writes the file
/// returned beside it (in `dir`): returned once that restart has started.
fn start_holding_the_lock(dir: &Path, args: &[&str]) -> (Child, PathBuf) {
    let started = dir.join("restart-started");
    let release = dir.join("release-restart");
    let restart = format!(
        "touch {}; while [ ! -e {} ]; do sleep 0.01; done",
        s(&started),
        s(&release)
    );
    let mut args = args.to_vec();
    args.extend(["--restart", &restart]);
    let first = spawn_swap(&args);
    assert!(
        kit::eventually(Duration::from_secs(20), || started.exists()),
        "the first swap's restart started"
    );
    (first, release)
}

#[test]
fn two_concurrent_swaps_never_interleave_one_waits_or_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let (v1, v2, v3) = (
        artifact(dir.path(), "v1", "one"),
        artifact(dir.path(), "v2", "two"),
        artifact(dir.path(), "v3", "three"),
    );
    swap(&["--root", s(&root), "--from", s(&v1), "--release", "v1"]).succeeds();
    // The first swap holds the lock through a restart that lasts until the test says so.
    let (first, release) = start_holding_the_lock(
        dir.path(),
        &["--root", s(&root), "--from", s(&v2), "--release", "v2"],
    );
    let busy = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v3),
        "--release",
        "v3",
        "--lock-timeout",
        "200ms",
    ]);
    let step = busy.assert_code(4).last_step();
    assert_eq!(step.error_kind(), "busy");
    assert_eq!(
        current(&root),
        "releases/v2",
        "the busy swap changed nothing"
    );
    // A waiting swap goes through once the first one is done.
    let waiting = spawn_swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v3),
        "--release",
        "v3",
        "--lock-timeout",
        "30s",
    ]);
    let lock = root.join(".ugw-swap.lock");
    assert!(
        kit::eventually(Duration::from_secs(10), || {
            kit::observe::has_open(waiting.id(), &lock)
        }),
        "the second swap is at the lock"
    );
    assert_eq!(
        current(&root),
        "releases/v2",
        "the second swap waits for the lock"
    );
    std::fs::write(&release, "").unwrap();
    let first = kit::wait_bounded(first, kit::RUN_LIMIT);
    assert_eq!(first.status.code(), Some(0));
    let waiting = kit::wait_bounded(waiting, kit::RUN_LIMIT);
    assert_eq!(
        waiting.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&waiting.stderr)
    );
    let record = kit::parse_record(&String::from_utf8_lossy(&waiting.stdout));
    assert_eq!(
        record.steps[0].result["previous"], "v2",
        "it ran after the first, not beside it"
    );
    assert_eq!(current(&root), "releases/v3");
}

/// A copy of a real executable (ELF, not a shell builtin).
fn program(name: &str, to: &Path) {
    let path = ["/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no {name} in /usr/bin or /bin"));
    std::fs::copy(path, to).unwrap();
}

#[test]
fn binary_mode_replaces_a_running_binary_keeping_its_mode_and_the_old_one() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("app");
    let new = dir.path().join("app-new");
    program("sleep", &target);
    program("true", &new);
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o750)).unwrap();
    let mut running = Command::new(&target).arg("30").spawn().unwrap();
    // Writing into a running binary fails with "text file busy"; a rename does not.
    assert!(
        std::fs::OpenOptions::new()
            .write(true)
            .open(&target)
            .is_err()
    );

    let out = swap(&["--target", s(&target), "--from", s(&new)]);
    let step = out.succeeds().last_step();
    assert!(step.changed);
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&new).unwrap()
    );
    let prev = dir.path().join("app.ugw-prev");
    assert!(
        Command::new(&prev).arg("0").status().unwrap().success(),
        "the old binary is kept"
    );
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o750);
    assert!(
        running.try_wait().unwrap().is_none(),
        "the old process runs on"
    );
    assert!(
        Command::new(&target).status().unwrap().success(),
        "the new binary runs"
    );

    let again = swap(&["--target", s(&target), "--from", s(&new)]);
    assert!(!again.succeeds().last_step().changed);

    let back = swap(&["--target", s(&target), "--rollback"]);
    assert!(back.succeeds().last_step().changed);
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&prev).unwrap()
    );
    assert_eq!(
        std::fs::read(dir.path().join("app.ugw-failed")).unwrap(),
        std::fs::read(&new).unwrap()
    );
    let moded = swap(&["--target", s(&target), "--from", s(&new), "--mode", "700"]);
    assert!(moded.succeeds().last_step().changed);
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "--mode wins over the old binary's");
    let _ = running.kill();
    let _ = running.wait();
}

#[test]
fn binary_mode_keeps_the_owner_of_the_old_binary_and_takes_mode_from_the_flag() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    const NOBODY: u32 = 65534;
    // Giving a file away needs root (CI runs as root).
    if !rustix::process::geteuid().is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "keeping another user's ownership needs root under CI=true"
        );
        eprintln!("SKIPPED: keeping another user's ownership needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("app");
    let new = dir.path().join("app-new");
    std::fs::write(&target, "#!/bin/sh\necho old\n").unwrap();
    std::fs::write(&new, "#!/bin/sh\necho new\n").unwrap();
    std::os::unix::fs::chown(&target, Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o750)).unwrap();
    assert_eq!(
        std::fs::metadata(&new).unwrap().uid(),
        0,
        "the new file is root's"
    );

    swap(&["--target", s(&target), "--from", s(&new)]).succeeds();
    let swapped = std::fs::metadata(&target).unwrap();
    assert_eq!((swapped.uid(), swapped.gid()), (NOBODY, NOBODY));
    assert_eq!(swapped.mode() & 0o7777, 0o750);
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "#!/bin/sh\necho new\n"
    );

    std::fs::write(&new, "#!/bin/sh\necho newer\n").unwrap();
    swap(&["--target", s(&target), "--from", s(&new), "--mode", "700"]).succeeds();
    let moded = std::fs::metadata(&target).unwrap();
    assert_eq!((moded.uid(), moded.mode() & 0o7777), (NOBODY, 0o700));
}

#[test]
fn binary_mode_reverts_when_the_restart_fails() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("app");
    let new = dir.path().join("app-new");
    std::fs::write(&target, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(&new, "#!/bin/sh\nexit 3\n").unwrap();
    let restart = format!("sh {}", s(&target));
    let out = swap(&[
        "--target",
        s(&target),
        "--from",
        s(&new),
        "--restart",
        &restart,
    ]);
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "restart_failed");
    assert_eq!(field(&step, "restarts")[0]["exit"], 3);
    assert_eq!(field(&step, "restarts")[1]["exit"], 0);
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app.ugw-failed")).unwrap(),
        "#!/bin/sh\nexit 3\n"
    );
}

#[test]
fn binary_mode_keeps_the_extended_attributes_of_the_old_binary() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("app");
    let new = dir.path().join("app-new");
    std::fs::write(&target, "old").unwrap();
    std::fs::write(&new, "new").unwrap();
    let set = Command::new("setfattr")
        .args(["-n", "user.ugw.label", "-v", "kept"])
        .arg(&target)
        .status();
    if !set.is_ok_and(|s| s.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "setfattr (package attr) and user xattrs are required under CI=true"
        );
        eprintln!("SKIPPED: no setfattr or no user xattrs on this file system");
        return;
    }
    swap(&["--target", s(&target), "--from", s(&new)]).succeeds();
    let got = Command::new("getfattr")
        .args(["--only-values", "-n", "user.ugw.label"])
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout), "kept");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
}

#[test]
fn two_concurrent_binary_mode_swaps_never_interleave_one_waits_or_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("app");
    let (b, c) = (dir.path().join("app-b"), dir.path().join("app-c"));
    std::fs::write(&target, "binary A\n".repeat(1000)).unwrap();
    std::fs::write(&b, "binary B\n".repeat(2000)).unwrap();
    std::fs::write(&c, "binary C\n".repeat(3000)).unwrap();
    let (a_bytes, b_bytes, c_bytes) = (
        std::fs::read(&target).unwrap(),
        std::fs::read(&b).unwrap(),
        std::fs::read(&c).unwrap(),
    );
    // The first swap holds the lock through a restart that lasts until the test says so.
    let (first, release) =
        start_holding_the_lock(dir.path(), &["--target", s(&target), "--from", s(&b)]);
    assert_eq!(std::fs::read(&target).unwrap(), b_bytes);
    let busy = swap(&[
        "--target",
        s(&target),
        "--from",
        s(&c),
        "--lock-timeout",
        "200ms",
    ]);
    let step = busy.assert_code(4).last_step();
    assert_eq!(step.error_kind(), "busy");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b_bytes,
        "the busy swap changed nothing"
    );
    assert_eq!(
        std::fs::read(dir.path().join("app.ugw-prev")).unwrap(),
        a_bytes,
        "the busy swap did not touch the kept old binary"
    );
    // A waiting swap goes through once the first one is done.
    let waiting = spawn_swap(&[
        "--target",
        s(&target),
        "--from",
        s(&c),
        "--lock-timeout",
        "30s",
    ]);
    let lock = dir.path().join(".app.ugw-swap.lock");
    assert!(
        kit::eventually(Duration::from_secs(10), || {
            kit::observe::has_open(waiting.id(), &lock)
        }),
        "the second swap is at the lock"
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b_bytes,
        "the second swap waits for the lock"
    );
    std::fs::write(&release, "").unwrap();
    let first = kit::wait_bounded(first, kit::RUN_LIMIT);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let waiting = kit::wait_bounded(waiting, kit::RUN_LIMIT);
    assert_eq!(
        waiting.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&waiting.stderr)
    );
    let record = kit::parse_record(&String::from_utf8_lossy(&waiting.stdout));
    assert_eq!(
        record.steps[0].result["previous"],
        kit::sha256(&b_bytes),
        "it ran after the first, not beside it"
    );
    assert_eq!(std::fs::read(&target).unwrap(), c_bytes, "exactly C, whole");
    assert_eq!(
        std::fs::read(dir.path().join("app.ugw-prev")).unwrap(),
        b_bytes
    );
}

/// A rollback by hand (no record) goes to the release staged before the current one, not to
/// a newer one that happens to exist.
#[test]
fn a_rollback_by_hand_goes_to_the_release_before_current_not_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    for (name, content) in [("v1", "one"), ("v2", "two"), ("v3", "three")] {
        let from = artifact(dir.path(), name, content);
        swap(&["--root", s(&root), "--from", s(&from), "--release", name]).succeeds();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(current(&root), "releases/v3");
    // Point current back at v2 by hand, as an operator would.
    let temp = root.join(".current.tmp");
    std::os::unix::fs::symlink("releases/v2", &temp).unwrap();
    std::fs::rename(&temp, root.join("current")).unwrap();
    assert_eq!(current(&root), "releases/v2");

    let back = swap(&["--root", s(&root), "--rollback"]);
    let step = back.succeeds().last_step();
    assert!(step.changed);
    assert_eq!(field(&step, "current"), "v1");
    assert_eq!(field(&step, "marked_failed"), "v2");
    assert_eq!(current(&root), "releases/v1", "not the newer v3");
    assert_eq!(
        std::fs::read_to_string(root.join("current/app.txt")).unwrap(),
        "one"
    );
}
