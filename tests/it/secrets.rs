//! What ugw must never show: a secret (cut or whole, from a body or a flag) anywhere in stdout
//! or stderr, and terminal escapes from remote or upstream data raw on stderr.

use crate::kit;

use kit::{DemoApp, Outcome, RawServer, run, tool, wait_healthy, with_stdin};

/// A password far longer than any excerpt, so that every cut falls inside it.
fn long_password() -> String {
    "CorrectHorseBatteryStaple".repeat(24)
}

/// A server whose JSON body holds the password right after a short field.
fn server_with_password_in_body() -> RawServer {
    let body = format!(
        r#"{{"status":"starting","password":"{}"}}"#,
        long_password()
    );
    RawServer::start(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// No piece of the password in anything the tool wrote, and the failure shows the masked body.
#[track_caller]
fn assert_no_password(out: &Outcome) {
    for piece in ["CorrectHorse", "BatterySt", "Staple", "HorseBat"] {
        out.never_shows(piece);
    }
    let step = out.last_step();
    let error = step.error.expect("a failed step");
    assert!(
        error.message.contains(r#""password":"***""#),
        "the message shows the masked body: {}",
        error.message
    );
    out.stderr_has(r#""password":"***""#);
    let target = &out.wait_result().targets[0];
    assert!(
        target
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains(r#""password":"***""#)),
        "{target:?}"
    );
    assert_eq!(
        target.body_excerpt.as_deref(),
        Some(r#"{"status":"starting","password":"***"}"#)
    );
}

#[test]
fn a_secret_in_a_body_not_matching_body_regex_is_masked_before_the_cut() {
    let server = server_with_password_in_body();
    let out = wait_healthy(&[
        "--url",
        &server.url(),
        "--body-regex",
        r#""status":"ok""#,
        "--timeout",
        "400ms",
    ]);
    out.assert_code(1).stderr_has("does not match --body-regex");
    assert_no_password(&out);
}

#[test]
fn a_secret_in_a_body_failing_expect_is_masked_before_the_cut() {
    let server = server_with_password_in_body();
    let out = wait_healthy(&[
        "--url",
        &server.url(),
        "--expect",
        r#".status == "ok""#,
        "--timeout",
        "400ms",
    ]);
    out.assert_code(1).stderr_has("is not true");
    assert_no_password(&out);
}

#[test]
fn a_secret_in_a_body_matching_fail_if_is_masked_before_the_cut() {
    let server = server_with_password_in_body();
    let out = wait_healthy(&[
        "--url",
        &server.url(),
        "--fail-if",
        r#".status == "starting""#,
        "--timeout",
        "5s",
    ]);
    out.fails_with(kit::Kind::FailCondition);
    assert_no_password(&out);
}

#[test]
fn a_known_secret_echoed_by_the_service_is_masked_before_the_cut() {
    // Only its value marks it secret (`x-note` is no secret name), and it is longer than the
    // record's excerpt, so a cut before the scrub would keep its first part.
    let note = "EchoedNoteValue".repeat(40);
    let app = DemoApp::start(&[]);
    let mut cmd = tool("ugw-wait-healthy");
    cmd.env("UGW_TEST_NOTE", &note).args([
        "--url",
        &format!("{}/debug/echo", app.url),
        "--header-env",
        "X-Note=UGW_TEST_NOTE",
        "--expect",
        r#".path == "/elsewhere""#,
        "--timeout",
        "400ms",
    ]);
    let out = run(cmd);
    out.assert_code(1);
    for piece in ["EchoedNote", "NoteValue", "ValueEchoed"] {
        out.never_shows(piece);
    }
    let excerpt = out.wait_result().targets[0].body_excerpt.clone().unwrap();
    assert!(excerpt.contains(r#""x-note":"***""#), "{excerpt}");
}

#[test]
fn a_url_without_its_scheme_is_refused_without_its_password() {
    for url in [
        "user:SECRETPW12@127.0.0.1:8080/ok",
        "//user:SECRETPW12@127.0.0.1:8080/ok",
        "http:/user:SECRETPW12@127.0.0.1:8080/ok",
    ] {
        let out = wait_healthy(&["--url", url, "--timeout", "1s"]).case(url);
        out.assert_code(2).never_shows("SECRETPW12");
        let step = out.last_step();
        assert_eq!(step.error_kind(), "usage");
        // Refused by name, the rest of what was typed still shown.
        assert!(
            step.error.unwrap().message.contains("127.0.0.1:8080/ok"),
            "{url}"
        );
        out.stderr_has("127.0.0.1:8080/ok");
    }
}

#[test]
fn a_tcp_address_with_user_info_is_refused_without_its_password() {
    let out = wait_healthy(&["--tcp", "app:TCPSECRET55@127.0.0.1:5432", "--timeout", "1s"]);
    out.assert_code(2)
        .never_shows("TCPSECRET55")
        .stderr_has("app:***@127.0.0.1:5432");
    assert_eq!(out.last_step().error_kind(), "usage");
}

/// Raw escapes are gone from stderr, and shown as text instead.
#[track_caller]
fn assert_escapes_shown_not_sent(out: &Outcome, shown: &str) {
    out.stderr_lacks("\x1b")
        .stderr_lacks("\x07")
        .stderr_has(shown);
}

#[test]
fn a_server_s_version_cannot_drive_the_terminal() {
    let body = r#"{"version":"\u001b[31mv1.0.0\u001b]0;owned\u0007"}"#;
    let server = RawServer::start(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let out = wait_healthy(&[
        "--url",
        &server.url(),
        "--expect-version",
        "v2.0.0",
        "--timeout",
        "400ms",
    ]);
    out.assert_code(1);
    assert_escapes_shown_not_sent(
        &out,
        r"version \x1b[31mv1.0.0\x1b]0;owned\x07, expecting v2.0.0",
    );
    // The record keeps the data as it came (JSON escapes it).
    assert!(
        out.target_error().contains("\u{1b}[31mv1.0.0"),
        "{}",
        out.target_error()
    );
}

#[test]
fn an_incoming_step_s_tool_cannot_drive_the_terminal() {
    let record = r#"{"ugw":1,"run":"r","ok":false,"steps":[{"tool":"\u001b[31mugw-evil\u001b[2J","tool_version":"9","host":"h","started":"2026-11-21T23:59:01.123Z","elapsed_ms":1,"status":"failed","exit":1,"changed":false,"dry_run":false,"error":{"kind":"io","message":"m"}}]}"#;
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args(["--cmd", "true"]);
    let out = with_stdin(cmd, &format!("{record}\n"));
    out.assert_code(1);
    assert_eq!(out.last_step().status, "skipped");
    assert_escapes_shown_not_sent(&out, r"failed at \x1b[31mugw-evil\x1b[2J");
}

#[test]
fn a_lock_holder_s_note_cannot_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let file_arg = file.to_str().unwrap();
    wait_healthy(&["--cmd", "true", "--record", file_arg, "--new"]).succeeds();
    let lock_path = dir.path().join("rec.json.lock");
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.lock().unwrap();
    std::fs::write(
        &lock_path,
        r#"{"host":"node7\u001b[2J\r","pid":4242,"since":"2026-11-21T23:59:01.123Z","tool":"\u001b]0;owned\u0007ugw-migrate"}"#,
    )
    .unwrap();
    let out = wait_healthy(&[
        "--cmd",
        "true",
        "--record",
        file_arg,
        "--lock-timeout",
        "200ms",
    ]);
    out.assert_code(4).stderr_lacks("\r");
    assert_escapes_shown_not_sent(
        &out,
        r"by \x1b]0;owned\x07ugw-migrate pid 4242 on node7\x1b[2J\r since",
    );
    drop(lock);
}
