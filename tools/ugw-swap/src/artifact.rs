//! What ugw-swap checks about an artifact before it publishes it (ugw(7), WHAT A TOOL
//! TRUSTS): only its owner or root can change it (it, its staging folder, every folder on the
//! way), and when it is the artifact a `ugw-fetch` step of this run staged, it is still what
//! that step verified: a file by its SHA-256, an extracted folder by the manifest ugw-fetch
//! recorded. The record is input; the file may have been replaced since, or the step forged.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use ugw_shared::digest::{sha256_file, sha256_path};
use ugw_shared::results::Fetched;
use ugw_shared::tree_manifest::{FETCH_MARKER, TreeManifest};
use ugw_shared::{Error, ErrorKind, Result};

/// The `ugw-fetch` step's word on the artifact about to be published.
#[derive(Debug, Clone)]
pub(crate) struct Vouched {
    pub path: PathBuf,
    pub sha256: String,
    pub manifest_sha256: Option<String>,
}

impl Vouched {
    pub(crate) fn from_step(step: &Fetched) -> Self {
        Vouched {
            path: PathBuf::from(&step.path),
            sha256: step.sha256.clone(),
            manifest_sha256: step.manifest_sha256.clone(),
        }
    }

    /// What the step vouched for, in one word: an extracted folder's manifest digest, or the
    /// file's sha256. A release moved from it records this (its marker's `fetched`).
    pub(crate) fn digest(&self) -> String {
        self.manifest_sha256
            .clone()
            .unwrap_or_else(|| self.sha256.clone())
    }

    /// Whether `from` (given on the command line) is the artifact this step staged: the same
    /// file or folder, however the two paths are spelled.
    pub(crate) fn names(&self, from: &Path) -> bool {
        match (std::fs::metadata(from), std::fs::metadata(&self.path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
}

fn mismatch(message: String) -> Error {
    Error::new(ErrorKind::ChecksumMismatch, message)
}

/// Check `from` before anything is switched: its ownership and modes, then, when a fetch
/// step vouches for it, its content. Returns its digest as a release marker records it
/// (`sha256_path`, skipping `skip`): a file is hashed once, for the check and the marker.
pub(crate) fn check(from: &Path, vouched: Option<&Vouched>, skip: &[&str]) -> Result<String> {
    if let Some(refused) = ugw_shared::atomic::link_refused(from, "--from") {
        return Err(refused);
    }
    ugw_shared::owner_only::check_tree(from, "the artifact")?;
    let Some(vouched) = vouched else {
        return sha256_path(from, skip);
    };
    let meta = std::fs::symlink_metadata(from)
        .map_err(|e| Error::io(format!("cannot read {}", from.display()), &e))?;
    if meta.is_dir() {
        check_folder(from, vouched)?;
        return sha256_path(from, skip);
    }
    let got = sha256_file(from)?;
    check_digest(from, &got, &vouched.sha256)?;
    Ok(got)
}

/// A file's digest against the step's (the whole digest, any case).
pub(crate) fn check_digest(from: &Path, got: &str, expected: &str) -> Result<()> {
    if got.eq_ignore_ascii_case(expected) {
        return Ok(());
    }
    Err(mismatch(format!(
        "{} has sha256 {got}, not the {expected} the ugw-fetch step verified: it changed \
         since, or the record names another file; nothing was switched",
        from.display()
    )))
}

/// An extracted folder against the manifest the step vouches for (its digest); the folder's
/// own marker, when it still lists that manifest, names the paths that differ.
pub(crate) fn check_folder(from: &Path, vouched: &Vouched) -> Result<()> {
    let Some(expected) = &vouched.manifest_sha256 else {
        return Err(mismatch(format!(
            "{} is a folder, and the ugw-fetch step records no manifest of it (an older \
             ugw-fetch, or a step written by hand): what it holds cannot be checked against \
             what was verified; fetch it again; nothing was switched",
            from.display()
        )));
    };
    let found = TreeManifest::of(from, &[FETCH_MARKER])?;
    if found.digest() == *expected {
        return Ok(());
    }
    let listed = TreeManifest::in_fetch_marker(from)
        .map(|(_, listed)| listed)
        .filter(|listed| listed.digest() == *expected);
    let what = match listed {
        Some(listed) => format!(
            "these paths differ: {}",
            listed.describe_differences(&found)
        ),
        None => "its content differs, and its marker no longer lists what was verified".into(),
    };
    Err(mismatch(format!(
        "{} is not the folder the ugw-fetch step verified ({what}); nothing was switched",
        from.display()
    )))
}
