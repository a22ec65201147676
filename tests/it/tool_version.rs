//! `--version` / `-V` on every tool (issue 21 item 14): one line, `ugw-swap 0.1.0`, exit 0, no
//! record, stdin never read (closed, /dev/null or a pipe carrying a record). ugw-swap's and
//! ugw-fetch's release label is `--release`; its old spelling `--version VALUE` is refused with
//! a hint (exit 2, usage) rather than printing the version and exiting 0 in a pipeline that
//! meant the label.

use crate::kit;

use kit::{current, run, s, staged_release, tool, with_stdin};
use std::process::Command;

const TOOLS: [&str; 7] = [
    "ugw-backup",
    "ugw-fetch",
    "ugw-swap",
    "ugw-drain",
    "ugw-wait-healthy",
    "ugw-migrate",
    "ugw-verify",
];

const HINT: &str = "--version is the tool's version now; the release label is --release VALUE";

fn version_line(name: &str) -> String {
    format!("{name} {}\n", env!("CARGO_PKG_VERSION"))
}

#[test]
fn every_tool_prints_its_version_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    for name in TOOLS {
        for flag in ["--version", "-V"] {
            // --record FILE given too: the version is no step, so no FILE is written.
            let file = dir.path().join(format!("{name}{flag}.json"));
            let mut cmd = tool(name);
            cmd.args([flag, "--record", s(&file), "--new"]);
            let out = run(cmd);
            out.succeeds();
            assert_eq!(out.stdout, version_line(name), "{name} {flag}");
            assert_eq!(out.stderr, "", "{name} {flag}");
            assert!(!file.exists(), "{name} {flag} wrote a record file");

            // stdin closed (not even /dev/null): never read.
            let mut closed = Command::new("bash");
            closed.args(["-c", r#"exec "$0" "$1" <&-"#, s(&kit::bin(name)), flag]);
            let out = run(closed);
            out.succeeds();
            assert_eq!(
                out.stdout,
                version_line(name),
                "{name} {flag}, stdin closed"
            );

            // A record on stdin is not read and not passed on.
            let mut piped = tool(name);
            piped.arg(flag);
            let out = with_stdin(piped, &kit::fetch_record("v1"));
            out.succeeds();
            assert_eq!(
                out.stdout,
                version_line(name),
                "{name} {flag}, a record on stdin"
            );
        }
    }
}

#[test]
fn a_bare_version_among_other_flags_is_still_the_version() {
    // A flag (or ugw-swap's subcommand) after --version is no label: the version is printed.
    for args in [
        &["--root", "/nonexistent/app", "--version", "--dry-run"][..],
        &["--version", "status"][..],
        &["--root", "/nonexistent/app", "--version"][..],
    ] {
        let out = kit::swap(args);
        out.succeeds();
        assert_eq!(out.stdout, version_line("ugw-swap"), "{args:?}");
    }
    let mut fetch = tool("ugw-fetch");
    fetch.args([
        "--url",
        "https://releases.invalid/app",
        "--version",
        "--dest",
        "/nonexistent",
    ]);
    let out = run(fetch);
    out.succeeds();
    assert_eq!(out.stdout, version_line("ugw-fetch"));
}

#[test]
fn the_old_label_spelling_is_refused_with_the_hint_on_swap_and_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let from = staged_release(dir.path(), "v1", "one");
    for old in [&["--version", "v1"][..], &["--version=v1"][..]] {
        let mut args = vec!["--root", s(&root), "--from", s(&from)];
        args.extend(old);
        let out = kit::swap(&args);
        out.assert_code(2).stderr_has(HINT);
        let step = out.last_step();
        assert_eq!(
            (step.tool.as_str(), step.error_kind()),
            ("ugw-swap", "usage")
        );
        assert!(step.error.unwrap().message.contains(HINT));
        assert!(!root.exists(), "nothing switched: {old:?}");

        let dest = dir.path().join("staging-fetch");
        let archive = dir.path().join("app.bin");
        std::fs::write(&archive, b"bytes").unwrap();
        let mut fetch = kit::fetch_extract_cmd(&archive, &dest);
        fetch.args(old);
        let out = run(fetch);
        out.assert_code(2).stderr_has(HINT);
        assert_eq!(out.last_step().error_kind(), "usage");
        assert!(!dest.exists(), "nothing fetched: {old:?}");
    }
    // Words after `--` belong to another program (a smoke or exec command line): not a label.
    kit::swap(&["--", "--version", "v1"]).stderr_lacks(HINT);
}

#[test]
fn the_release_flag_labels_the_release() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    let from = staged_release(dir.path(), "build-17", "one");
    let out = kit::swap(&[
        "--root",
        s(&root),
        "--from",
        s(&from),
        "--release",
        "v1.2.3",
    ]);
    out.succeeds();
    assert_eq!(current(&root), "releases/v1.2.3");
    assert_eq!(out.last_step().result["current"], "v1.2.3");

    let archive = dir.path().join("app-build.bin");
    std::fs::write(&archive, b"the artifact").unwrap();
    let url = format!("file://{}", s(&archive));
    let mut fetch = tool("ugw-fetch");
    fetch.args([
        "--url",
        &url,
        "--sha256",
        &kit::sha256(b"the artifact"),
        "--dest",
        s(&dir.path().join("staging-fetch")),
        "--release",
        "2026.5.17",
    ]);
    let out = run(fetch);
    out.succeeds();
    assert_eq!(out.last_step().result["version"], "2026.5.17");
}
