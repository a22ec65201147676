//! The note a swap leaves before it switches (`current` to a release, a new binary over the
//! target) when a restart is to follow, removed once that restart ran to an outcome (or the
//! switch was taken back): a rerun that finds it knows the switch happened but the restart
//! never did (the run was killed between the two), and finishes the swap as that run would
//! have. Release-folder mode keeps it in the release, binary mode beside the target; each
//! mode says what its note holds.

use crate::Options;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use ugw_shared::atomic::sync_dir;
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// The note's file name (binary mode: its suffix after the target's name).
pub(crate) const NOTE: &str = ".ugw-restart-pending";

/// A note is a few names and digests: anything longer is not one of ours.
const MAX_NOTE_BYTES: usize = 4096;

/// Whether the swap restarts the service after the switch (`--restart` or `--start`): only
/// then is there a restart to note.
pub(crate) fn restart_follows(options: &Options) -> bool {
    options.restart.is_some() || options.start.is_some()
}

/// Write `note` at `path` atomically (a temp file renamed over it: a symlink planted there
/// is replaced, never followed).
pub(crate) fn write(path: &Path, note: &impl Serialize) -> Result<()> {
    let text = serde_json::to_vec(note).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot serialise {}: {e}", path.display()),
        )
    })?;
    ugw_shared::atomic::write_atomic(path, &text)
}

/// The note at `path`, if there is one as a regular file (never read through a symlink); a
/// note that does not parse reads as the default (it still says a restart is pending).
pub(crate) fn read<T: DeserializeOwned + Default>(path: &Path) -> Option<T> {
    let bytes = ugw_shared::atomic::read_capped(path, MAX_NOTE_BYTES).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap_or_default())
}

/// The restart the note at `path` stood for ran (or is not wanted any more): the note goes.
/// One left behind would only cost a later rerun one more restart, so a failure to remove it
/// is said, not fatal.
pub(crate) fn clear(ctx: &Ctx, path: &Path) {
    let removed = match std::fs::remove_file(path) {
        Ok(()) => sync_dir(folder_of(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), &e)),
    };
    if let Err(e) = removed {
        ctx.reporter.warn(&e.message);
    }
}

/// The folder `path` is in: a bare name (`--target app`) has the empty path as its parent,
/// and the folder is `.`.
pub(crate) fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}
