//! ugw-swap --force staging a version again, the live one included (issue 20 item 3): the new
//! content is staged under another name and exchanged in by one rename, so a reader of
//! `current/bin/app` never finds it missing, and the old content is kept until the restart
//! proves the new one (a failing restart puts it back).

use crate::kit;

use kit::{current, s, staged_release as artifact, swap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

fn app(root: &Path) -> String {
    std::fs::read_to_string(root.join("current/bin/app")).unwrap()
}

#[test]
fn forcing_the_live_version_again_never_leaves_current_missing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let (one, two) = (
        artifact(dir.path(), "one", "one"),
        artifact(dir.path(), "two", "two"),
    );
    swap(&["--root", s(&root), "--from", s(&one), "--release", "v1"]).succeeds();
    let (stop, misses) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let reader = {
        let (path, stop, misses) = (
            root.join("current/bin/app"),
            Arc::clone(&stop),
            Arc::clone(&misses),
        );
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::SeqCst) {
                match std::fs::read_to_string(&path) {
                    Ok(text) => assert!(text == "one" || text == "two", "partial: {text:?}"),
                    Err(_) => {
                        misses.fetch_add(1, Ordering::SeqCst);
                    }
                }
                reads += 1;
            }
            reads
        })
    };
    for i in 0..150 {
        let from = if i % 2 == 0 { &two } else { &one };
        let out = swap(&[
            "--root",
            s(&root),
            "--from",
            s(from),
            "--release",
            "v1",
            "--force",
            "--output",
            "none",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    stop.store(true, Ordering::SeqCst);
    let reads = reader.join().expect("the reader never saw a partial file");
    assert!(reads > 1000, "{reads}");
    assert_eq!(
        misses.load(Ordering::SeqCst),
        0,
        "current/bin/app was missing in some of {reads} reads"
    );
    assert_eq!(app(&root), "one");
    let leftovers: Vec<_> = std::fs::read_dir(root.join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "v1")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_failing_restart_after_forcing_the_live_version_puts_its_content_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let good = artifact(dir.path(), "good", "good");
    let bad = artifact(dir.path(), "bad", "bad");
    swap(&["--root", s(&root), "--from", s(&good), "--release", "v1.0"]).succeeds();
    // The restart fails while the bad content is live, and succeeds once it is gone.
    let restart = format!("grep -q good {}/current/bin/app", s(&root));
    let out = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&bad),
        "--release",
        "v1.0",
        "--force",
        "--restart",
        &restart,
    ]);
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "restart_failed");
    assert_eq!(current(&root), "releases/v1.0");
    assert_eq!(app(&root), "good", "the good content is live again");
    assert!(
        !root.join("releases/v1.0/.ugw-failed").exists(),
        "the good content is not marked failed"
    );
    let result = step.result;
    assert_eq!(result["restarts"][1]["ok"], true, "{result}");
    assert_eq!(result["current"], "v1.0");
    assert!(result["marked_failed"].is_null(), "{result}");

    // A failing forced restage of a version that is not live: current goes back to the
    // release before, and the version keeps the content it had.
    let two = artifact(dir.path(), "two", "good two");
    swap(&["--root", s(&root), "--from", s(&two), "--release", "v2"]).succeeds();
    swap(&["--root", s(&root), "--from", s(&good), "--release", "v1.0"]).succeeds();
    let out = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&bad),
        "--release",
        "v2",
        "--force",
        "--restart",
        &restart,
    ]);
    out.assert_code(1);
    assert_eq!(current(&root), "releases/v1.0");
    assert_eq!(
        std::fs::read_to_string(root.join("releases/v2/bin/app")).unwrap(),
        "good two"
    );
}
