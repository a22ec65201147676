//! The wait itself: rounds on the poller's beat until the goal holds for long enough, the
//! deadline, a fail-fast condition or a signal; what each target did, for the record.

use crate::plan::Plan;
use crate::probe::{self, Round, TargetState};
use crate::watched::Watched;
use std::time::Instant;
use ugw_shared::poll::Poller;
use ugw_shared::results::WaitHealthy;
use ugw_shared::time::{human, millis};
use ugw_shared::{Ctx, Error, ErrorKind, Result};

pub struct Watch<'a> {
    plan: &'a Plan,
    states: Vec<TargetState>,
    poller: Poller,
    streak: Streak,
    healthy_at: Option<Instant>,
    ended: Option<Instant>,
    /// The service's process (`--pid`, `--pidfile`): its exit ends the wait.
    watched: Option<Watched>,
}

impl<'a> Watch<'a> {
    /// A wait from `started` that ends by `deadline` (the step's, from `Ctx`).
    pub fn new(plan: &'a Plan, started: Instant, deadline: Instant) -> Self {
        Watch {
            plan,
            states: plan
                .targets
                .iter()
                .map(|target| TargetState::new(target, plan.version_differs))
                .collect(),
            poller: Poller::until(plan.poll_plan(), started, deadline),
            streak: Streak::default(),
            healthy_at: None,
            ended: None,
            watched: plan.watch.clone().map(Watched::new),
        }
    }

    /// Poll until the goal is met (`Ok`), or fail with why not.
    pub fn run(&mut self, ctx: &Ctx) -> Result<()> {
        let outcome = self.rounds(ctx);
        self.ended = Some(Instant::now());
        outcome
    }

    fn rounds(&mut self, ctx: &Ctx) -> Result<()> {
        self.check_process(ctx)?;
        loop {
            let until = self.poller.begin_round();
            let round = probe::run_round(self.plan, until, self.poller.deadline(), &ctx.cancel)?;
            // Judged on this round's answers alone: a target's remembered state may be an
            // older round's (a round the deadline cut keeps the last real answer).
            let met = round.meets_goal(self.plan);
            let retry_after = round.retry_after;
            self.take(round, ctx)?;
            // After the round too: a service that died is not healthy because something
            // else (the release before) still answers on its port.
            self.check_process(ctx)?;
            if self.streak.count(met, self.plan) {
                self.healthy_at = Some(Instant::now());
                return Ok(());
            }
            if self.plan.once {
                // One round is a check, not a wait: it failed, it did not time out.
                let detail = self.not_met("in the one round of --once");
                return Err(Error::new(ErrorKind::CheckFailed, detail));
            }
            if !self.poller.wait_next(met, retry_after, &ctx.cancel)? {
                let within = format!("within --timeout {}", human(self.plan.timeout));
                let mut detail = self.not_met(&within);
                if let Some(why) = self.watched.as_ref().and_then(Watched::never_found) {
                    detail = format!("{detail}; {why}");
                }
                return Err(Error::new(ErrorKind::Timeout, detail));
            }
        }
    }

    /// The watched process still runs (or none is watched); its exit fails the wait, saying
    /// what the targets last did.
    fn check_process(&mut self, ctx: &Ctx) -> Result<()> {
        let Some(watched) = self.watched.as_mut() else {
            return Ok(());
        };
        watched.check(ctx).map_err(|exited| {
            let targets = if self.states.iter().any(|s| s.attempts > 0) {
                format!("; {}", self.not_met("when it exited"))
            } else {
                String::new()
            };
            let message = format!("{}{targets}", exited.message);
            Error::new(exited.kind, message)
        })
    }

    /// Record each target's verdict (a line on stderr when its state changed); a fail-fast
    /// condition ends the wait.
    fn take(&mut self, round: Round, ctx: &Ctx) -> Result<()> {
        let mut fatal = None;
        for (state, verdict) in self.states.iter_mut().zip(round.verdicts) {
            if let Some(line) = state.record(verdict, self.plan.until_down) {
                ctx.reporter.info(&line);
            }
            if let Some(reason) = state.fatal.as_ref().filter(|_| fatal.is_none()) {
                fatal = Some(format!("{}: {reason}", state.label));
            }
        }
        match fatal {
            Some(reason) => Err(Error::new(ErrorKind::FailCondition, reason)),
            None => Ok(()),
        }
    }

    pub fn result(&self, started: Instant) -> WaitHealthy {
        let end = self.ended.unwrap_or_else(Instant::now);
        WaitHealthy {
            healthy: self.healthy_at.is_some(),
            mode: self.plan.mode(),
            targets: self.states.iter().map(TargetState::to_result).collect(),
            rounds: self.poller.rounds(),
            attempts: self.states.iter().map(|s| s.attempts).sum(),
            elapsed_ms: millis(end - started),
            time_to_healthy_ms: self.healthy_at.map(|t| millis(t - started)),
            deadline_overrun_ms: millis(self.poller.overrun(end)),
            expect_version: self.plan.expect_version().map(str::to_string),
            process: self.watched.as_ref().map(Watched::result),
        }
    }

    /// `healthy after 1.2 s (3 rounds)`.
    pub fn summary(&self, goal: &str, started: Instant) -> String {
        let end = self.ended.unwrap_or_else(Instant::now);
        let rounds = self.poller.rounds();
        format!(
            "{goal} after {} ({rounds} {})",
            human(end - started),
            plural(rounds, "round")
        )
    }

    /// Why the goal was not met `when`, naming each target that missed it.
    fn not_met(&self, when: &str) -> String {
        let (plan, goal) = (self.plan, self.goal());
        let describe = |s: &TargetState| {
            format!(
                "{}: {} (after {} {})",
                s.label,
                s.last_failure(plan.until_down),
                s.attempts,
                plural(s.attempts, "attempt")
            )
        };
        let failing: Vec<String> = self
            .states
            .iter()
            .filter(|s| !s.goal_met())
            .map(describe)
            .collect();
        let detail = if failing.is_empty() {
            // Passing right now, but not for long enough: say what broke the streak.
            let last: Vec<String> = self
                .states
                .iter()
                .filter(|s| s.has_missed())
                .map(describe)
                .collect();
            format!(
                "the targets pass now but not {} (--successes/--stable-for); last failure: {}",
                plan.stability(),
                if last.is_empty() {
                    "none".to_string()
                } else {
                    last.join("; ")
                }
            )
        } else {
            failing.join("; ")
        };
        format!("not {goal} {when}: {detail}")
    }

    fn goal(&self) -> &'static str {
        match (self.plan.until_down, self.plan.any) {
            (false, false) => "healthy",
            (false, true) => "healthy (any target)",
            (true, false) => "down",
            (true, true) => "down (any target)",
        }
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// The passing rounds that make a verdict: `--successes` in a row, for `--stable-for`, with
/// up to `--max-failures` failed rounds forgiven inside that window.
#[derive(Debug, Default)]
struct Streak {
    in_a_row: u32,
    since: Option<Instant>,
    forgiven: u32,
}

impl Streak {
    /// Count one round; whether the goal now holds for long enough.
    fn count(&mut self, met: bool, plan: &Plan) -> bool {
        if met {
            self.in_a_row += 1;
            let since = *self.since.get_or_insert_with(Instant::now);
            return self.in_a_row >= plan.successes
                && plan.stable_for.is_none_or(|d| since.elapsed() >= d);
        }
        if self.since.is_some() && self.forgiven < plan.max_failures {
            // The window goes on; a streak of rounds in a row starts over.
            self.forgiven += 1;
            self.in_a_row = 0;
            return false;
        }
        *self = Streak::default();
        false
    }
}
