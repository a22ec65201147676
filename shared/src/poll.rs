//! Polling with a hard deadline: rounds start on a steady beat, sleeps and per-attempt
//! timeouts are clipped to the time left, failures may back off exponentially with jitter,
//! a server's `Retry-After` is honoured within the deadline, and the overrun is measured.

use crate::cancel::Cancel;
use crate::error::Result;
use crate::time::Jitter;
use std::time::{Duration, Instant};

/// Why one attempt (an HTTP request, a TCP connect) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    pub message: String,
    /// No answer in time: says nothing about whether the target is up or down.
    pub timed_out: bool,
    /// Trying again cannot help (a certificate nobody trusts, a host name that does not
    /// exist): a download gives up at once instead of retrying until its deadline.
    pub permanent: bool,
}

impl AttemptError {
    pub fn new(message: impl Into<String>) -> Self {
        AttemptError {
            message: message.into(),
            timed_out: false,
            permanent: false,
        }
    }

    /// A failure that another attempt would only repeat.
    pub fn permanent(message: impl Into<String>) -> Self {
        AttemptError {
            permanent: true,
            ..AttemptError::new(message)
        }
    }

    #[must_use]
    pub fn timed_out(after: Duration) -> Self {
        AttemptError {
            message: format!("timed out after {}", crate::time::human(after)),
            timed_out: true,
            permanent: false,
        }
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone)]
pub struct PollPlan {
    /// The overall deadline, from the start.
    pub timeout: Duration,
    /// The beat between the starts of two rounds.
    pub interval: Duration,
    /// Back off exponentially while failing, up to this; `None` keeps the beat.
    pub max_interval: Option<Duration>,
    /// Longest a single attempt may take (clipped to the time left).
    pub attempt_timeout: Duration,
}

#[derive(Debug)]
pub struct Poller {
    plan: PollPlan,
    started: Instant,
    deadline: Instant,
    current: Duration,
    round_started: Instant,
    jitter: Jitter,
    rounds: u64,
}

impl Poller {
    #[must_use]
    pub fn new(plan: PollPlan, started: Instant) -> Self {
        let deadline = started + plan.timeout;
        Poller {
            current: plan.interval,
            plan,
            started,
            deadline,
            round_started: started,
            jitter: Jitter::default(),
            rounds: 0,
        }
    }

    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    #[must_use]
    pub fn started(&self) -> Instant {
        self.started
    }

    #[must_use]
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    #[must_use]
    pub fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Begin a round; returns the instant by which its attempts must end.
    pub fn begin_round(&mut self) -> Instant {
        self.rounds += 1;
        self.round_started = Instant::now();
        (self.round_started + self.plan.attempt_timeout).min(self.deadline)
    }

    /// After a round: sleep until the next one should start. `retry_after` is the longest
    /// delay a server asked for. Returns `false` when the deadline has come (no next round).
    pub fn wait_next(
        &mut self,
        passed: bool,
        retry_after: Option<Duration>,
        cancel: &Cancel,
    ) -> Result<bool> {
        if passed {
            self.current = self.plan.interval;
        } else if let Some(max) = self.plan.max_interval {
            self.current = (self.current * 2).min(max.max(self.plan.interval));
        }
        // ±10% jitter (equal jitter when backing off), so a fleet of waiters spreads out.
        let beat = if self.current > self.plan.interval {
            self.current.mul_f64(0.5 + 0.5 * self.jitter.unit())
        } else {
            self.current.mul_f64(0.9 + 0.2 * self.jitter.unit())
        };
        let mut next = self.round_started + beat;
        if let Some(delay) = retry_after {
            next = next.max(Instant::now().checked_add(delay).unwrap_or(self.deadline));
        }
        if next >= self.deadline {
            // One last round exactly at the deadline would have no time to run.
            cancel.sleep_until(self.deadline)?;
            return Ok(false);
        }
        cancel.sleep_until(next)?;
        Ok(Instant::now() < self.deadline)
    }

    /// How far past the deadline `end` is (zero when it is not).
    #[must_use]
    pub fn overrun(&self, end: Instant) -> Duration {
        end.saturating_duration_since(self.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_sleeps_past_the_deadline() {
        let plan = PollPlan {
            timeout: Duration::from_millis(250),
            interval: Duration::from_millis(100),
            max_interval: Some(Duration::from_secs(10)),
            attempt_timeout: Duration::from_secs(5),
        };
        let mut poller = Poller::new(plan, Instant::now());
        let cancel = Cancel::default();
        loop {
            let attempt_until = poller.begin_round();
            assert!(attempt_until <= poller.deadline());
            if !poller
                .wait_next(false, Some(Duration::from_secs(60)), &cancel)
                .unwrap()
            {
                break;
            }
        }
        let end = Instant::now();
        assert!(
            poller.overrun(end) < Duration::from_millis(30),
            "{:?}",
            poller.overrun(end)
        );
        assert!(end >= poller.deadline());
    }
}
