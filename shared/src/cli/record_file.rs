//! `--record FILE` as an adversary may have prepared it: a symlink is followed only when it
//! belongs to the invoking user or root (the rule of `fs.protected_symlinks`), only a regular
//! file under the size cap is read, and a file that is not the caller's is never quoted.

use crate::atomic;
use crate::error::{Error, Result};
use crate::record::{MAX_BYTES, Record};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// More links than this in a chain is a loop (as the kernel's own limit).
const MAX_LINKS: usize = 40;

/// The file `--record path` means: `path` itself, or where its trusted symlinks lead.
pub(super) fn resolve(path: &Path) -> Result<PathBuf> {
    let me = rustix::process::geteuid().as_raw();
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let meta = match std::fs::symlink_metadata(&current) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(Error::io(format!("--record {}", path.display()), &e)),
        };
        if !meta.file_type().is_symlink() {
            return Ok(current);
        }
        if meta.uid() != me && meta.uid() != 0 {
            return Err(Error::usage(format!(
                "--record {}: {} is a symbolic link owned by uid {}, not by you or root; \
                 refusing to follow it (nothing was attempted)",
                path.display(),
                current.display(),
                meta.uid()
            )));
        }
        let target = std::fs::read_link(&current)
            .map_err(|e| Error::io(format!("--record {}", path.display()), &e))?;
        current = match current.parent() {
            Some(dir) => dir.join(target),
            None => target,
        };
    }
    Err(Error::usage(format!(
        "--record {}: too many levels of symbolic links",
        path.display()
    )))
}

/// Read and parse the record in `path` (already resolved): a regular file, checked against
/// the size cap before a byte is read, quoted in errors only when it is the caller's.
pub(super) fn read(path: &Path) -> Result<Record> {
    let shown = path.display();
    let bytes = match atomic::read_capped(path, MAX_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::usage(format!(
                "--record {shown}: no such file; add --new to start a run there (nothing was attempted)"
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            return Err(Error::bad_record(format!(
                "--record {shown}: the record is larger than {} MiB; refusing it",
                MAX_BYTES / (1024 * 1024)
            )));
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Error::usage(format!(
                "--record {shown}: became a symbolic link; refusing to follow it"
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            return Err(Error::usage(format!(
                "--record {shown}: not a regular file (a record file is a plain file)"
            )));
        }
        Err(e) => return Err(Error::io(format!("--record {shown}"), &e)),
    };
    Record::parse(&bytes).map_err(|e| {
        let message = if callers_own(path) {
            e.message
        } else {
            // Its first bytes could be anything it points at: /etc/shadow, a key.
            "not a ugw record (its content is not shown: the file is not yours)".to_string()
        };
        Error::new(e.kind, format!("--record {shown}: {message}"))
    })
}

/// A regular file that may take the place of `path` under `--new`: none, or a plain file.
pub(super) fn check_replaceable(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_file() => Err(Error::usage(format!(
            "--record {}: not a regular file; refusing to replace it (nothing was attempted)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

fn callers_own(path: &Path) -> bool {
    let me = rustix::process::geteuid().as_raw();
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.uid() == me)
}
