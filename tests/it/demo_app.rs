//! The demo service itself: what later issues (drain, swap, zero-downtime) rely on. A graceful
//! stop finishes the requests in flight; /metrics speaks Prometheus text.

use crate::kit;

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
    in_flight.join().unwrap().succeeds();
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
    out.succeeds();
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
    .succeeds();
    app.terminate();
}

/// One request by hand: the status, the lower-cased head and the body.
fn exchange(
    app: &DemoApp,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(app.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        app.addr(),
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The load balancer's check follows the flag file; readiness never does.
#[test]
fn health_lb_fails_while_the_flag_file_exists_and_ready_does_not_care() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain");
    let app = DemoApp::start(&["--lb-flag", flag.to_str().unwrap()]);
    assert_eq!(exchange(&app, "GET", "/health/lb", "", "").0, 200);
    std::fs::write(&flag, "").unwrap();
    let (status, _, body) = exchange(&app, "GET", "/health/lb", "", "");
    assert_eq!(
        (status, json(&body)["status"].as_str()),
        (503, Some("draining"))
    );
    assert_eq!(exchange(&app, "GET", "/health/ready", "", "").0, 200);
    std::fs::remove_file(&flag).unwrap();
    assert_eq!(exchange(&app, "GET", "/health/lb", "", "").0, 200);
}

#[test]
fn health_endpoints_want_the_bearer_token_and_others_do_not() {
    let app = DemoApp::start(&["--health-token", "s3cret-t0ken"]);
    for path in ["/health/ready", "/health/live", "/health/lb"] {
        let (status, head, _) = exchange(&app, "GET", path, "", "");
        assert_eq!(status, 401, "{path}");
        assert!(head.contains("www-authenticate: bearer"), "{head}");
        let wrong = exchange(&app, "GET", path, "Authorization: Bearer nope\r\n", "");
        assert_eq!(wrong.0, 401, "{path}");
        let right = exchange(
            &app,
            "GET",
            path,
            "Authorization: Bearer s3cret-t0ken\r\n",
            "",
        );
        assert_eq!(right.0, 200, "{path}");
    }
    assert_eq!(exchange(&app, "GET", "/work", "", "").0, 200);
}

/// Failures are driven by the request count: exactly every third /work fails.
#[test]
fn work_fails_every_kth_request_and_counts_by_code() {
    let app = DemoApp::start(&["--error-every", "3"]);
    let codes: Vec<u16> = (0..9)
        .map(|_| exchange(&app, "GET", "/work?ms=1", "", "").0)
        .collect();
    assert_eq!(codes, [200, 200, 500, 200, 200, 500, 200, 200, 500]);
    assert_eq!(exchange(&app, "GET", "/work?ms=x", "", "").0, 400);
    let text = get(&app, "/metrics");
    assert_eq!(
        sample(&text, r#"http_requests_total{code="500"}"#),
        Some(3),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"http_requests_total{code="200"}"#),
        Some(6),
        "{text}"
    );
}

/// The functional smoke test's resource: create, read back, delete, gone.
#[test]
fn items_are_created_read_and_deleted() {
    let app = DemoApp::start(&[]);
    let (status, head, body) = exchange(
        &app,
        "POST",
        "/items",
        "Content-Type: application/json\r\n",
        r#"{"name":"probe"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let id = json(&body)["id"].as_u64().unwrap();
    assert!(head.contains(&format!("location: /items/{id}")), "{head}");
    let (status, _, body) = exchange(&app, "GET", &format!("/items/{id}"), "", "");
    assert_eq!((status, json(&body)["name"].as_str()), (200, Some("probe")));
    assert_eq!(
        exchange(&app, "DELETE", &format!("/items/{id}"), "", "").0,
        200
    );
    assert_eq!(
        exchange(&app, "GET", &format!("/items/{id}"), "", "").0,
        404
    );
    assert_eq!(
        exchange(&app, "DELETE", &format!("/items/{id}"), "", "").0,
        404
    );
    assert_eq!(exchange(&app, "POST", "/items", "", "[1]").0, 400);
    assert_eq!(exchange(&app, "PUT", "/items", "", "{}").0, 405);
}

/// Scraped through ugw's own Prometheus reader: the histogram sees slow work as slow, the
/// process metrics are there, and `--bloat` shows in the resident memory.
#[test]
fn metrics_have_a_latency_histogram_and_process_figures() {
    use ugw_shared::prometheus::{Selector, scrape};
    let lean = DemoApp::start(&[]);
    let bloated = DemoApp::start(&["--bloat", "64"]);
    for _ in 0..4 {
        assert_eq!(exchange(&lean, "GET", "/work?ms=60", "", "").0, 200);
    }
    let client = ugw_shared::http::HttpClient::new(
        ugw_shared::http::HttpConfig::default(),
        &ugw_shared::scrub::Scrubber::default(),
    )
    .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(5);
    let cancel = ugw_shared::cancel::Cancel::default();
    let lean_scrape = scrape(&client, &format!("{}/metrics", lean.url), until, &cancel).unwrap();
    let work = lean_scrape
        .histogram(&Selector::parse(r#"http_request_duration_seconds{path="/work"}"#).unwrap())
        .unwrap();
    assert!((work.count() - 4.0).abs() < f64::EPSILON, "{work:?}");
    let median = work.quantile(0.5).unwrap();
    assert!(
        (0.05..=0.1).contains(&median),
        "60 ms of work lies in (0.05, 0.1]: {median}"
    );
    let rss = |scrape: &ugw_shared::prometheus::Exposition| {
        scrape
            .sum(&Selector::parse("process_resident_memory_bytes").unwrap())
            .unwrap()
    };
    let bloated_scrape =
        scrape(&client, &format!("{}/metrics", bloated.url), until, &cancel).unwrap();
    assert!(
        rss(&bloated_scrape) > rss(&lean_scrape) + 60.0 * 1024.0 * 1024.0,
        "{} vs {}",
        rss(&bloated_scrape),
        rss(&lean_scrape)
    );
    for name in ["process_cpu_seconds_total", "process_start_time_seconds"] {
        assert!(
            lean_scrape.sum(&Selector::parse(name).unwrap()).is_some(),
            "{name}"
        );
    }
    let missing = scrape(&client, &format!("{}/nothing", lean.url), until, &cancel).unwrap_err();
    assert!(missing.contains("status 404"), "{missing}");
    let not_text = scrape(
        &client,
        &format!("{}/health/live", lean.url),
        until,
        &cancel,
    )
    .unwrap_err();
    assert!(
        not_text.contains("not Prometheus text: line 1"),
        "{not_text}"
    );
}
