//! A folder tree's manifest: every entry's relative path and what it is (a folder, a file with
//! its SHA-256 and executable bit, a symbolic link with its target). ugw-fetch writes one for
//! a folder it extracted and records the manifest's own digest in its step; ugw-swap checks
//! the folder against it before it publishes it, and names the paths that differ.

use crate::digest::{Sha256, sha256_file};
use crate::error::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Entry {
    Dir,
    File { sha256: String, exec: bool },
    Symlink { target: String },
}

/// Relative path (with `/`) → entry, sorted, so that one tree always gives the same bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TreeManifest(BTreeMap<String, Entry>);

/// Paths named at most in a message about differences.
const SHOWN: usize = 5;

/// ugw-fetch's marker inside a folder it extracted: the archive's digest, its URL and the
/// manifest of every entry (the marker itself left out).
pub const FETCH_MARKER: &str = ".ugw-fetch";
/// The most a marker may weigh when read back (its manifest lists every entry).
const FETCH_MARKER_LIMIT: usize = 64 * 1024 * 1024;

impl TreeManifest {
    /// The manifest of the folder `root`, leaving out top-level names in `skip` (markers).
    pub fn of(root: &Path, skip: &[&str]) -> Result<Self> {
        let mut entries = BTreeMap::new();
        walk(root, "", skip, &mut entries)?;
        Ok(TreeManifest(entries))
    }

    /// What the ugw-fetch marker of the folder `dir` lists: the archive's digest and the
    /// manifest. `None` when there is no marker, it does not read back, or it lists no
    /// manifest (an older ugw-fetch).
    #[must_use]
    pub fn in_fetch_marker(dir: &Path) -> Option<(String, Self)> {
        let bytes = crate::atomic::read_capped(&dir.join(FETCH_MARKER), FETCH_MARKER_LIMIT).ok()?;
        let mut marker: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let sha256 = marker["sha256"].as_str()?.to_string();
        let manifest = serde_json::from_value(marker["manifest"].take()).ok()?;
        Some((sha256, manifest))
    }

    /// One more field of the ugw-fetch marker of the folder `dir` (the options that shaped
    /// the staging), `None` when there is no marker or it lacks the field.
    #[must_use]
    pub fn fetch_marker_field(dir: &Path, field: &str) -> Option<serde_json::Value> {
        let bytes = crate::atomic::read_capped(&dir.join(FETCH_MARKER), FETCH_MARKER_LIMIT).ok()?;
        let mut marker: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        Some(marker.get_mut(field)?.take())
    }

    /// SHA-256 of the manifest's canonical JSON: what a step records to vouch for the tree.
    #[must_use]
    pub fn digest(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("a manifest of strings serialises");
        let mut hasher = Sha256::default();
        hasher.update(&bytes);
        hasher.hex()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The paths where `actual` differs from this manifest (changed, missing, added), sorted.
    #[must_use]
    pub fn differences(&self, actual: &TreeManifest) -> Vec<String> {
        let mut out = Vec::new();
        for (path, entry) in &self.0 {
            match actual.0.get(path) {
                None => out.push(format!("{path} (missing)")),
                Some(found) if found != entry => out.push(format!("{path} (changed)")),
                Some(_) => {}
            }
        }
        for path in actual.0.keys().filter(|p| !self.0.contains_key(*p)) {
            out.push(format!("{path} (added)"));
        }
        out.sort();
        out
    }

    /// The differences as one clause: at most a few paths, then how many more.
    #[must_use]
    pub fn describe_differences(&self, actual: &TreeManifest) -> String {
        let all = self.differences(actual);
        let text = all
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        match all.len().saturating_sub(SHOWN) {
            0 => text,
            more => format!("{text} and {more} more"),
        }
    }
}

fn walk(
    root: &Path,
    rel: &str,
    skip: &[&str],
    entries: &mut BTreeMap<String, Entry>,
) -> Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let read = |e: std::io::Error| Error::io(format!("cannot read {}", dir.display()), &e);
    for entry in std::fs::read_dir(&dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(Error::new(
                ErrorKind::UnsafeInput,
                format!("{} has a name that is not UTF-8", entry.path().display()),
            ));
        };
        if rel.is_empty() && skip.contains(&name) {
            continue;
        }
        let child = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let full = root.join(&child);
        let meta = std::fs::symlink_metadata(&full)
            .map_err(|e| Error::io(format!("cannot read {}", full.display()), &e))?;
        if meta.is_dir() {
            entries.insert(child.clone(), Entry::Dir);
            walk(root, &child, skip, entries)?;
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&full)
                .map_err(|e| Error::io(format!("cannot read {}", full.display()), &e))?;
            entries.insert(
                child,
                Entry::Symlink {
                    target: target.to_string_lossy().into_owned(),
                },
            );
        } else if meta.is_file() {
            entries.insert(
                child,
                Entry::File {
                    sha256: sha256_file(&full)?,
                    exec: meta.permissions().mode() & 0o111 != 0,
                },
            );
        } else {
            return Err(Error::new(
                ErrorKind::UnsafeInput,
                format!("{} is a device, socket or FIFO", full.display()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_names_what_changed_was_added_or_went_missing() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path();
        std::fs::create_dir_all(tree.join("bin")).unwrap();
        std::fs::write(tree.join("bin/app"), "v1").unwrap();
        std::fs::write(tree.join("README"), "read me").unwrap();
        std::fs::write(tree.join(".marker"), "skipped").unwrap();
        std::os::unix::fs::symlink("bin/app", tree.join("app")).unwrap();
        let first = TreeManifest::of(tree, &[".marker"]).unwrap();
        assert_eq!(first.len(), 4);
        assert_eq!(
            TreeManifest::of(tree, &[".marker"]).unwrap().digest(),
            first.digest()
        );

        std::fs::write(tree.join(".marker"), "changed, still skipped").unwrap();
        std::fs::write(tree.join("bin/app"), "v2").unwrap();
        std::fs::remove_file(tree.join("README")).unwrap();
        std::fs::write(tree.join("bin/extra"), "").unwrap();
        let now = TreeManifest::of(tree, &[".marker"]).unwrap();
        assert_ne!(now.digest(), first.digest());
        assert_eq!(
            first.differences(&now),
            ["README (missing)", "bin/app (changed)", "bin/extra (added)"]
        );

        std::fs::write(tree.join("bin/app"), "v1").unwrap();
        std::fs::write(tree.join("README"), "read me").unwrap();
        std::fs::remove_file(tree.join("bin/extra")).unwrap();
        std::fs::set_permissions(tree.join("bin/app"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let exec = TreeManifest::of(tree, &[".marker"]).unwrap();
        assert_eq!(first.differences(&exec), ["bin/app (changed)"]);
    }

    #[test]
    fn a_manifest_reads_back_from_its_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "a").unwrap();
        let manifest = TreeManifest::of(dir.path(), &[]).unwrap();
        let text = serde_json::to_string(&manifest).unwrap();
        assert!(text.contains("\"type\":\"file\""), "{text}");
        let back: TreeManifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back.digest(), manifest.digest());
    }
}
