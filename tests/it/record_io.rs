//! Where the record comes from and where it goes: the stdin rules (never eat a shell's
//! script, never consume what is not a record, an upstream that died), `--record FILE` with
//! its lock, skipping after a failure, and the limits on what is accepted.

use crate::kit;

use kit::{DemoApp, bash, parse_record, require, tool, wait_healthy, with_stdin};
use std::time::Duration;

/// A temp folder with `rec.json` started by one ok step against `url` (`--new`).
fn started_record(url: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    wait_healthy(&["--url", url, "--record", file.to_str().unwrap(), "--new"]).succeeds();
    (dir, file)
}

fn failed_record(exit: i32) -> String {
    serde_json::json!({
        "ugw": 1, "run": "r-failed", "ok": true,
        "steps": [{"tool": "ugw-migrate", "tool_version": "0.1.0", "host": "h", "started": "", "elapsed_ms": 1,
                   "status": "failed", "exit": exit, "changed": false, "dry_run": false,
                   "error": {"kind": "busy", "message": "lock held"}}]
    })
    .to_string()
}

#[test]
fn a_failed_record_is_skipped_with_its_exit_code() {
    let app = DemoApp::start(&[]);
    let url = format!("{}/health/ready", app.url);
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args(["--url", &url, "--in", "-"]);
    let out = with_stdin(cmd, &failed_record(4));
    out.assert_code(4);
    let record = out.record();
    assert!(!record.ok, "ok is recomputed from the steps, not trusted");
    assert_eq!(record.steps.len(), 2);
    assert_eq!(
        (record.steps[1].status.as_str(), record.steps[1].exit),
        ("skipped", 4)
    );
    assert_eq!(app.requests_settled(), 0, "a skipped step does nothing");
    // Its message says what happened (nothing), not what --always would do.
    out.stderr_has(
        "skipped, nothing done: the run already failed at ugw-migrate (exit 4); \
             give --always to run this step after a failure",
    );

    // --always runs anyway.
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args(["--url", &url, "--in", "-", "--always"]);
    let out = with_stdin(cmd, &failed_record(4));
    out.succeeds();
    assert_eq!(out.record().steps[1].status, "ok");
    assert_eq!(app.requests_settled(), 1);
}

#[test]
fn an_upstream_that_died_is_exit_3_never_a_fresh_start() {
    if !require("bash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = bash(
        "true | ugw-wait-healthy --url http://127.0.0.1:1/",
        dir.path(),
    );
    out.assert_code(3);
    let step = out.last_step();
    assert_eq!((step.error_kind(), step.exit), ("no_input", 3));
    // With pipefail the pipeline's status is that of the rightmost command that failed: the
    // tool's 3 (cat succeeds), not the upstream's 1, so the script sees that no record came.
    let out = bash(
        "set -o pipefail; (exit 1) | ugw-wait-healthy --url http://127.0.0.1:1/ | cat",
        dir.path(),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
}

#[test]
fn what_is_not_a_record_is_refused_and_not_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let out = bash(
        "echo 'hello world' | ugw-wait-healthy --url http://127.0.0.1:1/",
        dir.path(),
    );
    // It quotes the first bytes.
    out.fails_with(kit::Kind::BadRecord)
        .stderr_has("'hello world'");

    // Inherited stdin that is not a record is left alone: the next command still reads it all.
    let app = DemoApp::start(&[]);
    std::fs::write(dir.path().join("hosts"), "node1\nnode2\n").unwrap();
    let script = format!(
        "{{ ugw-wait-healthy --url {}/health/ready > rec.json; cat; }} < hosts",
        app.url
    );
    let out = bash(&script, dir.path());
    out.succeeds();
    assert_eq!(out.stdout, "node1\nnode2\n");
    let record = parse_record(&std::fs::read_to_string(dir.path().join("rec.json")).unwrap());
    assert_eq!(record.steps.len(), 1);
}

#[test]
fn a_record_from_a_file_or_pipe_is_appended_to() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.json"), kit::fetch_record("v1.0.0")).unwrap();
    let script = format!(
        "ugw-wait-healthy --url {0}/health/ready --expect-version < in.json \
         | ugw-wait-healthy --url {0}/health/live",
        app.url
    );
    let out = bash(&script, dir.path());
    out.succeeds();
    let record = out.record();
    assert_eq!(record.run, "20261121T235901Z-test-0001");
    let tools: Vec<_> = record.steps.iter().map(|s| s.tool.as_str()).collect();
    assert_eq!(tools, ["ugw-fetch", "ugw-wait-healthy", "ugw-wait-healthy"]);
    // Each step says which run it was written in: the record's.
    assert!(
        record.steps.iter().all(|s| s.run == record.run),
        "{:?}",
        record.steps
    );
}

/// The trust rule: an earlier step of another run or another host is never acted on, and the
/// message says why it was not taken.
#[test]
fn a_step_of_another_run_or_host_is_not_taken_from_the_record() {
    let app = DemoApp::start(&[]);
    let fetch = |run: &str, host: &str| {
        serde_json::json!({"ugw": 1, "run": "r-today", "ok": true, "steps": [{
            "tool": "ugw-fetch", "tool_version": "0.1.0", "run": run, "host": host,
            "started": "2026-11-21T23:59:01.123Z", "elapsed_ms": 5, "status": "ok", "exit": 0,
            "changed": true, "dry_run": false,
            "result": {"url": "https://releases.invalid/app", "path": "/opt/app/staging/app",
                       "sha256": "00", "bytes": 1, "version": "v1.0.0", "verified": true,
                       "resumed": false}}]})
        .to_string()
    };
    let wait = || {
        let mut cmd = kit::tool("ugw-wait-healthy");
        cmd.args([
            "--url",
            &format!("{}/health/ready", app.url),
            "--expect-version",
        ])
        .args(["--timeout", "5s", "--host-id", "node1"]);
        cmd
    };
    kit::with_stdin(wait(), &fetch("r-today", "node1")).succeeds();
    for (run, host, why) in [
        ("r-yesterday", "node1", "belongs to run r-yesterday"),
        ("r-today", "node2", "written on host \"node2\""),
        ("", "node1", "names no run"),
    ] {
        let out = kit::with_stdin(wait(), &fetch(run, host));
        out.assert_code(2);
        let step = out.last_step();
        let message = &step.error.as_ref().unwrap().message;
        assert!(message.contains(why), "{run}/{host}: {message}");
        assert_eq!(step.run, "r-today");
    }
}

#[test]
fn records_that_cannot_be_trusted_are_refused() {
    let big = format!(
        "{{\"ugw\":1,\"run\":\"r\",\"ok\":true,\"steps\":[],\"pad\":\"{}\"}}",
        "x".repeat(17 * 1024 * 1024)
    );
    for (input, needle) in [
        (
            r#"{"ugw":2,"run":"r","ok":true,"steps":[]}"#.to_string(),
            "version 2",
        ),
        (
            r#"{"ugw":1,"run":"r","steps":[{"tool":"x"}]}"#.to_string(),
            "malformed",
        ),
        (r#"{"name":"not ours"}"#.to_string(), "not a ugw record"),
        ("{ broken".to_string(), "not valid JSON"),
        (big, "larger than 16 MiB"),
    ] {
        let mut cmd = tool("ugw-wait-healthy");
        cmd.args(["--url", "http://127.0.0.1:1/", "--in", "-"]);
        let out = with_stdin(cmd, &input).case(needle);
        out.fails_with(kit::Kind::BadRecord).stderr_has(needle);
    }
}

#[test]
fn unknown_fields_pass_through_unchanged() {
    let app = DemoApp::start(&[]);
    let input = r#"{"ugw":1,"run":"r1","ok":true,"from_the_future":{"a":[1,2]},"steps":[{"tool":"ugw-next","status":"ok","novel":true,"result":{"x":1}}]}"#;
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args(["--url", &format!("{}/health/ready", app.url), "--in", "-"]);
    let out = with_stdin(cmd, input);
    out.succeeds();
    let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(value["from_the_future"], serde_json::json!({"a": [1, 2]}));
    assert_eq!(value["steps"][0]["novel"], true);
}

#[test]
fn record_file_needs_new_to_start_and_keeps_the_previous_run() {
    let app = DemoApp::start(&[]);
    let url = format!("{}/health/ready", app.url);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upgrade.json");
    let path = file.to_str().unwrap();
    let out = wait_healthy(&["--url", &url, "--record", path]);
    out.assert_code(2).stderr_has("--new");
    assert!(!file.exists(), "a typo never starts a run");
    assert_eq!(app.requests_settled(), 0);

    wait_healthy(&["--url", &url, "--record", path, "--new"]).succeeds();
    let first = parse_record(&std::fs::read_to_string(&file).unwrap());
    wait_healthy(&["--url", &url, "--record", path]).succeeds();
    let second = parse_record(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(
        (second.run.as_str(), second.steps.len()),
        (first.run.as_str(), 2)
    );
    wait_healthy(&["--url", &url, "--record", path, "--new"]).succeeds();
    let prev =
        parse_record(&std::fs::read_to_string(dir.path().join("upgrade.json.prev")).unwrap());
    assert_eq!(
        (prev.run.as_str(), prev.steps.len()),
        (first.run.as_str(), 2)
    );
    let third = parse_record(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(third.steps.len(), 1);
    assert_ne!(third.run, first.run, "--new starts a new run");
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["upgrade.json", "upgrade.json.lock", "upgrade.json.prev"],
        "no temp files left"
    );

    // A damaged record file is refused, and left as it was.
    std::fs::write(&file, "garbage").unwrap();
    wait_healthy(&["--url", &url, "--record", path]).assert_code(2);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "garbage");
}

#[test]
fn five_processes_appending_to_one_record_lose_no_step() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let path = file.to_str().unwrap().to_string();
    wait_healthy(&["--cmd", "true", "--record", &path, "--new"]).succeeds();
    // The test holds the lock, so the writers must queue for it whatever the machine's load:
    // without the lock, one of them would write (and exit) while the test holds it.
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.path().join("rec.json.lock"))
        .unwrap();
    held.lock().unwrap();
    let children: Vec<_> = (0..5)
        .map(|i| {
            let mut cmd = tool("ugw-wait-healthy");
            cmd.args([
                "--cmd",
                "true",
                "--record",
                &path,
                "--host-id",
                &format!("node{i}"),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let lock_path = dir.path().join("rec.json.lock");
    for child in &children {
        assert!(
            kit::eventually(Duration::from_secs(20), || {
                kit::observe::has_open(child.id(), &lock_path)
            }),
            "pid {} never reached the lock",
            child.id()
        );
    }
    // Every writer is at the lock; none gets past it while the test holds it.
    let window = std::time::Instant::now() + Duration::from_secs(1);
    let mut children = children;
    while std::time::Instant::now() < window {
        for child in &mut children {
            assert!(
                child.try_wait().unwrap().is_none(),
                "a writer did not wait for the lock"
            );
        }
        assert_eq!(
            parse_record(&std::fs::read_to_string(&file).unwrap())
                .steps
                .len(),
            1
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    held.unlock().unwrap();
    for child in children {
        let output = kit::wait_bounded(child, Duration::from_secs(20));
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let record = parse_record(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(record.steps.len(), 6, "no step lost: {record:?}");
    let mut hosts: Vec<_> = record.steps[1..].iter().map(|s| s.host.clone()).collect();
    hosts.sort();
    assert_eq!(hosts, ["node0", "node1", "node2", "node3", "node4"]);
}

/// Whether process `pid` has `path` open (it is inside `lock::acquire`).
#[test]
fn a_held_record_lock_is_exit_4_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let app = DemoApp::start(&[]);
    let url = format!("{}/health/ready", app.url);
    wait_healthy(&["--url", &url, "--record", file.to_str().unwrap(), "--new"]).succeeds();
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.path().join("rec.json.lock"))
        .unwrap();
    lock.lock().unwrap();
    std::fs::write(
        dir.path().join("rec.json.lock"),
        r#"{"host":"node7","pid":4242,"since":"2026-11-21T23:59:01.123Z","tool":"ugw-migrate"}"#,
    )
    .unwrap();
    let out = wait_healthy(&[
        "--url",
        &url,
        "--record",
        file.to_str().unwrap(),
        "--lock-timeout",
        "300ms",
    ]);
    out.assert_code(4)
        .stderr_has("pid 4242 on node7 since 2026-11-21T23:59:01.123Z");
    let step = out.last_step();
    assert_eq!((step.error_kind(), step.exit), ("busy", 4));
    drop(lock);
    assert_eq!(
        parse_record(&std::fs::read_to_string(&file).unwrap())
            .steps
            .len(),
        1,
        "the file was not touched"
    );
}

#[test]
fn a_job_script_fed_to_bash_on_stdin_is_never_eaten() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/health/ready", app.url);
    let nested = format!(
        "#!/bin/bash\nugw-wait-healthy --url {url} > nested.json\necho nested-done > nested.txt\n"
    );
    std::fs::write(dir.path().join("deploy.sh"), nested).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(dir.path().join("deploy.sh"))
        .status()
        .unwrap();
    // The lines after each call start with `{`: a tool that peeked at the script and took it
    // for a record would swallow them. The pipe stays open, as a CI runner keeps it.
    let script = format!(
        "ugw-wait-healthy --url {url} > first.json\n\
         {{ echo one > after1.txt; }}\n\
         ./deploy.sh\n\
         {{ echo two > after2.txt; }}\n\
         ugw-wait-healthy --url {url} --quiet\n\
         echo three > after3.txt\n\
         exit 0\n"
    );
    let mut child = std::process::Command::new("bash")
        .current_dir(dir.path())
        .env("PATH", kit::path_with_bins())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, script.as_bytes()).unwrap();
    let output = kit::wait_bounded(child, Duration::from_secs(20));
    drop(stdin);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in ["first.json", "nested.json"] {
        let record = parse_record(&std::fs::read_to_string(dir.path().join(file)).unwrap());
        assert_eq!(record.steps.len(), 1, "{file} is a new record");
    }
    for file in ["after1.txt", "nested.txt", "after2.txt", "after3.txt"] {
        assert!(
            dir.path().join(file).exists(),
            "{file}: the rest of the script ran"
        );
    }
    assert_eq!(
        parse_record(&String::from_utf8_lossy(&output.stdout))
            .steps
            .len(),
        1
    );
}

#[test]
fn a_while_read_loop_over_hosts_loses_no_host() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hosts"), "web1\nweb2\nweb3\n").unwrap();
    let script = format!(
        "while read -r h; do ugw-wait-healthy --url {}/health/ready --host-id \"$h\" --quiet; done < hosts",
        app.url
    );
    let out = bash(&script, dir.path());
    out.succeeds();
    let hosts: Vec<String> = out
        .stdout
        .lines()
        .map(|l| parse_record(l).steps[0].host.clone())
        .collect();
    assert_eq!(hosts, ["web1", "web2", "web3"]);
    assert_eq!(out.stderr, "", "--quiet prints only errors");
    // The same through a pipe.
    let script = format!(
        "cat hosts | while read -r h; do ugw-wait-healthy --url {}/health/ready --host-id \"$h\"; done",
        app.url
    );
    let out = bash(&script, dir.path());
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stderr);
}

#[test]
fn a_slow_upstream_gets_a_hint_after_two_seconds() {
    let _serial = kit::serial();
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.json"), kit::fetch_record("v1.0.0")).unwrap();
    let out = bash(
        &format!(
            "(sleep 2.5; cat in.json) | ugw-wait-healthy --url {}/health/ready",
            app.url
        ),
        dir.path(),
    );
    out.succeeds()
        .stderr_has("waiting for a record on stdin")
        .stderr_has("--in none");
    assert_eq!(
        out.stderr.matches("waiting for a record").count(),
        1,
        "said once"
    );
    // It names who is to write the record.
    out.stderr_has("sleep (pid ");
    assert_eq!(out.record().steps.len(), 2);
}

/// A ugw tool upstream reports its own progress: waiting for it is normal and goes unsaid.
#[test]
fn a_slow_ugw_tool_upstream_gets_no_hint() {
    let _serial = kit::serial();
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = bash(
        &format!(
            "ugw-wait-healthy --in none --once --url '{0}/slow?ms=2600' \
             | ugw-wait-healthy --url {0}/health/ready",
            app.url
        ),
        dir.path(),
    );
    out.succeeds().stderr_lacks("waiting for a record");
    assert_eq!(out.record().steps.len(), 2);
    let record = out.record();
    let (first, second) = (&record.steps[0], &record.steps[1]);
    assert!(first.elapsed_ms >= 2600, "the upstream was slow: {first:?}");
    // The second step's time is its own: it starts when the record arrives.
    assert!(second.elapsed_ms < 2000, "{second:?}");
    assert!(second.started > first.started, "{record:?}");
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = bash(
        &format!(
            "ugw-wait-healthy --url {}/health/ready | true; echo \"rc=${{PIPESTATUS[0]}}\"",
            app.url
        ),
        dir.path(),
    );
    out.stdout_has("rc=0").stderr_lacks("panicked");
    // The check itself ran and passed before the record met the closed pipe.
    assert_eq!(app.requests_settled(), 1, "{}", app.log());
    out.stderr_has("healthy after");
}

#[test]
fn a_file_or_pipe_made_for_us_is_not_consumed_even_when_shared() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "hello\nworld\n").unwrap();
    // fd 3 shares its offset with the tool's stdin: a read would move it for `cat` too.
    let out = bash(
        "exec 3< in.txt; ugw-wait-healthy --url http://127.0.0.1:1/ <&3 > rec.json; \
         echo \"rc=$?\"; cat <&3",
        dir.path(),
    );
    assert_eq!(out.stdout, "rc=2\nhello\nworld\n", "{}", out.stderr);
    let record = parse_record(&std::fs::read_to_string(dir.path().join("rec.json")).unwrap());
    assert_eq!(record.steps[0].error.as_ref().unwrap().kind, "bad_record");

    // The same through a pipe.
    let out = bash(
        "{ ugw-wait-healthy --url http://127.0.0.1:1/ <&3 > rec.json; echo \"rc=$?\"; cat <&3; } \
         3< <(printf 'hello\\n')",
        dir.path(),
    );
    assert_eq!(out.stdout, "rc=2\nhello\n", "{}", out.stderr);
}

/// A script whose lines after the tool's start with `{`: a tool that took it for a record
/// would swallow them.
fn job_script(tool_line: &str) -> String {
    format!(
        "echo \"$$\" > shell.pid\n\
         {tool_line} > first.json; echo \"rc=$?\" > rc.txt\n\
         {{ echo one > after1.txt; }}\n\
         echo two > after2.txt\n\
         exit 0\n"
    )
}

/// The script ran to its end and the tool wrote a fresh record.
#[track_caller]
fn assert_script_ran(out: &kit::Outcome, dir: &std::path::Path) {
    assert_eq!(out.code, 0, "{}", out.stderr);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    assert_eq!(
        read("rc.txt"),
        "rc=0\n",
        "the tool succeeded: {}",
        out.stderr
    );
    let record = parse_record(&read("first.json"));
    assert_eq!(record.steps.len(), 1, "a new record");
    for file in ["after1.txt", "after2.txt"] {
        assert!(
            dir.join(file).exists(),
            "{file}: the rest of the script ran\nstderr: {}",
            out.stderr
        );
    }
}

#[test]
fn a_job_script_fed_to_a_shell_that_is_pid_1_is_never_eaten() {
    if !require("unshare") {
        return;
    }
    // Containers (GitLab's docker executor) run the job's shell as PID 1.
    let probe = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    if !probe.status.success() {
        let why = String::from_utf8_lossy(&probe.stderr);
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "a PID namespace is required under CI=true (run as root): {why}"
        );
        eprintln!("SKIPPED: cannot make a PID namespace here: {why}");
        return;
    }
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut shell = std::process::Command::new("unshare");
    shell.args(["--pid", "--fork", "--mount-proc", "bash"]);
    let script = job_script(&format!("ugw-wait-healthy --url {}/health/ready", app.url));
    let out = kit::script_on_stdin(shell, &script, dir.path());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("shell.pid")).unwrap_or_default(),
        "1\n",
        "the shell is PID 1: {}",
        out.stderr
    );
    assert_script_ran(&out, dir.path());
}

#[test]
fn a_job_script_is_never_eaten_by_a_tool_running_as_another_user() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // As `kit::require`: CI runs as root, so there this test must run, never skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "switching to the user nobody needs root, which CI=true requires"
        );
        eprintln!("SKIPPED: switching to the user nobody needs root");
        return;
    }
    if !require("setpriv") {
        return;
    }
    let group = if std::process::Command::new("getent")
        .args(["group", "nogroup"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        "nogroup"
    } else {
        "nobody"
    };
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    // The tool, as nobody, cannot read the shell's /proc/<pid>/fd/0. It needs a binary it may
    // run: a copy in a folder anyone can traverse (the temp dir is under /tmp).
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let copy = bin.join("ugw-wait-healthy");
    std::fs::copy(kit::bin("ugw-wait-healthy"), &copy).unwrap();
    for (path, mode) in [(dir.path(), 0o755), (bin.as_path(), 0o755), (&copy, 0o755)] {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    let script = job_script(&format!(
        "setpriv --reuid=nobody --regid={group} --clear-groups {} --url {}/health/ready",
        copy.display(),
        app.url
    ));
    let out = kit::script_on_stdin(std::process::Command::new("bash"), &script, dir.path());
    assert_script_ran(&out, dir.path());
}

#[test]
fn a_usage_error_reaches_the_record_file_with_the_flags_it_could_read() {
    let app = DemoApp::start(&[]);
    let url = format!("{}/health/ready", app.url);
    let (_dir, file) = started_record(&url);
    let path = file.to_str().unwrap();
    let out = wait_healthy(&["--url", &url, "--record", path, "--bogus"]);
    out.assert_code(2);
    let saved = parse_record(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(saved.steps.len(), 2, "the file gained the failed step");
    assert_eq!(out.record().steps.len(), 2, "stdout has the file's record");
    assert!(!saved.ok);
    let step = &saved.steps[1];
    assert_eq!(
        (step.status.as_str(), step.exit, step.error_kind()),
        ("failed", 2, "usage")
    );

    // --in none: the record on stdin is not read, even though the flags are bad.
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args(["--url", &url, "--in", "none", "--bogus"]);
    let out = with_stdin(cmd, &kit::fetch_record("v1.0.0"));
    out.assert_code(2);
    let record = out.record();
    assert_eq!(record.steps.len(), 1, "a new record: {record:?}");
    assert_ne!(record.run, "20261121T235901Z-test-0001");

    // --host-id names the host of the failed step too.
    let out = wait_healthy(&["--url", &url, "--host-id", "nodeX", "--bogus"]);
    out.assert_code(2);
    let step = out.last_step();
    assert_eq!((step.host.as_str(), step.error_kind()), ("nodeX", "usage"));
    assert_eq!(
        app.requests_settled(),
        1,
        "only the first run sent a request"
    );
}

#[test]
fn a_usage_error_after_a_failed_step_skips_with_its_code() {
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args(["--url", "http://127.0.0.1:1/", "--bogus"]);
    let out = with_stdin(cmd, &failed_record(4));
    out.assert_code(4);
    let record = out.record();
    assert_eq!(record.steps.len(), 2);
    assert_eq!(
        (record.steps[1].status.as_str(), record.steps[1].exit),
        ("skipped", 4)
    );
}

#[test]
fn a_failed_step_whose_exit_does_not_fit_still_fails_the_skip() {
    // 256 is 0 once truncated to 8 bits: the skip must never look like success.
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args(["--url", "http://127.0.0.1:1/", "--in", "-"]);
    let out = with_stdin(cmd, &failed_record(256));
    out.assert_code(1);
    let record = out.record();
    assert!(!record.ok);
    assert_eq!(
        (record.steps[1].status.as_str(), record.steps[1].exit),
        ("skipped", 1)
    );
}

#[test]
fn a_record_file_damaged_during_a_run_is_not_overwritten() {
    let _serial = kit::serial();
    let app = DemoApp::start(&["--ready-after", "800ms"]);
    let (_dir, file) = started_record(&format!("{}/health/live", app.url));
    let path = file.to_str().unwrap();
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args([
        "--url",
        &format!("{}/health/ready", app.url),
        "--record",
        path,
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    assert!(
        app.wait_for_requests(2, Duration::from_secs(5)),
        "the tool is waiting"
    );
    std::fs::write(&file, "garbage").unwrap();
    let output = kit::wait_bounded(child, Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code().unwrap_or(-1);
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "garbage",
        "left as it was: {stderr}"
    );
    let record = parse_record(&String::from_utf8_lossy(&output.stdout));
    let step = record.steps.last().unwrap();
    assert_eq!(
        (step.tool.as_str(), step.exit),
        ("ugw-wait-healthy", code),
        "the record on stdout says what happened"
    );
}

#[test]
fn the_record_file_is_one_line_unless_pretty() {
    let app = DemoApp::start(&[]);
    let url = format!("{}/health/ready", app.url);
    let (_dir, file) = started_record(&url);
    let path = file.to_str().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "compact: {text}"
    );
    assert_eq!(parse_record(&text).steps.len(), 1);

    let out = wait_healthy(&["--url", &url, "--record", path, "--pretty"]);
    out.succeeds();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.lines().count() > 3, "--pretty indents: {text}");
    assert!(text.ends_with('\n'));
    assert_eq!(parse_record(&text).steps.len(), 2);
}
