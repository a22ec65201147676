//! `up --from-image`: the migrations come from the container image this run fetched (its
//! `ugw-fetch --image` step), as they come from an unpacked release's `migrations/` folder
//! otherwise. The image must still be the one the fetch verified (its `RepoDigests` hold the
//! step's `reference`), then `docker create` makes a container that never starts, `docker cp`
//! copies `--image-path` out of it into a private temp folder, and the container is removed
//! on every path. The folder is removed when the step ends.

use serde::Deserialize;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use ugw_shared::docker::Docker;
use ugw_shared::results::{FetchedImage, ToolResult};
use ugw_shared::runner::RunOutcome;
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// How much of what docker says goes into a message.
const SAID: usize = 300;
/// How long `docker rm -f` of the copy's container may take when the step ends.
const REMOVE_WAIT: Duration = Duration::from_secs(30);

/// The migrations folder copied out of this run's fetched image (`PATH` inside it).
pub(crate) fn copy_migrations(ctx: &mut Ctx, image_path: &str) -> Result<PathBuf> {
    let fetched = fetched_image(ctx)?;
    check_digest(ctx, &fetched)?;
    let folder = private_folder()?;
    ctx.track_temp(&folder);
    let container = Created::new(ctx, &fetched.reference)?;
    let into = folder.join("migrations");
    let path = format!("{}:{image_path}", container.id);
    let out = docker(ctx, &["cp", &path, &into.display().to_string()])?;
    if !out.success() {
        let said = out.said_excerpt(SAID);
        let kind = if said.contains("Could not find") || said.contains("No such") {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        return Err(Error::new(
            kind,
            format!(
                "--image-path {image_path} cannot be copied out of {} ({said}): give the folder \
                 of the image that holds the migrations",
                fetched.reference
            ),
        ));
    }
    ctx.reporter
        .info(&format!("copied {image_path} out of {}", fetched.reference));
    Ok(into)
}

/// This run's newest `ugw-fetch --image` step on this host; one of another run or host is
/// named and never used.
fn fetched_image(ctx: &Ctx) -> Result<FetchedImage> {
    let this_run = ctx.this_run();
    let found = this_run
        .steps_newest_first(FetchedImage::TOOL)
        .filter(|step| step.status == ugw_shared::record::Status::Ok && !step.dry_run)
        .find_map(|step| FetchedImage::deserialize(&step.result).ok());
    found.ok_or_else(|| {
        let foreign = this_run
            .left_out(FetchedImage::TOOL)
            .map(|why| format!(" ({why}, so it is not used)"))
            .unwrap_or_default();
        Error::usage(format!(
            "--from-image takes the migrations from this run's ugw-fetch --image step on this \
             host, and there is none{foreign}: fetch the image first, or give --dir"
        ))
    })
}

/// The image the reference names here must be the one the fetch verified: its `RepoDigests`
/// hold the step's repository and digest, and the reference is that pair (a step whose
/// reference names another image than its digest is not taken).
fn check_digest(ctx: &Ctx, fetched: &FetchedImage) -> Result<()> {
    let pinned = format!("{}@{}", fetched.image, fetched.digest);
    if fetched.reference != pinned {
        return Err(Error::bad_record(format!(
            "the ugw-fetch --image step's reference {} is not its image and digest ({pinned})",
            fetched.reference
        )));
    }
    let Some(image) = Docker::cli().image(ctx, &fetched.reference, ctx.step_deadline())? else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "the fetched image {} is not here any more: fetch it again",
                fetched.reference
            ),
        ));
    };
    if image.has_digest(&fetched.image, &fetched.digest) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::ChecksumMismatch,
        format!(
            "the image here is not the one ugw-fetch verified: {} is not among its digests {:?}",
            fetched.reference,
            image.repo_digests.unwrap_or_default()
        ),
    ))
}

/// A temp folder only this user can read, for the copy.
fn private_folder() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let folder =
        std::env::temp_dir().join(format!("ugw-migrate-image-{}-{nanos}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&folder)
        .map_err(|e| Error::io(format!("cannot create {}", folder.display()), &e))?;
    Ok(folder)
}

/// A container created (never started) from the image, removed when this is dropped.
struct Created {
    id: String,
}

impl Created {
    fn new(ctx: &Ctx, reference: &str) -> Result<Created> {
        // A command of its own, never run: an image with no CMD cannot be created without one.
        let out = docker(ctx, &["create", reference, "ugw-migrate-copy"])?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.success() || id.is_empty() {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "docker create {reference}: {} ({})",
                    out.describe(),
                    out.said_excerpt(SAID)
                ),
            ));
        }
        Ok(Created { id })
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        // Also after a signal: the removal is bounded by its own short deadline.
        let spec = Docker::cli().spec(
            &["rm", "-f", self.id.as_str()],
            Instant::now() + REMOVE_WAIT,
        );
        let _ = ugw_shared::runner::run(&spec, &ugw_shared::cancel::Cancel::default());
    }
}

/// `docker ARGS`, stopped at the step's deadline; a signal to ugw-migrate stops it too.
fn docker(ctx: &Ctx, args: &[&str]) -> Result<RunOutcome> {
    Docker::cli().run(ctx, args, ctx.step_deadline())
}
