//! The test kit every integration test shares: the real binaries, the demo service on a free
//! port (killed with the test), `require` (skip locally, fail under CI=true), strict structs
//! the record must decode into, and a lock for timing tests.

#![allow(dead_code)] // each test binary uses part of the kit

use serde::Deserialize;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

// ---- strict shapes: a field the contract does not name fails the test ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub ugw: u64,
    pub run: String,
    pub ok: bool,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub tool: String,
    pub tool_version: String,
    pub host: String,
    pub started: String,
    pub elapsed_ms: u64,
    pub status: String,
    pub exit: i32,
    pub changed: bool,
    pub dry_run: bool,
    #[serde(default)]
    pub result: serde_json::Value,
    #[serde(default)]
    pub error: Option<StepError>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepError {
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitResult {
    pub healthy: bool,
    pub mode: String,
    pub targets: Vec<TargetResult>,
    pub rounds: u64,
    pub attempts: u64,
    pub elapsed_ms: u64,
    pub time_to_healthy_ms: Option<u64>,
    pub deadline_overrun_ms: u64,
    pub expect_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetResult {
    pub target: String,
    pub kind: String,
    pub attempts: u64,
    pub passes: u64,
    pub passing: bool,
    pub last_status: Option<u16>,
    pub last_exit: Option<i32>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<u64>,
    pub body_excerpt: Option<String>,
}

impl Step {
    pub fn wait_result(&self) -> WaitResult {
        serde_json::from_value(self.result.clone())
            .unwrap_or_else(|e| panic!("result does not decode: {e}\n{:#}", self.result))
    }

    pub fn error_kind(&self) -> &str {
        self.error.as_ref().map_or("", |e| e.kind.as_str())
    }
}

// ---- running the tools ----

#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    fn from(output: &Output, elapsed: Duration) -> Self {
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
        }
    }

    /// The record on stdout: exactly one compact line, decoded strictly.
    pub fn record(&self) -> Record {
        assert!(
            self.stdout.ends_with('\n'),
            "stdout must end with a newline: {:?}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert_eq!(
            self.stdout.lines().count(),
            1,
            "stdout must be one line: {:?}",
            self.stdout
        );
        parse_record(&self.stdout)
    }

    pub fn last_step(&self) -> Step {
        self.record().steps.pop().expect("at least one step")
    }

    pub fn wait_result(&self) -> WaitResult {
        self.last_step().wait_result()
    }

    /// Why the first target last failed, as the record says.
    pub fn target_error(&self) -> String {
        let result = self.wait_result();
        result.targets[0]
            .last_error
            .clone()
            .unwrap_or_else(|| panic!("no last_error: {result:?}"))
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn parse_record(text: &str) -> Record {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not a strict record ({e}): {text}"))
}

/// The path of one of our binaries (built by cargo for this test run).
pub fn bin(name: &str) -> PathBuf {
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_ugw-wait-healthy"));
    let path = ours.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first (`make test` does)",
        path.display()
    );
    path
}

/// A tool as a Command with a clean environment and stdin from /dev/null.
pub fn tool(name: &str) -> Command {
    let mut cmd = Command::new(bin(name));
    cmd.env_remove("UGW_HOST_ID")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    cmd
}

pub fn run(mut cmd: Command) -> Outcome {
    let started = Instant::now();
    let output = cmd.output().expect("the tool starts");
    Outcome::from(&output, started.elapsed())
}

/// Run `ugw-wait-healthy` with these arguments, stdin from /dev/null.
pub fn wait_healthy(args: &[&str]) -> Outcome {
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args(args);
    run(cmd)
}

/// Run a tool with `input` written to its stdin (a pipe the test made).
pub fn with_stdin(mut cmd: Command, input: &str) -> Outcome {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("the tool starts");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Outcome::from(&output, started.elapsed())
}

/// Wait for `child` at most `limit`; a child still running then is killed and the test fails
/// (a hang must fail the test, not the CI run).
pub fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    panic!(
        "still running after {limit:?}; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Run a bash script (`bash -c`) with the binaries on PATH.
pub fn bash(script: &str, dir: &Path) -> Outcome {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path_with_bins())
        .env_remove("UGW_HOST_ID")
        .stdin(Stdio::null());
    run(cmd)
}

pub fn path_with_bins() -> String {
    let dir = bin("ugw-wait-healthy").parent().unwrap().to_path_buf();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

// ---- components ----

/// Whether `component` (a command on PATH) is here. Locally a missing one skips the test with
/// a printed reason; under CI=true it fails the run.
pub fn require(component: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {component}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{component} is required under CI=true but is not installed"
        );
        eprintln!("SKIPPED: {component} is not installed");
    }
    found
}

/// Whether IPv6 loopback works here (CI checks it up front).
pub fn require_ipv6() -> bool {
    let ok = std::net::TcpListener::bind("[::1]:0").is_ok();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "IPv6 loopback is required under CI=true"
        );
        eprintln!("SKIPPED: no IPv6 loopback");
    }
    ok
}

/// Timing tests run one at a time, so they measure the tool and not each other.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---- the demo service ----

/// The demo service on a free port; killed when dropped, even when the test fails.
pub struct DemoApp {
    child: Option<Child>,
    pub url: String,
    log: Arc<Mutex<String>>,
}

impl DemoApp {
    /// Start it on 127.0.0.1:0 (unless `args` has --listen), logging requests.
    pub fn start(args: &[&str]) -> DemoApp {
        let mut cmd = Command::new(bin("ugw-demo-app"));
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.arg("--log-requests")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the demo service starts");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut app = DemoApp {
            child: Some(child),
            url: String::new(),
            log,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the demo service says where it listens");
        app.url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}: {}", app.log()))
            .to_string();
        app
    }

    /// `HOST:PORT` as a --tcp target wants it.
    pub fn addr(&self) -> String {
        self.url.split("://").nth(1).unwrap().to_string()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id().cast_signed())
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Requests the service has seen so far.
    pub fn requests(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(": request "))
            .count()
    }

    /// Wait until the service has seen `n` requests; false after `timeout`.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.requests() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Wait for the service to exit by itself; its exit code, or `None` after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let until = Instant::now() + limit;
        let child = self.child.as_mut()?;
        while Instant::now() < until {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// SIGTERM, then wait for the graceful exit.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id().cast_signed(), libc::SIGTERM);
            let _ = child.wait();
        }
    }
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: signalling a child of this test.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem) in `dir`.
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// A record with one ok `ugw-fetch` step of `version`, as the tool before us would write it.
pub fn fetch_record(version: &str) -> String {
    serde_json::json!({
        "ugw": 1, "run": "20261121T235901Z-test-0001", "ok": true,
        "steps": [{
            "tool": "ugw-fetch", "tool_version": "0.1.0", "host": "test",
            "started": "2026-11-21T23:59:01.123Z", "elapsed_ms": 5, "status": "ok", "exit": 0,
            "changed": true, "dry_run": false,
            "result": {"path": "/opt/app/staging/app", "sha256": "00", "bytes": 1, "version": version}
        }]
    })
    .to_string()
}
