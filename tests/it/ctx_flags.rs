//! The common flags a tool acts on reach it through `Ctx`, parsed once by `cli`: the
//! `--lock-timeout` given is the one a tool waits (not a fallback the tool restates).

use crate::kit::{self, Kind};
use std::time::Duration;

#[test]
fn a_held_lock_is_waited_for_as_long_as_lock_timeout_says() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "x").unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let lock = std::fs::File::create(out.join(".ugw-backup.lock")).unwrap();
    lock.lock().unwrap();
    let mut cmd = kit::tool("ugw-backup");
    cmd.args(["create", "--path", kit::s(&data), "--out", kit::s(&out)])
        .args(["--name", "b", "--lock-timeout", "300ms"]);
    let outcome = kit::run(cmd);
    outcome.fails_with(Kind::Busy);
    // The default (30 s) is what a tool falling back on its own would wait: a user notices.
    let waited = Duration::from_millis(outcome.last_step().elapsed_ms);
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(10),
        "waited {waited:?} for a --lock-timeout of 300ms"
    );
    assert!(!out.join("b.tar.gz").exists());
}
