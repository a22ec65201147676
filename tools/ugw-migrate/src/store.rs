//! What the engine needs from a database, whichever it is: the ledger, the lock, running one
//! migration with its ledger row, and stopping a running statement.

use crate::source::Migration;
use serde::Serialize;
use std::time::Duration;
use ugw_shared::cancel::Cancel;
use ugw_shared::db::Engine;
use ugw_shared::{Error, Result};

/// The ledger table's name, in every database.
pub const LEDGER: &str = "ugw_migrations";

/// One ledger row.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerRow {
    pub version: i64,
    pub name: String,
    pub phase: String,
    pub checksum: String,
    pub checksum_algorithm: String,
    pub applied_at: String,
    pub duration_ms: i64,
    pub applied_by: String,
    pub success: bool,
}

/// How a migration runs (SQLite waits on its busy timeout instead of a lock timeout).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `SET lock_timeout` for each DDL transaction (not for no-transaction files).
    pub ddl_lock_timeout: Duration,
    /// `applied_by`: host, pid, tool version.
    pub applied_by: String,
}

/// Why running a migration failed: a DDL lock timeout is worth a retry, nothing else is.
#[derive(Debug)]
pub struct RunError {
    pub error: Error,
    pub lock_timeout: bool,
}

impl From<Error> for RunError {
    fn from(error: Error) -> Self {
        RunError {
            error,
            lock_timeout: false,
        }
    }
}

/// Stops the statement running on another thread (a signal arrived).
pub type Interrupt = Box<dyn Fn() + Send + Sync>;

/// Another backend's long-running transaction, reported before DDL starts. Never its query
/// text: another session's SQL may hold a secret (`ALTER ROLE … PASSWORD '…'`).
#[derive(Debug, Clone, Serialize)]
pub struct LongTransaction {
    pub pid: i32,
    pub age_ms: u64,
    pub application_name: String,
    pub state: String,
    pub user: String,
}

pub trait Store {
    fn engine(&self) -> Engine;

    /// Take the migration lock, waiting at most `timeout` (exit 4, naming the holder).
    fn lock(&mut self, timeout: Duration, cancel: &Cancel, host: &str) -> Result<()>;

    /// Whether the database has no ledger and no tables of its own: nothing can be running
    /// against it, so the zero-downtime findings are warnings there.
    fn is_fresh(&mut self) -> Result<bool>;

    /// Create the ledger when missing (under the lock).
    fn ensure_ledger(&mut self) -> Result<()>;

    /// Every ledger row, by version; none when there is no ledger yet (writes nothing).
    fn applied(&mut self) -> Result<Vec<LedgerRow>>;

    /// Run `migration` and write its ledger row: together in one transaction, or (for a
    /// no-transaction file) a `success = false` row first, completed after.
    fn run(&mut self, migration: &Migration, options: &RunOptions) -> Result<Duration, RunError>;

    /// Record `migration` as applied without running it (`baseline`, `resolve --applied`).
    fn mark_applied(&mut self, migration: &Migration, applied_by: &str) -> Result<()>;

    /// Drop the ledger row of `version` (`resolve --forget`).
    fn forget(&mut self, version: i64) -> Result<()>;

    /// Indexes a failed `CREATE INDEX CONCURRENTLY` left INVALID.
    fn invalid_indexes(&mut self) -> Result<Vec<String>>;

    fn drop_index(&mut self, name: &str) -> Result<()>;

    /// Transactions older than `older_than` in other sessions.
    fn long_transactions(&mut self, older_than: Duration) -> Result<Vec<LongTransaction>>;

    /// A handle that stops the statement running now, callable from another thread.
    fn interrupt(&self) -> Interrupt;
}
