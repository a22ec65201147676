//! What a test waits for instead of sleeping: facts about a running process that /proc shows
//! (it has exec'd its program, it holds a file open, it is burning CPU), and a background run
//! of a tool whose stderr can be read while it runs. Each is asked through `eventually`.

use super::{Drain, Outcome, RUN_LIMIT, eventually, signal, wait_drained};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether process `pid` runs `program` now (its `comm`): a shell that `exec`s it has set
/// its traps and redirections by then.
pub fn runs(pid: u32, program: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == program)
}

/// Wait (at most `within`) until `pid` runs `program`; false if it never did.
pub fn wait_runs(pid: u32, program: &str, within: Duration) -> bool {
    eventually(within, || runs(pid, program))
}

/// Whether process `pid` has `path` open (one of its file descriptors names it).
pub fn has_open(pid: u32, path: &Path) -> bool {
    let Ok(wanted) = std::fs::canonicalize(path) else {
        return false;
    };
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.filter_map(Result::ok)
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == wanted))
    })
}

/// The CPU time process `pid` has used so far (user and system), zero once it is gone.
pub fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // After the `(comm)` field: state is field 3, utime and stime are fields 14 and 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    Duration::from_millis(ticks * 1000 / per_second.max(1))
}

/// The children of process `pid`, from every thread's list (a forked evaluator comes from a
/// thread of its own, not the main one).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|child| child.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The CPU time process `pid` and its descendants (a forked evaluator, say) use now.
pub fn tree_cpu_time(pid: u32) -> Duration {
    children(pid)
        .into_iter()
        .map(tree_cpu_time)
        .fold(cpu_time(pid), |sum, child| sum + child)
}

/// A TCP socket of this host as the kernel lists it (`/proc/net/tcp`).
#[derive(Debug, Clone, Copy)]
pub struct TcpSocket {
    /// The kernel's state number: 1 established, 2 SYN sent, 10 listening.
    pub state: u8,
    /// Bytes written and not yet acknowledged by the other end.
    pub tx_queue: u64,
    /// Bytes received and not yet read.
    pub rx_queue: u64,
}

/// The kernel's `SYN_SENT`: a connect is under way, not answered yet.
pub const TCP_SYN_SENT: u8 = 2;

/// The IPv4 TCP sockets whose remote end is port `port` (a client's side of a connection to
/// a test server).
pub fn tcp_sockets_to(port: u16) -> Vec<TcpSocket> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (_, remote_port) = fields.get(2)?.split_once(':')?;
            if u16::from_str_radix(remote_port, 16).ok()? != port {
                return None;
            }
            let (tx, rx) = fields.get(4)?.split_once(':')?;
            Some(TcpSocket {
                state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
                tx_queue: u64::from_str_radix(tx, 16).ok()?,
                rx_queue: u64::from_str_radix(rx, 16).ok()?,
            })
        })
        .collect()
}

/// A tool started in the background, its stdout and stderr read while it runs, so a test
/// can wait for what it says before acting (a signal, releasing a lock).
/// A run still going when the test fails is killed when this is dropped.
pub struct Background {
    /// The process and its two outputs; taken when it is waited for.
    running: Option<(Child, Drain, Drain)>,
    pid: u32,
    started: Instant,
}

impl Background {
    /// Start `cmd` (its stdin as set: `kit::tool` makes it /dev/null) with both outputs
    /// piped.
    pub fn start(mut cmd: Command) -> Background {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("the command starts");
        let stdout = Drain::start(child.stdout.take());
        let stderr = Drain::start(child.stderr.take());
        Background {
            pid: child.id(),
            running: Some((child, stdout, stderr)),
            started,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Send it `sig` (it is still waited for by `finish`).
    pub fn signal(&self, sig: i32) {
        signal(self.pid.cast_signed(), sig);
    }

    /// Whether it has not ended yet.
    pub fn is_running(&mut self) -> bool {
        self.running
            .as_mut()
            .is_some_and(|(child, _, _)| child.try_wait().is_ok_and(|status| status.is_none()))
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.running
            .as_ref()
            .map_or_else(String::new, |(_, _, stderr)| {
                String::from_utf8_lossy(&stderr.so_far()).into_owned()
            })
    }

    /// Wait (at most `within`) until its stderr has `needle`; the test fails with the stderr
    /// so far if it never comes.
    #[track_caller]
    pub fn wait_for_stderr(&self, needle: &str, within: Duration) {
        assert!(
            eventually(within, || self.stderr().contains(needle)),
            "{needle:?} not on stderr within {within:?}; stderr so far:\n{}",
            self.stderr()
        );
    }

    /// Its outcome, once it ends by itself (at most [`RUN_LIMIT`]).
    pub fn finish(mut self) -> Outcome {
        let (child, stdout, stderr) = self.running.take().expect("still running");
        let output = wait_drained(child, stdout, stderr, RUN_LIMIT);
        Outcome::from(&output, self.started.elapsed())
    }

    /// Send `sig` and take its outcome; it must exit within 150 ms of the signal (the
    /// contract says waits end within 100 ms).
    #[track_caller]
    pub fn interrupt(mut self, sig: i32) -> Outcome {
        let (child, stdout, stderr) = self.running.take().expect("still running");
        let sent = Instant::now();
        signal(self.pid.cast_signed(), sig);
        let output = wait_drained(child, stdout, stderr, Duration::from_secs(5));
        let took = sent.elapsed();
        assert!(
            took <= Duration::from_millis(150),
            "exit {took:?} after signal {sig}"
        );
        Outcome::from(&output, self.started.elapsed())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some((mut child, _, _)) = self.running.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
