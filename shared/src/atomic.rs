//! Files that matter are replaced whole: a temp file in the target's folder, fsync, rename,
//! fsync the folder. A crash leaves the old file or the new one, never half of one, and a
//! partial file never carries the final name.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Replace `path` with `bytes` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| {
            Error::io(
                format!("cannot create a temp file in {}", dir.display()),
                &e,
            )
        })?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| Error::io(format!("cannot write {}", temp.path().display()), &e))?;
    // Keep the mode of the file being replaced, so a 0600 record stays 0600.
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(temp.path(), meta.permissions());
    }
    temp.persist(path)
        .map_err(|e| Error::io(format!("cannot rename into {}", path.display()), &e.error))?;
    sync_dir(&dir)
}

/// Rename `from` to `to` and make the rename durable.
pub fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| {
        Error::io(
            format!("cannot rename {} to {}", from.display(), to.display()),
            &e,
        )
    })?;
    sync_dir(&parent_dir(to))
}

/// fsync a folder so that renames inside it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("cannot fsync folder {}", dir.display()), &e))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
