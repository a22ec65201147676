//! `ugw-drain --undo` puts back exactly what this run's drain of the named thing found, and
//! nothing else (ugw(7), WHAT A TOOL TRUSTS): the drain of another server in the same record
//! is not the one to undo, a failed undo does not count as one, and a failed run that never
//! drained has nothing to undo (the failure path runs as written on any failed record).

mod kit;

use kit::DemoApp;
use kit::haproxy::{HaProxy, Server};
use std::path::Path;
use std::time::Duration;

fn drain(record: &Path, args: &[&str]) -> kit::Outcome {
    let mut cmd = kit::tool("ugw-drain");
    cmd.arg("--record")
        .arg(record)
        .args(["--timeout", "10s"])
        .args(args);
    kit::run(cmd)
}

/// Two drains in one record, node1 (an operator had it in MAINT) and then node2: undoing node1
/// puts back node1's own state, never node2's, so node1 stays MAINT.
#[test]
fn undoing_one_server_uses_that_servers_drain_not_the_records_last() {
    if !HaProxy::available() {
        return;
    }
    let (a, b) = (DemoApp::start(&[]), DemoApp::start(&[]));
    let haproxy = HaProxy::start(&[
        Server::new("node1", &a.addr(), true),
        Server::new("node2", &b.addr(), true),
    ]);
    for node in ["node1", "node2"] {
        assert!(haproxy.wait_status(node, "UP", Duration::from_secs(5)));
    }
    haproxy.set_state("node1", "maint");
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec.json");
    let socket = haproxy.admin_socket();
    let socket = socket.to_str().unwrap();
    let first = drain(
        &record,
        &["--new", "--haproxy", socket, "--server", "app/node1"],
    );
    first.assert_code(0);
    assert_eq!(
        first.last_step().result["states_before"],
        serde_json::json!(["maint"])
    );
    drain(&record, &["--haproxy", socket, "--server", "app/node2"]).assert_code(0);
    assert_eq!(haproxy.status("node2"), "DRAIN");

    drain(
        &record,
        &["--undo", "--haproxy", socket, "--server", "app/node1"],
    )
    .assert_code(0);
    assert_eq!(haproxy.status("node1"), "MAINT", "{}", haproxy.log());
    assert_eq!(haproxy.status("node2"), "DRAIN", "node2 is not touched");

    drain(
        &record,
        &["--undo", "--haproxy", socket, "--server", "app/node2"],
    )
    .assert_code(0);
    assert!(haproxy.wait_status("node2", "UP", Duration::from_secs(5)));
    assert_eq!(haproxy.status("node1"), "MAINT");
}

/// A failed undo put nothing back: the next `--undo` still finds the drain before it, and
/// undoes it, instead of "undone already".
#[test]
fn a_failed_undo_is_not_taken_for_an_undo() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec.json");
    let flag = dir.path().join("drain.flag");
    let flag_arg = flag.to_str().unwrap();
    let app = DemoApp::start(&[]);
    let gauge = format!("{}/metrics#http_requests_in_flight", app.url);
    drain(
        &record,
        &[
            "--new",
            "--flag-file",
            flag_arg,
            "--lb-grace",
            "0s",
            "--inflight-metric",
            &gauge,
        ],
    )
    .assert_code(0);
    assert!(flag.exists());
    // An undo step that failed (the tool could not put the node back), as the record keeps it.
    let mut text: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    let mut failed = text["steps"][0].clone();
    failed["status"] = "failed".into();
    failed["exit"] = 1.into();
    failed["changed"] = false.into();
    failed["result"]["undo"] = true.into();
    failed["error"] = serde_json::json!({"kind": "io", "message": "could not remove it"});
    text["steps"].as_array_mut().unwrap().push(failed);
    text["ok"] = false.into();
    std::fs::write(&record, text.to_string()).unwrap();

    let out = drain(&record, &["--undo", "--always"]);
    out.assert_code(0);
    assert!(!flag.exists(), "the drain was undone: {}", out.stderr);
    assert!(out.last_step().changed);
}

/// The failure path's `ugw-drain --undo --always` on a run that failed before it drained:
/// nothing to put back, exit 0, unchanged. On a run that did not fail, an undo with nothing to
/// undo is still a usage error (the operator asked for something that is not there), and a
/// drain step of another host is named as the reason it was not taken.
#[test]
fn an_undo_on_a_failed_run_that_never_drained_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec.json");
    let host = ugw_shared::time::hostname();
    let failed = serde_json::json!({"ugw": 1, "run": "r1", "ok": false, "steps": [{
        "tool": "ugw-backup", "tool_version": "0.1.0", "run": "r1", "host": host,
        "started": "2026-11-21T23:59:01.123Z", "elapsed_ms": 5, "status": "failed", "exit": 1,
        "changed": false, "dry_run": false,
        "error": {"kind": "not_found", "message": "--path does not exist"}}]});
    std::fs::write(&record, failed.to_string()).unwrap();
    let out = drain(&record, &["--undo", "--always"]);
    out.assert_code(0);
    let step = out.last_step();
    assert_eq!((step.status.as_str(), step.changed), ("ok", false));
    assert!(
        out.stderr.contains("this run never drained this node"),
        "{}",
        out.stderr
    );

    // Another host's drain in the record, on a run that did not fail.
    let other = serde_json::json!({"ugw": 1, "run": "r2", "ok": true, "steps": [{
        "tool": "ugw-drain", "tool_version": "0.1.0", "run": "r2", "host": "node2",
        "started": "2026-11-21T23:59:01.123Z", "elapsed_ms": 5, "status": "ok", "exit": 0,
        "changed": true, "dry_run": false,
        "result": {"method": "flag_file", "flag_file": dir.path().join("theirs").to_str().unwrap(),
                   "state_before": "absent", "state_after": "present", "readings": 0,
                   "waited_ms": 0, "forced": false, "changed": true, "undo": false,
                   "sockets": [], "states_before": []}}]});
    std::fs::write(dir.path().join("theirs"), "").unwrap();
    std::fs::write(&record, other.to_string()).unwrap();
    let out = drain(&record, &["--undo"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("written on host \"node2\""),
        "{}",
        out.stderr
    );
    assert!(
        dir.path().join("theirs").exists(),
        "another host's file is never touched"
    );
}
