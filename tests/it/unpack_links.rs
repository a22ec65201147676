//! Hard links that lead out of an archive, with no later entry of the same name (which the
//! exclusive create would refuse anyway): only the hard-link check stands between them and a
//! `linkat` onto a file outside. `ugw-fetch --extract` must refuse each (exit 1, kind
//! `unsafe_input`, naming the hard link), leave nothing in its destination, and leave the
//! outside file with its one link; a hard link to a file earlier in the same archive is still
//! extracted as a link, so the refusal is the check and not hard links refused wholesale.

use crate::kit;

use kit::hostile_archives::Tar;
use kit::{Outcome, run};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const PRECIOUS: &[u8] = b"precious\n";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The names in `dir`, ugw-fetch's lock file left out.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != ".ugw-fetch.lock")
        .collect();
    names.sort();
    names
}

/// `ugw-fetch --extract` of the archive file at `archive` into `dest/out`.
fn fetch_extract(archive: &Path, dest: &Path) -> Outcome {
    run(kit::fetch_extract_cmd(archive, dest))
}

/// The folder layout of a test: `victim` and `archives/` in the folder, and `sandbox/` (the
/// fetch destination) holding `app-v1`, an artifact staged there before. From the temp folder
/// the extraction writes into (`sandbox/.out.*.unpack`), `../../victim` is the victim.
struct Layout {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Layout {
    fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(root.join("victim"), PRECIOUS).unwrap();
        std::fs::create_dir(root.join("archives")).unwrap();
        std::fs::create_dir(root.join("sandbox")).unwrap();
        std::fs::write(root.join("sandbox/app-v1"), PRECIOUS).unwrap();
        Layout { _dir: dir, root }
    }

    fn sandbox(&self) -> PathBuf {
        self.root.join("sandbox")
    }

    fn outside_files(&self) -> [PathBuf; 2] {
        [self.root.join("victim"), self.sandbox().join("app-v1")]
    }

    fn archive(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root.join("archives").join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

#[test]
fn a_hard_link_to_a_file_outside_is_refused_and_links_nothing() {
    let layout = Layout::new();
    let [victim, beside] = layout.outside_files();
    let cases: Vec<(&str, Tar)> = vec![
        (
            "absolute",
            Tar::new().hardlink(b"h", victim.as_os_str().as_bytes()),
        ),
        ("dotdot", Tar::new().hardlink(b"h", b"../../victim")),
        (
            "dotdot-after-a-name",
            Tar::new().hardlink(b"keep/h", b"keep/../../../victim"),
        ),
        (
            "absolute-beside-the-destination",
            Tar::new().hardlink(b"keep/h", beside.as_os_str().as_bytes()),
        ),
        ("dotdot-beside", Tar::new().hardlink(b"h", b"../app-v1")),
    ];
    for (name, tar) in cases {
        let plain = tar.finish();
        for (suffix, bytes) in [("tar", plain.clone()), ("tar.gz", gzip(&plain))] {
            let case = format!("{name}.{suffix}");
            let archive = layout.archive(&case, &bytes);
            let out = fetch_extract(&archive, &layout.sandbox());
            let step = out.assert_code(1).last_step();
            assert_eq!(step.error_kind(), "unsafe_input", "{case}: {}", out.stderr);
            let message = &step.error.as_ref().unwrap().message;
            assert!(
                message.contains("is a hard link whose target"),
                "{case}: {message}"
            );
            assert_eq!(
                names(&layout.sandbox()),
                ["app-v1"],
                "{case}: something was left in the destination"
            );
            for outside in [&victim, &beside] {
                let meta = std::fs::metadata(outside).unwrap();
                assert_eq!(meta.nlink(), 1, "{case}: {} was linked", outside.display());
                assert_eq!(std::fs::read(outside).unwrap(), PRECIOUS, "{case}");
            }
        }
    }
}

#[test]
fn a_hard_link_to_an_earlier_entry_is_extracted_as_a_link() {
    let layout = Layout::new();
    let tar = Tar::new()
        .file(b"bin/app", b"#!/bin/sh\n")
        .hardlink(b"bin/app-again", b"bin/app")
        .hardlink(b"keep/app", b"./bin/app");
    let archive = layout.archive("good.tar", &tar.finish());
    let out = fetch_extract(&archive, &layout.sandbox());
    out.succeeds();
    let released = layout.sandbox().join("out");
    let ino = |path: &str| std::fs::metadata(released.join(path)).unwrap().ino();
    assert_eq!(ino("bin/app-again"), ino("bin/app"));
    assert_eq!(ino("keep/app"), ino("bin/app"));
    assert_eq!(
        std::fs::metadata(released.join("bin/app")).unwrap().nlink(),
        3
    );
    for outside in layout.outside_files() {
        assert_eq!(std::fs::metadata(outside).unwrap().nlink(), 1);
    }
}
