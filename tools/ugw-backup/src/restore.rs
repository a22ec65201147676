//! `ugw-backup restore`: verify, then unpack strictly (`ugw_shared::unpack`). `--to DIR`
//! unpacks the whole archive into a folder; `--in-place` puts each backed-up path back: each
//! is unpacked beside its target and swapped in by rename, the old one kept as
//! `<path>.ugw-before-restore` until everything has succeeded (and put back if anything
//! fails). SQLite databases are written through the live file's own connection.

use crate::manifest::Manifest;
use crate::sqlite;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use ugw_shared::atomic::sibling;
use ugw_shared::unpack::{self, Options};
use ugw_shared::{Ctx, Error, ErrorKind, Result};

pub const BEFORE_SUFFIX: &str = ".ugw-before-restore";

fn keep_owners() -> bool {
    rustix::process::geteuid().is_root()
}

fn open_tar(archive: &Path) -> Result<Box<dyn std::io::Read + Send>> {
    let file = ugw_shared::atomic::open_regular(archive)
        .map_err(|e| Error::io(format!("cannot open {}", archive.display()), &e))?;
    unpack::decoder(file)
}

/// Unpack everything into `dir` (absent or empty; with `force`, an existing one is replaced).
pub fn to_dir(ctx: &Ctx, archive: &Path, dir: &Path, force: bool) -> Result<unpack::Summary> {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if occupied && !force {
        return Err(Error::usage(format!(
            "{} is not empty; restore into an empty folder, or add --force to replace it",
            dir.display()
        )));
    }
    let options = Options {
        keep_owners: keep_owners(),
        ..Options::default()
    };
    let staged = unpack::stage(open_tar(archive)?, dir, &options, &ctx.cancel)?;
    if !occupied {
        return staged.commit();
    }
    let before = sibling(dir, BEFORE_SUFFIX);
    remove_any(&before)?;
    ugw_shared::atomic::rename_durable(dir, &before)?;
    let summary = staged.commit();
    if summary.is_err() {
        let _ = std::fs::rename(&before, dir);
    } else {
        remove_any(&before)?;
    }
    summary
}

/// One path swapped in, and how to undo it.
struct Swap {
    target: PathBuf,
    before: Option<PathBuf>,
    /// A mount point: its contents were moved, not the folder itself.
    contents_of: Option<PathBuf>,
    /// Live SQLite files (relative to the target) moved from the old tree into the new one.
    carried: Vec<PathBuf>,
}

/// Put every backed-up path (and database) back where it was.
pub fn in_place(
    ctx: &Ctx,
    archive: &Path,
    manifest: &Manifest,
    pg: Option<&crate::pg::Target>,
) -> Result<Vec<String>> {
    let mut swaps: Vec<Swap> = Vec::new();
    let outcome = swap_all(ctx, archive, manifest, &mut swaps)
        .and_then(|()| restore_dbs(ctx, archive, manifest))
        .and_then(|()| restore_pg(ctx, archive, manifest, pg));
    match outcome {
        Ok(()) => {
            for swap in &swaps {
                if let Some(before) = &swap.before {
                    remove_any(before)?;
                }
            }
            Ok(swaps
                .iter()
                .map(|s| s.target.display().to_string())
                .collect())
        }
        Err(err) => {
            for swap in swaps.iter().rev() {
                if let Err(undo) = undo(swap) {
                    ctx.reporter.error(&format!(
                        "could not put {} back: {}",
                        swap.target.display(),
                        undo.message
                    ));
                }
            }
            Err(err)
        }
    }
}

fn swap_all(ctx: &Ctx, archive: &Path, manifest: &Manifest, swaps: &mut Vec<Swap>) -> Result<()> {
    for root in &manifest.roots {
        ctx.cancel.check()?;
        let target = root.path.path();
        let entry = root.entry.path();
        let depth = entry.components().count();
        if is_mount_point(&target) {
            ctx.reporter.info(&format!(
                "{} is a mount point: its contents are restored in place (it cannot be swapped by rename)",
                target.display()
            ));
            swaps.push(swap_contents(ctx, archive, &entry, &target)?);
            continue;
        }
        let options = Options {
            only: Some(entry.clone()),
            strip_components: depth - 1,
            keep_owners: keep_owners(),
        };
        // A path whose folder is gone too comes back with it.
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("cannot create {}", parent.display()), &e))?;
        }
        let staged = unpack::stage(open_tar(archive)?, &target, &options, &ctx.cancel)?;
        let name = target.file_name().expect("a backed-up path has a name");
        let restored = staged.path().join(name);
        let before = sibling(&target, BEFORE_SUFFIX);
        remove_any(&before)?;
        let had_one = std::fs::symlink_metadata(&target).is_ok();
        ctx.cancel.critical(|| -> Result<()> {
            if had_one {
                ugw_shared::atomic::rename_durable(&target, &before)?;
            }
            swaps.push(Swap {
                target: target.clone(),
                before: had_one.then(|| before.clone()),
                contents_of: None,
                carried: Vec::new(),
            });
            ugw_shared::atomic::rename_durable(&restored, &target)?;
            let swap = swaps.last_mut().expect("just pushed");
            carry_live_dbs(manifest, swap)
        })?;
        drop(staged);
    }
    Ok(())
}

/// Live SQLite files under a swapped folder move from the old tree into the restored one
/// (they are restored through their connection afterwards, never replaced by a rename); they
/// are never inside a temp folder that could be removed.
fn carry_live_dbs(manifest: &Manifest, swap: &mut Swap) -> Result<()> {
    let Some(before) = &swap.before else {
        return Ok(());
    };
    for db in &manifest.sqlite {
        let live = db.path.path();
        let Ok(below) = live.strip_prefix(&swap.target) else {
            continue;
        };
        let old = before.join(below);
        for file in std::iter::once(old.clone()).chain(sqlite::companions(&old)) {
            if !file.exists() {
                continue;
            }
            let relative = file
                .strip_prefix(before)
                .expect("under before")
                .to_path_buf();
            let into = swap.target.join(&relative);
            if let Some(parent) = into.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io(format!("cannot create {}", parent.display()), &e))?;
            }
            std::fs::rename(&file, &into)
                .map_err(|e| Error::io(format!("cannot move {}", file.display()), &e))?;
            swap.carried.push(relative);
        }
    }
    Ok(())
}

/// A mount point's contents: the old ones moved into `<mount>/.ugw-before-restore/`, the
/// restored ones (unpacked inside the mount) moved up.
fn swap_contents(ctx: &Ctx, archive: &Path, entry: &Path, mount: &Path) -> Result<Swap> {
    let options = Options {
        only: Some(entry.to_path_buf()),
        strip_components: entry.components().count(),
        keep_owners: keep_owners(),
    };
    let staged = unpack::stage(
        open_tar(archive)?,
        &mount.join(".ugw-restore"),
        &options,
        &ctx.cancel,
    )?;
    let before = mount.join(BEFORE_SUFFIX);
    remove_any(&before)?;
    std::fs::create_dir(&before)
        .map_err(|e| Error::io(format!("cannot create {}", before.display()), &e))?;
    let staged_name = staged.path().file_name().map(OsString::from);
    move_children(
        mount,
        &before,
        &[staged_name.clone(), Some(OsString::from(BEFORE_SUFFIX))],
    )?;
    move_children(staged.path(), mount, &[])?;
    drop(staged);
    Ok(Swap {
        target: mount.to_path_buf(),
        before: Some(before),
        contents_of: Some(mount.to_path_buf()),
        carried: Vec::new(),
    })
}

fn move_children(from: &Path, to: &Path, except: &[Option<OsString>]) -> Result<()> {
    let entries = std::fs::read_dir(from)
        .map_err(|e| Error::io(format!("cannot list {}", from.display()), &e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if except.iter().flatten().any(|n| *n == name) {
            continue;
        }
        std::fs::rename(entry.path(), to.join(&name))
            .map_err(|e| Error::io(format!("cannot move {}", entry.path().display()), &e))?;
    }
    Ok(())
}

fn undo(swap: &Swap) -> Result<()> {
    let Some(before) = &swap.before else {
        return remove_any(&swap.target);
    };
    if let Some(mount) = &swap.contents_of {
        let entries = std::fs::read_dir(mount).map_err(|e| Error::io("cannot list", &e))?;
        for entry in entries.flatten() {
            if entry.file_name() != BEFORE_SUFFIX {
                remove_any(&entry.path())?;
            }
        }
        move_children(before, mount, &[])?;
        return remove_any(before);
    }
    for relative in &swap.carried {
        std::fs::rename(swap.target.join(relative), before.join(relative))
            .map_err(|e| Error::io(format!("cannot move {} back", relative.display()), &e))?;
    }
    remove_any(&swap.target)?;
    ugw_shared::atomic::rename_durable(before, &swap.target)
}

/// Each SQLite snapshot written into its live database.
fn restore_dbs(ctx: &Ctx, archive: &Path, manifest: &Manifest) -> Result<()> {
    for db in &manifest.sqlite {
        let live = db.path.path();
        let parent = live.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("cannot create {}", parent.display()), &e))?;
        let entry = db.entry.path();
        let options = Options {
            only: Some(entry.clone()),
            strip_components: entry.components().count() - 1,
            keep_owners: false,
        };
        let staged = unpack::stage(
            open_tar(archive)?,
            &sibling(&live, ".ugw-snapshot"),
            &options,
            &ctx.cancel,
        )?;
        let snapshot = staged.path().join(entry.file_name().expect("a name"));
        let check = sqlite::restore_into(&snapshot, &live, ctx.deadline(), &ctx.cancel)?;
        ctx.reporter.info(&format!(
            "{}: restored through SQLite's backup API (integrity_check {check})",
            live.display()
        ));
    }
    Ok(())
}

/// Each PostgreSQL dump restored with `pg_restore --clean --if-exists --single-transaction`,
/// into `target` or the database it was dumped from.
pub fn restore_pg(
    ctx: &Ctx,
    archive: &Path,
    manifest: &Manifest,
    target: Option<&crate::pg::Target>,
) -> Result<()> {
    for dump in &manifest.pg {
        let into = match target {
            Some(target) => target.clone(),
            None => crate::pg::Target::parse(&dump.url, ctx.scrubber())?,
        };
        let entry = dump.entry.path();
        let options = Options {
            only: Some(entry.clone()),
            strip_components: entry.components().count() - 1,
            keep_owners: false,
        };
        let staged = unpack::stage(
            open_tar(archive)?,
            &sibling(archive, ".pg-restore"),
            &options,
            &ctx.cancel,
        )?;
        let file = staged.path().join(entry.file_name().expect("a name"));
        crate::pg::restore(&into, &file, ctx.deadline(), &ctx.cancel)?;
        ctx.reporter.info(&format!(
            "{}: restored with pg_restore --clean --if-exists --single-transaction",
            into.shown
        ));
    }
    Ok(())
}

fn is_mount_point(path: &Path) -> bool {
    let (Ok(meta), Some(parent)) = (std::fs::symlink_metadata(path), path.parent()) else {
        return false;
    };
    meta.is_dir() && std::fs::metadata(parent).is_ok_and(|p| p.dev() != meta.dev())
}

fn remove_any(path: &Path) -> Result<()> {
    let outcome = match std::fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    outcome.map_err(|e| Error::io(format!("cannot remove {}", path.display()), &e))
}

/// A backup made by another app version is refused unless forced.
pub fn check_app_version(manifest: &Manifest, expected: Option<&str>, force: bool) -> Result<()> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let made_by = manifest.app_version.as_deref().unwrap_or("(none recorded)");
    if force
        || manifest
            .app_version
            .as_deref()
            .is_some_and(|v| ugw_shared::version::same(v, expected))
    {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::CheckFailed,
        format!(
            "the backup was made by app version {made_by}, not {expected} (--expect-app-version); --force restores it anyway"
        ),
    ))
}

/// For messages: the names of the roots.
#[must_use]
pub fn roots(manifest: &Manifest) -> Vec<String> {
    manifest.roots.iter().map(|r| r.path.shown()).collect()
}
