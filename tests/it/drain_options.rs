//! ugw-drain's flags, as its one options struct reads them: a call names one method, whole,
//! and the flags that belong to another method are refused before anything is touched.

use crate::kit::{self, Kind};

fn drain(args: &[&str]) -> kit::Outcome {
    let mut cmd = kit::tool("ugw-drain");
    cmd.args(args);
    kit::run(cmd)
}

#[test]
fn two_methods_in_one_call_are_refused_and_nothing_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain.flag");
    let socket = dir.path().join("no-haproxy.sock");
    let port = kit::free_port().to_string();
    let outcome = drain(&[
        "--haproxy",
        kit::s(&socket),
        "--server",
        "app/node1",
        "--flag-file",
        kit::s(&flag),
        "--port",
        &port,
    ]);
    outcome
        .fails_with(Kind::Usage)
        .stderr_has("one method per call: --haproxy and --flag-file were both given");
    assert!(!flag.exists(), "the flag file was created");
}

#[test]
fn escalate_is_only_for_the_signal_method() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain.flag");
    let port = kit::free_port().to_string();
    let outcome = drain(&[
        "--flag-file",
        kit::s(&flag),
        "--port",
        &port,
        "--on-timeout",
        "escalate",
    ]);
    outcome
        .fails_with(Kind::Usage)
        .stderr_has("--on-timeout escalate is for --signal");
    assert!(!flag.exists(), "the flag file was created");
}

#[test]
fn a_flag_file_without_a_gauge_is_refused_before_it_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain.flag");
    let outcome = drain(&["--flag-file", kit::s(&flag)]);
    outcome
        .fails_with(Kind::Usage)
        .stderr_has("need --inflight-metric URL#NAME or --port N");
    assert!(!flag.exists(), "the flag file was created");
}
