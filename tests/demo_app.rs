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

/// GET `path` from the service by hand (a test must not trust the tool it tests to read
/// the figures it checks): the body.
fn get(app: &DemoApp, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(app.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.addr()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    body.to_string()
}

/// The value of the sample `name` (with its labels) in Prometheus text.
fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

#[test]
fn metrics_are_prometheus_text() {
    let app = DemoApp::start(&["--fail-first", "1"]);
    let out = wait_healthy(&[
        "--url",
        &format!("{}/health/ready", app.url),
        "--interval",
        "20ms",
    ]);
    out.assert_code(0);
    assert_eq!(out.wait_result().attempts, 2, "one 503, then the 200");
    let text = get(&app, "/metrics");
    for line in [
        "# TYPE http_requests_in_flight gauge",
        "# TYPE http_requests_total counter",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    // Exactly what the wait sent; the scrape does not count itself, nor is it in flight.
    assert_eq!(
        sample(&text, r#"http_requests_total{code="503"}"#),
        Some(1),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"http_requests_total{code="200"}"#),
        Some(1),
        "{text}"
    );
    assert_eq!(sample(&text, "http_requests_in_flight"), Some(0), "{text}");
    let again = get(&app, "/metrics");
    assert_eq!(
        sample(&again, r#"http_requests_total{code="200"}"#),
        Some(2),
        "{again}"
    );
}

/// A release that reads a new column is not ready until the migration adding it has run, and
/// its 503 says why; the column is checked on every probe, so no restart is needed.
#[test]
fn not_ready_until_the_required_column_exists() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let connection = rusqlite::Connection::open(&db).unwrap();
    connection
        .execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        .unwrap();
    let db_arg = db.to_str().unwrap();
    let args = ["--version-label", "v2.0.0", "--db", db_arg];
    let mut app = DemoApp::start(&[&args[..], &["--require-column", "items.note"]].concat());
    let url = format!("{}/health/ready", app.url);

    let waiting = wait_healthy(&["--url", &url, "--timeout", "1s"]);
    waiting.assert_code(1);
    let target = &waiting.wait_result().targets[0];
    assert_eq!(target.last_status, Some(503), "{target:?}");
    let body = target.body_excerpt.clone().unwrap_or_default();
    assert!(body.contains("missing column items.note"), "{body}");

    connection
        .execute_batch("ALTER TABLE items ADD COLUMN note TEXT")
        .unwrap();
    wait_healthy(&[
        "--url",
        &url,
        "--expect-version",
        "v2.0.0",
        "--timeout",
        "10s",
    ])
    .assert_code(0);
    app.terminate();
}
