//! The `docker` CLI as every tool runs it (issue 24: `ugw-fetch --image`, `ugw-swap
//! --compose`, `ugw-migrate up --from-image`, `ugw-backup create --volume`, `ugw-drain
//! --container`): argv through the runner (no shell), never past the step's deadline, a signal
//! to the tool stops it, and a failure quoted in one shape (what failed, how it ended, what
//! docker said, scrubbed and bounded). The CLI, not the Engine API, so that the operator's own
//! configuration applies as it does to their scripts: `DOCKER_HOST`, contexts, credential
//! helpers.
//!
//! Also the one reading of `docker image inspect` the tools check a digest against: an image
//! is the one a step verified when its `RepoDigests` hold that repository and digest.

use crate::ctx::Ctx;
use crate::error::{Error, ErrorKind, Result};
use crate::runner::{RunOutcome, RunSpec, run};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How much of what docker said a message quotes.
const SAID: usize = 600;

/// The `docker` CLI: with the operator's configuration, or a private `DOCKER_CONFIG` folder.
#[derive(Debug, Clone, Default)]
pub struct Docker {
    config: Option<PathBuf>,
}

/// What `docker image inspect` says of an image, the parts ugw reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Image {
    /// The image id (`sha256:…` of its config).
    pub id: String,
    #[serde(default)]
    pub repo_digests: Option<Vec<String>>,
    #[serde(default)]
    pub config: Option<ImageConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default)]
    pub labels: Option<HashMap<String, String>>,
}

impl Docker {
    /// The CLI with the operator's configuration (`DOCKER_CONFIG` or `~/.docker`).
    #[must_use]
    pub fn cli() -> Self {
        Docker::default()
    }

    /// The CLI with `DOCKER_CONFIG` set to `folder` (a private login: `ugw-fetch
    /// --registry-login-env`).
    #[must_use]
    pub fn with_config(folder: &Path) -> Self {
        Docker {
            config: Some(folder.to_path_buf()),
        }
    }

    /// The command line `docker ARGS` would run, stopped at `deadline`.
    #[must_use]
    pub fn spec(&self, args: &[&str], deadline: Instant) -> RunSpec {
        let spec = RunSpec::argv("docker", args, deadline);
        match &self.config {
            Some(config) => spec.with_env("DOCKER_CONFIG", &config.display().to_string()),
            None => spec,
        }
    }

    /// `docker ARGS`, stopped at `deadline` or the step's, whichever comes first. How it
    /// ended is the caller's to judge; only a command that could not start is an error.
    pub fn run(&self, ctx: &Ctx, args: &[&str], deadline: Instant) -> Result<RunOutcome> {
        run(
            &self.spec(args, deadline.min(ctx.step_deadline())),
            &ctx.cancel,
        )
    }

    /// `docker ARGS`, which must succeed: else an error of `kind` saying `what` failed and why.
    pub fn must(
        &self,
        ctx: &Ctx,
        args: &[&str],
        deadline: Instant,
        kind: ErrorKind,
        what: &str,
    ) -> Result<RunOutcome> {
        let outcome = self.run(ctx, args, deadline)?;
        if outcome.success() {
            Ok(outcome)
        } else {
            Err(failed(ctx, kind, what, &outcome))
        }
    }

    /// `docker ARGS`'s stdout, trimmed; a failure is an `io` error naming the command.
    pub fn text(&self, ctx: &Ctx, args: &[&str], deadline: Instant) -> Result<String> {
        let what = format!("docker {}", args.join(" "));
        let outcome = self.must(ctx, args, deadline, ErrorKind::Io, &what)?;
        Ok(String::from_utf8_lossy(&outcome.stdout).trim().to_string())
    }

    /// The local image `reference` names, or `None` when there is none here.
    pub fn image(&self, ctx: &Ctx, reference: &str, deadline: Instant) -> Result<Option<Image>> {
        let outcome = self.run(ctx, &["image", "inspect", "--", reference], deadline)?;
        if !outcome.success() {
            return Ok(None);
        }
        parse_inspect(&outcome.stdout)
            .map_err(|why| {
                Error::new(
                    ErrorKind::Io,
                    format!("docker image inspect {reference} printed no image JSON ({why})"),
                )
            })
            .map(|mut found| found.pop())
    }
}

/// A docker command that did not do its job, in one shape for every tool.
#[must_use]
pub fn failed(ctx: &Ctx, kind: ErrorKind, what: &str, outcome: &RunOutcome) -> Error {
    Error::new(
        kind,
        format!(
            "{what} failed ({}): {}",
            outcome.describe(),
            ctx.scrubber().scrub_str(outcome.said_excerpt(SAID).trim())
        ),
    )
}

fn parse_inspect(bytes: &[u8]) -> std::result::Result<Vec<Image>, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

impl Image {
    /// Whether its `RepoDigests` hold `digest` for `repo`: the image is the one pushed under
    /// that digest, whatever tag points at it now. Docker Hub names compare in their short
    /// form (`nginx` is `docker.io/library/nginx`).
    #[must_use]
    pub fn has_digest(&self, repo: &str, digest: &str) -> bool {
        self.repo_digests.iter().flatten().any(|entry| {
            entry
                .rsplit_once('@')
                .is_some_and(|(r, d)| d == digest && short_repo(r) == short_repo(repo))
        })
    }

    /// A label of its config, when set and not empty.
    #[must_use]
    pub fn label(&self, name: &str) -> Option<String> {
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

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn image(repo_digests: &serde_json::Value) -> Image {
        let text = serde_json::json!([{
            "Id": "sha256:1",
            "RepoDigests": repo_digests,
            "Config": {"Labels": {"org.opencontainers.image.version": "1.2", "empty": ""}},
        }]);
        parse_inspect(text.to_string().as_bytes())
            .unwrap()
            .pop()
            .unwrap()
    }

    #[test]
    fn repo_digests_are_matched_by_repository_and_digest() {
        let d = digest('a');
        let image = image(&serde_json::json!([
            format!("127.0.0.1:5000/demo@{d}"),
            format!("nginx@{d}")
        ]));
        assert!(image.has_digest("127.0.0.1:5000/demo", &d));
        assert!(image.has_digest("docker.io/library/nginx", &d));
        assert!(!image.has_digest("127.0.0.1:5000/other", &d));
        assert!(!image.has_digest("127.0.0.1:5000/demo", &digest('b')));
    }

    #[test]
    fn an_image_never_pushed_has_no_digest_at_all() {
        let image = image(&serde_json::Value::Null);
        assert!(!image.has_digest("127.0.0.1:5000/demo", &digest('a')));
    }

    #[test]
    fn labels_are_read_and_an_empty_one_is_none() {
        let image = image(&serde_json::json!([]));
        assert_eq!(
            image.label("org.opencontainers.image.version").as_deref(),
            Some("1.2")
        );
        assert_eq!(image.label("empty"), None);
        assert_eq!(image.label("absent"), None);
    }

    #[test]
    fn inspect_output_that_is_not_a_list_of_images_is_an_error() {
        assert!(parse_inspect(b"Error: No such image").is_err());
        assert!(parse_inspect(b"{}").is_err());
        assert!(parse_inspect(b"[]").unwrap().is_empty());
    }
}
