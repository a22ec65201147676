//! ugw-drain against the real things: HAProxy's runtime API, nginx's graceful QUIT, the demo
//! service's in-flight gauge and raw TCP connections. Also the kit's HAProxy, nginx and load
//! fixtures, which other tests share.

use crate::kit;

use kit::DemoApp;
use kit::haproxy::{HaProxy, Server, count};
use kit::load::Load;
use kit::nginx::Nginx;
use std::time::{Duration, Instant};

// ---- the kit's fixtures ----

#[test]
fn kit_haproxy_balances_checks_and_reports_a_server_it_was_told_to_drain() {
    if !HaProxy::available() {
        return;
    }
    let (a, b) = (DemoApp::start(&[]), DemoApp::start(&[]));
    let haproxy = HaProxy::start(&[
        Server::new("s1", &a.addr(), true),
        Server::new("s2", &b.addr(), false),
    ]);
    assert!(
        haproxy.wait_status("s1", "UP", Duration::from_secs(5)),
        "{}",
        haproxy.log()
    );
    assert_eq!(haproxy.status("s2"), "no check");
    for _ in 0..4 {
        assert_eq!(
            kit::load::get_url(&format!("{}/health/live", haproxy.url())),
            Ok(200)
        );
    }
    assert_eq!((haproxy.total("s1"), haproxy.total("s2")), (2, 2));
    haproxy.set_state("s2", "drain");
    assert_eq!(haproxy.status("s2"), "DRAIN");
    assert_eq!(haproxy.server_state("s2")["srv_admin_state"], "8");
    assert_eq!(haproxy.in_flight("s1"), 0);
}

#[test]
fn kit_nginx_proxies_to_its_upstream_and_exits_on_quit() {
    if !Nginx::available() {
        return;
    }
    let app = DemoApp::start(&[]);
    let mut nginx = Nginx::start(Some(&app.addr()));
    assert_eq!(
        kit::load::get_url(&format!("{}/nginx-ok", nginx.url())),
        Ok(200)
    );
    assert_eq!(
        kit::load::get_url(&format!("{}/slow?ms=1", nginx.url())),
        Ok(200)
    );
    assert!(
        app.wait_for_requests(1, Duration::from_secs(2)),
        "{}",
        app.log()
    );
    assert_eq!(
        std::fs::read_to_string(nginx.pidfile()).unwrap().trim(),
        nginx.pid().to_string()
    );
    kit::signal(nginx.pid(), libc::SIGQUIT);
    assert!(nginx.wait_exit(Duration::from_secs(10)).is_some());
}

#[test]
fn kit_load_holds_its_rate_and_counts_answers_and_failures() {
    let app = DemoApp::start(&[]);
    let load = Load::start(
        &format!("{}/health/live", app.url),
        100,
        Duration::from_secs(10),
    );
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let tally = load.stop();
    let elapsed = started.elapsed();
    // 100/s for at least 0.5 s: at least 50 due (one more for the first, sent at once).
    assert!(tally.sent >= 50, "{tally:?}");
    assert!(
        tally.sent as f64 <= elapsed.as_secs_f64() * 100.0 + 1.0,
        "{tally:?}"
    );
    assert_eq!(tally.ok, tally.sent, "{tally:?}");
    let refused = Load::start(
        &format!("http://127.0.0.1:{}/", kit::free_port()),
        50,
        Duration::from_millis(200),
    );
    std::thread::sleep(Duration::from_millis(300));
    let tally = refused.stop();
    assert!(tally.failed >= 5 && tally.ok == 0, "{tally:?}");
    let missing = Load::start(
        &format!("{}/nothing-here", app.url),
        50,
        Duration::from_millis(100),
    );
    std::thread::sleep(Duration::from_millis(150));
    let tally = missing.stop();
    assert!(tally.sent >= 1 && tally.non_2xx == tally.sent, "{tally:?}");
}

// ---- helpers ----

/// A GET on a thread of its own: its status, and when it ended.
fn request_in_background(url: String) -> std::thread::JoinHandle<(Result<u16, String>, Instant)> {
    std::thread::spawn(move || {
        let status = kit::load::get_url(&url);
        (status, Instant::now())
    })
}

/// ugw-drain with `args`, started in the background; stdin from /dev/null.
fn drain_in_background(args: &[impl AsRef<std::ffi::OsStr>]) -> std::process::Child {
    let mut cmd = kit::tool("ugw-drain");
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().expect("ugw-drain starts")
}

/// Wait for a background ugw-drain: its outcome, and when it ended.
fn finish(child: std::process::Child, started: Instant) -> (kit::Outcome, Instant) {
    let output = kit::wait_bounded(child, kit::RUN_LIMIT);
    let ended = Instant::now();
    let outcome = kit::Outcome::from(&output, ended - started);
    (outcome, ended)
}

fn drain(args: &[impl AsRef<std::ffi::OsStr>]) -> kit::Outcome {
    let mut cmd = kit::tool("ugw-drain");
    cmd.args(args);
    kit::run(cmd)
}

/// Run ugw-drain with `record` on its stdin.
fn drain_after(record: &str, args: &[impl AsRef<std::ffi::OsStr>]) -> kit::Outcome {
    let mut cmd = kit::tool("ugw-drain");
    cmd.args(args);
    kit::with_stdin(cmd, record)
}

fn result(outcome: &kit::Outcome) -> serde_json::Value {
    outcome.last_step().result
}

/// Two demo backends behind HAProxy, s1 and s2, both checked, both UP.
struct Pair {
    haproxy: HaProxy,
    /// The backends, kept running for as long as the pair lives.
    _apps: [DemoApp; 2],
}

impl Pair {
    /// `--haproxy SOCK --server app/SERVER`, then `extra`.
    fn args(&self, server: &str, extra: &[&str]) -> Vec<String> {
        let sock = self.haproxy.admin_socket();
        let target = format!("app/{server}");
        ["--haproxy", sock.to_str().unwrap(), "--server", &target]
            .iter()
            .chain(extra)
            .map(ToString::to_string)
            .collect()
    }
}

fn pair(check_s2: bool) -> Pair {
    let (s1, s2) = (DemoApp::start(&[]), DemoApp::start(&[]));
    let haproxy = HaProxy::start(&[
        Server::new("s1", &s1.addr(), true),
        Server::new("s2", &s2.addr(), check_s2),
    ]);
    assert!(
        haproxy.wait_status("s1", "UP", Duration::from_secs(5)),
        "{}",
        haproxy.log()
    );
    Pair {
        haproxy,
        _apps: [s1, s2],
    }
}

// ---- HAProxy ----

#[test]
fn haproxy_drain_waits_for_the_slow_request_new_ones_go_elsewhere_and_undo_brings_it_back_up() {
    if !HaProxy::available() {
        return;
    }
    let p = pair(true);
    let slow = p.haproxy.slow_request_on("s1", 1500);
    let started = Instant::now();
    let child = drain_in_background(&p.args("s1", &["--interval", "50ms"]));
    assert!(p.haproxy.wait_status("s1", "DRAIN", Duration::from_secs(5)));
    // While it drains, new requests go to s2 only.
    let s1_before = p.haproxy.total("s1");
    let s2_before = p.haproxy.total("s2");
    for _ in 0..4 {
        assert_eq!(
            kit::load::get_url(&format!("{}/health/live", p.haproxy.url())),
            Ok(200)
        );
    }
    assert_eq!(
        p.haproxy.total("s1"),
        s1_before,
        "a drained server got a new request"
    );
    assert_eq!(p.haproxy.total("s2"), s2_before + 4);
    let (outcome, drain_ended) = finish(child, started);
    outcome.succeeds();
    let mut slow_ended = None;
    for handle in slow {
        let (status, ended) = handle.join().unwrap();
        assert_eq!(status, Ok(200), "the request in flight got its answer");
        slow_ended = slow_ended.max(Some(ended));
    }
    // The drain ended only after the request in flight on s1 ended.
    assert!(slow_ended.unwrap() <= drain_ended);
    let step = outcome.last_step();
    assert!(step.changed);
    let r = step.result;
    assert_eq!(r["method"], "haproxy");
    assert_eq!(r["server"], "app/s1");
    assert_eq!(
        (r["state_before"].as_str(), r["state_after"].as_str()),
        (Some("ready"), Some("drain"))
    );
    assert!(r["inflight_start"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["inflight_end"], 0);
    assert!(r["readings"].as_u64().unwrap() > 3, "{r}");
    assert!(r["waited_ms"].as_u64().unwrap() >= 500, "{r}");
    assert_eq!(r["forced"], false);
    outcome.stderr_has("app/s1: 0 in flight");
    assert_eq!(p.haproxy.status("s1"), "DRAIN");
    // Undo from the record: back to ready, and UP.
    let undone = drain_after(&outcome.stdout, &p.args("s1", &["--undo"]));
    undone.succeeds();
    let r = result(&undone);
    assert_eq!(
        (r["undo"].as_bool(), r["state_after"].as_str()),
        (Some(true), Some("ready"))
    );
    assert_eq!(p.haproxy.status("s1"), "UP");
    assert_eq!(p.haproxy.server_state("s1")["srv_admin_state"], "0");
}

#[test]
fn the_in_flight_count_is_shown_as_it_falls_once_per_change() {
    if !HaProxy::available() {
        return;
    }
    let p = pair(true);
    let _slow = p.haproxy.slow_request_on("s1", 800);
    let out = drain(&p.args("s1", &["--interval", "20ms"]));
    out.succeeds();
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("in flight"))
        .collect();
    // Dozens of readings, one line per count: 1 (or more) then 0.
    assert!(
        result(&out)["readings"].as_u64().unwrap() >= 10,
        "{}",
        out.stderr
    );
    assert_eq!(
        lines.last().copied(),
        Some("ugw-drain: app/s1: 0 in flight"),
        "{}",
        out.stderr
    );
    assert!(lines.len() <= 3, "a line per reading: {}", out.stderr);
    let mut deduped = lines.clone();
    deduped.dedup();
    assert_eq!(deduped, lines);
}

#[test]
fn undo_restores_the_state_from_before_the_drain_not_ready_and_an_idle_drained_server_is_unchanged()
{
    if !HaProxy::available() {
        return;
    }
    let p = pair(true);
    p.haproxy.set_state("s1", "drain");
    let out = drain(&p.args("s1", &[]));
    out.succeeds();
    let step = out.last_step();
    assert!(!step.changed, "{}", out.stdout);
    assert_eq!(step.result["state_before"], "drain");
    // Undo without flags: the record says what to put back, and that is drain.
    let undone = drain_after(&out.stdout, &["--undo"]);
    undone.succeeds();
    assert_eq!(result(&undone)["state_after"], "drain");
    assert!(!undone.last_step().changed);
    assert_eq!(p.haproxy.status("s1"), "DRAIN");
}

#[test]
fn dry_run_reads_the_state_and_in_flight_count_and_changes_nothing() {
    if !HaProxy::available() {
        return;
    }
    let p = pair(true);
    let _slow = p.haproxy.slow_request_on("s1", 1000);
    let out = drain(&p.args("s1", &["--dry-run"]));
    out.succeeds();
    let step = out.last_step();
    assert!(step.dry_run && !step.changed);
    assert_eq!(step.result["state_before"], "ready");
    assert!(step.result["inflight_start"].as_u64().unwrap() >= 1);
    assert_eq!(p.haproxy.status("s1"), "UP");
}

#[test]
fn two_haproxy_instances_are_drained_together_and_put_back_together() {
    if !HaProxy::available() {
        return;
    }
    let (s1, s2) = (DemoApp::start(&[]), DemoApp::start(&[]));
    let servers = [
        Server::new("s1", &s1.addr(), true),
        Server::new("s2", &s2.addr(), true),
    ];
    let a = HaProxy::start(&servers);
    let options = kit::haproxy::Options {
        tcp_socket: true,
        ..kit::haproxy::Options::default()
    };
    let b = HaProxy::start_with(&servers, &options);
    for h in [&a, &b] {
        assert!(h.wait_status("s1", "UP", Duration::from_secs(5)));
    }
    let slow = b.slow_request_on("s1", 1000);
    let sock_a = a.admin_socket();
    let tcp_b = format!("tcp:127.0.0.1:{}", b.api_port.unwrap());
    let args = [
        "--haproxy",
        sock_a.to_str().unwrap(),
        "--haproxy",
        &tcp_b,
        "--server",
        "app/s1",
    ];
    let out = drain(&args);
    out.succeeds();
    for handle in slow {
        assert_eq!(handle.join().unwrap().0, Ok(200));
    }
    let r = result(&out);
    assert_eq!(r["sockets"].as_array().unwrap().len(), 2);
    assert_eq!(
        r["inflight_start"], 1,
        "the counts of both instances are summed: {r}"
    );
    assert_eq!(
        (a.status("s1"), b.status("s1")),
        ("DRAIN".into(), "DRAIN".into())
    );
    let undone = drain_after(&out.stdout, &["--undo"]);
    undone.succeeds();
    assert_eq!((a.status("s1"), b.status("s1")), ("UP".into(), "UP".into()));
}

/// An instance where the operator had put the server in maint keeps it in maint (drain would
/// let sticky clients back in), and the undo puts each instance back to its own state.
#[test]
fn an_instance_already_in_maint_stays_in_maint_through_the_drain_and_the_undo() {
    if !HaProxy::available() {
        return;
    }
    let app = DemoApp::start(&[]);
    let servers = [Server::new("s1", &app.addr(), true)];
    let (a, b) = (HaProxy::start(&servers), HaProxy::start(&servers));
    for h in [&a, &b] {
        assert!(h.wait_status("s1", "UP", Duration::from_secs(5)));
    }
    b.set_state("s1", "maint");
    let (sock_a, sock_b) = (a.admin_socket(), b.admin_socket());
    let args = [
        "--haproxy",
        sock_a.to_str().unwrap(),
        "--haproxy",
        sock_b.to_str().unwrap(),
        "--server",
        "app/s1",
    ];
    let out = drain(&args);
    out.succeeds();
    assert_eq!(
        (a.status("s1"), b.status("s1")),
        ("DRAIN".into(), "MAINT".into())
    );
    assert_eq!(
        result(&out)["states_before"],
        serde_json::json!(["ready", "maint"])
    );
    drain_after(&out.stdout, &["--undo"]).succeeds();
    assert_eq!(
        (a.status("s1"), b.status("s1")),
        ("UP".into(), "MAINT".into())
    );
}

#[test]
fn when_one_instance_refuses_the_others_are_put_back_and_the_step_fails() {
    if !HaProxy::available() {
        return;
    }
    let app = DemoApp::start(&[]);
    let servers = [Server::new("s1", &app.addr(), true)];
    let a = HaProxy::start(&servers);
    let options = kit::haproxy::Options {
        user_socket: true,
        ..kit::haproxy::Options::default()
    };
    let b = HaProxy::start_with(&servers, &options);
    let (sock_a, user_b) = (a.admin_socket(), b.user_socket());
    let out = drain(&[
        "--haproxy",
        sock_a.to_str().unwrap(),
        "--haproxy",
        user_b.to_str().unwrap(),
        "--server",
        "app/s1",
    ]);
    out.assert_code(1);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "refused");
    let message = &step.error.as_ref().unwrap().message;
    assert!(
        message.contains("Permission denied") && message.contains("level admin"),
        "{message}"
    );
    assert!(message.contains("put back"), "{message}");
    out.stderr_has("put back to ready");
    assert_eq!(
        a.server_state("s1")["srv_admin_state"],
        "0",
        "the first instance was put back"
    );
    assert_eq!(b.server_state("s1")["srv_admin_state"], "0");
}

#[test]
fn a_socket_without_admin_level_is_a_clear_error() {
    if !HaProxy::available() {
        return;
    }
    let app = DemoApp::start(&[]);
    let options = kit::haproxy::Options {
        user_socket: true,
        ..kit::haproxy::Options::default()
    };
    let h = HaProxy::start_with(&[Server::new("s1", &app.addr(), true)], &options);
    let user = h.user_socket();
    let out = drain(&["--haproxy", user.to_str().unwrap(), "--server", "app/s1"]);
    out.fails_with(kit::Kind::Refused)
        .stderr_has("Permission denied")
        .stderr_has("level admin");
    assert_eq!(h.server_state("s1")["srv_admin_state"], "0");
}

#[test]
fn a_server_that_does_not_exist_is_a_usage_error_and_changes_nothing() {
    if !HaProxy::available() {
        return;
    }
    let p = pair(true);
    let sock = p.haproxy.admin_socket();
    let sock = sock.to_str().unwrap();
    let out = drain(&["--haproxy", sock, "--server", "app/nope"]);
    out.fails_with(kit::Kind::Usage)
        .stderr_has("no server 'nope' in backend 'app'");
    let out = drain(&["--haproxy", sock, "--server", "web/s1"]);
    out.assert_code(2).stderr_has("no backend 'web'");
    assert_eq!(p.haproxy.status("s1"), "UP");
}

#[test]
fn at_the_deadline_fail_leaves_it_drained_and_proceed_goes_on_forced() {
    if !HaProxy::available() {
        return;
    }
    let p = pair(true);
    let _stuck = p.haproxy.slow_request_on("s1", 30_000);
    let out = drain(&p.args("s1", &["--timeout", "700ms"]));
    out.assert_code(1);
    let step = out.last_step();
    assert_eq!(step.error_kind(), "timeout");
    assert_eq!(step.result["inflight_end"], 1);
    assert!(out.took() >= Duration::from_millis(700), "{:?}", out.took());
    assert_eq!(p.haproxy.status("s1"), "DRAIN", "left drained");
    // A failed run keeps the node out: --undo skips unless --always.
    let skipped = drain_after(&out.stdout, &["--undo"]);
    skipped.assert_code(1);
    assert_eq!(skipped.last_step().status, "skipped");
    assert_eq!(p.haproxy.status("s1"), "DRAIN");
    let out = drain(&p.args("s1", &["--timeout", "500ms", "--on-timeout", "proceed"]));
    out.succeeds();
    let r = result(&out);
    assert_eq!(
        (r["forced"].as_bool(), r["inflight_end"].as_u64()),
        (Some(true), Some(1))
    );
    out.stderr_has("going on");
}

/// The undo of a drain that failed at its deadline puts back the state from before that drain
/// (here `drain`, set by an operator), not `ready`.
#[test]
fn undo_after_a_drain_that_timed_out_restores_the_state_it_found() {
    if !HaProxy::available() {
        return;
    }
    let p = pair(true);
    let _stuck = p.haproxy.slow_request_on("s1", 30_000);
    p.haproxy.set_state("s1", "drain");
    let out = drain(&p.args("s1", &["--timeout", "700ms"]));
    out.assert_code(1);
    assert_eq!(
        out.last_step().result["states_before"],
        serde_json::json!(["drain"])
    );
    let undone = drain_after(&out.stdout, &["--undo", "--always", "--timeout", "5s"]);
    undone.succeeds();
    assert_eq!(p.haproxy.status("s1"), "DRAIN", "{}", undone.stderr);
}

#[test]
fn maint_after_escalates_a_drain_that_does_not_end() {
    if !HaProxy::available() {
        return;
    }
    let p = pair(true);
    let _stuck = p.haproxy.slow_request_on("s1", 30_000);
    let started = Instant::now();
    let child =
        drain_in_background(&p.args("s1", &["--maint-after", "400ms", "--timeout", "1500ms"]));
    assert!(p.haproxy.wait_status("s1", "DRAIN", Duration::from_secs(5)));
    assert!(p.haproxy.wait_status("s1", "MAINT", Duration::from_secs(5)));
    let escalated_after = started.elapsed();
    assert!(
        escalated_after >= Duration::from_millis(400),
        "{escalated_after:?}"
    );
    let (out, _) = finish(child, started);
    out.assert_code(1);
    let r = out.last_step().result;
    assert_eq!(
        (r["escalated"].as_str(), r["state_after"].as_str()),
        (Some("maint"), Some("maint"))
    );
    // Undo puts back what was there before the drain: ready.
    let undone = drain_after(&out.stdout, &["--undo", "--always"]);
    undone.succeeds();
    assert!(p.haproxy.wait_status("s1", "UP", Duration::from_secs(1)));
}

#[test]
fn a_server_without_checks_is_drained_and_confirmed_ready_on_undo() {
    if !HaProxy::available() {
        return;
    }
    let p = pair(false);
    let out = drain(&p.args("s2", &[]));
    out.succeeds();
    assert_eq!(p.haproxy.status("s2"), "DRAIN");
    let undone = drain_after(&out.stdout, &["--undo"]);
    undone.succeeds();
    assert_eq!(p.haproxy.status("s2"), "no check");
    undone.stderr_has("app/s2: back to ready");
}

#[test]
fn undo_waits_until_a_checked_server_is_fully_up() {
    if !HaProxy::available() {
        return;
    }
    let p = pair(true);
    let out = drain(&p.args("s1", &["--state", "maint"]));
    out.succeeds();
    assert_eq!(p.haproxy.status("s1"), "MAINT");
    // Out of maintenance, HAProxy checks the server again before it counts as UP.
    let undone = drain_after(&out.stdout, &["--undo"]);
    undone.succeeds();
    assert_eq!(p.haproxy.status("s1"), "UP", "{}", undone.stderr);
    assert!(result(&undone)["readings"].as_u64().unwrap() >= 1);
}

// ---- signal and wait ----

#[test]
fn nginx_quit_lets_the_long_request_finish_before_nginx_exits() {
    if !Nginx::available() {
        return;
    }
    let app = DemoApp::start(&[]);
    let mut nginx = Nginx::start(Some(&app.addr()));
    let long = request_in_background(format!("{}/slow?ms=1200", nginx.url()));
    assert!(
        app.wait_for_requests(1, Duration::from_secs(5)),
        "{}",
        app.log()
    );
    let pidfile = nginx.pidfile();
    let out = drain(&["--signal", "QUIT", "--pidfile", pidfile.to_str().unwrap()]);
    let drain_ended = Instant::now();
    out.succeeds();
    let (status, long_ended) = long.join().unwrap();
    assert_eq!(status, Ok(200), "the request in flight got its answer");
    assert!(long_ended <= drain_ended);
    let r = result(&out);
    assert_eq!(r["pid"], nginx.pid());
    assert_eq!(
        (r["state_before"].as_str(), r["state_after"].as_str()),
        (Some("running"), Some("gone"))
    );
    assert!(r["waited_ms"].as_u64().unwrap() >= 500, "{r}");
    assert!(nginx.wait_exit(Duration::from_secs(1)).is_some());
    // Gone already: nothing to do.
    let again = drain(&["--signal", "QUIT", "--pid", &r["pid"].to_string()]);
    again.succeeds();
    assert!(!again.last_step().changed);
    let refused = drain(&["--undo", "--signal", "QUIT", "--pid", "1"]);
    refused.assert_code(2);
}

#[test]
fn escalate_terms_then_kills_a_process_that_ignores_quit() {
    let mut stubborn = std::process::Command::new("sh")
        .args(["-c", "trap '' QUIT TERM; exec sleep 60"])
        .spawn()
        .unwrap();
    let pid = stubborn.id().to_string();
    assert!(
        kit::observe::wait_runs(stubborn.id(), "sleep", Duration::from_secs(5)),
        "the shell set its trap and exec'd sleep"
    );
    let out = drain(&[
        "--signal",
        "QUIT",
        "--pid",
        &pid,
        "--timeout",
        "2s",
        "--on-timeout",
        "escalate",
        "--grace",
        "300ms",
    ]);
    out.succeeds();
    let r = result(&out);
    assert_eq!(
        (r["escalated"].as_str(), r["state_after"].as_str()),
        (Some("KILL"), Some("gone"))
    );
    assert!(
        out.took() <= Duration::from_millis(2200),
        "{:?}",
        out.took()
    );
    out.stderr_has("sending TERM").stderr_has("sending KILL");
    let status = stubborn.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
}

#[test]
fn escalate_is_only_for_the_signal_method() {
    let out = drain(&[
        "--flag-file",
        "/tmp/x",
        "--port",
        "1",
        "--on-timeout",
        "escalate",
    ]);
    out.assert_code(2).stderr_has("--maint-after");
}

// ---- flag file and port ----

#[test]
fn flag_file_takes_the_node_out_of_haproxy_waits_for_the_gauge_and_undo_brings_it_back() {
    if !HaProxy::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain");
    let flag_arg = flag.to_str().unwrap();
    let (node, other) = (
        DemoApp::start(&["--lb-flag", flag_arg]),
        DemoApp::start(&[]),
    );
    let options = kit::haproxy::Options {
        check_path: "/health/lb".to_string(),
        ..kit::haproxy::Options::default()
    };
    let haproxy = HaProxy::start_with(
        &[
            Server::new("s1", &node.addr(), true),
            Server::new("s2", &other.addr(), true),
        ],
        &options,
    );
    assert!(haproxy.wait_status("s1", "UP", Duration::from_secs(5)));
    let slow = haproxy.slow_request_on("s1", 1500);
    let metric = format!("{}/metrics#http_requests_in_flight", node.url);
    // The balancer sees the flag within inter 100ms x fall 3; 600 ms is its grace.
    let out = drain(&[
        "--flag-file",
        flag_arg,
        "--lb-grace",
        "600ms",
        "--inflight-metric",
        &metric,
    ]);
    let drain_ended = Instant::now();
    out.succeeds();
    for handle in slow {
        let (status, ended) = handle.join().unwrap();
        assert_eq!(status, Ok(200), "the request in flight got its answer");
        assert!(ended <= drain_ended);
    }
    assert!(flag.exists());
    assert_eq!(haproxy.status("s1"), "DOWN", "{}", haproxy.log());
    let s1_total = haproxy.total("s1");
    for _ in 0..4 {
        assert_eq!(
            kit::load::get_url(&format!("{}/health/live", haproxy.url())),
            Ok(200)
        );
    }
    assert_eq!(
        haproxy.total("s1"),
        s1_total,
        "new requests go to the other node"
    );
    let r = result(&out);
    assert!(r["inflight_start"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["inflight_end"], 0);
    assert_eq!(
        (r["state_before"].as_str(), r["state_after"].as_str()),
        (Some("absent"), Some("present"))
    );
    assert!(
        r["waited_ms"].as_u64().unwrap() >= 600,
        "the balancer's grace is waited: {r}"
    );
    let undone = drain_after(&out.stdout, &["--undo"]);
    undone.succeeds();
    assert!(!flag.exists());
    assert!(undone.last_step().changed);
    assert!(
        haproxy.wait_status("s1", "UP", Duration::from_secs(5)),
        "{}",
        haproxy.log()
    );
    // Undone already: the record's last drain is an undo, nothing more to do.
    let record = undone.stdout.clone();
    let again = drain_after(&record, &["--undo"]);
    again.succeeds();
    assert!(!again.last_step().changed);
}

#[test]
fn a_gauge_that_cannot_be_read_fails_before_the_flag_file_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain");
    let nowhere = format!(
        "http://127.0.0.1:{}/metrics#http_requests_in_flight",
        kit::free_port()
    );
    let out = drain(&[
        "--flag-file",
        flag.to_str().unwrap(),
        "--inflight-metric",
        &nowhere,
    ]);
    out.fails_with(kit::Kind::Network);
    assert!(!flag.exists(), "the node stays in traffic");
    let app = DemoApp::start(&[]);
    let wrong = format!("{}/metrics#no_such_gauge", app.url);
    let out = drain(&[
        "--flag-file",
        flag.to_str().unwrap(),
        "--inflight-metric",
        &wrong,
    ]);
    out.fails_with(kit::Kind::NotFound)
        .stderr_has("no sample of no_such_gauge");
    assert!(!flag.exists());
}

#[test]
fn the_port_method_counts_raw_tcp_clients_until_they_close() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let clients: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let accepted: Vec<_> = (0..2).map(|_| listener.accept().unwrap().0).collect();
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain");
    let mut cmd = kit::tool("ugw-drain");
    cmd.args([
        "--flag-file",
        flag.to_str().unwrap(),
        "--lb-grace",
        "0s",
        "--port",
        &port.to_string(),
        "--interval",
        "20ms",
    ]);
    let mut draining = kit::observe::Background::start(cmd);
    // Its first reading saw both connections: only then are they closed.
    draining.wait_for_stderr(": 2 in flight", Duration::from_secs(10));
    assert!(draining.is_running(), "it waits while they are open");
    drop(clients);
    drop(accepted);
    let out = draining.finish();
    out.succeeds();
    let r = result(&out);
    assert_eq!(
        (r["inflight_start"].as_u64(), r["inflight_end"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(r["inflight_source"], format!("port {port}"));
}

// ---- drain endpoint, signals ----

#[test]
fn http_post_calls_the_drain_endpoint_then_waits_and_an_error_answer_fails() {
    let hook = kit::RawServer::start(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
    let idle = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = idle.local_addr().unwrap().port().to_string();
    let url = format!("{}admin/drain", hook.url());
    let out = drain(&["--http-post", &url, "--lb-grace", "0s", "--port", &port]);
    out.succeeds();
    let received = hook.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(
        received[0].starts_with("POST /admin/drain "),
        "{}",
        received[0]
    );
    let r = result(&out);
    assert_eq!(
        (r["method"].as_str(), r["http_post"].as_str()),
        (Some("http_post"), Some(url.as_str()))
    );
    assert_eq!(r["inflight_end"], 0);
    let refusing = kit::RawServer::start(b"HTTP/1.1 409 Conflict\r\nContent-Length: 0\r\n\r\n");
    let out = drain(&[
        "--http-post",
        &refusing.url(),
        "--lb-grace",
        "0s",
        "--port",
        &port,
    ]);
    out.fails_with(kit::Kind::Refused).stderr_has("409");
}

#[test]
fn a_signal_ends_the_wait_at_once_with_the_record_written() {
    if !HaProxy::available() {
        return;
    }
    let p = pair(true);
    let _stuck = p.haproxy.slow_request_on("s1", 30_000);
    let child = drain_in_background(&p.args("s1", &[]));
    assert!(p.haproxy.wait_status("s1", "DRAIN", Duration::from_secs(5)));
    let (code, record) = kit::interrupt(child, libc::SIGTERM);
    assert_eq!(code, Some(143));
    let step = &record.steps[0];
    assert_eq!(
        (step.status.as_str(), step.error_kind()),
        ("interrupted", "interrupted")
    );
    assert_eq!(
        p.haproxy.status("s1"),
        "DRAIN",
        "an interrupted drain leaves the node out"
    );
}

#[test]
fn kit_nginx_dropped_leaves_no_worker_behind() {
    if !Nginx::available() {
        return;
    }
    let nginx = Nginx::start(None);
    let master = nginx.pid().to_string();
    let children =
        std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap();
    let workers: Vec<i32> = children
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(!workers.is_empty());
    drop(nginx);
    for worker in workers {
        assert!(
            kit::gone(worker, Duration::from_secs(2)),
            "worker {worker} outlived the fixture"
        );
    }
}

/// A sticky client: a request every 20 ms (each `/slow?ms=60`, so they overlap) with the
/// cookie that pins it to `server`, until stopped; the statuses it got.
struct StickyClient {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sender: std::thread::JoinHandle<Vec<Result<u16, String>>>,
}

impl StickyClient {
    fn start(haproxy: &HaProxy, server: &str) -> StickyClient {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (port, server) = (haproxy.port, server.to_string());
        let flag = std::sync::Arc::clone(&stop);
        let sender = std::thread::spawn(move || {
            let mut requests = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::SeqCst) && requests.len() < 1000 {
                let server = server.clone();
                requests.push(std::thread::spawn(move || {
                    sticky_get(port, "/slow?ms=60", &server)
                }));
                std::thread::sleep(Duration::from_millis(20));
            }
            requests.into_iter().map(|r| r.join().unwrap()).collect()
        });
        StickyClient { stop, sender }
    }

    fn stop(self) -> Vec<Result<u16, String>> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.sender.join().unwrap()
    }
}

#[test]
fn sticky_clients_keep_a_drained_server_busy_until_maint_after_moves_them() {
    if !HaProxy::available() {
        return;
    }
    let (s1, s2) = (DemoApp::start(&[]), DemoApp::start(&[]));
    let options = kit::haproxy::Options {
        cookies: true,
        ..kit::haproxy::Options::default()
    };
    let haproxy = HaProxy::start_with(
        &[
            Server::new("s1", &s1.addr(), true),
            Server::new("s2", &s2.addr(), true),
        ],
        &options,
    );
    assert!(haproxy.wait_status("s1", "UP", Duration::from_secs(5)));
    assert!(haproxy.wait_status("s2", "UP", Duration::from_secs(5)));
    let client = StickyClient::start(&haproxy, "s1");
    assert!(kit::eventually(Duration::from_secs(5), || haproxy
        .in_flight("s1")
        >= 1));
    let sock = haproxy.admin_socket();
    let sock = sock.to_str().unwrap();
    // Drained, the sticky client still reaches s1: it never gets to zero.
    let args = [
        "--haproxy",
        sock,
        "--server",
        "app/s1",
        "--interval",
        "50ms",
    ];
    let stuck = drain(&[&args[..], &["--timeout", "800ms"]].concat());
    stuck.fails_with(kit::Kind::Timeout);
    let s2_before = haproxy.total("s2");
    let out = drain(&[&args[..], &["--maint-after", "300ms", "--timeout", "10s"]].concat());
    out.succeeds();
    let r = result(&out);
    assert_eq!(
        (r["escalated"].as_str(), r["state_after"].as_str()),
        (Some("maint"), Some("maint"))
    );
    assert_eq!(r["inflight_end"], 0);
    assert!(
        haproxy.total("s2") > s2_before,
        "the sticky client went to s2"
    );
    let statuses = client.stop();
    assert!(statuses.len() > 20, "{}", statuses.len());
    assert!(statuses.iter().all(|s| *s == Ok(200)), "{statuses:?}");
}

#[test]
fn inflight_floor_discounts_a_gauge_that_counts_its_own_scrape() {
    // An application whose gauge counts the scrape that reads it: idle, it says 1.
    let body =
        "# TYPE http_requests_in_flight gauge\nhttp_requests_in_flight{path=\"/metrics\"} 1\n";
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let app = kit::RawServer::start(answer.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain");
    let metric = format!("{}metrics#http_requests_in_flight", app.url());
    let base = [
        "--flag-file",
        flag.to_str().unwrap(),
        "--lb-grace",
        "0s",
        "--inflight-metric",
        &metric,
    ];
    let stuck = drain(&[&base[..], &["--timeout", "500ms"]].concat());
    stuck.assert_code(1);
    assert_eq!(result(&stuck)["inflight_end"], 1);
    let out = drain(&[&base[..], &["--inflight-floor", "1"]].concat());
    out.succeeds();
    assert_eq!(result(&out)["inflight_end"], 0);
}

/// A GET of `path` through HAProxy's frontend on 127.0.0.1:`port` with `Cookie: SRV=server`
/// (its persistence cookie, pinning the request to `server`, drained or not): the status.
fn sticky_get(port: u16, path: &str, server: &str) -> Result<u16, String> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: SRV={server}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("no status line in {answer:?}"))
}

/// `sticky_get` on a thread of its own: its status, and when it ended.
fn sticky_request_in_background(
    port: u16,
    path: &str,
    server: &str,
) -> std::thread::JoinHandle<(Result<u16, String>, Instant)> {
    let (path, server) = (path.to_string(), server.to_string());
    std::thread::spawn(move || (sticky_get(port, &path, &server), Instant::now()))
}

#[test]
fn a_request_queued_in_haproxy_for_the_server_counts_as_in_flight() {
    if !HaProxy::available() {
        return;
    }
    // maxconn 1: a second request for node1 (pinned by its cookie) waits in node1's queue.
    let app = DemoApp::start(&[]);
    let options = kit::haproxy::Options {
        cookies: true,
        server_extra: "maxconn 1".to_string(),
        // The queue's timeout is `timeout connect` (1 s) unless set.
        backend_extra: vec!["timeout queue 10s".to_string()],
        ..kit::haproxy::Options::default()
    };
    let haproxy = HaProxy::start_with(&[Server::new("node1", &app.addr(), true)], &options);
    assert!(
        haproxy.wait_status("node1", "UP", Duration::from_secs(5)),
        "{}",
        haproxy.log()
    );
    let first = sticky_request_in_background(haproxy.port, "/slow?ms=1500", "node1");
    assert!(
        kit::eventually(Duration::from_secs(2), || count(
            &haproxy.stat("node1"),
            "scur"
        ) >= 1),
        "{:?}",
        haproxy.stat("node1")
    );
    let second = sticky_request_in_background(haproxy.port, "/slow?ms=1500", "node1");
    assert!(
        kit::eventually(Duration::from_secs(2), || count(
            &haproxy.stat("node1"),
            "qcur"
        ) >= 1),
        "the second request is queued: {:?}",
        haproxy.stat("node1")
    );
    let stat = haproxy.stat("node1");
    assert_eq!((count(&stat, "scur"), count(&stat, "qcur")), (1, 1));
    let started = Instant::now();
    let sock = haproxy.admin_socket();
    let child = drain_in_background(&[
        "--haproxy",
        sock.to_str().unwrap(),
        "--server",
        "app/node1",
        "--interval",
        "50ms",
    ]);
    let (outcome, drain_ended) = finish(child, started);
    outcome.succeeds();
    let (status, first_ended) = first.join().unwrap();
    assert_eq!(status, Ok(200));
    let (status, second_ended) = second.join().unwrap();
    assert_eq!(status, Ok(200), "the queued request got its answer");
    assert!(first_ended <= second_ended);
    assert!(
        second_ended <= drain_ended,
        "the drain ended {:?} before the queued request did",
        second_ended - drain_ended
    );
    let r = result(&outcome);
    assert!(
        r["inflight_start"].as_u64().unwrap() >= 2,
        "the queued request is counted: {r}"
    );
    assert_eq!(r["inflight_end"], 0);
    assert!(
        r["waited_ms"].as_u64().unwrap() >= 2500,
        "both requests, one after the other, are waited for: {r}"
    );
}

#[test]
fn one_zero_reading_does_not_end_the_wait_before_zero_readings_in_a_row() {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // The gauge reads 1, 0, 1, 0, 0, 0 (one value per scrape), then 0 for ever.
    const SCRIPT: [u64; 6] = [1, 0, 1, 0, 0, 0];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let scrapes = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&scrapes);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let value = SCRIPT.get(n).copied().unwrap_or(0);
            let body =
                format!("# TYPE http_requests_in_flight gauge\nhttp_requests_in_flight {value}\n");
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("drain");
    let metric = format!("http://127.0.0.1:{port}/metrics#http_requests_in_flight");
    let out = drain(&[
        "--flag-file",
        flag.to_str().unwrap(),
        "--lb-grace",
        "0s",
        "--inflight-metric",
        &metric,
        "--zero-readings",
        "3",
        "--interval",
        "20ms",
    ]);
    out.succeeds();
    let r = result(&out);
    assert!(
        scrapes.load(Ordering::SeqCst) >= SCRIPT.len(),
        "{} scrapes: {r}\n{}",
        scrapes.load(Ordering::SeqCst),
        out.stderr
    );
    // The check before the flag file is created takes the first scrape; the wait, the rest.
    assert!(r["readings"].as_u64().unwrap() >= 5, "{r}");
    assert_eq!(r["inflight_end"], 0);
}
