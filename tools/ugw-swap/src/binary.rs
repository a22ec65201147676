//! Binary mode: the new binary is written beside the old one (same owner, mode, extended
//! attributes), the old one is hard-linked to `PATH.ugw-prev`, and the new one renamed over
//! PATH. There is never a moment without a binary, and a running old binary is no obstacle
//! (a rename, never a write into it, so no "text file busy"). When a restart follows, a note
//! `TARGET.ugw-restart-pending` (the new binary's digest and the one before's) is written
//! first and goes once the restart ran: a rerun of a swap killed between the two restarts.

use crate::artifact::check_digest;
use crate::pending;
use crate::restart::restart_service;
use crate::this_run::nothing_to_take_back;
use crate::{BinaryMode, Options, Swapped, restart_failed};
use serde::{Deserialize, Serialize};
use std::io::Seek;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use ugw_shared::atomic::{AtomicFile, open_regular, sibling, sync_dir};
use ugw_shared::digest::{sha256_file, sha256_reader};
use ugw_shared::{Ctx, Error, ErrorKind, Result, lock};

/// The mode of a binary installed where there was none, unless --mode says otherwise.
const DEFAULT_MODE: u32 = 0o755;

fn lock_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map_or_else(|| "target".into(), |n| n.to_string_lossy().into_owned());
    target.with_file_name(format!(".{name}.ugw-swap.lock"))
}

/// What `TARGET.ugw-restart-pending` holds: what a rerun needs to finish a swap killed
/// between its install and its restart as that swap would have finished.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PendingRestart {
    /// The sha256 of the binary installed: a note for another binary is not this one's.
    binary: Option<String>,
    /// The sha256 of the binary before, kept as `TARGET.ugw-prev` (`None`: there was none):
    /// a failed restart switches back to that copy only while it is still this binary.
    previous: Option<String>,
}

/// Where the note of a pending restart lives: beside the target, as `.ugw-prev` does.
fn pending_note(target: &Path) -> PathBuf {
    sibling(target, pending::NOTE)
}

/// The target as it is now: `None` when there is none yet. A symlink or a non-file is
/// refused: renaming over it would replace the link, not the binary it names.
fn existing(target: &Path) -> Result<Option<std::fs::Metadata>> {
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", target.display()), &e)),
        Ok(m) if m.is_file() => Ok(Some(m)),
        Ok(_) => Err(ugw_shared::atomic::refused(
            "--target",
            target,
            "is a symlink or not a regular file; give the file itself",
        )),
    }
}

/// Give `existing` the additional name `name`, replacing whatever had it, in one rename.
fn link_as(existing: &Path, name: &Path) -> Result<()> {
    let temp = ugw_shared::atomic::temp_name(name, "tmp");
    std::fs::hard_link(existing, &temp).map_err(|e| {
        Error::io(
            format!("cannot link {} to {}", existing.display(), temp.display()),
            &e,
        )
    })?;
    std::fs::rename(&temp, name).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        Error::io(format!("cannot rename onto {}", name.display()), &e)
    })
}

/// Copy the extended attributes of `from` (file capabilities, the `SELinux` label) onto `to`.
fn copy_xattrs(from: &Path, to: &std::fs::File) -> Result<()> {
    let fail = |e: rustix::io::Errno| {
        Error::io(
            format!("cannot copy the extended attributes of {}", from.display()),
            &std::io::Error::from(e),
        )
    };
    let size = match rustix::fs::listxattr_query(from) {
        Ok(size) => size,
        Err(rustix::io::Errno::OPNOTSUPP) => return Ok(()),
        Err(e) => return Err(fail(e)),
    };
    let mut names = vec![0u8; size];
    let len = rustix::fs::listxattr(from, &mut names[..]).map_err(fail)?;
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
        let size = rustix::fs::getxattr_query(from, name).map_err(fail)?;
        let mut value = vec![0u8; size];
        let len = rustix::fs::getxattr(from, name, &mut value[..]).map_err(fail)?;
        rustix::fs::fsetxattr(to, name, &value[..len], rustix::fs::XattrFlags::empty())
            .map_err(fail)?;
    }
    Ok(())
}

/// Write `from` beside `target` with the old binary's owner, mode (or `mode`) and extended
/// attributes, keep the old one as `TARGET.ugw-prev`, and rename the new one over it.
/// `source` is the file that was checked and hashed, read again from its start: the very
/// inode, so a rename over its name since changes nothing.
fn install(
    from: &Path,
    source: &mut std::fs::File,
    target: &Path,
    mode: Option<u32>,
) -> Result<()> {
    let old = existing(target)?;
    source
        .rewind()
        .map_err(|e| Error::io(format!("cannot read {}", from.display()), &e))?;
    let mut file = AtomicFile::create(target)?;
    std::io::copy(source, &mut file)
        .and_then(|_| file.flush())
        .map_err(|e| Error::io_write(format!("cannot write {}", file.temp_path().display()), &e))?;
    let written = |e: std::io::Error| Error::io(format!("cannot set up {}", target.display()), &e);
    if let Some(old) = &old {
        // The owner first: a change of owner clears setuid bits and file capabilities.
        rustix::fs::fchown(
            file.file(),
            Some(rustix::fs::Uid::from_raw(old.uid())),
            Some(rustix::fs::Gid::from_raw(old.gid())),
        )
        .map_err(|e| written(e.into()))?;
    }
    let mode = mode.unwrap_or_else(|| old.as_ref().map_or(DEFAULT_MODE, |m| m.mode() & 0o7777));
    file.file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(written)?;
    if old.is_some() {
        copy_xattrs(target, file.file())?;
        link_as(target, &sibling(target, ".ugw-prev"))?;
    }
    file.commit()?;
    Ok(())
}

/// Put `TARGET.ugw-prev` back under TARGET's name; the binary it replaces is kept as
/// `TARGET.ugw-failed`.
fn restore_previous(target: &Path) -> Result<()> {
    let prev = sibling(target, ".ugw-prev");
    link_as(target, &sibling(target, ".ugw-failed"))?;
    link_as(&prev, target)?;
    sync_dir(pending::folder_of(target))
}

/// Binary mode: replace the binary, roll back, or `status`.
pub(crate) fn run(ctx: &mut Ctx, options: &Options, mode: &BinaryMode) -> Result<Swapped> {
    let target = mode.target.as_path();
    let mut result = Swapped {
        mode: "binary".into(),
        target: Some(target.display().to_string()),
        ..Swapped::default()
    };
    let digest_of = |path: &Path| -> Result<Option<String>> {
        Ok(match existing(path)? {
            Some(_) => Some(sha256_file(path)?),
            None => None,
        })
    };
    if options.status {
        result.current = digest_of(target)?;
        result.previous = digest_of(&sibling(target, ".ugw-prev"))?;
        return Ok(result);
    }
    let _lock = if ctx.dry_run {
        None
    } else {
        Some(lock::acquire(
            &lock_path(target),
            options.lock_timeout,
            &ctx.cancel,
            &ctx.host,
            &ctx.tool,
        )?)
    };
    let old = digest_of(target)?;
    result.previous.clone_from(&old);
    if options.rollback {
        return rollback(ctx, options, target, result);
    }
    let from = options.from.clone().ok_or_else(|| {
        Error::usage("no --from, and no ugw-fetch step in the record to take the path from")
    })?;
    let (mut source, new) = open_checked(&from, options)?;
    result.current = Some(new.clone());
    if old.as_deref() == Some(new.as_str()) {
        return already_installed(ctx, options, target, result, &new);
    }
    if ctx.dry_run {
        result.would = Some(format!(
            "replace {} with {}",
            target.display(),
            from.display()
        ));
        return Ok(result);
    }
    note_restart(ctx, options, target, &new, old.as_deref())?;
    ctx.cancel
        .critical(|| install(&from, &mut source, target, mode.mode))?;
    ugw_shared::failpoint::hit("swap.after-current-switch");
    result.changed = true;
    ctx.reporter.info(&format!(
        "{} replaced (sha256 {})",
        target.display(),
        &new[..12]
    ));
    restart_after_install(ctx, options, target, result, old.as_deref())
}

/// Before the install: when a restart follows, note it (the new binary's digest, the one
/// before's) beside the target; when none does, a note an earlier swap left goes (it is for
/// another install, and would mislead a later rerun).
fn note_restart(
    ctx: &Ctx,
    options: &Options,
    target: &Path,
    new: &str,
    old: Option<&str>,
) -> Result<()> {
    if !pending::restart_follows(options) {
        pending::clear(ctx, &pending_note(target));
        return Ok(());
    }
    let note = PendingRestart {
        binary: Some(new.to_string()),
        previous: old.map(str::to_string),
    };
    pending::write(&pending_note(target), &note)
}

/// The target is the binary asked for already: nothing to install. When the run that
/// installed it was killed before its restart (its note says so), the restart runs now;
/// else `--force-restart` restarts anyway.
fn already_installed(
    ctx: &Ctx,
    options: &Options,
    target: &Path,
    mut result: Swapped,
    new: &str,
) -> Result<Swapped> {
    let what = target.display().to_string();
    if let Some(note) = restart_pending(ctx, target, new) {
        if pending::restart_follows(options) {
            return restart_interrupted(ctx, options, target, result, &note);
        }
        ctx.reporter.warn(&format!(
            "{what} became this binary in a run interrupted before its restart, so the \
             service may still run the binary before; give --restart or --start to restart it"
        ));
    }
    if crate::forced_restart(ctx, options, &mut result, &what, None)?.is_none() {
        ctx.reporter
            .info(&format!("{what} is already this binary; nothing to do"));
    }
    Ok(result)
}

/// The note of an install of `installed` (the target's digest) whose restart never ran to
/// its end, if there is one beside the target. A note for another binary (a stale one) is
/// ignored, and said.
fn restart_pending(ctx: &Ctx, target: &Path, installed: &str) -> Option<PendingRestart> {
    let path = pending_note(target);
    let note: PendingRestart = pending::read(&path)?;
    if note.binary.as_deref() == Some(installed) {
        return Some(note);
    }
    ctx.reporter.warn(&format!(
        "{} is for another binary than {} is now (sha256 {}); ignored",
        path.display(),
        target.display(),
        note.binary.as_deref().unwrap_or("unknown")
    ));
    None
}

/// The target is the binary a run killed before its restart installed: run that restart
/// now, as that run would have (a failed one puts the binary before back, while
/// `TARGET.ugw-prev` is still that binary), and finish as it would have.
fn restart_interrupted(
    ctx: &Ctx,
    options: &Options,
    target: &Path,
    mut result: Swapped,
    note: &PendingRestart,
) -> Result<Swapped> {
    result.previous.clone_from(&note.previous);
    let what = format!(
        "{} became this binary in a run interrupted before its restart ran to its end",
        target.display()
    );
    if ctx.dry_run {
        result.would = Some(format!("restart: {what}"));
        return Ok(result);
    }
    ctx.reporter.warn(&format!("{what}; restarting it now"));
    result.changed = true;
    let kept = kept_previous(target)?;
    let before = note.previous.as_deref().filter(|digest| {
        let same = kept.as_deref() == Some(*digest);
        if !same {
            ctx.reporter.warn(&format!(
                "{} is not the binary before (sha256 {digest}) any more; a failed restart \
                 will not switch back",
                sibling(target, ".ugw-prev").display()
            ));
        }
        same
    });
    restart_after_install(ctx, options, target, result, before)
}

/// The digest of `TARGET.ugw-prev`, the copy of the binary before, if there is one.
fn kept_previous(target: &Path) -> Result<Option<String>> {
    let prev = sibling(target, ".ugw-prev");
    existing(&prev)?.map(|_| sha256_file(&prev)).transpose()
}

/// The restart after the new binary is installed, if one was asked for; when it fails, the
/// previous binary is put back and restarted, and the error carries both runs. Once it ran to
/// an outcome, the install's note of a pending restart goes (a failed restart's, once the
/// binary before is back).
fn restart_after_install(
    ctx: &Ctx,
    options: &Options,
    target: &Path,
    mut result: Swapped,
    old: Option<&str>,
) -> Result<Swapped> {
    // --start in binary mode runs CMD where ugw-swap runs (there is no release folder).
    let Some(first) = restart_service(ctx, options, "after_switch", &result, None, None) else {
        return Ok(result);
    };
    let first = first?;
    result.restarted = first.ok;
    let ok = first.ok;
    result.restarts.push(first);
    if ok {
        pending::clear(ctx, &pending_note(target));
        return Ok(result);
    }
    if old.is_none() {
        pending::clear(ctx, &pending_note(target));
        return Err(restart_failed(&result, None));
    }
    ctx.cancel.critical(|| restore_previous(target))?;
    pending::clear(ctx, &pending_note(target));
    result.marked_failed = result.current.take();
    result.current = old.map(str::to_string);
    if let Some(again) = restart_service(ctx, options, "after_revert", &result, None, None) {
        result.restarts.push(again?);
    }
    Err(restart_failed(&result, Some("the previous binary")))
}

/// The new binary, opened once (what is hashed is what is installed) once only its owner or
/// root can change it (the file, its folder, every folder on the way, never through a link),
/// and its digest, which must be what the fetch step verified.
fn open_checked(from: &Path, options: &Options) -> Result<(std::fs::File, String)> {
    if let Some(refused) = ugw_shared::atomic::link_refused(from, "--from") {
        return Err(refused);
    }
    ugw_shared::owner_only::check_path(from, "the artifact")?;
    let mut source =
        open_regular(from).map_err(|e| Error::io(format!("cannot open {}", from.display()), &e))?;
    let new = sha256_reader(&mut source)
        .map_err(|e| Error::io(format!("cannot hash {}", from.display()), &e))?;
    if let Some(vouched) = &options.vouched {
        check_digest(from, &new, &vouched.sha256)?;
    }
    Ok((source, new))
}

fn rollback(
    ctx: &mut Ctx,
    options: &Options,
    target: &Path,
    mut result: Swapped,
) -> Result<Swapped> {
    result.rollback = true;
    let place = target.display().to_string();
    let ours = |r: &Swapped| crate::place::same_place(r.target.as_deref(), target);
    if let Some(why) = nothing_to_take_back(ctx, ours, &place) {
        result.current = existing(target)?.map(|_| sha256_file(target)).transpose()?;
        ctx.reporter.info(&why);
        return Ok(result);
    }
    let prev = sibling(target, ".ugw-prev");
    let Some(prev_digest) = existing(&prev)?.map(|_| sha256_file(&prev)).transpose()? else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("{} does not exist; nothing to roll back to", prev.display()),
        ));
    };
    result.current = Some(prev_digest.clone());
    if result.previous.as_deref() == Some(prev_digest.as_str()) {
        ctx.reporter.info(&format!(
            "{} is already the previous binary",
            target.display()
        ));
        return Ok(result);
    }
    if ctx.dry_run {
        result.would = Some(format!(
            "put {} back as {}",
            prev.display(),
            target.display()
        ));
        return Ok(result);
    }
    ctx.cancel.critical(|| restore_previous(target))?;
    // A restart an interrupted swap to the binary taken out never ran is not wanted any more.
    pending::clear(ctx, &pending_note(target));
    result.changed = true;
    result.marked_failed.clone_from(&result.previous);
    ctx.reporter.info(&format!(
        "rolled back: {} is the previous binary again",
        target.display()
    ));
    if let Some(run) = restart_service(ctx, options, "after_switch", &result, None, None) {
        let run = run?;
        result.restarted = run.ok;
        let ok = run.ok;
        result.restarts.push(run);
        if !ok {
            return Err(restart_failed(&result, None));
        }
    }
    Ok(result)
}
