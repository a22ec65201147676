//! The `docker` CLI as `ugw-fetch --image` uses it: every call through shared's runner (argv,
//! no shell, within the step's deadline), with a private `DOCKER_CONFIG` when the registry
//! login comes from the environment, so the password reaches `docker login` on its stdin and
//! a throwaway config folder only, never argv, the operator's own config or the output.

use serde::Deserialize;
use std::collections::HashMap;
use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use ugw_shared::runner::{Input, RunOutcome, RunSpec, run as run_command};
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// How the `docker` CLI is run: with the operator's config, or a private one logged in.
pub(crate) struct Docker {
    /// The private `DOCKER_CONFIG` folder (removed with the `Ctx`, on every exit path).
    config: Option<PathBuf>,
    deadline: Instant,
}

/// What `docker image inspect` says of an image, the parts ugw reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Inspected {
    pub id: String,
    #[serde(default)]
    pub repo_digests: Option<Vec<String>>,
    #[serde(default)]
    pub config: Option<ImageConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ImageConfig {
    #[serde(default)]
    pub labels: Option<HashMap<String, String>>,
}

impl Docker {
    /// The operator's docker config (`DOCKER_CONFIG` or `~/.docker`), as the CLI finds it.
    pub(crate) fn operators(deadline: Instant) -> Self {
        Docker {
            config: None,
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
            config: Some(config.clone()),
            deadline: ctx.step_deadline(),
        };
        let stdin = password_stdin(&config, password)?;
        let mut args = vec!["login", "--username", user, "--password-stdin"];
        args.extend(registry);
        let outcome = run_command(&docker.spec(&args).with_stdin(stdin), &ctx.cancel)?;
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

    fn spec(&self, args: &[&str]) -> RunSpec {
        let spec = RunSpec::argv("docker", args, self.deadline);
        match &self.config {
            Some(config) => spec.with_env("DOCKER_CONFIG", &config.display().to_string()),
            None => spec,
        }
    }

    /// `docker ARGS`, within the step's deadline (or `deadline`, when earlier).
    pub(crate) fn run(
        &self,
        ctx: &Ctx,
        args: &[&str],
        deadline: Option<Instant>,
    ) -> Result<RunOutcome> {
        let mut spec = self.spec(args);
        if let Some(deadline) = deadline {
            spec.deadline = spec.deadline.min(deadline);
        }
        run_command(&spec, &ctx.cancel)
    }

    /// `docker ARGS`, which must succeed: else an error of `kind` saying `what` failed.
    pub(crate) fn must(
        &self,
        ctx: &Ctx,
        args: &[&str],
        kind: ErrorKind,
        what: &str,
    ) -> Result<RunOutcome> {
        let outcome = self.run(ctx, args, None)?;
        if outcome.success() {
            return Ok(outcome);
        }
        Err(Error::new(
            kind,
            format!(
                "{what} failed ({}): {}",
                outcome.describe(),
                ctx.scrubber().scrub_str(outcome.said_excerpt(1000).trim())
            ),
        ))
    }

    /// The local image `reference` names, or `None` when there is none.
    pub(crate) fn inspect(&self, ctx: &Ctx, reference: &str) -> Result<Option<Inspected>> {
        let outcome = self.run(ctx, &["image", "inspect", "--", reference], None)?;
        if !outcome.success() {
            return Ok(None);
        }
        let mut found: Vec<Inspected> = serde_json::from_slice(&outcome.stdout).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("docker image inspect {reference} printed no image JSON ({e})"),
            )
        })?;
        Ok(found.pop())
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

impl Inspected {
    /// Whether its `RepoDigests` hold `digest` for `repo` (Docker Hub names compared in
    /// their short form: `nginx` is `docker.io/library/nginx`).
    pub(crate) fn has_digest(&self, repo: &str, digest: &str) -> bool {
        self.repo_digests.iter().flatten().any(|entry| {
            entry
                .rsplit_once('@')
                .is_some_and(|(r, d)| d == digest && short_repo(r) == short_repo(repo))
        })
    }

    /// A label of its config.
    pub(crate) fn label(&self, name: &str) -> Option<String> {
        self.config
            .as_ref()?
            .labels
            .as_ref()?
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
    }
}

fn short_repo(repo: &str) -> &str {
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    repo.strip_prefix("library/").unwrap_or(repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_digests_are_matched_by_repository_and_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let image: Inspected = serde_json::from_value(serde_json::json!({
            "Id": "sha256:1",
            "RepoDigests": [format!("127.0.0.1:5000/demo@{d}"), format!("nginx@{d}")],
            "Config": {"Labels": {"org.opencontainers.image.version": "1.2"}},
        }))
        .unwrap();
        assert!(image.has_digest("127.0.0.1:5000/demo", &d));
        assert!(image.has_digest("docker.io/library/nginx", &d));
        assert!(!image.has_digest("127.0.0.1:5000/other", &d));
        assert!(!image.has_digest("127.0.0.1:5000/demo", &format!("sha256:{}", "b".repeat(64))));
        assert_eq!(
            image.label("org.opencontainers.image.version").as_deref(),
            Some("1.2")
        );
    }
}
