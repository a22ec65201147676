//! Lock files that say who holds them (host, pid, since). Taken with std's `File::lock`
//! family, so a crashed holder releases the lock; its note tells the next operator who it was.

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::poll::{PollPlan, Poller};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How often a held lock is tried again.
const RETRY_EVERY: Duration = Duration::from_millis(10);
/// A holder's note is one short line; anything longer is not ours.
const MAX_NOTE_BYTES: usize = 4096;

/// Who holds a lock, as written into the lock file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub since: String,
    #[serde(default)]
    pub tool: String,
}

/// A held lock; released (and its note cleared) when dropped.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
}

impl LockGuard {
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Clear the note first so nobody reads a stale holder after we are gone.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Take the exclusive lock at `path`, waiting at most `timeout` (exit 4 past it).
pub fn acquire(
    path: &Path,
    timeout: Duration,
    cancel: &Cancel,
    host: &str,
    tool: &str,
) -> Result<LockGuard> {
    let mut file = open_lock_file(path)?;
    // The poller's beat is the retry rate; its deadline is --lock-timeout.
    let mut poller = Poller::new(
        PollPlan {
            timeout,
            interval: RETRY_EVERY,
            max_interval: None,
            attempt_timeout: timeout,
        },
        Instant::now(),
    );
    loop {
        poller.begin_round();
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                if !poller.wait_next(false, None, cancel)? {
                    return Err(Error::new(
                        ErrorKind::Busy,
                        busy_message(path, &mut file, host, timeout),
                    ));
                }
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(format!("cannot lock {}", path.display()), &e));
            }
        }
    }
    let holder = Holder {
        host: host.to_string(),
        pid: std::process::id(),
        since: crate::time::rfc3339_millis(SystemTime::now()),
        tool: tool.to_string(),
    };
    let note = serde_json::to_string(&holder).expect("holder serialises");
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(note.as_bytes()));
    written.map_err(|e| Error::io(format!("cannot write lock file {}", path.display()), &e))?;
    Ok(LockGuard {
        file,
        path: path.to_path_buf(),
    })
}

/// Open (or create) the lock file, never through a symlink, and only if it is a plain file
/// of its own: the note is written into it, so a link to another file would be emptied.
fn open_lock_file(path: &Path) -> Result<File> {
    let refused = |why: &str| {
        Error::usage(format!(
            "lock file {}: {why}; refusing to use it (remove it if nothing should be there)",
            path.display()
        ))
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused("is a symbolic link"),
            Some(libc::EISDIR) => refused("is not a regular file"),
            _ => Error::io(format!("cannot open lock file {}", path.display()), &e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat lock file {}", path.display()), &e))?;
    if !meta.is_file() {
        return Err(refused("is not a regular file"));
    }
    if meta.nlink() != 1 {
        return Err(refused("has other hard links"));
    }
    Ok(file)
}

/// Read who holds the lock at `path`, if the note says.
#[must_use]
pub fn holder(path: &Path) -> Option<Holder> {
    let bytes = crate::atomic::read_capped(path, MAX_NOTE_BYTES).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn busy_message(path: &Path, file: &mut File, our_host: &str, waited: Duration) -> String {
    let mut text = String::new();
    let _ = file
        .rewind()
        .and_then(|()| file.take(MAX_NOTE_BYTES as u64).read_to_string(&mut text));
    let waited = humantime::format_duration(Duration::from_millis(waited.as_millis() as u64));
    match serde_json::from_str::<Holder>(&text) {
        Ok(h) => {
            let stale = if h.host == our_host && !pid_alive(h.pid) {
                format!(
                    " (stale: pid {} is no longer running; a process it started still holds the lock file open)",
                    h.pid
                )
            } else {
                String::new()
            };
            let tool = if h.tool.is_empty() {
                String::new()
            } else {
                format!("{} ", h.tool)
            };
            format!(
                "{} is held by {tool}pid {} on {} since {}{stale}; gave up after --lock-timeout {waited}",
                path.display(),
                h.pid,
                h.host,
                h.since
            )
        }
        Err(_) => format!(
            "{} is held by another process; gave up after --lock-timeout {waited}",
            path.display()
        ),
    }
}

/// Whether a process with this pid exists (one we may not signal exists too). A lock note
/// names a pid on another run's behalf, so there is nothing to hold a pidfd on: this is only
/// the hint "stale" in a message.
fn pid_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) | Err(rustix::io::Errno::PERM) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let cancel = Cancel::default();
        let held = acquire(&path, Duration::ZERO, &cancel, "node1", "ugw-test").unwrap();
        let h = holder(&path).unwrap();
        assert_eq!(h.pid, std::process::id());
        let start = Instant::now();
        let err = acquire(
            &path,
            Duration::from_millis(100),
            &cancel,
            "node1",
            "ugw-test",
        )
        .unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert_eq!(err.exit, 4);
        assert!(
            err.message.contains(&format!("pid {}", std::process::id())),
            "{}",
            err.message
        );
        // A live holder is not called stale.
        assert!(!err.message.contains("stale"), "{}", err.message);
        drop(held);
        acquire(&path, Duration::ZERO, &cancel, "node1", "ugw-test").unwrap();
    }

    #[test]
    fn a_holder_whose_pid_is_gone_is_called_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let gone = std::process::Command::new("true").spawn().unwrap();
        let pid = gone.id();
        let _ = gone.wait_with_output();
        // As when the holder started a daemon that inherited the open lock file.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap();
        file.lock().unwrap();
        let host = crate::time::hostname();
        let note = format!(r#"{{"host":"{host}","pid":{pid},"since":"2026-11-21T00:00:00.000Z"}}"#);
        std::fs::write(&path, note).unwrap();
        let err = acquire(
            &path,
            Duration::from_millis(50),
            &Cancel::default(),
            &host,
            "ugw-test",
        )
        .unwrap_err();
        let expected = format!("stale: pid {pid} is no longer running");
        assert!(err.message.contains(&expected), "{}", err.message);
    }

    #[test]
    fn a_planted_lock_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = Cancel::default();
        let take = |path: &Path| acquire(path, Duration::ZERO, &cancel, "h", "ugw-test");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();

        let link = dir.path().join("a.lock");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = take(&link).unwrap_err();
        assert_eq!(err.exit, 2);
        assert!(err.message.contains("symbolic link"), "{}", err.message);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

        let nowhere = dir.path().join("created-by-us");
        let dangling = dir.path().join("b.lock");
        std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
        assert_eq!(take(&dangling).unwrap_err().exit, 2);
        assert!(!nowhere.exists(), "a dangling link creates nothing");

        let hard = dir.path().join("c.lock");
        std::fs::hard_link(&victim, &hard).unwrap();
        let err = take(&hard).unwrap_err();
        assert!(err.message.contains("hard links"), "{}", err.message);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

        let folder = dir.path().join("d.lock");
        std::fs::create_dir(&folder).unwrap();
        assert_eq!(take(&folder).unwrap_err().exit, 2);
    }
}
