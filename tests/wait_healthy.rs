//! ugw-wait-healthy against the real demo service (and real TCP listeners, commands, TLS):
//! what it waits for, how it fails, and what the record says.

mod kit;

use kit::{DemoApp, require_ipv6, self_signed, serial, wait_healthy};
use std::time::{Duration, Instant};

fn ready_url(app: &DemoApp) -> String {
    format!("{}/health/ready", app.url)
}

#[test]
fn healthy_at_once() {
    let app = DemoApp::start(&[]);
    let out = wait_healthy(&["--url", &ready_url(&app), "--expect", ".status == \"ok\""]);
    out.assert_code(0);
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
    assert!(out.stderr.contains("healthy after"), "{}", out.stderr);
}

#[test]
fn ready_after_a_delay() {
    let _serial = serial();
    let app = DemoApp::start(&["--ready-after", "700ms"]);
    let started = Instant::now();
    let out = wait_healthy(&["--url", &ready_url(&app)]);
    out.assert_code(0);
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
        out.elapsed <= Duration::from_millis(1500),
        "wall time {:?}",
        out.elapsed
    );
    assert!(out.elapsed >= Duration::from_secs(1));
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
    assert!(
        out.stderr
            .contains("error: not healthy within --timeout 1.0 s"),
        "{}",
        out.stderr
    );
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
    assert!(
        out.elapsed < Duration::from_millis(1500),
        "{:?}",
        out.elapsed
    );
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
    wait_healthy(&["--url", &ready_url(&app)]).assert_code(0);
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
    wait_healthy(&["--url", &ready_url(&app), "--body-regex", "not json"]).assert_code(0);
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
    .assert_code(0);

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
    wait_healthy(&["--url", &url, "--expect-version", "1.4.2"]).assert_code(0);
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
    out.assert_code(0);
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
    out.assert_code(2);
    assert!(out.stderr.contains("ugw-fetch"), "{}", out.stderr);

    // The version can live elsewhere in the body.
    wait_healthy(&[
        "--url",
        &url,
        "--expect-version",
        "ok",
        "--version-path",
        ".status",
    ])
    .assert_code(0);
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
    out.assert_code(0);
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
    out.assert_code(0);
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
    out.assert_code(0);
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
    assert!(out.elapsed < Duration::from_secs(2), "{:?}", out.elapsed);
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
    out.assert_code(1);
    assert_eq!(out.last_step().error_kind(), "fail_condition");
    assert!(out.elapsed < Duration::from_secs(2));
}

#[test]
fn retry_after_is_honoured_within_the_deadline() {
    let _serial = serial();
    let app = DemoApp::start(&["--fail-first", "1", "--retry-after", "1"]);
    let out = wait_healthy(&["--url", &ready_url(&app)]);
    out.assert_code(0);
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
    assert!(out.elapsed < Duration::from_secs(1));
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
    let creator = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            std::fs::write(flag, "").unwrap();
        })
    };
    let check = format!("test -f '{}'", flag.display());
    let out = wait_healthy(&["--tcp", &open, "--cmd", &check, "--interval", "100ms"]);
    creator.join().unwrap();
    out.assert_code(0);
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
    assert!(out.elapsed < Duration::from_secs(1), "{:?}", out.elapsed);
}

#[test]
fn ipv6_loopback() {
    if !require_ipv6() {
        return;
    }
    let app = DemoApp::start(&["--listen", "[::1]:0"]);
    assert!(app.url.starts_with("http://[::1]:"), "{}", app.url);
    wait_healthy(&["--url", &ready_url(&app), "--tcp", &app.addr()]).assert_code(0);
    wait_healthy(&["--tcp", "::1:80"]).assert_code(2);
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
    wait_healthy(&["--url", &url, "--cacert", cert.to_str().unwrap()]).assert_code(0);
    let out = wait_healthy(&["--url", &url, "--timeout", "500ms"]);
    out.assert_code(1);
    let error = out.target_error();
    assert!(
        error.to_lowercase().contains("certificate") || error.contains("tls"),
        "{error}"
    );
    wait_healthy(&["--url", &url, "--insecure"]).assert_code(0);
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
    assert!(app.wait_for_requests(2, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(200));
    app.terminate();
    let out = waiter.join().unwrap();
    out.assert_code(0);
    let result = out.wait_result();
    assert_eq!(result.mode, "down");
    assert!(result.targets.iter().all(|t| !t.passing));
    assert!(out.stderr.contains("down after"), "{}", out.stderr);

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
    assert!(out.stdout.contains("deploy:***@"), "{}", out.stdout);
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
    .assert_code(0);
    run(&same, ".headers[\"x-api-token\"] == \"tok-123456\"").assert_code(0);
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
    assert!(out.stderr.contains("--no-such-flag"), "{}", out.stderr);

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
    assert!(
        out.stderr.contains("UGW_TEST_UNSET_VAR is not set"),
        "{}",
        out.stderr
    );
    let out = wait_healthy(&["--help"]);
    out.assert_code(0);
    assert!(out.stdout.contains("--until-down"));
}

#[test]
fn dry_run_checks_the_flags_and_sends_nothing() {
    let app = DemoApp::start(&[]);
    let out = wait_healthy(&["--url", &ready_url(&app), "--dry-run", "--pretty"]);
    out.assert_code(0);
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
    wait_healthy(&["--url", &url, "--max-latency", "2s"]).assert_code(0);

    let app = DemoApp::start(&[]);
    wait_healthy(&["--url", &ready_url(&app), "--method", "HEAD"]).assert_code(0);
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
    let until = Instant::now() + Duration::from_secs(5);
    while !pidfile.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let sleeper: i32 = std::fs::read_to_string(&pidfile)
        .expect("the command started")
        .trim()
        .parse()
        .unwrap();
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
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.env("http_proxy", "http://127.0.0.1:1")
        .env("HTTP_PROXY", "http://127.0.0.1:1")
        .env("ALL_PROXY", "http://127.0.0.1:1")
        .args(["--url", &ready_url(&app), "--timeout", "2s"]);
    kit::run(cmd).assert_code(0);
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
            out.elapsed < Duration::from_millis(1500),
            "{args:?}: {:?}",
            out.elapsed
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
    // The attempt is now blocked reading an answer that never comes.
    std::thread::sleep(Duration::from_millis(100));
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
        .args(["--url", url, "--expect", ".x == 1", "--timeout", "300ms"])
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
    out.assert_code(2);
    assert_eq!(out.last_step().error_kind(), "usage");
    assert!(out.stderr.contains("--header"), "{}", out.stderr);
    let file = std::fs::read_to_string(&record).unwrap_or_default();
    assert_no_secret(&out, &file, &["sk_live_123456"]);
}
