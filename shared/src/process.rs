//! Another process, held by a pidfd (drain waits for an old server to go, swap signals it):
//! once opened, a pid that exits and is reused by a stranger is never mistaken for it. A
//! zombie counts as gone: it has stopped, only its parent has not reaped it yet.

use crate::cancel::{Cancel, Woken};
use crate::error::{Error, Result};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal};
use std::time::Instant;

/// A process known by its pidfd.
#[derive(Debug)]
pub struct Process {
    pid: i32,
    pidfd: OwnedFd,
}

impl Process {
    /// The process `pid` now, or `None` when there is none. The pid is read once: whatever
    /// it means later, this stays the process it meant here.
    pub fn from_pid(pid: i32) -> Result<Option<Process>> {
        let Some(raw) = (pid > 0).then(|| Pid::from_raw(pid)).flatten() else {
            return Err(Error::usage(format!("{pid} is not a process id")));
        };
        match rustix::process::pidfd_open(raw, PidfdFlags::empty()) {
            Ok(pidfd) => Ok(Some(Process { pid, pidfd })),
            Err(Errno::SRCH) => Ok(None),
            Err(e) => Err(Error::io(
                format!("cannot watch process {pid} (pidfds need Linux 5.3 or later)"),
                &std::io::Error::from(e),
            )),
        }
    }

    #[must_use]
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether it still runs (a zombie does not).
    #[must_use]
    pub fn alive(&self) -> bool {
        let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // The pidfd turns readable when the process exits; an error leaves it counted alive,
        // the safe answer for a caller about to wait for it.
        matches!(poll(&mut fds, Some(&now)), Ok(0))
    }

    /// Send `signal`; `Ok(false)` when the process is gone already.
    pub fn signal(&self, signal: Signal) -> Result<bool> {
        if !self.alive() {
            return Ok(false);
        }
        match rustix::process::pidfd_send_signal(self.pidfd.as_fd(), signal) {
            Ok(()) => Ok(true),
            Err(Errno::SRCH) => Ok(false),
            Err(e) => Err(Error::io(
                format!("cannot signal process {}", self.pid),
                &std::io::Error::from(e),
            )),
        }
    }

    /// Wait until it is gone (`true`) or `until` passes (`false`); a signal ends the wait.
    pub fn wait_gone(&self, until: Instant, cancel: &Cancel) -> Result<bool> {
        Ok(cancel.wait_readable(self.pidfd.as_fd(), until)? == Woken::Ready)
    }
}

impl Process {
    /// When it started, in clock ticks since boot (field 22 of `/proc/PID/stat`), read
    /// through the pidfd held: /proc is read, then the pidfd is asked whether its process
    /// still runs, so a number read is this process's and never a newcomer's with its pid.
    /// `None` when it is gone or /proc does not say. With [`boot_id`] it names one process
    /// for good (how `ugw-swap --start` knows the service it started from a stranger).
    #[must_use]
    pub fn start_ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // The name in parentheses may hold spaces; field 22 is the 20th after it.
        let (_, rest) = stat.rsplit_once(')')?;
        let ticks = rest.split_whitespace().nth(19)?.parse().ok()?;
        self.alive().then_some(ticks)
    }

    /// Send `signal` to its whole process group (it leads one: a service started in a
    /// session of its own), only while it runs. While the leader runs its pid is the group's
    /// id and cannot name anything else; `Ok(false)` when it is gone already.
    pub fn signal_group(&self, signal: Signal) -> Result<bool> {
        if !self.alive() {
            return Ok(false);
        }
        let Some(pid) = Pid::from_raw(self.pid) else {
            return Ok(false);
        };
        match rustix::process::kill_process_group(pid, signal) {
            Ok(()) => Ok(true),
            Err(Errno::SRCH) => Ok(false),
            Err(e) => Err(Error::io(
                format!("cannot signal the process group of {}", self.pid),
                &std::io::Error::from(e),
            )),
        }
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`): start ticks count from the boot, so
/// the pair tells one process from any other, before or after a reboot.
#[must_use]
pub fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// How a process ended, as `waitpid(2)` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal with this number ended it.
    Signalled(i32),
}

impl ExitStatus {
    /// From a raw `waitpid(2)` status word.
    #[must_use]
    pub fn from_wait_status(status: i32) -> Self {
        if libc::WIFEXITED(status) {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        } else {
            ExitStatus::Signalled(libc::WTERMSIG(status))
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exit status {code}"),
            ExitStatus::Signalled(signal) => write!(f, "killed by signal {signal}"),
        }
    }
}

impl Process {
    /// How it ended, when that can be known without being its parent: from the pidfd once
    /// it has been reaped (Linux 6.15 and later keep the status there), or from `/proc` while
    /// it is a zombie its parent has not reaped yet. `None` while it runs, or when neither
    /// can tell (an older kernel, after the reaping).
    #[must_use]
    pub fn exit_status(&self) -> Option<ExitStatus> {
        if self.alive() {
            return None;
        }
        // The pidfd first: a reaped pid may already be a stranger's in /proc. A zombie still
        // holds its pid, so /proc is its own then; asked again after, in case it was reaped
        // between the two.
        self.pidfd_exit_status()
            .or_else(|| self.zombie_exit_status())
            .or_else(|| self.pidfd_exit_status())
    }

    fn pidfd_exit_status(&self) -> Option<ExitStatus> {
        use rustix::fd::AsFd;
        ugw_sys::pidfd_exit_status(self.pidfd.as_fd()).map(ExitStatus::from_wait_status)
    }

    /// A zombie's status: field 52 of `/proc/PID/stat` (Linux 3.5 and later).
    fn zombie_exit_status(&self) -> Option<ExitStatus> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // The name in parentheses may hold spaces; the fields after it do not. Field 3 (the
        // state) is the first after it, field 52 the 50th.
        let (_, rest) = stat.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() != Some(&"Z") {
            return None;
        }
        fields
            .get(49)?
            .parse()
            .ok()
            .map(ExitStatus::from_wait_status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};
    use std::time::Duration;

    fn spawn(script: &str) -> Child {
        Command::new("sh").arg("-c").arg(script).spawn().unwrap()
    }

    fn pid(child: &Child) -> i32 {
        child.id().cast_signed()
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
    }

    #[test]
    fn a_running_process_is_alive_and_can_be_signalled_until_it_is_gone() {
        let mut child = spawn("sleep 30");
        let process = Process::from_pid(pid(&child)).unwrap().unwrap();
        assert!(process.alive());
        assert!(
            !process
                .wait_gone(
                    Instant::now() + Duration::from_millis(100),
                    &Cancel::default()
                )
                .unwrap()
        );
        assert!(process.signal(Signal::TERM).unwrap());
        assert!(
            process
                .wait_gone(Instant::now() + Duration::from_secs(5), &Cancel::default())
                .unwrap()
        );
        assert!(!process.alive());
        // Dead but not reaped: a zombie is gone, and signalling it says so.
        assert!(is_zombie(process.pid()));
        assert!(!process.signal(Signal::TERM).unwrap());
        let _ = child.wait();
    }

    #[test]
    fn a_process_that_exits_is_seen_go_at_once() {
        let mut child = spawn("sleep 0.3");
        let process = Process::from_pid(pid(&child)).unwrap().unwrap();
        let start = Instant::now();
        assert!(
            process
                .wait_gone(Instant::now() + Duration::from_secs(10), &Cancel::default())
                .unwrap()
        );
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert!(start.elapsed() < Duration::from_secs(5));
        let _ = child.wait();
    }

    #[test]
    fn a_zombie_counts_as_gone() {
        let mut child = spawn("exit 0");
        let until = Instant::now() + Duration::from_secs(5);
        while !is_zombie(pid(&child)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(is_zombie(pid(&child)));
        if let Some(process) = Process::from_pid(pid(&child)).unwrap() {
            assert!(!process.alive());
            assert!(
                process
                    .wait_gone(Instant::now(), &Cancel::default())
                    .unwrap()
            );
        }
        let _ = child.wait();
    }

    #[test]
    fn a_reaped_pid_stays_gone_whoever_gets_the_number_next() {
        let mut child = spawn("sleep 30");
        let process = Process::from_pid(pid(&child)).unwrap().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        // The pidfd still names the old process, not a newcomer with its pid.
        assert!(!process.alive());
        assert!(!process.signal(Signal::TERM).unwrap());
        assert!(
            Process::from_pid(pid(&child))
                .unwrap()
                .is_none_or(|p| p.alive())
        );
    }

    #[test]
    fn a_signal_ends_the_wait() {
        let mut child = spawn("sleep 30");
        let process = Process::from_pid(pid(&child)).unwrap().unwrap();
        let cancel = Cancel::default();
        let trip = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            trip.trip(libc::SIGINT);
        });
        let start = Instant::now();
        let err = process
            .wait_gone(Instant::now() + Duration::from_secs(10), &cancel)
            .unwrap_err();
        assert_eq!(err.exit, 130);
        assert!(start.elapsed() < Duration::from_secs(1));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn the_exit_status_is_known_as_a_zombie_and_after_the_reaping() {
        let mut child = spawn("sleep 0.1; exit 3");
        let process = Process::from_pid(pid(&child)).unwrap().unwrap();
        assert_eq!(process.exit_status(), None, "it still runs");
        assert!(
            process
                .wait_gone(Instant::now() + Duration::from_secs(10), &Cancel::default())
                .unwrap()
        );
        assert_eq!(process.exit_status(), Some(ExitStatus::Exited(3)));
        child.wait().unwrap();
        // Reaped: only a kernel that keeps it in the pidfd (6.15+) can still tell.
        let reaped = process.exit_status();
        assert!(
            reaped.is_none_or(|s| s == ExitStatus::Exited(3)),
            "{reaped:?}"
        );

        let mut killed = spawn("sleep 30");
        let process = Process::from_pid(pid(&killed)).unwrap().unwrap();
        killed.kill().unwrap();
        assert!(
            process
                .wait_gone(Instant::now() + Duration::from_secs(10), &Cancel::default())
                .unwrap()
        );
        assert_eq!(process.exit_status(), Some(ExitStatus::Signalled(9)));
        let _ = killed.wait();
    }

    #[test]
    fn start_ticks_name_one_process_and_a_group_signal_reaches_its_members() {
        // A leader of its own group with a child in it: TERM to the group stops both.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("sleep 30 & echo $!; wait")
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let member: i32 = line.trim().parse().unwrap();
        let process = Process::from_pid(pid(&child)).unwrap().unwrap();
        let ticks = process.start_ticks().unwrap();
        assert_eq!(
            process.start_ticks(),
            Some(ticks),
            "the same process, the same start"
        );
        let other = spawn("sleep 30");
        let stranger = Process::from_pid(pid(&other)).unwrap().unwrap();
        assert!(stranger.start_ticks().unwrap() >= ticks);
        assert!(boot_id().is_some_and(|id| id.len() >= 32));

        assert!(process.signal_group(Signal::TERM).unwrap());
        let member = Process::from_pid(member).unwrap();
        assert!(
            process
                .wait_gone(Instant::now() + Duration::from_secs(5), &Cancel::default())
                .unwrap()
        );
        assert!(member.is_none_or(|m| {
            m.wait_gone(Instant::now() + Duration::from_secs(5), &Cancel::default())
                .unwrap()
        }));
        assert!(
            !process.signal_group(Signal::TERM).unwrap(),
            "gone: not signalled"
        );
        assert_eq!(process.start_ticks(), None, "gone: no start to tell");
        assert!(stranger.alive(), "another group is untouched");
        let _ = child.wait();
        let mut other = other;
        let _ = other.kill();
        let _ = other.wait();
    }

    #[test]
    fn no_such_process_is_none_and_a_bad_pid_is_refused() {
        assert!(Process::from_pid(i32::MAX).unwrap().is_none());
        assert!(Process::from_pid(0).is_err());
        assert!(Process::from_pid(-1).is_err());
    }
}
