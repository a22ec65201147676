//! Issue 21 item 4b: `ugw-drain --signal SIG --pidfile F` reads a pidfile as
//! `ugw-wait-healthy --pidfile` does (its first word), so the two-line pidfile `ugw-swap
//! --start` writes (the pid, then which process that is) names the service it started.

use crate::kit;

use kit::s;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A releases root and a pidfile in a temp folder; whatever the pidfile names is killed with
/// its group when the test ends, a failed one included.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        Node { dir }
    }

    fn pidfile(&self) -> PathBuf {
        self.dir.path().join("run/app.pid")
    }

    /// A release of the demo service on a free port, started by `ugw-swap --start`.
    fn start_demo(&self) -> i32 {
        let release = release_of_demo(self.dir.path(), "v1");
        let root = self.dir.path().join("app");
        let pidfile = self.pidfile();
        kit::swap(&[
            "--root",
            s(&root),
            "--start",
            "exec bin/app",
            "--pidfile",
            s(&pidfile),
            "--from",
            s(&release),
            "--release",
            "v1",
        ])
        .succeeds();
        let text = std::fs::read_to_string(&pidfile).unwrap();
        assert!(
            text.lines().count() == 2 && text.contains("ugw-swap --start"),
            "ugw-swap --start writes the pid, then which process it is: {text:?}"
        );
        kit::started_pid(&pidfile).unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        kit::kill_started(&self.pidfile());
    }
}

/// `DIR/staging/VERSION`, whose `bin/app` runs the demo service on a free port.
fn release_of_demo(dir: &Path, version: &str) -> PathBuf {
    let script = format!(
        "exec {} --listen 127.0.0.1:{} --version-label {version}",
        s(&kit::bin("ugw-demo-app")),
        kit::free_port()
    );
    kit::script_release(dir, version, &script)
}

#[test]
fn a_pidfile_written_by_ugw_swap_start_names_the_process_drain_stops() {
    let node = Node::new();
    let pid = node.start_demo();
    let pidfile = node.pidfile();
    let mut cmd = kit::tool("ugw-drain");
    cmd.args([
        "--signal",
        "TERM",
        "--pidfile",
        s(&pidfile),
        "--timeout",
        "10s",
    ]);
    let out = kit::run(cmd);
    out.succeeds();
    let result = out.last_step().result;
    assert_eq!(result["pid"], pid, "{result}");
    assert_eq!(
        (
            result["state_before"].as_str(),
            result["state_after"].as_str()
        ),
        (Some("running"), Some("gone")),
        "{result}"
    );
    assert!(out.last_step().changed);
    assert!(
        kit::gone(pid, Duration::from_secs(1)),
        "process {pid} still runs"
    );
}
