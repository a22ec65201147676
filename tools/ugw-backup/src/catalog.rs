//! `list` and `prune`: the backups in a folder, read from their manifest sidecars (never the
//! archives), and the removal of old ones with their sidecars.

use crate::manifest;
use crate::verify::read_manifest;
use serde::Serialize;
use std::path::Path;
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

/// The entries of the backup folder that can be backups: not hidden (a create's temp files
/// and the lock are), each with its path and its name.
fn visible_entries(dir: &Path) -> Result<Vec<(std::path::PathBuf, String)>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot list {}", dir.display()), &e))?;
    Ok(entries
        .flatten()
        .map(|entry| {
            (
                entry.path(),
                entry.file_name().to_string_lossy().into_owned(),
            )
        })
        .filter(|(_, name)| !name.starts_with('.'))
        .collect())
}

/// Every backup in `dir`, newest first.
pub fn list(dir: &Path) -> Result<Vec<Listed>> {
    let mut found = Vec::new();
    for (path, name) in visible_entries(dir)? {
        if ![".tar.gz", ".tar.zst", ".tar"]
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

/// Which backups a prune may remove: only ugw archives of one backup set. An archive counts
/// when it is a regular file named as its manifest sidecar says, has its checksum sidecar,
/// was made on this host, and (when given) its name starts with `prefix` and it backs up
/// the same paths and databases as `like` (the backup `create --keep` just made). Anything
/// else in the folder (`customer-export.tar.gz`, a folder named `x.tar`) is never touched.
pub struct Set<'a> {
    pub host: &'a str,
    pub prefix: Option<&'a str>,
    pub like: Option<&'a manifest::Manifest>,
}

impl Set<'_> {
    fn holds(&self, archive: &Path) -> Option<manifest::Manifest> {
        let meta = std::fs::symlink_metadata(archive).ok()?;
        let (_, sum) = manifest::sidecars(archive);
        if !meta.is_file() || !std::fs::symlink_metadata(&sum).is_ok_and(|m| m.is_file()) {
            return None;
        }
        let (found, _) = read_manifest(archive).ok()?;
        let file_name = archive.file_name()?.to_str()?;
        let named_so = [".tar.gz", ".tar.zst", ".tar"]
            .iter()
            .any(|ext| file_name.strip_suffix(ext) == Some(found.name.as_str()));
        let same_contents = |like: &manifest::Manifest| {
            let roots = |m: &manifest::Manifest| -> Vec<Vec<u8>> {
                m.roots.iter().map(|r| r.path.bytes()).collect()
            };
            let dbs = |m: &manifest::Manifest| -> Vec<Vec<u8>> {
                m.sqlite.iter().map(|d| d.path.bytes()).collect()
            };
            let dumps = |m: &manifest::Manifest| -> Vec<String> {
                m.pg.iter()
                    .map(|d| {
                        d.connection
                            .as_ref()
                            .map_or_else(|| d.url.clone(), |c| c.dbname.clone())
                    })
                    .collect()
            };
            roots(&found) == roots(like) && dbs(&found) == dbs(like) && dumps(&found) == dumps(like)
        };
        (named_so
            && found.host == self.host
            && self.prefix.is_none_or(|p| found.name.starts_with(p))
            && self.like.is_none_or(same_contents))
        .then_some(found)
    }
}

/// What a prune did: the archives removed (with their sidecars), and those it could not
/// remove, with why (it went on past them).
#[derive(Debug, Default)]
pub struct Pruned {
    pub removed: Vec<String>,
    pub not_removed: Vec<String>,
}

/// Remove all but the newest `keep` backups of `set`, never `spare`; each removal is said on
/// stderr. Also removes the partial files an interrupted create left (the caller holds the
/// folder's lock, so no create is writing them).
pub fn prune(
    reporter: &ugw_shared::report::Reporter,
    dir: &Path,
    keep: usize,
    spare: Option<&Path>,
    set: &Set<'_>,
) -> Result<Pruned> {
    let spare = spare.and_then(|p| std::path::absolute(p).ok());
    let mut ours = Vec::new();
    for (path, name) in visible_entries(dir)? {
        if let Some(found) = set.holds(&path) {
            ours.push((found.created, name, path));
        }
    }
    ours.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    let mut pruned = Pruned::default();
    for (_, _, archive) in ours.into_iter().skip(keep) {
        if spare.as_deref() == std::path::absolute(&archive).ok().as_deref() {
            continue;
        }
        let (manifest_path, sum_path) = manifest::sidecars(&archive);
        // The checksum first: a backup cut short of its removal reads as incomplete, not whole.
        let failed = [&sum_path, &archive, &manifest_path]
            .into_iter()
            .find_map(|path| match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Some(format!("{}: {e}", path.display()))
                }
                _ => None,
            });
        let shown = archive.display().to_string();
        if let Some(why) = failed {
            reporter.warn(&format!("prune: cannot remove {shown} ({why}); going on"));
            pruned.not_removed.push(shown);
        } else {
            reporter.info(&format!("prune: removed {shown} and its sidecars"));
            pruned.removed.push(shown);
        }
    }
    remove_partials(reporter, dir);
    Ok(pruned)
}

/// The partial files an interrupted create left in `dir` removed (the caller holds the
/// folder's lock, so no create is writing them now).
pub fn remove_partials(reporter: &ugw_shared::report::Reporter, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let partial = name.starts_with('.')
            && left_by_a_create(&name)
            && entry.file_type().is_ok_and(|t| t.is_file());
        if partial && std::fs::remove_file(entry.path()).is_ok() {
            reporter.info(&format!(
                "removed {}, a partial file left by an interrupted create",
                entry.path().display()
            ));
        }
    }
}

/// The hidden temp names a create writes: `AtomicFile`'s `.NAME.RANDOM.tmp` (NAME an
/// archive, a sidecar or a database copy), and beside a database copy the files SQLite keeps
/// while it has the copy open (`-journal` while the pages are copied, `-wal` and `-shm` once
/// it is opened in WAL mode), which a kill leaves as they were.
fn left_by_a_create(name: &str) -> bool {
    let (temp, beside) = match ["-journal", "-wal", "-shm"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
    {
        Some(temp) => (temp, true),
        None => (name, false),
    };
    let Some((target, random)) = temp
        .strip_prefix('.')
        .and_then(|rest| rest.strip_suffix(".tmp"))
        .and_then(|rest| rest.rsplit_once('.'))
    else {
        return false;
    };
    let random = random.len() == ugw_shared::atomic::TEMP_RANDOM_LEN
        && random.bytes().all(|b| b.is_ascii_alphanumeric());
    let kinds: &[&str] = if beside {
        &[".sqlite-"]
    } else {
        &[".tar", ".manifest.json", ".sha256", ".sqlite-", ".pg-"]
    };
    random && kinds.iter().any(|kind| target.contains(kind))
}

#[cfg(test)]
mod tests {
    use super::left_by_a_create;

    #[test]
    fn only_the_temp_names_of_a_create_and_their_sqlite_companions_are_partials() {
        for ours in [
            ".b1.tar.gz.Xy12Zw34Qp.tmp",
            ".b1.tar.gz.manifest.json.Xy12Zw34Qp.tmp",
            ".b1.sqlite-0.Xy12Zw34Qp.tmp",
            ".b1.sqlite-0.Xy12Zw34Qp.tmp-journal",
            ".b1.sqlite-3.Xy12Zw34Qp.tmp-wal",
            ".b1.sqlite-3.Xy12Zw34Qp.tmp-shm",
            ".b1.pg-0.Xy12Zw34Qp.tmp",
        ] {
            assert!(left_by_a_create(ours), "{ours}");
        }
        for not_ours in [
            ".notes.tmp",
            ".notes.sqlite-0.tmp-journal",
            ".b1.sqlite-0.short.tmp",
            ".b1.pg-0.Xy12Zw34Qp.tmp-journal",
            ".b1.tar.gz.Xy12Zw34Qp.tmp-wal",
            "b1.sqlite-0.Xy12Zw34Qp.tmp",
            ".b1.sqlite-0.Xy12Zw34Q!.tmp",
            ".b1.sqlite-0.Xy12Zw34Qp.tmp-journal.bak",
        ] {
            assert!(!left_by_a_create(not_ours), "{not_ours}");
        }
    }
}
