//! The one way ugw runs a child (`--cmd`, `--restart`, `--smoke`, `pg_dump`): a user's command
//! line through `sh -c`, or a program and its arguments with no shell (secrets go through the
//! environment, never argv). The child leads its own process group; the group gets SIGTERM
//! then, after a grace period, SIGKILL at the deadline or on a signal, and SIGKILL after every
//! run, so background children never outlive their attempt. The child is waited for through a
//! pidfd, and output is captured up to a bound even when grandchildren keep the pipe open.
//!
//! A command that means to leave a daemon behind must detach it from the group (`setsid`).

use crate::cancel::{Cancel, Woken};
use crate::error::{Error, Result};
use rustix::fd::{AsFd, OwnedFd};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How much of each stream is kept by default.
pub const DEFAULT_CAPTURE: usize = 64 * 1024;
/// How long to wait for the pipes to close after the group was killed: a grandchild that left
/// the group (`setsid`) may hold them open for ever.
const DRAIN_GRACE: Duration = Duration::from_millis(100);
/// How often the leader is looked at where no pidfd can be had (old kernels, other systems).
const FALLBACK_TICK: Duration = Duration::from_millis(5);

/// What runs.
#[derive(Debug, Clone)]
pub enum Program {
    /// A user's command line, through `sh -c`.
    Shell(String),
    /// A program and its arguments, no shell in between.
    Argv(Vec<OsString>),
}

/// Where the child's stdin comes from.
#[derive(Debug, Clone, Default)]
pub enum Input {
    #[default]
    Null,
    /// A file the user named, opened for reading.
    Path(PathBuf),
    /// A file the caller opened.
    File(Arc<File>),
}

/// Where the child's stdout goes (stderr is always captured, for messages).
#[derive(Debug, Clone, Default)]
pub enum Output {
    /// Kept up to `capture_limit` bytes; the rest is read and dropped.
    #[default]
    Capture,
    Null,
    /// Created (mode 0600) or truncated, never through a symlink.
    Path(PathBuf),
    /// A file the caller opened (an atomic file's temp, say).
    File(Arc<File>),
}

#[derive(Debug, Clone)]
pub struct RunSpec {
    pub program: Program,
    /// Stop the group when this instant passes.
    pub deadline: Instant,
    pub capture_limit: usize,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub stdin: Input,
    pub stdout: Output,
    /// Between SIGTERM and SIGKILL: a restart command gets the chance to stop cleanly. It
    /// comes out of the deadline, never on top of it: SIGTERM goes at `deadline - grace`
    /// (the grace at most half the time the command has) and SIGKILL at the deadline; on a
    /// signal, SIGTERM goes at once and SIGKILL after the grace or at the deadline, whichever
    /// is first. Zero (the default) kills at once.
    pub grace: Duration,
}

impl RunSpec {
    /// `command` through `sh -c`.
    #[must_use]
    pub fn new(command: &str, deadline: Instant) -> Self {
        Self::with_program(Program::Shell(command.to_string()), deadline)
    }

    /// `program` with `args`, no shell.
    #[must_use]
    pub fn argv<I, S>(program: impl Into<OsString>, args: I, deadline: Instant) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let words = std::iter::once(program.into())
            .chain(args.into_iter().map(Into::into))
            .collect();
        Self::with_program(Program::Argv(words), deadline)
    }

    fn with_program(program: Program, deadline: Instant) -> Self {
        RunSpec {
            program,
            deadline,
            capture_limit: DEFAULT_CAPTURE,
            env: Vec::new(),
            cwd: None,
            stdin: Input::Null,
            stdout: Output::Capture,
            grace: Duration::ZERO,
        }
    }

    /// Set `key` in the child's environment (the way secrets reach a child).
    #[must_use]
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    #[must_use]
    pub fn with_stdin(mut self, stdin: Input) -> Self {
        self.stdin = stdin;
        self
    }

    #[must_use]
    pub fn with_stdout(mut self, stdout: Output) -> Self {
        self.stdout = stdout;
        self
    }

    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The program's name for messages (never its arguments, which may be long).
    #[must_use]
    pub fn name(&self) -> String {
        match &self.program {
            Program::Shell(_) => "sh".to_string(),
            Program::Argv(argv) => argv
                .first()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    fn command(&self) -> Result<Command> {
        let mut command = match &self.program {
            Program::Shell(line) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(line);
                c
            }
            Program::Argv(words) => {
                let (program, args) = words
                    .split_first()
                    .ok_or_else(|| Error::usage("no program to run"))?;
                let mut c = Command::new(program);
                c.args(args);
                c
            }
        };
        command
            .stdin(self.stdin_stdio()?)
            .stdout(self.stdout_stdio()?)
            .stderr(Stdio::piped())
            .process_group(0);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        Ok(command)
    }

    fn stdin_stdio(&self) -> Result<Stdio> {
        Ok(match &self.stdin {
            Input::Null => Stdio::null(),
            Input::Path(path) => File::open(path)
                .map_err(|e| Error::io(format!("cannot open {}", path.display()), &e))?
                .into(),
            Input::File(file) => cloned(file)?,
        })
    }

    fn stdout_stdio(&self) -> Result<Stdio> {
        Ok(match &self.stdout {
            Output::Capture => Stdio::piped(),
            Output::Null => Stdio::null(),
            Output::Path(path) => std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| Error::io(format!("cannot create {}", path.display()), &e))?
                .into(),
            Output::File(file) => cloned(file)?,
        })
    }
}

fn cloned(file: &File) -> Result<Stdio> {
    Ok(file
        .try_clone()
        .map_err(|e| Error::io("cannot pass a file to the command", &e))?
        .into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signalled(i32),
    /// Stopped by us at the deadline.
    TimedOut,
}

#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub ended: Ended,
    /// Empty unless stdout was captured.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Output beyond the capture limit was dropped.
    pub truncated: bool,
    pub elapsed: Duration,
    /// How many processes of the command's group were still running once its leader had
    /// ended, and were killed (a service started in the background by a restart command).
    pub left_behind: usize,
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

    /// The exit code, when the command exited (not killed, not timed out).
    #[must_use]
    pub fn exit_code(&self) -> Option<i32> {
        match self.ended {
            Ended::Exited(code) => Some(code),
            Ended::Signalled(_) | Ended::TimedOut => None,
        }
    }

    /// What the command said: its stderr, which is usually why it failed, or its stdout when
    /// stderr is blank (a quiet command may say it there).
    #[must_use]
    pub fn said(&self) -> &[u8] {
        if self.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
            &self.stderr
        } else {
            &self.stdout
        }
    }

    /// `said()` as a scrubbed, bounded excerpt for a message or a record (at most `max` bytes).
    #[must_use]
    pub fn said_excerpt(&self, max: usize) -> String {
        crate::scrub::excerpt(self.said(), max)
    }
}

/// Run `spec`. A signal stops the group and returns `interrupted`.
pub fn run(spec: &RunSpec, cancel: &Cancel) -> Result<RunOutcome> {
    run_with(spec, cancel, true)
}

fn run_with(spec: &RunSpec, cancel: &Cancel, use_pidfd: bool) -> Result<RunOutcome> {
    let started = Instant::now();
    let mut child = spec
        .command()?
        .spawn()
        .map_err(|e| Error::io(format!("cannot start {}", spec.name()), &e))?;
    let group = Group::of(&child, use_pidfd);
    let out = child
        .stdout
        .take()
        .map(|pipe| Capture::start(pipe, spec.capture_limit));
    let err = Capture::start(child.stderr.take().expect("piped"), spec.capture_limit);

    // The grace comes out of the time the command has: the group is gone by the deadline.
    let grace = spec
        .grace
        .min(spec.deadline.saturating_duration_since(started) / 2);
    let term_at = spec.deadline.checked_sub(grace).unwrap_or(spec.deadline);
    let waited = group.wait_exit(term_at, cancel);
    match waited {
        Ok(true) => {}
        Ok(false) => group.stop(grace),
        Err(_) => group.stop(
            spec.grace
                .min(spec.deadline.saturating_duration_since(Instant::now())),
        ),
    }
    // The leader is dead but not reaped, so its pid (the group's id) cannot have been reused:
    // whatever is left in the group is ours to kill. Counted first, so that the tool can say
    // what it killed (issue 21 item 4: a service started with `&` dies with its restart).
    let leader = group.leader.as_raw_nonzero().get();
    let left_behind = group_members(leader, leader);
    group.signal(Signal::KILL);
    let status = child
        .wait()
        .map_err(|e| Error::io("cannot wait for the command", &e))?;
    let timed_out = !waited?;

    let drain_until = Instant::now() + DRAIN_GRACE;
    let (stdout, t1) = out.map_or((Vec::new(), false), |c| c.finish(drain_until));
    let (stderr, t2) = err.finish(drain_until);
    let ended = match (timed_out, status.code(), status.signal()) {
        (true, _, _) => Ended::TimedOut,
        (false, Some(code), _) => Ended::Exited(code),
        (false, None, Some(sig)) => Ended::Signalled(sig),
        (false, None, None) => Ended::Exited(-1),
    };
    Ok(RunOutcome {
        ended,
        stdout,
        stderr,
        truncated: t1 || t2,
        elapsed: started.elapsed(),
        left_behind,
    })
}

/// How many running (not zombie) processes other than `except` are in process group `pgid`,
/// read from /proc (0 where /proc cannot be read: the count is for a message only).
fn group_members(pgid: i32, except: i32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != except)
        .filter(|&pid| {
            // /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
                fields.first().is_some_and(|state| *state != "Z")
                    && fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid)
            })
        })
        .count()
}

/// The child's process group, known by its leader.
struct Group {
    leader: Pid,
    /// Readable once the leader has exited; `None` where pidfds are not available.
    pidfd: Option<OwnedFd>,
}

impl Group {
    fn of(child: &Child, use_pidfd: bool) -> Self {
        let leader = Pid::from_child(child);
        // Our unreaped child: its pid cannot be reused, so the pidfd is for it.
        #[cfg(target_os = "linux")]
        let pidfd = use_pidfd
            .then(|| rustix::process::pidfd_open(leader, rustix::process::PidfdFlags::empty()))
            .and_then(std::result::Result::ok);
        #[cfg(not(target_os = "linux"))]
        let pidfd = {
            let _ = use_pidfd;
            None
        };
        Group { leader, pidfd }
    }

    /// Wait, without reaping, until the leader exits (`true`), `until` passes (`false`) or a
    /// signal arrives (`Err`).
    fn wait_exit(&self, until: Instant, cancel: &Cancel) -> Result<bool> {
        if let Some(pidfd) = &self.pidfd {
            return Ok(cancel.wait_readable(pidfd.as_fd(), until)? == Woken::Ready);
        }
        loop {
            if self.leader_exited() {
                return Ok(true);
            }
            cancel.check()?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            cancel.sleep(left.min(FALLBACK_TICK))?;
        }
    }

    fn leader_exited(&self) -> bool {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        matches!(
            rustix::process::waitid(WaitId::Pid(self.leader), options),
            Ok(Some(_))
        )
    }

    /// SIGTERM, then up to `grace` for the leader to exit; the caller sends SIGKILL.
    fn stop(&self, grace: Duration) {
        if grace.is_zero() {
            return;
        }
        self.signal(Signal::TERM);
        // Not cancellable: a second signal must not cut a clean stop short.
        let _ = self.wait_exit(Instant::now() + grace, &Cancel::default());
    }

    fn signal(&self, signal: Signal) {
        // ESRCH: the group is already empty.
        let _ = rustix::process::kill_process_group(self.leader, signal);
    }
}

/// One output stream read to its end by a thread, kept up to a limit.
struct Capture {
    state: Mutex<Captured>,
    done: Condvar,
}

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
    done: bool,
}

impl Capture {
    fn start(mut stream: impl Read + Send + 'static, limit: usize) -> Arc<Capture> {
        let capture = Arc::new(Capture {
            state: Mutex::new(Captured::default()),
            done: Condvar::new(),
        });
        let sink = Arc::clone(&capture);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut c = sink.lock();
                        let room = limit.saturating_sub(c.bytes.len());
                        c.bytes.extend_from_slice(&buf[..n.min(room)]);
                        // Keep reading past the limit so the child never blocks on a full pipe.
                        c.truncated |= n > room;
                    }
                }
            }
            sink.lock().done = true;
            sink.done.notify_all();
        });
        capture
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Captured> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What was read, once the stream closed or at `until`, whichever comes first.
    fn finish(&self, until: Instant) -> (Vec<u8>, bool) {
        let mut c = self.lock();
        while !c.done {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            c = self
                .done
                .wait_timeout(c, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        (std::mem::take(&mut c.bytes), c.truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Instant {
        Instant::now() + Duration::from_secs(n)
    }

    #[test]
    fn what_a_command_said_is_its_stderr_unless_that_is_blank_and_its_exit_code_only_if_it_exited()
    {
        let shell = |line: &str| run(&RunSpec::new(line, secs(10)), &Cancel::default()).unwrap();
        let both = shell("echo out; echo 'the port is taken' >&2; exit 3");
        assert_eq!(both.said(), b"the port is taken\n");
        assert_eq!(both.said_excerpt(200), "the port is taken");
        assert_eq!(both.exit_code(), Some(3));
        let quiet = shell("echo 'only on stdout'; echo '  ' >&2; exit 1");
        assert_eq!(
            quiet.said(),
            b"only on stdout\n",
            "blank stderr gives way to stdout"
        );
        let killed = shell("kill -9 $$");
        assert_eq!(
            killed.exit_code(),
            None,
            "a killed command has no exit code"
        );
        let slow = run(
            &RunSpec::new("sleep 5", Instant::now() + Duration::from_millis(100)),
            &Cancel::default(),
        )
        .unwrap();
        assert_eq!((slow.ended, slow.exit_code()), (Ended::TimedOut, None));
        let long = shell("printf 'x%.0s' $(seq 1 500) >&2; exit 1");
        assert!(
            long.said_excerpt(60).len() <= 60,
            "{}",
            long.said_excerpt(60)
        );
    }

    /// The pids in `text` (`echo $$ $!` output).
    fn pids(text: &[u8]) -> Vec<i32> {
        String::from_utf8_lossy(text)
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect()
    }

    /// `(state, pgid)` of a process, from /proc.
    fn stat(pid: i32) -> Option<(String, i32)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some((fields.first()?.to_string(), fields.get(2)?.parse().ok()?))
    }

    /// Whether `pid` runs (a zombie is dead, only not yet reaped).
    fn running(pid: i32) -> bool {
        stat(pid).is_some_and(|(state, _)| state != "Z")
    }

    /// Processes of group `pgid` that are still running.
    fn live_members(pgid: i32) -> Vec<i32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| running(pid) && stat(pid).is_some_and(|(_, group)| group == pgid))
            .collect()
    }

    #[test]
    fn captures_and_reports_the_exit_code() {
        let spec = RunSpec::new("echo out; echo err >&2; exit 3", secs(5));
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert_eq!(outcome.ended, Ended::Exited(3));
        assert_eq!(outcome.stdout, b"out\n");
        assert_eq!(outcome.stderr, b"err\n");
    }

    fn deadline_kills_the_group(use_pidfd: bool) {
        let spec = RunSpec::new(
            "echo $$ $!; sleep 30 & echo $!; sleep 30",
            Instant::now() + Duration::from_millis(300),
        );
        let start = Instant::now();
        let outcome = run_with(&spec, &Cancel::default(), use_pidfd).unwrap();
        assert_eq!(outcome.ended, Ended::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(start.elapsed() < Duration::from_secs(2));
        let pids = pids(&outcome.stdout);
        let (group, background) = (pids[0], pids[1]);
        assert_group_gone(group);
        assert!(
            !running(background),
            "the background sleep {background} is left"
        );
    }

    /// Every member of `group` is dead within a second. SIGKILL went to the group before
    /// `run` returned, but a member the kernel has not finished killing may still show in
    /// /proc for a moment; a survivor (a 30 s sleep) would still be there after the second.
    fn assert_group_gone(group: i32) {
        let gone_by = Instant::now() + Duration::from_secs(1);
        while !live_members(group).is_empty() && Instant::now() < gone_by {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(live_members(group), Vec::<i32>::new(), "group {group} left");
    }

    #[test]
    fn the_deadline_kills_the_whole_group() {
        deadline_kills_the_group(true);
    }

    #[test]
    fn the_deadline_kills_the_whole_group_without_a_pidfd() {
        deadline_kills_the_group(false);
    }

    #[test]
    fn background_children_die_with_an_attempt_that_exited() {
        // The leader exits at once; its background sleep holds stdout open.
        let spec = RunSpec::new("echo $$; sleep 30 & exit 1", secs(10));
        let start = Instant::now();
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert_eq!(outcome.ended, Ended::Exited(1));
        assert!(start.elapsed() < Duration::from_secs(2));
        let group = pids(&outcome.stdout)[0];
        assert_group_gone(group);
    }

    #[test]
    fn a_daemon_that_left_the_group_does_not_hold_us() {
        // `setsid` takes it out of the group, so it survives; it keeps our stdout pipe open.
        let spec = RunSpec::new("setsid sh -c 'sleep 3; echo late' & echo early", secs(10));
        let start = Instant::now();
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert!(outcome.success());
        assert_eq!(outcome.stdout, b"early\n");
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_signal_stops_the_group_at_once() {
        let cancel = Cancel::default();
        let trip = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            trip.trip(libc::SIGTERM);
        });
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let spec = RunSpec::new(
            &format!("echo $$ > '{}'; sleep 30", pidfile.display()),
            secs(10),
        );
        let start = Instant::now();
        let err = run(&spec, &cancel).unwrap_err();
        assert_eq!(err.exit, 143);
        assert!(start.elapsed() < Duration::from_secs(1));
        let group: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(live_members(group), Vec::<i32>::new());
    }

    #[test]
    fn the_grace_period_lets_the_command_stop_cleanly_then_kills() {
        // A command that handles SIGTERM gets to run its handler.
        let spec = RunSpec::new(
            "trap 'echo stopped cleanly; exit 0' TERM; sleep 30 & wait",
            Instant::now() + Duration::from_millis(200),
        )
        .with_grace(Duration::from_secs(5));
        let start = Instant::now();
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert_eq!(outcome.ended, Ended::TimedOut);
        assert_eq!(outcome.stdout, b"stopped cleanly\n");
        assert!(start.elapsed() < Duration::from_secs(3));

        // One that ignores it is killed at the deadline: the grace (at most half the time
        // it has) came out of the deadline, it is not added to it (issue 20 item 14).
        let spec = RunSpec::new(
            "trap '' TERM; echo $$; sleep 30",
            Instant::now() + Duration::from_millis(1200),
        )
        .with_grace(Duration::from_secs(5));
        let start = Instant::now();
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert_eq!(outcome.ended, Ended::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(1150));
        assert!(
            start.elapsed() < Duration::from_millis(2500),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(live_members(pids(&outcome.stdout)[0]), Vec::<i32>::new());
    }

    #[test]
    fn argv_mode_passes_arguments_untouched_and_secrets_through_the_environment() {
        let spec = RunSpec::argv("printf", ["%s|", "a b", "$HOME;`id`"], secs(5));
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert_eq!(outcome.stdout, b"a b|$HOME;`id`|");

        let spec = RunSpec::argv("printenv", ["UGW_TEST_SECRET"], secs(5))
            .with_env("UGW_TEST_SECRET", "s3cr3t");
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert_eq!(outcome.stdout, b"s3cr3t\n");

        let spec = RunSpec::argv("/no/such/program", Vec::<String>::new(), secs(5));
        let err = run(&spec, &Cancel::default()).unwrap_err();
        assert!(
            err.message.contains("cannot start /no/such/program"),
            "{}",
            err.message
        );
    }

    #[test]
    fn stdin_comes_from_a_file_or_null() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::write(&input, "from the file\n").unwrap();
        let spec =
            RunSpec::argv("cat", Vec::<String>::new(), secs(5)).with_stdin(Input::Path(input));
        assert_eq!(
            run(&spec, &Cancel::default()).unwrap().stdout,
            b"from the file\n"
        );

        // Null: `cat` sees end of input at once instead of waiting on ours.
        let spec = RunSpec::argv("cat", Vec::<String>::new(), secs(5));
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert!(outcome.success());
        assert!(outcome.stdout.is_empty());
    }

    #[test]
    fn stdout_goes_to_a_file_or_null_never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("dump");
        let spec = RunSpec::new("echo dumped", secs(5)).with_stdout(Output::Path(out.clone()));
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert!(outcome.success() && outcome.stdout.is_empty());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "dumped\n");
        let mode = std::fs::metadata(&out).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );

        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let spec = RunSpec::new("echo overwritten", secs(5)).with_stdout(Output::Path(planted));
        assert!(run(&spec, &Cancel::default()).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

        let spec = RunSpec::new("echo gone; echo kept >&2", secs(5)).with_stdout(Output::Null);
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert_eq!(
            (outcome.stdout.as_slice(), outcome.stderr.as_slice()),
            (&b""[..], &b"kept\n"[..])
        );
    }

    #[test]
    fn capture_is_bounded_and_reading_continues_past_the_bound() {
        // 1 MB through a 64 KiB pipe: the command finishes only if we keep reading.
        let mut spec = RunSpec::new("head -c 1000000 /dev/zero; echo done >&2", secs(10));
        spec.capture_limit = 1000;
        let outcome = run(&spec, &Cancel::default()).unwrap();
        assert_eq!(outcome.ended, Ended::Exited(0));
        assert_eq!(outcome.stdout.len(), 1000);
        assert_eq!(outcome.stderr, b"done\n");
        assert!(outcome.truncated);
    }
}
