//! ugw-swap as an operator upgrading a real service meets it (issue 21): a release marked
//! failed is not swapped in again without --force, --force-restart restarts when nothing
//! switched, and a failed restart's own last lines are on stderr, scrubbed.

use crate::kit;

use kit::{current, s, staged_release as artifact, swap};

/// Item 15: a release marked failed is refused, naming when and why, unless --force.
#[test]
fn a_release_marked_failed_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let (v1, v2) = (
        artifact(dir.path(), "v1", "one"),
        artifact(dir.path(), "v2", "two"),
    );
    swap(&["--root", s(&root), "--from", s(&v1), "--release", "v1"]).succeeds();
    let v2_args = ["--root", s(&root), "--from", s(&v2), "--release", "v2"];
    swap(&[&v2_args[..], &["--restart", "exit 3"]].concat()).assert_code(1);
    assert_eq!(current(&root), "releases/v1");
    for extra in [&[][..], &["--dry-run"][..]] {
        let out = swap(&[&v2_args[..], extra].concat());
        let step = out.assert_code(2).last_step();
        let message = &step.error.as_ref().unwrap().message;
        assert!(
            message.contains("marked failed by ugw-swap at 20"),
            "{message}"
        );
        assert!(message.contains("its restart failed (exit 3)"), "{message}");
        assert!(message.contains("--force"), "{message}");
        assert_eq!(current(&root), "releases/v1");
    }
    let out = swap(&[&v2_args[..], &["--force"]].concat());
    assert!(out.succeeds().last_step().changed);
    assert_eq!(current(&root), "releases/v2");
    assert!(!root.join("releases/v2/.ugw-failed").exists());
}

/// Item 5: rerunning after a failed start restarts again with --force-restart, in both
/// modes; without it nothing runs.
#[test]
fn force_restart_runs_the_restart_when_nothing_switched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let v1 = artifact(dir.path(), "v1", "one");
    let marker = dir.path().join("restarted");
    let restart = format!("touch {}", s(&marker));
    let args = [
        "--root",
        s(&root),
        "--from",
        s(&v1),
        "--release",
        "v1",
        "--restart",
        &restart,
    ];
    swap(&args).succeeds();
    std::fs::remove_file(&marker).unwrap();
    let step = swap(&args).succeeds().last_step();
    assert!(!marker.exists() && step.result["restarted"] == false);
    let step = swap(&[&args[..], &["--force-restart"]].concat())
        .succeeds()
        .last_step();
    assert!(marker.exists(), "the restart ran");
    assert_eq!(step.result["restarted"], true);
    assert_eq!(step.result["restarts"][0]["phase"], "forced");
    assert_eq!(current(&root), "releases/v1");
    let failing = ["--root", s(&root), "--from", s(&v1), "--release", "v1"];
    let out = swap(&[&failing[..], &["--restart", "exit 4", "--force-restart"]].concat());
    assert_eq!(
        out.assert_code(1).last_step().error_kind(),
        "restart_failed"
    );
    assert_eq!(current(&root), "releases/v1");
    let usage = swap(&[&failing[..], &["--force-restart"]].concat());
    usage.assert_code(2);

    // Binary mode: the same binary again.
    let target = dir.path().join("bin-app");
    std::fs::write(&target, "#!/bin/sh\n").unwrap();
    let from = dir.path().join("bin-app-new");
    std::fs::write(&from, "#!/bin/sh\n").unwrap();
    std::fs::remove_file(&marker).unwrap();
    let args = [
        "--target",
        s(&target),
        "--from",
        s(&from),
        "--restart",
        &restart,
    ];
    swap(&args).succeeds();
    assert!(!marker.exists());
    swap(&[&args[..], &["--force-restart"]].concat()).succeeds();
    assert!(marker.exists());
}

/// Item 7: a failed restart's last lines are on stderr, scrubbed (issue 20 item 26: a
/// PGPASSWORD= or DBPASS= in the command or its output is masked).
#[test]
fn a_failed_restarts_last_lines_are_on_stderr_scrubbed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let (v1, v2) = (
        artifact(dir.path(), "v1", "one"),
        artifact(dir.path(), "v2", "two"),
    );
    swap(&["--root", s(&root), "--from", s(&v1), "--release", "v1"]).succeeds();
    let restart = "PGPASSWORD=pg-s3cret-91 DBPASS=db-s3cret-92 true; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line $i; done; \
                   echo 'node1: exited during start; see /var/log/node1.log' >&2; echo DBPASS=db-s3cret-93; exit 1";
    let out = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&v2),
        "--release",
        "v2",
        "--restart",
        restart,
    ]);
    out.assert_code(1)
        .stderr_has("node1: exited during start; see /var/log/node1.log")
        .stderr_has("line 12")
        .stderr_lacks("line 1\n");
    for secret in ["pg-s3cret-91", "db-s3cret-92", "db-s3cret-93"] {
        out.never_shows(secret);
    }
}
