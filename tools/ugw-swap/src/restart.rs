//! `--restart CMD` through the shared runner, or `--start CMD` (ugw-swap starting the service
//! itself), kept in the record as one entry per run (the restart after the switch, and the one
//! after switching back).

use std::time::{Duration, Instant};
use ugw_shared::results::{RestartRun, Swapped};
use ugw_shared::runner::{RunSpec, run};
use ugw_shared::scrub::excerpt;
use ugw_shared::{Ctx, Result};

/// How much of the command's output the record keeps.
const OUTPUT_EXCERPT: usize = 2000;
/// Between TERM and KILL when a restart command overruns `--restart-timeout`.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How many of a failed restart's last output lines stderr shows.
const SHOWN_LINES: usize = 10;

/// A failed restart's own words on stderr (issue 21 item 7): its last lines, scrubbed as the
/// record is (the whole output first, so no secret is cut in two), controls made visible.
pub(crate) fn show_last_lines(ctx: &Ctx, phase: &str, outcome: &str, output: &[u8]) {
    let text = ctx
        .reporter
        .scrubber()
        .scrub_str(&String::from_utf8_lossy(output));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        ctx.reporter.warn(&format!(
            "the restart ({phase}) failed ({outcome}) and printed nothing"
        ));
        return;
    }
    let last = &lines[lines.len().saturating_sub(SHOWN_LINES)..];
    ctx.reporter.warn(&format!(
        "the restart ({phase}) failed ({outcome}); its last {} line(s):",
        last.len()
    ));
    let quoted: Vec<String> = last.iter().map(|l| format!("  | {l}")).collect();
    ctx.reporter.block(&quoted.join("\n"));
}

/// Run CMD once, within `timeout` and the step's deadline. When it cannot be run to its end
/// (SIGTERM to ugw-swap, say), the error carries `switched`, what the swap had switched
/// already: the interrupted step records it, and `--rollback` takes that switch back.
pub(crate) fn restart(
    ctx: &Ctx,
    command: &str,
    timeout: Duration,
    phase: &str,
    switched: &Swapped,
) -> Result<RestartRun> {
    let mut deadline = Instant::now() + timeout;
    if let Some(step_deadline) = ctx.deadline() {
        deadline = deadline.min(step_deadline);
    }
    ctx.reporter
        .info(&format!("restarting ({phase}): {command}"));
    // At the deadline the command gets TERM and a moment to stop cleanly, then KILL.
    let spec = RunSpec::new(command, deadline).with_grace(STOP_GRACE);
    let outcome = run(&spec, &ctx.cancel).map_err(|e| match e.result {
        Some(_) => e,
        None => e.with_typed(switched),
    })?;
    if outcome.left_behind > 0 {
        ctx.reporter.warn(&format!(
            "killed {} process(es) the restart command left behind; start services with \
             systemd (--restart 'systemctl restart app'), or detach them (setsid) so that \
             they outlive the restart command",
            outcome.left_behind
        ));
    }
    let mut output = outcome.stdout.clone();
    output.extend_from_slice(&outcome.stderr);
    if !outcome.success() {
        show_last_lines(ctx, phase, &outcome.describe(), &output);
    }
    Ok(RestartRun {
        phase: phase.to_string(),
        ok: outcome.success(),
        outcome: outcome.describe(),
        exit: outcome.exit_code(),
        elapsed_ms: ugw_shared::time::millis(outcome.elapsed),
        output: excerpt(&output, OUTPUT_EXCERPT),
    })
}

/// The restart a swap asked for, `--restart` or `--start`; `None` when it asked for neither.
/// `dir` is the folder of the release now live (`--start` runs CMD there), `release` its
/// name.
pub(crate) fn restart_service(
    ctx: &Ctx,
    options: &crate::Options,
    phase: &str,
    switched: &Swapped,
    dir: Option<&std::path::Path>,
    release: Option<&str>,
) -> Option<Result<RestartRun>> {
    if let Some(start) = &options.start {
        return Some(start_service(ctx, start, phase, switched, dir, release));
    }
    let command = options.restart.as_deref()?;
    Some(restart(
        ctx,
        command,
        options.restart_timeout,
        phase,
        switched,
    ))
}

/// `--start`: stop what the pidfile names, then start CMD for the release now live.
fn start_service(
    ctx: &Ctx,
    start: &crate::start::Start,
    phase: &str,
    switched: &Swapped,
    dir: Option<&std::path::Path>,
    release: Option<&str>,
) -> Result<RestartRun> {
    let began = Instant::now();
    ctx.reporter.info(&format!(
        "restarting ({phase}): stop what {} names, then start {}",
        start.pidfile.display(),
        release.unwrap_or("the service")
    ));
    let carry = |e: ugw_shared::Error| match e.result {
        Some(_) => e,
        None => e.with_typed(switched),
    };
    let stopped = crate::start::stop(ctx, start).map_err(carry)?;
    let started = crate::start::start(ctx, start, dir, release).map_err(carry)?;
    let outcome = format!("{stopped}; {}", started.outcome);
    if !started.ok {
        show_last_lines(ctx, phase, &started.outcome, &started.output);
    }
    Ok(RestartRun {
        phase: phase.to_string(),
        ok: started.ok,
        outcome,
        exit: started.exit,
        elapsed_ms: ugw_shared::time::millis(began.elapsed()),
        output: excerpt(&started.output, OUTPUT_EXCERPT),
    })
}
