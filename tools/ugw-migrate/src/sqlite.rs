//! SQLite: the embedded default. The lock is a lock file beside the database (so the losers
//! are told who holds it); each migration runs in `BEGIN IMMEDIATE` with a busy timeout, so
//! the application's own writers wait rather than fail. The journal mode and synchronous
//! settings are the database's own: never changed here.

use crate::source::{CHECKSUM_ALGORITHM, Migration};
use crate::sql::statements;
use crate::store::{Interrupt, LEDGER, LedgerRow, LongTransaction, RunError, RunOptions, Store};
use rusqlite::{Connection, OpenFlags, params};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use ugw_shared::cancel::Cancel;
use ugw_shared::db::Engine;
use ugw_shared::lock::{self, LockGuard};
use ugw_shared::{Error, ErrorKind, Result};

pub struct SqliteStore {
    path: PathBuf,
    /// `None` when the database does not exist and we were not to create it (plan, status).
    conn: Option<Connection>,
    lock: Option<LockGuard>,
    /// The connection's own settings a migration may change (`PRAGMA foreign_keys`,
    /// `recursive_triggers`), as found once the lock is taken (reading them reads the
    /// database, which another run may be writing): put back after every file.
    session: Vec<(&'static str, i64)>,
    /// The ledger table's name (`--ledger-table`, default `ugw_migrations`), and quoted.
    ledger_name: String,
    ledger: String,
}

/// How long one wait for another writer may take: its own limit (the lock wait), the
/// step's deadline, and a signal, whichever comes first.
pub struct BusyWait {
    pub limit: Duration,
    pub deadline: Option<Instant>,
    pub cancel: Cancel,
}

/// The busy handler is a plain function: what it needs lives here (one database per run),
/// with the start of the wait now going on.
static BUSY: std::sync::Mutex<Option<BusyWait>> = std::sync::Mutex::new(None);
static WAIT_STARTED: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);

/// How often a wait for another writer tries again.
const BUSY_RETRY: Duration = Duration::from_millis(10);

/// SQLite's busy handler: `true` to try again. Unlike `busy_timeout` it ends at the step's
/// deadline and at once when a signal arrives.
fn busy_wait(attempt: i32) -> bool {
    let now = Instant::now();
    let started = {
        let mut started = WAIT_STARTED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if attempt == 0 || started.is_none() {
            *started = Some(now);
        }
        started.unwrap_or(now)
    };
    let busy = BUSY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(busy) = busy.as_ref() else {
        return false;
    };
    if now.duration_since(started) >= busy.limit || busy.deadline.is_some_and(|d| now >= d) {
        return false;
    }
    busy.cancel.sleep(BUSY_RETRY).is_ok()
}

/// What opening a database that does not exist does.
#[derive(Debug, Clone, Copy)]
pub enum IfMissing {
    /// Make it (`--create`).
    Create,
    /// Refuse, saying how to go on (a run that writes, without `--create`).
    Refuse { advice: &'static str },
    /// Read it as empty, writing nothing (`plan`, `status`).
    Absent,
}

/// The PRAGMAs a file's change to would otherwise reach the next file of the run.
const SESSION_PRAGMAS: [&str; 2] = ["foreign_keys", "recursive_triggers"];

impl SqliteStore {
    /// Open `path`; what happens when it does not exist is `missing`'s to say.
    pub fn open(
        path: &Path,
        missing: IfMissing,
        busy: BusyWait,
        ledger_table: Option<&str>,
    ) -> Result<Self> {
        let exists = path.exists();
        let create = match missing {
            _ if exists => false,
            IfMissing::Create => true,
            IfMissing::Absent => false,
            // Checked before anything is made (the lock file beside it included): a
            // mistyped path must not start a fresh, empty database.
            IfMissing::Refuse { advice } => {
                return Err(Error::usage(format!(
                    "the SQLite database {} does not exist; {advice}; nothing was created",
                    path.display()
                )));
            }
        };
        let conn = if exists || create {
            let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            if create {
                flags |= OpenFlags::SQLITE_OPEN_CREATE;
            }
            let conn = Connection::open_with_flags(path, flags).map_err(|e| fail(path, &e))?;
            *BUSY
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(busy);
            conn.busy_handler(Some(busy_wait))
                .map_err(|e| fail(path, &e))?;
            Some(conn)
        } else {
            None
        };
        let ledger_name = ledger_table.unwrap_or(LEDGER).to_string();
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn,
            lock: None,
            session: Vec::new(),
            ledger: format!("\"{}\"", ledger_name.replace('"', "\"\"")),
            ledger_name,
        })
    }

    /// Every file starts from the settings the connection had at open.
    fn reset_session(&self) -> Result<()> {
        let conn = self.conn()?;
        let sql = self
            .session
            .iter()
            .fold(String::new(), |mut sql, (pragma, value)| {
                let _ = write!(sql, "PRAGMA {pragma} = {value};");
                sql
            });
        conn.execute_batch(&sql).map_err(|e| fail(&self.path, &e))
    }

    fn conn(&self) -> Result<&Connection> {
        self.conn.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Io,
                format!("{} does not exist", self.path.display()),
            )
        })
    }

    fn lock_path(&self) -> PathBuf {
        ugw_shared::atomic::sibling(&self.path, ".ugw-migrate.lock")
    }

    fn insert_row(
        conn: &Connection,
        ledger: &str,
        m: &Migration,
        ms: i64,
        by: &str,
        success: bool,
    ) -> rusqlite::Result<usize> {
        conn.execute(
            &format!(
                "INSERT OR REPLACE INTO {ledger} (version, name, phase, checksum, checksum_algorithm, applied_at, duration_ms, applied_by, success) \
                 VALUES (?1, ?2, ?3, ?4, ?5, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?6, ?7, ?8)"
            ),
            params![m.version, m.name, m.phase.word(), m.checksum, CHECKSUM_ALGORITHM, ms, by, success],
        )
    }

    /// The whole file and its row in one `BEGIN IMMEDIATE`; foreign keys off around it when
    /// the file asks, checked before the commit.
    fn run_in_transaction(
        &self,
        m: &Migration,
        options: &RunOptions,
        started: Instant,
    ) -> Result<(), RunError> {
        let conn = self.conn()?;
        let file = m.file_name();
        if m.foreign_keys_off {
            conn.execute_batch("PRAGMA foreign_keys = OFF")
                .map_err(|e| run_error(&file, &e))?;
        }
        let outcome = (|| {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let body = (|| {
                conn.execute_batch(&m.sql)?;
                if m.foreign_keys_off {
                    let broken: i64 =
                        conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                            r.get(0)
                        })?;
                    if broken > 0 {
                        return Err(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
                            Some(format!(
                                "PRAGMA foreign_key_check found {broken} broken reference(s)"
                            )),
                        ));
                    }
                }
                Self::insert_row(
                    conn,
                    &self.ledger,
                    m,
                    elapsed_ms(started),
                    &options.applied_by,
                    true,
                )?;
                ugw_shared::failpoint::hit("migrate.before-ledger-commit");
                conn.execute_batch("COMMIT")
            })();
            if body.is_err() && !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            body
        })();
        outcome.map_err(|e| run_error(&file, &e))
    }

    /// Statement by statement, with a `success = false` row first: a failure leaves it.
    fn run_without_transaction(
        &self,
        m: &Migration,
        options: &RunOptions,
        started: Instant,
    ) -> Result<(), RunError> {
        let conn = self.conn()?;
        let file = m.file_name();
        Self::insert_row(conn, &self.ledger, m, 0, &options.applied_by, false)
            .map_err(|e| run_error(&file, &e))?;
        for statement in statements(&m.sql, Engine::Sqlite) {
            conn.execute_batch(&statement.text)
                .map_err(|e| run_error(&format!("{file}:{}", statement.line), &e))?;
        }
        ugw_shared::failpoint::hit("migrate.before-ledger-commit");
        conn.execute(
            &format!(
                "UPDATE {} SET success = 1, duration_ms = ?1 WHERE version = ?2",
                self.ledger
            ),
            params![elapsed_ms(started), m.version],
        )
        .map_err(|e| run_error(&file, &e))?;
        Ok(())
    }
}

impl Store for SqliteStore {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn lock(&mut self, timeout: Duration, cancel: &Cancel, host: &str) -> Result<()> {
        self.lock = Some(lock::acquire(
            &self.lock_path(),
            timeout,
            cancel,
            host,
            "ugw-migrate",
        )?);
        if let Some(conn) = &self.conn {
            for pragma in SESSION_PRAGMAS {
                let value: i64 = conn
                    .pragma_query_value(None, pragma, |r| r.get(0))
                    .map_err(|e| fail(&self.path, &e))?;
                self.session.push((pragma, value));
            }
        }
        Ok(())
    }

    fn is_fresh(&mut self) -> Result<bool> {
        let Some(conn) = &self.conn else {
            return Ok(true);
        };
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| fail(&self.path, &e))?;
        Ok(tables == 0)
    }

    fn ensure_ledger(&mut self) -> Result<()> {
        let conn = self.conn()?;
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} (
                version INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                phase TEXT NOT NULL CHECK (phase IN ('pre', 'post')),
                checksum TEXT NOT NULL,
                checksum_algorithm TEXT NOT NULL,
                applied_at TEXT NOT NULL,
                duration_ms INTEGER NOT NULL,
                applied_by TEXT NOT NULL,
                success INTEGER NOT NULL
            )",
            self.ledger
        ))
        .map_err(|e| fail(&self.path, &e))
    }

    fn applied(&mut self) -> Result<Vec<LedgerRow>> {
        let Some(conn) = &self.conn else {
            return Ok(Vec::new());
        };
        let exists: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [&self.ledger_name],
                |r| r.get(0),
            )
            .map_err(|e| fail(&self.path, &e))?;
        if !exists {
            return Ok(Vec::new());
        }
        let mut query = conn
            .prepare(&format!(
                "SELECT version, name, phase, checksum, checksum_algorithm, applied_at, duration_ms, applied_by, success \
                 FROM {} ORDER BY version",
                self.ledger
            ))
            .map_err(|e| fail(&self.path, &e))?;
        query
            .query_map([], |r| {
                Ok(LedgerRow {
                    version: r.get(0)?,
                    name: r.get(1)?,
                    phase: r.get(2)?,
                    checksum: r.get(3)?,
                    checksum_algorithm: r.get(4)?,
                    applied_at: r.get(5)?,
                    duration_ms: r.get(6)?,
                    applied_by: r.get(7)?,
                    success: r.get(8)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(|e| fail(&self.path, &e))
    }

    fn run(&mut self, migration: &Migration, options: &RunOptions) -> Result<Duration, RunError> {
        let started = Instant::now();
        let outcome = if migration.no_transaction {
            self.run_without_transaction(migration, options, started)
        } else {
            self.run_in_transaction(migration, options, started)
        };
        // Also after a failure: `foreign-keys-off` ends here, and nothing else runs set up
        // the way the failed file left it.
        let reset = self.reset_session();
        outcome?;
        reset?;
        Ok(started.elapsed())
    }

    fn mark_applied(&mut self, migration: &Migration, applied_by: &str) -> Result<()> {
        Self::insert_row(self.conn()?, &self.ledger, migration, 0, applied_by, true)
            .map_err(|e| fail(&self.path, &e))?;
        Ok(())
    }

    fn forget(&mut self, version: i64) -> Result<()> {
        self.conn()?
            .execute(
                &format!("DELETE FROM {} WHERE version = ?1", self.ledger),
                [version],
            )
            .map_err(|e| fail(&self.path, &e))?;
        Ok(())
    }

    fn invalid_indexes(&mut self) -> Result<Vec<String>> {
        Ok(Vec::new()) // SQLite builds an index in one transaction: none is ever left half-made
    }

    fn drop_index(&mut self, name: &str) -> Result<()> {
        Err(Error::usage(format!(
            "SQLite leaves no invalid index to drop ({name})"
        )))
    }

    fn long_transactions(&mut self, _: Duration) -> Result<Vec<LongTransaction>> {
        Ok(Vec::new()) // another writer shows up as the busy timeout instead
    }

    fn interrupt(&self) -> Interrupt {
        match &self.conn {
            Some(conn) => {
                let handle = conn.get_interrupt_handle();
                Box::new(move || handle.interrupt())
            }
            None => Box::new(|| {}),
        }
    }
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

fn fail(path: &Path, e: &rusqlite::Error) -> Error {
    Error::new(ErrorKind::Io, format!("{}: {e}", path.display()))
}

fn run_error(file: &str, e: &rusqlite::Error) -> RunError {
    RunError::from(Error::new(
        ErrorKind::MigrationFailed,
        format!("{file}: {e}"),
    ))
}
