//! ugw-drain keeps the trust rule of ugw(7) (WHAT A TOOL TRUSTS), against real HAProxy, the
//! demo service and real processes: `--undo` puts back exactly the state this run's drain of
//! the named thing found (interrupted drains and failed undos included; on a failed run that
//! never drained, nothing), a step of another run or host or naming something else is
//! refused, and a reading that is not a number (a NaN gauge, a cut `show stat`, a server
//! HAProxy forgot it drained) is never taken for zero.

use crate::kit;

use kit::DemoApp;
use kit::haproxy::{HaProxy, Options, Server};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

// ---- helpers ----

/// ugw-drain `--record RECORD --timeout 10s ARGS`.
fn drain(record: &Path, args: &[&str]) -> kit::Outcome {
    let mut cmd = kit::tool("ugw-drain");
    cmd.arg("--record")
        .arg(record)
        .args(["--timeout", "10s"])
        .args(args);
    kit::run(cmd)
}

/// ugw-drain with `args` and no record.
fn drain_alone(args: &[&str]) -> kit::Outcome {
    let mut cmd = kit::tool("ugw-drain");
    cmd.args(args);
    kit::run(cmd)
}

fn drain_in_background(record: &Path, args: &[&str]) -> Child {
    let mut cmd = kit::tool("ugw-drain");
    cmd.arg("--record")
        .arg(record)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("ugw-drain starts")
}

fn record_steps(record: &Path) -> Vec<serde_json::Value> {
    let text: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
    text["steps"].as_array().unwrap().clone()
}

/// One HAProxy with node1 and node2 (both checked, both UP) on demo services, and a record
/// path for the run in a folder of its own.
struct Pool {
    haproxy: HaProxy,
    _apps: Vec<DemoApp>,
    /// The admin socket, as `--haproxy` takes it.
    socket: String,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pool {
    fn start(options: &Options) -> Pool {
        let apps = vec![DemoApp::start(&[]), DemoApp::start(&[])];
        let haproxy = HaProxy::start_with(
            &[
                Server::new("node1", &apps[0].addr(), true),
                Server::new("node2", &apps[1].addr(), true),
            ],
            options,
        );
        for node in ["node1", "node2"] {
            assert!(
                haproxy.wait_status(node, "UP", Duration::from_secs(5)),
                "{}",
                haproxy.log()
            );
        }
        let dir = tempfile::tempdir().unwrap();
        Pool {
            socket: haproxy.admin_socket().to_str().unwrap().to_string(),
            haproxy,
            _apps: apps,
            record: dir.path().join("run.json"),
            _dir: dir,
        }
    }

    /// `--haproxy SOCK --server SERVER`.
    fn args<'a>(&'a self, server: &'a str) -> [&'a str; 4] {
        ["--haproxy", &self.socket, "--server", server]
    }
}

/// `--new --flag-file FLAG --lb-grace 0s`, waiting on `app`'s in-flight gauge.
fn drain_flag(record: &Path, flag: &str, app: &DemoApp) -> kit::Outcome {
    let gauge = format!("{}/metrics#http_requests_in_flight", app.url);
    drain(
        record,
        &[
            "--new",
            "--flag-file",
            flag,
            "--lb-grace",
            "0s",
            "--inflight-metric",
            &gauge,
        ],
    )
}

/// A hand-made record of run `run`, its steps each of `run` and `host` unless they say.
fn record_with(path: &Path, run: &str, ok: bool, steps: &[serde_json::Value]) {
    let host = ugw_shared::time::hostname();
    let steps: Vec<serde_json::Value> = steps
        .iter()
        .map(|s| {
            let mut step = serde_json::json!({
                "tool": "ugw-drain", "tool_version": "0.1.0", "run": run, "host": host,
                "started": "2026-11-21T23:59:01.123Z", "elapsed_ms": 5, "status": "ok",
                "exit": 0, "changed": true, "dry_run": false});
            for (k, v) in s.as_object().unwrap() {
                step[k] = v.clone();
            }
            step
        })
        .collect();
    let record = serde_json::json!({"ugw": 1, "run": run, "ok": ok, "steps": steps});
    std::fs::write(path, record.to_string()).unwrap();
}

/// A drain step's result as ugw-drain writes it, with `fields` over it.
fn drained(fields: serde_json::Value) -> serde_json::Value {
    let mut result = serde_json::json!({
        "method": "haproxy", "server": null, "state_before": null, "state_after": null,
        "inflight_start": 0, "inflight_end": 0, "readings": 1, "waited_ms": 0, "forced": false,
        "changed": true, "undo": false, "escalated": null, "sockets": [], "states_before": [],
        "flag_file": null, "http_post": null, "pid": null, "inflight_source": null});
    let serde_json::Value::Object(fields) = fields else {
        panic!("fields is an object")
    };
    for (k, v) in fields {
        result[k] = v;
    }
    result
}

// ---- which drain an undo puts back (issue 16, items 1-4, 10, 25) ----

/// Item 1: node1 in MAINT with a request in flight; its drain is interrupted (SIGTERM, 143)
/// and records the state it found; the undo takes that interrupted step and leaves node1 MAINT.
#[test]
fn an_interrupted_drain_is_undone_to_the_state_it_found() {
    if !HaProxy::available() {
        return;
    }
    let pool = Pool::start(&Options::default());
    let _slow = pool.haproxy.slow_request_on("node1", 30_000);
    pool.haproxy.set_state("node1", "maint");
    let mut cmd = kit::tool("ugw-drain");
    cmd.arg("--record").arg(&pool.record).args([
        "--new",
        "--haproxy",
        &pool.socket,
        "--server",
        "app/node1",
    ]);
    let draining = kit::observe::Background::start(cmd);
    // It found the state, drained, and now waits for the slow request.
    draining.wait_for_stderr("1 in flight", Duration::from_secs(10));
    draining
        .interrupt(libc::SIGTERM)
        .assert_code(143)
        .fails_with(kit::Kind::Interrupted);
    let steps = record_steps(&pool.record);
    assert_eq!(steps[0]["status"], "interrupted");
    assert_eq!(
        steps[0]["result"]["states_before"],
        serde_json::json!(["maint"]),
        "the interrupted step carries its result"
    );
    let undone = drain(
        &pool.record,
        &[
            "--undo",
            "--always",
            "--haproxy",
            &pool.socket,
            "--server",
            "app/node1",
        ],
    );
    undone.succeeds();
    assert_eq!(pool.haproxy.status("node1"), "MAINT", "{}", undone.stderr);
}

/// Item 2: an undo that failed (the socket briefly unreachable) is not an undo: the retry finds
/// the drain, and a server that was MAINT before it stays MAINT.
#[test]
fn after_a_failed_undo_the_retry_puts_back_the_state_the_drain_found() {
    if !HaProxy::available() {
        return;
    }
    let pool = Pool::start(&Options::default());
    pool.haproxy.set_state("node1", "maint");
    let args = pool.args("app/node1");
    drain(&pool.record, &[&["--new"][..], &args].concat()).succeeds();
    let away = PathBuf::from(format!("{}.away", pool.socket));
    std::fs::rename(&pool.socket, &away).unwrap();
    let failed = drain(&pool.record, &[&["--undo"][..], &args].concat());
    std::fs::rename(&away, &pool.socket).unwrap();
    failed.fails_with(kit::Kind::Network);
    // The run failed at the undo: the retry runs with --always, with the flags and without.
    let retry = drain(&pool.record, &["--undo", "--always"]);
    retry.succeeds();
    assert_eq!(pool.haproxy.status("node1"), "MAINT", "{}", retry.stderr);
    let retry = drain(&pool.record, &[&["--undo", "--always"][..], &args].concat());
    retry.succeeds();
    assert_eq!(pool.haproxy.status("node1"), "MAINT", "{}", retry.stderr);
}

/// Item 3, variant: drained with `--haproxy ./a.sock` from the socket's folder, undone with
/// the absolute path: one socket, so the drain's state (MAINT) is the one put back.
#[test]
fn a_socket_is_matched_by_its_canonical_path() {
    if !HaProxy::available() {
        return;
    }
    let pool = Pool::start(&Options::default());
    pool.haproxy.set_state("node1", "maint");
    let socket = pool.haproxy.admin_socket();
    let mut cmd = kit::tool("ugw-drain");
    cmd.current_dir(socket.parent().unwrap())
        .arg("--record")
        .arg(&pool.record)
        .args(["--new", "--haproxy", "./a.sock", "--server", "app/node1"]);
    kit::run(cmd).succeeds();
    // node2 drained in the same run: the record's last drain, which is not node1's.
    drain(
        &pool.record,
        &["--haproxy", &pool.socket, "--server", "app/node2"],
    )
    .succeeds();
    let undone = drain(
        &pool.record,
        &["--undo", "--haproxy", &pool.socket, "--server", "app/node1"],
    );
    undone.succeeds().stderr_lacks("putting it back to ready");
    assert_eq!(pool.haproxy.status("node1"), "MAINT");
    assert_eq!(pool.haproxy.status("node2"), "DRAIN");
}

/// Item 4: a flag file that was there before the drain stays after the undo, and the node
/// stays out of the balancer's check (503).
#[test]
fn a_flag_file_that_was_there_before_the_drain_stays() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain.flag");
    std::fs::write(&flag, "the operator's\n").unwrap();
    let flag_arg = flag.to_str().unwrap();
    let app = DemoApp::start(&["--lb-flag", flag_arg]);
    let lb = format!("{}/health/lb", app.url);
    assert_eq!(kit::load::get_url(&lb), Ok(503));
    let record = dir.path().join("run.json");
    let out = drain_flag(&record, flag_arg, &app);
    out.succeeds();
    assert_eq!(out.last_step().result["state_before"], "present");
    let undone = drain(&record, &["--undo"]);
    undone.succeeds();
    assert!(flag.exists(), "{}", undone.stderr);
    assert!(!undone.last_step().changed);
    assert_eq!(kit::load::get_url(&lb), Ok(503));
    let undone = drain(&record, &["--undo", "--flag-file", flag_arg]);
    undone.succeeds();
    assert!(flag.exists(), "{}", undone.stderr);
}

/// Item 10: a drain, its undo, then a second drain interrupted: the next undo puts that one
/// back (the node does not stay in DRAIN), and a second undo after it does nothing.
#[test]
fn a_drain_interrupted_after_an_earlier_undo_is_the_one_undone() {
    if !HaProxy::available() {
        return;
    }
    let pool = Pool::start(&Options::default());
    let args = pool.args("app/node1");
    drain(&pool.record, &[&["--new"][..], &args].concat()).succeeds();
    drain(&pool.record, &[&["--undo"][..], &args].concat()).succeeds();
    assert!(
        pool.haproxy
            .wait_status("node1", "UP", Duration::from_secs(5))
    );
    let _slow = pool.haproxy.slow_request_on("node1", 30_000);
    let child = drain_in_background(&pool.record, &args);
    assert!(
        pool.haproxy
            .wait_status("node1", "DRAIN", Duration::from_secs(5))
    );
    let (code, _) = kit::interrupt(child, libc::SIGTERM);
    assert_eq!(code, Some(143));
    let undone = drain(&pool.record, &["--undo", "--always"]);
    undone.succeeds();
    assert!(undone.last_step().changed, "{}", undone.stderr);
    assert_eq!(pool.haproxy.server_state("node1")["srv_admin_state"], "0");
    let again = drain(&pool.record, &["--undo", "--always"]);
    again.succeeds();
    assert!(!again.last_step().changed);
    again.stderr_has("undone already");
}

/// Item 25, HAProxy: a forged drain step of app/node2 on another balancer (of another run, or
/// of this run but naming what this invocation does not name) is refused, exit 2; node2 stays
/// MAINT on the balancer it names.
#[test]
fn a_forged_haproxy_step_is_refused_and_never_acted_on() {
    if !HaProxy::available() {
        return;
    }
    let (ours, theirs) = (
        Pool::start(&Options::default()),
        Pool::start(&Options::default()),
    );
    theirs.haproxy.set_state("node2", "maint");
    let step = |run: &str| {
        serde_json::json!({"run": run, "result": drained(serde_json::json!({
            "server": "app/node2", "sockets": [theirs.socket], "states_before": ["ready"],
            "state_before": "ready", "state_after": "drain"}))})
    };
    // Another run's step, in a record of this run.
    record_with(&ours.record, "r-ours", true, &[step("r-theirs")]);
    let out = drain(&ours.record, &["--undo"]);
    out.assert_code(2).stderr_has("belongs to run r-theirs");
    assert_eq!(theirs.haproxy.status("node2"), "MAINT");
    // Another host's.
    let mut other_host = step("r-ours");
    other_host["host"] = "node9".into();
    record_with(&ours.record, "r-ours", true, &[other_host]);
    let out = drain(&ours.record, &["--undo"]);
    out.assert_code(2).stderr_has("\"node9\"");
    assert_eq!(theirs.haproxy.status("node2"), "MAINT");
    // This run's, naming another balancer than the one this undo names: not stretched to it.
    record_with(&ours.record, "r-ours", true, &[step("r-ours")]);
    ours.haproxy.set_state("node2", "maint");
    let out = drain(
        &ours.record,
        &["--undo", "--haproxy", &ours.socket, "--server", "app/node2"],
    );
    out.assert_code(2).stderr_has("do not name");
    assert_eq!(ours.haproxy.status("node2"), "MAINT");
    assert_eq!(theirs.haproxy.status("node2"), "MAINT");
}

/// Item 25, flag file: a forged drain step naming another file never makes the undo delete it:
/// another run's step is refused, and this run's step naming a file that is not the flag a
/// drain writes is refused too (exit 2), the file kept.
#[test]
fn a_forged_flag_file_step_never_deletes_the_file_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("precious.conf");
    std::fs::write(&precious, "keep me\n").unwrap();
    let record = dir.path().join("forged.json");
    let step = |run: &str| {
        serde_json::json!({"run": run, "result": drained(serde_json::json!({
            "method": "flag_file", "flag_file": precious.to_str().unwrap(),
            "state_before": "absent", "state_after": "present"}))})
    };
    record_with(&record, "r-ours", false, &[step("r-theirs")]);
    let out = drain(&record, &["--undo", "--always"]);
    out.assert_code(2);
    assert!(precious.exists(), "{}", out.stderr);
    record_with(&record, "r-ours", false, &[step("r-ours")]);
    let out = drain(&record, &["--undo", "--always"]);
    out.assert_code(2)
        .stderr_has("is not the flag file this run's drain created");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me\n");
    // This run's step of another flag than the one named: refused, the named one kept.
    let named = dir.path().join("drain.flag");
    std::fs::write(&named, "drained by ugw-drain\n").unwrap();
    let out = drain(
        &record,
        &["--undo", "--always", "--flag-file", named.to_str().unwrap()],
    );
    out.assert_code(2);
    assert!(named.exists() && precious.exists(), "{}", out.stderr);
}

/// The state restore puts back each thing exactly as the drain found it: a flag file this
/// run's drain created is removed (and only that one).
#[test]
fn the_flag_file_a_drain_created_is_removed_by_its_undo() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain.flag");
    let app = DemoApp::start(&[]);
    let gauge = format!("{}/metrics#http_requests_in_flight", app.url);
    let record = dir.path().join("run.json");
    // Drained by a relative path from the folder, undone by the absolute one.
    let mut cmd = kit::tool("ugw-drain");
    cmd.current_dir(dir.path())
        .arg("--record")
        .arg(&record)
        .args([
            "--new",
            "--flag-file",
            "./drain.flag",
            "--lb-grace",
            "0s",
            "--inflight-metric",
        ])
        .arg(&gauge);
    kit::run(cmd).succeeds();
    assert!(flag.exists());
    let out = drain(&record, &["--undo", "--flag-file", flag.to_str().unwrap()]);
    out.succeeds();
    assert!(!flag.exists(), "{}", out.stderr);
}

/// Two drains in one record, node1 (an operator had it in MAINT) and then node2: undoing node1
/// puts back node1's own state, never node2's, so node1 stays MAINT.
#[test]
fn undoing_one_server_uses_that_servers_drain_not_the_records_last() {
    if !HaProxy::available() {
        return;
    }
    let pool = Pool::start(&Options::default());
    let haproxy = &pool.haproxy;
    haproxy.set_state("node1", "maint");
    let socket = pool.socket.as_str();
    let first = drain(
        &pool.record,
        &["--new", "--haproxy", socket, "--server", "app/node1"],
    );
    first.succeeds();
    assert_eq!(
        first.last_step().result["states_before"],
        serde_json::json!(["maint"])
    );
    drain(
        &pool.record,
        &["--haproxy", socket, "--server", "app/node2"],
    )
    .succeeds();
    assert_eq!(haproxy.status("node2"), "DRAIN");

    drain(
        &pool.record,
        &["--undo", "--haproxy", socket, "--server", "app/node1"],
    )
    .succeeds();
    assert_eq!(haproxy.status("node1"), "MAINT", "{}", haproxy.log());
    assert_eq!(haproxy.status("node2"), "DRAIN", "node2 is not touched");

    drain(
        &pool.record,
        &["--undo", "--haproxy", socket, "--server", "app/node2"],
    )
    .succeeds();
    assert!(haproxy.wait_status("node2", "UP", Duration::from_secs(5)));
    assert_eq!(haproxy.status("node1"), "MAINT");
}

/// A failed undo put nothing back: the next `--undo` still finds the drain before it, and
/// undoes it, instead of "undone already".
#[test]
fn a_failed_undo_is_not_taken_for_an_undo() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec.json");
    let flag = dir.path().join("drain.flag");
    let app = DemoApp::start(&[]);
    drain_flag(&record, flag.to_str().unwrap(), &app).succeeds();
    assert!(flag.exists());
    // An undo step that failed (the tool could not put the node back), as the record keeps it.
    let mut text: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    let mut failed = text["steps"][0].clone();
    failed["status"] = "failed".into();
    failed["exit"] = 1.into();
    failed["changed"] = false.into();
    failed["result"]["undo"] = true.into();
    failed["error"] = serde_json::json!({"kind": "io", "message": "could not remove it"});
    text["steps"].as_array_mut().unwrap().push(failed);
    text["ok"] = false.into();
    std::fs::write(&record, text.to_string()).unwrap();

    let out = drain(&record, &["--undo", "--always"]);
    out.succeeds();
    assert!(!flag.exists(), "the drain was undone: {}", out.stderr);
    assert!(out.last_step().changed);
}

/// The failure path's `ugw-drain --undo --always` on a run that failed before it drained:
/// nothing to put back, exit 0, unchanged. On a run that did not fail, an undo with nothing to
/// undo is still a usage error (the operator asked for something that is not there), and a
/// drain step of another host is named as the reason it was not taken.
#[test]
fn an_undo_on_a_failed_run_that_never_drained_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec.json");
    let backup_failed = serde_json::json!({"tool": "ugw-backup", "status": "failed", "exit": 1,
        "changed": false, "error": {"kind": "not_found", "message": "--path does not exist"}});
    record_with(&record, "r1", false, &[backup_failed]);
    let out = drain(&record, &["--undo", "--always"]);
    out.succeeds();
    let step = out.last_step();
    assert_eq!((step.status.as_str(), step.changed), ("ok", false));
    out.stderr_has("this run never drained this node");

    // Another host's drain in the record, on a run that did not fail.
    let theirs = dir.path().join("theirs");
    let other_host = serde_json::json!({"host": "node2", "result": drained(serde_json::json!({
        "method": "flag_file", "flag_file": theirs.to_str().unwrap(), "state_before": "absent",
        "state_after": "present", "readings": 0}))});
    std::fs::write(&theirs, "").unwrap();
    record_with(&record, "r2", true, &[other_host]);
    let out = drain(&record, &["--undo"]);
    out.assert_code(2).stderr_has("written on host \"node2\"");
    assert!(theirs.exists(), "another host's file is never touched");
}

// ---- readings that are not a number (items 5-7) ----

/// A loopback HTTP server whose every answer is `body` as Prometheus text.
fn gauge_server(body: &str) -> kit::RawServer {
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    kit::RawServer::start(answer.as_bytes())
}

/// Item 5: a gauge reading NaN, +Inf or a negative count is an error, never "drained".
#[test]
fn a_gauge_that_is_not_a_count_fails_the_drain() {
    for value in ["NaN", "+Inf", "-1"] {
        let server = gauge_server(&format!(
            "# TYPE http_requests_in_flight gauge\nhttp_requests_in_flight {value}\n"
        ));
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("drain.flag");
        let metric = format!("{}metrics#http_requests_in_flight", server.url());
        let out = drain_alone(&[
            "--flag-file",
            flag.to_str().unwrap(),
            "--lb-grace",
            "0s",
            "--inflight-metric",
            &metric,
            "--timeout",
            "3s",
        ])
        .case(value);
        out.fails_with(kit::Kind::Network).stderr_lacks("drained");
        assert!(!flag.exists(), "{value}: the node stays in traffic");
    }
}

/// A unix socket in front of a real HAProxy's admin socket that passes every command through
/// and rewrites the answer to `show stat` with `rewrite`.
struct Middle {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Middle {
    fn start(upstream: PathBuf, rewrite: fn(&str) -> String) -> Middle {
        use std::io::{Read, Write};
        let dir = tempfile::Builder::new()
            .prefix("mid")
            .tempdir_in("/tmp")
            .unwrap();
        let path = dir.path().join("m.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut client) = stream else { continue };
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while client.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
                    line.push(byte[0]);
                }
                let command = String::from_utf8_lossy(&line).into_owned();
                let Ok(mut real) = std::os::unix::net::UnixStream::connect(&upstream) else {
                    continue;
                };
                let _ = real.write_all(format!("{command}\n").as_bytes());
                let mut answer = String::new();
                let _ = real.read_to_string(&mut answer);
                if command == "show stat" {
                    answer = rewrite(&answer);
                }
                let _ = client.write_all(answer.as_bytes());
            }
        });
        Middle { path, _dir: dir }
    }
}

/// `show stat` cut in the middle of node1's row, as a connection that broke off leaves it.
fn cut_after_node1(answer: &str) -> String {
    let at = answer.find("app,node1,").expect("a node1 row");
    format!("{}app,node1,0,0", &answer[..at])
}

/// `show stat` with node1's scur and qcur replaced by `?`.
fn question_marks(answer: &str) -> String {
    let mut lines = answer.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (scur, qcur) = (at("scur"), at("qcur"));
    let mut out = vec![answer.lines().next().unwrap().to_string()];
    for line in lines {
        let mut row: Vec<String> = line.split(',').map(ToString::to_string).collect();
        if row.len() > scur && row[0] == "app" && row[1] == "node1" {
            row[scur] = "?".into();
            row[qcur] = "?".into();
        }
        out.push(row.join(","));
    }
    out.join("\n") + "\n"
}

/// An answer from something that is not HAProxy.
fn html(_: &str) -> String {
    "<html><body><h1>It works!</h1></body></html>\n".to_string()
}

/// Item 6 (and item 15's first message): a `show stat` answer cut mid-row, with `?` for the
/// counters, or HTML, is an error naming the answer, not "0 in flight" and not a missing
/// backend; nothing is changed.
#[test]
fn a_cut_or_garbled_show_stat_is_an_error_never_zero_in_flight() {
    if !HaProxy::available() {
        return;
    }
    let pool = Pool::start(&Options::default());
    let _slow = pool.haproxy.slow_request_on("node1", 5_000);
    for rewrite in [cut_after_node1 as fn(&str) -> String, question_marks, html] {
        let middle = Middle::start(pool.haproxy.admin_socket(), rewrite);
        let out = drain_alone(&[
            "--haproxy",
            middle.path.to_str().unwrap(),
            "--server",
            "app/node1",
            "--timeout",
            "3s",
        ]);
        out.assert_code(1);
        assert_eq!(out.last_step().error_kind(), "network", "{}", out.stderr);
        out.stderr_has("cannot be read")
            .stderr_lacks("--server takes");
        assert_eq!(pool.haproxy.status("node1"), "UP", "nothing changed");
    }
}

/// Item 7: HAProxy reloaded (master-worker, SIGUSR2) while the drain waits: the new worker has
/// node1 READY and serving, so the drain fails instead of ending "drained".
#[test]
fn a_reload_that_puts_the_server_back_fails_the_drain() {
    if !HaProxy::available() {
        return;
    }
    let pool = Pool::start(&Options {
        master_worker: true,
        ..Options::default()
    });
    let _slow = pool.haproxy.slow_request_on("node1", 2_000);
    let started = Instant::now();
    let child = drain_in_background(
        &pool.record,
        &[
            "--new",
            "--haproxy",
            &pool.socket,
            "--server",
            "app/node1",
            "--timeout",
            "20s",
        ],
    );
    assert!(
        pool.haproxy
            .wait_status("node1", "DRAIN", Duration::from_secs(5))
    );
    pool.haproxy.reload();
    let output = kit::wait_bounded(child, Duration::from_secs(30));
    let out = kit::Outcome::from(&output, started.elapsed());
    out.fails_with(kit::Kind::FailCondition)
        .stderr_has("ready again")
        .stderr_lacks("drained");
    let step = &record_steps(&pool.record)[0];
    assert_eq!(step["error"]["kind"], "fail_condition", "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// The state restore puts back what the first drain of this run found: drained twice (the
/// second found it drained already), the undo still puts it back to ready and UP.
#[test]
fn drained_twice_the_undo_puts_back_the_state_before_the_first_drain() {
    if !HaProxy::available() {
        return;
    }
    let pool = Pool::start(&Options::default());
    let args = pool.args("app/node1");
    let first = drain(&pool.record, &[&["--new"][..], &args].concat());
    // The first drain through a socket says it.
    first.succeeds().stderr_has("server-state-file");
    let second = drain(&pool.record, &args);
    second.succeeds();
    assert_eq!(
        second.last_step().result["states_before"],
        serde_json::json!(["drain"])
    );
    // Item 15: said once per socket in a run, not on every drain.
    second.stderr_lacks("server-state-file");
    drain(&pool.record, &["--undo"]).succeeds();
    assert!(
        pool.haproxy
            .wait_status("node1", "UP", Duration::from_secs(5))
    );
    assert_eq!(pool.haproxy.server_state("node1")["srv_admin_state"], "0");
}

/// A drain step of another run, with an undo that names the same socket and server: refused,
/// never taken for a drain this run made.
#[test]
fn an_undo_with_flags_refuses_a_matching_step_of_another_run() {
    if !HaProxy::available() {
        return;
    }
    let pool = Pool::start(&Options::default());
    pool.haproxy.set_state("node2", "maint");
    let step = serde_json::json!({"run": "r-theirs", "result": drained(serde_json::json!({
        "server": "app/node2", "sockets": [pool.socket], "states_before": ["ready"]}))});
    record_with(&pool.record, "r-ours", true, &[step]);
    let out = drain(
        &pool.record,
        &["--undo", "--haproxy", &pool.socket, "--server", "app/node2"],
    );
    out.assert_code(2).stderr_has("belongs to run r-theirs");
    assert_eq!(pool.haproxy.status("node2"), "MAINT");
}

// ---- what a drain acts on (items 8, 9) ----

/// Item 8: a flag file path that is a dangling symlink is refused: the balancer's check that
/// follows it sees no flag, so nothing would leave traffic.
#[test]
fn a_dangling_symlink_flag_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain.flag");
    std::os::unix::fs::symlink(dir.path().join("nowhere/flag"), &flag).unwrap();
    let app = DemoApp::start(&["--lb-flag", flag.to_str().unwrap()]);
    assert_eq!(
        kit::load::get_url(&format!("{}/health/lb", app.url)),
        Ok(200)
    );
    let gauge = format!("{}/metrics#http_requests_in_flight", app.url);
    let out = drain_alone(&[
        "--flag-file",
        flag.to_str().unwrap(),
        "--lb-grace",
        "0s",
        "--inflight-metric",
        &gauge,
    ]);
    out.assert_code(2)
        .stderr_has("does not exist")
        .stderr_lacks("drained");
}

/// Item 9: node1 in MAINT only because it tracks node2: it is drained by its own state, so it
/// stays out of traffic when node2 comes back, and the undo puts it back UP.
#[test]
fn a_server_in_maint_through_track_is_drained_by_its_own_state() {
    if !HaProxy::available() {
        return;
    }
    let apps = [DemoApp::start(&[]), DemoApp::start(&[])];
    let haproxy = HaProxy::start(&[
        Server::new("node1", &apps[0].addr(), false).with("track app/node2"),
        Server::new("node2", &apps[1].addr(), true),
    ]);
    assert!(haproxy.wait_status("node2", "UP", Duration::from_secs(5)));
    haproxy.set_state("node2", "maint");
    assert!(
        haproxy.status("node1").starts_with("MAINT"),
        "{}",
        haproxy.status("node1")
    );
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("run.json");
    let socket = haproxy.admin_socket();
    let socket = socket.to_str().unwrap();
    let out = drain(
        &record,
        &["--new", "--haproxy", socket, "--server", "app/node1"],
    );
    out.succeeds();
    assert!(out.last_step().changed, "{}", out.stderr);
    assert_eq!(
        out.last_step().result["states_before"],
        serde_json::json!(["ready"])
    );
    haproxy.set_state("node2", "ready");
    assert!(haproxy.wait_status("node2", "UP", Duration::from_secs(5)));
    assert_eq!(
        haproxy.status("node1"),
        "DRAIN",
        "node1 takes no new traffic"
    );
    let undone = drain(&record, &["--undo"]);
    undone.succeeds();
    assert_eq!(haproxy.status("node1"), "UP", "{}", undone.stderr);
}

// ---- signals (items 11-13) ----

/// Item 11: a pidfile holding ugw-drain's own pid, or its process group's leader, or PID 1:
/// refused (exit 2), nothing signalled.
#[test]
fn signal_refuses_itself_its_process_group_and_pid_1() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let bin = kit::bin("ugw-drain");
    // Its own pid: the shell writes $$ and becomes ugw-drain.
    let script = format!(
        "echo $$ > {pf}; exec {bin} --signal QUIT --pidfile {pf} --timeout 2s",
        pf = pidfile.display(),
        bin = bin.display()
    );
    let out = kit::bash(&script, dir.path());
    out.assert_code(2).stderr_has("ugw-drain itself");
    // The leader of its process group: the shell that runs it, in a group of its own.
    let script = format!(
        "echo $$ > {pf}; {bin} --signal TERM --pidfile {pf} --timeout 2s; echo \"rc=$?\"",
        pf = pidfile.display(),
        bin = bin.display()
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c").arg(&script).current_dir(dir.path());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let out = kit::run(cmd);
    out.stdout_has("rc=2").stderr_has("process group");
    // PID 1, asked in a dry run so that nothing could reach it even if it were not refused.
    std::fs::write(&pidfile, "1\n").unwrap();
    let out = drain_alone(&[
        "--signal",
        "QUIT",
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--dry-run",
    ]);
    out.assert_code(2).stderr_has("PID 1");
}

/// Item 12: a stale pidfile whose pid now belongs to a process started after the file was
/// written: the stranger is never signalled.
#[test]
fn a_pid_reused_after_the_pidfile_was_written_is_not_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let mut stranger = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::fs::write(&pidfile, format!("{}\n", stranger.id())).unwrap();
    // The pidfile was last written a minute before the stranger started.
    let file = std::fs::File::options().write(true).open(&pidfile).unwrap();
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    drop(file);
    let out = drain_alone(&[
        "--signal",
        "QUIT",
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--timeout",
        "2s",
    ]);
    out.succeeds();
    assert!(!out.last_step().changed, "{}", out.stderr);
    out.stderr_has("started");
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger still runs"
    );
    // The same process with a pidfile written after it started is the one to stop.
    std::fs::write(&pidfile, format!("{}\n", stranger.id())).unwrap();
    let out = drain_alone(&[
        "--signal",
        "TERM",
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--timeout",
        "5s",
    ]);
    out.succeeds();
    assert!(out.last_step().changed, "{}", out.stderr);
    let _ = stranger.wait();
}

/// Item 13: with --grace longer than the deadline allows, the escalation still ends by the
/// deadline, and QUIT gets its share before TERM.
#[test]
fn escalation_with_a_long_grace_ends_by_the_deadline() {
    let mut stubborn = std::process::Command::new("sh")
        .args(["-c", "trap '' QUIT TERM; exec sleep 60"])
        .spawn()
        .unwrap();
    assert!(
        kit::observe::wait_runs(stubborn.id(), "sleep", Duration::from_secs(5)),
        "the shell set its trap and exec'd sleep"
    );
    let pid = stubborn.id().to_string();
    let out = drain_alone(&[
        "--signal",
        "QUIT",
        "--pid",
        &pid,
        "--timeout",
        "2s",
        "--on-timeout",
        "escalate",
        "--grace",
        "10s",
    ]);
    out.succeeds();
    assert_eq!(
        out.last_step().result["escalated"],
        "KILL",
        "{}",
        out.stderr
    );
    assert!(
        out.took() <= Duration::from_millis(2500),
        "{:?}",
        out.took()
    );
    assert!(
        out.took() >= Duration::from_millis(1500),
        "{:?}",
        out.took()
    );
    let status = stubborn.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
}

// ---- flags and messages (items 14, 15) ----

/// Item 14: an interval under 10 ms is refused.
#[test]
fn an_interval_under_10ms_is_refused() {
    for interval in ["0s", "9ms"] {
        let out = drain_alone(&[
            "--flag-file",
            "/nonexistent/flag",
            "--port",
            "1",
            "--interval",
            interval,
        ]);
        out.assert_code(2)
            .stderr_has("--interval must be at least 10 ms");
    }
}

/// Item 15: a failing `--undo --http-post` says the node was not put back.
#[test]
fn a_failing_undo_endpoint_says_the_node_was_not_put_back() {
    let refusing = kit::RawServer::start(b"HTTP/1.1 409 Conflict\r\nContent-Length: 0\r\n\r\n");
    let out = drain_alone(&["--undo", "--http-post", &refusing.url()]);
    out.assert_code(1)
        .stderr_has("did not put the node back")
        .stderr_lacks("take the drain");
}
