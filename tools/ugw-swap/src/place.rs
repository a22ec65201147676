//! Whether an earlier step's `root` or `target` is the place this invocation names. Paths are
//! compared as the file system resolves them: `--root ROOT/`, `ROOT/./`, a relative path or a
//! path through a symbolic link name the same release folder as `ROOT`, and a rollback must
//! find the swap it takes back however each was spelled.

use std::path::{Component, Path, PathBuf};

/// `path` as the file system resolves it; lexically cleaned (`.` and trailing `/` dropped,
/// made absolute) when it does not exist (any more).
fn resolved(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut clean = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    clean
}

/// Whether `recorded` (a step's `root` or `target`) names the same place as `here`.
pub(crate) fn same_place(recorded: Option<&str>, here: &Path) -> bool {
    recorded.is_some_and(|recorded| resolved(Path::new(recorded)) == resolved(here))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_folder_are_one_place() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("app");
        std::fs::create_dir(&root).unwrap();
        let shown = root.to_str().unwrap();
        for spelling in [
            format!("{shown}/"),
            format!("{shown}/./"),
            format!("{shown}/../app"),
        ] {
            assert!(same_place(Some(&spelling), &root), "{spelling}");
        }
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&root, &link).unwrap();
        assert!(same_place(Some(shown), &link));
        assert!(!same_place(Some(shown), dir.path()));
        assert!(!same_place(None, &root));
        let gone = dir.path().join("gone");
        assert!(same_place(
            Some(&format!("{}/", gone.display())),
            &gone.join(".")
        ));
    }
}
