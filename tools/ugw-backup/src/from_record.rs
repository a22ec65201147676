//! Which backup a `verify`, `restore` or `prune` without ARCHIVE takes from the record, and
//! what a restore from the record must check before it touches anything (ugw(7), WHAT A TOOL
//! TRUSTS). The record is input: a step may be another run's, a `verify` of last night's
//! archive, or forged. So only this run's own `create` steps on this host count, and the
//! archive a restore puts back must be the one that step wrote (same digest) and must say so
//! itself (its manifest names this run and this host).

use crate::BackupResult;
use crate::manifest::Manifest;
use serde::Deserialize;
use std::path::Path;
use ugw_shared::record::Status;
use ugw_shared::{Ctx, Error, Result};

/// The result of this run's last successful `create` on this host. A create step is one whose
/// result is a `Backup`: `verify`, `restore`, `list` and `prune` write other shapes, so a
/// verify of another archive in the same run is never taken for the run's backup.
pub fn last_create(ctx: &Ctx) -> Option<BackupResult> {
    ctx.this_run()
        .results_newest_first::<BackupResult>()
        .into_iter()
        .find_map(|(status, result)| (status == Status::Ok).then_some(result))
}

/// Why the record gives no backup, as a sentence: none in this run, or one left out because
/// it is another run's or host's.
pub fn why_none(ctx: &Ctx) -> String {
    match ctx.this_run().left_out(crate::TOOL) {
        Some(why) => format!("this run made no backup on this host ({why}, so it is not used)"),
        None => "this run made no backup (no successful ugw-backup create step)".to_string(),
    }
}

/// What a dry-run `create` says it would have written.
#[derive(serde::Serialize, Deserialize)]
struct PlannedCreate {
    would_create: String,
}

impl ugw_shared::results::ToolResult for PlannedCreate {
    const TOOL: &'static str = crate::TOOL;
}

/// In a dry run only: the archive this run's newest `create` step would have written, when
/// that step was a dry run too (a whole pipeline can be dry-run); never for a real run.
pub fn planned_create(ctx: &Ctx) -> Option<String> {
    ctx.this_run()
        .dry_run_result::<PlannedCreate>(ctx.dry_run)
        .ok()
        .flatten()
        .map(|planned| planned.would_create)
}

/// What an in-place restore writes as its result, read back to find an earlier one.
#[derive(Deserialize)]
struct RestoredInPlace {
    archive: String,
    /// Only its presence matters: it marks an in-place restore (not one `--to` a folder).
    #[serde(rename = "in_place")]
    _in_place: serde::de::IgnoredAny,
}

/// Whether this run already restored `archive` in place, successfully: the node may have
/// gone back to work and taken new writes since, which a second restore would wipe.
pub fn restored_already(ctx: &Ctx, archive: &Path) -> bool {
    ctx.this_run()
        .steps_newest_first(crate::TOOL)
        .filter(|step| step.status == Status::Ok && step.changed)
        .filter_map(|step| RestoredInPlace::deserialize(&step.result).ok())
        .any(|restored| Path::new(&restored.archive) == archive)
}

/// The archive found at the path of this run's create step is the one that step wrote: the
/// same digest, and its own (verified) manifest names this run and this host. A step that
/// names another service's backup, last night's, or one made on another host is refused
/// before anything is touched.
pub fn check_made_by_this_run(
    ctx: &Ctx,
    made: &BackupResult,
    archive: &Path,
    sha256: &str,
    manifest: &Manifest,
) -> Result<()> {
    let run = ctx.this_run().run();
    let shown = archive.display();
    if manifest.run.as_deref() != Some(run) {
        let whose = manifest.run.as_deref().map_or_else(
            || {
                "names no run (made by an older ugw-backup, or not by a create of this run)"
                    .to_string()
            },
            |other| format!("was made by run {other}"),
        );
        return Err(Error::bad_record(format!(
            "the record's create step names {shown}, but that archive's own manifest {whose}, \
             not this run {run}: nothing restored (name the archive to restore it anyway)"
        )));
    }
    if manifest.host != ctx.host {
        return Err(Error::bad_record(format!(
            "the record's create step names {shown}, but that archive's own manifest says it \
             was made on host {:?}, not this host ({:?}): nothing restored (name the archive \
             to restore it anyway)",
            manifest.host, ctx.host
        )));
    }
    let volumes = manifest.volumes();
    if volumes != made.volumes {
        return Err(Error::bad_record(format!(
            "the record's create step backed up Docker volume(s) {:?}, but the archive {shown} \
             holds volume(s) {volumes:?}: it is not this step's backup of those volumes; \
             nothing restored",
            made.volumes
        )));
    }
    if !made.sha256.eq_ignore_ascii_case(sha256) {
        return Err(Error::bad_record(format!(
            "the record's create step wrote {shown} with sha256 {}, but the archive there now \
             has sha256 {sha256}: it is not the backup this run made; nothing restored",
            made.sha256
        )));
    }
    Ok(())
}
