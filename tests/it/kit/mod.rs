//! The test kit every integration test shares: the real binaries, the demo service on a free
//! port (killed with the test), `require` (skip locally, fail under CI=true), strict structs
//! the record must decode into, and a lock for timing tests.

#![allow(dead_code)] // not every helper is used by a test today (and hostile_archives is shared with unit tests)

pub mod docker;
pub mod file_server;
pub mod fleet;
pub mod fluent;
pub mod haproxy;
pub mod hostile_archives;
pub mod load;
pub mod migrations;
pub mod mounts;
pub mod nginx;
pub mod observe;
pub mod postgres;
pub mod proxy;

pub use fluent::Kind;

use serde::Deserialize;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
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
    /// Every step ugw writes has it; a hand-made earlier step in a test may not.
    #[serde(default)]
    pub run: String,
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

#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Which case of a table test this is, at the head of an assertion's failure (`case`).
    pub case: Option<String>,
}

impl Outcome {
    /// The outcome of a process that ran for `elapsed`.
    pub fn from(output: &Output, elapsed: Duration) -> Self {
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
            case: None,
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

/// How long any tool or script a test runs may take: a hang fails the test, not the CI run.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Run `cmd` to its end and return its output, failing the test with its program, arguments
/// and stderr unless it succeeded (for the real tools a conformance test compares with).
pub fn succeeds(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    let args: Vec<&std::ffi::OsStr> = cmd.get_args().collect();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        cmd.get_program().to_string_lossy(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The names in `dir` (a `--dest` folder), ugw-fetch's lock file left out; sorted.
pub fn fetched_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n != ".ugw-fetch.lock")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The `ugw-fetch --extract` command that fetches the archive file at `archive` (checked by
/// its sha256) and extracts it into `dest/out`.
pub fn fetch_extract_cmd(archive: &Path, dest: &Path) -> Command {
    let bytes = std::fs::read(archive).unwrap();
    let url = format!("file://{}", s(archive));
    let mut cmd = tool("ugw-fetch");
    cmd.args([
        "--url",
        &url,
        "--sha256",
        &sha256(&bytes),
        "--dest",
        s(dest),
        "--extract",
        "--name",
        "out",
    ]);
    cmd
}

/// Run `cmd` (stdin as it was set: `tool` and `bash` make it /dev/null) with its output
/// captured, for at most [`RUN_LIMIT`].
pub fn run(cmd: Command) -> Outcome {
    run_within(cmd, RUN_LIMIT)
}

/// [`run`], for at most `limit` (a play, a whole upgrade).
pub fn run_within(mut cmd: Command, limit: Duration) -> Outcome {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let child = cmd.spawn().expect("the command starts");
    let output = wait_bounded(child, limit);
    Outcome::from(&output, started.elapsed())
}

/// Run `ugw-wait-healthy` with these arguments, stdin from /dev/null.
pub fn wait_healthy(args: &[&str]) -> Outcome {
    let mut cmd = tool("ugw-wait-healthy");
    cmd.args(args);
    run(cmd)
}

/// `ugw-swap` with `args`, nothing on its stdin.
pub fn swap(args: &[&str]) -> Outcome {
    let mut cmd = tool("ugw-swap");
    cmd.args(args);
    run(cmd)
}

/// `FOLDER/bin/app`, an executable shell script of `script` (its body): what a test's release
/// runs under `ugw-swap --start 'exec bin/app'`.
pub fn app_script(folder: &Path, script: &str) -> PathBuf {
    std::fs::create_dir_all(folder.join("bin")).unwrap();
    let app = folder.join("bin/app");
    std::fs::write(&app, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&app, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    app
}

/// The release `DIR/staging/NAME` whose `bin/app` runs `script` (see [`app_script`]).
pub fn script_release(dir: &Path, name: &str, script: &str) -> PathBuf {
    let folder = dir.join("staging").join(name);
    app_script(&folder, script);
    folder
}

/// A folder `DIR/staging/NAME` holding `bin/app` with `content`: a release as ugw-swap's
/// release-folder mode takes it with `--from`.
pub fn staged_release(dir: &Path, name: &str, content: &str) -> PathBuf {
    let folder = dir.join("staging").join(name);
    std::fs::create_dir_all(folder.join("bin")).unwrap();
    std::fs::write(folder.join("bin/app"), content).unwrap();
    folder
}

/// Where `ROOT/current` points (`releases/<version>`), as ugw-swap's release-folder mode left
/// it.
pub fn current(root: &Path) -> String {
    std::fs::read_link(root.join("current"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Run a tool with `input` written to its stdin (a pipe the test made), for at most
/// [`RUN_LIMIT`].
pub fn with_stdin(mut cmd: Command, input: &str) -> Outcome {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("the tool starts");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    // Not joined: a tool that never reads its stdin must not hang the test; the writer ends
    // with an error once the tool is gone.
    std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = wait_bounded(child, RUN_LIMIT);
    Outcome::from(&output, started.elapsed())
}

/// A pipe read to its end by a thread, so a child writing much output never blocks on it.
struct Drain {
    bytes: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Drain {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Drain {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&bytes);
        let reader = pipe.map(|mut pipe| {
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    sink.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            })
        });
        Drain { bytes, reader }
    }

    /// What was read so far.
    fn so_far(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }

    /// Everything, once the pipe is closed; what was read by `until` if a grandchild still
    /// holds it open then.
    fn finish(mut self, until: Instant) -> Vec<u8> {
        if let Some(reader) = self.reader.take() {
            while !reader.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        self.so_far()
    }
}

/// Wait for `child` at most `limit`; a child still running then is stopped and the test fails
/// with its stderr so far (a hang must fail the test, not the CI run). It (its process group,
/// when it leads one) gets SIGTERM first and a few seconds to clean up (a script's trap stops the servers it started, which live in
/// sessions of their own), then SIGKILL. Its stdout and stderr, when piped, are drained while
/// it runs, so a large output cannot deadlock.
pub fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let stdout = Drain::start(child.stdout.take());
    let stderr = Drain::start(child.stderr.take());
    wait_drained(child, stdout, stderr, limit)
}

/// [`wait_bounded`] for a child whose outputs are already being drained.
fn wait_drained(mut child: Child, stdout: Drain, stderr: Drain, limit: Duration) -> Output {
    let until = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= until {
            // The whole group when the child leads one (`process_group(0)`): a script's
            // foreground command stops too, so its trap runs at once.
            let pid = child.id().cast_signed();
            // SAFETY: getpgid only reads the process table.
            let leads_group = unsafe { libc::getpgid(pid) } == pid;
            signal(if leads_group { -pid } else { pid }, libc::SIGTERM);
            let grace = Instant::now() + Duration::from_secs(5);
            while child.try_wait().unwrap().is_none() && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.finish(Instant::now() + Duration::from_millis(200));
            panic!(
                "still running after {limit:?}; stderr so far: {}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Output {
        status,
        stdout: stdout.finish(until),
        stderr: stderr.finish(until),
    }
}

/// Feed `script` to `shell` (a command that runs a shell reading its commands from stdin, as
/// a CI runner does) and keep the pipe open until the shell exits, at most 10 s.
pub fn script_on_stdin(mut shell: Command, script: &str, dir: &Path) -> Outcome {
    shell
        .current_dir(dir)
        .env("PATH", path_with_bins())
        .env_remove("UGW_HOST_ID")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = shell.spawn().expect("the shell starts");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    let output = wait_bounded(child, Duration::from_secs(10));
    drop(stdin);
    Outcome::from(&output, started.elapsed())
}

/// Send `sig` to `child` and wait for it; it must exit within 150 ms of the signal (the
/// contract says waits end within 100 ms). Returns the exit code and the record on stdout.
#[track_caller]
pub fn interrupt(child: Child, sig: i32) -> (Option<i32>, Record) {
    let sent = Instant::now();
    signal(child.id().cast_signed(), sig);
    let output = wait_bounded(child, Duration::from_secs(5));
    let took = sent.elapsed();
    assert!(
        took <= Duration::from_millis(150),
        "exit {took:?} after signal {sig}"
    );
    (
        output.status.code(),
        parse_record(&String::from_utf8_lossy(&output.stdout)),
    )
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

/// A TCP port on 127.0.0.1 nobody listens on right now (a server started on it may still
/// lose a race for it: fixtures that use it retry).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
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

    /// Requests the service has seen, once the count has been stable for 100 ms (at most 2 s):
    /// the log is read by a thread, so a request just answered may not be counted yet.
    pub fn requests_settled(&self) -> usize {
        settled(|| self.requests())
    }

    /// Wait until the service has seen `n` requests; false after `timeout`.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        eventually(timeout, || self.requests() >= n)
    }

    /// Wait for the service to exit by itself; its exit code, or `None` after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let mut exited = None;
        eventually(limit, || {
            exited = child.try_wait().unwrap();
            exited.is_some()
        });
        let status = exited?;
        self.child = None;
        status.code()
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

/// `count()` once it has not changed for 100 ms, or after 2 s.
fn settled(count: impl Fn() -> usize) -> usize {
    let until = Instant::now() + Duration::from_secs(2);
    let mut last = count();
    let mut since = Instant::now();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
        let now = count();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= Duration::from_millis(100) {
            break;
        }
    }
    last
}

// ---- a server that lies ----

/// A real TCP server on 127.0.0.1:0 that reads one request (its head, and a body of its
/// `Content-Length`) and answers every connection with the same raw bytes (none at all: it
/// just closes), then closes. It plays the broken and hostile servers the demo service cannot,
/// and keeps what it received; it stops when dropped.
pub struct RawServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl RawServer {
    pub fn start(response: &[u8]) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let response: Arc<[u8]> = Arc::from(response);
        let requests = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            let received = Arc::clone(&received);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (response, requests) = (Arc::clone(&response), Arc::clone(&requests));
                    let received = Arc::clone(&received);
                    std::thread::spawn(move || answer(stream, &response, &requests, &received));
                }
            })
        };
        RawServer {
            addr,
            requests,
            received,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Request heads read so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Each request received so far, head and body, as text (in the order they were read).
    pub fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

/// One connection: read a request head and its body (bounded in size and time), keep them,
/// answer, close.
fn answer(
    mut stream: TcpStream,
    response: &[u8],
    requests: &AtomicUsize,
    received: &Mutex<Vec<String>>,
) {
    let limit = Some(Duration::from_secs(5));
    let _ = stream.set_read_timeout(limit);
    let _ = stream.set_write_timeout(limit);
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(n @ 1..) if head.len() < 64 * 1024 => head.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
    let head_end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let length = String::from_utf8_lossy(&head[..head_end])
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0)
        .min(1024 * 1024);
    while head.len() < head_end + length {
        match stream.read(&mut chunk) {
            Ok(n @ 1..) => head.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    received
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&head).into_owned());
    requests.fetch_add(1, Ordering::SeqCst);
    let _ = stream.write_all(response);
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // `accept` blocks: a connection of our own wakes it to see the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Standard base64 (with padding): how `user:password` travels in a Basic Authorization.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: signalling a child of this test.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Whether process `pid` is gone (no such process, or a zombie: dead, not yet reaped) within
/// `within`.
pub fn gone(pid: i32, within: Duration) -> bool {
    eventually(within, || {
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        });
        !alive || zombie
    })
}

/// The pid on the first line of a pidfile `ugw-swap --start` wrote (its second line says it
/// is `ugw-swap --start`'s); `None` when the file is missing or is not one of those.
pub fn started_pid(pidfile: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pidfile).ok()?;
    let pid = text.lines().next()?.trim().parse().ok()?;
    text.contains("ugw-swap --start").then_some(pid)
}

/// Kills, with its process group, what a pidfile `ugw-swap --start` wrote names: for a test's
/// `Drop`, so that the service it started goes with it, a failed test included.
pub fn kill_started(pidfile: &Path) {
    if let Some(pid) = started_pid(pidfile) {
        signal(-pid, libc::SIGKILL);
    }
}

/// Whether `ok` comes to hold within `limit`: asked every 10 ms, and once more at the end.
pub fn eventually(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if ok() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
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

/// A path as the `&str` a command line takes (test paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// SHA-256 of `bytes` as ugw writes it (lower-case hex).
pub fn sha256(bytes: &[u8]) -> String {
    ugw_shared::digest::sha256_reader(bytes).unwrap()
}

/// A record with one ok `ugw-fetch` step of `version`, as the tool before us would write it
/// (every field of `ugw_shared::results::Fetched`).
pub fn fetch_record(version: &str) -> String {
    fetch_record_at("/opt/app/staging/app", version)
}

/// A record with one ok `ugw-fetch` step that staged `path` as `version`, in its run and on
/// this host (a tool acts only on steps of its record's run written on its own host).
pub fn fetch_record_at(path: impl serde::Serialize, version: &str) -> String {
    serde_json::json!({
        "ugw": 1, "run": "20261121T235901Z-test-0001", "ok": true,
        "steps": [{
            "tool": "ugw-fetch", "tool_version": "0.1.0", "run": "20261121T235901Z-test-0001",
            "host": ugw_shared::time::hostname(),
            "started": "2026-11-21T23:59:01.123Z", "elapsed_ms": 5, "status": "ok", "exit": 0,
            "changed": true, "dry_run": false,
            "result": {"url": "https://releases.invalid/app", "path": path,
                       "sha256": "00", "bytes": 1, "version": version, "verified": true,
                       "resumed": false}
        }]
    })
    .to_string()
}
