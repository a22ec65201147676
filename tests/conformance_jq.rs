//! jq conformance: no expression an operator writes may end a tool without its step (each tool
//! that evaluates jq is run with expressions that overflow any stack), and agreement with jq
//! 1.7/1.8 on the everyday subset, measured over `tests/conformance/jq_cases.txt` (cases written
//! from the jq manual's examples), with the real `jq` run over the same cases as the reference
//! when it is installed.

mod kit;

use kit::{RawServer, s, tool, wait_healthy};
use serde_json::json;
use std::time::Duration;

/// Expressions that overflow an evaluator's stack if it is not contained: a deep value
/// printed, a deep text parsed, a recursion with no end.
const CRASHERS: [&str; 3] = [
    "reduce range(300000) as $_ ([]; [.]) | tojson | length > 0",
    "\"[\" * 1000000 | fromjson | length > 0",
    "def f: [f]; f | length > 0",
];

/// The issue's own expression: 10,001 levels printed, which a big enough stack answers (a
/// string, so not an expectation that holds).
const DEEP_TOJSON: &str = "reduce range(10000) as $_ ([];[.]) | tojson";

/// A server answering every request with the JSON body `{}`.
fn json_server() -> RawServer {
    RawServer::start(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    )
}

#[test]
fn wait_healthy_writes_its_record_whatever_the_expect_expression_does() {
    let server = json_server();
    for expression in CRASHERS.iter().chain([&DEEP_TOJSON]) {
        let out = wait_healthy(&[
            "--url",
            &server.url(),
            "--expect",
            expression,
            "--timeout",
            "10s",
        ]);
        out.assert_code(1);
        let step = out.last_step();
        assert_eq!(step.status, "failed");
        let error = out.target_error();
        let why = if *expression == DEEP_TOJSON {
            "is not true"
        } else {
            "ran out of stack"
        };
        assert!(error.contains(why), "{expression}: {error}");
        assert!(
            !out.stderr.contains("overflowed its stack"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn verify_writes_its_record_whatever_an_expect_or_capture_expression_does() {
    let server = json_server();
    let dir = tempfile::tempdir().unwrap();
    let mut checks = Vec::new();
    for (i, expression) in CRASHERS.iter().enumerate() {
        checks.push(
            json!({"name": format!("expect-{i}"), "type": "http", "url": server.url(),
                           "expect": [expression]}),
        );
        checks.push(
            json!({"name": format!("capture-{i}"), "type": "http", "url": server.url(),
                           "capture": {format!("value{i}"): expression.trim_end_matches(" | length > 0")
                                                         .trim_end_matches(" > 0")}}),
        );
    }
    let file = dir.path().join("checks.json");
    std::fs::write(&file, json!({"checks": checks}).to_string()).unwrap();
    let mut cmd = tool("ugw-verify");
    cmd.args(["--checks", s(&file), "--timeout", "60s"]);
    let out = kit::run_within(cmd, Duration::from_secs(120));
    out.assert_code(1);
    assert!(
        !out.stderr.contains("overflowed its stack"),
        "{}",
        out.stderr
    );
    let step = out.last_step();
    assert_eq!(step.error_kind(), "check_failed");
    for check in step.result["checks"].as_array().unwrap() {
        assert_eq!(check["outcome"], "failed", "{check}");
        let message = check["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("ran out of stack") || message.contains("nested deeper"),
            "{check}"
        );
    }
}
