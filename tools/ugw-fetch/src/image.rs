//! `ugw-fetch --image REF` (issue 24): a container image is one more kind of release. It is
//! pulled through the `docker` CLI and fails closed as a file does: the digest it must have
//! comes from REF (`repo@sha256:…`), `--digest`, or a checksum list (`DIGEST  repo:tag`
//! lines, minisign-signed or not), and after the pull the image's `RepoDigests` must hold it;
//! an image that does not is untagged (and removed, if ugw pulled it). The step's result
//! (`image`, `digest`, `reference`, `version`) is what `ugw-swap --compose` pins.

mod docker_cli;

use docker_cli::{Docker, Inspected};
use serde::Serialize;
use std::time::{Duration, Instant};
use ugw_shared::results::FetchedImage;
use ugw_shared::{Ctx, Error, ErrorKind, Result, StepResult};

/// The label an image's version travels in (OCI's annotation key, as a `LABEL`).
const VERSION_LABEL: &str = "org.opencontainers.image.version";

/// `--image` and the flags that go with it, parsed.
pub(crate) struct Options {
    pub reference: Reference,
    /// `--digest`, normalised (`sha256:` and 64 lowercase hex digits).
    pub digest: Option<String>,
    pub release: Option<String>,
    pub smoke: Option<String>,
    pub smoke_timeout: Duration,
    /// `--registry-login-env USER=ENVVAR`: the user and the password read from ENVVAR.
    pub login: Option<(String, String)>,
}

/// `--header` and `--header-env` with `--image`: a usage error. They are for `--url`'s origin,
/// and `docker pull` sends no header of ugw's, so they were silently ignored: a registry token
/// given that way never reached the registry. The error says where credentials go instead.
pub(crate) fn refuse_http_headers(given: &ugw_shared::http::HttpFlags) -> Result<()> {
    let flag = if !given.headers.is_empty() {
        "--header"
    } else if !given.header_env.is_empty() {
        "--header-env"
    } else {
        return Ok(());
    };
    Err(Error::usage(format!(
        "{flag} does not apply to --image: the image is pulled by the docker CLI, which sends \
         no HTTP header of ugw's. Registry credentials come from the docker CLI's own config \
         (DOCKER_CONFIG, as `docker login` writes it) or --registry-login-env USER=ENVVAR; a \
         checksum list's URL takes --sums-header / --sums-header-env (nothing was pulled)"
    )))
}

/// An image reference: `[host[:port]/]path[:tag][@sha256:…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// The repository, host included (`127.0.0.1:5000/demo`).
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    pub(crate) fn parse(raw: &str) -> Result<Self> {
        let bad =
            |why: &str| Error::usage(format!("--image '{raw}' is not an image reference ({why})"));
        let (name, digest) =
            match raw.split_once('@') {
                Some((name, digest)) => (
                    name,
                    Some(normalise_digest(digest).ok_or_else(|| {
                        bad("the digest is not sha256: and 64 hexadecimal digits")
                    })?),
                ),
                None => (raw, None),
            };
        let last = name.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match name[last..].rfind(':') {
            Some(i) => (&name[..last + i], Some(&name[last + i + 1..])),
            None => (name, None),
        };
        let repo_ok = !repo.is_empty()
            && !repo.starts_with(['-', '/', '.', ':'])
            && repo
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b));
        if !repo_ok {
            return Err(bad(
                "a repository is lowercase letters, digits and ._-/: and starts with neither - nor /",
            ));
        }
        if let Some(tag) = tag
            && (tag.is_empty()
                || tag.len() > 128
                || tag.starts_with(['.', '-'])
                || !tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
        {
            return Err(bad(
                "a tag is up to 128 letters, digits and ._- and starts with neither . nor -",
            ));
        }
        Ok(Reference {
            repo: repo.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// `repo:tag` (`latest` when no tag is given): what a checksum list names.
    pub(crate) fn tagged(&self) -> String {
        format!("{}:{}", self.repo, self.tag.as_deref().unwrap_or("latest"))
    }

    /// `repo@digest`: the image pinned by its digest.
    fn pinned(&self, digest: &str) -> String {
        format!("{}@{digest}", self.repo)
    }

    /// The registry to log in to: REF's first component when it names a host, else Docker
    /// Hub (`None`), as the docker CLI reads a reference.
    fn registry(&self) -> Option<&str> {
        let (first, _) = self.repo.split_once('/')?;
        (first.contains(['.', ':']) || first == "localhost").then_some(first)
    }
}

/// `sha256:HEX` or a bare `HEX` as `sha256:` and lowercase hex, else `None`.
pub(crate) fn normalise_digest(text: &str) -> Option<String> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    ugw_shared::digest::sha256_exactly(hex).map(|hex| format!("sha256:{hex}"))
}

/// The digest a checksum list gives REF: lines `DIGEST  repo:tag`, the digest with or without
/// its `sha256:`, read by the same parser as a SHA256SUMS file (`sums::find`).
pub(crate) fn listed_digest(text: &str, reference: &Reference) -> Result<String> {
    let mut lines = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.trim_start_matches([' ', '\t']);
        lines.push_str(line.strip_prefix("sha256:").unwrap_or(line));
        lines.push('\n');
    }
    let tagged = reference.tagged();
    let as_given = match &reference.tag {
        Some(_) => tagged.clone(),
        None => reference.repo.clone(),
    };
    let found = crate::sums::find(&lines, &[&as_given, &tagged])
        .map_err(|why| Error::new(ErrorKind::NotFound, why))?;
    Ok(format!("sha256:{found}"))
}

/// What a dry run would pull.
#[derive(Debug, Serialize)]
struct ImagePlanned {
    image: String,
    digest: String,
    reference: String,
    tag: Option<String>,
    version: Option<String>,
    pulled: bool,
}

/// Pull (unless present), check, smoke-test. `expected` is the digest REF must have.
pub(crate) fn run(ctx: &mut Ctx, options: &Options, expected: &str) -> Result<StepResult> {
    let docker = match &options.login {
        Some((user, password)) => {
            Docker::logged_in(ctx, options.reference.registry(), user, password)?
        }
        None => Docker::operators(ctx.step_deadline()),
    };
    let reference = &options.reference;
    let pinned = reference.pinned(expected);
    if let Some(present) = docker.inspect(ctx, &pinned)?
        && present.has_digest(&reference.repo, expected)
    {
        if let Some(smoke) = &options.smoke {
            smoke_test(ctx, &docker, options, smoke, &pinned, None)?;
        }
        ctx.reporter
            .info(&format!("{pinned} is present already; nothing to pull"));
        return Ok(result(options, expected, &present, false));
    }
    if ctx.dry_run {
        return Ok(dry_run(ctx, options, expected));
    }
    let pulled = pull(ctx, &docker, reference, expected)?;
    if let Some(smoke) = &options.smoke {
        smoke_test(ctx, &docker, options, smoke, &pinned, Some(&pulled))?;
    }
    Ok(result(options, expected, &pulled.image, true))
}

/// An image this step pulled, and what its tag named before (to put back on a failure).
struct Pulled {
    image: Inspected,
    /// The reference pulled (`repo:tag`, or `repo@digest`).
    source: String,
    /// The id `repo:tag` named before the pull, if any.
    tag_before: Option<String>,
}

/// `docker pull`, then the check: the image's `RepoDigests` must hold `expected`. A tag
/// is pulled by its name (the registry says what it is now, and the check judges it);
/// REF with a digest is pulled by it.
fn pull(ctx: &Ctx, docker: &Docker, reference: &Reference, expected: &str) -> Result<Pulled> {
    let source = match (&reference.tag, &reference.digest) {
        (Some(_), None) => reference.tagged(),
        _ => reference.pinned(expected),
    };
    let tag_before = match &reference.tag {
        Some(_) if reference.digest.is_none() => {
            docker.inspect(ctx, &source)?.map(|image| image.id)
        }
        _ => None,
    };
    let started = Instant::now();
    ctx.reporter.info(&format!("pulling {source}"));
    docker.must(
        ctx,
        &["pull", "--quiet", "--", &source],
        ErrorKind::Network,
        &format!("docker pull {source}"),
    )?;
    let image = docker.inspect(ctx, &source)?.ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("docker pull {source} succeeded, but no such image is there"),
        )
    })?;
    let pulled = Pulled {
        image,
        source,
        tag_before,
    };
    if !pulled.image.has_digest(&reference.repo, expected) {
        let got = pulled
            .image
            .repo_digests
            .iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        forget(ctx, docker, &pulled);
        return Err(Error::new(
            ErrorKind::ChecksumMismatch,
            format!(
                "{} has the digests [{got}], not {expected}; the image was untagged (and \
                 removed unless something else uses it)",
                pulled.source
            ),
        ));
    }
    ctx.reporter.info(&format!(
        "verified {} ({} in {})",
        reference.pinned(expected),
        pulled.source,
        ugw_shared::time::human(started.elapsed())
    ));
    Ok(pulled)
}

/// Undo a pull that must not be used: remove the name it was pulled as (which removes the
/// image when nothing else names or uses it), and give the tag back what it named before.
/// Best effort: the step fails anyway, and says what it found.
fn forget(ctx: &Ctx, docker: &Docker, pulled: &Pulled) {
    let removed = docker.run(ctx, &["image", "rm", "--", &pulled.source], None);
    if !removed
        .as_ref()
        .is_ok_and(ugw_shared::runner::RunOutcome::success)
    {
        ctx.reporter
            .warn(&format!("could not remove {}", pulled.source));
    }
    if let Some(before) = &pulled.tag_before
        && *before != pulled.image.id
    {
        let _ = docker.run(ctx, &["tag", before, &pulled.source], None);
    }
}

/// `--smoke CMD` in a throwaway container of the image (no network, never a pull), CMD's
/// words as its argv: the first is the entrypoint, as an image may have no shell. A failure
/// removes an image this step pulled; one present already is left as it is.
fn smoke_test(
    ctx: &Ctx,
    docker: &Docker,
    options: &Options,
    command: &str,
    pinned: &str,
    pulled: Option<&Pulled>,
) -> Result<()> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let Some((entrypoint, arguments)) = words.split_first() else {
        return Err(Error::usage("--smoke is empty"));
    };
    let name = format!("ugw-smoke-{}-{}", std::process::id(), fastrand::u64(..));
    let mut argv = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--pull",
        "never",
        "--name",
        &name,
        "--entrypoint",
        entrypoint,
        "--",
        pinned,
    ];
    argv.extend(arguments);
    ctx.reporter.info(&format!("smoke test: {command}"));
    let outcome = docker.run(ctx, &argv, Some(Instant::now() + options.smoke_timeout));
    // The CLI stopped at the deadline leaves its container running: it goes too.
    let _ = docker.run(ctx, &["rm", "--force", &name], None);
    let outcome = outcome?;
    if outcome.success() {
        return Ok(());
    }
    if let Some(pulled) = pulled {
        forget(ctx, docker, pulled);
    }
    let output = outcome.said_excerpt(2000);
    Err(Error::new(
        ErrorKind::SmokeFailed,
        format!(
            "the smoke test '{command}' in {pinned} failed ({}); {}",
            outcome.describe(),
            if pulled.is_some() {
                "the image pulled was removed"
            } else {
                "the image present already was left as it is"
            }
        ),
    )
    .with_result(serde_json::json!({
        "smoke": {"command": command, "outcome": outcome.describe(), "output": output}
    })))
}

/// The version: `--release`, else the tag (not `latest`), else the image's version label.
fn version(options: &Options, image: Option<&Inspected>) -> Option<String> {
    options
        .release
        .clone()
        .or_else(|| options.reference.tag.clone().filter(|tag| tag != "latest"))
        .or_else(|| image?.label(VERSION_LABEL))
}

fn result(options: &Options, digest: &str, image: &Inspected, pulled: bool) -> StepResult {
    let reference = &options.reference;
    let fetched = FetchedImage {
        image: reference.repo.clone(),
        digest: digest.to_string(),
        reference: reference.pinned(digest),
        tag: reference.tag.clone(),
        version: version(options, Some(image)),
        id: image.id.clone(),
        pulled,
        verified: true,
    };
    StepResult::typed(pulled, &fetched)
}

/// `--dry-run` when the image is not present: what would be pulled, nothing pulled.
fn dry_run(ctx: &Ctx, options: &Options, digest: &str) -> StepResult {
    let reference = &options.reference;
    ctx.reporter.info(&format!(
        "dry run: would pull {} and check it is {digest}; nothing pulled",
        match (&reference.tag, &reference.digest) {
            (Some(_), None) => reference.tagged(),
            _ => reference.pinned(digest),
        }
    ));
    let planned = ImagePlanned {
        image: reference.repo.clone(),
        digest: digest.to_string(),
        reference: reference.pinned(digest),
        tag: reference.tag.clone(),
        version: version(options, None),
        pulled: false,
    };
    StepResult::unchanged(serde_json::to_value(&planned).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_read_as_docker_reads_them() {
        let hex = "ab".repeat(32);
        let r = Reference::parse(&format!("127.0.0.1:5000/team/demo:1.2@sha256:{hex}")).unwrap();
        assert_eq!(r.repo, "127.0.0.1:5000/team/demo");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.digest, Some(format!("sha256:{hex}")));
        assert_eq!(r.registry(), Some("127.0.0.1:5000"));
        let r = Reference::parse("127.0.0.1:5000/demo").unwrap();
        assert_eq!(
            (r.repo.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000/demo", None)
        );
        assert_eq!(r.tagged(), "127.0.0.1:5000/demo:latest");
        assert_eq!(Reference::parse("nginx:1.27").unwrap().registry(), None);
        for bad in [
            "",
            "-v",
            "--help",
            "Demo:1",
            "demo:-x",
            "demo@sha256:12",
            "/x",
            "a b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_checksum_list_names_images_by_repo_and_tag() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let text = format!("sha256:{a}  127.0.0.1:5000/demo:1.1\n{b}  127.0.0.1:5000/demo:1.2\n");
        let reference = Reference::parse("127.0.0.1:5000/demo:1.2").unwrap();
        assert_eq!(
            listed_digest(&text, &reference).unwrap(),
            format!("sha256:{b}")
        );
        let other = Reference::parse("127.0.0.1:5000/demo:1.3").unwrap();
        assert!(listed_digest(&text, &other).is_err());
    }
}
