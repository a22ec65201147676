//! start-first's hand-over, once the new slot is healthy and before the old one stops:
//! `--drain-cmd` (with `UGW_DRAIN_PORT`, the old slot, and `UGW_LIVE_PORT`, the new one: e.g.
//! ugw-drain on the balancer's runtime API), then `--drain-grace` for the balancer's own
//! health check to see the change. A drain command that fails takes the swap back instead of
//! stopping the old slot anyway: the balancer may still send everything to the old slot (or
//! nothing to the new one), so stopping it could leave no slot in traffic. The new slot is
//! removed, the old one keeps serving, and the step fails (exit 1, `restart_failed`) saying so.

use super::{Pins, Session, restart_failed};
use std::time::Instant;
use ugw_shared::results::{RestartRun, Swapped};
use ugw_shared::runner::{RunSpec, run};
use ugw_shared::{Ctx, Error, Result};

/// `--drain-cmd` and `--drain-grace`: `Ok(Err(why))` when the command failed (the grace is
/// not waited then).
pub(super) fn drain(
    ctx: &Ctx,
    session: &Session<'_>,
    old: u16,
    live: u16,
) -> Result<std::result::Result<(), String>> {
    if let Some(command) = &session.mode.drain_cmd {
        let spec = RunSpec::new(command, session.deadline(ctx))
            .with_env("UGW_DRAIN_PORT", &old.to_string())
            .with_env("UGW_LIVE_PORT", &live.to_string());
        let outcome = run(&spec, &ctx.cancel)?;
        if !outcome.success() {
            return Ok(Err(format!(
                "--drain-cmd failed ({}): {}",
                outcome.describe(),
                outcome.said_excerpt(400).trim()
            )));
        }
    }
    ctx.cancel
        .sleep_until(Instant::now() + session.mode.drain_grace)?;
    Ok(Ok(()))
}

/// The drain command failed (`why`): remove the new slot `idle` and its pin, keep `old`, and
/// return the error that says so, carrying `result` with `current` back to the image before.
pub(super) fn taken_back(
    ctx: &Ctx,
    session: &Session<'_>,
    pins: &Pins,
    (old, idle): (u16, u16),
    why: &str,
    result: &mut Swapped,
) -> Error {
    let began = Instant::now();
    let removed = session.compose(Some(idle)).stop_and_remove(
        ctx,
        &session.mode.services,
        session.deadline(ctx),
    );
    // A slot's override is removed without fail (see `PinFiles::remove_override`).
    let _ = session
        .files
        .remove_override(&session.mode.file, Some(idle));
    let outcome = match &removed {
        Ok(()) => format!("{why}; slot {idle} removed, slot {old} was never stopped"),
        Err(e) => format!("{why}; removing slot {idle} failed: {}", e.message),
    };
    ctx.reporter.warn(&outcome);
    result.restarts.push(RestartRun {
        phase: "after_revert".into(),
        ok: removed.is_ok(),
        outcome,
        exit: None,
        elapsed_ms: ugw_shared::time::millis(began.elapsed()),
        output: String::new(),
    });
    result.restarted = false;
    result.current.clone_from(&pins.current);
    if let Some(c) = result.compose.as_mut() {
        c.slot = Some(old);
    }
    let before = pins.current.as_deref().unwrap_or("the image before");
    restart_failed(
        result,
        Some(&format!("{before} (slot {old}, never stopped)")),
    )
}
