//! `list` and `prune`: the backups in a folder, read from their manifest sidecars (never the
//! archives), and the removal of old ones with their sidecars.

use crate::manifest;
use crate::verify::read_manifest;
use serde::Serialize;
use std::path::{Path, PathBuf};
use ugw_shared::{Error, Result};

#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub archive: String,
    pub name: String,
    pub bytes: u64,
    pub created: String,
    pub app_version: Option<String>,
    /// `complete` (archive and both sidecars), or what is missing.
    pub state: String,
}

/// Every backup in `dir`, newest first.
pub fn list(dir: &Path) -> Result<Vec<Listed>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot list {}", dir.display()), &e))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            || ![".tar.gz", ".tar.zst", ".tar"]
                .iter()
                .any(|ext| name.ends_with(ext))
        {
            continue;
        }
        found.push(describe(&path));
    }
    found.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.name.cmp(&a.name)));
    Ok(found)
}

fn describe(archive: &Path) -> Listed {
    let (_, sum) = manifest::sidecars(archive);
    let bytes = std::fs::metadata(archive).map_or(0, |m| m.len());
    let file_name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match read_manifest(archive) {
        Ok((manifest, _)) => Listed {
            archive: archive.display().to_string(),
            name: manifest.name,
            bytes,
            created: manifest.created,
            app_version: manifest.app_version,
            state: if sum.exists() {
                "complete".into()
            } else {
                "no checksum sidecar".into()
            },
        },
        Err(_) => Listed {
            archive: archive.display().to_string(),
            name: file_name,
            bytes,
            created: String::new(),
            app_version: None,
            state: "no manifest sidecar".into(),
        },
    }
}

/// Remove all but the newest `keep` backups, never `spare`; returns the removed archives.
pub fn prune(dir: &Path, keep: usize, spare: Option<&Path>) -> Result<Vec<String>> {
    let spare = spare.and_then(|p| std::path::absolute(p).ok());
    let mut removed = Vec::new();
    for old in list(dir)?.into_iter().skip(keep) {
        let archive = PathBuf::from(&old.archive);
        if spare.as_deref() == std::path::absolute(&archive).ok().as_deref() {
            continue;
        }
        let (manifest_path, sum_path) = manifest::sidecars(&archive);
        // The checksum first: a backup cut short of its removal reads as incomplete, not whole.
        for path in [&sum_path, &archive, &manifest_path] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(format!("cannot remove {}", path.display()), &e));
                }
                _ => {}
            }
        }
        removed.push(old.archive);
    }
    Ok(removed)
}
