//! `ugw-backup restore`: verify, then unpack strictly (`ugw_shared::unpack`). `--to DIR`
//! unpacks the whole archive into a folder; `--in-place` puts each backed-up path back: each
//! is unpacked beside its target and swapped in by rename, the old one kept as
//! `<path>.ugw-before-restore` until everything has succeeded (and put back if anything
//! fails). SQLite databases are written through the live file's own connection, each copied
//! first so that a later failure (PostgreSQL's) puts it back too.

use crate::manifest::{Kind, Manifest, Name};
use crate::sqlite;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use ugw_shared::atomic::{AtomicFile, sibling};
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
        deadline: ctx.deadline(),
        keep_owners: keep_owners(),
        ..Options::restoring()
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
    /// A file mount point: its bytes were rewritten (the old ones are in `before`).
    rewritten: bool,
    /// What moved from the old tree into the new one (relative to the target): live SQLite
    /// files and folders left out of the backup (`--out`).
    carried: Vec<PathBuf>,
}

/// A SQLite snapshot read out of the archive, ready to be written into its live file.
struct StagedDb {
    live: PathBuf,
    snapshot: PathBuf,
    _staged: unpack::Staged,
}

/// A PostgreSQL dump read out of the archive, and the database it goes into.
struct StagedDump {
    into: crate::pg::Target,
    file: PathBuf,
    _staged: unpack::Staged,
}

/// A live SQLite database as it was before the restore wrote into it: put back if a later
/// step fails. `None`: there was none (or it could not be copied; said so).
struct DbBefore {
    live: PathBuf,
    copy: Option<AtomicFile>,
}

/// Where a restore keeps what it reads out of the archive before it touches a live path:
/// the temp folder (`TMPDIR`), never beside the archive, which may be read-only, and never
/// inside a live path that is about to be swapped.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(name)
}

/// Put every backed-up path (and database) back where it was. Everything is read out of the
/// archive first; then the paths are swapped, the SQLite databases written (each copied
/// first), and PostgreSQL restored last, in one transaction. A failure at any step puts back
/// what the steps before it changed, so a failed restore leaves the state from before it.
pub fn in_place(
    ctx: &Ctx,
    archive: &Path,
    manifest: &Manifest,
    pg: &[crate::pg::Target],
) -> Result<Vec<String>> {
    refuse_planted_links(manifest)?;
    let dbs = stage_dbs(ctx, archive, manifest)?;
    let dumps = stage_dumps(ctx, archive, manifest, pg)?;
    let mut swaps: Vec<Swap> = Vec::new();
    let mut written: Vec<DbBefore> = Vec::new();
    let outcome = swap_all(ctx, archive, manifest, &mut swaps)
        .and_then(|()| restore_dbs(ctx, &dbs, &mut written))
        .and_then(|()| restore_dumps(ctx, &dumps));
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
            for db in written.iter().rev() {
                if let Err(undo) = undo_db(ctx, db) {
                    ctx.reporter.error(&format!(
                        "could not put {} back: {}",
                        db.live.display(),
                        undo.message
                    ));
                }
            }
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

/// A live path that is a symlink where the backup holds a folder or a file (or a SQLite
/// database, which is never backed up as a link) was planted, or changed by hand: a restore
/// would write through it, into whatever it points to. Refused before anything is touched.
fn refuse_planted_links(manifest: &Manifest) -> Result<()> {
    let planted = |path: &Path, what: &str| {
        Error::new(
            ErrorKind::UnsafeInput,
            format!(
                "{} is a symlink now, but the backup holds {what} there: a restore would write \
                 through it; nothing restored (remove the link, or restore --to a folder)",
                path.display()
            ),
        )
    };
    let is_link =
        |path: &Path| std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    for root in &manifest.roots {
        let target = root.path.path();
        if root.kind != Kind::Symlink && is_link(&target) {
            return Err(planted(
                &target,
                if root.kind == Kind::Dir {
                    "a folder"
                } else {
                    "a file"
                },
            ));
        }
    }
    for db in &manifest.sqlite {
        let live = db.path.path();
        for file in std::iter::once(live.clone()).chain(sqlite::companions(&live)) {
            if is_link(&file) {
                return Err(planted(&file, "a SQLite database"));
            }
        }
    }
    Ok(())
}

fn swap_all(ctx: &Ctx, archive: &Path, manifest: &Manifest, swaps: &mut Vec<Swap>) -> Result<()> {
    for root in &manifest.roots {
        ctx.cancel.check()?;
        let target = root.path.path();
        let entry = root.entry.path();
        let depth = entry.components().count();
        if crate::mounts::is_mount_point(&target) && root.kind == Kind::File {
            ctx.reporter.info(&format!(
                "{} is a mount point: its bytes are restored into it (it cannot be swapped by rename)",
                target.display()
            ));
            swaps.push(rewrite_file(ctx, archive, &entry, &target)?);
            continue;
        }
        if crate::mounts::is_mount_point(&target) {
            ctx.reporter.info(&format!(
                "{} is a mount point: its contents are restored in place (it cannot be swapped by rename)",
                target.display()
            ));
            swap_contents(ctx, archive, manifest, &entry, &target, swaps)?;
            continue;
        }
        let options = Options {
            deadline: ctx.deadline(),
            only: Some(entry.clone()),
            strip_components: depth - 1,
            keep_owners: keep_owners(),
            ..Options::restoring()
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
                // One exchange, not the live path renamed aside and then the restored one in:
                // a crash between two renames would leave no live path at all.
                ugw_shared::atomic::exchange_durable(&restored, &target)?;
                ugw_shared::failpoint::hit("backup.restore-after-swap-in");
                if let Err(e) = ugw_shared::atomic::rename_durable(&restored, &before) {
                    // The old tree is in the staging folder, removed when it drops: put it
                    // back, so nothing was swapped.
                    let _ = ugw_shared::atomic::exchange_durable(&restored, &target);
                    return Err(e);
                }
                ugw_shared::failpoint::hit("backup.restore-after-move-aside");
            } else {
                ugw_shared::atomic::rename_durable(&restored, &target)?;
                ugw_shared::failpoint::hit("backup.restore-after-swap-in");
            }
            swaps.push(Swap {
                target: target.clone(),
                before: had_one.then(|| before.clone()),
                contents_of: None,
                carried: Vec::new(),
                rewritten: false,
            });
            let swap = swaps.last_mut().expect("just pushed");
            carry_over(manifest, swap)
        })?;
        drop(staged);
    }
    Ok(())
}

/// What lives under a swapped path but is not restored from the archive moves from the old
/// tree into the restored one: live SQLite files (restored through their connection
/// afterwards, never replaced by a rename, so a process holding them open keeps seeing them)
/// and the folders the backup left out (`--out`: the archive being restored, the others).
fn carry_over(manifest: &Manifest, swap: &mut Swap) -> Result<()> {
    let Some(before) = swap.before.clone() else {
        return Ok(());
    };
    let mut carried_paths: Vec<PathBuf> = Vec::new();
    for db in &manifest.sqlite {
        let live = db.path.path();
        carried_paths.extend(std::iter::once(live.clone()).chain(sqlite::companions(&live)));
    }
    carried_paths.extend(manifest.excluded.iter().map(Name::path));
    for live in carried_paths {
        let Ok(below) = live.strip_prefix(&swap.target) else {
            continue;
        };
        let old = before.join(below);
        if std::fs::symlink_metadata(&old).is_err() {
            continue;
        }
        let into = swap.target.join(below);
        if let Some(parent) = into.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("cannot create {}", parent.display()), &e))?;
        }
        std::fs::rename(&old, &into)
            .map_err(|e| Error::io(format!("cannot move {}", old.display()), &e))?;
        swap.carried.push(below.to_path_buf());
    }
    Ok(())
}

/// A mount point's contents: the old ones moved into `<mount>/.ugw-before-restore/`, the
/// restored ones (unpacked inside the mount) moved up, and the live databases and left-out
/// folders moved back beside them (the same files: a process holding a database open keeps
/// it, and sees the restore written into it).
fn swap_contents(
    ctx: &Ctx,
    archive: &Path,
    manifest: &Manifest,
    entry: &Path,
    mount: &Path,
    swaps: &mut Vec<Swap>,
) -> Result<()> {
    let options = Options {
        deadline: ctx.deadline(),
        only: Some(entry.to_path_buf()),
        strip_components: entry.components().count(),
        keep_owners: keep_owners(),
        ..Options::restoring()
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
    if let Err(e) = move_children(
        mount,
        &before,
        &[staged_name.clone(), Some(OsString::from(BEFORE_SUFFIX))],
    ) {
        // Cut short: what was moved goes back, and nothing restored is there to undo.
        let _ = move_children(&before, mount, &[]);
        let _ = std::fs::remove_dir(&before);
        return Err(e);
    }
    // From here, undoing means: what is in the mount is the restore's, `before` the old.
    swaps.push(Swap {
        target: mount.to_path_buf(),
        before: Some(before.clone()),
        contents_of: Some(mount.to_path_buf()),
        carried: Vec::new(),
        rewritten: false,
    });
    move_children(staged.path(), mount, &[])?;
    drop(staged);
    carry_over(manifest, swaps.last_mut().expect("just pushed"))
}

/// A file that is a mount point (a bind-mounted file): the restored bytes written into it,
/// what it held kept as `<file>.ugw-before-restore` until the restore succeeded.
fn rewrite_file(ctx: &Ctx, archive: &Path, entry: &Path, live: &Path) -> Result<Swap> {
    let options = Options {
        deadline: ctx.deadline(),
        only: Some(entry.to_path_buf()),
        strip_components: entry.components().count() - 1,
        keep_owners: keep_owners(),
        ..Options::restoring()
    };
    let staged = unpack::stage(
        open_tar(archive)?,
        &scratch("ugw-backup.file"),
        &options,
        &ctx.cancel,
    )?;
    let restored = staged.path().join(entry.file_name().expect("a name"));
    let before = sibling(live, BEFORE_SUFFIX);
    remove_any(&before)?;
    copy_into(live, &before, true)?;
    let swap = Swap {
        target: live.to_path_buf(),
        before: Some(before),
        contents_of: None,
        carried: Vec::new(),
        rewritten: true,
    };
    copy_into(&restored, live, false)?;
    Ok(swap)
}

/// Copy the bytes and mode of `from` into `to` (a new file when `create`, else the existing
/// one, truncated), never through a symlink.
fn copy_into(from: &Path, to: &Path, create: bool) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: &std::io::Error| Error::io_write(format!("cannot write {}", to.display()), e);
    let mut source = ugw_shared::atomic::open_regular(from)
        .map_err(|e| Error::io(format!("cannot read {}", from.display()), &e))?;
    let mode = source.metadata().map_err(|e| fail(&e))?.mode() & 0o7777;
    let mut options = std::fs::OpenOptions::new();
    options
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if create {
        options.create_new(true).mode(0o600);
    }
    let mut into = options.open(to).map_err(|e| fail(&e))?;
    std::io::copy(&mut source, &mut into).map_err(|e| fail(&e))?;
    into.set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| into.sync_all())
        .map_err(|e| fail(&e))
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
    if swap.rewritten {
        copy_into(before, &swap.target, false)?;
        return remove_any(before);
    }
    for relative in &swap.carried {
        std::fs::rename(swap.target.join(relative), before.join(relative))
            .map_err(|e| Error::io(format!("cannot move {} back", relative.display()), &e))?;
    }
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
    remove_any(&swap.target)?;
    ugw_shared::atomic::rename_durable(before, &swap.target)
}

/// One file entry of the archive (a snapshot, a dump) read out alone into a scratch folder
/// of the temp folder named after `scratch_name`; returns the folder (removed when dropped)
/// and the file's path in it.
fn stage_entry(
    ctx: &Ctx,
    archive: &Path,
    entry: &Name,
    scratch_name: &str,
) -> Result<(unpack::Staged, PathBuf)> {
    let entry = entry.path();
    let options = Options {
        deadline: ctx.deadline(),
        only: Some(entry.clone()),
        strip_components: entry.components().count() - 1,
        keep_owners: false,
        ..Options::restoring()
    };
    let staged = unpack::stage(
        open_tar(archive)?,
        &scratch(scratch_name),
        &options,
        &ctx.cancel,
    )?;
    // An entry of a manifest that verified: a file's path, never empty.
    let file = staged.path().join(entry.file_name().expect("a name"));
    Ok((staged, file))
}

/// Each SQLite snapshot read out of the archive into the temp folder.
fn stage_dbs(ctx: &Ctx, archive: &Path, manifest: &Manifest) -> Result<Vec<StagedDb>> {
    let mut staged_dbs = Vec::new();
    for db in &manifest.sqlite {
        let (staged, snapshot) = stage_entry(ctx, archive, &db.entry, "ugw-backup.sqlite")?;
        staged_dbs.push(StagedDb {
            live: db.path.path(),
            snapshot,
            _staged: staged,
        });
    }
    Ok(staged_dbs)
}

/// Each SQLite snapshot written into its live database, through SQLite's backup API (a
/// connection holding it open sees the restored rows), after a copy of what was there.
fn restore_dbs(ctx: &Ctx, dbs: &[StagedDb], written: &mut Vec<DbBefore>) -> Result<()> {
    for db in dbs {
        ctx.cancel.check()?;
        let live = &db.live;
        let parent = live.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("cannot create {}", parent.display()), &e))?;
        written.push(DbBefore {
            live: live.clone(),
            copy: copy_before(ctx, live)?,
        });
        let check = sqlite::restore_into(&db.snapshot, live, ctx.step_deadline(), &ctx.cancel)?;
        ctx.reporter.info(&format!(
            "{}: restored through SQLite's backup API (integrity_check {check})",
            live.display()
        ));
    }
    Ok(())
}

/// A copy of the live database before the restore writes into it, to put back on failure.
/// A database that cannot be copied (damaged: the reason for the restore, perhaps) is
/// restored all the same, and said so.
fn copy_before(ctx: &Ctx, live: &Path) -> Result<Option<AtomicFile>> {
    if !live.is_file() {
        return Ok(None);
    }
    let copy = AtomicFile::create(&scratch("ugw-backup.before.db"))?;
    match sqlite::snapshot(live, copy.temp_path(), ctx.step_deadline(), &ctx.cancel) {
        Ok(_) => Ok(Some(copy)),
        Err(e) if e.kind == ErrorKind::Corrupt => {
            ctx.reporter.warn(&format!(
                "{}: no copy of it could be kept to put back if the restore fails ({})",
                live.display(),
                e.message
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Put a live database back as it was before the restore wrote into it.
fn undo_db(ctx: &Ctx, db: &DbBefore) -> Result<()> {
    let Some(copy) = &db.copy else {
        return Ok(());
    };
    sqlite::restore_into(copy.temp_path(), &db.live, ctx.step_deadline(), &ctx.cancel)?;
    ctx.reporter.info(&format!(
        "{}: put back as it was before the restore",
        db.live.display()
    ));
    Ok(())
}

/// The databases the dumps go into: `given` (`--pg`), or the one each was dumped from, as the
/// manifest's connection fields name it. A restore in place goes back into the database it
/// came from: `--pg` naming another one needs `--force`. A manifest without those fields
/// (older) gives its URL, and the database it names must be the one the dump's entry was
/// named after at create time.
pub fn pg_targets(
    ctx: &Ctx,
    manifest: &Manifest,
    given: Option<&crate::pg::Target>,
    in_place: bool,
    force: bool,
) -> Result<Vec<crate::pg::Target>> {
    let mut targets = Vec::new();
    for dump in &manifest.pg {
        let backed_up = match &dump.connection {
            Some(connection) => crate::pg::Target::from_connection(connection)?,
            None => crate::pg::Target::parse(&dump.url, ctx.scrubber())?,
        };
        let dumped_as = dump_database_of(&dump.entry);
        if dumped_as.as_deref() != Some(backed_up.database.replace('/', "_").as_str()) {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "the manifest names database {:?} for the dump {}, which was made of another one: nothing restored",
                    backed_up.database,
                    dump.entry.shown()
                ),
            ));
        }
        let Some(given) = given else {
            targets.push(backed_up);
            continue;
        };
        if in_place && !force && given.database != backed_up.database {
            return Err(Error::usage(format!(
                "--pg names database {:?}, but the backup is of database {:?}: an in-place restore goes back where it came from; --force restores into {:?} anyway",
                given.database, backed_up.database, given.database
            )));
        }
        targets.push(given.clone());
    }
    Ok(targets)
}

/// The database name a dump's entry was given at create (`ugw-db/pg/<index>-<name>.dump`,
/// `/` as `_`).
fn dump_database_of(entry: &Name) -> Option<String> {
    let path = entry.path();
    let file = path.file_name()?.to_str()?;
    let (_, rest) = file.split_once('-')?;
    rest.strip_suffix(".dump").map(str::to_string)
}

/// Each PostgreSQL dump read out of the archive into the temp folder.
fn stage_dumps(
    ctx: &Ctx,
    archive: &Path,
    manifest: &Manifest,
    targets: &[crate::pg::Target],
) -> Result<Vec<StagedDump>> {
    let mut dumps = Vec::new();
    for (dump, into) in manifest.pg.iter().zip(targets) {
        let (staged, file) = stage_entry(ctx, archive, &dump.entry, "ugw-backup.pg-restore")?;
        dumps.push(StagedDump {
            into: into.clone(),
            file,
            _staged: staged,
        });
    }
    Ok(dumps)
}

/// Each dump restored with `pg_restore --clean --if-exists --single-transaction`.
fn restore_dumps(ctx: &Ctx, dumps: &[StagedDump]) -> Result<()> {
    for dump in dumps {
        crate::pg::restore(&dump.into, &dump.file, ctx.step_deadline(), &ctx.cancel)?;
        ctx.reporter.info(&format!(
            "{}: restored with pg_restore --clean --if-exists --single-transaction",
            dump.into.shown
        ));
    }
    Ok(())
}

/// The PostgreSQL dumps restored into `targets` (a restore `--to` a folder with `--pg`).
pub fn restore_pg(
    ctx: &Ctx,
    archive: &Path,
    manifest: &Manifest,
    targets: &[crate::pg::Target],
) -> Result<()> {
    let dumps = stage_dumps(ctx, archive, manifest, targets)?;
    restore_dumps(ctx, &dumps)
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
