//! Tar extraction (`unpack::stage`, as ugw-fetch and ugw-backup restore use it): an archive
//! of any bytes, held in memory, is extracted into a temp folder, or refused; whichever, and
//! whatever the options, nothing lands outside that folder: the folder beside it and its
//! file are untouched, the destination's parent holds only the staged tree, and every
//! symlink in the tree (whose target the options allow) points inside it, every hard link
//! to a file inside it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use ugw_shared::cancel::Cancel;
use ugw_shared::unpack::{Modes, Options, Symlinks, decoder, stage};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, archive)) = data.split_first() else {
        return;
    };
    let options = Options {
        strip_components: usize::from(choice & 3),
        modes: if choice & 4 == 0 { Modes::Release } else { Modes::Exact },
        symlinks: match (choice >> 3) & 3 {
            0 => Symlinks::Inside,
            1 => Symlinks::AllowAbsolute,
            _ => Symlinks::Any,
        },
        zeros_as_holes: choice & 32 != 0,
        only: (choice & 64 != 0).then(|| PathBuf::from("a")),
        ..Options::default()
    };
    // On tmpfs when there is one: extraction ends with a syncfs.
    let base = tempfile::Builder::new()
        .prefix("ugw-fuzz-unpack-")
        .tempdir_in(if Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" })
        .expect("a temp folder");
    let outside = base.path().join("outside");
    std::fs::create_dir(&outside).expect("the outside folder");
    std::fs::write(outside.join("victim"), b"untouched").expect("the outside file");
    let victim_inode = std::fs::metadata(outside.join("victim")).expect("victim").ino();
    let work = base.path().join("work");
    std::fs::create_dir(&work).expect("the work folder");
    let dest = work.join("dest");

    let staged = decoder(archive).and_then(|reader| stage(reader, &dest, &options, &Cancel::default()));

    assert_eq!(names(base.path()), ["outside", "work"], "something was written beside the folders");
    assert_eq!(names(&outside), ["victim"], "something was written into the outside folder");
    assert_eq!(std::fs::read(outside.join("victim")).expect("victim"), b"untouched");
    let in_work = names(&work);
    match staged {
        Err(_) => assert!(in_work.is_empty(), "a refused archive left {in_work:?}"),
        Ok(staged) => {
            assert_eq!(in_work.len(), 1, "beside the staged tree: {in_work:?}");
            assert!(!dest.exists(), "the destination was made before commit");
            let root = staged.path().to_path_buf();
            let mut inodes = HashSet::new();
            walk(&root, &root, options.symlinks, &mut inodes);
            assert!(!inodes.contains(&victim_inode), "a hard link to the outside file");
        }
    }
});

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("listing a temp folder")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every entry under `dir`: symlinks stay inside `root` (when the options say they must),
/// and the inode of every regular file is collected.
fn walk(root: &Path, dir: &Path, symlinks: Symlinks, inodes: &mut HashSet<u64>) {
    for entry in std::fs::read_dir(dir).expect("listing the staged tree") {
        let path = entry.expect("an entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("an entry's metadata");
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).expect("a link's target");
            match symlinks {
                Symlinks::Inside => assert!(
                    lexically_inside(root, path.parent().expect("a parent"), &target),
                    "{} -> {} leaves the tree",
                    path.display(),
                    target.display()
                ),
                Symlinks::AllowAbsolute => assert!(
                    target.is_absolute()
                        || lexically_inside(root, path.parent().expect("a parent"), &target),
                    "{} -> {} leaves the tree",
                    path.display(),
                    target.display()
                ),
                Symlinks::Any => {}
            }
        } else if meta.is_dir() {
            walk(root, &path, symlinks, inodes);
        } else {
            inodes.insert(meta.ino());
        }
    }
}

/// Whether `target`, read from `from`, stays under `root` by its components alone.
fn lexically_inside(root: &Path, from: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth = from.strip_prefix(root).expect("inside the root").components().count();
    for part in target.components() {
        match part {
            Component::ParentDir => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}
