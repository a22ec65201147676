//! ugw-verify against the real demo service (several instances, TLS, hung and restarted
//! ones): every check type passing and failing, the checks file's problems, captures and
//! cleanups, parallel checks with their own deadlines, baseline and comparison, and the
//! `JUnit` report as a CI parser reads it.

use crate::kit;

use kit::load::Load;
use kit::{DemoApp, Outcome, free_port, require, run, self_signed, serial, tool, with_stdin};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `ugw-verify ARGS` with stdin from /dev/null (a new record).
fn verify(args: &[&str]) -> Outcome {
    let mut cmd = tool("ugw-verify");
    cmd.args(args);
    run(cmd)
}

/// A checks file in `dir`.
fn checks_file(dir: &Path, checks: &Value) -> PathBuf {
    let path = dir.join("checks.json");
    std::fs::write(&path, checks.to_string()).unwrap();
    path
}

fn result_of(out: &Outcome) -> Value {
    out.last_step().result
}

/// The check named `name` in a verify result.
fn check<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {result:#}"))
}

/// Why the check named `name` did not pass.
fn message<'a>(result: &'a Value, name: &str) -> &'a str {
    check(result, name)["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no message: {result:#}"))
}

fn outcomes(result: &Value) -> Vec<(String, String)> {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
        .collect()
}

#[test]
fn http_checks_pass_and_fail_on_status_jq_regex_and_latency() {
    let app = DemoApp::start(&["--health-token", "tok-3f9a1c77"]);
    let dir = tempfile::tempdir().unwrap();
    let ready = format!("{}/health/ready", app.url);
    let auth = json!({"Authorization": "Bearer ${env:DEMO_TOKEN}"});
    let file = checks_file(
        dir.path(),
        &json!({"checks": [
            {"name": "ready", "type": "http", "url": ready, "headers": auth,
             "expect": [".status == \"ok\""], "body_regex": "\"version\"", "max_latency": "5s"},
            {"name": "no-token", "type": "http", "url": ready},
            {"name": "wrong-version", "type": "http", "url": ready, "headers": auth,
             "expect": [".version == \"v9\""]},
            {"name": "regex", "type": "http", "url": ready, "headers": auth, "body_regex": "^nope$"},
            {"name": "too-slow", "type": "http", "url": format!("{}/slow?ms=300", app.url),
             "max_latency": "100ms"},
        ]}),
    );
    let junit = dir.path().join("junit.xml");
    let mut cmd = tool("ugw-verify");
    cmd.args([
        "--checks",
        file.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ])
    .env("DEMO_TOKEN", "tok-3f9a1c77");
    let out = run(cmd);
    out.assert_code(1);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "check_failed");
    let result = step.result;
    assert_eq!(
        outcomes(&result),
        pairs(&[
            ("ready", "passed"),
            ("no-token", "failed"),
            ("wrong-version", "failed"),
            ("regex", "failed"),
            ("too-slow", "failed"),
        ])
    );
    assert_eq!(result["passed"], 1);
    let why = &step.error.as_ref().unwrap().message;
    assert!(
        why.contains("no-token, wrong-version, regex, too-slow"),
        "{why}"
    );
    assert!(message(&result, "no-token").contains("status 401"));
    assert!(message(&result, "wrong-version").contains(".version == \"v9\"' is not true"));
    assert!(message(&result, "too-slow").contains("over 100 ms"));
    assert_eq!(
        check(&result, "ready")["observed"]
            .as_str()
            .unwrap()
            .split(' ')
            .next(),
        Some("200")
    );
    // The token went to the server and nowhere else.
    let report = std::fs::read_to_string(&junit).unwrap();
    for text in [&out.stdout, &out.stderr, &report] {
        assert!(!text.contains("tok-3f9a1c77"), "{text}");
    }
    out.stderr_has("PASS ready").stderr_has("FAIL too-slow");
}

#[test]
fn flags_make_checks_with_their_own_assertions() {
    let app = DemoApp::start(&["--version-label", "v2.0.0"]);
    let ready = format!("{}/health/ready", app.url);
    let live = format!("{}/health/live", app.url);
    let out = verify(&[
        "--http",
        &ready,
        "--expect",
        ".version == \"v2.0.0\"",
        "--max-latency",
        "5s",
        "--http",
        &live,
        "--status",
        "2xx",
        "--cmd",
        "test -d /",
    ]);
    out.succeeds();
    let result = result_of(&out);
    assert_eq!(
        outcomes(&result),
        pairs(&[
            (&ready, "passed"),
            (&live, "passed"),
            ("test -d /", "passed")
        ])
    );
    assert_eq!(app.requests_settled(), 2);
    // An --expect after the second --http applies to it alone.
    let out = verify(&[
        "--http",
        &ready,
        "--http",
        &live,
        "--expect",
        ".version == \"v9\"",
    ]);
    out.assert_code(1);
    assert_eq!(
        outcomes(&result_of(&out)),
        pairs(&[(&ready, "passed"), (&live, "failed")])
    );
}

#[test]
fn command_checks_judge_exit_stdout_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "ok", "type": "cmd", "command": "echo '{\"rows\": 3}'",
             "stdout_regex": "rows", "expect": [".rows == 3"]},
            {"name": "argv", "type": "cmd", "argv": ["sh", "-c", "exit 3"], "exit": 3},
            {"name": "exit", "type": "cmd", "command": "echo broken >&2; exit 4"},
            {"name": "json", "type": "cmd", "command": "echo '{\"rows\": 2}'", "expect": [".rows == 3"]},
            {"name": "regex", "type": "cmd", "command": "echo 7", "stdout_regex": "^8$"},
        ]),
    );
    let out = verify(&["--checks", file.to_str().unwrap()]);
    out.assert_code(1);
    let result = result_of(&out);
    assert_eq!(
        outcomes(&result),
        pairs(&[
            ("ok", "passed"),
            ("argv", "passed"),
            ("exit", "failed"),
            ("json", "failed"),
            ("regex", "failed"),
        ])
    );
    let exit = check(&result, "exit");
    assert!(
        exit["message"].as_str().unwrap().contains("exit 4")
            && exit["message"].as_str().unwrap().contains("broken")
    );
    assert!(message(&result, "json").contains("it gave false"));
}

#[test]
fn metrics_assertions_sum_selected_series() {
    let app = DemoApp::start(&["--error-every", "2"]);
    for _ in 0..4 {
        assert!(
            verify(&[
                "--http",
                &format!("{}/work?ms=1", app.url),
                "--status",
                "200,500"
            ])
            .code
                == 0
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("{}/metrics", app.url);
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "memory", "type": "metrics", "url": metrics, "assert": ["process_resident_memory_bytes <= 512MiB"]},
            {"name": "two-errors", "type": "metrics", "url": metrics,
             "assert": ["sum(http_requests_total{code=~\"5..\"}) == 2", "http_requests_total{code!=\"500\"} >= 2"]},
            {"name": "no-errors", "type": "metrics", "url": metrics, "assert": ["sum(http_requests_total{code=~\"5..\"}) == 0"]},
            {"name": "absent", "type": "metrics", "url": metrics, "assert": ["no_such_metric > 0"]},
        ]),
    );
    let out = verify(&["--checks", file.to_str().unwrap()]);
    out.assert_code(1);
    let result = result_of(&out);
    assert_eq!(
        outcomes(&result),
        pairs(&[
            ("memory", "passed"),
            ("two-errors", "passed"),
            ("no-errors", "failed"),
            ("absent", "failed")
        ])
    );
    assert!(message(&result, "no-errors").contains("is 2"));
    assert!(message(&result, "absent").contains("no sample"));
}

#[test]
fn a_tls_check_reads_days_left_and_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let app = DemoApp::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let port: u16 = app.addr().rsplit_once(':').unwrap().1.parse().unwrap();
    let cacert = cert.to_str().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "cert", "type": "tls", "host": "127.0.0.1", "port": port, "cacert": cacert},
            {"name": "by-name", "type": "tls", "host": "127.0.0.1", "port": port, "server_name": "localhost", "cacert": cacert},
            {"name": "expiring", "type": "tls", "host": "127.0.0.1", "port": port, "cacert": cacert, "min_days": 10_000_000},
            {"name": "wrong-name", "type": "tls", "host": "127.0.0.1", "port": port, "server_name": "app.example.com", "cacert": cacert},
            {"name": "untrusted", "type": "tls", "host": "127.0.0.1", "port": port},
        ]),
    );
    let out = verify(&["--checks", file.to_str().unwrap()]);
    out.assert_code(1);
    let result = result_of(&out);
    assert_eq!(
        outcomes(&result),
        pairs(&[
            ("cert", "passed"),
            ("by-name", "passed"),
            ("expiring", "failed"),
            ("wrong-name", "failed"),
            ("untrusted", "failed")
        ])
    );
    // rcgen's certificates last until 4096.
    let observed = check(&result, "cert")["observed"]
        .as_str()
        .unwrap()
        .to_string();
    let days: i64 = observed.split(' ').next().unwrap().parse().unwrap();
    assert!(days > 365 * 1000, "{observed}");
    assert!(observed.contains("127.0.0.1") && observed.contains("localhost"));
    assert!(message(&result, "expiring").contains("fewer than 10000000"));
    assert!(message(&result, "wrong-name").contains("not valid for app.example.com"));
    assert!(message(&result, "untrusted").contains("not trusted"));
}

#[test]
fn versions_across_three_nodes_find_the_one_that_lags() {
    let nodes = [
        DemoApp::start(&["--version-label", "v2.0.0"]),
        DemoApp::start(&["--version-label", "2.0.0"]),
        DemoApp::start(&["--version-label", "v1.9.0"]),
    ];
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| format!("{}/health/ready", n.url))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "fleet", "type": "versions", "urls": urls},
            {"name": "first-two", "type": "versions", "urls": urls[..2], "expect": "same"},
            {"name": "all-same", "type": "versions", "urls": urls, "expect": "same"},
        ]),
    );
    // The expected version comes from the ugw-fetch step of the record.
    let mut cmd = tool("ugw-verify");
    cmd.args(["--checks", file.to_str().unwrap()]);
    let out = with_stdin(cmd, &kit::fetch_record("v2.0.0"));
    out.assert_code(1);
    let result = result_of(&out);
    assert_eq!(
        outcomes(&result),
        pairs(&[
            ("fleet", "failed"),
            ("first-two", "passed"),
            ("all-same", "failed")
        ])
    );
    let why = message(&result, "fleet").to_string();
    assert!(
        why.contains(&format!("{} is at v1.9.0, not v2.0.0", urls[2])),
        "{why}"
    );
    assert!(
        !why.contains(&urls[0]) && !why.contains(&urls[1]),
        "v2.0.0 = 2.0.0: {why}"
    );
    // Without a fetch step and without expect, a versions check cannot know what to expect.
    let out = verify(&["--checks", file.to_str().unwrap()]);
    out.assert_code(2);
    assert!(
        out.last_step()
            .error
            .unwrap()
            .message
            .contains("$[0].expect")
    );
}

#[test]
fn an_invalid_checks_file_names_the_json_path_and_runs_nothing() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let ready = format!("{}/health/ready", app.url);
    for (checks, path) in [
        (
            json!({"checks": [{"name": "a", "type": "http", "url": ready}, {"name": "b", "type": "http", "url": ready, "timeout": "soon"}]}),
            "$.checks[1].timeout",
        ),
        (
            json!({"checks": [{"name": "a", "type": "http", "url": ready, "expect": [".status =="]}]}),
            "$.checks[0].expect[0]",
        ),
        (
            json!({"checks": [{"name": "a", "type": "http", "url": ready, "satus": 200}]}),
            "$.checks[0].satus: unknown field",
        ),
        (
            json!({"checks": [{"name": "a", "type": "http", "url": ready, "after": ["zz"]}]}),
            "$.checks[0].after[0]: no check is named 'zz'",
        ),
        (
            json!({"checks": [{"name": "a", "type": "http", "url": "127.0.0.1/x"}]}),
            "$.checks[0]: '127.0.0.1/x' has no scheme",
        ),
    ] {
        refused_naming(&checks_file(dir.path(), &checks), path);
    }
    assert_eq!(app.requests_settled(), 0, "nothing was attempted");
}

#[test]
fn a_captured_id_is_read_back_and_deleted_and_the_cleanup_runs_after_a_failure() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let items = format!("{}/items", app.url);
    let make = |read_expect: &str| {
        json!({"checks": [
            {"name": "create", "type": "http", "method": "POST", "url": items, "body": {"name": "smoke"},
             "status": 201, "capture": {"item": ".id"}},
            {"name": "read", "type": "http", "url": format!("{items}/${{capture:item}}"), "expect": [read_expect]},
            {"name": "after-read", "type": "cmd", "command": "true", "after": ["read"]},
            {"name": "delete", "type": "http", "method": "DELETE", "url": format!("{items}/${{capture:item}}"),
             "status": "2xx", "after": ["read"], "always": true},
            {"name": "gone", "type": "http", "url": format!("{items}/${{capture:item}}"), "status": 404, "after": ["delete"]},
        ]})
    };
    let file = checks_file(dir.path(), &make(".name == \"smoke\""));
    let out = verify(&["--checks", file.to_str().unwrap()]);
    out.succeeds();
    let result = result_of(&out);
    assert_eq!(check(&result, "create")["captured"], json!(["item"]));
    let log = app.log();
    let created: Vec<&str> = log.lines().filter(|l| l.contains("POST /items")).collect();
    assert_eq!(created.len(), 1, "{log}");
    let deleted: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("DELETE /items/"))
        .collect();
    assert_eq!(deleted.len(), 1, "{log}");
    // The id the server gave is the one read back and deleted (the ids count from 1).
    let reads = log.lines().filter(|l| l.contains("GET /items/1")).count();
    assert_eq!(reads, 2, "read, and seen gone after the delete: {log}");
    assert!(deleted[0].ends_with("DELETE /items/1"), "{log}");

    // A read that fails: its dependant is skipped, the cleanup marked always still runs.
    let file = checks_file(dir.path(), &make(".name == \"other\""));
    let out = verify(&["--checks", file.to_str().unwrap()]);
    out.assert_code(1);
    assert_eq!(
        outcomes(&result_of(&out)),
        pairs(&[
            ("create", "passed"),
            ("read", "failed"),
            ("after-read", "skipped"),
            ("delete", "passed"),
            ("gone", "passed")
        ])
    );
    assert!(
        app.log().lines().any(|l| l.ends_with("DELETE /items/2")),
        "{}",
        app.log()
    );
}

#[test]
fn parallel_checks_keep_their_own_deadlines_around_a_hung_one() {
    let _serial = serial();
    let hung = DemoApp::start(&["--hang"]);
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "hung", "type": "http", "url": format!("{}/health/ready", hung.url), "timeout": "1500ms"},
            {"name": "ready", "type": "http", "url": format!("{}/health/ready", app.url)},
            {"name": "live", "type": "http", "url": format!("{}/health/live", app.url)},
            {"name": "cmd", "type": "cmd", "command": "true"},
        ]),
    );
    let out = verify(&["--checks", file.to_str().unwrap(), "--parallel", "4"]);
    out.assert_code(1);
    let result = result_of(&out);
    assert_eq!(
        outcomes(&result),
        pairs(&[
            ("hung", "failed"),
            ("ready", "passed"),
            ("live", "passed"),
            ("cmd", "passed")
        ])
    );
    let hung_check = check(&result, "hung");
    assert!(
        hung_check["message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{hung_check}"
    );
    let hung_ms = hung_check["elapsed_ms"].as_u64().unwrap();
    assert!(
        (1500..2500).contains(&hung_ms),
        "its own deadline: {hung_ms} ms"
    );
    for name in ["ready", "live", "cmd"] {
        let ms = check(&result, name)["elapsed_ms"].as_u64().unwrap();
        assert!(
            ms < hung_ms,
            "{name} did not wait for the hung check: {ms} ms"
        );
    }
    assert!(out.took() < Duration::from_secs(4), "{:?}", out.took());
}

#[test]
fn a_latency_check_runs_alone() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut checks = vec![
        json!({"name": "latency", "type": "http", "url": format!("{}/health/live", app.url),
                                  "samples": 30, "p95": "2s"}),
    ];
    for n in 0..6 {
        checks.push(json!({"name": format!("echo-{n}"), "type": "http", "url": format!("{}/debug/echo", app.url)}));
    }
    let file = checks_file(dir.path(), &Value::Array(checks));
    let out = verify(&["--checks", file.to_str().unwrap(), "--parallel", "8"]);
    out.succeeds();
    assert_eq!(
        check(&result_of(&out), "latency")["observation"]["requests"],
        30
    );
    app.requests_settled();
    let paths: Vec<String> = app
        .log()
        .lines()
        .filter(|l| l.contains(": request "))
        .map(|l| l.rsplit(' ').next().unwrap().to_string())
        .collect();
    let first = paths.iter().position(|p| p == "/health/live").unwrap();
    assert!(
        paths[first..first + 30].iter().all(|p| p == "/health/live"),
        "the 30 samples are not interleaved with other checks: {paths:?}"
    );
}

#[test]
fn too_few_samples_is_insufficient_data_never_a_pass() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([
            // 25 requests of 100 ms each, cut at 1 s: about 10 answered, fewer than 20.
            {"name": "five", "type": "http", "url": format!("{}/slow?ms=100", app.url), "samples": 25,
             "p95": "10s", "timeout": "1s"},
            {"name": "quiet", "type": "metrics", "url": format!("{}/metrics", app.url), "window": "300ms",
             "measure": ["latency", "errors"]},
        ]),
    );
    let out = verify(&["--checks", file.to_str().unwrap()]);
    out.assert_code(1);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "insufficient_data");
    assert_eq!(
        outcomes(&step.result),
        pairs(&[
            ("five", "insufficient_data"),
            ("quiet", "insufficient_data")
        ])
    );
    let why = message(&step.result, "five");
    assert!(why.contains("answered requests, fewer than 20"), "{why}");
}

#[test]
fn junit_output_parses_as_one_testcase_per_check() {
    if !require("python3") {
        return;
    }
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "ready <&>", "type": "http", "url": format!("{}/health/ready", app.url)},
            {"name": "fails", "type": "cmd", "command": "echo '<oops>' >&2; exit 1"},
            {"name": "skipped", "type": "cmd", "command": "true", "after": ["fails"]},
        ]),
    );
    let junit = dir.path().join("junit.xml");
    let out = verify(&[
        "--checks",
        file.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    out.assert_code(1);
    let parse = r#"
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suite = root.find("testsuite")
cases = [{"name": c.get("name"), "classname": c.get("classname"),
          "failure": c.find("failure").get("message") if c.find("failure") is not None else None,
          "skipped": c.find("skipped") is not None} for c in suite.findall("testcase")]
print(json.dumps({"tests": suite.get("tests"), "failures": suite.get("failures"), "skipped": suite.get("skipped"), "cases": cases}))
"#;
    let mut python = std::process::Command::new("python3");
    python.args(["-c", parse, junit.to_str().unwrap()]);
    let parsed = run(python);
    parsed.succeeds();
    let report: Value = serde_json::from_str(&parsed.stdout).unwrap();
    assert_eq!(
        (
            report["tests"].as_str(),
            report["failures"].as_str(),
            report["skipped"].as_str()
        ),
        (Some("3"), Some("1"), Some("1"))
    );
    let cases = report["cases"].as_array().unwrap();
    assert_eq!(cases[0]["name"], "ready <&>");
    assert_eq!(cases[0]["classname"], "ugw-verify.http");
    assert_eq!(cases[0]["failure"], Value::Null);
    assert!(
        cases[1]["failure"].as_str().unwrap().contains("<oops>"),
        "{report}"
    );
    assert_eq!(cases[2]["skipped"], true);
}

// ---- baseline and comparison ----

/// Below this, a p95 growth is not judged in these tests (see `Node::compare`); the slow
/// release is slower by more than twice this.
const LATENCY_FLOOR: &str = "25ms";

/// The node of the comparison tests: always on the same port, so one checks file serves the
/// release before and after (a restart is a new process on the same port).
struct Node {
    port: u16,
    dir: tempfile::TempDir,
    record: PathBuf,
    file: PathBuf,
}

impl Node {
    fn new() -> Node {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let file = checks_file(
            dir.path(),
            &json!([
                {"name": "latency", "type": "http", "url": format!("{url}/work?ms=2"), "samples": 100,
                 "p95": "10s", "max_errors": 1000},
                {"name": "server", "type": "metrics", "url": format!("{url}/metrics"), "window": "2s",
                 "measure": ["latency", "errors", "memory"]},
            ]),
        );
        Node {
            port,
            record: dir.path().join("record.json"),
            dir,
            file,
        }
    }

    fn start(&self, args: &[&str]) -> DemoApp {
        let listen = format!("127.0.0.1:{}", self.port);
        DemoApp::start(&[&["--listen", listen.as_str()], args].concat())
    }

    /// Traffic on /work for the metrics window, as real users would send it.
    fn load(&self) -> Load {
        Load::start(
            &format!("http://127.0.0.1:{}/work?ms=2", self.port),
            40,
            Duration::from_secs(20),
        )
    }

    fn baseline(&self) -> Outcome {
        let _load = self.load();
        verify(&[
            "baseline",
            "--checks",
            self.file.to_str().unwrap(),
            "--record",
            self.record.to_str().unwrap(),
            "--new",
        ])
    }

    /// A compare on a copy of the record that holds the baseline: each starts from it (a
    /// failed compare would make the next one skip). The latency floor is this shared test
    /// machine's: its p95 jitters by tens of milliseconds while other tests run.
    fn compare(&self) -> Outcome {
        let _load = self.load();
        let copy = self.fresh_record();
        verify(&[
            "--checks",
            self.file.to_str().unwrap(),
            "--compare",
            "--record",
            copy.to_str().unwrap(),
            "--latency-floor",
            LATENCY_FLOOR,
        ])
    }

    fn fresh_record(&self) -> PathBuf {
        let copy = self.dir.path().join("compare.json");
        std::fs::copy(&self.record, &copy).unwrap();
        copy
    }
}

/// The comparison rows as (check, measure, outcome).
fn rows(result: &Value) -> Vec<(String, String, String)> {
    result["comparison"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("check"), s("measure"), s("outcome"))
        })
        .collect()
}

fn failed_rows(result: &Value) -> Vec<(String, String)> {
    rows(result)
        .into_iter()
        .filter(|(_, _, o)| o != "passed")
        .map(|(c, m, _)| (c, m))
        .collect()
}

/// The baseline of v1, taken and checked.
fn baseline_of_v1(node: &Node) -> Value {
    let v1 = node.start(&["--version-label", "v1.0.0"]);
    let out = node.baseline();
    out.succeeds();
    let result = result_of(&out);
    assert_eq!(result["mode"], "baseline");
    let latency = &result["baseline"]["checks"]["latency"];
    assert_eq!(latency["requests"], 100);
    let server = &result["baseline"]["checks"]["server"];
    assert!(
        server["requests"].as_u64().unwrap() >= 40,
        "the load was seen: {server}"
    );
    assert_eq!(server["error_ratio"], 0.0);
    assert!(server["memory_bytes"].as_f64().unwrap() > 0.0);
    drop(v1);
    result
}

#[test]
fn compare_passes_on_a_healthy_v2_and_fails_on_a_slow_one() {
    let _serial = serial();
    let node = Node::new();
    let baseline = baseline_of_v1(&node);
    let base_p95 = baseline["baseline"]["checks"]["latency"]["p95_ms"]
        .as_f64()
        .unwrap();
    let healthy = {
        let _v2 = node.start(&["--version-label", "v2.0.0"]);
        node.compare()
    };
    healthy.succeeds();
    let result = result_of(&healthy);
    assert_eq!(
        rows(&result)
            .iter()
            .map(|(c, m, o)| format!("{c} {m} {o}"))
            .collect::<Vec<_>>(),
        [
            "latency p95_ms passed",
            "latency error_ratio passed",
            "server p95_ms passed",
            "server error_ratio passed",
            "server memory_bytes passed"
        ]
    );
    // The machine's noise: how far the same release's p95 moved, and at least its p95 itself.
    let healthy_p95 = check(&result, "latency")["observation"]["p95_ms"]
        .as_f64()
        .unwrap();
    let noise = (healthy_p95 - base_p95).abs().max(base_p95);
    let delay_ms = (noise * 10.0).max(50.0).ceil() as u64;
    assert!(delay_ms >= 2 * 25, "the delay is past the floor");
    eprintln!("noise {noise:.1} ms (p95 {base_p95:.1} then {healthy_p95:.1}); --slow {delay_ms}ms");
    let slow = {
        let _v2 = node.start(&[
            "--version-label",
            "v2.0.0",
            "--slow",
            &format!("{delay_ms}ms"),
        ]);
        node.compare()
    };
    slow.assert_code(1);
    let step = slow.last_step();
    assert_eq!(step.error_kind(), "check_failed");
    let result = step.result;
    assert!(
        failed_rows(&result).contains(&("latency".into(), "p95_ms".into())),
        "{result:#}"
    );
    let row = result["comparison"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "latency" && r["measure"] == "p95_ms")
        .unwrap();
    assert!(row["current"].as_f64().unwrap() >= delay_ms as f64, "{row}");
    assert!(message(&result, "latency").contains("worse than the baseline"));
}

#[test]
fn compare_fails_on_a_rising_error_ratio_and_on_bloat() {
    let _serial = serial();
    let node = Node::new();
    baseline_of_v1(&node);
    let erroring = {
        // Every 10th /work request fails: 10 percentage points, far over 0.1.
        let _v2 = node.start(&["--error-every", "10"]);
        node.compare()
    };
    erroring.assert_code(1);
    let result = result_of(&erroring);
    assert_eq!(
        failed_rows(&result),
        [
            ("latency".into(), "error_ratio".into()),
            ("server".into(), "error_ratio".into())
        ],
        "{result:#}"
    );
    let ratio = check(&result, "server")["observation"]["error_ratio"]
        .as_f64()
        .unwrap();
    assert!((0.05..=0.15).contains(&ratio), "about one in ten: {ratio}");
    let bloated = {
        let _v2 = node.start(&["--bloat", "96"]);
        node.compare()
    };
    bloated.assert_code(1);
    let result = result_of(&bloated);
    assert_eq!(
        failed_rows(&result),
        [("server".into(), "memory_bytes".into())],
        "{result:#}"
    );
    let memory = check(&result, "server")["observation"]["memory_bytes"]
        .as_f64()
        .unwrap();
    assert!(memory >= 96.0 * 1024.0 * 1024.0, "{memory}");
}

#[test]
fn a_restart_in_the_window_is_a_counter_reset_not_a_negative_rate() {
    let _serial = serial();
    let node = Node::new();
    baseline_of_v1(&node);
    let mut v2 = node.start(&["--version-label", "v2.0.0"]);
    let _load = node.load();
    // Enough requests on the first process that a restart makes its counters go down.
    assert!(v2.wait_for_requests(200, Duration::from_secs(15)));
    let copy = node.fresh_record();
    let mut cmd = tool("ugw-verify");
    cmd.args([
        "--checks",
        node.file.to_str().unwrap(),
        "--compare",
        "--record",
        copy.to_str().unwrap(),
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let child = cmd.spawn().unwrap();
    // The first scrape of the window, then a new process on the same port.
    assert!(
        kit::eventually(Duration::from_secs(10), || v2
            .log()
            .contains("GET /metrics")),
        "{}",
        v2.log()
    );
    v2.terminate();
    let v2b = node.start(&["--version-label", "v2.0.0"]);
    let output = kit::wait_bounded(child, Duration::from_secs(60));
    assert!(started.elapsed() >= Duration::from_secs(2));
    let record = kit::parse_record(&String::from_utf8_lossy(&output.stdout));
    let step = record.steps.last().unwrap();
    assert_eq!(
        step.status,
        "ok",
        "{:#?}\n{}",
        step,
        String::from_utf8_lossy(&output.stderr)
    );
    let server = &check(&step.result, "server")["observation"];
    assert_eq!(server["counter_reset"], true, "{server}");
    let ratio = server["error_ratio"].as_f64().unwrap();
    assert!((0.0..=0.001).contains(&ratio), "{ratio}");
    assert!(server["requests"].as_u64().unwrap() > 0);
    assert!(v2b.requests() > 0);
}

#[test]
fn a_signal_stops_a_check_window_at_once_with_the_record_written() {
    let _serial = serial();
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([{"name": "server", "type": "metrics", "url": format!("{}/metrics", app.url),
                 "window": "30s", "measure": ["memory"]}]),
    );
    let mut cmd = tool("ugw-verify");
    cmd.args(["--checks", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    assert!(
        app.wait_for_requests(1, Duration::from_secs(10)),
        "the window began"
    );
    let (code, record) = kit::interrupt(child, libc::SIGTERM);
    assert_eq!(code, Some(143));
    let step = record.steps.last().unwrap();
    assert_eq!(
        (step.status.as_str(), step.error_kind()),
        ("interrupted", "interrupted")
    );
}

#[test]
fn a_comparison_without_a_baseline_runs_nothing_and_a_dry_run_sends_nothing() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([{"name": "latency", "type": "http", "url": format!("{}/health/live", app.url), "samples": 20}]),
    );
    let out = verify(&["--checks", file.to_str().unwrap(), "--compare"]);
    out.assert_code(2);
    assert!(
        out.last_step()
            .error
            .unwrap()
            .message
            .contains("no ok `ugw-verify baseline` step")
    );
    let out = verify(&["--checks", file.to_str().unwrap(), "--dry-run"]);
    out.succeeds();
    assert_eq!(result_of(&out)["would_run"], json!(["latency"]));
    // A dry run after a dry-run baseline has nothing to compare with yet, and says so.
    let out = verify(&["--checks", file.to_str().unwrap(), "--compare", "--dry-run"]);
    out.succeeds();
    assert_eq!(result_of(&out)["compare"], false);
    out.stderr_has("no ok `ugw-verify baseline` step");
    assert_eq!(app.requests_settled(), 0);
    // A baseline kept in a file serves a comparison as well as one in the record.
    let saved = dir.path().join("baseline.json");
    let out = verify(&[
        "baseline",
        "--checks",
        file.to_str().unwrap(),
        "--save",
        saved.to_str().unwrap(),
    ]);
    out.succeeds();
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(kept["checks"]["latency"]["requests"], 20);
    let out = verify(&[
        "--checks",
        file.to_str().unwrap(),
        "--compare",
        "--baseline",
        saved.to_str().unwrap(),
        // How latency is judged is the comparison tests' business; here only where the
        // baseline comes from.
        "--latency-floor",
        "10s",
    ]);
    out.succeeds();
    assert_eq!(rows(&result_of(&out))[0].0, "latency");
}

#[test]
fn a_histogram_quantile_is_read_from_the_buckets_of_the_window() {
    let _serial = serial();
    let app = DemoApp::start(&[]);
    // Traffic before the window must not count: fast requests first, slow ones in the window.
    let fast = Load::start(
        &format!("{}/work?ms=1", app.url),
        100,
        Duration::from_secs(10),
    );
    assert!(app.wait_for_requests(150, Duration::from_secs(10)));
    drop(fast);
    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("{}/metrics", app.url);
    let histogram = "http_request_duration_seconds{path=\"/work\"}";
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "within", "type": "metrics", "url": metrics, "window": "1500ms",
             "histogram": histogram, "quantile": 0.95, "max": "1s"},
            {"name": "over", "type": "metrics", "url": metrics, "window": "1500ms",
             "histogram": histogram, "quantile": 0.5, "max": "10ms"},
        ]),
    );
    let _slow = Load::start(
        &format!("{}/work?ms=30", app.url),
        40,
        Duration::from_secs(10),
    );
    let out = verify(&["--checks", file.to_str().unwrap()]);
    out.assert_code(1);
    let result = result_of(&out);
    assert_eq!(
        outcomes(&result),
        pairs(&[("within", "passed"), ("over", "failed")])
    );
    // The median of the window is a 30 ms request (in the 25-50 ms bucket), not the fast
    // ones before it.
    let why = message(&result, "over");
    let ms: f64 = why
        .split("is ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((25.0..=50.0).contains(&ms), "{why}");
}

#[test]
fn record_checks_assert_on_what_the_steps_before_did() {
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "verified", "type": "record",
             "expect": [".steps[-1].tool == \"ugw-fetch\"", ".steps[-1].result.verified"]},
            {"name": "version", "type": "record", "expect": [".steps[-1].result.version == \"v9\""]},
        ]),
    );
    let mut cmd = tool("ugw-verify");
    cmd.args(["--checks", file.to_str().unwrap()]);
    let out = with_stdin(cmd, &kit::fetch_record("v2.0.0"));
    out.assert_code(1);
    let result = result_of(&out);
    assert_eq!(
        outcomes(&result),
        pairs(&[("verified", "passed"), ("version", "failed")])
    );
    assert!(message(&result, "version").contains("it gave false"));
    assert_eq!(out.record().steps.len(), 2, "the fetch step, then ours");
}

#[test]
fn a_captured_value_sent_in_a_secret_header_is_never_shown() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "login", "type": "http", "method": "POST", "url": format!("{}/items", app.url),
             "body": {"token": "captured-secret-4b1d9e"}, "status": 201, "capture": {"key": ".token"}},
            // A jq output that is the header's value itself, quoted in the failure message.
            {"name": "use", "type": "http", "url": format!("{}/debug/echo", app.url),
             "headers": {"X-Api-Key": "${capture:key}"}, "expect": [".headers[\"x-api-key\"]"]},
        ]),
    );
    let out = verify(&["--checks", file.to_str().unwrap()]);
    out.assert_code(1);
    let result = result_of(&out);
    assert!(
        message(&result, "use").contains("it gave \"***\""),
        "{result:#}"
    );
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains("captured-secret-4b1d9e"), "{text}");
    }
}

/// A metrics endpoint behind a token: the check's own headers reach the scrape (a token from
/// the environment, never shown), and without them the check fails on the 401.
#[test]
fn a_metrics_check_sends_its_headers_to_an_endpoint_behind_a_token() {
    let token = "scrape-token-8c2f71";
    let app = DemoApp::start(&["--metrics-token", token]);
    let dir = tempfile::tempdir().unwrap();
    let metrics = format!("{}/metrics", app.url);
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "with-token", "type": "metrics", "url": metrics,
             "headers": {"Authorization": "Bearer ${env:SCRAPE_TOKEN}"},
             "assert": ["process_resident_memory_bytes <= 512MiB"]},
            {"name": "without", "type": "metrics", "url": metrics,
             "assert": ["process_resident_memory_bytes <= 512MiB"]},
        ]),
    );
    let mut cmd = tool("ugw-verify");
    cmd.args(["--checks", file.to_str().unwrap()])
        .env("SCRAPE_TOKEN", token);
    let out = run(cmd);
    out.assert_code(1);
    let result = result_of(&out);
    assert_eq!(
        outcomes(&result),
        pairs(&[("with-token", "passed"), ("without", "failed")])
    );
    assert!(message(&result, "without").contains("401"), "{result:#}");
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(token), "{text}");
    }
}

// ---- issue 16: what a check shows, and what it trusts ----

/// Every `${env:…}` value in a header is a secret, whatever the header is called: echoed back
/// by the server, it is masked in the record, on stderr and in the `JUnit` file.
#[test]
fn an_env_value_in_a_header_not_named_like_a_secret_is_never_shown() {
    let signature = "sig-77d0c3a9e1";
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "signed", "type": "http", "url": format!("{}/debug/echo", app.url),
             "headers": {"X-Signature": "${env:SIGNATURE}"},
             // A jq output that is the header's value itself, quoted in the failure message.
             "expect": [".headers[\"x-signature\"]"]},
        ]),
    );
    let junit = dir.path().join("junit.xml");
    let mut cmd = tool("ugw-verify");
    cmd.args([
        "--checks",
        file.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ])
    .env("SIGNATURE", signature);
    let out = run(cmd);
    out.assert_code(1);
    let result = result_of(&out);
    // The server saw it (the check quotes the echo), and the quote is masked.
    assert!(
        message(&result, "signed").contains("it gave \"***\""),
        "{result:#}"
    );
    let report = std::fs::read_to_string(&junit).unwrap();
    for text in [&out.stdout, &out.stderr, &report] {
        assert!(!text.contains(signature), "{text}");
    }
}

/// A real TCP server on 127.0.0.1:0 that answers its n-th connection with the n-th of its
/// answers (the last one from then on): `None` closes the connection unanswered. It plays a
/// service that refuses every other request, and a metrics endpoint whose two scrapes differ.
struct Scripted {
    addr: std::net::SocketAddr,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Scripted {
    fn start(answers: Vec<Option<Vec<u8>>>) -> Scripted {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&served);
        // The thread ends with the test process; its port is never reused by this test.
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { continue };
                let answer = answers[n.min(answers.len() - 1)].clone();
                counter.fetch_add(1, Ordering::SeqCst);
                let Some(answer) = answer else {
                    drop(stream);
                    continue;
                };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut chunk = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk) {
                        Ok(n @ 1..) => head.extend_from_slice(&chunk[..n]),
                        _ => break,
                    }
                }
                let _ = stream.write_all(&answer);
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        });
        Scripted { addr, served }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn connections(&self) -> usize {
        self.served.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// An HTTP/1.1 answer with `body`, closing the connection.
fn answer(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
}

/// 20 answered and 20 refused requests: half of what was sent failed, an error ratio of 0.5
/// (errors over every request sent), not 20 errors over 20 answers.
#[test]
fn the_samples_error_ratio_is_errors_over_every_request_sent() {
    let ok = Some(answer("200 OK", "text/plain", "ok"));
    let mut answers = Vec::new();
    for _ in 0..20 {
        answers.push(ok.clone());
        answers.push(None);
    }
    answers.push(ok);
    let server = Scripted::start(answers);
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([{"name": "half", "type": "http", "url": server.url("/"), "samples": 40,
                 "max_errors": 1000}]),
    );
    let out = verify(&["--checks", file.to_str().unwrap()]);
    out.succeeds();
    let result = result_of(&out);
    let o = &check(&result, "half")["observation"];
    assert_eq!(
        (o["requests"].as_u64(), o["errors"].as_u64()),
        (Some(20), Some(20)),
        "{o}"
    );
    assert_eq!(o["error_ratio"].as_f64(), Some(0.5), "{o}");
    assert_eq!(server.connections(), 40);
}

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// A resident memory of NaN, and a histogram with a NaN bucket: neither is a figure, so
/// neither check passes; the comparison is `insufficient_data`, never `"current": null,
/// "outcome": "passed"`.
#[test]
fn a_figure_that_is_not_a_number_is_insufficient_data_never_a_pass() {
    let good = "process_resident_memory_bytes 10485760\n";
    let nan = "process_resident_memory_bytes NaN\n\
        http_request_duration_seconds_bucket{le=\"0.1\"} NaN\n\
        http_request_duration_seconds_bucket{le=\"0.5\"} 100\n\
        http_request_duration_seconds_bucket{le=\"+Inf\"} 100\n\
        http_request_duration_seconds_count 100\n";
    let server = Scripted::start(vec![
        Some(answer("200 OK", PROMETHEUS_TEXT, good)),
        Some(answer("200 OK", PROMETHEUS_TEXT, nan)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let metrics = server.url("/metrics");
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "server", "type": "metrics", "url": metrics, "measure": ["memory"]},
            {"name": "latency", "type": "metrics", "url": metrics,
             "histogram": "http_request_duration_seconds", "max": "1s"},
        ]),
    );
    let saved = dir.path().join("baseline.json");
    let out = verify(&[
        "baseline",
        "--checks",
        file.to_str().unwrap(),
        "--save",
        saved.to_str().unwrap(),
    ]);
    out.succeeds();
    let out = verify(&[
        "--checks",
        file.to_str().unwrap(),
        "--compare",
        "--baseline",
        saved.to_str().unwrap(),
    ]);
    out.assert_code(1);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "insufficient_data", "{:#}", step.result);
    assert_eq!(
        outcomes(&step.result),
        pairs(&[
            ("server", "insufficient_data"),
            ("latency", "insufficient_data")
        ])
    );
    assert!(
        step.result["comparison"]
            .as_array()
            .is_none_or(|rows| !rows.iter().any(|r| r["outcome"] == "passed")),
        "{:#}",
        step.result
    );
    assert!(
        message(&step.result, "server").contains("NaN"),
        "{:#}",
        step.result
    );
}

/// The 5xx series fell (it was reset) while the total rose: its growth is counted from the
/// reset, series by series, so the ratio is 90 of 130, within 0..1, never 90 of 30 (300%).
#[test]
fn a_counter_that_falls_is_a_reset_of_its_own_series() {
    let first = "http_requests_total{code=\"200\"} 10\nhttp_requests_total{code=\"500\"} 100\n";
    let last = "http_requests_total{code=\"200\"} 50\nhttp_requests_total{code=\"500\"} 90\n";
    let server = Scripted::start(vec![
        Some(answer("200 OK", PROMETHEUS_TEXT, first)),
        Some(answer("200 OK", PROMETHEUS_TEXT, last)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([{"name": "server", "type": "metrics", "url": server.url("/metrics"),
                 "window": "200ms", "measure": ["errors"]}]),
    );
    let out = verify(&["--checks", file.to_str().unwrap()]);
    out.succeeds();
    let result = result_of(&out);
    let o = &check(&result, "server")["observation"];
    assert_eq!(
        (o["requests"].as_u64(), o["errors"].as_u64()),
        (Some(130), Some(90)),
        "{o}"
    );
    let ratio = o["error_ratio"].as_f64().unwrap();
    assert!((ratio - 90.0 / 130.0).abs() < 1e-9, "{o}");
}

/// What the checks file can never mean is refused when it is read (exit 2, naming the JSON
/// path), before any request: a check reading its own capture, running after itself, a key
/// given twice, one name captured by two checks, fewer samples than it needs to judge.
#[test]
fn a_checks_file_that_cannot_mean_one_thing_is_refused_before_any_request() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let items = format!("{}/items", app.url);
    let ready = format!("{}/health/ready", app.url);
    let create = |name: &str, capture: &str| {
        json!({"name": name, "type": "http", "method": "POST", "url": items,
               "body": {"name": "smoke"}, "status": 201, "capture": {capture: ".id"}})
    };
    let cases = [
        (
            json!([{"name": "self", "type": "http", "url": format!("{items}/${{capture:id}}"),
                    "capture": {"id": ".id"}}])
            .to_string(),
            "$[0]: ${capture:id}: 'self' reads the value it captures itself",
        ),
        (
            json!([{"name": "a", "type": "http", "url": ready, "after": ["a"]}]).to_string(),
            "$[0].after[0]: 'a' is this check itself",
        ),
        (
            format!(
                r#"{{"checks": [{{"name": "a", "type": "http", "url": "{ready}", "expect": [".status == \"ok\""], "expect": [".version == \"v9\""]}}]}}"#
            ),
            "$.checks[0].expect: the key is given twice",
        ),
        (
            json!([create("one", "id"), create("two", "id"),
                   {"name": "read", "type": "http", "url": format!("{items}/${{capture:id}}")}])
            .to_string(),
            "$[1].capture.id: 'id' is captured by",
        ),
        (
            json!([{"name": "few", "type": "http", "url": ready, "samples": 5}]).to_string(),
            "$[0].samples: 5 requests are fewer than min_samples (20)",
        ),
    ];
    for (text, path) in cases {
        let file = dir.path().join("checks.json");
        std::fs::write(&file, &text).unwrap();
        refused_naming(&file, path);
    }
    assert_eq!(app.requests_settled(), 0, "nothing was sent");
}

/// A baseline taken on another host is not this host's: refused before any request unless
/// `--baseline-any-host`; a `--junit` path that cannot be written is found before the smoke
/// test's POST is sent, not after it and its DELETE ran.
#[test]
fn a_baseline_from_another_host_and_an_unwritable_junit_path_are_refused_up_front() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "latency", "type": "http", "url": format!("{}/health/live", app.url), "samples": 20},
            {"name": "create", "type": "http", "method": "POST", "url": format!("{}/items", app.url),
             "body": {"name": "smoke"}, "status": 201, "capture": {"item": ".id"}},
            {"name": "delete", "type": "http", "method": "DELETE",
             "url": format!("{}/items/${{capture:item}}", app.url), "status": "2xx", "always": true},
        ]),
    );
    let saved = dir.path().join("baseline.json");
    let out = verify(&[
        "baseline",
        "--checks",
        file.to_str().unwrap(),
        "--save",
        saved.to_str().unwrap(),
    ]);
    out.succeeds();
    let before = app.requests_settled();
    let mut elsewhere: Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    elsewhere["host"] = json!("build-runner-7.example");
    let other = dir.path().join("other-host.json");
    std::fs::write(&other, elsewhere.to_string()).unwrap();
    let compare = |extra: &[&str]| {
        let mut args = vec![
            "--checks",
            file.to_str().unwrap(),
            "--compare",
            "--baseline",
            other.to_str().unwrap(),
            "--latency-floor",
            "10s",
        ];
        args.extend_from_slice(extra);
        verify(&args)
    };
    let out = compare(&[]);
    out.assert_code(2);
    let why = out.last_step().error.unwrap().message;
    assert!(
        why.contains("taken on build-runner-7.example") && why.contains("--baseline-any-host"),
        "{why}"
    );
    assert_eq!(app.requests_settled(), before, "nothing was sent");
    compare(&["--baseline-any-host"]).succeeds();
    let before = app.requests_settled();

    let missing = dir.path().join("no-such-folder").join("junit.xml");
    let out = verify(&[
        "--checks",
        file.to_str().unwrap(),
        "--junit",
        missing.to_str().unwrap(),
    ]);
    out.assert_code(2);
    let why = out.last_step().error.unwrap().message;
    assert!(why.contains("does not exist"), "{why}");
    assert_eq!(app.requests_settled(), before, "no POST, no DELETE");
    // A folder this user cannot write in (root writes anywhere: nothing to show then).
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
    if std::fs::write(locked.join("probe"), b"").is_err() {
        let report = locked.join("junit.xml");
        let out = verify(&[
            "--checks",
            file.to_str().unwrap(),
            "--junit",
            report.to_str().unwrap(),
        ]);
        out.assert_code(2);
        assert!(
            out.last_step()
                .error
                .unwrap()
                .message
                .contains("cannot be written")
        );
        assert_eq!(app.requests_settled(), before, "no POST, no DELETE");
    }
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// A cleanup keeps its own timeout out of the deadline: a check that would take all of
/// `--timeout` is cut short of it, the DELETE is sent and answered, and the run still ends by
/// the deadline. When the cleanups would take all of it, the run is refused before it starts.
#[test]
fn an_always_cleanup_keeps_its_time_when_the_others_use_up_the_deadline() {
    let _serial = serial();
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let items = format!("{}/items", app.url);
    let file = checks_file(
        dir.path(),
        &json!([
            {"name": "create", "type": "http", "method": "POST", "url": items, "body": {"name": "smoke"},
             "status": 201, "capture": {"item": ".id"}},
            {"name": "slow", "type": "http", "url": format!("{}/slow?ms=8000", app.url), "after": ["create"]},
            {"name": "delete", "type": "http", "method": "DELETE", "url": format!("{items}/${{capture:item}}"),
             "status": "2xx", "after": ["slow"], "always": true, "timeout": "1500ms"},
        ]),
    );
    let out = verify(&["--checks", file.to_str().unwrap(), "--timeout", "3s"]);
    out.assert_code(1);
    let result = result_of(&out);
    assert_eq!(
        outcomes(&result),
        pairs(&[
            ("create", "passed"),
            ("slow", "failed"),
            ("delete", "passed")
        ])
    );
    assert!(
        app.log().lines().any(|l| l.ends_with("DELETE /items/1")),
        "{}",
        app.log()
    );
    assert!(out.took() < Duration::from_millis(3500), "{:?}", out.took());

    let out = verify(&["--checks", file.to_str().unwrap(), "--timeout", "1s"]);
    out.assert_code(2);
    let why = out.last_step().error.unwrap().message;
    assert!(
        why.contains("the always checks (delete) keep 1.5 s"),
        "{why}"
    );
    assert_eq!(
        app.log()
            .lines()
            .filter(|l| l.contains("POST /items"))
            .count(),
        1,
        "nothing sent"
    );
}

/// `ugw-verify --checks FILE` refuses the file before any request: exit 2, a usage error whose
/// message names the file and the JSON path of what is wrong.
#[track_caller]
fn refused_naming(file: &std::path::Path, path: &str) {
    let out = verify(&["--checks", file.to_str().unwrap()]);
    out.assert_code(2);
    let step = out.last_step();
    assert_eq!(
        (step.status.as_str(), step.error_kind()),
        ("failed", "usage")
    );
    let message = step.error.unwrap().message;
    assert!(
        message.contains(&format!("{}: {path}", file.display())),
        "{message}\n wanted {path}"
    );
}

/// Drift fix (issue 22): ugw-verify wanted 200 where ugw-wait-healthy wanted 2xx; both judge
/// with the shared `http::Expectations` now, whose default is 2xx, so a `204 No Content`
/// answer passes a check that names no status, given as a flag or in a checks file (before,
/// both failed with "status 204, expecting 200").
#[test]
fn a_check_that_names_no_status_wants_any_success_as_wait_healthy_does() {
    let server = kit::RawServer::start(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([{"name": "file", "type": "http", "url": url}]),
    );
    let out = verify(&["--checks", kit::s(&file), "--http", &url]);
    out.assert_code(0);
    assert_eq!(
        outcomes(&result_of(&out)),
        pairs(&[("file", "passed"), (&url, "passed")])
    );
    assert_eq!(check(&result_of(&out), "file")["expected"], "status 2xx");
    // A status given still says what it wants, in the words wait-healthy uses.
    let out = verify(&["--http", &url, "--status", "200"]);
    out.assert_code(1);
    let why = message(&result_of(&out), &url).to_string();
    assert!(
        why.starts_with("status 204 No Content, expecting 200"),
        "{why}"
    );
}

/// A JSON answer of about 2 MiB: `{"status":"ok","pad":"xxx…"}`.
pub fn two_mib_json_answer() -> Vec<u8> {
    let body = format!(r#"{{"status":"ok","pad":"{}"}}"#, "x".repeat(2 << 20));
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body.as_bytes());
    answer
}

/// Drift fix (issue 22): one body limit for both tools, 16 MiB (what the metrics scrape
/// reads); a 2 MiB JSON answer is judged whole (before: "the body is larger than 1024 KiB").
#[test]
fn a_2_mib_json_answer_is_judged_whole() {
    let server = kit::RawServer::start(&two_mib_json_answer());
    let url = server.url();
    let out = verify(&["--http", &url, "--expect", ".status == \"ok\""]);
    out.assert_code(0);
    assert_eq!(outcomes(&result_of(&out)), pairs(&[(&url, "passed")]));
}

/// Drift fix (issue 22): a jq expectation still running at the check's deadline is never a
/// pass: the check timed out, as a check that never answered does ("timed out: …"), where
/// before it was a plain assertion failure naming --timeout (which is not what ran out).
#[test]
fn a_jq_expectation_cut_by_the_checks_deadline_is_a_timed_out_check() {
    let server = kit::RawServer::start(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = checks_file(
        dir.path(),
        &json!([{"name": "runaway", "type": "http", "url": server.url(), "timeout": "1s",
                 "expect": ["last(range(1e12)) > 0"]}]),
    );
    let started = Instant::now();
    let out = verify(&["--checks", kit::s(&file)]);
    out.assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(out.last_step().error_kind(), "check_failed");
    let result = result_of(&out);
    assert_eq!(outcomes(&result), pairs(&[("runaway", "failed")]));
    let why = message(&result, "runaway");
    assert!(why.starts_with("timed out: "), "{why}");
    assert!(why.contains("last(range(1e12)) > 0"), "{why}");
}

/// Check flags given before `baseline` belong to the main command, which does not run: a
/// usage error naming where they go, nothing sent.
#[test]
fn check_flags_before_baseline_are_refused_naming_where_they_go() {
    let server = kit::RawServer::start(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    for flag in ["--http", "--cmd"] {
        let value = if flag == "--http" {
            server.url()
        } else {
            "true".to_string()
        };
        let out = verify(&[flag, &value, "baseline", "--http", &server.url()]);
        out.assert_code(2)
            .stderr_has(format!("{flag} goes after `baseline`"));
    }
    assert_eq!(server.requests(), 0, "nothing sent");
}
