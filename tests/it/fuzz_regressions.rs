//! Regression tests for what the fuzz targets (fuzz/, `make fuzz`) found: each input is the
//! crash, minimised by hand to what makes it, so the defect stays fixed without a fuzzer.
use crate::kit;
use std::io::Write;
use std::process::Stdio;

/// A literal `\x` in untrusted text, then `{` and a character of several bytes, where an
/// excerpt is cut: the cut used to take `\x` and the next two bytes as one made-visible
/// escape and split the character (a panic in every reader that shows an excerpt).
#[test]
fn an_excerpt_never_cuts_inside_a_character_after_a_literal_backslash_x() {
    let mut text = b"\\x{\xdf\xb6".to_vec();
    text.extend(std::iter::repeat_n(b'a', 100));
    let shown = ugw_shared::scrub::excerpt(&text, 20);
    assert!(shown.starts_with("\\x{\u{7f6}"), "{shown:?}");
    assert!(shown.len() <= 20, "{shown:?}");
    // The made-visible escapes themselves are still never cut.
    let shown = ugw_shared::scrub::excerpt(b"ab\x1bcdefghijklmnopqrstuvwxyz", 6);
    assert!(shown.starts_with("ab\\x1b") || shown == "ab…", "{shown:?}");
}

/// The fuzz target `record`: input that is not UTF-8, with a `\x7` before the bad byte, is a
/// bad record (exit 2) named in an excerpt, never a panic (exit 101).
#[test]
fn a_record_with_a_literal_backslash_x_before_invalid_utf8_is_refused_not_a_panic() {
    let mut input = b"{\"ugw\":1,\"run\":\"\\x7\x90".to_vec();
    input.extend(std::iter::repeat_n(b'a', 80));
    let mut cmd = kit::tool("ugw-verify");
    cmd.args(["--cmd", "true"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not valid JSON"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The fuzz target `prometheus`: a malformed line holding `\x{߶` longer than an excerpt is
/// an error naming its line, never a panic.
#[test]
fn a_malformed_metrics_line_with_a_literal_backslash_x_is_an_error_not_a_panic() {
    let line = format!("02=\\x{{\u{7f6}{}\n", "h".repeat(300));
    let e = ugw_shared::prometheus::Exposition::parse(&line).unwrap_err();
    assert!(!format!("{e:?}").is_empty());
}

/// The fuzz target `migrate_source`: an unterminated SQLite `[` name at the end of a file
/// (and one ending inside a character of several bytes) is linted as a name, never a panic.
#[test]
fn lint_reads_an_unterminated_bracket_name_at_the_end_of_a_file() {
    for tail in ["[", "[\u{e9}"] {
        let dir = tempfile::tempdir().unwrap();
        let migrations = dir.path().join("migrations");
        std::fs::create_dir(&migrations).unwrap();
        std::fs::write(
            migrations.join("0001_t.sql"),
            format!("CREATE TABLE a (id INTEGER NOT NULL);\nCREATE TABLE {tail}"),
        )
        .unwrap();
        let db = format!("sqlite://{}", kit::s(&dir.path().join("app.db")));
        let mut cmd = kit::tool("ugw-migrate");
        cmd.args([
            "lint",
            "--in",
            "none",
            "--dir",
            kit::s(&migrations),
            "--db",
            &db,
        ]);
        let out = kit::run(cmd);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert_ne!(out.code, 101, "{}", out.stderr);
    }
}
