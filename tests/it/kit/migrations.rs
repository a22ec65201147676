//! What the ugw-migrate tests share: running the tool with no `DATABASE_URL` from the
//! environment, and a migrations folder (with `post/`) that holds its SQLite database
//! `app.db` beside the files. A test file adds its own helpers in an `impl Dir` of its own.

use super::Outcome;
use std::path::Path;

/// Run `ugw-migrate ARGS`; `DATABASE_URL` is removed so that only `--db` decides.
pub fn migrate(args: &[&str]) -> Outcome {
    let mut cmd = super::tool("ugw-migrate");
    cmd.args(args).env_remove("DATABASE_URL");
    super::run(cmd)
}

/// A migrations folder; `file` writes `DIR/NAME` (NAME may be `post/…`).
pub struct Dir(tempfile::TempDir);

impl Dir {
    pub fn new() -> Dir {
        let dir = Dir(tempfile::tempdir().unwrap());
        std::fs::create_dir(dir.path().join("post")).unwrap();
        dir
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn s(&self) -> String {
        self.path().display().to_string()
    }

    pub fn file(&self, name: &str, sql: &str) -> &Dir {
        std::fs::write(self.path().join(name), sql).unwrap();
        self
    }

    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}/app.db", self.s())
    }

    pub fn sqlite(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path().join("app.db")).unwrap()
    }
}
