//! Strict tar extraction, shared by `ugw-fetch --extract` and `ugw-backup restore`. An archive
//! is unpacked into a private temp folder beside its destination, then renamed into place (or
//! handed to the caller for a swap). An entry that would act outside that folder (`..`, an
//! absolute path, a symlink or hard link leading out, a device or FIFO) fails the whole
//! extraction and leaves nothing behind. Every name is created relative to an open folder,
//! walking with `O_NOFOLLOW`, so a symlink from the archive can never redirect a later entry.

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use serde::Serialize;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// setuid and setgid never survive extraction; the sticky bit and the permissions do.
const KEPT_MODE_BITS: u32 = 0o1777;
/// Folders the archive implies but does not list (`a/` of `a/b`) get this mode.
const IMPLIED_DIR_MODE: u32 = 0o755;
const COPY_CHUNK: usize = 256 * 1024;

/// How an archive is unpacked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Drop this many leading components of every entry's path (and of hard-link targets);
    /// entries with no more components than that are skipped, as `tar --strip-components`.
    pub strip_components: usize,
    /// Keep only this archive path and what is under it (before `strip_components`); other
    /// entries are skipped. One path of a backup is restored this way.
    pub only: Option<PathBuf>,
    /// Give entries the archive's owner and group (root restoring a backup); otherwise they
    /// belong to whoever unpacks.
    pub keep_owners: bool,
}

/// What an extraction wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
    /// Entries dropped by `strip_components`.
    pub skipped: u64,
}

/// How an archive stream is compressed, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    #[must_use]
    pub fn detect(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// The tar stream inside `reader`, decompressed as its first bytes say (gzip with any number
/// of members, zstd with any number of frames, or plain tar).
pub fn decoder<'a>(mut reader: impl Read + Send + 'a) -> Result<Box<dyn Read + Send + 'a>> {
    let mut head = Vec::with_capacity(4);
    (&mut reader)
        .take(4)
        .read_to_end(&mut head)
        .map_err(|e| damaged(&e))?;
    let whole = std::io::Cursor::new(head.clone()).chain(reader);
    Ok(match Compression::detect(&head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(whole).map_err(|e| damaged(&e))?)
        }
        Compression::None => Box::new(whole),
    })
}

/// Unpack the archive file at `archive` (compressed or not) into `dest`, which must not exist
/// or be an empty folder.
pub fn unpack_file(
    archive: &Path,
    dest: &Path,
    options: &Options,
    cancel: &Cancel,
) -> Result<Summary> {
    let file = crate::atomic::open_regular(archive)
        .map_err(|e| Error::io(format!("cannot open {}", archive.display()), &e))?;
    stage(decoder(file)?, dest, options, cancel)?.commit()
}

/// An extracted tree in a temp folder beside its destination; removed when dropped unless
/// committed or kept.
#[derive(Debug)]
pub struct Staged {
    dir: PathBuf,
    dest: PathBuf,
    summary: Summary,
    done: bool,
}

impl Staged {
    /// Where the tree is now.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.dir
    }

    #[must_use]
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Rename the tree onto the destination (absent, or an empty folder), durably.
    pub fn commit(mut self) -> Result<Summary> {
        crate::atomic::rename_durable(&self.dir, &self.dest)?;
        self.done = true;
        Ok(std::mem::take(&mut self.summary))
    }

    /// Hand the folder to the caller (for a swap of its own); it is no longer removed.
    #[must_use]
    pub fn keep(mut self) -> PathBuf {
        self.done = true;
        std::mem::take(&mut self.dir)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            remove_tree(&self.dir);
        }
    }
}

/// Extract the tar stream `archive` (already decompressed: see [`decoder`]) into a new temp
/// folder beside `dest`. Nothing is written anywhere else, whatever the archive holds; on any
/// refusal or error the temp folder is gone before this returns.
pub fn stage(
    archive: impl Read,
    dest: &Path,
    options: &Options,
    cancel: &Cancel,
) -> Result<Staged> {
    let mut staged = Staged {
        dir: make_temp_dir(dest)?,
        dest: dest.to_path_buf(),
        summary: Summary::default(),
        done: false,
    };
    let root = open_dir(&staged.dir)?;
    let mut extractor = Extractor {
        root,
        options,
        cancel,
        dirs: Vec::new(),
        summary: Summary::default(),
    };
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries().map_err(|e| damaged(&e))? {
        cancel.check()?;
        extractor.extract(entry.map_err(|e| damaged(&e))?)?;
    }
    extractor.finish_dirs()?;
    // The files' bytes and the folders' entries reach the disk before the caller gives the
    // tree its name (or a marker saying it is whole): one syncfs for the tree, not an fsync
    // per file.
    rustix::fs::syncfs(&extractor.root).map_err(|e| {
        Error::io_write(
            format!("cannot flush {} to disk", staged.dir.display()),
            &e.into(),
        )
    })?;
    staged.summary = extractor.summary;
    Ok(staged)
}

/// An entry's path as components inside the root: `.` dropped, `..` and absolute refused.
pub fn inside_parts(path: &Path) -> std::result::Result<Vec<&OsStr>, &'static str> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("has a '..' component"),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path"),
        }
    }
    Ok(parts)
}

/// Whether a symlink at depth `depth` (folders above it inside the root) pointing to `target`
/// stays inside: relative, its `..` only leading and no more of them than `depth`. A `..`
/// after a name is refused: that name may itself be a link, so the lexical answer could lie.
pub fn symlink_stays_inside(depth: usize, target: &Path) -> std::result::Result<(), &'static str> {
    if target.as_os_str().is_empty() {
        return Err("has an empty target");
    }
    let mut ups = 0;
    let mut named = false;
    for component in target.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if named => {
                return Err(
                    "has '..' after a name in its target (it could climb out through another link)",
                );
            }
            Component::ParentDir => ups += 1,
            Component::Normal(_) => named = true,
            Component::RootDir | Component::Prefix(_) => return Err("points to an absolute path"),
        }
    }
    if ups > depth {
        return Err("points outside the archive's folder");
    }
    Ok(())
}

/// A listed folder whose mode and times are set once everything inside it is written.
struct DirMeta {
    parts: Vec<OsString>,
    mode: u32,
    mtime: Option<u64>,
    owner: Option<(u32, u32)>,
}

struct Extractor<'a> {
    root: OwnedFd,
    options: &'a Options,
    cancel: &'a Cancel,
    dirs: Vec<DirMeta>,
    summary: Summary,
}

impl Extractor<'_> {
    fn extract<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = crate::scrub::excerpt(&raw, 200);
        let refuse = |why: &str| unsafe_entry(&shown, why);
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().map_err(|e| damaged(&e))? & KEPT_MODE_BITS;
        let mtime = header.mtime().ok();
        let owner = match (self.options.keep_owners, header.uid(), header.gid()) {
            (true, Ok(uid), Ok(gid)) => Some((uid as u32, gid as u32)),
            _ => None,
        };
        let parts = inside_parts(Path::new(OsStr::from_bytes(&raw))).map_err(refuse)?;
        if matches!(
            kind,
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo
        ) {
            return Err(refuse("is a device or FIFO"));
        }
        if !self.wanted(&parts) {
            self.summary.skipped += 1;
            return Ok(());
        }
        let Some(parts) = parts.get(self.options.strip_components..) else {
            self.summary.skipped += 1;
            return Ok(());
        };
        let parts: Vec<OsString> = parts.iter().map(|p| (*p).to_os_string()).collect();
        if parts.is_empty() {
            // The archive's top folder (`./`): its mode and times become the root's.
            if !kind.is_dir() {
                if self.options.strip_components > 0 {
                    self.summary.skipped += 1;
                    return Ok(());
                }
                return Err(refuse("is not a folder but names the archive's top"));
            }
            self.dirs.push(DirMeta {
                parts,
                mode,
                mtime,
                owner,
            });
            return Ok(());
        }
        let (parent, name) = self.parent_of(&parts, &refuse)?;
        match kind {
            tar::EntryType::Directory => {
                match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700)) {
                    Err(Errno::EXIST) if is_dir_at(&parent, name) => {}
                    Err(Errno::EXIST) => return Err(refuse("appears twice")),
                    other => other.map_err(|e| write_error(&shown, e))?,
                }
                self.summary.dirs += 1;
                self.dirs.push(DirMeta {
                    parts,
                    mode,
                    mtime,
                    owner,
                });
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let bytes =
                    self.write_file(&mut entry, &parent, name, &shown, mode, mtime, owner)?;
                self.summary.files += 1;
                self.summary.bytes += bytes;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("is a symlink without a target"))?
                    .into_owned();
                symlink_stays_inside(parts.len() - 1, Path::new(OsStr::from_bytes(&target)))
                    .map_err(|why| refuse(&format!("is a symlink that {why}")))?;
                write_symlink(&target, &parent, name, owner, mtime).map_err(|e| match e {
                    Errno::EXIST => refuse("appears twice"),
                    e => write_error(&shown, e),
                })?;
                self.summary.symlinks += 1;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("is a hard link without a target"))?
                    .into_owned();
                self.hard_link(&target, &parent, name, &refuse)
                    .map_err(|e| e.unwrap_or_else(|errno| write_error(&shown, errno)))?;
                self.summary.hardlinks += 1;
            }
            other => return Err(refuse(&format!("has an unsupported type ({other:?})"))),
        }
        Ok(())
    }

    /// Whether an entry is under `Options::only` (or there is no such filter).
    fn wanted(&self, parts: &[&OsStr]) -> bool {
        let Some(only) = &self.options.only else {
            return true;
        };
        let only: Vec<&OsStr> = only
            .components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p),
                _ => None,
            })
            .collect();
        parts.len() >= only.len() && parts[..only.len()] == only[..]
    }

    /// The open folder that holds `parts`' last name, creating implied folders on the way;
    /// a symlink or a file on the way is refused.
    fn parent_of<'p>(
        &mut self,
        parts: &'p [OsString],
        refuse: &dyn Fn(&str) -> Error,
    ) -> Result<(OwnedFd, &'p OsStr)> {
        let (name, folders) = parts.split_last().expect("parts is not empty");
        let mut dir = dup(&self.root)?;
        for (depth, folder) in folders.iter().enumerate() {
            dir = match open_child_dir(&dir, folder) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    rustix::fs::mkdirat(&dir, folder.as_os_str(), Mode::from_raw_mode(0o700))
                        .map_err(|e| Error::io("cannot create a folder", &e.into()))?;
                    self.dirs.push(DirMeta {
                        parts: parts[..=depth].to_vec(),
                        mode: IMPLIED_DIR_MODE,
                        mtime: None,
                        owner: None,
                    });
                    open_child_dir(&dir, folder)
                        .map_err(|e| Error::io("cannot open a folder", &e.into()))?
                }
                Err(_) => return Err(refuse("passes through a symlink or a file")),
            };
        }
        Ok((dir, name.as_os_str()))
    }

    #[allow(clippy::too_many_arguments)] // one entry's facts, used once
    fn write_file<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        parent: &OwnedFd,
        name: &OsStr,
        shown: &str,
        mode: u32,
        mtime: Option<u64>,
        owner: Option<(u32, u32)>,
    ) -> Result<u64> {
        let fd = rustix::fs::openat(
            parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| match e {
            Errno::EXIST => unsafe_entry(shown, "appears twice"),
            e => write_error(shown, e),
        })?;
        let mut file = File::from(fd);
        let mut buffer = vec![0u8; COPY_CHUNK];
        let mut written = 0u64;
        loop {
            self.cancel.check()?;
            let n = entry.read(&mut buffer).map_err(|e| damaged(&e))?;
            if n == 0 {
                break;
            }
            file.write_all(&buffer[..n])
                .map_err(|e| Error::io_write(format!("cannot write {shown}"), &e))?;
            written += n as u64;
        }
        // chown clears setuid/setgid, so the mode comes after it.
        if let Some((uid, gid)) = owner {
            rustix::fs::fchown(&file, Some(uid_of(uid)), Some(gid_of(gid)))
                .map_err(|e| write_error(shown, e))?;
        }
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(|e| write_error(shown, e))?;
        if let Some(mtime) = mtime {
            rustix::fs::futimens(&file, &times(mtime)).map_err(|e| write_error(shown, e))?;
        }
        Ok(written)
    }

    /// A hard link to a regular file extracted earlier from the same archive.
    fn hard_link(
        &mut self,
        target: &[u8],
        parent: &OwnedFd,
        name: &OsStr,
        refuse: &dyn Fn(&str) -> Error,
    ) -> std::result::Result<(), std::result::Result<Error, Errno>> {
        let target_parts = inside_parts(Path::new(OsStr::from_bytes(target)))
            .map_err(|why| Ok(refuse(&format!("is a hard link whose target {why}"))))?;
        let not_earlier = || Ok(refuse("is a hard link to nothing extracted before it"));
        let Some(target_parts) = target_parts
            .get(self.options.strip_components..)
            .filter(|p| !p.is_empty())
        else {
            return Err(not_earlier());
        };
        let (target_name, folders) = target_parts.split_last().expect("not empty");
        let mut dir = dup(&self.root).map_err(Ok)?;
        for folder in folders {
            dir = open_child_dir(&dir, folder).map_err(|_| not_earlier())?;
        }
        let stat = rustix::fs::statat(&dir, *target_name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|_| not_earlier())?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(Ok(refuse("is a hard link to something other than a file")));
        }
        rustix::fs::linkat(&dir, *target_name, parent, name, AtFlags::empty()).map_err(
            |e| match e {
                Errno::EXIST => Ok(refuse("appears twice")),
                e => Err(e),
            },
        )
    }

    /// Set each listed folder's owner, mode and times, deepest first (writing inside a folder
    /// moves its mtime, and a read-only folder could not be written into).
    fn finish_dirs(&mut self) -> Result<()> {
        self.dirs.sort_by_key(|d| std::cmp::Reverse(d.parts.len()));
        for meta in &self.dirs {
            let mut fd = dup(&self.root)?;
            for part in &meta.parts {
                fd = open_child_dir(&fd, part)
                    .map_err(|e| Error::io("cannot open a folder", &e.into()))?;
            }
            let shown = meta
                .parts
                .join(OsStr::new("/"))
                .to_string_lossy()
                .into_owned();
            if let Some((uid, gid)) = meta.owner {
                rustix::fs::fchown(&fd, Some(uid_of(uid)), Some(gid_of(gid)))
                    .map_err(|e| write_error(&shown, e))?;
            }
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(meta.mode))
                .map_err(|e| write_error(&shown, e))?;
            if let Some(mtime) = meta.mtime {
                rustix::fs::futimens(&fd, &times(mtime)).map_err(|e| write_error(&shown, e))?;
            }
        }
        Ok(())
    }
}

/// A symlink already judged to stay inside, with its owner and time.
fn write_symlink(
    target: &[u8],
    parent: &OwnedFd,
    name: &OsStr,
    owner: Option<(u32, u32)>,
    mtime: Option<u64>,
) -> std::result::Result<(), Errno> {
    rustix::fs::symlinkat(target, parent, name)?;
    if let Some((uid, gid)) = owner {
        chown_at(parent, name, uid, gid)?;
    }
    if let Some(mtime) = mtime {
        // Some file systems cannot time a symlink; its target's time is what matters.
        let _ = rustix::fs::utimensat(parent, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW);
    }
    Ok(())
}

fn make_temp_dir(dest: &Path) -> Result<PathBuf> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dest
        .file_name()
        .map_or_else(|| "unpack".into(), |n| n.to_string_lossy().into_owned());
    let mut last = None;
    for _ in 0..16 {
        let suffix: String = (0..10).map(|_| fastrand::alphanumeric()).collect();
        let dir = parent.join(format!(".{name}.{suffix}.unpack"));
        // mkdir fails on anything already there, a planted symlink included.
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(Error::io_write(
                    format!("cannot create a temp folder in {}", parent.display()),
                    &e,
                ));
            }
        }
    }
    Err(Error::io_write(
        format!("cannot create a temp folder in {}", parent.display()),
        &last.expect("the loop ran"),
    ))
}

/// Remove a tree we made, even where it was made read-only.
fn remove_tree(dir: &Path) {
    if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
        return;
    }
    make_writable(dir);
    let _ = std::fs::remove_dir_all(dir);
}

fn make_writable(dir: &Path) {
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            make_writable(&entry.path());
        }
    }
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(format!("cannot open {}", path.display()), &e.into()))
}

fn open_child_dir(dir: &OwnedFd, name: &OsStr) -> std::result::Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd> {
    fd.as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::io("cannot duplicate a folder handle", &e))
}

fn is_dir_at(dir: &OwnedFd, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|s| {
        rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Directory
    })
}

fn chown_at(dir: &OwnedFd, name: &OsStr, uid: u32, gid: u32) -> std::result::Result<(), Errno> {
    rustix::fs::chownat(
        dir,
        name,
        Some(uid_of(uid)),
        Some(gid_of(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
}

fn uid_of(raw: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(raw)
}

fn gid_of(raw: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(raw)
}

/// The modification time as given; the access time left as the extraction made it.
fn times(mtime: u64) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
            tv_nsec: 0,
        },
    }
}

fn unsafe_entry(shown: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::UnsafeInput,
        format!("archive entry '{shown}' {why}; nothing was extracted"),
    )
}

fn damaged(e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("the archive is damaged or truncated: {e}"),
    )
}

fn write_error(shown: &str, e: Errno) -> Error {
    Error::io_write(format!("cannot write {shown}"), &e.into())
}

#[cfg(test)]
#[path = "../../tests/kit/hostile_archives.rs"]
mod hostile_archives;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A tar (by the tar crate, as a backup writes them) of a small tree with every kind we keep.
    fn good_archive() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut add =
            |path: &[u8], kind: tar::EntryType, mode: u32, link: Option<&str>, data: &[u8]| {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(kind);
                header.set_mode(mode);
                header.set_mtime(1_600_000_000);
                header.set_size(data.len() as u64);
                if let Some(link) = link {
                    header.set_link_name(link).unwrap();
                }
                builder
                    .append_data(&mut header, Path::new(OsStr::from_bytes(path)), data)
                    .unwrap();
            };
        add(b"./", tar::EntryType::Directory, 0o750, None, b"");
        add(b"app/", tar::EntryType::Directory, 0o755, None, b"");
        add(b"app/bin/", tar::EntryType::Directory, 0o555, None, b"");
        add(
            b"app/bin/server",
            tar::EntryType::Regular,
            0o4755,
            None,
            b"#!/bin/sh\n",
        );
        add(
            b"app/conf with space.toml",
            tar::EntryType::Regular,
            0o640,
            None,
            b"x = 1\n",
        );
        add(
            b"app/caf\xe9.txt",
            tar::EntryType::Regular,
            0o644,
            None,
            b"latin-1 name\n",
        );
        add(
            b"app/current",
            tar::EntryType::Symlink,
            0o777,
            Some("bin/server"),
            b"",
        );
        add(
            b"app/bin/up",
            tar::EntryType::Symlink,
            0o777,
            Some("../empty"),
            b"",
        );
        add(
            b"app/bin/again",
            tar::EntryType::Link,
            0o755,
            Some("app/bin/server"),
            b"",
        );
        add(b"app/empty/", tar::EntryType::Directory, 0o700, None, b"");
        add(
            b"implied/deep/file",
            tar::EntryType::Regular,
            0o600,
            None,
            b"deep",
        );
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_good_tree_comes_out_whole_with_modes_times_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let summary = stage(
            &good_archive()[..],
            &dest,
            &Options::default(),
            &Cancel::default(),
        )
        .unwrap()
        .commit()
        .unwrap();
        assert_eq!(names(dir.path()), ["out"], "no temp folder left beside it");
        assert_eq!(
            (summary.files, summary.symlinks, summary.hardlinks),
            (4, 2, 1)
        );
        let meta = |p: &str| std::fs::symlink_metadata(dest.join(p)).unwrap();
        assert_eq!(meta("").mode() & 0o7777, 0o750, "the top folder's mode");
        let server = meta("app/bin/server");
        assert_eq!(server.mode() & 0o7777, 0o755, "setuid dropped");
        assert_eq!(server.mtime(), 1_600_000_000);
        assert_eq!(meta("app/bin").mode() & 0o7777, 0o555);
        assert_eq!(
            meta("app/bin").mtime(),
            1_600_000_000,
            "set after its contents"
        );
        assert_eq!(meta("app/empty").mode() & 0o7777, 0o700);
        assert_eq!(meta("app/conf with space.toml").mode() & 0o777, 0o640);
        assert_eq!(
            std::fs::read(dest.join(OsStr::from_bytes(b"app/caf\xe9.txt"))).unwrap(),
            b"latin-1 name\n"
        );
        assert_eq!(
            std::fs::read_link(dest.join("app/current")).unwrap(),
            Path::new("bin/server")
        );
        assert_eq!(meta("app/current").mtime(), 1_600_000_000);
        assert_eq!(
            meta("app/bin/again").ino(),
            server.ino(),
            "a hard link stays a link"
        );
        assert_eq!(meta("implied/deep").mode() & 0o777, IMPLIED_DIR_MODE);
        assert_eq!(
            std::fs::read(dest.join("implied/deep/file")).unwrap(),
            b"deep"
        );
    }

    #[test]
    fn strip_components_drops_leading_folders_and_hard_link_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let options = Options {
            strip_components: 1,
            ..Options::default()
        };
        let summary = stage(&good_archive()[..], &dest, &options, &Cancel::default())
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(
            summary.skipped, 1,
            "only ./ is dropped; app/ gives the top its mode"
        );
        assert_eq!(
            std::fs::read(dest.join("bin/server")).unwrap(),
            b"#!/bin/sh\n"
        );
        let ino = |p: &str| std::fs::metadata(dest.join(p)).unwrap().ino();
        assert_eq!(ino("bin/again"), ino("bin/server"));
        assert_eq!(std::fs::read(dest.join("deep/file")).unwrap(), b"deep");
        // `top/up -> ../x` sits at the top once stripped: its `..` would leave the folder.
        let dest2 = dir.path().join("out2");
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        builder.append_link(&mut header, "top/up", "../x").unwrap();
        let err = stage(
            &builder.into_inner().unwrap()[..],
            &dest2,
            &options,
            &Cancel::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnsafeInput, "{}", err.message);
    }

    #[test]
    fn only_keeps_one_path_of_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        let options = Options {
            only: Some(PathBuf::from("app/bin/server")),
            strip_components: 2,
            ..Options::default()
        };
        let summary = stage(&good_archive()[..], &dest, &options, &Cancel::default())
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!((summary.files, summary.symlinks), (1, 0), "{summary:?}");
        assert_eq!(names(&dest), ["server"]);
    }

    #[test]
    fn every_hostile_archive_is_refused_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = hostile_archives::write_all(dir.path());
        assert!(corpus.len() >= 14, "{}", corpus.len());
        for hostile in &corpus {
            for archive in [&hostile.tar, &hostile.tar_gz] {
                let work = hostile.work_dir();
                let dest = work.join("out");
                let err = unpack_file(archive, &dest, &Options::default(), &Cancel::default())
                    .expect_err(hostile.name);
                assert_eq!(
                    err.kind,
                    ErrorKind::UnsafeInput,
                    "{}: {}",
                    hostile.name,
                    err.message
                );
                assert!(
                    names(&work).is_empty(),
                    "{}: left {:?}",
                    hostile.name,
                    names(&work)
                );
                hostile.assert_untouched();
            }
        }
    }

    #[test]
    fn a_truncated_or_flipped_archive_is_corrupt_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = good_archive();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        let gz = gz.finish().unwrap();
        let mut flipped = gz.clone();
        flipped[gz.len() / 2] ^= 0x40;
        for (name, broken) in [
            ("cut", &gz[..gz.len() / 2]),
            ("flipped", &flipped[..]),
            ("cut-tar", &bytes[..1500]),
        ] {
            let dest = dir.path().join(name);
            let err = stage(
                decoder(broken).unwrap(),
                &dest,
                &Options::default(),
                &Cancel::default(),
            )
            .unwrap_err();
            assert_eq!(err.kind, ErrorKind::Corrupt, "{name}: {}", err.message);
        }
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }

    #[test]
    fn gzip_members_and_zstd_frames_are_read_to_the_end() {
        let bytes = good_archive();
        let (first, second) = bytes.split_at(1024);
        let mut members = Vec::new();
        for part in [first, second] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part).unwrap();
            members.extend(gz.finish().unwrap());
        }
        let mut frames = zstd::encode_all(first, 3).unwrap();
        frames.extend(zstd::encode_all(second, 3).unwrap());
        for (name, archive) in [("gz", members), ("zst", frames), ("tar", bytes.clone())] {
            let mut out = Vec::new();
            decoder(&archive[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, bytes, "{name}");
        }
    }

    #[test]
    fn a_read_only_tree_is_still_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(
            &good_archive()[..],
            &dir.path().join("out"),
            &Options::default(),
            &Cancel::default(),
        )
        .unwrap();
        assert!(staged.path().join("app/bin/server").exists());
        drop(staged);
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }

    #[test]
    fn a_kept_tree_is_the_callers() {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(
            &good_archive()[..],
            &dir.path().join("out"),
            &Options::default(),
            &Cancel::default(),
        )
        .unwrap();
        let path = staged.keep();
        assert!(path.join("app/bin/server").exists());
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".out.")
        );
    }

    #[test]
    fn an_interrupted_extraction_stops_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = Cancel::default();
        cancel.trip(libc::SIGTERM);
        let err = stage(
            &good_archive()[..],
            &dir.path().join("out"),
            &Options::default(),
            &cancel,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Interrupted);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn symlink_targets_are_judged_strictly() {
        assert!(symlink_stays_inside(0, Path::new("a/b")).is_ok());
        assert!(symlink_stays_inside(2, Path::new("../../x")).is_ok());
        assert!(symlink_stays_inside(1, Path::new("../../x")).is_err());
        assert!(symlink_stays_inside(3, Path::new("a/../b")).is_err());
        assert!(symlink_stays_inside(3, Path::new("/etc")).is_err());
        assert!(symlink_stays_inside(3, Path::new("")).is_err());
    }
}
