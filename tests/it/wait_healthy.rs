//! ugw-wait-healthy against the real demo service (and real TCP listeners, commands, TLS):
//! what it waits for, how it fails, and what the record says.

use crate::kit;

use kit::{DemoApp, require_ipv6, self_signed, serial, wait_healthy};
use std::time::{Duration, Instant};

fn ready_url(app: &DemoApp) -> String {
    format!("{}/health/ready", app.url)
}

#[test]
fn healthy_at_once() {
    let app = DemoApp::start(&[]);
    let out = wait_healthy(&["--url", &ready_url(&app), "--expect", ".status == \"ok\""]);
    out.succeeds();
    let record = out.record();
    assert!(record.ok);
    assert_eq!(record.ugw, 1);
    let step = &record.steps[0];
    assert_eq!(
        (
            step.tool.as_str(),
            step.status.as_str(),
            step.exit,
            step.changed
        ),
        ("ugw-wait-healthy", "ok", 0, false)
    );
    let result = step.wait_result();
    assert!(result.healthy);
    assert_eq!(result.rounds, 1);
    assert_eq!(result.targets[0].last_status, Some(200));
    assert!(
        result.targets[0]
            .body_excerpt
            .as_deref()
            .unwrap()
            .contains("\"version\":\"v1.0.0\"")
    );
    assert_eq!(app.requests_settled(), 1, "one request, no more");
    out.stderr_has("healthy after");
}

#[test]
fn ready_after_a_delay() {
    let _serial = serial();
    let app = DemoApp::start(&["--ready-after", "700ms"]);
    let started = Instant::now();
    let out = wait_healthy(&["--url", &ready_url(&app)]);
    out.succeeds();
    assert!(started.elapsed() >= Duration::from_millis(650));
    let result = out.wait_result();
    assert!(result.rounds >= 4, "polled on a beat: {result:?}");
    assert!(result.time_to_healthy_ms.unwrap() >= 650);
    // stderr: one line per change of state, not per attempt.
    let failing = out.stderr.lines().filter(|l| l.contains("failing")).count();
    assert_eq!(failing, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr.lines().filter(|l| l.contains("passing")).count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn never_ready_keeps_the_deadline() {
    let _serial = serial();
    let app = DemoApp::start(&["--ready-after", "1h"]);
    let out = wait_healthy(&["--url", &ready_url(&app), "--timeout", "1s"]);
    out.assert_code(1);
    assert!(
        out.took() <= Duration::from_millis(1500),
        "wall time {:?}",
        out.took()
    );
    assert!(out.took() >= Duration::from_secs(1));
    let step = out.last_step();
    assert_eq!(
        (step.status.as_str(), step.error_kind()),
        ("failed", "timeout")
    );
    let result = step.wait_result();
    assert!(!result.healthy);
    assert!(
        result.deadline_overrun_ms <= 50,
        "overrun {} ms",
        result.deadline_overrun_ms
    );
    let message = &step.error.as_ref().unwrap().message;
    assert!(
        message.contains(&ready_url(&app)) && message.contains("503"),
        "{message}"
    );
    out.stderr_has("error: not healthy within --timeout 1.0 s");
}

#[test]
fn a_server_that_never_answers_is_cut_by_the_attempt_timeout() {
    let _serial = serial();
    let app = DemoApp::start(&["--hang"]);
    let out = wait_healthy(&[
        "--url",
        &ready_url(&app),
        "--attempt-timeout",
        "300ms",
        "--timeout",
        "1s",
    ]);
    out.assert_code(1);
    assert!(out.took() < Duration::from_millis(1500), "{:?}", out.took());
    let result = out.wait_result();
    assert!(
        result.deadline_overrun_ms <= 50,
        "{}",
        result.deadline_overrun_ms
    );
    let target = &result.targets[0];
    assert!(
        (2..=4).contains(&target.attempts),
        "300 ms attempts in 1 s: {target:?}"
    );
    assert!(
        target.last_error.as_deref().unwrap().contains("timed out"),
        "{target:?}"
    );
    assert!(app.requests() >= 2);
}

#[test]
fn a_garbage_body_fails_json_expectations_with_an_excerpt() {
    let app = DemoApp::start(&["--garbage"]);
    // Without JSON assertions the status is all that counts.
    wait_healthy(&["--url", &ready_url(&app)]).succeeds();
    let out = wait_healthy(&[
        "--url",
        &ready_url(&app),
        "--expect",
        ".status == \"ok\"",
        "--timeout",
        "300ms",
    ]);
    out.assert_code(1);
    let target = &out.wait_result().targets[0];
    let error = target.last_error.as_deref().unwrap();
    assert!(
        error.contains("not JSON") && error.contains("<html>not json</html>"),
        "{error}"
    );
    assert_eq!(
        target.body_excerpt.as_deref(),
        Some("<html>not json</html>")
    );
    // A regex on the body works on any text.
    wait_healthy(&["--url", &ready_url(&app), "--body-regex", "not json"]).succeeds();
    let out = wait_healthy(&[
        "--url",
        &ready_url(&app),
        "--body-regex",
        "^\\{",
        "--timeout",
        "300ms",
    ]);
    out.assert_code(1);
    assert!(out.target_error().contains("--body-regex"));
}

#[test]
fn jq_expectations_true_false_and_invalid() {
    let app = DemoApp::start(&[]);
    let url = ready_url(&app);
    wait_healthy(&[
        "--url",
        &url,
        "--expect",
        ".status == \"ok\"",
        "--expect",
        ".version | startswith(\"v1\")",
    ])
    .succeeds();

    let out = wait_healthy(&[
        "--url",
        &url,
        "--expect",
        ".status == \"ok\"",
        "--expect",
        ".version == \"v2\"",
        "--timeout",
        "300ms",
    ]);
    out.assert_code(1);
    let error = out.target_error();
    assert!(
        error.contains("--expect '.version == \"v2\"' is not true"),
        "{error}"
    );

    let before = app.requests_settled();
    let out = wait_healthy(&["--url", &url, "--expect", ".status =="]);
    out.assert_code(2);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "usage");
    assert!(
        step.error
            .unwrap()
            .message
            .contains("not a valid jq expression")
    );
    assert_eq!(
        app.requests_settled(),
        before,
        "an invalid expression is found before any request"
    );
}

#[test]
fn expect_version_from_the_flag_and_from_the_record() {
    let app = DemoApp::start(&["--version-label", "v1.4.2"]);
    let url = ready_url(&app);
    wait_healthy(&["--url", &url, "--expect-version", "1.4.2"]).succeeds();
    let out = wait_healthy(&[
        "--url",
        &url,
        "--expect-version",
        "v1.5.0",
        "--timeout",
        "300ms",
    ]);
    out.assert_code(1);
    assert!(
        out.target_error()
            .contains("version v1.4.2, expecting v1.5.0")
    );

    // Without a value: the version of the last ugw-fetch step in the incoming record.
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args(["--url", &url, "--expect-version", "--in", "-"]);
    let out = kit::with_stdin(cmd, &kit::fetch_record("1.4.2"));
    out.succeeds();
    let record = out.record();
    assert_eq!(record.steps.len(), 2, "appended to the incoming record");
    assert_eq!(record.run, "20261121T235901Z-test-0001");
    assert_eq!(
        record.steps[1].wait_result().expect_version.as_deref(),
        Some("1.4.2")
    );

    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args([
        "--url",
        &url,
        "--expect-version",
        "--in",
        "-",
        "--timeout",
        "300ms",
    ]);
    kit::with_stdin(cmd, &kit::fetch_record("v2.0.0")).assert_code(1);

    // No version known at all: a usage error, nothing attempted.
    let out = wait_healthy(&["--url", &url, "--expect-version"]);
    out.assert_code(2).stderr_has("ugw-fetch");

    // The version can live elsewhere in the body.
    wait_healthy(&[
        "--url",
        &url,
        "--expect-version",
        "ok",
        "--version-path",
        ".status",
    ])
    .succeeds();
    let out = wait_healthy(&[
        "--url",
        &url,
        "--expect-version",
        "1",
        "--version-path",
        ".nothing",
        "--timeout",
        "300ms",
    ]);
    out.assert_code(1);
    assert!(
        out.target_error().contains("no version at .nothing"),
        "{}",
        out.target_error()
    );
}

#[test]
fn the_body_excerpt_is_at_most_512_bytes() {
    let app = DemoApp::start(&[]);
    let padding = format!("X-Padding: {}", "é".repeat(400));
    let out = wait_healthy(&[
        "--url",
        &format!("{}/debug/echo", app.url),
        "--header",
        &padding,
    ]);
    out.succeeds();
    let excerpt = out.wait_result().targets[0].body_excerpt.clone().unwrap();
    assert!(
        excerpt.len() <= 512 && excerpt.len() > 400,
        "{} bytes",
        excerpt.len()
    );
    assert!(excerpt.starts_with('{'));
}

#[test]
fn consecutive_successes_and_stability_against_a_flaky_server() {
    let _serial = serial();
    // Every third request fails: two in a row is possible, three never.
    let app = DemoApp::start(&["--fail-every", "3"]);
    let url = ready_url(&app);
    let out = wait_healthy(&["--url", &url, "--successes", "2", "--interval", "20ms"]);
    out.succeeds();
    assert_eq!(out.wait_result().rounds, 2);

    let out = wait_healthy(&[
        "--url",
        &url,
        "--successes",
        "3",
        "--interval",
        "20ms",
        "--timeout",
        "600ms",
    ]);
    out.assert_code(1);
    let result = out.wait_result();
    assert!(result.targets[0].passes >= 4, "{result:?}");
    assert!(out.last_step().error.unwrap().message.contains("503"));

    let out = wait_healthy(&[
        "--url",
        &url,
        "--stable-for",
        "300ms",
        "--interval",
        "20ms",
        "--timeout",
        "800ms",
    ]);
    out.assert_code(1);

    let steady = DemoApp::start(&[]);
    let out = wait_healthy(&[
        "--url",
        &ready_url(&steady),
        "--stable-for",
        "300ms",
        "--interval",
        "20ms",
    ]);
    out.succeeds();
    assert!(out.wait_result().time_to_healthy_ms.unwrap() >= 300);
    wait_healthy(&["--url", &url, "--successes", "0"]).assert_code(2);
}

#[test]
fn fail_fast_conditions_stop_at_once() {
    let _serial = serial();
    let app = DemoApp::start(&["--status-field", "failed"]);
    let out = wait_healthy(&[
        "--url",
        &ready_url(&app),
        "--fail-if",
        ".status == \"failed\"",
        "--timeout",
        "30s",
    ]);
    out.assert_code(1);
    assert!(out.took() < Duration::from_secs(2), "{:?}", out.took());
    let step = out.last_step();
    assert_eq!(step.error_kind(), "fail_condition");
    assert!(
        step.error
            .unwrap()
            .message
            .contains("--fail-if '.status == \"failed\"' is true")
    );

    let app = DemoApp::start(&["--fail-status", "500"]);
    let out = wait_healthy(&[
        "--url",
        &ready_url(&app),
        "--fail-status",
        "500-599",
        "--timeout",
        "30s",
    ]);
    out.fails_with(kit::Kind::FailCondition);
    assert!(out.took() < Duration::from_secs(2));
}

#[test]
fn retry_after_is_honoured_within_the_deadline() {
    let _serial = serial();
    let app = DemoApp::start(&["--fail-first", "1", "--retry-after", "1"]);
    let out = wait_healthy(&["--url", &ready_url(&app)]);
    out.succeeds();
    let result = out.wait_result();
    assert_eq!(
        result.targets[0].attempts, 2,
        "it waited as asked instead of polling: {result:?}"
    );
    assert!(result.time_to_healthy_ms.unwrap() >= 1000);

    // A Retry-After past the deadline does not stretch the deadline.
    let app = DemoApp::start(&["--fail-first", "1", "--retry-after", "30"]);
    let out = wait_healthy(&["--url", &ready_url(&app), "--timeout", "500ms"]);
    out.assert_code(1);
    assert!(out.took() < Duration::from_secs(1));
    assert!(out.wait_result().deadline_overrun_ms <= 50);
    assert_eq!(app.requests_settled(), 1);
}

#[test]
fn tcp_and_command_targets() {
    let _serial = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("ready");
    let check = format!("test -f '{}'", flag.display());
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args(["--tcp", &open, "--cmd", &check, "--interval", "100ms"]);
    let waiting = kit::observe::Background::start(cmd);
    // The command fails until the file it tests is there: made once the wait saw it fail.
    waiting.wait_for_stderr("failing", Duration::from_secs(10));
    std::fs::write(&flag, "").unwrap();
    let out = waiting.finish();
    out.succeeds();
    let result = out.wait_result();
    assert_eq!(result.targets.len(), 2);
    assert_eq!(result.targets[1].kind, "cmd");
    assert_eq!(result.targets[1].last_exit, Some(0));
    assert!(result.targets[1].attempts >= 2);

    // A closed port and a failing command: the message names both.
    drop(listener);
    let out = wait_healthy(&[
        "--tcp",
        &open,
        "--cmd",
        "echo broken >&2; exit 3",
        "--timeout",
        "500ms",
    ]);
    out.assert_code(1);
    let message = out.last_step().error.unwrap().message;
    assert!(
        message.contains("connection refused") && message.contains("exit 3"),
        "{message}"
    );
    let result = out.wait_result();
    assert_eq!(result.targets[1].last_exit, Some(3));
    assert_eq!(result.targets[1].body_excerpt.as_deref(), Some("broken"));

    // A command that hangs is killed at the deadline.
    let out = wait_healthy(&["--cmd", "sleep 30", "--timeout", "400ms"]);
    out.assert_code(1);
    assert!(out.took() < Duration::from_secs(1), "{:?}", out.took());
}

#[test]
fn ipv6_loopback() {
    if !require_ipv6() {
        return;
    }
    let app = DemoApp::start(&["--listen", "[::1]:0"]);
    assert!(app.url.starts_with("http://[::1]:"), "{}", app.url);
    let out = wait_healthy(&["--url", &ready_url(&app), "--tcp", &app.addr()]);
    out.succeeds();
    let result = out.wait_result();
    assert_eq!(result.targets[0].last_status, Some(200), "{result:?}");
    assert_eq!(
        (result.targets[1].kind.as_str(), result.targets[1].passing),
        ("tcp", true),
        "{result:?}"
    );
    // The HTTP request reached the IPv6 listener (the TCP probe sends nothing).
    assert_eq!(app.requests_settled(), 1);
    assert!(app.log().contains("GET /health/ready"), "{}", app.log());
    let out = wait_healthy(&["--tcp", "::1:80"]);
    out.assert_code(2).stderr_has("[::1]:8080");
}

#[test]
fn https_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let app = DemoApp::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(app.url.starts_with("https://"), "{}", app.url);
    let url = ready_url(&app);
    wait_healthy(&["--url", &url, "--cacert", cert.to_str().unwrap()]).succeeds();
    let out = wait_healthy(&["--url", &url, "--timeout", "500ms"]);
    out.assert_code(1);
    let error = out.target_error();
    assert!(
        error.to_lowercase().contains("certificate") || error.contains("tls"),
        "{error}"
    );
    wait_healthy(&["--url", &url, "--insecure"]).succeeds();
    wait_healthy(&["--url", &url, "--cacert", "/nonexistent.pem"]).assert_code(2);
}

#[test]
fn until_down_waits_for_the_old_process_to_stop() {
    let _serial = serial();
    let mut app = DemoApp::start(&[]);
    let url = ready_url(&app);
    let addr = app.addr();
    let waiter =
        std::thread::spawn(move || wait_healthy(&["--until-down", "--url", &url, "--tcp", &addr]));
    // Seen up, and still asked again: it is watching.
    assert!(app.wait_for_requests(3, Duration::from_secs(5)));
    app.terminate();
    let out = waiter.join().unwrap();
    out.succeeds();
    let result = out.wait_result();
    assert_eq!(result.mode, "down");
    assert!(result.targets.iter().all(|t| !t.passing));
    out.stderr_has("down after");

    let app = DemoApp::start(&[]);
    let out = wait_healthy(&[
        "--until-down",
        "--url",
        &ready_url(&app),
        "--timeout",
        "300ms",
    ]);
    out.assert_code(1);
    assert!(
        out.last_step()
            .error
            .unwrap()
            .message
            .contains("still answering")
    );
}

#[test]
fn sigterm_mid_wait_writes_the_record_and_exits_143() {
    let _serial = serial();
    let app = DemoApp::start(&["--ready-after", "1h"]);
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args(["--url", &ready_url(&app)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    assert!(
        app.wait_for_requests(1, Duration::from_secs(5)),
        "the server saw a request"
    );
    let (code, record) = kit::interrupt(child, libc::SIGTERM);
    assert_eq!(code, Some(143));
    assert!(!record.ok);
    let step = &record.steps[0];
    assert_eq!(
        (step.status.as_str(), step.exit, step.error_kind()),
        ("interrupted", 143, "interrupted")
    );
    assert!(step.wait_result().targets[0].attempts >= 1);
}

#[test]
fn secrets_never_reach_stdout_stderr_or_the_record_file() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec.json");
    let token = "Bearer s3cr3t-t0ken-value";
    let password = "pa55w0rd-xyz";
    let port = app.addr();
    let url = format!("http://deploy:{password}@{port}/debug/echo?token=qu3ry-s3cret");
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.env("HEALTH_TOKEN", token).args([
        "--url",
        &url,
        "--header-env",
        "Authorization=HEALTH_TOKEN",
        "--record",
        record.to_str().unwrap(),
        "--new",
        // The server saw the header (the echo holds it), and the check then fails on purpose so
        // that the body and the error message are in the record.
        "--expect",
        ".headers.authorization == \"nope\"",
        "--timeout",
        "300ms",
    ]);
    let out = kit::run(cmd);
    out.assert_code(1);
    let excerpt = out.wait_result().targets[0].body_excerpt.clone().unwrap();
    assert!(
        excerpt.contains("authorization"),
        "the server saw the header: {excerpt}"
    );
    let file = std::fs::read_to_string(&record).unwrap();
    for (name, text) in [
        ("stdout", &out.stdout),
        ("stderr", &out.stderr),
        ("record file", &file),
    ] {
        for secret in ["s3cr3t-t0ken-value", password, "qu3ry-s3cret"] {
            assert!(
                !text.contains(secret),
                "{secret} leaked into {name}: {text}"
            );
        }
    }
    out.stdout_has("deploy:***@");
}

#[test]
fn secret_headers_are_not_sent_to_another_host_after_a_redirect() {
    let app = DemoApp::start(&[]);
    let port = app.addr().rsplit_once(':').unwrap().1.to_string();
    // 127.0.0.1 and localhost are different origins.
    let elsewhere = format!("http://localhost:{port}/debug/echo");
    let same = format!("http://127.0.0.1:{port}/debug/echo");
    let run = |to: &str, expect: &str| {
        let url = format!(
            "{}/redirect?to={}",
            app.url,
            to.replace(':', "%3A").replace('/', "%2F")
        );
        let mut cmd = kit::tool("ugw-wait-healthy");
        cmd.env("API_TOKEN", "tok-123456").args([
            "--url",
            &url,
            "--header-env",
            "X-Api-Token=API_TOKEN",
            "--header",
            "X-Trace: abc",
            "--expect",
            expect,
            "--timeout",
            "500ms",
        ]);
        kit::run(cmd)
    };
    run(
        &elsewhere,
        ".headers[\"x-api-token\"] == null and .headers[\"x-trace\"] == null",
    )
    .succeeds();
    run(&same, ".headers[\"x-api-token\"] == \"tok-123456\"").succeeds();
}

#[test]
fn usage_errors_still_write_a_record() {
    let out = wait_healthy(&["--url", "http://127.0.0.1:1/", "--no-such-flag"]);
    out.assert_code(2);
    let step = out.last_step();
    assert_eq!(
        (step.status.as_str(), step.exit, step.error_kind()),
        ("failed", 2, "usage")
    );
    out.stderr_has("--no-such-flag");

    for args in [
        &["--url", "ftp://x/"][..],
        &["--url", "http://127.0.0.1:1/", "--timeout", "30"],
        &["--tcp", "nohost"],
        &["--cmd", "true", "--expect", ".a"],
        &["--url", "http://127.0.0.1:1/", "--status", "abc"],
        &["--url", "http://127.0.0.1:1/", "--header", "no colon"],
        &[
            "--url",
            "http://127.0.0.1:1/",
            "--header-env",
            "Authorization=UGW_TEST_UNSET_VAR",
        ],
        &[],
    ] {
        let out = wait_healthy(args);
        out.assert_code(2);
        assert_eq!(out.last_step().error_kind(), "usage", "{args:?}");
    }
    let out = wait_healthy(&[
        "--url",
        "http://127.0.0.1:1/",
        "--header-env",
        "Authorization=UGW_TEST_UNSET_VAR",
    ]);
    out.stderr_has("UGW_TEST_UNSET_VAR is not set");
    let out = wait_healthy(&["--help"]);
    out.succeeds().stdout_has("--until-down");
}

#[test]
fn dry_run_checks_the_flags_and_sends_nothing() {
    let app = DemoApp::start(&[]);
    let out = wait_healthy(&["--url", &ready_url(&app), "--dry-run", "--pretty"]);
    out.succeeds();
    assert!(out.stdout.lines().count() > 3, "--pretty indents");
    let record = kit::parse_record(&out.stdout);
    assert!(record.steps[0].dry_run);
    assert_eq!(app.requests_settled(), 0);
}

#[test]
fn backoff_spaces_out_the_attempts_of_a_long_wait() {
    let _serial = serial();
    let app = DemoApp::start(&["--ready-after", "1h"]);
    let url = ready_url(&app);
    let steady = wait_healthy(&["--url", &url, "--interval", "50ms", "--timeout", "1500ms"]);
    let backing_off = wait_healthy(&[
        "--url",
        &url,
        "--interval",
        "50ms",
        "--max-interval",
        "800ms",
        "--timeout",
        "1500ms",
    ]);
    steady.assert_code(1);
    backing_off.assert_code(1);
    let (steady, backing_off) = (steady.wait_result(), backing_off.wait_result());
    assert!(steady.rounds >= 20, "{steady:?}");
    assert!(backing_off.rounds <= 10, "{backing_off:?}");
    assert!(backing_off.deadline_overrun_ms <= 50);
    // Every attempt the record counts reached the server, but for one per run that the
    // deadline may cut before its request left.
    let seen = app.requests_settled() as u64;
    let counted = steady.attempts + backing_off.attempts;
    assert!(
        seen <= counted && seen + 2 >= counted,
        "server saw {seen}, record counts {counted}"
    );
}

#[test]
fn commands_are_polled_once_a_second_by_default() {
    let _serial = serial();
    let out = wait_healthy(&["--cmd", "false", "--timeout", "1500ms"]);
    out.assert_code(1);
    let result = out.wait_result();
    assert_eq!(result.rounds, 2, "at 0 s and at 1 s: {result:?}");
    assert_eq!(result.targets[0].last_exit, Some(1));
}

#[test]
fn latency_bounds_and_methods() {
    let _serial = serial();
    let app = DemoApp::start(&["--slow", "300ms"]);
    let url = ready_url(&app);
    let out = wait_healthy(&["--url", &url, "--max-latency", "100ms", "--timeout", "1s"]);
    out.assert_code(1);
    let error = out.target_error();
    assert!(error.contains("over --max-latency 100 ms"), "{error}");
    wait_healthy(&["--url", &url, "--max-latency", "2s"]).succeeds();

    let app = DemoApp::start(&[]);
    wait_healthy(&["--url", &ready_url(&app), "--method", "HEAD"]).succeeds();
    assert!(app.log().contains("HEAD /health/ready"), "{}", app.log());
    let out = wait_healthy(&[
        "--url",
        &ready_url(&app),
        "--method",
        "POST",
        "--timeout",
        "300ms",
    ]);
    out.assert_code(1);
    assert_eq!(out.wait_result().targets[0].last_status, Some(405));
    wait_healthy(&["--url", &ready_url(&app), "--method", "BAD METHOD"]).assert_code(2);
}

#[test]
fn sigint_is_exit_130_and_the_record_file_says_interrupted() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let pidfile = dir.path().join("sleep.pid");
    let check = format!("sleep 30 & echo $! > '{}'; wait", pidfile.display());
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args(["--cmd", &check, "--timeout", "1m", "--new", "--record"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let mut sleeper = 0;
    assert!(
        kit::eventually(Duration::from_secs(5), || {
            sleeper = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|pid| pid.trim().parse().ok())
                .unwrap_or(0);
            sleeper > 0
        }),
        "the command started and wrote its sleep's pid"
    );
    let (code, record) = kit::interrupt(child, libc::SIGINT);
    assert_eq!(code, Some(130));
    assert_eq!(record.steps[0].status, "interrupted");
    let saved = kit::parse_record(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(
        (saved.steps[0].status.as_str(), saved.steps[0].exit),
        ("interrupted", 130)
    );
    // The command's process group was killed with us: its `sleep 30` is gone.
    assert!(
        kit::gone(sleeper, Duration::from_secs(1)),
        "the command's sleep {sleeper} is left running"
    );
}

#[test]
fn loopback_checks_never_go_through_a_proxy() {
    let app = DemoApp::start(&[]);
    // A proxy that would answer 200 itself: a request sent through it could not fail.
    let proxy = kit::RawServer::start(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    let proxy_url = proxy.url();
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.env("http_proxy", &proxy_url)
        .env("HTTP_PROXY", &proxy_url)
        .env("ALL_PROXY", &proxy_url)
        .args(["--url", &ready_url(&app), "--timeout", "2s"]);
    let out = kit::run(cmd);
    out.succeeds();
    let excerpt = out.wait_result().targets[0].body_excerpt.clone().unwrap();
    assert!(
        excerpt.contains("\"status\":\"ok\""),
        "the service answered: {excerpt}"
    );
    assert_eq!(app.requests_settled(), 1);
    assert_eq!(proxy.requests(), 0, "nothing went through the proxy");
}

#[test]
fn until_down_a_slow_service_is_not_down() {
    let _serial = serial();
    let app = DemoApp::start(&["--slow", "3s"]);
    let url = ready_url(&app);
    for args in [
        &["--timeout", "1s"][..],
        &["--attempt-timeout", "300ms", "--timeout", "1s"],
    ] {
        let mut all = vec!["--until-down", "--url", &url];
        all.extend_from_slice(args);
        let out = wait_healthy(&all);
        out.assert_code(1);
        assert!(
            out.took() < Duration::from_millis(1500),
            "{args:?}: {:?}",
            out.took()
        );
        let step = out.last_step();
        assert_eq!(step.error_kind(), "timeout", "{args:?}");
        let result = step.wait_result();
        assert_eq!(result.mode, "down");
        assert!(!result.healthy, "{args:?}: {result:?}");
        assert!(result.deadline_overrun_ms <= 50, "{args:?}: {result:?}");
    }
}

#[test]
fn sigterm_during_an_http_attempt_in_flight_is_prompt() {
    let _serial = serial();
    let app = DemoApp::start(&["--hang"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args([
        "--url",
        &ready_url(&app),
        "--timeout",
        "1m",
        "--new",
        "--record",
    ])
    .arg(&file)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    assert!(
        app.wait_for_requests(1, Duration::from_secs(5)),
        "the server saw a request"
    );
    // The server has read the request: the attempt is blocked reading an answer that never
    // comes.
    let (code, record) = kit::interrupt(child, libc::SIGTERM);
    assert_eq!(code, Some(143));
    let step = &record.steps[0];
    assert_eq!(
        (step.status.as_str(), step.exit, step.error_kind()),
        ("interrupted", 143, "interrupted")
    );
    let saved = kit::parse_record(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(saved.steps[0].status, "interrupted");
}

/// None of `secrets` is in the tool's stdout, stderr or record `file` (its text).
#[track_caller]
fn assert_no_secret(out: &kit::Outcome, file: &str, secrets: &[&str]) {
    for (name, text) in [
        ("stdout", out.stdout.as_str()),
        ("stderr", &out.stderr),
        ("record file", file),
    ] {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{secret} leaked into {name}: {text}"
            );
        }
    }
}

/// Run against /debug/echo with a check that fails on purpose, so the echoed request headers
/// land in the record's body excerpt and error message.
fn echo_and_fail(url: &str, env: &[(&str, &str)], extra: &[&str]) -> (kit::Outcome, String) {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec.json");
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.envs(env.iter().copied())
        // One round with room to spare: these tests are about what is shown, not timing.
        .args([
            "--url",
            url,
            "--expect",
            ".x == 1",
            "--once",
            "--timeout",
            "5s",
        ])
        .args(extra)
        .arg("--new")
        .arg("--record")
        .arg(&record);
    let out = kit::run(cmd);
    let file = std::fs::read_to_string(&record).unwrap_or_default();
    (out, file)
}

#[test]
fn url_user_info_without_a_password_is_a_secret_too() {
    let app = DemoApp::start(&[]);
    let url = format!("http://ghp_usertoken123@{}/debug/echo", app.addr());
    let (out, file) = echo_and_fail(&url, &[], &[]);
    out.assert_code(1);
    assert!(!file.is_empty(), "the record file was written");
    let basic = kit::base64(b"ghp_usertoken123:");
    let basic_bare = kit::base64(b"ghp_usertoken123");
    assert_no_secret(&out, &file, &["ghp_usertoken123", &basic, &basic_bare]);
}

#[test]
fn a_password_with_an_at_sign_never_leaks() {
    let app = DemoApp::start(&[]);
    let basic = kit::base64(b"user:p@ss-w0rd!");
    for userinfo in ["user:p%40ss-w0rd!", "user:p@ss-w0rd!"] {
        let url = format!("http://{userinfo}@{}/debug/echo", app.addr());
        let (out, file) = echo_and_fail(&url, &[], &[]);
        assert!(
            out.code == 1 || out.code == 2,
            "{userinfo}: a failed check or a usage error, never a crash: {}",
            out.stderr
        );
        // "ss-w0rd" alone: a scrubber that stops at the first `@` leaves the rest.
        assert_no_secret(
            &out,
            &file,
            &["p@ss-w0rd!", "p%40ss-w0rd!", "ss-w0rd", &basic],
        );
    }
    // Percent-encoded, the URL is valid: the check ran and failed.
    let url = format!("http://user:p%40ss-w0rd!@{}/debug/echo", app.addr());
    echo_and_fail(&url, &[], &[]).0.assert_code(1);
}

#[test]
fn header_env_values_never_leak_whole_or_in_part() {
    let app = DemoApp::start(&[]);
    let url = format!("{}/debug/echo", app.url);
    let (out, file) = echo_and_fail(
        &url,
        &[("TOK", "Bearer abcdefgh12345678")],
        &["--header-env", "Authorization=TOK"],
    );
    out.assert_code(1);
    let excerpt = out.wait_result().targets[0].body_excerpt.clone().unwrap();
    assert!(
        excerpt.contains("authorization"),
        "the server saw the header: {excerpt}"
    );
    assert!(!file.is_empty(), "the record file was written");
    assert_no_secret(
        &out,
        &file,
        &["Bearer abcdefgh12345678", "abcdefgh12345678"],
    );
}

#[test]
fn a_header_named_like_a_key_never_leaks() {
    let app = DemoApp::start(&[]);
    let url = format!("{}/debug/echo", app.url);
    let (out, file) = echo_and_fail(&url, &[], &["--header", "X-Auth-Key: k3y-v4lue-123"]);
    out.assert_code(1);
    let excerpt = out.wait_result().targets[0].body_excerpt.clone().unwrap();
    assert!(
        excerpt.contains("x-auth-key"),
        "the server saw the header: {excerpt}"
    );
    assert_no_secret(&out, &file, &["k3y-v4lue-123"]);
}

#[test]
fn a_malformed_secret_header_is_not_quoted_in_the_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec.json");
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args([
        "--url",
        "http://127.0.0.1:1/",
        "--header",
        "Authorization Bearer sk_live_123456",
        "--new",
        "--record",
    ])
    .arg(&record);
    let out = kit::run(cmd);
    out.fails_with(kit::Kind::Usage).stderr_has("--header");
    let file = std::fs::read_to_string(&record).unwrap_or_default();
    assert_no_secret(&out, &file, &["sk_live_123456"]);
}

/// `--cmd` that passes `passes` times, then hangs: counted in the file `c` of `dir`.
fn passes_then_hangs(passes: u32) -> String {
    format!("n=$(cat c 2>/dev/null || echo 0); echo $((n+1)) > c; [ $n -lt {passes} ] || sleep 10")
}

#[test]
fn a_round_cut_by_the_deadline_is_not_a_pass() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.current_dir(dir.path()).args([
        "--in",
        "none",
        "--cmd",
        &passes_then_hangs(2),
        "--successes",
        "3",
        "--timeout",
        "1500ms",
        "--interval",
        "100ms",
    ]);
    let out = kit::run(cmd);
    out.assert_code(1);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "timeout");
    let result = step.wait_result();
    assert!(!result.healthy, "{result:?}");
    assert_eq!(result.time_to_healthy_ms, None);
    let target = &result.targets[0];
    assert_eq!((target.passes, target.attempts), (2, 3), "{target:?}");
    let counted: u32 = std::fs::read_to_string(dir.path().join("c"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(counted, 3, "the third attempt ran and was cut");
}

#[test]
fn a_round_cut_by_the_deadline_does_not_complete_stable_for() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.current_dir(dir.path()).args([
        "--in",
        "none",
        "--cmd",
        &passes_then_hangs(2),
        "--stable-for",
        "300ms",
        "--timeout",
        "1500ms",
        "--interval",
        "100ms",
    ]);
    let out = kit::run(cmd);
    out.assert_code(1);
    let result = out.wait_result();
    assert!(!result.healthy, "{result:?}");
    assert_eq!(result.targets[0].passes, 2, "{result:?}");
    assert!(
        out.last_step()
            .error
            .unwrap()
            .message
            .contains("--stable-for"),
        "{}",
        out.stderr
    );
}

#[test]
fn nonsensical_values_are_refused_before_any_attempt() {
    let app = DemoApp::start(&[]);
    let url = ready_url(&app);
    let cases: &[(&[&str], &str)] = &[
        (
            &["--url", &url, "--interval", "1ns"],
            "--interval must be at least 10 ms",
        ),
        (
            &["--url", &url, "--interval", "9ms"],
            "--interval must be at least 10 ms",
        ),
        (
            &["--url", "http://127.0.0.1:99999/"],
            "a port is 1 to 65535",
        ),
        (&["--url", "http://127.0.0.1:0/"], "a port is 1 to 65535"),
        (&["--tcp", "127.0.0.1:0"], "a port is 1 to 65535"),
        (&["--tcp", "127.0.0.1:70000"], "is not HOST:PORT"),
        (
            &["--url", &url, "--attempt-timeout", "0s"],
            "--attempt-timeout must be more than 0",
        ),
        (
            &["--url", &url, "--timeout", "0s"],
            "--timeout must be more than 0",
        ),
        (
            &["--url", &url, "--interval", "1s", "--max-interval", "500ms"],
            "--max-interval 500 ms is below --interval",
        ),
        (&["--url", &url, "--successes", "0"], "--successes"),
        (
            &["--url", &url, "--successes", "50", "--timeout", "1s"],
            "cannot be met within --timeout",
        ),
        (
            &["--url", &url, "--stable-for", "5s", "--timeout", "5s"],
            "cannot be met within --timeout",
        ),
        (&["--url", &url, "--max-failures", "2"], "give --stable-for"),
        (
            &["--url", &url, "--max-latency", "0s"],
            "--max-latency must be more than 0",
        ),
        (
            &["--url", &url, "--once", "--successes", "2"],
            "--once is a single round",
        ),
    ];
    for (args, says) in cases {
        let out = wait_healthy(args).case(format!("{args:?}"));
        out.fails_with(kit::Kind::Usage).stderr_has(says);
        assert!(
            out.took() < Duration::from_secs(5),
            "{args:?}: refused up front"
        );
    }
    assert_eq!(app.requests_settled(), 0, "nothing was attempted");
}

#[test]
fn the_overrun_in_the_record_is_the_one_the_clock_saw() {
    let _serial = serial();
    let app = DemoApp::start(&["--ready-after", "1h"]);
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args(["--url", &ready_url(&app), "--timeout", "1s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().cast_signed();
    assert!(app.wait_for_requests(1, Duration::from_secs(5)));
    // The tool started before its first request, so its deadline is at most 1 s from now.
    let seen = Instant::now();
    // Frozen across that deadline, it overruns it by at least the time it was stopped past it.
    kit::signal(pid, libc::SIGSTOP);
    while seen.elapsed() < Duration::from_millis(1600) {
        std::thread::sleep(Duration::from_millis(10));
    }
    kit::signal(pid, libc::SIGCONT);
    let output = kit::wait_bounded(child, Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(1));
    let record = kit::parse_record(&String::from_utf8_lossy(&output.stdout));
    let result = record.steps[0].wait_result();
    assert!(
        result.deadline_overrun_ms >= 599,
        "stopped until at least 600 ms past the deadline: {result:?}"
    );
    // Both figures come from the same clock: elapsed = timeout + overrun.
    assert!(
        result
            .elapsed_ms
            .abs_diff(1000 + result.deadline_overrun_ms)
            <= 1,
        "{result:?}"
    );
}

#[test]
fn assertions_after_a_target_apply_to_it_alone() {
    let a = DemoApp::start(&["--version-label", "v1.0.0"]);
    let b = DemoApp::start(&["--version-label", "v2.0.0", "--status-field", "syncing"]);
    let (url_a, url_b) = (ready_url(&a), ready_url(&b));
    // Each --url has its own version; neither expectation is applied to the other.
    let out = wait_healthy(&[
        "--url",
        &url_a,
        "--expect-version",
        "1.0.0",
        "--url",
        &url_b,
        "--expect-version",
        "2.0.0",
        "--timeout",
        "2s",
    ]);
    out.succeeds();
    let result = out.wait_result();
    assert!(
        result.targets.iter().all(|t| t.passing && t.passes == 1),
        "{result:?}"
    );

    // Before the first target: for every --url. B is not "ok", so the wait fails on B alone.
    let out = wait_healthy(&[
        "--expect",
        ".status == \"ok\"",
        "--url",
        &url_a,
        "--url",
        &url_b,
        "--timeout",
        "300ms",
    ]);
    out.assert_code(1);
    let result = out.wait_result();
    assert!(result.targets[0].passing, "{result:?}");
    assert!(!result.targets[1].passing, "{result:?}");
    let message = out.last_step().error.unwrap().message;
    assert!(
        message.contains(&url_b) && !message.contains(&url_a),
        "{message}"
    );

    // After A: for A only, so B's "syncing" does not matter.
    wait_healthy(&[
        "--url",
        &url_b,
        "--url",
        &url_a,
        "--expect",
        ".status == \"ok\"",
    ])
    .succeeds();
    // An HTTP assertion after a TCP target is a mistake, said up front.
    let before = a.requests_settled();
    let out = wait_healthy(&["--tcp", &a.addr(), "--expect", ".a", "--url", &url_a]);
    out.assert_code(2).stderr_has("--expect follows --tcp");
    assert_eq!(a.requests_settled(), before, "nothing attempted");
}

#[test]
fn any_one_passing_target_is_enough_with_any() {
    let up = DemoApp::start(&[]);
    let down = DemoApp::start(&["--ready-after", "1h"]);
    let args = [
        "--url",
        &ready_url(&down),
        "--url",
        &ready_url(&up),
        "--timeout",
        "500ms",
    ];
    let out = wait_healthy(&args);
    out.assert_code(1);
    let mut with_any = args.to_vec();
    with_any.push("--any");
    let out = wait_healthy(&with_any);
    out.succeeds();
    let result = out.wait_result();
    assert_eq!(result.rounds, 1, "{result:?}");
    assert_eq!(
        (result.targets[0].passing, result.targets[1].passing),
        (false, true),
        "{result:?}"
    );
    assert_eq!(result.targets[0].last_status, Some(503));
}

#[test]
fn once_is_one_round_and_no_polling() {
    let down = DemoApp::start(&["--ready-after", "1h"]);
    let out = wait_healthy(&["--url", &ready_url(&down), "--once"]);
    out.assert_code(1);
    let step = out.last_step();
    let message = step.error.as_ref().unwrap().message.clone();
    assert_eq!(step.error_kind(), "check_failed", "a check, not a wait");
    assert!(message.contains("in the one round of --once"), "{message}");
    assert!(message.contains("(after 1 attempt)"), "singular: {message}");
    let result = step.wait_result();
    assert_eq!((result.rounds, result.attempts), (1, 1), "{result:?}");
    assert!(
        out.took() < Duration::from_secs(2),
        "no waiting: {:?}",
        out.took()
    );
    assert_eq!(down.requests_settled(), 1);

    let up = DemoApp::start(&[]);
    let out = wait_healthy(&["--url", &ready_url(&up), "--once"]);
    out.succeeds();
    assert_eq!(out.wait_result().rounds, 1);
    assert_eq!(up.requests_settled(), 1);
}

#[test]
fn a_failing_command_shows_its_last_stderr_line() {
    let out = wait_healthy(&[
        "--cmd",
        "echo starting >&2; echo 'db: connection refused' >&2; echo; exit 3",
        "--once",
    ]);
    out.assert_code(1);
    let message = out.last_step().error.unwrap().message;
    assert!(
        message.contains("exit 3: 'db: connection refused'"),
        "{message}"
    );
    assert_eq!(out.wait_result().targets[0].last_exit, Some(3));
    out.stderr_has("exit 3: 'db: connection refused'");
}

#[test]
fn a_false_expectation_shows_the_value_it_produced() {
    let app = DemoApp::start(&["--version-label", "v1.4.2"]);
    let out = wait_healthy(&[
        "--url",
        &ready_url(&app),
        "--expect",
        ".version | ltrimstr(\"v\") | split(\".\") | .[0] == \"2\"",
        "--expect",
        ".status",
        "--once",
    ]);
    out.assert_code(1);
    let error = out.target_error();
    assert!(error.contains("is not true: it gave false ("), "{error}");
    let out = wait_healthy(&["--url", &ready_url(&app), "--expect", ".version", "--once"]);
    out.assert_code(1);
    let error = out.target_error();
    assert!(error.contains("it gave \"v1.4.2\" ("), "{error}");
}

#[test]
fn body_regexes_are_multi_line() {
    let app = DemoApp::start(&[]);
    let metrics = format!("{}/metrics", app.url);
    let out = wait_healthy(&[
        "--url",
        &metrics,
        "--body-regex",
        "^# TYPE http_requests_total counter$",
        "--once",
    ]);
    out.succeeds();
    assert!(
        out.wait_result().targets[0]
            .body_excerpt
            .as_deref()
            .unwrap()
            .starts_with("# HELP"),
        "the match is not on the first line"
    );
    // Each --body-regex must match.
    let out = wait_healthy(&[
        "--url",
        &metrics,
        "--body-regex",
        "^# TYPE http_requests_total counter$",
        "--body-regex",
        "^nothing_like_this$",
        "--once",
    ]);
    out.assert_code(1);
    assert!(out.target_error().contains("^nothing_like_this$"));
}

#[test]
fn max_failures_forgives_failed_rounds_within_stable_for() {
    let _serial = serial();
    // Every third request fails, so 300 ms at a 20 ms beat has about five failed rounds.
    let app = DemoApp::start(&["--fail-every", "3"]);
    let url = ready_url(&app);
    let base = [
        "--url",
        &url,
        "--stable-for",
        "300ms",
        "--interval",
        "20ms",
        "--timeout",
        "1500ms",
    ];
    let mut forgiving = base.to_vec();
    forgiving.extend(["--max-failures", "30"]);
    let out = wait_healthy(&forgiving);
    out.succeeds();
    let result = out.wait_result();
    let target = &result.targets[0];
    assert!(
        target.attempts > target.passes,
        "some rounds failed: {result:?}"
    );
    assert!(result.time_to_healthy_ms.unwrap() >= 300, "{result:?}");
    // One forgiven failure is not enough: the window starts over every second failure.
    let mut strict = base.to_vec();
    strict.extend(["--max-failures", "1"]);
    let out = wait_healthy(&strict);
    out.assert_code(1);
    assert!(out.wait_result().targets[0].passes >= 8);
}

// ---- requests with a body ----

/// A server that answers every request with `201 Created` and a JSON body, keeping what it
/// received.
fn order_server() -> kit::RawServer {
    kit::RawServer::start(
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"id\":7}",
    )
}

/// The requests `server` received, each split into its head (lowercase) and its body.
fn received(server: &kit::RawServer) -> Vec<(String, String)> {
    server
        .received()
        .iter()
        .map(|r| {
            let (head, body) = r.split_once("\r\n\r\n").unwrap();
            (head.to_ascii_lowercase(), body.to_string())
        })
        .collect()
}

#[test]
fn data_is_the_body_of_every_attempt_of_a_post() {
    let server = order_server();
    let body = r#"{"order":"smoke-test","qty":1}"#;
    let out = wait_healthy(&[
        "--url",
        &format!("{}orders", server.url()),
        "--method",
        "POST",
        "--header",
        "Content-Type: application/json",
        "--data",
        body,
        "--status",
        "201",
        "--expect",
        ".id == 7",
        "--successes",
        "2",
        "--interval",
        "20ms",
    ]);
    out.succeeds();
    let result = out.wait_result();
    assert_eq!(
        (result.rounds, result.targets[0].last_status),
        (2, Some(201))
    );
    let seen = received(&server);
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (head, sent) in &seen {
        assert!(head.starts_with("post /orders http/1.1"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert_eq!(sent, body, "the same body with every attempt");
    }
}

#[test]
fn a_data_file_goes_to_the_url_it_follows_and_the_method_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("order.json");
    std::fs::write(&file, "{\"from\":\"a file\"}\n").unwrap();
    let (plain, posted) = (order_server(), order_server());
    let out = wait_healthy(&[
        "--status",
        "201",
        "--url",
        &plain.url(),
        "--url",
        &posted.url(),
        "--method",
        "PUT",
        "--data-file",
        file.to_str().unwrap(),
        "--once",
    ]);
    out.succeeds();
    let plain_seen = received(&plain);
    assert!(plain_seen[0].0.starts_with("get / "), "{plain_seen:?}");
    assert_eq!(plain_seen[0].1, "", "no body for the first --url");
    let posted_seen = received(&posted);
    assert!(posted_seen[0].0.starts_with("put / "), "{posted_seen:?}");
    assert_eq!(posted_seen[0].1, "{\"from\":\"a file\"}\n");

    // --data does not change the method: a GET with a body is sent as is.
    let server = order_server();
    let out = wait_healthy(&["--url", &server.url(), "--data", "q=1", "--status", "201"]);
    out.succeeds();
    let seen = received(&server);
    assert!(seen[0].0.starts_with("get / "), "{seen:?}");
    assert_eq!(seen[0].1, "q=1");
}

#[test]
fn a_body_that_cannot_be_had_is_a_usage_error_before_any_request() {
    let server = order_server();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let out = wait_healthy(&[
        "--url",
        &url,
        "--method",
        "POST",
        "--data-file",
        missing.to_str().unwrap(),
    ]);
    out.assert_code(2);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "usage");
    let message = step.error.unwrap().message;
    assert!(
        message.contains("--data-file") && message.contains("missing.json"),
        "{message}"
    );
    let both = [
        "--url",
        &url,
        "--data",
        "x",
        "--data-file",
        missing.to_str().unwrap(),
    ];
    let out = wait_healthy(&both);
    out.assert_code(2).stderr_has("cannot be used with");
    let out = wait_healthy(&["--tcp", "127.0.0.1:9", "--data", "x"]);
    out.assert_code(2).stderr_has("needs a --url");
    assert_eq!(server.requests(), 0, "nothing was sent");
}

// ---- the program to run once healthy ----

/// A port nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// What a program sees of its process: its pid, its arguments, its open descriptors and its
/// signal mask and ignored signals (they survive an exec).
const SELF_REPORT: &str = "echo \"pid $$\"; echo \"args $*\"; ls /proc/self/fd | tr '\\n' ' '; \
                           echo; grep -E '^Sig(Blk|Ign)' /proc/self/status";

#[test]
fn once_healthy_the_program_after_dashes_runs_in_place_of_the_tool() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args(["--url", &ready_url(&app), "--new", "--record"])
        .arg(&file)
        .args(["--", "sh", "-c", SELF_REPORT, "sh", "a", "b c"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let output = kit::wait_bounded(child, kit::RUN_LIMIT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    // The same program run directly: it must see the same descriptors and signal mask, and
    // no signal ignored that it would not ignore anyway (an ignored disposition survives an
    // exec; a handler, even glibc's own, is reset).
    let direct = std::process::Command::new("sh")
        .args(["-c", SELF_REPORT, "sh", "a", "b c"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let direct = String::from_utf8_lossy(&direct.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let expected: Vec<&str> = direct.lines().collect();
    assert_eq!(lines.len(), 5, "stdout is the program's alone: {stdout}");
    assert_eq!(
        lines[0],
        format!("pid {pid}"),
        "exec'd in place, not spawned"
    );
    assert_eq!(
        lines[1..4],
        expected[1..4],
        "args, descriptors, blocked signals"
    );
    let ignored = |line: &str| u64::from_str_radix(line.rsplit('\t').next().unwrap(), 16).unwrap();
    assert_eq!(
        ignored(lines[4]) & !ignored(expected[4]),
        0,
        "signals ignored in the program only: {} vs {}",
        lines[4],
        expected[4]
    );
    let saved = kit::parse_record(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(saved.steps.len(), 1);
    let step = &saved.steps[0];
    assert_eq!(
        (step.tool.as_str(), step.status.as_str()),
        ("ugw-wait-healthy", "ok")
    );
    assert!(step.wait_result().healthy);
    assert_eq!(app.requests_settled(), 1);

    // The program's exit code is the tool's (it is the same process).
    let out = wait_healthy(&["--url", &ready_url(&app), "--", "sh", "-c", "exit 7"]);
    assert_eq!((out.code, out.stdout.as_str()), (7, ""), "{}", out.stderr);
}

#[test]
fn a_failed_wait_runs_nothing_and_the_record_goes_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let touch = format!("touch '{}'", marker.display());
    let out = wait_healthy(&["--tcp", &closed_port(), "--once", "--", "sh", "-c", &touch]);
    out.assert_code(1);
    assert!(!marker.exists(), "the program ran after a failed wait");
    let step = out.last_step();
    assert_eq!(
        (step.status.as_str(), step.error_kind()),
        ("failed", "check_failed")
    );
    assert!(!step.wait_result().healthy);

    // A dry run says it would run a program, and runs none.
    let app = DemoApp::start(&[]);
    let out = wait_healthy(&[
        "--url",
        &ready_url(&app),
        "--dry-run",
        "--",
        "sh",
        "-c",
        &touch,
    ]);
    out.succeeds();
    assert_eq!(out.last_step().result["then_exec"], true);
    assert!(!marker.exists(), "a dry run ran the program");

    let out = wait_healthy(&["--url", &ready_url(&app), "--"]);
    out.fails_with(kit::Kind::Usage)
        .stderr_has("-- needs a command");
    assert_eq!(
        app.requests_settled(),
        0,
        "nothing checked after a usage error"
    );
}

// ---- a dead service is detected, not waited out (issue 21, items 6, 8 and 10) ----

/// A "service" started by the test: it runs `script` and is left unreaped when it exits, so
/// the tool finds it a zombie (as a supervisor that has not reaped it yet leaves it).
fn service(script: &str) -> std::process::Child {
    std::process::Command::new("sh")
        .args(["-c", script])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A URL nothing listens on.
fn closed_url() -> String {
    format!("http://{}/health/ready", closed_port())
}

/// The record's `result.process` of the wait's step.
fn watched_process(out: &kit::Outcome) -> serde_json::Value {
    out.last_step().result["process"].clone()
}

#[test]
fn a_service_that_exits_fails_the_wait_at_once_with_its_exit_status() {
    let _serial = serial();
    // Nothing answers on the port: the release died on its bad setting.
    let mut dead = service("sleep 0.5; exit 3");
    let pid = dead.id().to_string();
    let out = wait_healthy(&["--url", &closed_url(), "--pid", &pid, "--timeout", "20s"]);
    out.assert_code(1);
    assert!(
        out.took() < Duration::from_secs(5),
        "detected, not waited out: {:?}",
        out.took()
    );
    let step = out.last_step();
    assert_eq!(step.error_kind(), "process_exited");
    let message = &step.error.as_ref().unwrap().message;
    assert!(
        message.contains(&format!("pid {pid} exited (exit status 3)"))
            && message.contains("connection refused"),
        "{message}"
    );
    assert_eq!(
        watched_process(&out),
        serde_json::json!({"pid": dead.id(), "exited": true, "exit_code": 3})
    );
    out.stderr_has(format!("watching pid {pid}"));
    dead.wait().unwrap();

    // Killed by a signal: said so.
    let mut killed = service("sleep 30");
    let pid = killed.id().to_string();
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args(["--url", &closed_url(), "--pid", &pid, "--timeout", "20s"]);
    let waiting = kit::observe::Background::start(cmd);
    waiting.wait_for_stderr(&format!("watching pid {pid}"), Duration::from_secs(10));
    kit::signal(killed.id().cast_signed(), libc::SIGKILL);
    let out = waiting.finish();
    out.assert_code(1);
    assert!(out.took() < Duration::from_secs(5), "{:?}", out.took());
    assert_eq!(out.last_step().error_kind(), "process_exited");
    assert_eq!(watched_process(&out)["signal"], 9, "{}", out.stdout);
    killed.wait().unwrap();
}

#[test]
fn a_dead_service_is_not_healthy_because_the_old_release_still_answers() {
    let _serial = serial();
    // The release before keeps the port; the new one exits at once.
    let old = DemoApp::start(&["--version-label", "v1.0.0"]);
    let mut new = service("exit 1");
    assert!(
        kit::gone(new.id().cast_signed(), Duration::from_secs(5)),
        "the new release exited"
    );
    let pid = new.id().to_string();
    let out = wait_healthy(&["--url", &ready_url(&old), "--pid", &pid, "--timeout", "20s"]);
    out.fails_with(kit::Kind::ProcessExited);
    assert!(out.took() < Duration::from_secs(2), "{:?}", out.took());
    assert_eq!(
        old.requests_settled(),
        0,
        "a dead process is not waited on at all"
    );
    assert_eq!(watched_process(&out)["exit_code"], 1);
    new.wait().unwrap();

    // A process that has gone altogether (reaped) is not running either.
    let out = wait_healthy(&["--url", &ready_url(&old), "--pid", &pid, "--timeout", "20s"]);
    out.fails_with(kit::Kind::ProcessExited);
    assert!(
        out.last_step()
            .error
            .unwrap()
            .message
            .contains(&format!("pid {pid} is not running")),
        "{}",
        out.stderr
    );

    // While it runs, the wait is the usual one.
    let mut alive = service("sleep 30");
    let pid = alive.id().to_string();
    let out = wait_healthy(&["--url", &ready_url(&old), "--pid", &pid]);
    out.succeeds();
    assert_eq!(
        watched_process(&out),
        serde_json::json!({"pid": alive.id(), "exited": false})
    );
    let _ = alive.kill();
    let _ = alive.wait();
}

#[test]
fn a_pidfile_is_read_until_it_names_the_process_then_its_exit_ends_the_wait() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    // A service that writes its pidfile a moment after it starts (atomically), then dies;
    // started in a session of its own, as a restart command would, so it is not our child.
    let script = format!(
        "setsid sh -c 'sleep 0.3; echo $$ > {0}.tmp; mv {0}.tmp {0}; sleep 0.5; exit 4' &",
        kit::s(&pidfile)
    );
    std::process::Command::new("sh")
        .args(["-c", &script])
        .status()
        .unwrap();
    let out = wait_healthy(&[
        "--url",
        &closed_url(),
        "--pidfile",
        kit::s(&pidfile),
        "--timeout",
        "20s",
    ]);
    out.assert_code(1);
    assert!(out.took() < Duration::from_secs(5), "{:?}", out.took());
    let step = out.last_step();
    assert_eq!(step.error_kind(), "process_exited");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let message = step.error.unwrap().message;
    assert!(
        message.starts_with(&format!(
            "pid {pid} (from --pidfile {}) exited",
            kit::s(&pidfile)
        )),
        "{message}"
    );
    let process = watched_process(&out);
    assert_eq!(process["pid"], pid);
    assert_eq!(process["pidfile"], kit::s(&pidfile));
    assert_eq!(process["exited"], true);
    // Not our child: the status is known only through the pidfd (Linux 6.15 and later) or
    // while it is still a zombie; never a wrong one.
    assert!(
        process.get("exit_code").is_none_or(|code| *code == 4),
        "{process}"
    );
    out.stderr_has("app.pid: no such file yet; reading it again each round");

    // A pidfile that never names a process: the deadline, and the message says so.
    let out = wait_healthy(&[
        "--url",
        &closed_url(),
        "--pidfile",
        kit::s(&dir.path().join("never.pid")),
        "--timeout",
        "500ms",
    ]);
    out.fails_with(kit::Kind::Timeout);
    assert!(
        out.last_step()
            .error
            .unwrap()
            .message
            .contains("never.pid never named a process (no such file yet)"),
        "{}",
        out.stderr
    );
}

#[test]
fn another_version_that_stays_n_rounds_is_a_failure_not_a_wait() {
    let _serial = serial();
    let app = DemoApp::start(&["--version-label", "v0.65.1"]);
    let out = wait_healthy(&[
        "--url",
        &ready_url(&app),
        "--expect-version",
        "v0.65.3",
        "--fail-if-version-differs",
        "3",
        "--timeout",
        "20s",
    ]);
    out.assert_code(1);
    assert!(out.took() < Duration::from_secs(3), "{:?}", out.took());
    let step = out.last_step();
    assert_eq!(step.error_kind(), "fail_condition");
    let message = step.error.as_ref().unwrap().message.clone();
    assert!(
        message.contains("version v0.65.1, expecting v0.65.3 (the same 3 rounds in a row"),
        "{message}"
    );
    assert_eq!(step.wait_result().rounds, 3, "exactly N rounds: {message}");

    // The right version after a few rounds of the old one, fewer than N: a wait that passes.
    let slow = DemoApp::start(&["--version-label", "v0.65.3", "--ready-after", "400ms"]);
    let out = wait_healthy(&[
        "--url",
        &ready_url(&slow),
        "--expect-version",
        "v0.65.3",
        "--fail-if-version-differs",
        "3",
    ]);
    out.succeeds();

    // A body without a version is not another version: it is waited on.
    let out = wait_healthy(&[
        "--url",
        &ready_url(&app),
        "--expect-version",
        "v0.65.3",
        "--version-path",
        ".nothing",
        "--fail-if-version-differs",
        "1",
        "--timeout",
        "500ms",
    ]);
    out.fails_with(kit::Kind::Timeout);

    // It counts rounds against an expected version: without one it is a usage error.
    let out = wait_healthy(&["--url", &ready_url(&app), "--fail-if-version-differs", "3"]);
    out.assert_code(2).stderr_has("give --expect-version");
    let out = wait_healthy(&[
        "--url",
        &ready_url(&app),
        "--expect-version",
        "1",
        "--fail-if-version-differs",
        "0",
    ]);
    out.assert_code(2);
}

#[test]
fn an_empty_or_null_expected_version_is_a_usage_error() {
    let app = DemoApp::start(&[]);
    let url = ready_url(&app);
    for given in [
        "--expect-version=",
        "--expect-version=null",
        "--expect-version= NULL ",
    ] {
        let out = wait_healthy(&["--url", &url, given, "--timeout", "5s"]).case(given);
        out.fails_with(kit::Kind::Usage)
            .stderr_has("--expect-version was given");
    }
    // As a shell passes an empty variable: a word of its own, even with a record that has a
    // version to expect.
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args(["--url", &url, "--expect-version", "", "--in", "-"]);
    let out = kit::with_stdin(cmd, &kit::fetch_record("v1.0.0"));
    out.assert_code(2)
        .stderr_has("--expect-version was given an empty value");
    assert_eq!(app.requests_settled(), 0, "nothing was waited on");
    // Without a value it is still the record's version.
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args(["--url", &url, "--expect-version", "--in", "-"]);
    kit::with_stdin(cmd, &kit::fetch_record("v1.0.0")).succeeds();
}

/// A Datasette-like `/-/versions.json`: the version is not at `.version`.
const VERSIONS_JSON: &str = r#"{"python": {"version": "3.11.2", "full": "3.11.2 (main, Mar 13 2023)"}, "datasette": {"version": "0.64.8"}, "asgi": "3.0", "sqlite": {"version": "3.40.1", "fts_versions": ["FTS5", "FTS4"]}}"#;

#[test]
fn a_missing_version_names_the_paths_that_look_like_versions() {
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{VERSIONS_JSON}",
        VERSIONS_JSON.len()
    );
    let server = kit::RawServer::start(response.as_bytes());
    let out = wait_healthy(&[
        "--url",
        &server.url(),
        "--expect-version",
        "0.64.8",
        "--timeout",
        "500ms",
    ]);
    out.assert_code(1);
    // On the first miss, on stderr; and in the message the wait ends with.
    let first_miss = out
        .stderr
        .lines()
        .find(|line| line.contains("failing"))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    let hint = "no version at .version in the body; paths that look like versions: \
                .python.version (\"3.11.2\"), .datasette.version (\"0.64.8\"), .asgi (\"3.0\"), \
                .sqlite.version (\"3.40.1\"); give the one to read with --version-path";
    assert!(first_miss.contains(hint), "{first_miss}");
    assert!(out.target_error().contains(hint), "{}", out.target_error());
    // The flag the hint names does it.
    wait_healthy(&[
        "--url",
        &server.url(),
        "--expect-version",
        "0.64.8",
        "--version-path",
        ".datasette.version",
    ])
    .succeeds();
}

/// Drift fix (issue 22): one body limit for ugw-wait-healthy and ugw-verify, 16 MiB (what the
/// metrics scrape reads); a 2 MiB JSON answer is judged whole (before: "the body is larger
/// than 1024 KiB", waited out to the deadline).
#[test]
fn a_2_mib_json_answer_is_judged_whole() {
    let server = kit::RawServer::start(&crate::verify::two_mib_json_answer());
    let out = wait_healthy(&[
        "--once",
        "--url",
        &server.url(),
        "--expect",
        ".status == \"ok\"",
    ]);
    out.succeeds();
    assert!(out.wait_result().healthy, "{}", out.stderr);
}

/// A jq expectation still running at the deadline is never healthy: the wait ends with kind
/// timeout, naming the expression (the same rule ugw-verify keeps for a check's deadline).
#[test]
fn a_jq_expectation_cut_by_the_deadline_is_a_timeout_never_healthy() {
    let server = kit::RawServer::start(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    let out = wait_healthy(&[
        "--timeout",
        "1s",
        "--url",
        &server.url(),
        "--expect",
        "last(range(1e12)) > 0",
    ]);
    out.assert_code(1);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "timeout");
    assert!(!out.wait_result().healthy);
    let message = &step.error.as_ref().unwrap().message;
    assert!(message.contains("last(range(1e12)) > 0"), "{message}");
}
