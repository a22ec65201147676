//! The HAProxy method: every instance is read first (a wrong name changes nothing), then set
//! to drain (or maint), the ones already set put back if another refuses; then the wait for
//! `scur + qcur` summed over the instances to be zero, escalating to maint after
//! `--maint-after`. Undo restores the state each instance had before the drain, then waits
//! until HAProxy sees the server fully UP.

use crate::earlier::{self, Episode};
use crate::wait::{self, Waited};
use crate::{Haproxy, WaitPlan};
use std::time::Instant;
use ugw_shared::haproxy::{AdminState, Api, Endpoint, ServerView};
use ugw_shared::poll::Backoff;
use ugw_shared::results::{DrainMethod, Drained};
use ugw_shared::{Ctx, Error, ErrorKind, Result};

struct Target<'a> {
    apis: Vec<Api>,
    backend: &'a str,
    server: &'a str,
}

impl Target<'_> {
    fn name(&self) -> String {
        format!("{}/{}", self.backend, self.server)
    }

    fn views(&self, until: Instant) -> Result<Vec<ServerView>> {
        self.apis
            .iter()
            .map(|api| api.server(self.backend, self.server, until))
            .collect()
    }

    /// The work in flight, summed over the instances; read with the admin state, so that an
    /// instance where the server is no longer drained (HAProxy reloaded without a state file,
    /// someone set it ready) fails the drain instead of reading as done.
    fn in_flight_while_drained(&self, until: Instant) -> Result<u64> {
        let views = self.views(until)?;
        if let Some((api, view)) = self
            .apis
            .iter()
            .zip(&views)
            .find(|(_, v)| v.admin == AdminState::Ready)
        {
            return Err(Error::new(
                ErrorKind::FailCondition,
                format!(
                    "{}: ready again on {} ({}) during the drain: HAProxy was reloaded (runtime \
                     states are lost without 'server-state-file') or someone set it ready; it \
                     takes traffic, so the drain does not hold",
                    self.name(),
                    api.endpoint,
                    view.status
                ),
            ));
        }
        Ok(views.iter().map(ServerView::in_flight).sum())
    }

    /// Set every instance whose state differs to its `wanted` state; if one refuses, put the
    /// ones already changed back to `before` and fail. Whether anything changed.
    fn set_all(
        &self,
        ctx: &Ctx,
        before: &[AdminState],
        wanted: &[AdminState],
        until: Instant,
    ) -> Result<bool> {
        ctx.cancel.critical(|| {
            let mut changed: Vec<usize> = Vec::new();
            for (i, api) in self.apis.iter().enumerate() {
                if before[i] == wanted[i] {
                    continue;
                }
                if let Err(e) = api.set_state(self.backend, self.server, wanted[i], until) {
                    for &j in &changed {
                        let api: &Api = &self.apis[j];
                        if let Err(back) =
                            api.set_state(self.backend, self.server, before[j], until)
                        {
                            ctx.reporter
                                .error(&format!("could not put it back: {back}"));
                        } else {
                            ctx.reporter.info(&format!(
                                "{}: put back to {} on {}",
                                self.name(),
                                before[j].word(),
                                api.endpoint
                            ));
                        }
                    }
                    return Err(put_back_error(e, !changed.is_empty()));
                }
                changed.push(i);
            }
            Ok(!changed.is_empty())
        })
    }
}

/// A refusal after other instances were changed is a failure (exit 1): the usage error of a
/// name that does not exist stays a usage error.
fn put_back_error(e: Error, others_changed: bool) -> Error {
    if others_changed {
        let message = format!(
            "{} (the instances already changed were put back)",
            e.message
        );
        Error { message, ..e }
    } else {
        e
    }
}

fn target<'a>(ctx: &Ctx, haproxy: &'a Haproxy) -> Target<'a> {
    let apis = haproxy
        .sockets
        .iter()
        .map(|s| Api::new(s.clone(), ctx.cancel.clone()))
        .collect();
    Target {
        apis,
        backend: &haproxy.backend,
        server: &haproxy.server,
    }
}

fn result(sockets: &[Endpoint], name: String, before: &[AdminState], undo: bool) -> Drained {
    let mut drained = wait::blank(DrainMethod::Haproxy, undo);
    drained.server = Some(name);
    // Each socket by its canonical path or address: what an undo matches it by.
    drained.sockets = sockets.iter().map(earlier::socket_identity).collect();
    drained.states_before = before.iter().map(|s| s.word().to_string()).collect();
    drained.state_before = before.first().map(|s| s.word().to_string());
    drained.inflight_source = Some("haproxy scur+qcur".to_string());
    drained
}

pub(crate) fn drain(ctx: &Ctx, haproxy: &Haproxy, plan: WaitPlan) -> Result<Drained> {
    let target = target(ctx, haproxy);
    let (sockets, state, maint_after) = (&haproxy.sockets, haproxy.state, haproxy.maint_after);
    let deadline = ctx.step_deadline();
    let views = target.views(deadline)?;
    let before: Vec<AdminState> = views.iter().map(|v| v.admin).collect();
    let mut drained = result(sockets, target.name(), &before, false);
    let in_flight: u64 = views.iter().map(ServerView::in_flight).sum();
    drained.inflight_start = Some(in_flight);
    drained.inflight_end = Some(in_flight);
    drained.readings = 1;
    if ctx.dry_run {
        drained.state_after.clone_from(&drained.state_before);
        ctx.reporter.info(&format!(
            "{}: {} ({}), {in_flight} in flight; would set {}",
            target.name(),
            drained.state_before.as_deref().unwrap_or("?"),
            views.first().map_or("", |v| v.status.as_str()),
            state.word()
        ));
        return Ok(drained);
    }
    warn_state_file(ctx, &drained.sockets)?;
    let since = Instant::now();
    // An instance already in maint stays there: drain would let sticky clients back in.
    let drain_to: Vec<AdminState> = before
        .iter()
        .map(|&b| if b == AdminState::Maint { b } else { state })
        .collect();
    drained.changed = target
        .set_all(ctx, &before, &drain_to, deadline)
        .map_err(|e| e.with_typed(&drained))?;
    drained.state_after = Some(state.word().to_string());
    ctx.reporter.info(&format!(
        "{}: {} on {} instance(s)",
        target.name(),
        state.word(),
        before.len()
    ));
    let mut escalated = false;
    let waited: Waited = wait::until_zero(
        ctx,
        plan,
        &target.name(),
        since,
        |until| target.in_flight_while_drained(until),
        |elapsed| {
            if escalated
                || state == AdminState::Maint
                || maint_after.is_none_or(|after| elapsed < after)
            {
                return Ok(());
            }
            escalated = true;
            let maint = vec![AdminState::Maint; before.len()];
            target.set_all(ctx, &drain_to, &maint, deadline)?;
            ctx.reporter.info(&format!(
                "{}: still busy after --maint-after: set to maint",
                target.name()
            ));
            Ok(())
        },
    )
    .map_err(|e| e.with_typed(&drained))?;
    waited.into_result(&mut drained, since);
    if escalated {
        drained.escalated = Some("maint".to_string());
        drained.state_after = Some("maint".to_string());
    }
    if waited.zero {
        ctx.reporter.info(&format!("{}: drained", target.name()));
        Ok(drained)
    } else {
        wait::timed_out(ctx, plan, drained, &target.name())
    }
}

pub(crate) fn undo(ctx: &Ctx, haproxy: &Haproxy, plan: WaitPlan) -> Result<Drained> {
    let target = target(ctx, haproxy);
    let sockets = &haproxy.sockets;
    let deadline = ctx.step_deadline();
    let Some(restore) = states_to_restore(ctx, sockets, &target.name())? else {
        return Ok(crate::undone_already(ctx, DrainMethod::Haproxy));
    };
    let views = target.views(deadline)?;
    let now: Vec<AdminState> = views.iter().map(|v| v.admin).collect();
    // An instance whose drain was undone already keeps the state it has now.
    let restore: Vec<AdminState> = restore
        .iter()
        .zip(&now)
        .map(|(r, n)| r.unwrap_or(*n))
        .collect();
    let mut drained = result(sockets, target.name(), &now, true);
    drained.state_after = restore.first().map(|s| s.word().to_string());
    if ctx.dry_run {
        ctx.reporter.info(&format!(
            "{}: {} ({}); would restore {}",
            target.name(),
            drained.state_before.as_deref().unwrap_or("?"),
            views.first().map_or("", |v| v.status.as_str()),
            drained.state_after.as_deref().unwrap_or("?")
        ));
        return Ok(drained);
    }
    let since = Instant::now();
    drained.changed = target.set_all(ctx, &now, &restore, deadline)?;
    // Each instance waited for only when it was put back to ready: one drained before the
    // drain stays drained, and is not expected UP.
    let mut readings = 0;
    let mut beat = Backoff::steady(plan.interval).until(deadline);
    loop {
        let views = target.views(deadline)?;
        readings += 1;
        let up = views
            .iter()
            .zip(&restore)
            .all(|(v, r)| *r != AdminState::Ready || v.healthy_and_ready());
        if up {
            break;
        }
        if Instant::now() >= deadline {
            drained.readings = readings;
            drained.waited_ms = ugw_shared::time::millis(since.elapsed());
            let statuses: Vec<&str> = views.iter().map(|v| v.status.as_str()).collect();
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{}: put back, but HAProxy does not see it UP by the deadline ({})",
                    target.name(),
                    statuses.join(", ")
                ),
            )
            .with_typed(&drained));
        }
        // At the deadline it reads once more, and fails above if it is still not UP.
        beat.sleep(&ctx.cancel)?;
    }
    drained.readings = readings;
    drained.waited_ms = ugw_shared::time::millis(since.elapsed());
    ctx.reporter.info(&format!(
        "{}: back to {} and UP",
        target.name(),
        drained.state_after.as_deref().unwrap_or("ready")
    ));
    Ok(drained)
}

/// What each instance was before this run's drain of this server on it (`None` for one whose
/// drain was undone already); `ready`, with a warning, for an instance this run did not drain
/// when it drained the server on another. `Ok(None)`: every drain of it was undone already. A
/// record whose drains name only other servers or sockets, or another run or host, is refused.
fn states_to_restore(
    ctx: &Ctx,
    sockets: &[Endpoint],
    name: &str,
) -> Result<Option<Vec<Option<AdminState>>>> {
    let counted = earlier::counted(ctx)?;
    let identities: Vec<String> = sockets.iter().map(earlier::socket_identity).collect();
    let episodes = identities
        .iter()
        .map(|socket| earlier::haproxy_state(&counted, name, socket))
        .collect::<Result<Vec<_>>>()?;
    if episodes.iter().all(|e| *e == Episode::Unknown) {
        earlier::refuse_unmatched(
            ctx,
            &counted,
            &format!("{name} on {}", identities.join(", ")),
        )?;
    } else if !episodes.iter().any(|e| matches!(e, Episode::Open(_))) {
        return Ok(None);
    }
    Ok(Some(
        episodes
            .into_iter()
            .zip(&identities)
            .map(|(episode, socket)| match episode {
                Episode::Open(state) => Some(state),
                Episode::Closed => None,
                Episode::Unknown => {
                    ctx.reporter.warn(&format!(
                        "no earlier drain of {name} on {socket} in this run: putting it back to ready"
                    ));
                    Some(AdminState::Ready)
                }
            })
            .collect(),
    ))
}

/// HAProxy forgets runtime server states on reload unless its configuration keeps them: said
/// once per socket in a run (the first drain through it), not on every drain.
fn warn_state_file(ctx: &Ctx, sockets: &[String]) -> Result<()> {
    let counted = earlier::counted(ctx)?;
    let new: Vec<&str> = sockets
        .iter()
        .map(String::as_str)
        .filter(|socket| !earlier::through_socket(&counted, socket))
        .collect();
    if !new.is_empty() {
        ctx.reporter.warn(&format!(
            "HAProxy forgets runtime server states on reload unless haproxy.cfg has \
             'server-state-file' and 'load-server-state-from-file' ({}); a drain that a reload \
             undoes fails",
            new.join(", ")
        ));
    }
    Ok(())
}
