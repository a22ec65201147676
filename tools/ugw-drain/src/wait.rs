//! The wait every method but the signal shares: read the work in flight on a beat until N
//! readings in a row see none, saying on stderr each time the count changes (not each
//! reading), within the step's deadline; and what the deadline then means (`--on-timeout`).

use crate::{OnTimeout, WaitPlan};
use std::time::{Duration, Instant};
use ugw_shared::poll::Backoff;
use ugw_shared::results::{DrainMethod, Drained};
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// A result with nothing done yet.
pub(crate) fn blank(method: DrainMethod, undo: bool) -> Drained {
    Drained {
        method,
        server: None,
        state_before: None,
        state_after: None,
        inflight_start: None,
        inflight_end: None,
        readings: 0,
        waited_ms: 0,
        forced: false,
        changed: false,
        undo,
        escalated: None,
        sockets: Vec::new(),
        states_before: Vec::new(),
        flag_file: None,
        http_post: None,
        pid: None,
        container_id: None,
        exit_code: None,
        inflight_source: None,
    }
}

/// How a wait for zero ended.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Waited {
    pub start: Option<u64>,
    pub end: Option<u64>,
    pub readings: u64,
    /// `zero_readings` readings in a row saw nothing in flight.
    pub zero: bool,
}

impl Waited {
    /// Put what was seen into `drained`.
    pub(crate) fn into_result(self, drained: &mut Drained, since: Instant) {
        drained.inflight_start = self.start;
        drained.inflight_end = self.end;
        drained.readings = self.readings;
        drained.waited_ms = ugw_shared::time::millis(since.elapsed());
    }
}

/// Read with `read` (given the instant its reading must end by) until `plan.zero_readings`
/// readings in a row are zero or the deadline passes. `each_round` runs after every reading
/// that is not zero yet, with the time since `since` (to escalate).
pub(crate) fn until_zero(
    ctx: &Ctx,
    plan: WaitPlan,
    label: &str,
    since: Instant,
    mut read: impl FnMut(Instant) -> Result<u64>,
    mut each_round: impl FnMut(Duration) -> Result<()>,
) -> Result<Waited> {
    let deadline = ctx.step_deadline();
    let mut beat = Backoff::steady(plan.interval).until(deadline);
    let mut waited = Waited::default();
    let mut zeros = 0;
    loop {
        let round = Instant::now();
        if round >= deadline {
            return Ok(waited);
        }
        let count = match read(deadline) {
            Ok(count) => count,
            Err(e) if e.kind == ErrorKind::Timeout && Instant::now() >= deadline => {
                return Ok(waited);
            }
            Err(e) => return Err(e),
        };
        waited.readings += 1;
        waited.start.get_or_insert(count);
        if waited.end != Some(count) {
            ctx.reporter.info(&format!("{label}: {count} in flight"));
        }
        waited.end = Some(count);
        zeros = if count == 0 { zeros + 1 } else { 0 };
        if zeros >= plan.zero_readings {
            waited.zero = true;
            return Ok(waited);
        }
        if count > 0 {
            each_round(since.elapsed())?;
        }
        // The beat counts from the start of the reading, not its end.
        if !beat.sleep_from(round, &ctx.cancel)? {
            return Ok(waited);
        }
    }
}

/// The deadline passed with work still in flight: `proceed` goes on (`"forced": true`),
/// anything else fails with the result so far, leaving the node drained.
pub(crate) fn timed_out(
    ctx: &Ctx,
    plan: WaitPlan,
    mut drained: Drained,
    what: &str,
) -> Result<Drained> {
    let left = drained.inflight_end.unwrap_or(0);
    if plan.on_timeout == OnTimeout::Proceed {
        ctx.reporter.warn(&format!(
            "{what}: {left} still in flight at the deadline; going on (--on-timeout proceed)"
        ));
        drained.forced = true;
        return Ok(drained);
    }
    let message = format!(
        "{what}: {left} still in flight after {}; the node is left out of traffic",
        ugw_shared::time::human(ctx.started.elapsed())
    );
    Err(Error::new(ErrorKind::Timeout, message).with_typed(&drained))
}
