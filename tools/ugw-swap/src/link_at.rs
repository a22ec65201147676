//! `--link SHARED:TARGET` inside a release being staged, resolved with no symbolic link on
//! the way (issue 20 item 4). The release's own content may hold `config -> /outside`: a
//! TARGET of `config/db.yml` checked only as text would replace `/outside/db.yml`, and
//! `data/cache` under `data -> /outside2` would delete `/outside2/cache`. Each folder of
//! TARGET is opened by its descriptor, one component at a time, with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so nothing outside the release is ever
//! written or removed.

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::path::{Component, Path};
use ugw_shared::{Error, ErrorKind, Result};

/// Open the folder `name` in `dir`, never through a symbolic link (or out of `dir`).
fn open_folder(dir: impl AsFd, name: &OsStr) -> std::result::Result<OwnedFd, Errno> {
    let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
    match rustix::fs::openat2(dir.as_fd(), name, flags, Mode::empty(), resolve) {
        // A kernel before 5.6: one plain component with O_NOFOLLOW is as strict.
        Err(Errno::NOSYS) => rustix::fs::openat(dir, name, flags, Mode::empty()),
        other => other,
    }
}

fn unsafe_target(target: &Path, at: &Path, why: &str) -> Error {
    Error::new(
        ErrorKind::UnsafeInput,
        format!(
            "--link TARGET {}: {} in the release {why}; refusing to write through it (nothing \
             was switched)",
            target.display(),
            at.display()
        ),
    )
}

fn io_error(what: &str, at: &Path, e: Errno) -> Error {
    Error::io_write(
        format!("--link: cannot {what} {}", at.display()),
        &std::io::Error::from(e),
    )
}

/// Make `release/target` a symbolic link to `points_to`: its folders are created where
/// missing, whatever is at its name is replaced, and a symbolic link or a non-folder on the
/// way is refused (kind `unsafe_input`).
pub(crate) fn replace_with_symlink(release: &Path, target: &Path, points_to: &Path) -> Result<()> {
    let names: Vec<&OsStr> = target
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(Error::usage(format!(
                "--link TARGET {} must be a relative path inside the release",
                target.display()
            ))),
        })
        .collect::<Result<_>>()?;
    let Some((last, folders)) = names.split_last() else {
        return Err(Error::usage("--link TARGET is empty"));
    };
    let mut dir = rustix::fs::open(
        release,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
        Mode::empty(),
    )
    .map_err(|e| io_error("open", release, e))?;
    let mut walked = std::path::PathBuf::new();
    for name in folders {
        walked.push(name);
        let next = match open_folder(&dir, name) {
            Err(Errno::NOENT) => {
                rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755))
                    .map_err(|e| io_error("create", &walked, e))?;
                open_folder(&dir, name)
            }
            other => other,
        };
        dir = match next {
            Ok(fd) => fd,
            Err(Errno::LOOP | Errno::XDEV | Errno::NOTDIR) => {
                // O_NOFOLLOW | O_DIRECTORY on a symbolic link says ENOTDIR: tell them apart.
                let is_link = rustix::fs::statat(&dir, *name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink);
                let why = if is_link {
                    "is a symbolic link"
                } else {
                    "is not a folder"
                };
                return Err(unsafe_target(target, &walked, why));
            }
            Err(e) => return Err(io_error("open", &walked, e)),
        };
    }
    walked.push(last);
    remove_entry(&dir, last, &walked)?;
    rustix::fs::symlinkat(points_to, &dir, *last).map_err(|e| io_error("link", &walked, e))
}

/// Remove whatever `name` is in `dir` (a symbolic link itself, never what it points to; a
/// folder with all it holds, not following links inside it).
fn remove_entry(dir: &OwnedFd, name: &OsStr, shown: &Path) -> Result<()> {
    let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => return Ok(()),
        other => other.map_err(|e| io_error("read", shown, e))?,
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return rustix::fs::unlinkat(dir, name, AtFlags::empty())
            .map_err(|e| io_error("replace", shown, e));
    }
    // The folder through this process's descriptor of its parent: no path on the way can
    // have been swapped for a link since the parent was opened. std's remove_dir_all does
    // not follow links inside.
    let fd_path = Path::new("/proc/self/fd")
        .join(std::os::fd::AsRawFd::as_raw_fd(dir).to_string())
        .join(name);
    std::fs::remove_dir_all(&fd_path)
        .map_err(|e| Error::io_write(format!("--link: cannot replace {}", shown.display()), &e))
}
