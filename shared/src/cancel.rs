//! SIGHUP, SIGINT and SIGTERM as a cancel token: waits end at once, critical sections run to
//! their end first, and the exit code says which signal it was. SIGUSR1 and SIGUSR2 are caught
//! and ignored, so a stray one cannot end a run without its record.

use crate::error::{Error, Result};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How often a blocking wait looks at the token when it cannot be woken directly.
pub const TICK: Duration = Duration::from_millis(20);

/// The signals that stop a run (exit 128 + the signal).
pub const STOPPING: [i32; 3] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM];
/// The signals that are caught and ignored: their default would kill the tool with no record.
/// Caught rather than ignored with `SIG_IGN`, so that children still get the default.
pub const IGNORED: [i32; 2] = [libc::SIGUSR1, libc::SIGUSR2];

#[derive(Debug, Default)]
struct Inner {
    signal: AtomicI32,
    critical: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    /// A pipe whose read end turns readable once the token trips, for waits that `poll`.
    wake_pipe: OnceLock<(OwnedFd, OwnedFd)>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wake every waiter: the condvar sleepers and the pollers of the pipe.
    fn wake_all(&self) {
        let _guard = self.lock();
        self.wake.notify_all();
        if let Some((_, write_end)) = self.wake_pipe.get() {
            // Non-blocking: a full pipe is readable already.
            let _ = rustix::io::write(write_end, &[1]);
        }
    }
}

/// Shared by everything that waits; cloning is cheap.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

/// What a wait on a file descriptor ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The descriptor is readable (or hung up).
    Ready,
    /// `until` passed first.
    TimedOut,
}

impl Cancel {
    /// A token that SIGHUP, SIGINT and SIGTERM trip. The signals no longer kill the process:
    /// every wait checks the token, so children are killed, temp files removed and the record
    /// written. SIGUSR1 and SIGUSR2 are swallowed.
    pub fn install() -> Result<Self> {
        let cancel = Cancel::default();
        let mut signals = signal_hook::iterator::Signals::new(STOPPING.iter().chain(&IGNORED))
            .map_err(|e| Error::io("cannot install signal handlers", &e))?;
        let token = cancel.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if STOPPING.contains(&signal) {
                        token.trip(signal);
                    }
                }
            })
            .map_err(|e| Error::io("cannot start the signal thread", &e))?;
        Ok(cancel)
    }

    /// Trip the token as if `signal` had arrived (the first signal wins).
    pub fn trip(&self, signal: i32) {
        let _ = self
            .inner
            .signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        self.inner.wake_all();
    }

    /// The signal that arrived, if any.
    #[must_use]
    pub fn signal(&self) -> Option<i32> {
        match self.inner.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// `Err(interrupted)` once a signal arrived, unless inside a critical section.
    pub fn check(&self) -> Result<()> {
        match self.signal() {
            Some(signal) if !self.deferred() => Err(Error::interrupted(signal)),
            _ => Ok(()),
        }
    }

    fn deferred(&self) -> bool {
        self.inner.critical.load(Ordering::SeqCst) > 0
    }

    /// Sleep for `duration`, waking at once when a signal arrives.
    pub fn sleep(&self, duration: Duration) -> Result<()> {
        self.sleep_until(Instant::now() + duration)
    }

    /// Sleep until `until`, waking at once when a signal arrives.
    pub fn sleep_until(&self, until: Instant) -> Result<()> {
        // `trip` notifies under the same lock that is held from the check to the wait, so a
        // signal is never missed between the two and the wait needs no tick.
        let mut guard = self.inner.lock();
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            guard = self
                .inner
                .wake
                .wait_timeout(guard, until - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Receive from `rx` until `until`; `Ok(None)` when the time is up or the sender is gone.
    pub fn recv_until<T>(&self, rx: &Receiver<T>, until: Instant) -> Result<Option<T>> {
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= until {
                return Ok(None);
            }
            match rx.recv_timeout((until - now).min(TICK)) {
                Ok(value) => return Ok(Some(value)),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }

    /// Wait until `fd` is readable (a pidfd: the process ended) or `until` passes, waking at
    /// once when a signal arrives.
    pub fn wait_readable(&self, fd: BorrowedFd<'_>, until: Instant) -> Result<Woken> {
        loop {
            self.check()?;
            // Inside a critical section the wake pipe stays readable: tick instead of spinning.
            let deferred = self.signal().is_some();
            let mut left = until.saturating_duration_since(Instant::now());
            if deferred {
                left = left.min(TICK);
            }
            let timeout = Timespec::try_from(left).unwrap_or(Timespec {
                tv_sec: i64::from(i32::MAX),
                tv_nsec: 0,
            });
            let wake = self.wake_fd();
            let mut fds = [
                PollFd::new(&fd, PollFlags::IN),
                PollFd::new(&wake, PollFlags::IN),
            ];
            let watched = if deferred { 1 } else { 2 };
            match poll(&mut fds[..watched], Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::io("cannot wait", &std::io::Error::from(e))),
            }
            // Looked at once even when `until` has passed already.
            if !fds[0].revents().is_empty() {
                return Ok(Woken::Ready);
            }
            if Instant::now() >= until {
                return Ok(Woken::TimedOut);
            }
        }
    }

    /// The read end of the wake pipe: readable once the token has tripped.
    fn wake_fd(&self) -> BorrowedFd<'_> {
        if self.inner.wake_pipe.get().is_none() {
            // Made under the lock `trip` takes: a trip either sees the pipe or is seen here.
            let _guard = self.inner.lock();
            let (_, write_end) = self
                .inner
                .wake_pipe
                .get_or_init(|| wake_pipe().expect("a process can always make one more pipe"));
            if self.signal().is_some() {
                let _ = rustix::io::write(write_end, &[1]);
            }
        }
        let (read_end, _) = self.inner.wake_pipe.get().expect("made above");
        read_end.as_fd()
    }

    /// Run `f` with signals deferred: a signal that arrives meanwhile takes effect at the
    /// next check after it, even when `f` panics. For short sequences that must not stop
    /// half-way (a rename sequence, a commit, a revert).
    pub fn critical<T>(&self, f: impl FnOnce() -> T) -> T {
        let _section = Critical::enter(&self.inner);
        f()
    }
}

/// A pipe for waking pollers: close-on-exec, and never blocking the one who trips the token.
#[cfg(not(target_vendor = "apple"))]
fn wake_pipe() -> rustix::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::pipe::PipeFlags;
    rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)
}

/// A pipe for waking pollers (macOS has no `pipe2`).
#[cfg(target_vendor = "apple")]
fn wake_pipe() -> rustix::io::Result<(OwnedFd, OwnedFd)> {
    let (read_end, write_end) = rustix::pipe::pipe()?;
    for fd in [&read_end, &write_end] {
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
    }
    rustix::fs::fcntl_setfl(&write_end, rustix::fs::OFlags::NONBLOCK)?;
    Ok((read_end, write_end))
}

/// One level of `critical`; leaving it (by return or unwind) ends the deferral.
struct Critical<'a>(&'a Inner);

impl<'a> Critical<'a> {
    fn enter(inner: &'a Inner) -> Self {
        inner.critical.fetch_add(1, Ordering::SeqCst);
        Critical(inner)
    }
}

impl Drop for Critical<'_> {
    fn drop(&mut self) {
        let was = self.0.critical.fetch_sub(1, Ordering::SeqCst);
        if was == 1 && self.0.signal.load(Ordering::SeqCst) != 0 {
            // Waits in other threads saw the signal deferred and went back to sleep.
            self.0.wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trip_wakes_a_sleep_promptly() {
        let cancel = Cancel::default();
        let other = cancel.clone();
        // Taken before the trip's 30 ms start counting, so the lower bound holds on any load.
        let start = Instant::now();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            other.trip(libc::SIGTERM);
        });
        // Without a wake-up the sleep would last its full 5 s.
        let err = cancel.sleep(Duration::from_secs(5)).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(start.elapsed() < Duration::from_millis(500));
        assert_eq!(err.exit, 143);
    }

    #[test]
    fn a_trip_wakes_a_poll_on_a_descriptor() {
        let cancel = Cancel::default();
        let (never_readable, _writer) = rustix::pipe::pipe().unwrap();
        let other = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            other.trip(libc::SIGHUP);
        });
        let start = Instant::now();
        let err = cancel
            .wait_readable(
                never_readable.as_fd(),
                Instant::now() + Duration::from_secs(5),
            )
            .unwrap_err();
        assert!(start.elapsed() < Duration::from_millis(500));
        assert_eq!(
            (err.exit, err.message.as_str()),
            (129, "interrupted by SIGHUP")
        );
        // A token tripped before the pipe exists wakes a poll too.
        let late = Cancel::default();
        late.trip(libc::SIGINT);
        let err = late
            .wait_readable(
                never_readable.as_fd(),
                Instant::now() + Duration::from_secs(5),
            )
            .unwrap_err();
        assert_eq!(err.exit, 130);
    }

    #[test]
    fn critical_sections_defer_the_signal() {
        let cancel = Cancel::default();
        let seen = cancel.critical(|| {
            cancel.trip(libc::SIGINT);
            cancel.check().is_ok()
        });
        assert!(seen);
        assert_eq!(cancel.check().unwrap_err().exit, 130);
    }

    #[test]
    fn the_end_of_a_critical_section_wakes_a_sleeper_in_another_thread() {
        let cancel = Cancel::default();
        let sleeper = cancel.clone();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let woke = std::thread::spawn(move || {
            let start = Instant::now();
            started_tx.send(()).unwrap();
            let err = sleeper.sleep(Duration::from_secs(5)).unwrap_err();
            (start.elapsed(), err.exit)
        });
        started_rx.recv().unwrap();
        cancel.critical(|| {
            cancel.trip(libc::SIGTERM);
            std::thread::sleep(Duration::from_millis(50));
        });
        let (slept, code) = woke.join().unwrap();
        assert_eq!(code, 143);
        assert!(slept < Duration::from_secs(2), "slept {slept:?}");
    }

    #[test]
    fn a_panic_inside_a_critical_section_does_not_defer_signals_for_ever() {
        let cancel = Cancel::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cancel.critical(|| panic!("inside the section"));
        }));
        assert!(panicked.is_err());
        cancel.trip(libc::SIGTERM);
        assert_eq!(cancel.check().unwrap_err().exit, 143);
    }
}
