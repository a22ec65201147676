//! The one way ugw runs a child (`--cmd`, `--restart`, `--smoke`, `pg_dump`): `sh -c` in its
//! own process group, killed as a group at the deadline or on a signal, output captured up to
//! a bound even when grandchildren keep the pipe open.

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much of each stream is kept by default.
pub const DEFAULT_CAPTURE: usize = 64 * 1024;
/// How long to wait for the pipes to close after the child itself exited: a daemon it started
/// may hold them open for ever.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct RunSpec {
    pub command: String,
    /// Kill the group when this instant passes.
    pub deadline: Instant,
    pub capture_limit: usize,
    pub env: Vec<(String, String)>,
    pub cwd: Option<std::path::PathBuf>,
}

impl RunSpec {
    #[must_use]
    pub fn new(command: &str, deadline: Instant) -> Self {
        RunSpec {
            command: command.to_string(),
            deadline,
            capture_limit: DEFAULT_CAPTURE,
            env: Vec::new(),
            cwd: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signalled(i32),
    /// Killed by us at the deadline.
    TimedOut,
}

#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub ended: Ended,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Output beyond the capture limit was dropped.
    pub truncated: bool,
    pub elapsed: Duration,
}

impl RunOutcome {
    #[must_use]
    pub fn success(&self) -> bool {
        self.ended == Ended::Exited(0)
    }

    /// One phrase for messages: `exit 3`, `killed by signal 9`, `timed out`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self.ended {
            Ended::Exited(code) => format!("exit {code}"),
            Ended::Signalled(sig) => format!("killed by signal {sig}"),
            Ended::TimedOut => format!("timed out after {}", crate::time::human(self.elapsed)),
        }
    }
}

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
    done: bool,
}

/// Run `spec.command` through `sh -c`. A signal kills the group and returns `interrupted`.
pub fn run(spec: &RunSpec, cancel: &Cancel) -> Result<RunOutcome> {
    let started = Instant::now();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&spec.command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in &spec.env {
        command.env(k, v);
    }
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }
    let mut child = command
        .spawn()
        .map_err(|e| Error::io("cannot start sh", &e))?;
    let pgid = child.id().cast_signed();
    let out = capture(child.stdout.take().expect("piped"), spec.capture_limit);
    let err = capture(child.stderr.take().expect("piped"), spec.capture_limit);

    let ended = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| Error::io("cannot wait for the command", &e))?
        {
            break match (status.code(), status.signal()) {
                (Some(code), _) => Ended::Exited(code),
                (None, Some(sig)) => Ended::Signalled(sig),
                (None, None) => Ended::Exited(-1),
            };
        }
        if let Err(interrupted) = cancel.check() {
            kill_group(pgid);
            let _ = child.wait();
            return Err(interrupted);
        }
        if Instant::now() >= spec.deadline {
            kill_group(pgid);
            let _ = child.wait();
            break Ended::TimedOut;
        }
        // Short sleeps: a health command is polled once a second, so this costs nothing,
        // and it keeps both the deadline and a signal within a few milliseconds.
        let left = spec.deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_millis(5)));
    };
    if ended == Ended::TimedOut {
        // The whole group is dead; its pipes close promptly.
        wait_drained(&[&out, &err], Instant::now() + DRAIN_GRACE * 5);
    } else {
        wait_drained(&[&out, &err], Instant::now() + DRAIN_GRACE);
    }
    let (stdout, t1) = take(&out);
    let (stderr, t2) = take(&err);
    Ok(RunOutcome {
        ended,
        stdout,
        stderr,
        truncated: t1 || t2,
        elapsed: started.elapsed(),
    })
}

fn kill_group(pgid: i32) {
    // SAFETY: signalling our own child's process group.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn capture(mut stream: impl Read + Send + 'static, limit: usize) -> Arc<Mutex<Captured>> {
    let shared = Arc::new(Mutex::new(Captured::default()));
    let sink = Arc::clone(&shared);
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut c = sink
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let room = limit.saturating_sub(c.bytes.len());
                    c.bytes.extend_from_slice(&buf[..n.min(room)]);
                    // Keep reading past the limit so the child is never blocked on a full pipe.
                    c.truncated |= n > room;
                }
            }
        }
        sink.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .done = true;
    });
    shared
}

fn wait_drained(streams: &[&Arc<Mutex<Captured>>], until: Instant) {
    while Instant::now() < until {
        if streams.iter().all(|s| s.lock().map_or(true, |c| c.done)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn take(stream: &Arc<Mutex<Captured>>) -> (Vec<u8>, bool) {
    let c = stream
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    (c.bytes.clone(), c.truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_and_reports_the_exit_code() {
        let spec = RunSpec::new(
            "echo out; echo err >&2; exit 3",
            Instant::now() + Duration::from_secs(5),
        );
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert_eq!(outcome.ended, Ended::Exited(3));
        assert_eq!(outcome.stdout, b"out\n");
        assert_eq!(outcome.stderr, b"err\n");
    }

    #[test]
    fn the_deadline_kills_the_group_and_a_daemon_does_not_hold_us() {
        let spec = RunSpec::new(
            "sleep 30 & sleep 30",
            Instant::now() + Duration::from_millis(200),
        );
        let start = Instant::now();
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert_eq!(outcome.ended, Ended::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(2));

        // A background child keeps stdout open after sh exits: we still return promptly.
        let spec = RunSpec::new(
            "(sleep 3; echo late) & echo early",
            Instant::now() + Duration::from_secs(5),
        );
        let start = Instant::now();
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert!(outcome.success());
        assert_eq!(outcome.stdout, b"early\n");
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn capture_is_bounded() {
        let mut spec = RunSpec::new(
            "head -c 100000 /dev/zero",
            Instant::now() + Duration::from_secs(5),
        );
        spec.capture_limit = 1000;
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert_eq!(outcome.stdout.len(), 1000);
        assert!(outcome.truncated);
    }
}
