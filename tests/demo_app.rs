//! The demo service itself: what later issues (drain, swap, zero-downtime) rely on. A graceful
//! stop finishes the requests in flight; /metrics speaks Prometheus text.

mod kit;

use kit::{DemoApp, wait_healthy};
use std::time::Duration;

fn stops_gracefully_on(signal: i32) {
    let mut app = DemoApp::start(&[]);
    let url = format!("{}/slow?ms=800", app.url);
    let in_flight =
        std::thread::spawn(move || wait_healthy(&["--url", &url, "--expect", ".slept_ms == 800"]));
    assert!(app.wait_for_requests(1, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(100));
    let pid = app.pid();
    kit::signal(pid, signal);
    // The request in flight is answered in full, then the process exits 0.
    in_flight.join().unwrap().assert_code(0);
    let status = app.wait_exit(Duration::from_secs(5));
    assert_eq!(status, Some(0), "{}", app.log());
    assert!(
        app.log().contains("stopped (1 requests served)"),
        "{}",
        app.log()
    );
}

#[test]
fn sigterm_finishes_requests_in_flight() {
    stops_gracefully_on(libc::SIGTERM);
}

#[test]
fn sigquit_finishes_requests_in_flight() {
    stops_gracefully_on(libc::SIGQUIT);
}

#[test]
fn metrics_are_prometheus_text() {
    let app = DemoApp::start(&["--fail-first", "1"]);
    wait_healthy(&[
        "--url",
        &format!("{}/health/ready", app.url),
        "--interval",
        "20ms",
    ])
    .assert_code(0);
    let metrics = format!("{}/metrics", app.url);
    // Earlier scrapes count as 200s too, so only the 503 count is exact.
    for pattern in [
        r"(?m)^# TYPE http_requests_in_flight gauge$",
        r"(?m)^# TYPE http_requests_total counter$",
        r#"(?m)^http_requests_total\{code="503"\} 1$"#,
        r#"(?m)^http_requests_total\{code="200"\} [1-9][0-9]*$"#,
    ] {
        wait_healthy(&[
            "--url",
            &metrics,
            "--body-regex",
            pattern,
            "--timeout",
            "1s",
        ])
        .assert_code(0);
    }
}
