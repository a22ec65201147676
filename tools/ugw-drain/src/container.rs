//! `--signal SIG --container NAME`: the signal method for a container's main process. The
//! signal goes through `docker kill --signal`, and `docker wait` waits, within the step's
//! deadline, until the container has exited; its exit code goes into the result. The
//! container is known by its id from the first look on, so one created under the same name
//! meanwhile is never signalled nor waited for.

use crate::signal::{self, Target};
use crate::wait;
use crate::{SignalStop, WaitPlan};
use rustix::process::Signal;
use std::time::Instant;
use ugw_shared::docker::Docker;
use ugw_shared::results::{DrainMethod, Drained};
use ugw_shared::runner::RunOutcome;
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// How much of what docker says goes into a message.
const SAID: usize = 300;

/// A container found by `docker inspect`, by its id.
struct Container {
    name: String,
    id: String,
    /// Its main process's exit code, once `docker wait` said it.
    exit_code: Option<i32>,
}

/// What `docker inspect` says of a container.
struct Inspected {
    id: String,
    running: bool,
    exit_code: Option<i32>,
}

pub(crate) fn stop(ctx: &Ctx, stop: &SignalStop, name: &str, plan: WaitPlan) -> Result<Drained> {
    let inspected = inspect(ctx, name)?;
    let mut drained = wait::blank(DrainMethod::Signal, false);
    drained.container_id = Some(inspected.id.clone());
    if !inspected.running {
        ctx.reporter
            .info(&format!("container {name} is not running: nothing to stop"));
        signal::mark_gone(&mut drained);
        drained.exit_code = inspected.exit_code;
        return Ok(drained);
    }
    let mut container = Container {
        name: name.to_string(),
        id: inspected.id,
        exit_code: None,
    };
    let mut drained = signal::signal_and_wait(ctx, &mut container, stop, plan, drained)?;
    drained.exit_code = container.exit_code;
    Ok(drained)
}

impl Target for Container {
    fn what(&self) -> String {
        format!("container {}", self.name)
    }

    fn send(&self, ctx: &Ctx, _signal: Signal, name: &str) -> Result<bool> {
        let out = docker(
            ctx,
            &["kill", "--signal", name, &self.id],
            ctx.step_deadline(),
        )?;
        if out.success() {
            return Ok(true);
        }
        // It exited between the look and the signal: nothing was sent, nothing to do.
        if !inspect(ctx, &self.id)?.running {
            return Ok(false);
        }
        Err(failed(
            ctx,
            &format!("docker kill --signal {name} {}", self.name),
            &out,
        ))
    }

    fn wait_gone(&mut self, ctx: &Ctx, until: Instant) -> Result<bool> {
        let out = docker(ctx, &["wait", &self.id], until)?;
        if out.ended == ugw_shared::runner::Ended::TimedOut {
            return Ok(false);
        }
        if !out.success() {
            return Err(failed(ctx, &format!("docker wait {}", self.name), &out));
        }
        self.exit_code = String::from_utf8_lossy(&out.stdout).trim().parse().ok();
        Ok(true)
    }
}

/// The container `name` (or id): its id, whether it runs and, once it ran, its exit code.
/// No such container is kind `not_found`: a typo never passes for a stopped service.
fn inspect(ctx: &Ctx, name: &str) -> Result<Inspected> {
    let out = docker(
        ctx,
        &[
            "inspect",
            "--type",
            "container",
            "--format",
            "{{.Id}} {{.State.Running}} {{.State.ExitCode}}",
            name,
        ],
        ctx.step_deadline(),
    )?;
    if !out.success() {
        let said = out.said_excerpt(SAID);
        if said.contains("No such") {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("there is no container {name} (docker: {said})"),
            ));
        }
        return Err(failed(ctx, &format!("docker inspect {name}"), &out));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    let (Some(id), Some(running)) = (words.next(), words.next()) else {
        return Err(failed(ctx, &format!("docker inspect {name}"), &out));
    };
    let running = running == "true";
    Ok(Inspected {
        id: id.to_string(),
        running,
        exit_code: words
            .next()
            .and_then(|code| code.parse().ok())
            .filter(|_| !running),
    })
}

/// `docker ARGS`, stopped at `until` (never past the step's deadline); a signal to ugw-drain
/// stops it too.
fn docker(ctx: &Ctx, args: &[&str], until: Instant) -> Result<RunOutcome> {
    Docker::cli().run(ctx, args, until)
}

/// A docker command that did not do its job: what it said, scrubbed and bounded.
fn failed(ctx: &Ctx, what: &str, out: &RunOutcome) -> Error {
    ugw_shared::docker::failed(ctx, ErrorKind::Io, what, out)
}
