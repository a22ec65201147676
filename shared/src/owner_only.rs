//! "Only its owner can change it", as sshd checks `authorized_keys` before trusting it: a file
//! ugw is about to install as the invoking user (often root) must be owned by that user or
//! root, and neither it nor any folder on the way to it may be writable by anyone else. A
//! staging folder another user can write lets them replace the artifact between its check
//! and its install.
//!
//! A folder writable by everyone is accepted on the way when it has the sticky bit and
//! belongs to the invoking user or root (`/tmp`): there, only an entry's owner can rename
//! or remove it, so an entry that is ours stays ours.

use crate::error::{Error, ErrorKind, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// More symbolic links than this on one path is a loop (as the kernel's own limit).
const MAX_LINKS: usize = 40;
const STICKY: u32 = 0o1000;
/// Writable by the group or by everyone.
const OTHERS_WRITE: u32 = 0o022;

/// Whether `meta` belongs to the invoking user or root.
#[must_use]
pub fn owned_by_invoker(meta: &std::fs::Metadata) -> bool {
    owned_by(meta, rustix::process::geteuid().as_raw())
}

/// Whether `meta` belongs to `me` (the invoking user) or root.
fn owned_by(meta: &std::fs::Metadata, me: u32) -> bool {
    meta.uid() == me || meta.uid() == 0
}

/// Why `meta` (of `path`) lets someone other than the invoking user or root change what is
/// at `path` or under it, or `None` when it does not.
fn why_untrusted(path: &Path, meta: &std::fs::Metadata, me: u32) -> Option<String> {
    if !owned_by(meta, me) {
        return Some(format!(
            "{} belongs to uid {}, not to you (uid {me}) or root",
            path.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode();
    let sticky_folder = meta.is_dir() && mode & STICKY != 0;
    if mode & OTHERS_WRITE != 0 && !sticky_folder && !meta.file_type().is_symlink() {
        let who = if mode & 0o002 != 0 {
            "everyone"
        } else {
            "its group"
        };
        return Some(format!(
            "{} is writable by {who} (mode {:o})",
            path.display(),
            mode & 0o7777
        ));
    }
    None
}

fn refuse(what: &str, shown: &Path, why: &str) -> Error {
    Error::new(
        ErrorKind::UnsafeInput,
        format!(
            "{what} {}: {why}; another user could replace it before it is installed \
             (give it a folder only you or root can write, e.g. chmod go-w)",
            shown.display()
        ),
    )
}

/// Check that only the invoking user or root can change `path`: it, every folder on the way
/// to it, and every symbolic link followed to reach it (as `fs.protected_symlinks` does, a
/// link is followed only when it is the caller's or root's). Returns the path it resolves to.
/// `what` names the path in the message (`--from`, "the ugw-fetch artifact").
pub fn check_path(path: &Path, what: &str) -> Result<PathBuf> {
    let me = rustix::process::geteuid().as_raw();
    let start = std::path::absolute(path)
        .map_err(|e| Error::io(format!("{what} {}", path.display()), &e))?;
    // Components still to walk, in order; a link's target is spliced in front of them.
    let mut pending: Vec<std::ffi::OsString> = Vec::new();
    for component in start.components().rev() {
        if let Component::Normal(name) = component {
            pending.push(name.to_os_string());
        } else if component == Component::ParentDir {
            pending.push("..".into());
        }
    }
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    check_one(&resolved, what, path, me)?;
    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let next = resolved.join(&name);
        let meta = std::fs::symlink_metadata(&next)
            .map_err(|e| Error::io(format!("{what} {}", path.display()), &e))?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(Error::usage(format!(
                    "{what} {}: too many levels of symbolic links",
                    path.display()
                )));
            }
            if !owned_by(&meta, me) {
                return Err(refuse(
                    what,
                    path,
                    &format!(
                        "{} is a symbolic link owned by uid {}, not by you or root",
                        next.display(),
                        meta.uid()
                    ),
                ));
            }
            let target = std::fs::read_link(&next)
                .map_err(|e| Error::io(format!("{what} {}", path.display()), &e))?;
            if target.is_absolute() {
                resolved = PathBuf::from("/");
            }
            for component in target.components().rev() {
                match component {
                    Component::Normal(part) => pending.push(part.to_os_string()),
                    Component::ParentDir => pending.push("..".into()),
                    _ => {}
                }
            }
            continue;
        }
        if let Some(why) = why_untrusted(&next, &meta, me) {
            return Err(refuse(what, path, &why));
        }
        resolved = next;
    }
    Ok(resolved)
}

fn check_one(at: &Path, what: &str, shown: &Path, me: u32) -> Result<()> {
    let meta = std::fs::symlink_metadata(at)
        .map_err(|e| Error::io(format!("{what} {}", shown.display()), &e))?;
    match why_untrusted(at, &meta, me) {
        Some(why) => Err(refuse(what, shown, &why)),
        None => Ok(()),
    }
}

/// `check_path`, and when it is a folder, every folder and file under it too (a symbolic
/// link inside is never followed: it is copied as a link, and only its folder can replace
/// it). Returns the path it resolves to.
pub fn check_tree(path: &Path, what: &str) -> Result<PathBuf> {
    let resolved = check_path(path, what)?;
    let me = rustix::process::geteuid().as_raw();
    if std::fs::symlink_metadata(&resolved).is_ok_and(|m| m.is_dir()) {
        check_under(&resolved, what, path, me)?;
    }
    Ok(resolved)
}

fn check_under(dir: &Path, what: &str, shown: &Path, me: u32) -> Result<()> {
    let read = |e: std::io::Error| Error::io(format!("cannot read {}", dir.display()), &e);
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
        if meta.file_type().is_symlink() {
            continue;
        }
        if let Some(why) = why_untrusted(&path, &meta, me) {
            return Err(refuse(what, shown, &why));
        }
        if meta.is_dir() {
            check_under(&path, what, shown, me)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_private_file_is_trusted_and_group_or_world_write_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let staging = dir.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        chmod(&staging, 0o755);
        let file = staging.join("app");
        std::fs::write(&file, "x").unwrap();
        chmod(&file, 0o755);
        assert_eq!(
            check_path(&file, "--from").unwrap(),
            file.canonicalize().unwrap()
        );
        chmod(&file, 0o775);
        let e = check_path(&file, "--from").unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnsafeInput);
        assert!(e.message.contains("its group"), "{}", e.message);
        chmod(&file, 0o755);
        chmod(&staging, 0o757);
        let e = check_path(&file, "--from").unwrap_err();
        assert!(e.message.contains("everyone"), "{}", e.message);
    }

    #[test]
    fn a_sticky_world_writable_folder_on_the_way_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared-tmp");
        std::fs::create_dir(&shared).unwrap();
        chmod(&shared, 0o1777);
        let file = shared.join("app");
        std::fs::write(&file, "x").unwrap();
        chmod(&file, 0o644);
        check_path(&file, "--from").unwrap();
        chmod(&shared, 0o777);
        assert!(check_path(&file, "--from").is_err());
    }

    #[test]
    fn a_tree_is_checked_entry_by_entry_and_links_through_the_way_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("release");
        std::fs::create_dir_all(tree.join("bin")).unwrap();
        chmod(&tree, 0o755);
        chmod(&tree.join("bin"), 0o755);
        std::fs::write(tree.join("bin/app"), "x").unwrap();
        chmod(&tree.join("bin/app"), 0o755);
        std::os::unix::fs::symlink("/etc", tree.join("etc")).unwrap();
        check_tree(&tree, "--from").unwrap();
        chmod(&tree.join("bin"), 0o777);
        let e = check_tree(&tree, "--from").unwrap_err();
        assert!(e.message.contains("bin"), "{}", e.message);
        assert!(
            check_path(&tree, "--from").is_ok(),
            "the folder alone is fine"
        );
        chmod(&tree.join("bin"), 0o755);

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&tree, &link).unwrap();
        assert_eq!(
            check_tree(&link.join("bin/../bin/app"), "--from").unwrap(),
            tree.join("bin/app").canonicalize().unwrap()
        );
    }
}
