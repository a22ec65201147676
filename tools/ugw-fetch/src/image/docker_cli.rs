//! The `docker` CLI as `ugw-fetch --image` uses it (shared `docker`: argv through the runner,
//! no shell, within the step's deadline), with a private `DOCKER_CONFIG` when the registry
//! login comes from the environment, so the password reaches `docker login` on its stdin and
//! a throwaway config folder only, never argv, the operator's own config or the output.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::sync::Arc;
use std::time::Instant;
use ugw_shared::docker::Docker as Cli;
pub(crate) use ugw_shared::docker::Image as Inspected;
use ugw_shared::runner::{Input, RunOutcome, run as run_command};
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// How the `docker` CLI is run: with the operator's config, or a private one logged in.
pub(crate) struct Docker {
    cli: Cli,
    deadline: Instant,
}

impl Docker {
    /// The operator's docker config (`DOCKER_CONFIG` or `~/.docker`), as the CLI finds it.
    pub(crate) fn operators(deadline: Instant) -> Self {
        Docker {
            cli: Cli::cli(),
            deadline,
        }
    }

    /// A private config folder (0700, removed when the run ends) logged in to `registry`
    /// (`None`: Docker Hub) as `user` with `password`, which goes on `docker login`'s stdin.
    pub(crate) fn logged_in(
        ctx: &mut Ctx,
        registry: Option<&str>,
        user: &str,
        password: &str,
    ) -> Result<Self> {
        ctx.scrubber().add_secret(password);
        let config = std::env::temp_dir().join(format!(
            "ugw-fetch-docker-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        DirBuilder::new()
            .mode(0o700)
            .create(&config)
            .map_err(|e| Error::io(format!("cannot create {}", config.display()), &e))?;
        ctx.track_temp(&config);
        let docker = Docker {
            cli: Cli::with_config(&config),
            deadline: ctx.step_deadline(),
        };
        let stdin = password_stdin(&config, password)?;
        let mut args = vec!["login", "--username", user, "--password-stdin"];
        args.extend(registry);
        let outcome = run_command(
            &docker.cli.spec(&args, docker.deadline).with_stdin(stdin),
            &ctx.cancel,
        )?;
        if !outcome.success() {
            return Err(Error::new(
                ErrorKind::Network,
                format!(
                    "docker login to {} as {user} failed ({}): {}",
                    registry.unwrap_or("Docker Hub"),
                    outcome.describe(),
                    ctx.scrubber().scrub_str(&outcome.said_excerpt(1000))
                ),
            ));
        }
        Ok(docker)
    }

    /// `docker ARGS`, within the step's deadline (or `deadline`, when earlier).
    pub(crate) fn run(
        &self,
        ctx: &Ctx,
        args: &[&str],
        deadline: Option<Instant>,
    ) -> Result<RunOutcome> {
        let deadline = deadline.map_or(self.deadline, |d| d.min(self.deadline));
        self.cli.run(ctx, args, deadline)
    }

    /// `docker ARGS`, which must succeed: else an error of `kind` saying `what` failed.
    pub(crate) fn must(
        &self,
        ctx: &Ctx,
        args: &[&str],
        kind: ErrorKind,
        what: &str,
    ) -> Result<RunOutcome> {
        self.cli.must(ctx, args, self.deadline, kind, what)
    }

    /// The local image `reference` names, or `None` when there is none.
    pub(crate) fn inspect(&self, ctx: &Ctx, reference: &str) -> Result<Option<Inspected>> {
        self.cli.image(ctx, reference, self.deadline)
    }
}

/// The password as a file to read from: written into the private config folder (0600),
/// opened, then unlinked, so it is on disk only inside a 0700 folder, for a moment.
fn password_stdin(config: &std::path::Path, password: &str) -> Result<Input> {
    use std::io::Write;
    let path = config.join(".password");
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .read(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io("cannot write the registry password for docker login", &e))?;
    let written = file.write_all(password.as_bytes());
    let _ = std::fs::remove_file(&path);
    written.map_err(|e| Error::io("cannot write the registry password for docker login", &e))?;
    std::io::Seek::rewind(&mut file)
        .map_err(|e| Error::io("cannot read the registry password back", &e))?;
    Ok(Input::File(Arc::new(file)))
}
