//! Mount points for the tests that need one (a full disk, a mount point or bind mount to
//! restore into): mounted for the test, unmounted when dropped, a failed test included.
//! Where mounting is not allowed, the test is skipped with a printed reason, and under CI it
//! fails.

use super::s;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount at a path, unmounted (lazily) when dropped.
pub struct Mounted(PathBuf);

impl Mounted {
    /// A tmpfs at `at` (created if missing) with mount `options` (e.g. `size=1m`). `None`
    /// (and why, on stderr) where mounting is not allowed and CI is not set.
    pub fn tmpfs(at: &Path, options: &str) -> Option<Mounted> {
        std::fs::create_dir_all(at).unwrap();
        Self::mount(&["-t", "tmpfs", "-o", options, "tmpfs", s(at)], at)
    }

    /// `what` bind-mounted at `at` (a folder or a file, which must exist).
    pub fn bind(what: &Path, at: &Path) -> Option<Mounted> {
        Self::mount(&["--bind", s(what), s(at)], at)
    }

    fn mount(args: &[&str], at: &Path) -> Option<Mounted> {
        let status = Command::new("mount").args(args).status();
        if status.is_ok_and(|s| s.success()) {
            return Some(Mounted(at.to_path_buf()));
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: mount {args:?} is not permitted"
        );
        eprintln!("SKIPPED: mount {args:?} is not permitted here");
        None
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
