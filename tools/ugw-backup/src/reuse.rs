//! A retry of the same run finds its own archive: `create` run again with the same record
//! (same run, same host, same paths, same name) reuses the backup it made instead of failing
//! "exists already". The archive is input like any other (ugw(7), WHAT A TOOL TRUSTS): it is
//! reused only when it is whole (its checksum sidecar and every entry match), its own manifest
//! names this run and this host and the same paths and databases, and, when the record has
//! this run's create step for it, its digest is that step's. Anything else is refused as
//! before, nothing written.

use crate::create::Plan;
use crate::manifest::{Kind, Manifest, Name};
use crate::{BackupResult, from_record, verify};
use std::path::{Path, PathBuf};
use ugw_shared::{Ctx, Error, Result};

/// The result of the earlier create of this run that wrote `archive`, read back from the
/// archive itself; `Err` (usage, as before this existed) saying why it cannot be reused.
pub fn reuse(ctx: &Ctx, plan: &Plan, paths: &[PathBuf], archive: &Path) -> Result<BackupResult> {
    let refuse = |why: String| {
        Error::usage(format!(
            "{} exists already, and {why}: it is not reused; choose another --name \
             (a template such as --name 'app-{{version}}-{{time}}' never collides)",
            archive.display()
        ))
    };
    let run = ctx.this_run().run();
    // Read first (cheap): a backup of another run is refused without hashing gigabytes.
    let (sidecar, _) = verify::read_manifest(archive)
        .map_err(|e| refuse(format!("its manifest cannot be read ({})", e.message)))?;
    if let Some(why) = not_this_runs(ctx, plan, paths, &sidecar) {
        return Err(refuse(why));
    }
    let verified = verify::verify(
        archive,
        &ctx.cancel,
        &ctx.reporter.progress(None).in_bytes(),
    )
    .map_err(|e| refuse(format!("it is not whole ({})", e.message)))?;
    // The sidecar said the right things; the manifest inside the (now verified) archive must too.
    if let Some(why) = not_this_runs(ctx, plan, paths, &verified.manifest) {
        return Err(refuse(why));
    }
    if let Some(made) = from_record::last_create(ctx)
        && Path::new(&made.archive) == archive
        && !made.sha256.eq_ignore_ascii_case(&verified.sha256)
    {
        return Err(refuse(format!(
            "this run's create step wrote it with sha256 {}, but it has sha256 {} now",
            made.sha256, verified.sha256
        )));
    }
    ctx.reporter.info(&format!(
        "{}: made by this run ({run}) already, and whole: reusing it (nothing written)",
        archive.display()
    ));
    Ok(result_of(archive, &verified))
}

/// Why `manifest` is not the backup this create would make, or `None` when it is.
fn not_this_runs(ctx: &Ctx, plan: &Plan, paths: &[PathBuf], manifest: &Manifest) -> Option<String> {
    let run = ctx.this_run().run();
    if manifest.run.as_deref() != Some(run) {
        return Some(manifest.run.as_deref().map_or_else(
            || "its manifest names no run".to_string(),
            |other| format!("it was made by run {other}, not this run {run}"),
        ));
    }
    if manifest.host != ctx.host {
        return Some(format!(
            "it was made on host {:?}, not this host ({:?})",
            manifest.host, ctx.host
        ));
    }
    let roots: Vec<Vec<u8>> = manifest.roots.iter().map(|r| r.path.bytes()).collect();
    let wanted: Vec<Vec<u8>> = paths.iter().map(|p| Name::from_path(p).bytes()).collect();
    let dbs: Vec<Vec<u8>> = manifest.sqlite.iter().map(|d| d.path.bytes()).collect();
    let wanted_dbs: Vec<Vec<u8>> = plan
        .sqlite
        .iter()
        .map(|p| Name::from_path(p).bytes())
        .collect();
    let dumps: Vec<&str> = manifest.pg.iter().map(|d| d.url.as_str()).collect();
    let wanted_dumps: Vec<&str> = plan.pg.iter().map(|t| t.shown.as_str()).collect();
    if roots != wanted || dbs != wanted_dbs || dumps != wanted_dumps {
        return Some("it backs up other paths or databases than this create".to_string());
    }
    if manifest.app_version != plan.app_version {
        return Some(format!(
            "it records app version {:?}, not {:?}",
            manifest.app_version, plan.app_version
        ));
    }
    None
}

/// The create step's result, as the first attempt wrote it, from the verified archive.
fn result_of(archive: &Path, verified: &verify::Verified) -> BackupResult {
    let manifest = &verified.manifest;
    let files = manifest.entries.iter().filter(|e| e.kind == Kind::File);
    BackupResult {
        archive: archive.display().to_string(),
        sha256: verified.sha256.clone(),
        bytes: verified.bytes,
        input_bytes: files.clone().map(|e| e.size).sum(),
        files: files.count() as u64,
        sqlite: manifest.sqlite.iter().map(|s| s.path.shown()).collect(),
        pg: manifest.pg.iter().map(|p| p.url.clone()).collect(),
        changed_while_read: manifest.changed_while_read.len() as u64,
        app_version: manifest.app_version.clone(),
        elapsed_ms: 0,
        pruned: Vec::new(),
        volumes: manifest.volumes(),
    }
}
