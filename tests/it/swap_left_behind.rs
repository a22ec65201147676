//! Issue 21 item 4(a): a restart command that starts the service in the background (`app &`)
//! sees it killed with the restart's process group; ugw-swap says so on stderr, with the
//! systemd way, instead of leaving a dead service without a word.

use crate::kit;

use kit::{s, swap};

#[test]
fn the_processes_a_restart_left_behind_are_named_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let from = dir.path().join("staging/v1");
    std::fs::create_dir_all(&from).unwrap();
    std::fs::write(from.join("app.txt"), "one").unwrap();
    let out = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&from),
        "--release",
        "v1",
        "--restart",
        "sleep 300 & sleep 300 & exit 0",
    ]);
    out.succeeds()
        .stderr_has("killed 2 process(es) the restart command left behind")
        .stderr_has("systemctl restart app");

    // A restart that leaves nothing behind says nothing of the kind.
    let from2 = dir.path().join("staging/v2");
    std::fs::create_dir_all(&from2).unwrap();
    std::fs::write(from2.join("app.txt"), "two").unwrap();
    let quiet = swap(&[
        "--root",
        s(&root),
        "--from",
        s(&from2),
        "--release",
        "v2",
        "--restart",
        "true",
    ]);
    quiet.succeeds().stderr_lacks("left behind");
}
