//! What `--compose` checks of its inputs before anything is read or changed: the files named
//! on the command line must be regular files (a directory or a FIFO is a usage error, and a
//! FIFO is never opened, so it cannot block the swap), and the slots whose files ugw keeps.

use super::Strategy;
use std::path::Path;
use ugw_shared::{Error, Result};

impl Strategy {
    /// The ports of start-first's slots (none for stop-first).
    pub(crate) fn slots(&self) -> Vec<u16> {
        match self {
            Strategy::StopFirst => Vec::new(),
            Strategy::StartFirst { slots, .. } => slots.to_vec(),
        }
    }
}

/// An input file named on the command line (`--compose`, `--env-file`) is a regular file, or
/// a usage error says what it is instead. Only its metadata is read.
pub(crate) fn check_input_file(flag: &str, path: &Path) -> Result<()> {
    let why = match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => return Ok(()),
        Ok(meta) if meta.is_dir() => "is a directory, not a file".to_string(),
        Ok(_) => "is not a regular file (a FIFO, socket or device)".to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "no such file".to_string(),
        Err(e) => format!("cannot be read: {e}"),
    };
    Err(Error::usage(format!(
        "{flag} {}: {why}; nothing was changed",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_is_an_input_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("compose.yml");
        std::fs::write(&file, "services: {}\n").unwrap();
        assert!(check_input_file("--compose", &file).is_ok());
        let folder = check_input_file("--compose", dir.path()).unwrap_err();
        assert!(
            folder.message.contains("is a directory"),
            "{}",
            folder.message
        );
        let missing = check_input_file("--env-file", &dir.path().join("no.env")).unwrap_err();
        assert!(
            missing.message.contains("--env-file"),
            "{}",
            missing.message
        );
        assert!(
            missing.message.contains("no such file"),
            "{}",
            missing.message
        );
    }
}
