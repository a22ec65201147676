//! ugw-wait-healthy against servers that lie: absurd headers, bodies built to crash a parser,
//! secrets in the body, broken HTTP. Whatever a server sends, the tool fails cleanly with a
//! record (exit 1), keeps its deadline, and never crashes or leaks.

use crate::kit;

use kit::{Outcome, RawServer, serial, wait_healthy};
use std::time::Duration;

/// A raw HTTP/1.1 answer with `status` (e.g. `200 OK`), extra header lines and `body`.
fn response(status: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Nothing in the output says the tool crashed.
#[track_caller]
fn assert_no_crash(out: &Outcome) {
    out.stderr_lacks("panicked").stderr_lacks("overflow");
}

#[test]
fn an_absurd_retry_after_keeps_the_deadline() {
    let _serial = serial();
    for retry_after in [
        "18446744073709551615",
        "99999999999999999999999",
        "Fri, 31 Dec 99999 23:59:59 GMT",
    ] {
        let server = RawServer::start(&response(
            "503 Service Unavailable",
            &format!("Retry-After: {retry_after}\r\n"),
            "",
        ));
        let out = wait_healthy(&["--url", &server.url(), "--timeout", "500ms"]);
        assert_no_crash(&out);
        out.assert_code(1);
        let step = out.last_step();
        assert_eq!(
            (step.status.as_str(), step.error_kind()),
            ("failed", "timeout"),
            "Retry-After: {retry_after}"
        );
        assert!(
            out.took() < Duration::from_secs(1),
            "Retry-After: {retry_after}: wall time {:?}",
            out.took()
        );
        let result = step.wait_result();
        assert!(
            result.deadline_overrun_ms <= 50,
            "Retry-After: {retry_after}: overrun {} ms",
            result.deadline_overrun_ms
        );
        assert_eq!(result.targets[0].last_status, Some(503));
        assert!(server.requests() >= 1);
    }
}

#[test]
fn a_deeply_nested_body_is_not_a_crash() {
    let body = "[".repeat(200_000);
    let server = RawServer::start(&response(
        "200 OK",
        "Content-Type: application/json\r\n",
        &body,
    ));
    // Without JSON assertions the status is all that counts.
    let url = server.url();
    let out = wait_healthy(&["--url", &url, "--timeout", "2s"]);
    assert_no_crash(&out);
    out.succeeds();

    for args in [&["--expect", ".a"][..], &["--expect-version", "1.0.0"]] {
        let mut all = vec!["--url", &url, "--timeout", "300ms"];
        all.extend_from_slice(args);
        let out = wait_healthy(&all);
        assert_no_crash(&out);
        out.assert_code(1);
        let error = out.target_error();
        let lower = error.to_lowercase();
        assert!(
            lower.contains("nest") || lower.contains("deep") || lower.contains("not json"),
            "{args:?}: the error says why the body is refused: {error}"
        );
        let excerpt = out.wait_result().targets[0].body_excerpt.clone();
        assert!(
            excerpt.as_deref().is_none_or(|e| e.len() <= 512),
            "{excerpt:?}"
        );
    }
}

#[test]
fn secrets_in_the_body_are_not_echoed() {
    let server = RawServer::start(&response(
        "200 OK",
        "Content-Type: application/json\r\n",
        r#"{"db_password":"hunter2-secret","api_token":"tok-abcdef123"}"#,
    ));
    let out = wait_healthy(&[
        "--url",
        &server.url(),
        "--expect",
        ".x == 1",
        "--timeout",
        "300ms",
    ]);
    assert_no_crash(&out);
    out.assert_code(1);
    for secret in ["hunter2-secret", "tok-abcdef123"] {
        for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !text.contains(secret),
                "{secret} leaked into {name}: {text}"
            );
        }
    }
}

#[test]
fn broken_http_is_a_clear_failure() {
    for (what, raw, words) in [
        (
            "garbage after the status line",
            &b"HTTP/1.1 200 OK\r\n\x01\x02 this is not a header\r\n\xff\xfe\r\n\r\nbody"[..],
            &[
                "header",
                "response",
                "invalid",
                "malformed",
                "parse",
                "http",
            ][..],
        ),
        (
            "garbage instead of a status line",
            b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
            &[
                "status",
                "response",
                "invalid",
                "malformed",
                "parse",
                "http",
            ],
        ),
        (
            "a connection closed without an answer",
            b"",
            &[
                "closed",
                "disconnect",
                "connection",
                "eof",
                "reset",
                "no response",
                "empty",
            ],
        ),
    ] {
        let server = RawServer::start(raw);
        let out = wait_healthy(&["--url", &server.url(), "--timeout", "300ms"]);
        assert_no_crash(&out);
        out.assert_code(1);
        let step = out.last_step();
        assert_eq!(step.status, "failed", "{what}");
        let result = step.wait_result();
        let target = &result.targets[0];
        assert!(!target.passing, "{what}: {target:?}");
        let error = target.last_error.clone().unwrap_or_default();
        let lower = error.to_lowercase();
        assert!(
            words.iter().any(|w| lower.contains(w)),
            "{what}: last_error says what went wrong: {error:?}"
        );
        assert!(
            error.len() < 300 && !error.contains('\n'),
            "{what}: one short line: {error:?}"
        );
        assert!(server.requests() >= 1, "{what}: the request was sent");
    }
}
