//! Files that matter are replaced whole: a temp file in the target's folder, fsync, rename,
//! fsync the folder. A crash leaves the old file or the new one, never half of one, and a
//! partial file never carries the final name. Every file ugw creates is opened here or in
//! `lock.rs`, never through a symlink someone planted.

use crate::error::{Error, ErrorKind, Result};
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How many random temp names are tried before giving up (each clash is someone's file).
pub const TEMP_NAME_TRIES: usize = 16;
/// How many random letters and digits a temp name carries.
pub const TEMP_RANDOM_LEN: usize = 10;

/// The one shape of ugw's temp names: `.NAME.XXXXXXXXXX.KIND` in `target`'s folder, NAME its
/// file name, ten random letters and digits, KIND what it is (`tmp`, `unpack`, `exchange`).
/// Hidden, beside what it becomes (so the last rename stays in one file system), and
/// recognisable after a crash (`is_temp_name`). Each call gives a new name: a caller creates
/// it exclusively and tries again, up to `TEMP_NAME_TRIES` times, when it is taken.
#[must_use]
pub fn temp_name(target: &Path, kind: &str) -> PathBuf {
    let random: String = (0..TEMP_RANDOM_LEN)
        .map(|_| fastrand::alphanumeric())
        .collect();
    let mut name = OsString::from(".");
    name.push(target.file_name().unwrap_or_else(|| OsStr::new("ugw")));
    name.push(format!(".{random}.{kind}"));
    parent_dir(target).join(name)
}

/// Whether `entry` (a file name) is a temp name `temp_name` gives `name` for `kind`.
#[must_use]
pub fn is_temp_name(entry: &str, name: &str, kind: &str) -> bool {
    entry
        .strip_prefix('.')
        .and_then(|rest| rest.strip_prefix(name))
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(kind))
        .and_then(|rest| rest.strip_suffix('.'))
        .is_some_and(|random| {
            random.len() == TEMP_RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// A file written in full beside `target` and given its name only on `commit()`; removed
/// when dropped uncommitted (an error, a panic, or a signal that ends the tool through `cli`).
pub struct AtomicFile {
    file: File,
    temp: PathBuf,
    target: PathBuf,
    hasher: Option<ring::digest::Context>,
    committed: bool,
}

impl std::fmt::Debug for AtomicFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicFile")
            .field("temp", &self.temp)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl AtomicFile {
    /// A new temp file beside `target` (mode 0600, or the mode of the file it will replace).
    pub fn create(target: &Path) -> Result<Self> {
        let dir = parent_dir(target);
        let mut last_error = None;
        for _ in 0..TEMP_NAME_TRIES {
            let temp = temp_name(target, "tmp");
            match create_exclusive(&temp) {
                Ok(file) => {
                    keep_mode_of(target, &file);
                    return Ok(AtomicFile {
                        file,
                        temp,
                        target: target.to_path_buf(),
                        hasher: None,
                        committed: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot create a temp file in {}", dir.display()),
                        &e,
                    ));
                }
            }
        }
        let e = last_error.expect("the loop ran");
        Err(Error::io(
            format!("cannot create a temp file in {}", dir.display()),
            &e,
        ))
    }

    /// Hash the bytes with SHA-256 as they are written; `commit` returns the digest.
    #[must_use]
    pub fn hashed(mut self) -> Self {
        self.hasher = Some(ring::digest::Context::new(&ring::digest::SHA256));
        self
    }

    /// Where the bytes are until `commit`.
    #[must_use]
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// The open temp file, to set its owner, mode or extended attributes before `commit`.
    #[must_use]
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Start over: the temp file emptied and the digest reset (a download restarted because
    /// the server's file changed).
    pub fn restart(&mut self) -> Result<()> {
        use std::io::Seek;
        self.file
            .set_len(0)
            .and_then(|()| self.file.rewind())
            .map_err(|e| Error::io(format!("cannot truncate {}", self.temp.display()), &e))?;
        if self.hasher.is_some() {
            self.hasher = Some(ring::digest::Context::new(&ring::digest::SHA256));
        }
        Ok(())
    }

    /// Make the bytes durable and close the file for writing (it stays open to read), so
    /// that the temp file can be run (a smoke test) before `commit`: Linux refuses to run a
    /// file open for writing ("text file busy").
    pub fn seal(&mut self) -> Result<()> {
        let fail = |e: std::io::Error| {
            Error::io_write(format!("cannot write {}", self.temp.display()), &e)
        };
        self.file
            .flush()
            .and_then(|()| self.file.sync_all())
            .map_err(fail)?;
        let reopened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.temp)
            .map_err(fail)?;
        self.file = reopened;
        Ok(())
    }

    /// fsync, rename onto the target, fsync the folder. Returns the SHA-256 (lower-case hex)
    /// when the file was `hashed`.
    pub fn commit(mut self) -> Result<Option<String>> {
        crate::failpoint::hit("atomic.after-temp-write");
        self.file
            .flush()
            .and_then(|()| self.file.sync_all())
            .map_err(|e| Error::io_write(format!("cannot write {}", self.temp.display()), &e))?;
        crate::failpoint::hit("atomic.after-fsync");
        // rename() replaces a symlink at the target itself; it never writes through it.
        std::fs::rename(&self.temp, &self.target)
            .map_err(|e| Error::io(format!("cannot rename into {}", self.target.display()), &e))?;
        self.committed = true;
        crate::failpoint::hit("atomic.after-rename");
        sync_dir(&parent_dir(&self.target))?;
        Ok(self
            .hasher
            .take()
            .map(|h| crate::digest::hex(h.finish().as_ref())))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..written]);
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Create `path`, failing if anything (a file, a symlink, dangling or not) is already there.
fn create_exclusive(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Keep the mode of the file being replaced, so a 0600 record stays 0600 (and a 0644 one
/// stays readable).
fn keep_mode_of(target: &Path, temp: &File) {
    if let Ok(meta) = std::fs::symlink_metadata(target)
        && meta.is_file()
    {
        let mode = meta.permissions().mode() & 0o7777;
        let _ = temp.set_permissions(std::fs::Permissions::from_mode(mode));
    }
}

/// Replace `path` with `bytes` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)
        .map_err(|e| Error::io_write(format!("cannot write {}", file.temp_path().display()), &e))?;
    file.commit().map(|_| ())
}

/// Open an existing file to read it, never through a symlink in its last component and never
/// blocking on a FIFO; anything but a regular file is refused.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

/// Read a regular file of at most `cap` bytes, checking the size before reading.
pub fn read_capped(path: &Path, cap: usize) -> std::io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > cap as u64 {
        return Err(too_large(cap));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // The file may grow after fstat: still never read past the cap.
    file.take(cap as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > cap {
        return Err(too_large(cap));
    }
    Ok(bytes)
}

fn too_large(cap: usize) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::FileTooLarge,
        format!("larger than {cap} bytes"),
    )
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

/// Exchange `a` and `b` (two folders, or a folder and a file) in one rename
/// (`renameat2(RENAME_EXCHANGE)`) and make it durable: a reader resolving either path sees the
/// old entry or the new one, never nothing. How a live release is replaced by one staged
/// beside it, with the replaced content kept under the other name until the new one is proven.
///
/// A file system without `RENAME_EXCHANGE` (or a kernel before 3.15) gets the same end state
/// by three renames through a temp name beside `b`, with a moment in which `b` is missing.
pub fn exchange_durable(a: &Path, b: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    let failed = |e: std::io::Error| {
        Error::io_write(
            format!("cannot exchange {} and {}", a.display(), b.display()),
            &e,
        )
    };
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => {}
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            exchange_by_renames(a, b).map_err(failed)?;
        }
        Err(e) => return Err(failed(std::io::Error::from(e))),
    }
    sync_dir(&parent_dir(a))?;
    if parent_dir(a) != parent_dir(b) {
        sync_dir(&parent_dir(b))?;
    }
    Ok(())
}

/// `exchange_durable` where the file system cannot exchange: `b` aside, `a` to `b`, the old
/// `b` to `a`.
fn exchange_by_renames(a: &Path, b: &Path) -> std::io::Result<()> {
    let aside = temp_name(b, "exchange");
    std::fs::rename(b, &aside)?;
    std::fs::rename(a, b)?;
    std::fs::rename(&aside, a)
}

/// Point the symlink `link` at `points_to` in one step: a new symlink under a temp name
/// beside it, renamed over `link`, then the folder fsync'd. A reader resolving `link` sees
/// the old target or the new one, never nothing (unlike `ln -sfn`, which unlinks first).
pub fn replace_symlink(link: &Path, points_to: &Path) -> Result<()> {
    let dir = parent_dir(link);
    let mut last_error = None;
    for _ in 0..TEMP_NAME_TRIES {
        let temp = temp_name(link, "tmp");
        match std::os::unix::fs::symlink(points_to, &temp) {
            Ok(()) => {
                if let Err(e) = std::fs::rename(&temp, link) {
                    let _ = std::fs::remove_file(&temp);
                    return Err(Error::io(format!("cannot replace {}", link.display()), &e));
                }
                return sync_dir(&dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => {
                return Err(Error::io(
                    format!("cannot create a symlink in {}", dir.display()),
                    &e,
                ));
            }
        }
    }
    let e = last_error.expect("the loop ran");
    Err(Error::io(
        format!("cannot create a symlink in {}", dir.display()),
        &e,
    ))
}

/// fsync a folder so that renames inside it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("cannot fsync folder {}", dir.display()), &e))
}

/// When `path` itself is a symbolic link, the error that says so plainly (a usage error, exit
/// 2): ugw reads an input it checks, copies or hashes only as a real file or folder, never
/// through a link whose target can change between the check and the use. `None` otherwise
/// (not a link, or not there: the caller's own open says that).
#[must_use]
pub fn link_refused(path: &Path, what: &str) -> Option<Error> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_symlink() {
        return None;
    }
    let target = std::fs::read_link(path).map_or_else(|_| "?".into(), |t| t.display().to_string());
    Some(Error::usage(format!(
        "{what} {} is a symbolic link (to {target}); it is read only as a real file or \
         folder, never through a link: give the path it points to",
        path.display()
    )))
}

/// An error for a path ugw will not open because it is a symlink (or not a regular file).
#[must_use]
pub fn refused(what: &str, path: &Path, why: &str) -> Error {
    Error::new(
        ErrorKind::Usage,
        format!("{what} {}: {why}", path.display()),
    )
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `path` with `suffix` added to its file name (`app.db` → `app.db-wal`, `app` →
/// `app.ugw-prev`): where ugw keeps what belongs beside a file.
#[must_use]
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// A `--mode` as an operator writes it (`755`, `0755`, `0o755`): octal, at most `7777`.
pub fn parse_mode(text: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("'{text}' is not an octal mode like 755"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn a_temp_name_is_hidden_beside_its_target_random_and_recognised_for_its_name_only() {
        let temp = super::temp_name(Path::new("/srv/app/current"), "tmp");
        assert_eq!(temp.parent(), Some(Path::new("/srv/app")));
        let name = temp.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".current."), "{name}");
        assert_eq!(temp.extension(), Some("tmp".as_ref()));
        assert_eq!(name.len(), ".current..tmp".len() + super::TEMP_RANDOM_LEN);
        assert!(super::is_temp_name(name, "current", "tmp"));
        assert_ne!(temp, super::temp_name(Path::new("/srv/app/current"), "tmp"));
        let bare = super::temp_name(Path::new("app.tar"), "unpack");
        assert_eq!(
            bare.parent(),
            Some(Path::new(".")),
            "a bare name's folder is ."
        );
        let bare = bare.file_name().unwrap().to_str().unwrap();
        assert!(super::is_temp_name(bare, "app.tar", "unpack"));
        assert!(!super::is_temp_name(bare, "app.tar", "tmp"), "another kind");
        assert!(!super::is_temp_name(bare, "app", "unpack"), "another name");
        for not_ours in [
            ".app.AbCdE1234.tmp",
            ".app.AbCdE12345.tmp.x",
            ".app.AbC-E12345.tmp",
            ".application.AbCdE12345.tmp",
            "app.AbCdE12345.tmp",
            ".app.AbCdE12345tmp",
        ] {
            assert!(!super::is_temp_name(not_ours, "app", "tmp"), "{not_ours}");
        }
    }

    #[test]
    fn an_exchange_swaps_two_folders_with_renames_or_without() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for (folder, content) in [(&a, "new"), (&b, "old")] {
            std::fs::create_dir(folder).unwrap();
            std::fs::write(folder.join("f"), content).unwrap();
        }
        super::exchange_durable(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(b.join("f")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(a.join("f")).unwrap(), "old");
        super::exchange_by_renames(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(b.join("f")).unwrap(), "old");
        assert_eq!(std::fs::read_to_string(a.join("f")).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn modes_are_octal_up_to_7777() {
        assert_eq!(super::parse_mode("755"), Ok(0o755));
        assert_eq!(super::parse_mode("0o4755"), Ok(0o4755));
        assert_eq!(super::parse_mode("0640"), Ok(0o640));
        for bad in ["", "9", "rwx", "17777", "-1"] {
            assert!(super::parse_mode(bad).is_err(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn a_sealed_file_can_be_run_before_it_is_committed_and_a_restart_empties_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tool");
        let mut file = AtomicFile::create(&target).unwrap().hashed();
        file.write_all(b"partial").unwrap();
        file.restart().unwrap();
        file.write_all(b"#!/bin/sh\nexit 7\n").unwrap();
        file.seal().unwrap();
        let temp = file.temp_path().to_path_buf();
        file.file()
            .set_permissions(std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let status = std::process::Command::new(&temp).status().unwrap();
        assert_eq!(status.code(), Some(7), "no 'text file busy'");
        let digest = file.commit().unwrap().unwrap();
        assert_eq!(
            digest,
            crate::digest::sha256_file(&target).unwrap(),
            "restart reset the hash"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"#!/bin/sh\nexit 7\n");
    }

    #[test]
    fn a_symlink_is_replaced_without_a_moment_missing() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        let link = dir.path().join("current");
        replace_symlink(&link, Path::new("a")).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (link, stop) = (link.clone(), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut reads = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let target = std::fs::read_link(&link).expect("current is always there");
                    assert!(target == Path::new("a") || target == Path::new("b"));
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..500 {
            replace_symlink(&link, Path::new(if i % 2 == 0 { "b" } else { "a" })).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("a"));
        assert_eq!(
            names(dir.path()),
            ["a", "b", "current"],
            "no temp link left"
        );
    }
    use std::os::unix::fs::MetadataExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_whole_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["rec.json"]);
    }

    #[test]
    fn replaces_by_rename_so_a_reader_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.json");
        std::fs::write(&path, b"old contents").unwrap();
        let before = std::fs::metadata(&path).unwrap().ino();
        let mut reader = File::open(&path).unwrap();
        write_atomic(&path, b"new").unwrap();
        // An in-place write would show the reader "new" (or a truncated file).
        let mut seen = String::new();
        reader.read_to_string(&mut seen).unwrap();
        assert_eq!(seen, "old contents");
        assert_ne!(std::fs::metadata(&path).unwrap().ino(), before);
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn a_dropped_file_leaves_nothing_and_the_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.tar");
        std::fs::write(&path, b"old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"half of it").unwrap();
        assert!(file.temp_path().exists());
        assert_eq!(
            file.temp_path().parent(),
            Some(dir.path()),
            "beside the target"
        );
        drop(file);
        assert_eq!(names(dir.path()), ["big.tar"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }

    #[test]
    fn the_hash_is_the_sha256_of_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = AtomicFile::create(&path).unwrap().hashed();
        file.write_all(b"a").unwrap();
        file.write_all(b"bc").unwrap();
        let digest = file.commit().unwrap();
        assert_eq!(
            digest.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        let unhashed = AtomicFile::create(&path).unwrap();
        assert_eq!(unhashed.commit().unwrap(), None);
    }

    #[test]
    fn a_planted_symlink_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // At a temp name: creating it fails instead of writing the victim.
        let temp = dir.path().join(".f.planted.tmp");
        std::os::unix::fs::symlink(&victim, &temp).unwrap();
        let err = create_exclusive(&temp).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        // A dangling one creates nothing at its destination.
        let nowhere = dir.path().join("created-by-root");
        let dangling = dir.path().join(".f.dangling.tmp");
        std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
        assert!(create_exclusive(&dangling).is_err());
        assert!(!nowhere.exists());
        // At the target: the link itself is replaced, its destination untouched.
        let target = dir.path().join("f");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&target).unwrap().is_file());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }

    #[test]
    fn the_mode_of_the_replaced_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"1").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"2").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
    }

    #[test]
    fn reading_refuses_what_is_not_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // A FIFO nobody writes to would block open() without O_NONBLOCK.
        assert_eq!(
            read_capped(&fifo, 10).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        assert_eq!(
            read_capped(Path::new("/dev/zero"), 10).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        let sparse = dir.path().join("sparse");
        File::create(&sparse).unwrap().set_len(1 << 40).unwrap();
        assert_eq!(
            read_capped(&sparse, 10).unwrap_err().kind(),
            std::io::ErrorKind::FileTooLarge
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&sparse, &link).unwrap();
        assert!(read_capped(&link, 10).is_err(), "never through a symlink");
        std::fs::write(&sparse, b"0123456789").unwrap();
        assert_eq!(read_capped(&sparse, 10).unwrap(), b"0123456789");
    }
}
