//! ugw-fetch through the real binary against a real HTTP server on loopback: every integrity
//! form, fail-closed cases that leave nothing behind, retries and resume, no request when
//! already staged, minisign, strict extraction of hostile archives, the smoke test, and a
//! kill -9 mid-download.

use crate::kit;

use kit::fetched_names as names;
use kit::file_server::{FileServer, Served, body};
use kit::{Outcome, Step, run, s, tool};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

fn fetch(args: &[&str]) -> Outcome {
    let mut cmd = tool("ugw-fetch");
    cmd.args(args);
    run(cmd)
}

fn sha256(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new("sha256sum")
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// `ugw-fetch` of `url` into `dest`, its digest read from the SHA256SUMS file at `sums_url`.
fn fetch_with_sums(url: &str, sums_url: &str, dest: &Path) -> Outcome {
    fetch(&["--url", url, "--sha256-url", sums_url, "--dest", s(dest)])
}

fn result(step: &Step, name: &str) -> serde_json::Value {
    step.result[name].clone()
}

#[test]
fn a_good_download_with_a_digest_is_staged_and_recorded() {
    let server = FileServer::start();
    let data = body(300_000);
    let url = server.put("app-v1.2.3-linux-amd64", Served::new(&data));
    let dest = tempfile::tempdir().unwrap();
    let staging = dest.path().join("staging");
    let out = fetch(&[
        "--url",
        &url,
        "--sha256",
        &sha256(&data),
        "--dest",
        s(&staging),
        "--mode",
        "755",
    ]);
    let step = out.succeeds().last_step();
    assert!(step.changed);
    let path = staging.join("app-v1.2.3-linux-amd64");
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert_eq!(result(&step, "path"), s(&path));
    assert_eq!(result(&step, "sha256"), sha256(&data));
    assert_eq!(result(&step, "bytes"), 300_000);
    assert_eq!(result(&step, "version"), "v1.2.3");
    assert_eq!(result(&step, "verified"), true);
    assert_eq!(result(&step, "resumed"), false);
    // A summary line.
    out.stderr_has("verified sha256");
    assert_eq!(
        names(&staging),
        ["app-v1.2.3-linux-amd64"],
        "no temp file left"
    );
}

#[test]
fn a_sha256sums_file_and_a_lone_hash_file_are_both_read() {
    let server = FileServer::start();
    let data = body(50_000);
    let url = server.put("app-2026.5.17.post4.bin", Served::new(&data));
    let sums = format!(
        "{}  other\n{} *app-2026.5.17.post4.bin\n",
        sha256(b"x"),
        sha256(&data)
    );
    let sums_url = server.put("SHA256SUMS", Served::new(sums.as_bytes()));
    let dest = tempfile::tempdir().unwrap();
    let out = fetch_with_sums(&url, &sums_url, dest.path());
    let step = out.succeeds().last_step();
    assert_eq!(result(&step, "version"), "2026.5.17.post4");
    assert_eq!(
        std::fs::read(dest.path().join("app-2026.5.17.post4.bin")).unwrap(),
        data
    );

    let lone = dest.path().join("app.sha256");
    std::fs::write(&lone, format!("{}\n", sha256(&data))).unwrap();
    let other = tempfile::tempdir().unwrap();
    let out = fetch(&[
        "--url",
        &url,
        "--sha256-file",
        s(&lone),
        "--dest",
        s(other.path()),
        "--name",
        "app",
    ]);
    out.succeeds();
    assert_eq!(std::fs::read(other.path().join("app")).unwrap(), data);
}

#[test]
fn a_wrong_digest_fails_closed_and_leaves_nothing() {
    let server = FileServer::start();
    let data = body(100_000);
    let url = server.put("app", Served::new(&data));
    let dest = tempfile::tempdir().unwrap();
    let wrong = sha256(b"something else");
    let out = fetch(&["--url", &url, "--sha256", &wrong, "--dest", s(dest.path())]);
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "checksum_mismatch");
    let message = &step.error.as_ref().unwrap().message;
    assert!(
        message.contains(&wrong) && message.contains(&sha256(&data)),
        "{message}"
    );
    assert_eq!(names(dest.path()), Vec::<String>::new());

    // A SHA256SUMS without a line for the artifact fails closed too.
    let sums_url = server.put(
        "SHA256SUMS",
        Served::new(format!("{wrong}  other\n").as_bytes()),
    );
    let out = fetch_with_sums(&url, &sums_url, dest.path());
    assert_eq!(out.assert_code(1).last_step().error_kind(), "not_found");
    assert_eq!(
        server.requests_for("app"),
        1,
        "not downloaded without a digest to check"
    );
}

#[test]
fn no_integrity_flag_is_a_usage_error_unless_no_verify() {
    let server = FileServer::start();
    let url = server.put("app", Served::new(b"data"));
    let dest = tempfile::tempdir().unwrap();
    let out = fetch(&["--url", &url, "--dest", s(dest.path())]);
    assert_eq!(out.assert_code(2).last_step().error_kind(), "usage");
    assert_eq!(server.log().len(), 0, "nothing was requested");
    let out = fetch(&["--url", &url, "--dest", s(dest.path()), "--no-verify"]);
    let step = out.succeeds().last_step();
    assert_eq!(result(&step, "verified"), false);
    out.stderr_has("unverified");
}

#[test]
fn a_body_cut_short_is_resumed_with_range_and_if_range_and_hashed_whole() {
    let server = FileServer::start();
    let data = body(400_000);
    let mut file = Served::new(&data);
    file.cut_first = (1, 150_000);
    let url = server.put("app", file.clone());
    let dest = tempfile::tempdir().unwrap();
    let out = fetch(&[
        "--url",
        &url,
        "--sha256",
        &sha256(&data),
        "--dest",
        s(dest.path()),
    ]);
    let step = out.succeeds().last_step();
    assert_eq!(result(&step, "resumed"), true);
    assert_eq!(std::fs::read(dest.path().join("app")).unwrap(), data);
    let log = server.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].range, None);
    let resumed_at = log[1]
        .range
        .clone()
        .expect("the second request asks for the rest");
    let from: usize = resumed_at["bytes=".len()..resumed_at.len() - 1]
        .parse()
        .unwrap();
    assert!(from > 0 && from <= 150_000, "{resumed_at}");
    assert_eq!(log[1].if_range.as_deref(), Some(file.etag.as_str()));
}

#[test]
fn a_file_changed_on_the_server_restarts_the_download_from_zero() {
    let server = FileServer::start();
    let old = body(200_000);
    let new: Vec<u8> = old.iter().map(|b| b ^ 0xff).collect();
    let mut file = Served::new(&old);
    file.cut_first = (1, 100_000);
    // Re-uploaded once the first (cut) answer went out: If-Range no longer matches.
    let mut rebuilt = Served::new(&new);
    rebuilt.etag = "\"rebuilt\"".into();
    file.changes_after = Some((1, Box::new(rebuilt)));
    let url = server.put("app", file);
    let dest = tempfile::tempdir().unwrap();
    let out = fetch(&[
        "--url",
        &url,
        "--sha256",
        &sha256(&new),
        "--dest",
        s(dest.path()),
    ]);
    let step = out.succeeds().last_step();
    assert_eq!(std::fs::read(dest.path().join("app")).unwrap(), new);
    assert_eq!(result(&step, "resumed"), false, "started over, not resumed");
    let log = server.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[1].if_range.is_some(),
        "the resume asked only if unchanged"
    );
}

#[test]
fn a_500_then_a_200_is_retried() {
    let server = FileServer::start();
    let data = body(10_000);
    let mut file = Served::new(&data);
    file.fail_first = (2, 500);
    let url = server.put("app", file);
    let dest = tempfile::tempdir().unwrap();
    let out = fetch(&[
        "--url",
        &url,
        "--sha256",
        &sha256(&data),
        "--dest",
        s(dest.path()),
    ]);
    out.succeeds();
    assert_eq!(server.requests_for("app"), 3);
    out.stderr_has("HTTP 500");
    assert_eq!(std::fs::read(dest.path().join("app")).unwrap(), data);

    // 429 (too many requests) is transient too.
    let mut busy = Served::new(&data);
    busy.fail_first = (1, 429);
    let busy_url = server.put("busy", busy);
    fetch(&[
        "--url",
        &busy_url,
        "--sha256",
        &sha256(&data),
        "--dest",
        s(dest.path()),
    ])
    .succeeds();
    assert_eq!(server.requests_for("busy"), 2);

    // A 404 is final: no retries.
    let out = fetch(&[
        "--url",
        &server.url("missing"),
        "--sha256",
        &sha256(&data),
        "--dest",
        s(dest.path()),
    ]);
    assert_eq!(out.assert_code(1).last_step().error_kind(), "not_found");
    assert_eq!(server.requests_for("missing"), 1);
}

#[test]
fn an_artifact_already_staged_is_not_requested_again() {
    let server = FileServer::start();
    let data = body(20_000);
    let url = server.put("app-1.0.0", Served::new(&data));
    let dest = tempfile::tempdir().unwrap();
    let digest = sha256(&data);
    fetch(&["--url", &url, "--sha256", &digest, "--dest", s(dest.path())]).succeeds();
    assert_eq!(server.log().len(), 1);
    let again = fetch(&["--url", &url, "--sha256", &digest, "--dest", s(dest.path())]);
    let step = again.succeeds().last_step();
    assert!(!step.changed);
    assert_eq!(result(&step, "sha256"), digest);
    assert_eq!(result(&step, "version"), "1.0.0");
    assert_eq!(
        server.log().len(),
        1,
        "no request at all: {:?}",
        server.log()
    );
    // Damaged on disk: fetched again.
    std::fs::write(dest.path().join("app-1.0.0"), "tampered").unwrap();
    let repaired = fetch(&["--url", &url, "--sha256", &digest, "--dest", s(dest.path())]);
    assert!(repaired.succeeds().last_step().changed);
    assert_eq!(std::fs::read(dest.path().join("app-1.0.0")).unwrap(), data);
}

/// minisign's own test vector: this key signed the 4 bytes `test` (prehashed).
const MINISIGN_KEY: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
const MINISIGN_SIG: &str = "untrusted comment: signature from minisign secret key
RUQf6LRCGA9i559r3g7V1qNyJDApGip8MfqcadIgT9CuhV3EMhHoN1mGTkUidF/z7SrlQgXdy8ofjb7bNJJylDOocrCo8KLzZwo=
trusted comment: timestamp:1556193335\tfile:test
y/rUw2y8/hOUYjZU71eHp/Wo1KZ40fGy2VJEDl34XMJM+TX48Ss/17u3IvIfbVR1FkZZSNCisQbuQY+bHwhEBg==
";

#[test]
fn a_minisign_signature_must_verify() {
    let server = FileServer::start();
    let sig = server.put("test.minisig", Served::new(MINISIGN_SIG.as_bytes()));
    let good = server.put("test", Served::new(b"test"));
    let dest = tempfile::tempdir().unwrap();
    let args = |url: &str| {
        vec![
            "--url".to_string(),
            url.to_string(),
            "--minisign-pubkey".into(),
            MINISIGN_KEY.into(),
            "--minisign-sig-url".into(),
            sig.clone(),
            "--dest".into(),
            s(dest.path()).to_string(),
        ]
    };
    let mut cmd = tool("ugw-fetch");
    cmd.args(args(&good));
    run(cmd).succeeds();
    assert_eq!(std::fs::read(dest.path().join("test")).unwrap(), b"test");

    let forged = server.put("forged", Served::new(b"Test"));
    let mut cmd = tool("ugw-fetch");
    cmd.args(args(&forged));
    let out = run(cmd);
    assert_eq!(out.assert_code(1).last_step().error_kind(), "bad_signature");
    assert_eq!(
        names(dest.path()),
        ["test"],
        "the forged artifact was not kept"
    );
}

#[test]
fn every_hostile_archive_fails_the_whole_extraction() {
    let dir = tempfile::tempdir().unwrap();
    for hostile in kit::hostile_archives::write_all(dir.path()) {
        for archive in [&hostile.tar, &hostile.tar_gz] {
            let bytes = std::fs::read(archive).unwrap();
            let work = hostile.work_dir();
            let url = format!("file://{}", s(archive));
            let out = fetch(&[
                "--url",
                &url,
                "--sha256",
                &sha256(&bytes),
                "--dest",
                s(&work),
                "--extract",
                "--name",
                "out",
            ]);
            let step = out.assert_code(1).last_step();
            assert!(
                ["unsafe_input", "corrupt"].contains(&step.error_kind()),
                "{}: {}",
                hostile.name,
                step.error_kind()
            );
            assert_eq!(
                names(&work),
                Vec::<String>::new(),
                "{}: something left behind",
                hostile.name
            );
            hostile.assert_untouched();
        }
    }
}

#[test]
fn an_archive_is_extracted_marked_and_not_fetched_again() {
    if !kit::require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("app-1.4.0");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("bin/app"), "#!/bin/sh\necho 1.4.0\n").unwrap();
    let archive = dir.path().join("app-1.4.0.tar.gz");
    let made = std::process::Command::new("tar")
        .args(["czf", s(&archive), "-C", s(dir.path()), "app-1.4.0"])
        .status()
        .unwrap();
    assert!(made.success());
    let bytes = std::fs::read(&archive).unwrap();
    let server = FileServer::start();
    let url = server.put("app-1.4.0.tar.gz", Served::new(&bytes));
    let dest = dir.path().join("staging");
    let args = [
        "--url",
        &url,
        "--sha256",
        &sha256(&bytes),
        "--dest",
        s(&dest),
        "--extract",
        "--strip-components",
        "1",
    ];
    let step = fetch(&args).succeeds().last_step();
    let folder = dest.join("app-1.4.0");
    assert_eq!(result(&step, "path"), s(&folder));
    assert_eq!(result(&step, "version"), "1.4.0");
    assert_eq!(
        std::fs::read_to_string(folder.join("bin/app")).unwrap(),
        "#!/bin/sh\necho 1.4.0\n"
    );
    assert_eq!(
        names(&dest),
        ["app-1.4.0"],
        "the archive itself is not kept"
    );
    let again = fetch(&args).succeeds().last_step();
    assert!(!again.changed);
    assert_eq!(
        server.log().len(),
        1,
        "the marker says the folder is complete"
    );
}

#[test]
fn a_failed_smoke_test_removes_the_artifact_and_records_its_output() {
    let server = FileServer::start();
    let script = b"#!/bin/sh\necho 'segfault in init' >&2\nexit 139\n";
    let url = server.put("app-2.0.0", Served::new(script));
    let dest = tempfile::tempdir().unwrap();
    let out = fetch(&[
        "--url",
        &url,
        "--sha256",
        &sha256(script),
        "--dest",
        s(dest.path()),
        "--mode",
        "755",
        "--smoke",
        "{} --version",
    ]);
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "smoke_failed");
    assert!(
        step.result["smoke"]["output"]
            .as_str()
            .unwrap()
            .contains("segfault in init")
    );
    assert_eq!(
        names(dest.path()),
        Vec::<String>::new(),
        "never under its final name"
    );

    let good = b"#!/bin/sh\necho 2.0.0\n";
    let url = server.put("app-2.0.1", Served::new(good));
    let out = fetch(&[
        "--url",
        &url,
        "--sha256",
        &sha256(good),
        "--dest",
        s(dest.path()),
        "--mode",
        "755",
        "--smoke",
        "{} --version",
    ]);
    out.succeeds();
    assert_eq!(names(dest.path()), ["app-2.0.1"]);
}

#[test]
fn a_kill_9_during_the_download_leaves_nothing_under_the_final_name() {
    let server = FileServer::start();
    let data = body(4 * 1024 * 1024);
    let mut file = Served::new(&data);
    file.throttle = Some(Duration::from_millis(20));
    let url = server.put("app", file);
    let dest = tempfile::tempdir().unwrap();
    let mut cmd = tool("ugw-fetch");
    cmd.args([
        "--url",
        &url,
        "--sha256",
        &sha256(&data),
        "--dest",
        s(dest.path()),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let temp_exists = || {
        names(dest.path())
            .iter()
            .any(|n| n.starts_with(".app.") && n.rsplit('.').next() == Some("tmp"))
    };
    assert!(
        kit::eventually(Duration::from_secs(20), temp_exists),
        "no temp file appeared"
    );
    kit::signal(child.id().cast_signed(), libc::SIGKILL);
    let _ = child.wait();
    assert!(
        !dest.path().join("app").exists(),
        "a partial download carries the final name"
    );
    assert!(temp_exists(), "the killed run's temp file is still there");
    // The next run cleans up after it and stages the artifact.
    let mut file = Served::new(&data);
    file.throttle = None;
    server.put("app", file);
    fetch(&[
        "--url",
        &url,
        "--sha256",
        &sha256(&data),
        "--dest",
        s(dest.path()),
    ])
    .succeeds();
    assert_eq!(names(dest.path()), ["app"]);
}

#[test]
fn max_bytes_refuses_a_larger_artifact_before_writing_it() {
    let server = FileServer::start();
    let data = body(10_000);
    let url = server.put("app", Served::new(&data));
    let dest = tempfile::tempdir().unwrap();
    let out = fetch(&[
        "--url",
        &url,
        "--sha256",
        &sha256(&data),
        "--dest",
        s(dest.path()),
        "--max-bytes",
        "9999",
    ]);
    let step = out.assert_code(1).last_step();
    assert!(step.error.as_ref().unwrap().message.contains("--max-bytes"));
    assert_eq!(names(dest.path()), Vec::<String>::new());
}

#[test]
fn no_room_on_the_destination_is_refused_before_anything_is_written() {
    let server = FileServer::start();
    let data = body(10_000);
    let url = server.put("app", Served::new(&data));
    let dest = tempfile::tempdir().unwrap();
    let with_free = |free: &str| {
        let mut cmd = tool("ugw-fetch");
        cmd.env(ugw_shared::space::FAKE_FREE_ENV, free).args([
            "--url",
            &url,
            "--sha256",
            &sha256(&data),
            "--dest",
            s(dest.path()),
        ]);
        run(cmd)
    };
    let out = with_free("9999");
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "no_space", "{}", out.stderr);
    assert!(
        step.error.as_ref().unwrap().message.contains("9.8 KiB"),
        "names what it needed: {}",
        out.stderr
    );
    assert_eq!(names(dest.path()), Vec::<String>::new());

    // Exactly enough room is enough.
    with_free("10000").succeeds();
    assert_eq!(std::fs::read(dest.path().join("app")).unwrap(), data);
}

#[test]
fn the_proxy_environment_carries_the_download_except_for_no_proxy() {
    let server = FileServer::start();
    let data = body(5000);
    let path = server.put("app-2.0.0", Served::new(&data));
    let server_port: u16 = path
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // A name only the proxy can reach (it tunnels every CONNECT to the file server).
    let url = "http://releases.example.invalid/app-2.0.0";
    let proxy = kit::proxy::ConnectProxy::start(server_port);
    let dest = tempfile::tempdir().unwrap();
    let through = |no_proxy: &str| {
        let mut cmd = tool("ugw-fetch");
        cmd.env("HTTPS_PROXY", proxy.url())
            .env("HTTP_PROXY", proxy.url())
            .env("NO_PROXY", no_proxy)
            .args([
                "--url",
                url,
                "--sha256",
                &sha256(&data),
                "--dest",
                s(dest.path()),
                "--timeout",
                "5s",
            ]);
        run(cmd)
    };
    let out = through("");
    out.succeeds();
    assert_eq!(
        proxy.heard(),
        ["CONNECT releases.example.invalid:80 HTTP/1.1"]
    );
    assert_eq!(
        server.requests_for("app-2.0.0"),
        1,
        "the tunnel reached the server"
    );
    assert_eq!(std::fs::read(dest.path().join("app-2.0.0")).unwrap(), data);
    assert_eq!(out.last_step().result["url"], url);

    std::fs::remove_file(dest.path().join("app-2.0.0")).unwrap();
    let direct = through(".example.invalid");
    direct.assert_code(1);
    assert_eq!(
        proxy.heard().len(),
        1,
        "NO_PROXY went direct, and found no such host"
    );
    assert_eq!(names(dest.path()), Vec::<String>::new());
}

#[test]
fn a_token_from_the_environment_reaches_the_server_and_nothing_else() {
    let server = FileServer::start();
    let data = body(1000);
    let url = server.put("app", Served::new(&data));
    let dest = tempfile::tempdir().unwrap();
    let secret = "release-token-5f1e9a77c3";
    let mut cmd = tool("ugw-fetch");
    cmd.env("RELEASE_TOKEN", secret).args([
        "--url",
        &url,
        "--sha256",
        &sha256(&data),
        "--dest",
        s(dest.path()),
        "--header-env",
        "Authorization=RELEASE_TOKEN",
    ]);
    let out = run(cmd);
    out.succeeds();
    assert!(
        server.log()[0].headers.contains(secret),
        "the server got the header"
    );
    out.never_shows(secret);
}

#[test]
fn dry_run_requests_nothing_and_writes_nothing() {
    let server = FileServer::start();
    let data = body(1000);
    let url = server.put("app-3.1.0", Served::new(&data));
    let dest = tempfile::tempdir().unwrap();
    let staging = dest.path().join("staging");
    let out = fetch(&[
        "--url",
        &url,
        "--sha256",
        &sha256(&data),
        "--dest",
        s(&staging),
        "--dry-run",
    ]);
    let step = out.succeeds().last_step();
    assert!(step.dry_run && !step.changed);
    assert_eq!(result(&step, "version"), "3.1.0");
    assert!(server.log().is_empty());
    assert!(!staging.exists());
}

#[test]
fn https_needs_a_trusted_certificate_cacert_or_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = kit::self_signed(dir.path());
    let app = kit::DemoApp::start(&["--tls-cert", s(&cert), "--tls-key", s(&key)]);
    let url = format!("{}/health/live", app.url);
    assert!(url.starts_with("https://"), "{url}");
    let dest = dir.path().join("staging");
    let base = [
        "--url",
        url.as_str(),
        "--dest",
        s(&dest),
        "--name",
        "live.json",
        "--no-verify",
    ];
    let untrusted = fetch(&base);
    assert_eq!(untrusted.assert_code(1).last_step().error_kind(), "network");
    assert_eq!(names(&dest), Vec::<String>::new());
    fetch(&[&base[..], &["--cacert", s(&cert)]].concat()).succeeds();
    assert!(
        std::fs::read_to_string(dest.join("live.json"))
            .unwrap()
            .contains("alive")
    );
    std::fs::remove_file(dest.join("live.json")).unwrap();
    fetch(&[&base[..], &["--insecure"]].concat()).succeeds();
    assert!(dest.join("live.json").exists());
}

/// A minisign key and the signature of `content` (prehashed, as minisign signs today), made
/// with openssl: `(public key in base64, .minisig text)`.
fn minisign(dir: &Path, content: &[u8]) -> (String, String) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let sign = |input: &[u8], name: &str| -> Vec<u8> {
        std::fs::write(dir.join(name), input).unwrap();
        let sig = format!("{name}.sig");
        openssl(&[
            "pkeyutl", "-sign", "-inkey", "key.pem", "-rawin", "-in", name, "-out", &sig,
        ]);
        std::fs::read(dir.join(sig)).unwrap()
    };
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", "key.pem"]);
    openssl(&[
        "pkey", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "pub.der",
    ]);
    let der = std::fs::read(dir.join("pub.der")).unwrap();
    let public = &der[der.len() - 32..];
    std::fs::write(dir.join("content"), content).unwrap();
    openssl(&[
        "dgst",
        "-blake2b512",
        "-binary",
        "-out",
        "content.b2",
        "content",
    ]);
    let prehash = std::fs::read(dir.join("content.b2")).unwrap();
    let key_id = *b"ugwtest1";
    let signature = sign(&prehash, "prehash");
    let trusted = "timestamp:1764460800\tfile:SHA256SUMS";
    let global = sign(&[&signature[..], trusted.as_bytes()].concat(), "global");
    let key = kit::base64(&[&b"Ed"[..], &key_id, public].concat());
    let sig_line = kit::base64(&[&b"ED"[..], &key_id, &signature].concat());
    let text = format!(
        "untrusted comment: ugw test\n{sig_line}\ntrusted comment: {trusted}\n{}\n",
        kit::base64(&global)
    );
    (key, text)
}

#[test]
fn a_signed_checksum_file_must_verify_before_its_digest_is_trusted() {
    if !kit::require("openssl") {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let server = FileServer::start();
    let data = body(30_000);
    let url = server.put("app-1.0.0", Served::new(&data));
    let sums = format!("{}  app-1.0.0\n", sha256(&data));
    let (key, sig) = minisign(keys.path(), sums.as_bytes());
    let sums_url = server.put("SHA256SUMS", Served::new(sums.as_bytes()));
    let sig_url = server.put("SHA256SUMS.minisig", Served::new(sig.as_bytes()));
    let dest = tempfile::tempdir().unwrap();
    let args = |sums_url: &str| {
        let mut cmd = tool("ugw-fetch");
        cmd.args([
            "--url",
            &url,
            "--sha256-url",
            sums_url,
            "--minisign-pubkey",
            &key,
            "--minisign-sig-url",
            &sig_url,
            "--dest",
            s(dest.path()),
        ]);
        cmd
    };
    run(args(&sums_url)).succeeds();
    assert_eq!(std::fs::read(dest.path().join("app-1.0.0")).unwrap(), data);

    // Someone replaced the artifact and its line in SHA256SUMS, but cannot sign.
    let evil = body(30_001);
    let evil_url = server.put("app-1.0.0-evil", Served::new(&evil));
    let forged = server.put(
        "SHA256SUMS-forged",
        Served::new(format!("{}  app-1.0.0\n", sha256(&evil)).as_bytes()),
    );
    let other = tempfile::tempdir().unwrap();
    let mut cmd = tool("ugw-fetch");
    cmd.args([
        "--url",
        &evil_url,
        "--name",
        "app-1.0.0",
        "--sha256-url",
        &forged,
        "--minisign-pubkey",
        &key,
        "--minisign-sig-url",
        &sig_url,
        "--dest",
        s(other.path()),
    ]);
    let out = run(cmd);
    assert_eq!(out.assert_code(1).last_step().error_kind(), "bad_signature");
    assert_eq!(
        server.requests_for("app-1.0.0-evil"),
        0,
        "nothing downloaded on a forged list"
    );
    assert_eq!(names(other.path()), Vec::<String>::new());
}

/// The real digest with only its last hex digit changed: a comparison of a prefix would take it.
fn last_digit_changed(digest: &str) -> String {
    let (head, last) = digest.split_at(63);
    let changed = if last == "0" { "1" } else { "0" };
    format!("{head}{changed}")
}

#[test]
fn a_digest_wrong_only_in_its_last_digit_fails_closed_and_leaves_nothing() {
    let server = FileServer::start();
    let data = body(80_000);
    let url = server.put("app-v3.1.4.bin", Served::new(&data));
    let real = sha256(&data);
    let near = last_digit_changed(&real);
    assert_ne!(near, real);
    assert_eq!(near[..63], real[..63]);
    let refused = |out: &Outcome, dest: &Path| {
        let step = out.assert_code(1).last_step();
        assert_eq!(step.error_kind(), "checksum_mismatch");
        assert!(!dest.join("app-v3.1.4.bin").exists());
        assert_eq!(names(dest), Vec::<String>::new());
    };

    // --sha256 given on the command line.
    let dest = tempfile::tempdir().unwrap();
    let out = fetch(&["--url", &url, "--sha256", &near, "--dest", s(dest.path())]);
    refused(&out, dest.path());

    // The same near digest taken from a SHA256SUMS file.
    let sums = format!("{near}  app-v3.1.4.bin\n");
    let sums_url = server.put("SHA256SUMS", Served::new(sums.as_bytes()));
    let dest = tempfile::tempdir().unwrap();
    let out = fetch_with_sums(&url, &sums_url, dest.path());
    refused(&out, dest.path());

    // The real digest still stages it.
    let out = fetch(&["--url", &url, "--sha256", &real, "--dest", s(dest.path())]);
    out.succeeds();
    assert_eq!(
        std::fs::read(dest.path().join("app-v3.1.4.bin")).unwrap(),
        data
    );
}

/// An extracted folder is staged with a manifest of every entry, whose digest the step
/// records (ugw-swap checks the folder against it). A folder changed since is not "already
/// staged": it is fetched and extracted again, and the step says so.
#[test]
fn an_extracted_folder_changed_since_its_fetch_is_staged_again() {
    if !kit::require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("app-2.1.0");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("bin/app"), "#!/bin/sh\necho 2.1.0\n").unwrap();
    let archive = dir.path().join("app-2.1.0.tar.gz");
    let made = std::process::Command::new("tar")
        .args(["czf", s(&archive), "-C", s(&tree), "bin"])
        .status()
        .unwrap();
    assert!(made.success());
    let bytes = std::fs::read(&archive).unwrap();
    let dest = dir.path().join("staging");
    let url = format!("file://{}", s(&archive));
    let digest = sha256(&bytes);
    let args = [
        "--url",
        &url,
        "--sha256",
        &digest,
        "--dest",
        s(&dest),
        "--extract",
    ];
    let first = fetch(&args).succeeds().last_step();
    let manifest = result(&first, "manifest_sha256");
    assert!(manifest.is_string(), "{:?}", first.result);
    let folder = dest.join("app-2.1.0");
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join(".ugw-fetch")).unwrap()).unwrap();
    assert_eq!(marker["sha256"], digest.as_str());
    assert_eq!(marker["manifest"]["bin/app"]["type"], "file");

    let again = fetch(&args).succeeds().last_step();
    assert!(!again.changed, "untouched: already staged");
    assert_eq!(result(&again, "manifest_sha256"), manifest);

    std::fs::write(folder.join("bin/app"), "#!/bin/sh\necho tampered\n").unwrap();
    let restaged = fetch(&args).succeeds().last_step();
    assert!(restaged.changed, "a changed file is not taken for staged");
    assert_eq!(result(&restaged, "manifest_sha256"), manifest);
    assert_eq!(
        std::fs::read_to_string(folder.join("bin/app")).unwrap(),
        "#!/bin/sh\necho 2.1.0\n"
    );
}

/// `app-VERSION.tar.gz` (one file, `bin/app`) in `dir`, fetched by file:// and extracted into
/// `dest` as `app-VERSION`, with `extra` flags: the step.
fn fetch_extracted(dir: &Path, dest: &Path, version: &str, extra: &[&str]) -> Step {
    let tree = dir.join("build").join(version);
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("bin/app"), format!("#!/bin/sh\necho {version}\n")).unwrap();
    let archive = dir.join(format!("app-{version}.tar.gz"));
    let made = std::process::Command::new("tar")
        .args(["czf", s(&archive), "-C", s(&tree), "bin"])
        .status()
        .unwrap();
    assert!(made.success());
    let digest = sha256(&std::fs::read(&archive).unwrap());
    let url = format!("file://{}", s(&archive));
    let mut args = vec![
        "--url",
        &url,
        "--sha256",
        &digest,
        "--dest",
        s(dest),
        "--extract",
    ];
    args.extend_from_slice(extra);
    fetch(&args).assert_code(0).last_step()
}

/// Issue 21 item 16: `--keep N` removes the folders ugw-fetch extracted beyond the N newest,
/// never the one just fetched nor one a ugw-fetch step of this run staged, and nothing that
/// ugw-fetch did not make (a file, a folder without its marker or with a marker that is not
/// its own, a symbolic link) or that it cannot recognise (a downloaded file).
#[test]
fn keep_prunes_only_the_old_folders_ugw_fetch_extracted() {
    if !kit::require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("staging");
    for version in ["v1.0.0", "v2.0.0", "v3.0.0", "v4.0.0"] {
        fetch_extracted(dir.path(), &dest, version, &[]);
    }
    // Not ugw-fetch's, or not recognisable as its own: never removed.
    std::fs::write(dest.join("notes.txt"), "mine").unwrap();
    std::fs::create_dir_all(dest.join("data/sub")).unwrap();
    std::fs::create_dir(dest.join("fake")).unwrap();
    std::fs::write(dest.join("fake/.ugw-fetch"), "not a marker").unwrap();
    std::os::unix::fs::symlink(dest.join("app-v1.0.0"), dest.join("app-v0.9.0")).unwrap();
    let plain = dir.path().join("app-v0.1.0.bin");
    std::fs::write(&plain, "a binary").unwrap();
    let plain_url = format!("file://{}", s(&plain));
    fetch(&[
        "--url",
        &plain_url,
        "--sha256",
        &sha256(b"a binary"),
        "--dest",
        s(&dest),
    ])
    .assert_code(0);
    let foreign = ["app-v0.1.0.bin", "app-v0.9.0", "data", "fake", "notes.txt"];

    let step = fetch_extracted(dir.path(), &dest, "v5.0.0", &["--keep", "2"]);
    let mut pruned: Vec<String> = serde_json::from_value(result(&step, "pruned")).unwrap();
    pruned.sort();
    assert_eq!(pruned, ["app-v1.0.0", "app-v2.0.0", "app-v3.0.0"]);
    let mut left: Vec<&str> = foreign.to_vec();
    left.extend(["app-v4.0.0", "app-v5.0.0"]);
    left.sort_unstable();
    assert_eq!(names(&dest), left);
    assert!(dest.join("data/sub").is_dir());

    // A run that fetched v6 and goes on to fetch v7 with --keep 1: v6 is this run's, kept.
    let record = dir.path().join("run.json");
    fetch_extracted(
        dir.path(),
        &dest,
        "v6.0.0",
        &["--record", s(&record), "--new"],
    );
    let step = fetch_extracted(
        dir.path(),
        &dest,
        "v7.0.0",
        &["--keep", "1", "--record", s(&record)],
    );
    let mut pruned: Vec<String> = serde_json::from_value(result(&step, "pruned")).unwrap();
    pruned.sort();
    assert_eq!(pruned, ["app-v4.0.0", "app-v5.0.0"]);
    assert!(dest.join("app-v6.0.0/bin/app").exists(), "this run's fetch");
    assert!(dest.join("app-v7.0.0/bin/app").exists());

    // Staged already, nothing fetched: the prune still runs, and the one asked for stays.
    let step = fetch_extracted(dir.path(), &dest, "v7.0.0", &["--keep", "1"]);
    assert_eq!(result(&step, "pruned"), serde_json::json!(["app-v6.0.0"]));
    let mut left: Vec<&str> = foreign.to_vec();
    left.push("app-v7.0.0");
    left.sort_unstable();
    assert_eq!(names(&dest), left);

    // The one asked for is kept even when it is not among the newest (staged long ago,
    // fetched again), besides the newest.
    let touched = std::process::Command::new("touch")
        .args(["-d", "2000-01-01", s(&dest.join("app-v7.0.0/.ugw-fetch"))])
        .status()
        .unwrap();
    assert!(touched.success());
    fetch_extracted(dir.path(), &dest, "v8.0.0", &[]);
    let step = fetch_extracted(dir.path(), &dest, "v7.0.0", &["--keep", "1"]);
    assert_eq!(result(&step, "pruned"), serde_json::Value::Null);
    assert!(dest.join("app-v8.0.0/bin/app").exists());
    assert!(dest.join("app-v7.0.0/bin/app").exists());
}
