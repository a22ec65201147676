//! The signal method: send a graceful signal (nginx's QUIT) and wait for the process to exit,
//! held by a pidfd so a zombie or a reused pid is never taken for it. At the deadline,
//! `--on-timeout escalate` sends TERM, then KILL after `--grace`, and the escalation is timed
//! to end by the deadline too.

use crate::wait;
use crate::{Method, OnTimeout, PidSource, WaitPlan};
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

pub(crate) fn stop(ctx: &Ctx, method: &Method, plan: WaitPlan) -> Result<Drained> {
    let Method::Signal {
        signal,
        name,
        pid,
        grace,
    } = method
    else {
        unreachable!("called for the signal method only")
    };
    let pid = read_pid(pid)?;
    let mut drained = wait::blank(DrainMethod::Signal, false);
    drained.pid = Some(pid);
    let Some(process) = Process::from_pid(pid)? else {
        ctx.reporter
            .info(&format!("process {pid} is not running: nothing to stop"));
        drained.state_before = Some("gone".to_string());
        drained.state_after = Some("gone".to_string());
        return Ok(drained);
    };
    drained.state_before = Some("running".to_string());
    if ctx.dry_run {
        drained.state_after = Some("running".to_string());
        ctx.reporter
            .info(&format!("process {pid} is running; would send {name}"));
        return Ok(drained);
    }
    let deadline = wait::deadline(ctx);
    let escalate = plan.on_timeout == OnTimeout::Escalate;
    // Escalation must end by the deadline too: the graceful wait leaves it room.
    let graceful_until = if escalate {
        deadline
            .checked_sub(*grace + KILL_WAIT)
            .unwrap_or_else(Instant::now)
            .max(Instant::now())
    } else {
        deadline
    };
    let since = Instant::now();
    drained.changed = process.signal(*signal)?;
    ctx.reporter.info(&format!(
        "sent {name} to process {pid}; waiting for it to exit"
    ));
    let mut gone = process.wait_gone(graceful_until, &ctx.cancel)?;
    if !gone && escalate {
        for (sig, word, wait) in [
            (Signal::TERM, "TERM", *grace),
            (Signal::KILL, "KILL", KILL_WAIT),
        ] {
            ctx.reporter.warn(&format!(
                "process {pid} still runs after {}: sending {word}",
                ugw_shared::time::human(since.elapsed())
            ));
            process.signal(sig)?;
            drained.escalated = Some(word.to_string());
            gone = process.wait_gone(Instant::now() + wait, &ctx.cancel)?;
            if gone {
                break;
            }
        }
    }
    drained.waited_ms = ugw_shared::time::millis(since.elapsed());
    drained.state_after = Some(if gone { "gone" } else { "running" }.to_string());
    if gone {
        ctx.reporter.info(&format!(
            "process {pid} exited after {}",
            ugw_shared::time::human(since.elapsed())
        ));
        return Ok(drained);
    }
    if plan.on_timeout == OnTimeout::Proceed {
        ctx.reporter.warn(&format!(
            "process {pid} still runs at the deadline; going on (--on-timeout proceed)"
        ));
        drained.forced = true;
        return Ok(drained);
    }
    Err(Error::new(
        ErrorKind::Timeout,
        format!(
            "process {pid} did not exit within {} of {name}",
            ugw_shared::time::human(since.elapsed())
        ),
    )
    .with_result(serde_json::to_value(&drained).expect("serialises")))
}

fn read_pid(source: &PidSource) -> Result<i32> {
    match source {
        PidSource::Pid(pid) => Ok(*pid),
        PidSource::File(path) => {
            let bytes = ugw_shared::atomic::read_capped(path, 64).map_err(|e| {
                Error::usage(format!("cannot read --pidfile {}: {e}", path.display()))
            })?;
            String::from_utf8_lossy(&bytes)
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|pid| *pid > 0)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "--pidfile {} does not hold a process id",
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
