//! A jq evaluation runs in a child the tool forks for it (shared/src/jq/contained.rs): that
//! child must never outlive the tool, even when the tool itself is killed with SIGKILL and
//! nothing of it is left to kill the child at the deadline.

use crate::kit;

use kit::{DemoApp, serial};
use std::process::Stdio;
use std::time::Duration;

/// Whether `pid` still runs (a zombie waiting for its new parent to reap it does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
        !matches!(state, Some(Some('Z' | 'X')))
    })
}

#[test]
fn a_runaway_evaluation_dies_with_a_tool_killed_by_sigkill() {
    let _serial = serial();
    let app = DemoApp::start(&[]);
    for expression in ["[range(1e9)]|length>0", "last(range(1e12))"] {
        let mut tool = kit::tool("ugw-wait-healthy");
        tool.args(["--url", &format!("{}/health/live", app.url)])
            .args(["--expect", expression, "--timeout", "1m"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut tool = tool.spawn().expect("the tool starts");
        let mut evaluator = None;
        assert!(
            kit::eventually(Duration::from_secs(10), || {
                evaluator = kit::observe::children(tool.id()).first().copied();
                evaluator.is_some()
            }),
            "{expression}: the tool forked its evaluator"
        );
        let evaluator = evaluator.unwrap();
        tool.kill().expect("SIGKILL to the tool");
        tool.wait().expect("the tool is reaped");
        let gone = kit::eventually(Duration::from_secs(5), || !running(evaluator));
        if !gone {
            // Never leave it running on the machine, whatever the assertion says.
            kit::signal(evaluator.cast_signed(), libc::SIGKILL);
        }
        assert!(
            gone,
            "{expression}: the evaluator {evaluator} outlived the tool killed with SIGKILL"
        );
    }
}
