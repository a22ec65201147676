//! `--keep N` (issue 21 item 16): after a successful fetch, the staged artifacts in `--dest`
//! beyond the N newest are removed, so that staging does not grow by a release each upgrade.
//! Only what ugw-fetch made and can recognise is ever removed: a folder it extracted (its
//! `.ugw-fetch` marker lists the archive's digest and every entry), a real folder of the
//! invoking user's or root's. A downloaded file carries no marker and is never removed, nor
//! is anything else in the folder. Never removed either: the artifact this step staged, and
//! any artifact a `ugw-fetch` step of this run's record staged (a later step of the run may
//! still publish it). It runs under the staging folder's lock, so no other fetch is writing.

use std::path::{Path, PathBuf};
use std::time::SystemTime;
use ugw_shared::results::Fetched;
use ugw_shared::tree_manifest::{FETCH_MARKER, TreeManifest};
use ugw_shared::{Ctx, Error, Result};

/// A folder ugw-fetch extracted, and when (its marker's modification time).
struct Staged {
    name: String,
    path: PathBuf,
    marked_at: SystemTime,
}

/// The folders in `dest` that ugw-fetch extracted, newest first.
fn staged_folders(dest: &Path) -> Result<Vec<Staged>> {
    let entries = std::fs::read_dir(dest)
        .map_err(|e| Error::io(format!("cannot read {}", dest.display()), &e))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let path = entry.path();
        // Hidden names are ugw's own work (temp files, the lock) or not ugw's at all.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if name.starts_with('.')
            || !meta.is_dir()
            || !ugw_shared::owner_only::owned_by_invoker(&meta)
        {
            continue;
        }
        let marker = path.join(FETCH_MARKER);
        let Ok(marker_meta) = std::fs::symlink_metadata(&marker) else {
            continue;
        };
        // A marker that reads back as ugw-fetch writes it: a digest and a manifest.
        if !marker_meta.is_file() || TreeManifest::in_fetch_marker(&path).is_none() {
            continue;
        }
        found.push(Staged {
            name,
            path,
            marked_at: marker_meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    found.sort_by(|a, b| (b.marked_at, &b.name).cmp(&(a.marked_at, &a.name)));
    Ok(found)
}

/// Whether `path` and `other` name the same entry of `dest` (a record's path may be spelled
/// another way: relative, with `./`).
fn same_entry(path: &Path, other: &Path) -> bool {
    match (std::fs::canonicalize(path), std::fs::canonicalize(other)) {
        (Ok(a), Ok(b)) => a == b,
        _ => path == other,
    }
}

/// Remove the extracted folders in `dest` beyond the `keep` newest; never `just_staged` nor
/// one a `ugw-fetch` step of this run names. Returns the names removed.
pub(crate) fn prune(
    ctx: &Ctx,
    dest: &Path,
    keep: usize,
    just_staged: &Path,
) -> Result<Vec<String>> {
    let in_use: Vec<PathBuf> = ctx
        .this_run()
        .results_newest_first::<Fetched>()
        .into_iter()
        .map(|(_, fetched)| PathBuf::from(fetched.path))
        .chain(std::iter::once(just_staged.to_path_buf()))
        .collect();
    let mut pruned = Vec::new();
    for staged in staged_folders(dest)?.into_iter().skip(keep) {
        if in_use.iter().any(|used| same_entry(used, &staged.path)) {
            continue;
        }
        // Renamed aside first: a folder half removed never carries an artifact's name (an
        // interrupted prune leaves a `.NAME.XXXXXXXXXX.unpack`, which a fetch of NAME sweeps).
        let aside = ugw_shared::atomic::temp_name(&staged.path, "unpack");
        ugw_shared::atomic::rename_durable(&staged.path, &aside)?;
        std::fs::remove_dir_all(&aside)
            .map_err(|e| Error::io(format!("cannot remove {}", aside.display()), &e))?;
        pruned.push(staged.name);
    }
    if !pruned.is_empty() {
        ctx.reporter.info(&format!(
            "pruned {} staged artifact(s) beyond --keep {keep}: {}",
            pruned.len(),
            pruned.join(", ")
        ));
    }
    Ok(pruned)
}
