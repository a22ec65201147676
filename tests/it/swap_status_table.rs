//! Issue 21 item 17 (ugw-swap): `ugw-swap status` on a terminal shows people a table of the
//! releases on stderr (current, previous, failed marks, staged times); in a pipe or log
//! stderr has no table, and the record is the same either way.

use crate::kit;

use kit::{s, swap, tool};
use std::process::Command;

fn release(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let from = dir.join("staging").join(name);
    std::fs::create_dir_all(&from).unwrap();
    std::fs::write(from.join("app.txt"), name).unwrap();
    from
}

#[test]
fn status_prints_a_table_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    for name in ["v1", "v2"] {
        let from = release(dir.path(), name);
        swap(&["--root", s(&root), "--from", s(&from), "--release", name]).succeeds();
    }
    let program = tool("ugw-swap").get_program().to_owned();
    let line = format!(
        "{} status --root {} </dev/null >/dev/null",
        program.to_str().unwrap(),
        s(&root)
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("RELEASE"), "{shown}");
    let v2 = shown.lines().find(|l| l.contains("v2")).unwrap_or_default();
    assert!(v2.contains("current") && v2.starts_with('*'), "{shown}");
    let v1 = shown
        .lines()
        .find(|l| l.contains(" v1 "))
        .unwrap_or_default();
    assert!(v1.contains("previous"), "{shown}");

    // Not a terminal: no table, and the record still lists both releases.
    let piped = swap(&["status", "--root", s(&root)]);
    piped
        .succeeds()
        .stderr_lacks("RELEASE")
        .stdout_has("\"v1\"")
        .stdout_has("\"v2\"");
}
