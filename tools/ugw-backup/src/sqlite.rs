//! SQLite through its online backup API: a snapshot of a live database taken in one step (all
//! pages under one read lock, so a steady writer cannot make it start over), checked with
//! `PRAGMA integrity_check`; and a restore written through the live file's own connection, so
//! its `-wal` is never replayed on top of the restored pages.

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use ugw_shared::cancel::Cancel;
use ugw_shared::poll::Backoff;
use ugw_shared::{Error, ErrorKind, Result};

/// How long a step waits for a writer to let go before trying again.
const BUSY_WAIT: Duration = Duration::from_millis(20);

/// The files SQLite keeps beside a database.
#[must_use]
pub fn companions(db: &Path) -> Vec<PathBuf> {
    ["-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| ugw_shared::atomic::sibling(db, suffix))
        .collect()
}

/// Whether `path` is a SQLite database in WAL mode (its header says so, or a `-wal` is beside it).
#[must_use]
pub fn looks_live(path: &Path) -> bool {
    let mut head = [0u8; 20];
    let read =
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
    read.is_ok()
        && head.starts_with(b"SQLite format 3\0")
        && (head[18] == 2 || companions(path)[0].exists())
}

/// Copy the live database at `live` into a new file `snapshot`, check it, and make it one
/// self-contained file (rollback journal, no `-wal`). Returns the integrity check's answer.
pub fn snapshot(
    live: &Path,
    snapshot: &Path,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<String> {
    let fail = |what: &str, e: &rusqlite::Error| failure(live, what, e);
    if !live.is_file() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("SQLite database {} does not exist", live.display()),
        ));
    }
    let source = Connection::open_with_flags(
        live,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| fail("cannot open", &e))?;
    no_busy_wait(&source).map_err(|e| fail("cannot open", &e))?;
    let mut copy = open_no_follow(snapshot).map_err(|e| fail("cannot create the snapshot", &e))?;
    copy_all(&source, &mut copy, deadline, cancel)
        .map_err(|e| e.unwrap_or_else(|e| fail("backup failed", &e)))?;
    copy.pragma_update(None, "journal_mode", "DELETE")
        .map_err(|e| fail("cannot set the snapshot's journal mode", &e))?;
    checked(&copy, live, "the snapshot fails integrity_check")
}

/// Write the database file `snapshot` into the live database at `live`, through a connection
/// to it (one step, under its write lock); returns the live file's integrity check.
pub fn restore_into(
    snapshot: &Path,
    live: &Path,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<String> {
    let fail = |what: &str, e: &rusqlite::Error| failure(live, what, e);
    let source = Connection::open_with_flags(
        snapshot,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(|e| fail("cannot open the snapshot", &e))?;
    // Never through a symlink planted at the live path (SQLITE_CANTOPEN_SYMLINK).
    let mut target = open_no_follow(live).map_err(|e| fail("cannot open", &e))?;
    copy_all(&source, &mut target, deadline, cancel)
        .map_err(|e| e.unwrap_or_else(|e| fail("restore failed", &e)))?;
    checked(&target, live, "integrity_check after the restore")
}

/// `PRAGMA integrity_check` of `db` (the snapshot or the live database at `live`): `ok`, or
/// `corrupt` saying `when` and what SQLite found.
fn checked(db: &Connection, live: &Path, when: &str) -> Result<String> {
    let check = integrity(db).map_err(|e| failure(live, "integrity_check failed to run", &e))?;
    if check != "ok" {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!("SQLite {}: {when}: {check}", live.display()),
        ));
    }
    Ok(check)
}

/// A read-write connection (created if absent) that refuses a symlink at `path`, and never
/// waits inside SQLite for a lock (`copy_all` waits, watching the deadline and signals).
fn open_no_follow(path: &Path) -> rusqlite::Result<Connection> {
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )?;
    no_busy_wait(&db)?;
    Ok(db)
}

/// rusqlite's default busy timeout (5 s) would wait inside one backup step, past the
/// deadline and deaf to SIGTERM: a busy step returns at once and `copy_all` retries.
fn no_busy_wait(db: &Connection) -> rusqlite::Result<()> {
    db.busy_timeout(Duration::ZERO)
}

/// Every page in one step; while another connection holds a lock, wait a moment and retry.
fn copy_all(
    from: &Connection,
    to: &mut Connection,
    deadline: Instant,
    cancel: &Cancel,
) -> std::result::Result<(), std::result::Result<Error, rusqlite::Error>> {
    let backup = Backup::new(from, to).map_err(Err)?;
    let mut busy = Backoff::steady(BUSY_WAIT).until(deadline);
    loop {
        match backup.step(-1).map_err(Err)? {
            StepResult::Done => return Ok(()),
            StepResult::Busy | StepResult::Locked => {
                if !busy.sleep(cancel).map_err(Ok)? {
                    return Err(Ok(Error::new(
                        ErrorKind::Timeout,
                        "SQLite stayed locked by another connection until the deadline",
                    )));
                }
            }
            StepResult::More | _ => {}
        }
    }
}

/// One line for the operator: SQLite's own message (which may span lines) joined, and for a
/// read-only failure beside a hot journal, what it means.
fn failure(live: &Path, what: &str, e: &rusqlite::Error) -> Error {
    let said = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let journal = ugw_shared::atomic::sibling(live, "-journal");
    let hint = if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly) && journal.exists() {
        format!(
            " ({} is a hot journal: a writer was cut off mid-transaction, and it must be rolled back by opening the database read-write, as its owner, before a backup can read it)",
            journal.display()
        )
    } else {
        String::new()
    };
    Error::new(
        kind_of(e),
        format!("SQLite {}: {what}: {said}{hint}", live.display()),
    )
}

fn integrity(db: &Connection) -> rusqlite::Result<String> {
    let mut statement = db.prepare("PRAGMA integrity_check")?;
    let lines: Vec<String> = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(lines
        .join("; ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" "))
}

/// A database SQLite itself finds malformed (a damaged page can stop `integrity_check` before
/// it reports anything) is `corrupt`, like a failed check; any other SQLite error is `io`.
fn kind_of(e: &rusqlite::Error) -> ErrorKind {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            ErrorKind::Corrupt
        }
        _ => ErrorKind::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[test]
    fn a_snapshot_of_a_wal_database_is_one_checked_file_and_restores_into_the_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("app.db");
        let db = Connection::open(&live).unwrap();
        db.pragma_update(None, "journal_mode", "WAL").unwrap();
        db.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
            .unwrap();
        assert!(looks_live(&live));
        let snap = dir.path().join("snap.db");
        assert_eq!(
            snapshot(&live, &snap, far(), &Cancel::default()).unwrap(),
            "ok"
        );
        assert!(
            !companions(&snap)[0].exists(),
            "no -wal beside the snapshot"
        );
        db.execute_batch("INSERT INTO t VALUES (3);").unwrap();
        restore_into(&snap, &live, far(), &Cancel::default()).unwrap();
        let count: i64 = db
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 2, "the open connection sees the restored rows");
    }
}
