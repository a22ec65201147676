//! Deadlines and signals against what could outlive them: a runaway jq expression, the
//! children of `--cmd` attempts, and the signals a tool receives in the wild (SIGHUP from a
//! dropped ssh session, a stray SIGUSR1), all through `ugw-wait-healthy`.

use crate::kit;

use kit::{DemoApp, serial};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// The expressions that ran for 30 s and 2.2 GB before: one builds a huge array, the other
/// yields nothing for ever.
const RUNAWAYS: [&str; 2] = ["[range(1e9)]|length>0", "last(range(1e12))"];

fn live_url(app: &DemoApp) -> String {
    format!("{}/health/live", app.url)
}

fn spawn_wait_healthy(args: &[&str]) -> Child {
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("the tool starts")
}

/// Wait (at most 10 s) for `path` to exist: the command under test got that far.
fn wait_for_file(path: &Path) {
    assert!(
        kit::eventually(Duration::from_secs(10), || path.exists()),
        "{} never appeared",
        path.display()
    );
}

#[test]
fn a_runaway_jq_expression_ends_on_time_with_a_timeout_naming_it() {
    let _serial = serial();
    let app = DemoApp::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    for expression in RUNAWAYS {
        let file = dir.path().join("rec.json");
        let mut cmd = kit::tool("ugw-wait-healthy");
        cmd.args(["--url", &live_url(&app), "--expect", expression])
            .args(["--timeout", "2s", "--new", "--record"])
            .arg(&file);
        let out = kit::run(cmd);
        out.assert_code(1);
        assert!(
            out.took() >= Duration::from_secs(2),
            "{expression}: ended after {:?}, before the deadline",
            out.took()
        );
        assert!(
            out.took() < Duration::from_secs(3),
            "{expression}: ended after {:?}",
            out.took()
        );
        for record in [
            out.record(),
            kit::parse_record(&std::fs::read_to_string(&file).unwrap()),
        ] {
            let step = &record.steps[0];
            let error = step.error.as_ref().expect("a failed step says why");
            assert_eq!((step.status.as_str(), step.exit), ("failed", 1));
            assert_eq!(error.kind, "timeout");
            assert!(
                error.message.contains(&format!("--expect '{expression}'")),
                "{}",
                error.message
            );
            assert!(step.wait_result().rounds >= 1);
        }
        assert!(app.requests() >= 1, "the server was asked");
    }
}

#[test]
fn sigterm_during_a_runaway_jq_evaluation_exits_143_promptly() {
    let _serial = serial();
    let app = DemoApp::start(&[]);
    for expression in RUNAWAYS {
        let before = app.requests();
        let child = spawn_wait_healthy(&[
            "--url",
            &live_url(&app),
            "--expect",
            expression,
            "--timeout",
            "1m",
        ]);
        assert!(
            app.wait_for_requests(before + 1, Duration::from_secs(10)),
            "the server saw the request"
        );
        // The evaluation never ends by itself: once it burns CPU (in the tool or the evaluator it
        // forked), the signal comes during it.
        let before = kit::observe::tree_cpu_time(child.id());
        assert!(
            kit::eventually(Duration::from_secs(10), || {
                kit::observe::tree_cpu_time(child.id()) >= before + Duration::from_millis(100)
            }),
            "{expression}: the evaluation runs"
        );
        let (code, record) = kit::interrupt(child, libc::SIGTERM);
        assert_eq!(code, Some(143), "{expression}");
        let step = &record.steps[0];
        assert_eq!(
            (step.status.as_str(), step.exit, step.error_kind()),
            ("interrupted", 143, "interrupted")
        );
    }
}

#[test]
fn sighup_stops_like_sigterm_with_exit_129_and_kills_the_command() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.json");
    let pidfile = dir.path().join("sleep.pid");
    let check = format!("sleep 30 & echo $! > '{}'; wait", pidfile.display());
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args(["--cmd", &check, "--timeout", "1m", "--new", "--record"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    wait_for_file(&pidfile);
    let mut sleeper = 0;
    assert!(
        kit::eventually(Duration::from_secs(5), || {
            sleeper = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|pid| pid.trim().parse().ok())
                .unwrap_or(0);
            sleeper > 0
        }),
        "the command wrote its sleep's pid"
    );
    let (code, record) = kit::interrupt(child, libc::SIGHUP);
    assert_eq!(code, Some(129));
    let saved = kit::parse_record(&std::fs::read_to_string(&file).unwrap());
    for record in [record, saved] {
        let step = &record.steps[0];
        assert_eq!(
            (step.status.as_str(), step.exit, step.error_kind()),
            ("interrupted", 129, "interrupted")
        );
        assert_eq!(
            step.error.as_ref().unwrap().message,
            "interrupted by SIGHUP"
        );
    }
    assert!(
        kit::gone(sleeper, Duration::from_secs(1)),
        "the command's sleep {sleeper} is left running"
    );
}

#[test]
fn sigusr1_and_sigusr2_do_not_end_a_run() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    let ready = dir.path().join("ready");
    let check = format!("touch '{}'; test -e '{}'", seen.display(), ready.display());
    let child = spawn_wait_healthy(&["--cmd", &check, "--timeout", "30s", "--interval", "50ms"]);
    wait_for_file(&seen);
    kit::signal(child.id().cast_signed(), libc::SIGUSR1);
    kit::signal(child.id().cast_signed(), libc::SIGUSR2);
    // Still polling after both: the next attempts keep touching the file.
    std::fs::remove_file(&seen).unwrap();
    wait_for_file(&seen);
    std::fs::write(&ready, "").unwrap();
    let output = kit::wait_bounded(child, Duration::from_secs(20));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let record = kit::parse_record(&String::from_utf8_lossy(&output.stdout));
    assert!(record.ok);
    assert!(record.steps[0].wait_result().healthy);
}

/// Live processes (not zombies) whose argv holds `marker`.
fn survivors(marker: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(marker) && !kit::gone(*pid, Duration::ZERO)
        })
        .collect()
}

#[test]
fn background_children_of_failed_attempts_do_not_survive() {
    // A sleep of 21.<unique digits> seconds: its argv marks it as this run's.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let marker = format!("21.{}{nanos:09}", std::process::id());
    let check = format!("sleep {marker} & exit 1");
    let out = kit::wait_healthy(&[
        "--cmd",
        &check,
        "--timeout",
        "1500ms",
        "--interval",
        "200ms",
    ]);
    out.assert_code(1);
    let result = out.wait_result();
    assert!(result.attempts >= 2, "{result:?}");
    assert_eq!(result.targets[0].last_exit, Some(1));
    let left = survivors(&marker);
    for pid in &left {
        kit::signal(*pid, libc::SIGKILL);
    }
    assert!(left.is_empty(), "sleeps left by failed attempts: {left:?}");
}
