//! Docker named volumes for `create --volume NAME` and its in-place restore (issue 24): where
//! a volume's contents live on this host (`docker volume inspect`, its mount point, backed up
//! as a path is), and the containers that use it, stopped for an in-place restore and started
//! again afterwards, whether the restore worked or not. Everything goes through the `docker`
//! CLI, so its own configuration (the daemon's socket, `DOCKER_HOST`) applies.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use ugw_shared::cancel::Cancel;
use ugw_shared::docker::Docker;
use ugw_shared::runner;
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// How long starting a stopped container again may take once the step is over (its deadline
/// passed or a signal came): the service must not stay stopped because the restore did not
/// finish, so these starts run on a bound of their own.
const START_AGAIN_LIMIT: Duration = Duration::from_secs(60);

/// A volume's name as Docker accepts it (letters, digits, `_.-`, not first): anything else is
/// refused before it reaches a command line or a filter.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "--volume {name:?}: not a Docker volume name (letters, digits, _ . -)"
        )))
    }
}

/// `docker ARGS`, stopped at `deadline`, its stdout on success; `what` names the job in a
/// failure.
fn docker(args: &[&str], cancel: &Cancel, deadline: Instant, what: &str) -> Result<String> {
    let spec = Docker::cli().spec(args, deadline);
    let outcome = runner::run(&spec, cancel)
        .map_err(|e| Error::new(e.kind, format!("{what}: {}", e.message)))?;
    if outcome.success() {
        return Ok(String::from_utf8_lossy(&outcome.stdout).into_owned());
    }
    Err(Error::new(
        ErrorKind::Refused,
        format!(
            "{what}: docker {} ({})",
            outcome.describe(),
            outcome.said_excerpt(300)
        ),
    ))
}

/// Where the volume's contents are on this host. A volume that does not exist is `not_found`.
pub fn mount_point(ctx: &Ctx, name: &str) -> Result<PathBuf> {
    check_name(name)?;
    let outcome = Docker::cli().run(
        ctx,
        &["volume", "inspect", "--format", "{{.Mountpoint}}", name],
        ctx.step_deadline(),
    )?;
    let said = String::from_utf8_lossy(outcome.said()).to_lowercase();
    if !outcome.success() && said.contains("no such volume") {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "--volume {name}: there is no Docker volume of that name on this host (docker volume ls lists them)"
            ),
        ));
    }
    if !outcome.success() {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "cannot inspect Docker volume {name}: docker {} ({})",
                outcome.describe(),
                outcome.said_excerpt(300)
            ),
        ));
    }
    let path = String::from_utf8_lossy(&outcome.stdout).trim().to_string();
    if !path.starts_with('/') {
        return Err(Error::new(
            ErrorKind::Refused,
            format!(
                "Docker volume {name} has no mount point on this host ({path:?}): its driver keeps it elsewhere"
            ),
        ));
    }
    Ok(PathBuf::from(path))
}

/// The running containers that use the volume (ids).
fn running_users(ctx: &Ctx, name: &str) -> Result<Vec<String>> {
    let filter = format!("volume={name}");
    let out = docker(
        &["ps", "-q", "--no-trunc", "--filter", &filter],
        &ctx.cancel,
        ctx.step_deadline(),
        &format!("cannot list the containers using volume {name}"),
    )?;
    Ok(out.split_whitespace().map(str::to_string).collect())
}

/// The containers ugw stopped for a restore, and the ones it started again.
#[derive(Debug, Default, serde::Serialize)]
pub struct Paused {
    pub stopped: Vec<String>,
    pub started: Vec<String>,
    /// Stopped, but `docker start` failed: said on stderr and in the record.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_started: Vec<String>,
}

/// Stop every running container that uses one of `volumes`; returns what was stopped. A
/// container that cannot be stopped ends it: the ones stopped before it are started again.
pub fn stop_users(ctx: &Ctx, volumes: &[String]) -> Result<Paused> {
    let mut paused = Paused::default();
    for volume in volumes {
        for id in running_users(ctx, volume)? {
            if paused.stopped.contains(&id) {
                continue;
            }
            let what = format!(
                "cannot stop container {} (it uses volume {volume})",
                short(&id)
            );
            if let Err(e) = docker(&["stop", &id], &ctx.cancel, ctx.step_deadline(), &what) {
                start_again(ctx, &mut paused);
                return Err(e);
            }
            ctx.reporter.info(&format!(
                "stopped container {} for the restore (it uses volume {volume})",
                short(&id)
            ));
            paused.stopped.push(id);
        }
    }
    Ok(paused)
}

/// Start again every container [`stop_users`] stopped (whatever became of the restore).
pub fn start_again(ctx: &Ctx, paused: &mut Paused) {
    // A signal must not leave the service stopped: the starts run whatever the cancel says.
    let never = Cancel::default();
    for id in paused.stopped.clone() {
        let what = format!("cannot start container {} again", short(&id));
        match docker(
            &["start", &id],
            &never,
            Instant::now() + START_AGAIN_LIMIT,
            &what,
        ) {
            Ok(_) => {
                ctx.reporter
                    .info(&format!("started container {} again", short(&id)));
                paused.started.push(id);
            }
            Err(e) => {
                ctx.reporter.warn(&e.message);
                paused.not_started.push(id);
            }
        }
    }
}

/// A container id as `docker ps` shows it.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
