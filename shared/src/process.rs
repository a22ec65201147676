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

#[cfg(test)]
mod tests {
    use super::*;
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
    fn no_such_process_is_none_and_a_bad_pid_is_refused() {
        assert!(Process::from_pid(i32::MAX).unwrap().is_none());
        assert!(Process::from_pid(0).is_err());
        assert!(Process::from_pid(-1).is_err());
    }
}
