//! The signal method: send a graceful signal (nginx's QUIT) and wait for the process to exit,
//! held by a pidfd so a zombie or a reused pid is never taken for it. At the deadline,
//! `--on-timeout escalate` sends TERM, then KILL after `--grace`, and the escalation is timed
//! to end by the deadline too.

use crate::wait;
use crate::{OnTimeout, PidSource, SignalStop, WaitPlan};
use rustix::process::Signal;
use std::time::{Duration, Instant};
use ugw_shared::process::Process;
use ugw_shared::results::{DrainMethod, Drained};
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// How long KILL is given to take effect.
const KILL_WAIT: Duration = Duration::from_secs(1);

/// `QUIT`, `SIGQUIT` or a number, as `kill -s` takes it: the signal and its name.
pub(crate) fn parse(text: &str) -> std::result::Result<(Signal, String), String> {
    let upper = text.to_ascii_uppercase();
    let (signal, name) = match upper.trim_start_matches("SIG") {
        "QUIT" | "3" => (Signal::QUIT, "QUIT"),
        "TERM" | "15" => (Signal::TERM, "TERM"),
        "INT" | "2" => (Signal::INT, "INT"),
        "HUP" | "1" => (Signal::HUP, "HUP"),
        "USR1" => (Signal::USR1, "USR1"),
        "USR2" => (Signal::USR2, "USR2"),
        "WINCH" => (Signal::WINCH, "WINCH"),
        "KILL" | "9" => (Signal::KILL, "KILL"),
        _ => {
            return Err(format!(
                "'{text}' is not a signal ugw-drain sends (QUIT, TERM, INT, HUP, USR1, USR2, WINCH, KILL)"
            ));
        }
    };
    Ok((signal, name.to_string()))
}

/// When the graceful wait ends (TERM goes out) and when TERM's wait ends (KILL goes out).
/// Escalation ends by the deadline too: TERM's wait and KILL's are kept out of it, each cut to
/// a share of the time left when --grace is longer than the deadline allows.
fn escalation_times(deadline: Instant, grace: Duration) -> (Instant, Instant) {
    let budget = deadline.saturating_duration_since(Instant::now());
    let kill_wait = KILL_WAIT.min(budget / 4);
    let term_wait = grace.min(budget.saturating_sub(kill_wait) / 2);
    // Both fit in the time left, so neither reaches back before now.
    let before_deadline = |by: Duration| deadline.checked_sub(by).unwrap_or_else(Instant::now);
    (
        before_deadline(kill_wait + term_wait),
        before_deadline(kill_wait),
    )
}

/// What the signal method stops: a process held by its pidfd, or a container's main
/// process (`--container`), each sent signals and waited for its own way.
pub(crate) trait Target {
    /// `process 123`, `container web`: for messages.
    fn what(&self) -> String;
    /// Send `signal` (`name`, as `kill -s` takes it); `Ok(false)` when it is gone already.
    fn send(&self, ctx: &Ctx, signal: Signal, name: &str) -> Result<bool>;
    /// Wait until it is gone (`true`) or `until` passes (`false`); a signal ends the wait.
    fn wait_gone(&mut self, ctx: &Ctx, until: Instant) -> Result<bool>;
}

impl Target for Process {
    fn what(&self) -> String {
        format!("process {}", self.pid())
    }

    fn send(&self, _ctx: &Ctx, signal: Signal, _name: &str) -> Result<bool> {
        self.signal(signal)
    }

    fn wait_gone(&mut self, ctx: &Ctx, until: Instant) -> Result<bool> {
        Process::wait_gone(self, until, &ctx.cancel)
    }
}

pub(crate) fn stop(
    ctx: &Ctx,
    stop: &SignalStop,
    source: &PidSource,
    plan: WaitPlan,
) -> Result<Drained> {
    let pid = read_pid(source)?;
    refuse_own(pid)?;
    let mut drained = wait::blank(DrainMethod::Signal, false);
    drained.pid = Some(pid);
    let Some(mut process) = running_process(ctx, pid, source)? else {
        mark_gone(&mut drained);
        return Ok(drained);
    };
    signal_and_wait(ctx, &mut process, stop, plan, drained)
}

/// A result for a target that was gone before anything was sent.
pub(crate) fn mark_gone(drained: &mut Drained) {
    drained.state_before = Some("gone".to_string());
    drained.state_after = Some("gone".to_string());
}

/// Process `pid`, unless it is not running, or is not the one its pidfile names (a pid
/// reused after the file was written): then `None`, said on stderr, and nothing is signalled.
fn running_process(ctx: &Ctx, pid: i32, source: &PidSource) -> Result<Option<Process>> {
    let Some(process) = Process::from_pid(pid)? else {
        ctx.reporter
            .info(&format!("process {pid} is not running: nothing to stop"));
        return Ok(None);
    };
    if let PidSource::File(path) = source
        && let Some(why) = reused(&process, path)?
    {
        ctx.reporter.warn(&format!(
            "process {pid} is not the one --pidfile {} names: {why}; the process that wrote it is \
             gone, and {pid} is not signalled",
            path.display()
        ));
        return Ok(None);
    }
    Ok(Some(process))
}

/// Send the signal to a running `target` and wait for it to be gone, escalating at the
/// deadline with `--on-timeout escalate`; then what the deadline means (`judged`).
pub(crate) fn signal_and_wait(
    ctx: &Ctx,
    target: &mut dyn Target,
    stop: &SignalStop,
    plan: WaitPlan,
    mut drained: Drained,
) -> Result<Drained> {
    let what = target.what();
    drained.state_before = Some("running".to_string());
    if ctx.dry_run {
        drained.state_after = Some("running".to_string());
        ctx.reporter
            .info(&format!("{what} is running; would send {}", stop.name));
        return Ok(drained);
    }
    let deadline = ctx.step_deadline();
    let escalate = plan.on_timeout == OnTimeout::Escalate;
    let (graceful_until, term_until) = if escalate {
        escalation_times(deadline, stop.grace)
    } else {
        (deadline, deadline)
    };
    let since = Instant::now();
    drained.changed = target.send(ctx, stop.signal, &stop.name)?;
    ctx.reporter.info(&format!(
        "sent {} to {what}; waiting for it to exit",
        stop.name
    ));
    let mut gone = target.wait_gone(ctx, graceful_until)?;
    if !gone && escalate {
        for (sig, word, until) in [
            (Signal::TERM, "TERM", term_until),
            (Signal::KILL, "KILL", deadline),
        ] {
            ctx.reporter.warn(&format!(
                "{what} still runs after {}: sending {word}",
                ugw_shared::time::human(since.elapsed())
            ));
            target.send(ctx, sig, word)?;
            drained.escalated = Some(word.to_string());
            gone = target.wait_gone(ctx, until)?;
            if gone {
                break;
            }
        }
    }
    drained.waited_ms = ugw_shared::time::millis(since.elapsed());
    drained.state_after = Some(if gone { "gone" } else { "running" }.to_string());
    judged(ctx, &what, &stop.name, plan, drained, gone, since)
}

/// The step's end: done once the target is gone; at the deadline, `--on-timeout proceed`
/// goes on (`forced`) and anything else fails with kind `timeout`.
fn judged(
    ctx: &Ctx,
    what: &str,
    name: &str,
    plan: WaitPlan,
    mut drained: Drained,
    gone: bool,
    since: Instant,
) -> Result<Drained> {
    if gone {
        ctx.reporter.info(&format!(
            "{what} exited after {}",
            ugw_shared::time::human(since.elapsed())
        ));
        return Ok(drained);
    }
    if plan.on_timeout == OnTimeout::Proceed {
        ctx.reporter.warn(&format!(
            "{what} still runs at the deadline; going on (--on-timeout proceed)"
        ));
        drained.forced = true;
        return Ok(drained);
    }
    Err(Error::new(
        ErrorKind::Timeout,
        format!(
            "{what} did not exit within {} of {name}",
            ugw_shared::time::human(since.elapsed())
        ),
    )
    .with_typed(&drained))
}

/// The processes ugw-drain never signals, whatever a pidfile says: PID 1, itself, and the
/// leader of its own process group (the shell or pipeline running it).
fn refuse_own(pid: i32) -> Result<()> {
    let own = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let group = rustix::process::getpgrp().as_raw_pid();
    let why = if pid == 1 {
        "PID 1, the init process"
    } else if pid == own {
        "ugw-drain itself"
    } else if pid == group {
        "the leader of ugw-drain's own process group (the shell or pipeline running it)"
    } else {
        return Ok(());
    };
    Err(Error::usage(format!(
        "process {pid} is {why}: it is never signalled; check --pid or --pidfile"
    )))
}

/// Linux reports process times in clock ticks of `USER_HZ`, 100 a second on every architecture
/// it runs on today (it is part of the ABI, whatever the kernel's own HZ).
const TICKS_PER_SECOND: f64 = 100.0;
/// What the two clocks compared may differ by: a tick, and /proc/uptime's hundredths.
const CLOCK_SLACK: Duration = Duration::from_millis(50);

/// Why `process` cannot be the one that wrote `pidfile`: it started after the file was last
/// written, so its pid was reused. Read through the pidfd held: /proc is read, then the pidfd
/// is asked whether its process still runs, so what was read is that process's.
fn reused(process: &Process, pidfile: &std::path::Path) -> Result<Option<String>> {
    let written = std::fs::metadata(pidfile)
        .and_then(|m| m.modified())
        .map_err(|e| {
            Error::io(
                format!("cannot look at --pidfile {}", pidfile.display()),
                &e,
            )
        })?;
    let pid = process.pid();
    let Some(started) = start_time(pid) else {
        return Ok(None);
    };
    if !process.alive() {
        return Ok(None);
    }
    Ok((started > written + CLOCK_SLACK).then(|| {
        let after = started.duration_since(written).unwrap_or(Duration::ZERO);
        format!(
            "it started {} after the pidfile was last written",
            ugw_shared::time::human(after)
        )
    }))
}

/// When process `pid` started, from /proc/PID/stat (field 22, ticks since boot) and
/// /proc/uptime; `None` when /proc does not say.
fn start_time(pid: i32) -> Option<std::time::SystemTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let (_, rest) = stat.rsplit_once(')')?;
    let ticks: f64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let now = std::time::SystemTime::now();
    let boot = now.checked_sub(Duration::try_from_secs_f64(uptime).ok()?)?;
    boot.checked_add(Duration::try_from_secs_f64(ticks / TICKS_PER_SECOND).ok()?)
}

fn read_pid(source: &PidSource) -> Result<i32> {
    match source {
        PidSource::Pid(pid) => Ok(*pid),
        PidSource::File(path) => {
            let bytes =
                ugw_shared::atomic::read_capped(path, ugw_shared::pidfile::CAP).map_err(|e| {
                    Error::usage(format!("cannot read --pidfile {}: {e}", path.display()))
                })?;
            ugw_shared::pidfile::parse(&String::from_utf8_lossy(&bytes)).map_err(|held| {
                Error::usage(format!(
                    "--pidfile {} does not hold a process id: {held}",
                    path.display()
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_named_as_kill_takes_them() {
        assert_eq!(parse("QUIT").unwrap(), (Signal::QUIT, "QUIT".to_string()));
        assert_eq!(parse("SIGQUIT").unwrap().0, Signal::QUIT);
        assert_eq!(parse("term").unwrap(), (Signal::TERM, "TERM".to_string()));
        assert_eq!(parse("15").unwrap(), (Signal::TERM, "TERM".to_string()));
        assert!(parse("STOP").is_err());
    }
}
