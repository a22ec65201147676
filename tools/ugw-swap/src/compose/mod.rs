//! `--compose FILE --service NAME`: a Docker Compose service switched to an image pinned by
//! digest, the pin taken from this run's own `ugw-fetch --image` step (or `--image
//! REPO@sha256:...`), written into an override file ugw owns (see `pin`), then `up -d
//! --no-deps SERVICE`. stop-first: the container is recreated in place. start-first: two
//! slots (ports) as two Compose projects, PROJECT-PORT, each running SERVICE with its port in
//! `--port-env`; the new one starts on the idle slot, and only once it is healthy is the old
//! one drained (`--drain-cmd`, then `--drain-grace` for the balancer's own health check to see
//! it go) and stopped. A restart that fails switches the pin back.

mod docker;
mod drain;
mod health;
mod images;
mod inputs;
mod interrupted;
mod pin;

use crate::this_run::nothing_to_take_back;
use crate::{Options, restart_failed};
use docker::{Compose, find_compose};
use health::{HealthPlan, wait_healthy};
pub(crate) use inputs::check_input_file;
use pin::{PinFiles, Pins, check_reference, repository};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use ugw_shared::record::Status;
use ugw_shared::results::{ComposeSwap, FetchedImage, RestartRun, Swapped};
use ugw_shared::{Ctx, Error, ErrorKind, Result, lock};

/// How the old container makes way for the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Compose's own: the old container stops, the new one starts.
    StopFirst,
    /// The new one starts on the idle slot and must be healthy before the old one stops.
    StartFirst { port_env: String, slots: [u16; 2] },
}

/// Compose mode (`--compose`): what only it reads.
#[derive(Debug, Clone)]
pub(crate) struct ComposeMode {
    /// The Compose file, absolute.
    pub file: PathBuf,
    pub project: String,
    pub services: Vec<String>,
    pub env_file: Option<PathBuf>,
    /// `--image REPO@sha256:...`, in place of the fetch step's.
    pub image: Option<String>,
    pub strategy: Strategy,
    /// `--restart-check URL` (`{port}`: the slot's port).
    pub restart_check: Option<String>,
    pub alive_for: Duration,
    pub drain_cmd: Option<String>,
    pub drain_grace: Duration,
    /// `--keep N`, when given: prune the repository's images.
    pub keep: Option<usize>,
}

/// The project name Compose v1 would derive from a folder: lower case, letters, digits, `-`
/// and `_` only.
pub(crate) fn default_project(file: &Path) -> String {
    let folder = file
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    folder
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// Everything one invocation works with.
struct Session<'a> {
    options: &'a Options,
    mode: &'a ComposeMode,
    files: PinFiles,
    program: Vec<String>,
}

impl Session<'_> {
    /// A step's commands end with `--restart-timeout` (and the step's own deadline).
    fn deadline(&self, ctx: &Ctx) -> Instant {
        let own = Instant::now() + self.options.restart_timeout;
        ctx.deadline().map_or(own, |d| d.min(own))
    }

    /// Compose for the project (stop-first) or one slot's project (start-first).
    fn compose(&self, slot: Option<u16>) -> Compose {
        let project = match slot {
            None => self.mode.project.clone(),
            Some(port) => format!("{}-{port}", self.mode.project),
        };
        let compose = Compose::new(
            self.program.clone(),
            &self.mode.file,
            &self.files.override_file(slot),
            &project,
            self.mode.env_file.as_deref(),
        );
        match (&self.mode.strategy, slot) {
            (Strategy::StartFirst { port_env, .. }, Some(port)) => {
                compose.with_env(port_env, &port.to_string())
            }
            _ => compose,
        }
    }

    /// A swap step of this file, project and set of services (in any order): another
    /// unit's swap in the same project is never this one's to take back.
    fn ours(&self, r: &Swapped) -> bool {
        let set = |services: &[String]| {
            let mut sorted = services.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            sorted
        };
        r.mode == "compose"
            && r.compose.as_ref().is_some_and(|c| {
                Path::new(&c.file) == self.mode.file
                    && c.project == self.mode.project
                    && set(&c.services) == set(&self.mode.services)
            })
    }
}

/// Compose mode: swap, roll back, or `status`.
pub(crate) fn run_compose(ctx: &mut Ctx, options: &Options, mode: &ComposeMode) -> Result<Swapped> {
    let session = Session {
        options,
        mode,
        files: PinFiles::new(&mode.file, &mode.project, &mode.services),
        program: find_compose(ctx)?,
    };
    let mut result = Swapped {
        mode: "compose".into(),
        target: Some(mode.file.display().to_string()),
        compose: Some(ComposeSwap {
            file: mode.file.display().to_string(),
            project: mode.project.clone(),
            services: mode.services.clone(),
            strategy: match mode.strategy {
                Strategy::StopFirst => "stop-first".into(),
                Strategy::StartFirst { .. } => "start-first".into(),
            },
            ..ComposeSwap::default()
        }),
        ..Swapped::default()
    };
    session.files.refuse_planted(&mode.strategy.slots())?;
    if options.status {
        return status(ctx, &session, result);
    }
    let _lock = if ctx.dry_run {
        None
    } else {
        std::fs::create_dir_all(session.files.dir()).map_err(|e| {
            Error::io(
                format!("cannot create {}", session.files.dir().display()),
                &e,
            )
        })?;
        Some(lock::acquire(
            &session.files.lock_file(),
            options.lock_timeout,
            &ctx.cancel,
            &ctx.host,
            &ctx.tool,
        )?)
    };
    let pins = session.files.load()?;
    result.previous.clone_from(&pins.current);
    if options.rollback {
        let base = result.clone();
        return interrupted::taken_back_on_signal(ctx, &session, &pins, base, |ctx| {
            rollback(ctx, &session, &pins, result)
        });
    }
    let image = pin_to(ctx, mode)?;
    if pins.current.as_deref() == Some(image.as_str()) && running(ctx, &session, pins.slot)? {
        ctx.reporter.info(&format!(
            "{} already runs {image}; nothing to do",
            mode.services.join(", ")
        ));
        result.current = Some(image);
        set_containers(ctx, &session, pins.slot, &mut result)?;
        return Ok(result);
    }
    if ctx.dry_run {
        result.would = Some(format!(
            "pin {} to {image}, then up -d --no-deps",
            mode.services.join(", ")
        ));
        result.current = Some(image);
        return Ok(result);
    }
    let base = result.clone();
    interrupted::taken_back_on_signal(ctx, &session, &pins, base, |ctx| {
        switch(ctx, &session, &pins, &image, result)
    })
}

/// The image to pin: `--image`, else this run's own `ugw-fetch --image` step's (never a step
/// of another run or host: the trust rule).
fn pin_to(ctx: &Ctx, mode: &ComposeMode) -> Result<String> {
    if let Some(image) = &mode.image {
        check_reference(image).map_err(Error::usage)?;
        return Ok(image.clone());
    }
    let this_run = ctx.this_run();
    let fetched = this_run.last_result::<FetchedImage>().map_err(|_| {
        Error::usage("the last ugw-fetch step of this run fetched no image (--image); give --image REPO@sha256:...")
    })?;
    let Some(fetched) = fetched else {
        let why = this_run
            .left_out("ugw-fetch")
            .map_or_else(String::new, |why| format!(" ({why})"));
        return Err(Error::usage(format!(
            "no --image, and no ugw-fetch --image step of this run to take the digest from{why}"
        )));
    };
    check_reference(&fetched.reference)
        .map_err(|why| Error::bad_record(format!("the ugw-fetch step's reference: {why}")))?;
    // The pin is the reference: it must be the image and digest the fetch checked, not
    // another image that merely ends in the same digest.
    let pinned = format!("{}@{}", fetched.image, fetched.digest);
    if fetched.reference != pinned {
        return Err(Error::bad_record(format!(
            "the ugw-fetch step's reference {} is not its image and digest ({pinned})",
            fetched.reference
        )));
    }
    Ok(fetched.reference)
}

/// Whether every service has a running container (in the live slot's project).
fn running(ctx: &Ctx, session: &Session<'_>, slot: Option<u16>) -> Result<bool> {
    let slot = match session.mode.strategy {
        Strategy::StopFirst => None,
        Strategy::StartFirst { .. } => match slot {
            Some(port) => Some(port),
            None => return Ok(false),
        },
    };
    let compose = session.compose(slot);
    let deadline = session.deadline(ctx);
    for service in &session.mode.services {
        let ids = compose.containers(ctx, service, deadline)?;
        let Some(id) = ids.first() else {
            return Ok(false);
        };
        let state = docker::docker(
            ctx,
            &["inspect", "--format", "{{.State.Running}}", id],
            deadline,
        )?;
        if state != "true" {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The names of the services' containers in `slot`'s project, into the result.
fn set_containers(
    ctx: &Ctx,
    session: &Session<'_>,
    slot: Option<u16>,
    result: &mut Swapped,
) -> Result<()> {
    let slot = match session.mode.strategy {
        Strategy::StopFirst => None,
        Strategy::StartFirst { .. } => slot,
    };
    let compose = session.compose(slot);
    let deadline = session.deadline(ctx);
    let mut names = Vec::new();
    if slot.is_some() || session.mode.strategy == Strategy::StopFirst {
        for service in &session.mode.services {
            names.extend(
                compose
                    .containers_named(ctx, service, deadline)?
                    .into_iter()
                    .map(|(_, name)| name),
            );
        }
    }
    if let Some(c) = result.compose.as_mut() {
        c.containers = names;
        c.slot = slot;
    }
    Ok(())
}

/// Pin `image` and bring it up with the mode's strategy; on success the pins move on
/// (`previous` is what was current) and `--keep` prunes.
fn switch(
    ctx: &Ctx,
    session: &Session<'_>,
    pins: &Pins,
    image: &str,
    mut result: Swapped,
) -> Result<Swapped> {
    let slot = match &session.mode.strategy {
        Strategy::StopFirst => {
            stop_first(ctx, session, pins, image, &mut result)?;
            None
        }
        Strategy::StartFirst { slots, .. } => {
            Some(start_first(ctx, session, pins, *slots, image, &mut result)?)
        }
    };
    let moved = Pins {
        current: Some(image.to_string()),
        previous: pins.current.clone(),
        slot,
    };
    session.files.save(&moved)?;
    set_containers(ctx, session, slot, &mut result)?;
    if let Some(keep) = session.mode.keep {
        // Every unit's current and previous: two services of one repository share images.
        let pinned = session.files.pinned_anywhere()?;
        let protect: Vec<&str> = pinned.iter().map(String::as_str).collect();
        let removed = images::prune(
            ctx,
            repository(image),
            keep,
            &protect,
            session.deadline(ctx),
        )?;
        if !removed.is_empty() {
            ctx.reporter.info(&format!(
                "--keep {keep}: removed {} older image(s): {}",
                removed.len(),
                removed.join(", ")
            ));
        }
        if let Some(c) = result.compose.as_mut() {
            c.removed_images = removed;
        }
    }
    Ok(result)
}

/// `up -d --no-deps SERVICE...` in `compose`'s project, then every service's container
/// judged healthy: one restart run for the record.
fn up_and_wait(
    ctx: &Ctx,
    session: &Session<'_>,
    compose: &Compose,
    port: Option<u16>,
    phase: &str,
) -> Result<RestartRun> {
    let began = Instant::now();
    let deadline = session.deadline(ctx);
    ctx.reporter.info(&format!(
        "restarting ({phase}): {} up -d --no-deps {} (project {})",
        session.program.join(" "),
        session.mode.services.join(" "),
        compose.project()
    ));
    let mut args = vec!["up", "-d", "--no-deps"];
    args.extend(session.mode.services.iter().map(String::as_str));
    let judged = match compose.run(ctx, &args, deadline) {
        Err(e) if e.kind == ErrorKind::Interrupted => return Err(e),
        Err(e) => Err(e.message),
        Ok(_) => judge_services(ctx, session, compose, port, deadline)?,
    };
    let (ok, outcome) = match judged {
        Ok(()) => (true, "healthy".to_string()),
        Err(why) => (false, why),
    };
    if !ok {
        ctx.reporter
            .warn(&format!("the restart ({phase}) failed: {outcome}"));
    }
    Ok(RestartRun {
        phase: phase.to_string(),
        ok,
        outcome,
        exit: None,
        elapsed_ms: ugw_shared::time::millis(began.elapsed()),
        output: String::new(),
    })
}

/// Every service's container healthy (`health`), or why one is not.
fn judge_services(
    ctx: &Ctx,
    session: &Session<'_>,
    compose: &Compose,
    port: Option<u16>,
    deadline: Instant,
) -> Result<std::result::Result<(), String>> {
    let plan = HealthPlan {
        url: session.mode.restart_check.as_ref().map(|url| match port {
            Some(port) => url.replace("{port}", &port.to_string()),
            None => url.clone(),
        }),
        alive_for: session.mode.alive_for,
        deadline,
    };
    for service in &session.mode.services {
        let ids = compose.containers(ctx, service, deadline)?;
        let Some(id) = ids.first() else {
            return Ok(Err(format!("{service} has no container after up")));
        };
        if let Err(why) = wait_healthy(ctx, id, &plan)? {
            return Ok(Err(format!("{service}: {why}")));
        }
    }
    Ok(Ok(()))
}

/// stop-first: recreate the services on `image`; a failed restart pins the image before
/// again and brings it back up.
fn stop_first(
    ctx: &Ctx,
    session: &Session<'_>,
    pins: &Pins,
    image: &str,
    result: &mut Swapped,
) -> Result<()> {
    let mode = session.mode;
    session
        .files
        .write_override(&mode.file, &mode.services, image, None)?;
    ugw_shared::failpoint::hit("compose.after-pin-write");
    result.current = Some(image.to_string());
    result.changed = true;
    ctx.reporter
        .info(&format!("pinned {} to {image}", mode.services.join(", ")));
    let compose = session.compose(None);
    let first =
        up_and_wait(ctx, session, &compose, None, "after_switch").map_err(|e| carry(e, result))?;
    let ok = first.ok;
    result.restarts.push(first);
    result.restarted = ok;
    if ok {
        return Ok(());
    }
    result.marked_failed = Some(image.to_string());
    let Some(before) = pins.current.as_deref() else {
        // Nothing to go back to: the failed containers are stopped, the pin removed.
        compose.stop_and_remove(ctx, &mode.services, session.deadline(ctx))?;
        session.files.remove_override(&session.mode.file, None)?;
        result.current = None;
        return Err(restart_failed(result, None));
    };
    session
        .files
        .write_override(&mode.file, &mode.services, before, None)?;
    result.current = Some(before.to_string());
    let again =
        up_and_wait(ctx, session, &compose, None, "after_revert").map_err(|e| carry(e, result))?;
    result.restarts.push(again);
    Err(restart_failed(result, Some(before)))
}

/// start-first: `image` on the idle slot; once healthy, the old slot is drained and stopped.
/// A new container that is not healthy is removed, and the old one never stopped. Returns the
/// slot now live.
fn start_first(
    ctx: &Ctx,
    session: &Session<'_>,
    pins: &Pins,
    slots: [u16; 2],
    image: &str,
    result: &mut Swapped,
) -> Result<u16> {
    let mode = session.mode;
    let Strategy::StartFirst { port_env, .. } = &mode.strategy else {
        return Err(Error::new(
            ErrorKind::Internal,
            "start_first without --strategy start-first",
        ));
    };
    let live = pins.slot.filter(|s| slots.contains(s));
    let idle = if live == Some(slots[0]) {
        slots[1]
    } else {
        slots[0]
    };
    session
        .files
        .write_override(&mode.file, &mode.services, image, Some((port_env, idle)))?;
    ugw_shared::failpoint::hit("compose.after-pin-write");
    result.current = Some(image.to_string());
    result.changed = true;
    ctx.reporter.info(&format!(
        "pinned {} to {image} on slot {idle}{}",
        mode.services.join(", "),
        live.map_or_else(String::new, |l| format!(" (slot {l} keeps serving)"))
    ));
    let new = session.compose(Some(idle));
    let first = up_and_wait(ctx, session, &new, Some(idle), "after_switch")
        .map_err(|e| carry(e, result))?;
    let ok = first.ok;
    result.restarts.push(first);
    result.restarted = ok;
    if !ok {
        new.stop_and_remove(ctx, &mode.services, session.deadline(ctx))?;
        session
            .files
            .remove_override(&session.mode.file, Some(idle))?;
        result.marked_failed = Some(image.to_string());
        result.current.clone_from(&pins.current);
        return Err(match &pins.current {
            Some(before) => restart_failed(
                result,
                Some(&format!(
                    "{before} (slot {}, never stopped)",
                    live.unwrap_or(idle)
                )),
            ),
            None => restart_failed(result, None),
        });
    }
    if let Some(old) = live {
        if let Err(why) = drain::drain(ctx, session, old, idle)? {
            return Err(drain::taken_back(
                ctx,
                session,
                pins,
                (old, idle),
                &why,
                result,
            ));
        }
        session
            .compose(Some(old))
            .stop_and_remove(ctx, &mode.services, session.deadline(ctx))?;
        ctx.reporter
            .info(&format!("slot {old} stopped; slot {idle} serves"));
    }
    Ok(idle)
}

/// An error that cut a restart short carries what was switched already.
fn carry(e: Error, result: &Swapped) -> Error {
    match e.result {
        Some(_) => e,
        None => e.with_typed(result),
    }
}

/// `--rollback`: back to the previous image of this run's own swap step (a rollback by hand,
/// on a record with no failure: the pin before, from ugw's pin file), never to a digest
/// another run's or host's step names.
fn rollback(ctx: &Ctx, session: &Session<'_>, pins: &Pins, mut result: Swapped) -> Result<Swapped> {
    result.rollback = true;
    let place = format!(
        "{} (project {})",
        session.mode.file.display(),
        session.mode.project
    );
    if let Some(why) = nothing_to_take_back(ctx, |r| session.ours(r), &place) {
        result.current.clone_from(&pins.current);
        ctx.reporter.info(&why);
        return Ok(result);
    }
    let recorded = ctx
        .this_run()
        .results_newest_first::<Swapped>()
        .into_iter()
        .find(|(status, r)| {
            matches!(status, Status::Ok | Status::Interrupted | Status::Failed) && session.ours(r)
        })
        .map(|(_, r)| r);
    let target = match &recorded {
        Some(step) => step.previous.clone(),
        None => pins.previous.clone(),
    };
    let Some(target) = target else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no image before the current one of {place}; nothing to roll back to"),
        ));
    };
    check_reference(&target).map_err(|why| {
        Error::bad_record(format!(
            "this run's ugw-swap step names the previous image {why}; refusing to follow it"
        ))
    })?;
    let leaving = pins.current.clone();
    if ctx.dry_run {
        result.would = Some(format!(
            "pin {} back to {target}",
            session.mode.services.join(", ")
        ));
        result.current = Some(target);
        return Ok(result);
    }
    let mut result = switch(ctx, session, pins, &target, result)?;
    result.marked_failed = leaving;
    ctx.reporter.info(&format!("rolled back to {target}"));
    Ok(result)
}

/// `status`: the current and previous pins and the containers, on stderr and in the record.
fn status(ctx: &Ctx, session: &Session<'_>, mut result: Swapped) -> Result<Swapped> {
    let pins = session.files.load()?;
    result.current.clone_from(&pins.current);
    result.previous.clone_from(&pins.previous);
    set_containers(ctx, session, pins.slot, &mut result)?;
    let containers = result
        .compose
        .as_ref()
        .map(|c| c.containers.join(", "))
        .unwrap_or_default();
    ctx.reporter.block(&format!(
        "current:    {}\nprevious:   {}\ncontainers: {}{}",
        pins.current.as_deref().unwrap_or("(none pinned)"),
        pins.previous.as_deref().unwrap_or("(none)"),
        if containers.is_empty() {
            "(none)"
        } else {
            &containers
        },
        pins.slot
            .map_or_else(String::new, |s| format!("\nslot:       {s}"))
    ));
    Ok(result)
}
