//! The backup manifest reader (`ugw-backup verify`, `list`, `restore`): a sidecar of any
//! bytes is read or refused as corrupt, never a panic, and every name in an accepted one
//! (text or base64) can be turned into a path and shown.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One folder for the whole run: the sidecar is rewritten for each input.
fn archive() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp folder for the fuzz run");
        let archive = dir.path().join("app.tar.gz");
        (dir, archive)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    let archive = archive();
    std::fs::write(ugw_backup::fuzzing::manifest_sidecar(archive), data)
        .expect("writing the sidecar in the temp folder");
    let _ = ugw_backup::fuzzing::read_manifest(archive);
});
