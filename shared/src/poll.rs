//! Polling with a hard deadline: rounds start on a steady beat, sleeps and per-attempt
//! timeouts are clipped to the time left, failures back off exponentially with jitter (by
//! default only once a wait has lasted long enough that the service is not coming up soon), a
//! server's `Retry-After` is honoured within the deadline, and the overrun is measured. The
//! attempts of a round run at the same time and are collected until a deadline
//! ([`parallel`]), so one hung target cannot hold the others. The waits of a plain retry
//! loop (a download's attempts, a busy database, a reading on a beat) are a [`Backoff`]:
//! one jitter rule, one cap, the deadline and the cancel token kept in one place.

use crate::cancel::Cancel;
use crate::error::Result;
use std::sync::mpsc;
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

/// How long a wait keeps its base beat when no `max_interval` is given: a service that is
/// coming up usually does within seconds, and then every millisecond of detection counts.
pub const EAGER_FOR: Duration = Duration::from_secs(10);
/// Where a wait that has outlasted [`EAGER_FOR`] backs off to (unless its beat is slower):
/// a two-minute wait on a dead service then sends a few hundred requests, not 1,200.
pub const PATIENT_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct PollPlan {
    /// The overall deadline, from the start, for [`Poller::new`]; a poller built with
    /// [`Poller::until`] is given its deadline as an instant instead.
    pub timeout: Duration,
    /// The beat between the starts of two rounds.
    pub interval: Duration,
    /// Back off exponentially while failing, up to this, from the first failure; `None`
    /// keeps the beat for [`EAGER_FOR`], then backs off up to [`PATIENT_INTERVAL`].
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
    rounds: u64,
}

impl Poller {
    /// A poller whose deadline is `plan.timeout` after `started` (a wait of its own, such as
    /// a lock's).
    #[must_use]
    pub fn new(plan: PollPlan, started: Instant) -> Self {
        let deadline = started + plan.timeout;
        Poller::until(plan, started, deadline)
    }

    /// A poller that ends at `deadline`, the step's own (`Ctx::deadline()`), so a tool keeps
    /// one source of truth for it; `plan.timeout` is not used.
    #[must_use]
    pub fn until(plan: PollPlan, started: Instant, deadline: Instant) -> Self {
        Poller {
            current: plan.interval,
            plan,
            started,
            deadline,
            round_started: started,
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
        let mut next = self.round_started + self.next_beat(passed);
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

    /// The time from this round's start to the next one's, jittered so that a fleet of
    /// waiters spreads out: ±10% on the beat, equal jitter once backing off.
    fn next_beat(&mut self, passed: bool) -> Duration {
        if passed {
            self.current = self.plan.interval;
        } else if let Some(ceiling) = self.backoff_ceiling() {
            self.current = (self.current * 2).min(ceiling);
        }
        if self.current > self.plan.interval {
            self.current.mul_f64(0.5 + 0.5 * fastrand::f64())
        } else {
            self.current.mul_f64(0.9 + 0.2 * fastrand::f64())
        }
    }

    /// How far failing rounds may stretch the beat right now; `None` keeps it.
    fn backoff_ceiling(&self) -> Option<Duration> {
        let interval = self.plan.interval;
        match self.plan.max_interval {
            Some(max) => Some(max.max(interval)),
            None if self.started.elapsed() >= EAGER_FOR => Some(PATIENT_INTERVAL.max(interval)),
            None => None,
        }
    }

    /// How far past the deadline `end` is (zero when it is not).
    #[must_use]
    pub fn overrun(&self, end: Instant) -> Duration {
        end.saturating_duration_since(self.deadline)
    }
}

/// The longest wait between two attempts of a [`Backoff`] that grows: past it a retry loop
/// learns nothing new by waiting longer, and a server's `Retry-After` is taken up to it.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The waits between the attempts of a retry loop. A growing backoff
/// ([`Backoff::exponential`]) doubles from its first wait up to [`MAX_BACKOFF`], and each
/// wait is jittered to between 75 % and 100 % of its length, so that a fleet retrying against
/// one server spreads out and no wait is ever longer than said; a steady beat
/// ([`Backoff::steady`], an operator's `--interval`) is kept as given. No attempt is ever
/// scheduled past the deadline, and every sleep ends at once on a signal.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The wait before the next attempt, before jitter.
    next: Duration,
    /// Where a growing wait stops; a steady beat's own length.
    cap: Duration,
    grows: bool,
    deadline: Option<Instant>,
}

/// The next attempt of a [`Backoff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The wait as said to the operator ("retrying after 400 ms"): before jitter.
    pub wait: Duration,
    /// When the attempt is due: before the deadline, always.
    pub at: Instant,
}

impl Backoff {
    /// Waits of `first`, doubling after each attempt up to [`MAX_BACKOFF`], jittered.
    #[must_use]
    pub fn exponential(first: Duration) -> Self {
        Backoff {
            next: first.min(MAX_BACKOFF),
            cap: MAX_BACKOFF,
            grows: true,
            deadline: None,
        }
    }

    /// Every wait `interval`, not jittered: a beat the operator chose (`--interval`).
    #[must_use]
    pub fn steady(interval: Duration) -> Self {
        Backoff {
            next: interval,
            cap: interval,
            grows: false,
            deadline: None,
        }
    }

    /// No attempt at or after `deadline` (the step's, or a wait's own); `None` keeps none.
    #[must_use]
    pub fn until(mut self, deadline: impl Into<Option<Instant>>) -> Self {
        self.deadline = deadline.into();
        self
    }

    /// The next attempt, counting its wait from `from` (a round's start for a beat, now for a
    /// retry); `retry_after` is a server's `Retry-After`, taken up to the cap. `None` when the
    /// attempt would not start before the deadline: the loop gives up without sleeping.
    pub fn next_from(&mut self, from: Instant, retry_after: Option<Duration>) -> Option<Retry> {
        let wait = retry_after.map_or(self.next, |asked| asked.min(self.cap.max(self.next)));
        if self.grows {
            self.next = (self.next * 2).min(self.cap);
        }
        let at = from.checked_add(self.jittered(wait))?;
        match self.deadline {
            Some(deadline) if at >= deadline => None,
            _ => Some(Retry { wait, at }),
        }
    }

    /// Sleep until the next attempt is due, counting from `from`. `Ok(false)` when the
    /// deadline comes first: then it sleeps until the deadline, never past it. A signal ends
    /// the sleep at once (`Err(interrupted)`).
    pub fn sleep_from(&mut self, from: Instant, cancel: &Cancel) -> Result<bool> {
        match self.next_from(from, None) {
            Some(retry) => cancel.sleep_until(retry.at).map(|()| true),
            None => match self.deadline {
                Some(deadline) => cancel.sleep_until(deadline).map(|()| false),
                // Only an instant past what `Instant` holds; there is no time to wait for.
                None => cancel.check().map(|()| false),
            },
        }
    }

    /// [`Backoff::sleep_from`] now.
    pub fn sleep(&mut self, cancel: &Cancel) -> Result<bool> {
        self.sleep_from(Instant::now(), cancel)
    }

    /// The jitter rule: a growing wait is drawn from 75 % to 100 % of its length.
    fn jittered(&self, wait: Duration) -> Duration {
        if self.grows {
            wait.mul_f64(0.75 + 0.25 * fastrand::f64())
        } else {
            wait
        }
    }
}

/// A little slack past a round's deadline: the attempts enforce it themselves, this only
/// covers a thread that is slow to report.
const REPORT_SLACK: Duration = Duration::from_millis(15);
/// After a signal, how long an attempt that holds children gets to kill them and report.
pub const SIGNAL_GRACE: Duration = Duration::from_millis(50);

/// One attempt of a round, run on a thread of its own by [`parallel`].
pub struct Attempt<T> {
    run: Box<dyn FnOnce() -> T + Send>,
    holds_children: bool,
}

impl<T> Attempt<T> {
    /// An attempt that holds no children (an HTTP request, a TCP connect): abandoned at once
    /// on a signal.
    pub fn new(run: impl FnOnce() -> T + Send + 'static) -> Self {
        Attempt {
            run: Box::new(run),
            holds_children: false,
        }
    }

    /// An attempt that runs a child process and kills it on a signal: waited for up to
    /// [`SIGNAL_GRACE`] then, so that no child outlives the tool.
    pub fn with_children(run: impl FnOnce() -> T + Send + 'static) -> Self {
        Attempt {
            run: Box::new(run),
            holds_children: true,
        }
    }
}

/// What one attempt returned, and when.
#[derive(Debug)]
pub struct Arrived<T> {
    pub value: T,
    pub at: Instant,
}

/// Run every attempt at once and collect what arrives by `until`, in the order given; an
/// attempt still out then is `None` and abandoned (it must keep `until` itself, its thread
/// ends on its own). A signal ends the collection at once with `interrupted`, after giving
/// attempts that hold children [`SIGNAL_GRACE`] to clean up.
pub fn parallel<T: Send + 'static>(
    attempts: Vec<Attempt<T>>,
    until: Instant,
    cancel: &Cancel,
) -> Result<Vec<Option<Arrived<T>>>> {
    let (tx, rx) = mpsc::channel();
    let mut with_children = Vec::with_capacity(attempts.len());
    for (index, attempt) in attempts.into_iter().enumerate() {
        with_children.push(attempt.holds_children);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send((index, (attempt.run)()));
        });
    }
    drop(tx);
    let mut arrived: Vec<Option<Arrived<T>>> = with_children.iter().map(|_| None).collect();
    let mut missing = arrived.len();
    while missing > 0 {
        match cancel.recv_until(&rx, until + REPORT_SLACK) {
            Ok(Some((index, value))) => {
                let at = Instant::now();
                arrived[index] = Some(Arrived { value, at });
                missing -= 1;
            }
            Ok(None) => break,
            Err(interrupted) => {
                let out: Vec<bool> = arrived.iter().map(Option::is_none).collect();
                let children_out = (0..out.len()).filter(|&i| out[i] && with_children[i]);
                grace_for_children(&rx, children_out.collect());
                return Err(interrupted);
            }
        }
    }
    Ok(arrived)
}

/// Wait up to [`SIGNAL_GRACE`] for the attempts `waiting` (indices) to report.
fn grace_for_children<T>(rx: &mpsc::Receiver<(usize, T)>, mut waiting: Vec<usize>) {
    let grace = Instant::now() + SIGNAL_GRACE;
    while !waiting.is_empty() {
        match rx.recv_timeout(grace.saturating_duration_since(Instant::now())) {
            Ok((index, _)) => waiting.retain(|&i| i != index),
            Err(_) => return,
        }
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

    #[test]
    fn a_poller_built_from_a_deadline_keeps_it_whatever_the_plan_says() {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(150);
        let mut poller = Poller::until(plan(20, None), started, deadline);
        assert_eq!(poller.deadline(), deadline, "not started + the plan's 60 s");
        let cancel = Cancel::default();
        loop {
            assert!(poller.begin_round() <= deadline);
            if !poller.wait_next(false, None, &cancel).unwrap() {
                break;
            }
        }
        let end = Instant::now();
        // The deadline given, not the plan's 60 s (how close to it is
        // `never_sleeps_past_the_deadline`'s business).
        assert!(end >= deadline && poller.overrun(end) < Duration::from_secs(1));
        assert!(poller.rounds() >= 3, "{} rounds", poller.rounds());
    }

    fn plan(interval_ms: u64, max_interval: Option<Duration>) -> PollPlan {
        PollPlan {
            timeout: Duration::from_secs(60),
            interval: Duration::from_millis(interval_ms),
            max_interval,
            attempt_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_signal_wakes_a_sleeping_poller_promptly() {
        let mut poller = Poller::new(plan(5_000, None), Instant::now());
        poller.begin_round();
        let cancel = Cancel::default();
        let tripped = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (other, at) = (cancel.clone(), std::sync::Arc::clone(&tripped));
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            *at.lock().unwrap() = Some(Instant::now());
            other.trip(libc::SIGTERM);
        });
        let err = poller.wait_next(false, None, &cancel).unwrap_err();
        let woke = Instant::now();
        assert_eq!(err.exit, 143);
        let tripped = tripped
            .lock()
            .unwrap()
            .expect("woken by the trip, not before");
        // Without a wake-up the sleep would last the 5 s beat, or at best until the cancel
        // token's next 100 ms check.
        assert!(
            woke - tripped < Duration::from_millis(50),
            "woke {:?} after the signal",
            woke - tripped
        );
    }

    #[test]
    fn the_beat_holds_while_the_wait_is_young_then_slows_down() {
        let mut young = Poller::new(plan(100, None), Instant::now());
        for _ in 0..50 {
            let beat = young.next_beat(false);
            assert!(beat <= Duration::from_millis(110), "{beat:?}");
        }
        let long_ago = Instant::now().checked_sub(EAGER_FOR + Duration::from_secs(1));
        let mut old = Poller::new(plan(100, None), long_ago.unwrap());
        let beats: Vec<Duration> = (0..10).map(|_| old.next_beat(false)).collect();
        assert!(beats[9] >= PATIENT_INTERVAL / 2, "{beats:?}");
        assert!(beats.iter().all(|b| *b <= PATIENT_INTERVAL), "{beats:?}");
        // A passing round brings the fast beat back.
        assert!(old.next_beat(true) <= Duration::from_millis(110));
    }

    #[test]
    fn an_explicit_max_interval_backs_off_from_the_start() {
        let mut poller = Poller::new(plan(100, Some(Duration::from_secs(3))), Instant::now());
        let beats: Vec<Duration> = (0..10).map(|_| poller.next_beat(false)).collect();
        assert!(beats[9] >= Duration::from_millis(1500), "{beats:?}");
        assert!(
            beats.iter().all(|b| *b <= Duration::from_secs(3)),
            "{beats:?}"
        );
    }

    /// The waits of `backoff` from a fixed start: (as said, as slept).
    fn waits(backoff: &mut Backoff, count: usize) -> Vec<(Duration, Duration)> {
        let from = Instant::now();
        (0..count)
            .map(|_| {
                let retry = backoff.next_from(from, None).unwrap();
                (retry.wait, retry.at - from)
            })
            .collect()
    }

    #[test]
    fn a_backoff_doubles_up_to_its_cap_jittered_within_a_quarter() {
        let mut backoff = Backoff::exponential(Duration::from_millis(200));
        let seen = waits(&mut backoff, 12);
        let said: Vec<u64> = seen
            .iter()
            .map(|(w, _)| u64::try_from(w.as_millis()).unwrap())
            .collect();
        assert_eq!(
            said,
            [
                200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000
            ]
        );
        for (wait, slept) in &seen {
            assert!(
                *slept <= *wait && *slept >= wait.mul_f64(0.75),
                "{slept:?} for {wait:?}"
            );
        }
        // Jittered, not a fixed fraction: a fleet spreads out.
        let slept: std::collections::HashSet<Duration> = seen.iter().map(|(_, s)| *s).collect();
        assert!(slept.len() > 6, "{seen:?}");
        // However much more a server asks for, and however large the first wait.
        let asked = Backoff::exponential(Duration::from_secs(1))
            .next_from(Instant::now(), Some(Duration::from_secs(600)))
            .unwrap();
        assert_eq!(asked.wait, MAX_BACKOFF);
        let mut huge = Backoff::exponential(Duration::from_secs(3600));
        assert!(
            waits(&mut huge, 3)
                .iter()
                .all(|(w, s)| *w == MAX_BACKOFF && *s <= MAX_BACKOFF)
        );
    }

    #[test]
    fn a_steady_beat_is_kept_as_given() {
        let mut beat = Backoff::steady(Duration::from_millis(150));
        for (wait, slept) in waits(&mut beat, 5) {
            assert_eq!(
                (wait, slept),
                (Duration::from_millis(150), Duration::from_millis(150))
            );
        }
    }

    #[test]
    fn a_backoff_schedules_nothing_at_or_past_its_deadline_and_sleeps_up_to_it() {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(400);
        let mut backoff = Backoff::exponential(Duration::from_millis(100)).until(deadline);
        let cancel = Cancel::default();
        let mut attempts = 0;
        while backoff.sleep(&cancel).unwrap() {
            attempts += 1;
            assert!(Instant::now() < deadline);
        }
        let end = Instant::now();
        // 75-100 ms, then 150-200 ms: the third (300-400 ms, from 225 ms at the earliest)
        // would end past it.
        assert_eq!(attempts, 2);
        assert!(end >= deadline, "gave up {:?} early", deadline - end);
        assert!(
            end - deadline < Duration::from_millis(30),
            "{:?} past",
            end - deadline
        );
        // Asked again after the deadline: no attempt, and no sleep.
        assert_eq!(backoff.next_from(Instant::now(), None), None);
        let mut late = Backoff::steady(Duration::from_millis(50)).until(deadline);
        let before = Instant::now();
        assert!(!late.sleep(&cancel).unwrap());
        assert!(before.elapsed() < Duration::from_millis(20));
        // A retry the server asks for past the deadline is not scheduled either.
        let mut asked = Backoff::exponential(Duration::from_millis(1))
            .until(Instant::now() + Duration::from_secs(1));
        assert_eq!(
            asked.next_from(Instant::now(), Some(Duration::from_secs(5))),
            None
        );
    }

    #[test]
    fn a_sleeping_backoff_wakes_on_a_signal() {
        let mut backoff =
            Backoff::steady(Duration::from_secs(5)).until(Instant::now() + Duration::from_secs(10));
        let cancel = Cancel::default();
        let other = cancel.clone();
        let tripped = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let at = Instant::now();
            other.trip(libc::SIGTERM);
            at
        });
        let err = backoff.sleep(&cancel).unwrap_err();
        let woke = Instant::now();
        assert_eq!(err.exit, 143);
        let tripped = tripped.join().unwrap();
        assert!(
            woke - tripped < Duration::from_millis(50),
            "woke {:?} after the signal",
            woke - tripped
        );
    }

    #[test]
    fn parallel_attempts_arrive_in_order_and_slow_ones_are_abandoned() {
        let cancel = Cancel::default();
        let started = Instant::now();
        // Room for the 40 ms attempt on a loaded machine; the slow one still far outlives it.
        let until = started + Duration::from_secs(1);
        let attempts = vec![
            Attempt::new(|| {
                std::thread::sleep(Duration::from_millis(40));
                "second to finish"
            }),
            Attempt::new(|| "first to finish"),
            Attempt::new(|| {
                std::thread::sleep(Duration::from_secs(5));
                "never collected"
            }),
        ];
        let arrived = parallel(attempts, until, &cancel).unwrap();
        let ended = Instant::now();
        let values: Vec<Option<&str>> = arrived
            .iter()
            .map(|a| a.as_ref().map(|a| a.value))
            .collect();
        assert_eq!(
            values,
            [Some("second to finish"), Some("first to finish"), None]
        );
        let (first, second) = (
            arrived[1].as_ref().unwrap().at,
            arrived[0].as_ref().unwrap().at,
        );
        assert!(first <= second && second >= started + Duration::from_millis(40));
        assert!(ended >= until, "collected until the deadline");
        assert!(
            ended < until + Duration::from_secs(2),
            "the slow one was abandoned"
        );
    }

    #[test]
    fn on_a_signal_attempts_with_children_get_a_grace_and_others_none() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let cancel = Cancel::default();
        let cleaned = Arc::new(AtomicBool::new(false));
        let (token, done) = (cancel.clone(), Arc::clone(&cleaned));
        let attempts = vec![
            Attempt::with_children(move || {
                while token.check().is_ok() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                // Killing the process group takes a moment.
                std::thread::sleep(Duration::from_millis(10));
                done.store(true, Ordering::SeqCst);
            }),
            Attempt::new(|| std::thread::sleep(Duration::from_secs(5))),
        ];
        let other = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            other.trip(libc::SIGINT);
        });
        let started = Instant::now();
        let err = parallel(attempts, started + Duration::from_secs(10), &cancel).unwrap_err();
        assert_eq!(err.exit, 130);
        assert!(
            cleaned.load(Ordering::SeqCst),
            "returned before the attempt with children cleaned up"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
