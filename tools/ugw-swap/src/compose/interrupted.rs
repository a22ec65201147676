//! A signal (SIGTERM, SIGHUP, SIGINT) that cuts a swap short after its pin moved and before
//! the pins file says it finished: the swap is taken back, so that the project ends as it was
//! before the run and the record says so (interrupted, `current` the image before). Without
//! this the override named the new image, the container ran it unjudged, and the pins file
//! still named the old one: the next swap to the old image found it "already running" and did
//! nothing. stop-first: the image before is pinned again and brought up (no image before: the
//! new containers are removed with the pin). start-first: the new slot's containers and pin
//! are removed; the old slot was never stopped. The take-back runs on a token no further
//! signal trips (a second SIGTERM must not leave it half done), within `--restart-timeout`.

use super::{Pins, Session, Strategy};
use std::time::Instant;
use ugw_shared::results::{RestartRun, Swapped};
use ugw_shared::{Ctx, ErrorKind, Result};

/// `act` (a swap or a rollback from `pins`), taken back when a signal interrupts it before it
/// saved the pins; `base` is the result to report when the error carries none.
pub(super) fn taken_back_on_signal(
    ctx: &mut Ctx,
    session: &Session<'_>,
    pins: &Pins,
    base: Swapped,
    act: impl FnOnce(&Ctx) -> Result<Swapped>,
) -> Result<Swapped> {
    let e = match act(ctx) {
        Err(e) if e.kind == ErrorKind::Interrupted => e,
        done => return done,
    };
    // The pins file moves last: once it names something else, the swap finished and only
    // what came after it (naming the containers, `--keep`) was cut short.
    if session.files.load().ok().as_ref() != Some(pins) {
        return Err(e);
    }
    let mut result = e
        .result
        .as_ref()
        .and_then(|value| serde_json::from_value::<Swapped>(value.clone()).ok())
        .unwrap_or(base);
    let began = Instant::now();
    let signalled = std::mem::take(&mut ctx.cancel);
    let taken = take_back(ctx, session, pins);
    ctx.cancel = signalled;
    let (ok, outcome) = match &taken {
        Ok(()) => (true, format!("{}; the swap was taken back", e.message)),
        Err(why) => (
            false,
            format!("{}; taking the swap back failed: {why}", e.message),
        ),
    };
    if ok {
        ctx.reporter.warn(&format!(
            "{}: taken back, {} runs {}",
            e.message,
            session.mode.services.join(", "),
            pins.current
                .as_deref()
                .unwrap_or("nothing (no image before)")
        ));
    } else {
        ctx.reporter.warn(&outcome);
    }
    result.current.clone_from(&pins.current);
    result.restarts.push(RestartRun {
        phase: "after_revert".into(),
        ok,
        outcome,
        exit: None,
        elapsed_ms: ugw_shared::time::millis(began.elapsed()),
        output: String::new(),
    });
    if let Some(c) = result.compose.as_mut() {
        c.slot = pins.slot;
    }
    Err(e.with_typed(&result))
}

/// Put back what `pins` says (see the module's comment).
fn take_back(ctx: &Ctx, session: &Session<'_>, pins: &Pins) -> Result<()> {
    let mode = session.mode;
    let deadline = Instant::now() + session.options.restart_timeout;
    match &mode.strategy {
        Strategy::StopFirst => {
            let compose = session.compose(None);
            let Some(before) = pins.current.as_deref() else {
                compose.stop_and_remove(ctx, &mode.services, deadline)?;
                session.files.remove_override(&session.mode.file, None)?;
                return Ok(());
            };
            session
                .files
                .write_override(&mode.file, &mode.services, before, None)?;
            let mut args = vec!["up", "-d", "--no-deps"];
            args.extend(mode.services.iter().map(String::as_str));
            compose.run(ctx, &args, deadline).map(|_| ())
        }
        Strategy::StartFirst { slots, .. } => {
            let live = pins.slot.filter(|s| slots.contains(s));
            let idle = if live == Some(slots[0]) {
                slots[1]
            } else {
                slots[0]
            };
            session
                .compose(Some(idle))
                .stop_and_remove(ctx, &mode.services, deadline)?;
            session
                .files
                .remove_override(&session.mode.file, Some(idle))?;
            Ok(())
        }
    }
}
