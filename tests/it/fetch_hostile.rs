//! ugw-fetch under attack (issue 20): names from URLs that would leave --dest, leftovers of a
//! killed run, headers for one origin only, URL secrets on disk, and the other hostile cases,
//! each through the real binary against a real HTTP server on loopback.

use crate::kit;

use kit::fetched_names as names;
use kit::file_server::{FileServer, Served, body};
use kit::{Outcome, run, s, sha256, tool};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

fn fetch(args: &[&str]) -> Outcome {
    let mut cmd = tool("ugw-fetch");
    cmd.args(args);
    run(cmd)
}

/// A slow download of `data` from `url` into `dest` with `extra` flags, killed with -9 once a
/// temp file shows up in `dest` or in `elsewhere`.
fn kill_9_mid_download(url: &str, data: &[u8], dest: &Path, elsewhere: &Path, extra: &[&str]) {
    let digest = sha256(data);
    let mut cmd = tool("ugw-fetch");
    cmd.args(["--url", url, "--sha256", &digest, "--dest", s(dest)])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let has_temp = |dir: &Path| {
        names(dir)
            .iter()
            .any(|n| Path::new(n).extension().is_some_and(|e| e == "tmp"))
    };
    assert!(
        kit::eventually(Duration::from_secs(20), || has_temp(dest)
            || has_temp(elsewhere)),
        "no temp file appeared"
    );
    kit::signal(child.id().cast_signed(), libc::SIGKILL);
    let _ = child.wait();
}

/// Item 5: a URL whose decoded name holds `../` never puts a file outside --dest; without
/// --name it is refused before any request.
#[test]
fn a_url_name_that_leaves_dest_is_refused_and_temp_files_stay_in_dest() {
    let server = FileServer::start();
    let data = body(2 * 1024 * 1024);
    let mut slow = Served::new(&data);
    slow.throttle = Some(Duration::from_millis(20));
    let url = server.put("..%2Fvictim-dir%2Fx.tar.gz", slow);
    let dir = tempfile::tempdir().unwrap();
    let (staging, victim) = (dir.path().join("staging"), dir.path().join("victim-dir"));
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::create_dir_all(&victim).unwrap();

    for bad in [&url, &server.url("."), &server.url("%2E%2E")] {
        let out = fetch(&[
            "--url",
            bad,
            "--sha256",
            &sha256(&data),
            "--dest",
            s(&staging),
            "--extract",
        ]);
        let step = out.assert_code(2).last_step();
        assert_eq!(step.error_kind(), "usage", "{bad}: {}", out.stderr);
    }
    assert_eq!(server.log().len(), 0, "refused before any request");

    kill_9_mid_download(
        &url,
        &data,
        &staging,
        &victim,
        &["--name", "app", "--extract"],
    );
    assert!(names(&victim).is_empty(), "{:?}", names(&victim));
    assert!(
        names(&staging)
            .iter()
            .any(|n| n.starts_with(".app.") && Path::new(n).extension().is_some_and(|e| e == "tmp")),
        "{:?}",
        names(&staging)
    );
}

/// Item 20: what a killed run leaves under `--name` (its temp file, an unpack folder) is
/// cleaned by the next run; a look-alike that is not ugw's pattern, or another user's, stays.
#[test]
fn a_killed_runs_leftovers_under_name_are_cleaned_and_nothing_else() {
    let server = FileServer::start();
    let data = body(2 * 1024 * 1024);
    let mut slow = Served::new(&data);
    slow.throttle = Some(Duration::from_millis(20));
    let url = server.put("app-v1.0.bin", slow);
    let dest = tempfile::tempdir().unwrap();
    kill_9_mid_download(&url, &data, dest.path(), dest.path(), &["--name", "app"]);
    let left = names(dest.path());
    assert!(left.iter().any(|n| n.starts_with(".app.")), "{left:?}");
    // An unpack folder of a killed --extract, a file that only looks like a temp file, and a
    // temp file of another user's.
    std::fs::create_dir_all(dest.path().join(".app.Zq81kPp0aX.unpack/bin")).unwrap();
    std::fs::write(dest.path().join(".app.notours.tmp"), "keep").unwrap();
    let foreign = dest.path().join(".app.Q1w2E3r4T5.tmp");
    std::fs::write(&foreign, "someone else's").unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();

    server.put("app-v1.0.bin", Served::new(&data));
    let out = fetch(&[
        "--url",
        &url,
        "--sha256",
        &sha256(&data),
        "--dest",
        s(dest.path()),
        "--name",
        "app",
    ]);
    out.succeeds();
    assert_eq!(
        names(dest.path()),
        [".app.Q1w2E3r4T5.tmp", ".app.notours.tmp", "app"],
        "{}",
        out.stderr
    );
}

/// Item 7: `--header`/`--header-env` reach the origin of `--url` only; a SHA256SUMS file on
/// another origin gets only `--sums-header*`, one on the same origin gets both.
#[test]
fn headers_go_only_to_the_origin_they_were_given_for() {
    let (artifacts, sums_host) = (FileServer::start(), FileServer::start());
    let data = body(1000);
    let url = artifacts.put("app-v1.bin", Served::new(&data));
    let sums = format!("{}  app-v1.bin\n", sha256(&data));
    let sums_elsewhere = sums_host.put("SHA256SUMS", Served::new(sums.as_bytes()));
    let sums_here = artifacts.put("SHA256SUMS", Served::new(sums.as_bytes()));
    let (token, sums_token) = ("release-token-77ab1c", "sums-token-0f9d3e");
    let fetch_with = |sums_url: &str| {
        let dest = tempfile::tempdir().unwrap();
        let mut cmd = tool("ugw-fetch");
        cmd.env("RELEASE_TOKEN", token)
            .env("SUMS_TOKEN", sums_token)
            .args([
                "--url",
                &url,
                "--sha256-url",
                sums_url,
                "--dest",
                s(dest.path()),
            ])
            .args(["--header-env", "Authorization=RELEASE_TOKEN"])
            .args(["--header", "X-Api-Key: k-4411"])
            .args(["--sums-header-env", "X-Sums-Auth=SUMS_TOKEN"]);
        let out = run(cmd);
        out.succeeds().never_shows(sums_token);
    };
    let headers_of = |server: &FileServer, path: &str| {
        server
            .log()
            .iter()
            .filter(|seen| seen.path == path)
            .map(|seen| seen.headers.clone())
            .collect::<Vec<_>>()
            .join("\n")
    };

    fetch_with(&sums_elsewhere);
    let seen = headers_of(&sums_host, "/SHA256SUMS");
    assert!(!seen.is_empty());
    assert!(!seen.contains(token) && !seen.contains("k-4411"), "{seen}");
    assert!(seen.contains(sums_token), "{seen}");
    let seen = headers_of(&artifacts, "/app-v1.bin");
    assert!(seen.contains(token) && seen.contains("k-4411"), "{seen}");
    assert!(!seen.contains(sums_token), "{seen}");

    fetch_with(&sums_here);
    let seen = headers_of(&artifacts, "/SHA256SUMS");
    assert!(seen.contains(token) && seen.contains(sums_token), "{seen}");
}

/// `tree` (its `bin/app` = `content`) packed as `name` (a .tar.gz) under `dir`: its bytes.
fn tar_gz(dir: &Path, name: &str, content: &str) -> Vec<u8> {
    let tree = dir.join(format!("{name}.tree/top"));
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("bin/app"), content).unwrap();
    let archive = dir.join(name);
    let made = std::process::Command::new("tar")
        .args(["czf", s(&archive), "-C", s(tree.parent().unwrap()), "top"])
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::read(&archive).unwrap()
}

/// Every file under `dir`, read whole (folders walked, links not followed).
fn every_file(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            found.extend(every_file(&entry.path()));
        } else if kind.is_file() {
            found.push((entry.path(), std::fs::read(entry.path()).unwrap()));
        }
    }
    found
}

/// Item 8: a presigned URL's secrets are not in the extraction marker, nor in the release
/// ugw-swap makes of it (the marker is copied there).
#[test]
fn url_secrets_never_reach_the_disk() {
    if !kit::require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bytes = tar_gz(dir.path(), "app-v1.2.0.tar.gz", "one");
    let server = FileServer::start();
    let (signature, token) = ("a1b2c3d4e5f60718293a4b5c", "tok-99887766aabb");
    let url = server.put(
        &format!("app-v1.2.0.tar.gz?X-Amz-Signature={signature}&token={token}&x=1"),
        Served::new(&bytes),
    );
    let (staging, root) = (dir.path().join("staging"), dir.path().join("app"));
    let mut fetch = tool("ugw-fetch");
    fetch.args([
        "--url",
        &url,
        "--sha256",
        &sha256(&bytes),
        "--dest",
        s(&staging),
        "--extract",
    ]);
    let fetched = run(fetch);
    fetched.succeeds();
    let mut swap = tool("ugw-swap");
    swap.args(["--root", s(&root)]);
    kit::with_stdin(swap, &fetched.stdout).succeeds();
    let marker = std::fs::read_to_string(root.join("current/.ugw-fetch")).unwrap();
    assert!(marker.contains("app-v1.2.0.tar.gz"), "{marker}");
    for (path, content) in every_file(&staging).into_iter().chain(every_file(&root)) {
        let text = String::from_utf8_lossy(&content);
        assert!(
            !text.contains(signature) && !text.contains(token),
            "{} holds a URL secret: {text}",
            path.display()
        );
    }
}

/// Item 13: a rerun with options that shape staging differently stages again, a failing
/// --smoke fails on what is staged, and concurrent fetches download once.
#[test]
fn already_staged_means_with_the_same_options_and_is_checked_under_the_lock() {
    if !kit::require("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bytes = tar_gz(dir.path(), "app-v2.0.0.tar.gz", "two");
    let server = FileServer::start();
    let url = server.put("app-v2.0.0.tar.gz", Served::new(&bytes));
    let staging = dir.path().join("staging");
    let digest = sha256(&bytes);
    let base = [
        "--url",
        &url,
        "--sha256",
        &digest,
        "--dest",
        s(&staging),
        "--extract",
    ];
    let folder = staging.join("app-v2.0.0");
    assert!(fetch(&base).succeeds().last_step().changed);
    assert!(folder.join("top/bin/app").exists());
    let strip = [&base[..], &["--strip-components", "1"]].concat();
    let step = fetch(&strip).succeeds().last_step();
    assert!(step.changed, "another --strip-components stages again");
    assert!(folder.join("bin/app").exists() && !folder.join("top").exists());
    assert!(!fetch(&strip).succeeds().last_step().changed);
    let smoke = [&strip[..], &["--smoke", "test -f {}/bin/missing"]].concat();
    let out = fetch(&smoke);
    assert_eq!(out.assert_code(1).last_step().error_kind(), "smoke_failed");

    // A single file: another --mode stages it again.
    let data = body(5000);
    let file_url = server.put("tool-v1", Served::new(&data));
    let file_digest = sha256(&data);
    let plain = [
        "--url",
        &file_url,
        "--sha256",
        &file_digest,
        "--dest",
        s(&staging),
    ];
    assert!(fetch(&plain).succeeds().last_step().changed);
    let step = fetch(&[&plain[..], &["--mode", "755"]].concat())
        .succeeds()
        .last_step();
    assert!(step.changed, "another --mode stages again");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(staging.join("tool-v1"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o7777, 0o755);

    // Four fetches at once of a slow artifact: one downloads, the others find it staged.
    let data = body(1024 * 1024);
    let mut slow = Served::new(&data);
    slow.throttle = Some(Duration::from_millis(15));
    let slow_url = server.put("slow-v1", slow);
    let slow_digest = sha256(&data);
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = tool("ugw-fetch");
            cmd.args([
                "--url",
                &slow_url,
                "--sha256",
                &slow_digest,
                "--dest",
                s(&staging),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let changed = children
        .into_iter()
        .map(|child| {
            let output = kit::wait_bounded(child, kit::RUN_LIMIT);
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            kit::parse_record(&String::from_utf8_lossy(&output.stdout))
                .steps
                .pop()
                .unwrap()
                .changed
        })
        .filter(|changed| *changed)
        .count();
    assert_eq!(changed, 1);
    assert_eq!(server.requests_for("slow-v1"), 1);
}

/// Item 19: an artifact named `a$(touch PWNED).bin` and `{}` inside `sh -c "…"` is refused,
/// not run; the path reaches CMD safely as `$1` and `$UGW_ARTIFACT`.
#[test]
fn braces_inside_a_shell_string_never_run_the_artifacts_name() {
    let server = FileServer::start();
    let data = body(100);
    let url = server.put("a%24%28touch%20PWNED%29.bin", Served::new(&data));
    let dir = tempfile::tempdir().unwrap();
    let smoke = |command: &str| {
        let mut cmd = tool("ugw-fetch");
        cmd.current_dir(dir.path()).args([
            "--url",
            &url,
            "--sha256",
            &sha256(&data),
            "--dest",
            s(&dir.path().join("staging")),
            "--smoke",
            command,
        ]);
        run(cmd)
    };
    let out = smoke("sh -c \"test -f {}\"");
    let step = out.assert_code(1).last_step();
    assert_eq!(step.error_kind(), "unsafe_input", "{}", out.stderr);
    out.stderr_has("UGW_ARTIFACT");
    assert!(!dir.path().join("PWNED").exists(), "the name was run");
    for safe in [
        "test -f {} && test -f \"$1\"",
        "sh -c 'test -f \"$UGW_ARTIFACT\"'",
    ] {
        let out = smoke(safe);
        out.succeeds();
        assert!(
            !dir.path().join("PWNED").exists(),
            "{safe}: the name was run"
        );
        assert!(dir.path().join("staging/a$(touch PWNED).bin").exists());
        std::fs::remove_file(dir.path().join("staging/a$(touch PWNED).bin")).unwrap();
    }
}

/// Item 21: a missing required flag is named in the record, not only on stderr.
#[test]
fn the_record_names_a_missing_required_flag() {
    let dest = tempfile::tempdir().unwrap();
    let out = fetch(&["--dest", s(dest.path()), "--no-verify"]);
    let step = out.assert_code(2).last_step();
    let message = &step.error.as_ref().unwrap().message;
    assert!(message.contains("--url <URL>"), "{message}");
    assert!(message.contains("see ugw-fetch --help"), "{message}");
    let out = fetch(&["--no-verify"]);
    let message = out.assert_code(2).last_step().error.unwrap().message;
    assert!(message.contains("--url <URL>, --dest <DIR>"), "{message}");
}

/// A server that answers its n-th connection with the n-th of `answers` (the last one for
/// every later connection), and keeps each request head.
struct Scripted {
    url: String,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Scripted {
    fn start(answers: Vec<Vec<u8>>) -> Scripted {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/app-v3.bin", listener.local_addr().unwrap());
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&heads);
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let answer = &answers[n.min(answers.len() - 1)];
                let _ = stream.write_all(answer);
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        });
        Scripted { url, heads }
    }
}

fn answer(status: &str, headers: &[String], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n").into_bytes();
    for header in headers {
        out.extend_from_slice(format!("{header}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Item 12: a resume answered with a 206 of another version (the server ignored If-Range)
/// is not spliced onto the bytes so far: the download starts over.
#[test]
fn a_resume_from_another_version_of_the_file_starts_over() {
    let (old, new) = (body(300_000), body(300_001)[1..].to_vec());
    assert_ne!(old, new);
    let len = old.len();
    let cut = 100_000;
    let answers = vec![
        // The whole file, version "old", cut short.
        answer(
            "200 OK",
            &[format!("Content-Length: {len}"), "ETag: \"old\"".into()],
            &old[..cut],
        ),
        // The rest, of version "new": the server ignored If-Range.
        answer(
            "206 Partial Content",
            &[
                format!("Content-Length: {}", len - cut),
                format!("Content-Range: bytes {cut}-{}/{len}", len - 1),
                "ETag: \"new\"".into(),
            ],
            &new[cut..],
        ),
        answer(
            "200 OK",
            &[format!("Content-Length: {len}"), "ETag: \"new\"".into()],
            &new,
        ),
    ];
    for integrity in [
        vec!["--no-verify".to_string()],
        vec!["--sha256".into(), sha256(&new)],
    ] {
        let server = Scripted::start(answers.clone());
        let dest = tempfile::tempdir().unwrap();
        let mut args = vec!["--url", server.url.as_str(), "--dest", s(dest.path())];
        args.extend(integrity.iter().map(String::as_str));
        let out = fetch(&args);
        out.succeeds();
        let staged = std::fs::read(dest.path().join("app-v3.bin")).unwrap();
        assert!(
            staged == new,
            "the staged file is not the new one whole: {}",
            out.stderr
        );
        let heads = server.heads.lock().unwrap().clone();
        assert!(heads[1].contains("If-Range: \"old\"") || heads[1].contains("if-range: \"old\""));
        assert_eq!(heads.len(), 3, "{heads:?}");
    }
}

/// Item 10: a redirect to file:// or ftp://, a redirect loop and a 206 to a request for the
/// whole file fail at once with their own message, not at the deadline as a timeout.
#[test]
fn permanent_answers_fail_at_once_with_their_own_message() {
    let cases = [
        (
            "302 Found",
            vec!["Location: file:///etc/passwd".to_string()],
            &b""[..],
            "not an http",
        ),
        (
            "301 Moved",
            vec!["Location: ftp://example.com/x".to_string()],
            &b""[..],
            "not an http",
        ),
        (
            "302 Found",
            vec!["Location: /app-v3.bin".to_string()],
            &b""[..],
            "redirects",
        ),
        (
            "206 Partial Content",
            vec![
                "Content-Range: bytes 0-3/4".to_string(),
                "Content-Length: 4".into(),
            ],
            &b"abcd"[..],
            "206",
        ),
    ];
    for (status, mut headers, body, says) in cases {
        if body.is_empty() {
            headers.push("Content-Length: 0".into());
        }
        let server = Scripted::start(vec![answer(status, &headers, body)]);
        let dest = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let out = fetch(&[
            "--url",
            &server.url,
            "--no-verify",
            "--dest",
            s(dest.path()),
            "--timeout",
            "30s",
        ]);
        let step = out.assert_code(1).last_step();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{status}: {:?}",
            started.elapsed()
        );
        assert_ne!(step.error_kind(), "timeout", "{status}: {}", out.stderr);
        let message = &step.error.as_ref().unwrap().message;
        assert!(message.contains(says), "{status}: {message}");
        assert!(names(dest.path()).is_empty(), "{:?}", names(dest.path()));
    }
}

/// Item 25: clear results. A symlinked file:// or --sha256-file is named as a link (not "Too
/// many levels of symbolic links"); a valid 250-character --name is a usage error (exit 2)
/// before any request; --strip-components that leaves nothing of the archive is refused.
#[test]
fn unclear_results_are_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let data = body(100);
    let real = dir.path().join("app-v1.bin");
    std::fs::write(&real, &data).unwrap();
    let link = dir.path().join("app-link-v1.bin");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let sums = dir.path().join("SHA256SUMS");
    std::fs::write(&sums, format!("{}  app-v1.bin\n", sha256(&data))).unwrap();
    let sums_link = dir.path().join("SUMS-link");
    std::os::unix::fs::symlink(&sums, &sums_link).unwrap();
    let dest = dir.path().join("staging");
    let file_url = |path: &Path| format!("file://{}", s(path));

    let out = fetch(&["--url", &file_url(&link), "--no-verify", "--dest", s(&dest)]);
    let message = out.assert_code(2).last_step().error.unwrap().message;
    assert!(message.contains("is a symbolic link (to "), "{message}");
    let out = fetch(&[
        "--url",
        &file_url(&real),
        "--sha256-file",
        s(&sums_link),
        "--dest",
        s(&dest),
    ]);
    let message = out.assert_code(2).last_step().error.unwrap().message;
    assert!(
        message.contains("--sha256-file") && message.contains("symbolic link"),
        "{message}"
    );
    let out = fetch(&[
        "--url",
        &file_url(&real),
        "--sha256-url",
        &file_url(&sums_link),
        "--dest",
        s(&dest),
    ]);
    let message = out.assert_code(2).last_step().error.unwrap().message;
    assert!(
        message.contains("SUMS-link is a symbolic link (to "),
        "{message}"
    );

    let server = FileServer::start();
    let url = server.put("app-v1.bin", Served::new(&data));
    let long = "a".repeat(250);
    let out = fetch(&[
        "--url",
        &url,
        "--no-verify",
        "--dest",
        s(&dest),
        "--name",
        &long,
    ]);
    let step = out.assert_code(2).last_step();
    assert_eq!(step.error_kind(), "usage", "{}", out.stderr);
    assert_eq!(server.log().len(), 0, "refused before any request");
    let fits = "a".repeat(236);
    fetch(&[
        "--url",
        &url,
        "--no-verify",
        "--dest",
        s(&dest),
        "--name",
        &fits,
    ])
    .succeeds();

    if kit::require("tar") {
        let bytes = tar_gz(dir.path(), "app-v4.tar.gz", "four");
        let url = server.put("app-v4.tar.gz", Served::new(&bytes));
        let out = fetch(&[
            "--url",
            &url,
            "--sha256",
            &sha256(&bytes),
            "--dest",
            s(&dest),
            "--extract",
            "--strip-components",
            "5",
        ]);
        let message = out.assert_code(2).last_step().error.unwrap().message;
        assert!(
            message.contains("--strip-components 5 leaves nothing"),
            "{message}"
        );
        assert!(!dest.join("app-v4").exists());
    }
}
