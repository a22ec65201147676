//! ugw-verify's metrics checks against the text formats Prometheus 3 reads, served by a real
//! loopback HTTP server: an `OpenMetrics` exposition with exemplars, float timestamps, a quoted
//! UTF-8 metric name and `# EOF` (with text after it that must not be read), and a scrape that
//! lists one series twice, which must fail the check rather than be summed.

use crate::kit;

use kit::{Outcome, RawServer, run, tool};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn verify(checks: &Path) -> Outcome {
    let mut cmd = tool("ugw-verify");
    cmd.args(["--checks", checks.to_str().unwrap()]);
    run(cmd)
}

fn checks_file(dir: &Path, checks: &Value) -> PathBuf {
    let path = dir.join("checks.json");
    std::fs::write(&path, checks.to_string()).unwrap();
    path
}

/// A 200 answer carrying `body` as `content_type`.
fn answer(content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn check<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {result:#}"))
}

const OPENMETRICS: &str = "# TYPE app_requests counter\n\
# HELP app_requests Requests answered, by code.\n\
# UNIT app_requests requests\n\
app_requests_total{code=\"200\"} 10 1700000000.250 # {trace_id=\"5f2c0a\"} 1.0 1700000000.125\n\
app_requests_total{code=\"500\"} 2 # {trace_id=\"77e1\",span_id=\"03\"} 1\n\
app_requests_created{code=\"200\"} 1699990000.5\n\
# TYPE app_latency_seconds histogram\n\
app_latency_seconds_bucket{le=\"0.1\"} 6 # {trace_id=\"a1\"} 0.042\n\
app_latency_seconds_bucket{le=\"0.5\"} 9 # {trace_id=\"b2\"} 0.3 1700000000.5\n\
app_latency_seconds_bucket{le=\"+Inf\"} 10\n\
app_latency_seconds_sum 1.9\n\
app_latency_seconds_count 10\n\
# TYPE \"queue.depth\" gauge\n\
{\"queue.depth\",\"queue.name\"=\"mail\"} 3\n\
# EOF\n\
app_requests_total{code=\"200\"} 1000000\n\
this line is { not Prometheus text\n";

#[test]
fn an_openmetrics_scrape_with_exemplars_and_eof_is_read() {
    let server = RawServer::start(&answer(
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        OPENMETRICS,
    ));
    let url = format!("{}metrics", server.url());
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "requests", "type": "metrics", "url": url,
             "assert": ["sum(app_requests_total) == 12", "app_requests_total{code=\"500\"} == 2"]},
            // The sample after `# EOF` would make this true: it must not be read.
            {"name": "after-eof", "type": "metrics", "url": url,
             "assert": ["sum(app_requests_total) > 100"]},
            {"name": "dotted", "type": "metrics", "url": url,
             "assert": ["{\"queue.depth\",\"queue.name\"=\"mail\"} == 3"]},
            {"name": "latency", "type": "metrics", "url": url,
             "histogram": "app_latency_seconds", "quantile": 0.5, "max": "1s", "min_samples": 1},
        ]),
    );
    let out = verify(&file);
    out.assert_code(1);
    let result = out.last_step().result;
    for name in ["requests", "dotted", "latency"] {
        assert_eq!(check(&result, name)["outcome"], "passed", "{result:#}");
    }
    let after = check(&result, "after-eof");
    assert_eq!(after["outcome"], "failed", "{result:#}");
    let why = after["message"].as_str().unwrap();
    assert!(why.contains("is 12"), "{why}");
    assert!(server.requests() >= 4, "each check scraped the server");
}

#[test]
fn a_series_listed_twice_fails_the_check_instead_of_being_summed() {
    let body = "# TYPE jobs_in_flight gauge\n\
                jobs_in_flight{queue=\"mail\"} 5\n\
                jobs_in_flight{queue=\"sms\"} 1\n\
                jobs_in_flight{queue=\"mail\"} 7\n";
    let server = RawServer::start(&answer("text/plain; version=0.0.4", body));
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([
            // 5 + 7 + 1 would pass; the scrape is not one the check can judge.
            {"name": "busy", "type": "metrics", "url": server.url(),
             "assert": ["sum(jobs_in_flight) == 13"]},
        ]),
    );
    let out = verify(&file);
    out.assert_code(1);
    let result = out.last_step().result;
    let busy = check(&result, "busy");
    assert_eq!(busy["outcome"], "failed", "{result:#}");
    let why = busy["message"].as_str().unwrap();
    assert!(why.contains("line 4"), "{why}");
    assert!(why.contains(r#"jobs_in_flight{queue="mail"}"#), "{why}");
    assert!(why.contains("first on line 2"), "{why}");
}
