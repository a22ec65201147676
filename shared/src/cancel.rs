//! SIGINT and SIGTERM as a cancel token: waits end within a few tens of milliseconds,
//! critical sections run to their end first, and the exit code says which signal it was.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often a blocking wait looks at the token when it cannot be woken directly.
pub const TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
struct Inner {
    signal: AtomicI32,
    critical: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

/// Shared by everything that waits; cloning is cheap.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

impl Cancel {
    /// A token that SIGINT and SIGTERM trip. The signals no longer kill the process: every
    /// wait checks the token, so temp files are removed and the record is written.
    pub fn install() -> Result<Self> {
        let cancel = Cancel::default();
        let mut signals = signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM])
            .map_err(|e| Error::io("cannot install signal handlers", &e))?;
        let token = cancel.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    token.trip(signal);
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
        let _guard = self
            .inner
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.inner.wake.notify_all();
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
            Some(signal) if self.inner.critical.load(Ordering::SeqCst) == 0 => {
                Err(Error::interrupted(signal))
            }
            _ => Ok(()),
        }
    }

    /// Sleep for `duration`, waking at once when a signal arrives.
    pub fn sleep(&self, duration: Duration) -> Result<()> {
        self.sleep_until(Instant::now() + duration)
    }

    /// Sleep until `until`, waking at once when a signal arrives.
    pub fn sleep_until(&self, until: Instant) -> Result<()> {
        let mut guard = self
            .inner
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            // Bounded by TICK so a signal that raced the check is still seen promptly.
            let wait = (until - now).min(TICK * 5);
            guard = self
                .inner
                .wake
                .wait_timeout(guard, wait)
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

    /// Run `f` with signals deferred: a signal that arrives meanwhile takes effect at the
    /// next check after it. For short sequences that must not stop half-way (a rename
    /// sequence, a commit, a revert).
    pub fn critical<T>(&self, f: impl FnOnce() -> T) -> T {
        self.inner.critical.fetch_add(1, Ordering::SeqCst);
        let out = f();
        self.inner.critical.fetch_sub(1, Ordering::SeqCst);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trip_wakes_a_sleep_promptly() {
        let cancel = Cancel::default();
        let other = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            other.trip(libc::SIGTERM);
        });
        let start = Instant::now();
        let err = cancel.sleep(Duration::from_secs(5)).unwrap_err();
        assert!(start.elapsed() < Duration::from_millis(500));
        assert_eq!(err.exit, 143);
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
}
