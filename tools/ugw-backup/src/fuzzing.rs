//! The manifest reader, reachable from fuzz/ only (the `fuzzing` feature, never enabled by
//! the workspace build): the fuzz target drives the real code.

use std::path::{Path, PathBuf};

/// Where the manifest sidecar of `archive` is read from.
#[must_use]
pub fn manifest_sidecar(archive: &Path) -> PathBuf {
    crate::manifest::sidecars(archive).0
}

/// Read the sidecar manifest of `archive` as `verify`, `list` and `restore` do, then every
/// name in it as bytes, a path and a shown name (a name that is base64 is decoded): the
/// number of names read, or why the manifest was refused.
pub fn read_manifest(archive: &Path) -> Result<usize, String> {
    let (manifest, _) = crate::verify::read_manifest(archive).map_err(|e| e.to_string())?;
    let mut names: Vec<&crate::manifest::Name> = Vec::new();
    names.extend(manifest.roots.iter().flat_map(|r| [&r.path, &r.entry]));
    names.extend(manifest.entries.iter().map(|e| &e.path));
    names.extend(manifest.entries.iter().filter_map(|e| e.link.as_ref()));
    names.extend(manifest.sqlite.iter().flat_map(|s| [&s.path, &s.entry]));
    names.extend(manifest.pg.iter().map(|p| &p.entry));
    names.extend(manifest.pg_globals.iter());
    names.extend(manifest.changed_while_read.iter());
    names.extend(manifest.excluded.iter());
    for name in &names {
        let _ = (name.bytes(), name.path(), name.shown());
    }
    Ok(names.len())
}
