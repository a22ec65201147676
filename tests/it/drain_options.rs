//! ugw-drain's flags, as its one options struct reads them: a call names one method, whole,
//! and the flags that belong to another method are refused before anything is touched.

use crate::kit::{self, Kind};

/// ugw-drain with `--flag-file` in a fresh folder and `extra`: refused as a usage error that
/// says `says`, the flag file never created.
fn refused_with_the_flag_file_untouched(extra: &[&str], says: &str) {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain.flag");
    let mut cmd = kit::tool("ugw-drain");
    cmd.args(["--flag-file", kit::s(&flag)]).args(extra);
    kit::run(cmd).fails_with(Kind::Usage).stderr_has(says);
    assert!(!flag.exists(), "the flag file was created");
}

#[test]
fn two_methods_in_one_call_are_refused_and_nothing_is_touched() {
    let port = kit::free_port().to_string();
    let extra = [
        "--port",
        &port,
        "--haproxy",
        "/nonexistent/haproxy.sock",
        "--server",
        "app/node1",
    ];
    refused_with_the_flag_file_untouched(
        &extra,
        "one method per call: --haproxy and --flag-file were both given",
    );
}

#[test]
fn escalate_is_only_for_the_signal_method() {
    let port = kit::free_port().to_string();
    refused_with_the_flag_file_untouched(
        &["--port", &port, "--on-timeout", "escalate"],
        "--on-timeout escalate is for --signal",
    );
}

#[test]
fn a_flag_file_without_a_gauge_is_refused_before_it_is_created() {
    refused_with_the_flag_file_untouched(&[], "need --inflight-metric URL#NAME or --port N");
}
