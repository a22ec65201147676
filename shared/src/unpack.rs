//! Strict tar extraction, shared by `ugw-fetch --extract` and `ugw-backup restore`. An archive
//! is unpacked into a private temp folder beside its destination, then renamed into place (or
//! handed to the caller for a swap). An entry that would act outside that folder (`..`, an
//! absolute path, a symlink or hard link leading out, a device or FIFO) fails the whole
//! extraction and leaves nothing behind. Every name is created relative to an open folder,
//! walking with `O_NOFOLLOW`, so a symlink from the archive can never redirect a later entry.
//! The archive is read by [`reader`] (ustar, GNU and PAX, global headers, GNU sparse files);
//! a sparse file's holes stay holes.

mod reader;

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use reader::{Kind, Reader};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use serde::Serialize;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

/// Folders the archive implies but does not list (`a/` of `a/b`) get this mode.
const IMPLIED_DIR_MODE: u32 = 0o755;
const COPY_CHUNK: usize = 256 * 1024;
/// An entry's path or link target longer than this (Linux's `PATH_MAX` less its NUL) is
/// refused: nothing could open it by its name.
pub const MAX_PATH_BYTES: usize = 4095;
/// An entry nested deeper than this many names is refused. It bounds the work and the open
/// folders one entry costs (a 157-byte `.tar.gz` can name a path thousands of levels deep).
pub const MAX_DEPTH: usize = 256;
/// Runs of zeros at least this long become holes where [`Options::zeros_as_holes`] says so.
const HOLE_BLOCK: usize = 4096;
const HOLE_SEEK: i64 = 4096;

/// Which modes extracted entries get.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Modes {
    /// A release made elsewhere, as Python's `filter='data'`: group and other write,
    /// setuid, setgid and sticky are cleared; the owner always gets read (and read, write and
    /// search on folders, so the tree can be read and removed); execute bits are kept.
    #[default]
    Release,
    /// A tree ugw itself archived (ugw-backup restore): the archive's modes exactly.
    Exact,
}

/// Which symlink targets an archive may hold. Whatever this says, nothing is ever written
/// through a symlink during an extraction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Symlinks {
    /// Relative targets that stay inside the extracted folder.
    #[default]
    Inside,
    /// Those, and absolute targets (a venv's `bin/python3 -> /usr/bin/python3`).
    AllowAbsolute,
    /// Any target: the links are data of a tree ugw archived, put back as they were.
    Any,
}

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
    pub modes: Modes,
    pub symlinks: Symlinks,
    /// Runs of zeros in a file's data are left as holes (a backup restore: the tar writer
    /// ugw-backup uses stores a sparse file's holes as zeros).
    pub zeros_as_holes: bool,
    /// Past this instant the extraction stops with `timeout` (checked per entry and per
    /// chunk of data).
    pub deadline: Option<Instant>,
}

impl Options {
    /// The options of a restore of a tree ugw archived: modes exactly, symlinks as data,
    /// holes kept.
    #[must_use]
    pub fn restoring() -> Self {
        Options {
            modes: Modes::Exact,
            symlinks: Symlinks::Any,
            zeros_as_holes: true,
            ..Options::default()
        }
    }
}

/// What an extraction wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// Bytes of file contents written (a sparse file's data, not its holes).
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
    Xz,
    Bzip2,
}

impl Compression {
    #[must_use]
    pub fn detect(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Compression::Xz,
            [b'B', b'Z', b'h', ..] => Compression::Bzip2,
            _ => Compression::None,
        }
    }
}

/// The tar stream inside `reader`, decompressed as its first bytes say (gzip with any number
/// of members, zstd with any number of frames, xz and bzip2 with any number of streams, or
/// plain tar).
pub fn decoder<'a>(mut reader: impl Read + Send + 'a) -> Result<Box<dyn Read + Send + 'a>> {
    let mut head = Vec::with_capacity(6);
    (&mut reader)
        .take(6)
        .read_to_end(&mut head)
        .map_err(|e| damaged(&e))?;
    let whole = std::io::Cursor::new(head.clone()).chain(reader);
    Ok(match Compression::detect(&head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(whole).map_err(|e| damaged(&e))?)
        }
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(whole)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(whole)),
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
        room: crate::space::free_bytes(&staged.dir).ok(),
        root,
        options,
        cancel,
        dirs: Vec::new(),
        summary: Summary::default(),
        dir: staged.dir.clone(),
    };
    let mut tar = Reader::new(archive);
    while let Some(entry) = tar.next_entry()? {
        extractor.check_time()?;
        extractor.extract(&entry, &mut tar)?;
        crate::failpoint::hit("fetch.mid-extract");
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

/// The checks an extraction makes of each entry's name, type and link, without writing
/// anything: `ugw-backup verify` runs them over an archive so that a backup that verifies is
/// one its restore accepts. Feed it every entry in archive order.
#[derive(Debug, Default)]
pub struct Checker {
    options: Options,
    /// What each path extracted so far is.
    seen: std::collections::HashMap<Vec<OsString>, Seen>,
}

/// What the [`Checker`] knows of a path it admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Dir,
    File,
    Symlink(Vec<u8>),
}

impl Checker {
    #[must_use]
    pub fn new(options: Options) -> Self {
        Checker {
            options,
            seen: std::collections::HashMap::new(),
        }
    }

    /// Refuse (as an extraction would, `unsafe_input`) an entry of `path` that is a folder,
    /// file, symlink (to `link`) or hard link (to `link`), or a device or FIFO.
    pub fn check(&mut self, path: &[u8], kind: EntryKind, link: &[u8]) -> Result<()> {
        let shown = crate::scrub::excerpt(path, 200);
        let refuse = |why: &str| {
            Error::new(
                ErrorKind::UnsafeInput,
                format!("archive entry '{shown}' {why}; a restore would refuse it"),
            )
        };
        let kind = match kind {
            EntryKind::Dir => Kind::Dir,
            EntryKind::File => Kind::File,
            EntryKind::Symlink => Kind::Symlink,
            EntryKind::HardLink => Kind::HardLink,
            EntryKind::Special => Kind::Fifo,
            EntryKind::Other(flag) => Kind::Unsupported(flag),
        };
        let Some(parts) = judge_name(path, kind, &self.options).map_err(|why| refuse(&why))? else {
            return Ok(());
        };
        if parts.is_empty() {
            return Ok(());
        }
        for depth in 1..parts.len() {
            match self.seen.get(&parts[..depth]) {
                None | Some(Seen::Dir) => {}
                Some(_) => return Err(refuse("passes through a symlink or a file")),
            }
        }
        let depth = parts.len() - 1;
        let seen = match kind {
            Kind::Symlink => {
                judge_symlink(&self.options, depth, link)
                    .map_err(|why| refuse(&format!("is a symlink that {why}")))?;
                Seen::Symlink(link.to_vec())
            }
            Kind::HardLink => self
                .hard_link_target(link, depth)
                .map_err(|why| refuse(&format!("is a hard link {why}")))?,
            Kind::Dir => Seen::Dir,
            _ => Seen::File,
        };
        match self.seen.get(&parts) {
            Some(Seen::Dir) if seen == Seen::Dir => {}
            Some(_) => return Err(refuse("appears twice")),
            None => {
                self.seen.insert(parts, seen);
            }
        }
        Ok(())
    }

    /// What a hard link `depth` folders down makes (a file, or the symlink it names judged
    /// again at the link's depth), or why it is refused.
    fn hard_link_target(&self, link: &[u8], depth: usize) -> std::result::Result<Seen, String> {
        let parts = inside_parts(Path::new(OsStr::from_bytes(link)))
            .map_err(|why| format!("whose target {why}"))?;
        let parts: Vec<OsString> = parts
            .get(self.options.strip_components..)
            .unwrap_or_default()
            .iter()
            .map(|p| (*p).to_os_string())
            .collect();
        match self.seen.get(&parts) {
            Some(Seen::File) => Ok(Seen::File),
            Some(Seen::Symlink(text)) => {
                judge_symlink(&self.options, depth, text)
                    .map_err(|why| format!("to a symlink that, at this name, {why}"))?;
                Ok(Seen::Symlink(text.clone()))
            }
            Some(Seen::Dir) => Err("to something other than a file".into()),
            None => Err("to nothing extracted before it".into()),
        }
    }
}

/// An entry's type as [`Checker`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    HardLink,
    /// A device or FIFO.
    Special,
    /// Any other type flag (extraction refuses it).
    Other(u8),
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

/// A symlink target judged by `options.symlinks`, for a link `depth` folders down.
fn judge_symlink(
    options: &Options,
    depth: usize,
    target: &[u8],
) -> std::result::Result<(), String> {
    if target.is_empty() {
        return Err("has an empty target".into());
    }
    if target.len() > MAX_PATH_BYTES {
        return Err(format!("has a target longer than {MAX_PATH_BYTES} bytes"));
    }
    let absolute = target.starts_with(b"/");
    match options.symlinks {
        Symlinks::Any => Ok(()),
        Symlinks::AllowAbsolute if absolute => Ok(()),
        Symlinks::Inside if absolute => Err(
            "points to an absolute path (ugw-fetch --allow-absolute-symlinks lets such a link exist)"
                .into(),
        ),
        Symlinks::Inside | Symlinks::AllowAbsolute => {
            symlink_stays_inside(depth, Path::new(OsStr::from_bytes(target))).map_err(String::from)
        }
    }
}

/// The checks of an entry's name and type every extraction makes first: the path inside the
/// root and within the bounds, no device or FIFO. `Ok(None)`: the options skip it;
/// `Ok(Some(parts))`: its path in the extracted tree (empty for the archive's top folder).
fn judge_name(
    path: &[u8],
    kind: Kind,
    options: &Options,
) -> std::result::Result<Option<Vec<OsString>>, String> {
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("has a path longer than {MAX_PATH_BYTES} bytes"));
    }
    let parts = inside_parts(Path::new(OsStr::from_bytes(path)))?;
    if parts.len() > MAX_DEPTH {
        return Err(format!("is nested deeper than {MAX_DEPTH} folders"));
    }
    match kind {
        Kind::Char | Kind::Block | Kind::Fifo => return Err("is a device or FIFO".into()),
        Kind::Unsupported(flag) => {
            return Err(format!(
                "has a type this extraction does not support (type flag '{}')",
                char::from(flag).escape_default()
            ));
        }
        _ => {}
    }
    if !wanted(options, &parts) {
        return Ok(None);
    }
    let Some(parts) = parts.get(options.strip_components..) else {
        return Ok(None);
    };
    if parts.is_empty() && kind != Kind::Dir {
        if options.strip_components > 0 {
            return Ok(None);
        }
        return Err("is not a folder but names the archive's top".into());
    }
    Ok(Some(parts.iter().map(|p| (*p).to_os_string()).collect()))
}

/// Whether an entry is under `Options::only` (or there is no such filter).
fn wanted(options: &Options, parts: &[&OsStr]) -> bool {
    let Some(only) = &options.only else {
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

/// The mode an entry gets under `modes`.
fn mode_for(modes: Modes, kind: Kind, mode: u32) -> u32 {
    match modes {
        Modes::Exact => mode & 0o7777,
        Modes::Release if kind == Kind::Dir => (mode & 0o755) | 0o700,
        Modes::Release => (mode & 0o755) | 0o400,
    }
}

/// A listed folder whose mode and times are set once everything inside it is written: the
/// folder `path[..depth]` (the implied folders of one entry share its path).
struct DirMeta {
    path: Rc<[OsString]>,
    depth: usize,
    mode: u32,
    mtime: Option<u64>,
    owner: Option<(u32, u32)>,
}

impl DirMeta {
    fn parts(&self) -> &[OsString] {
        &self.path[..self.depth]
    }
}

struct Extractor<'a> {
    root: OwnedFd,
    dir: PathBuf,
    options: &'a Options,
    cancel: &'a Cancel,
    dirs: Vec<DirMeta>,
    summary: Summary,
    /// Free bytes where the tree is written, when the extraction started.
    room: Option<u64>,
}

impl Extractor<'_> {
    fn check_time(&self) -> Result<()> {
        self.cancel.check()?;
        if self.options.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::new(
                ErrorKind::Timeout,
                "the extraction did not finish before the deadline (--timeout); nothing was extracted",
            ));
        }
        Ok(())
    }

    fn extract<R: Read>(&mut self, entry: &reader::Entry, tar: &mut Reader<R>) -> Result<()> {
        let shown = crate::scrub::excerpt(&entry.path, 200);
        let refuse = |why: &str| unsafe_entry(&shown, why);
        let mtime = entry.mtime;
        let owner = self
            .options
            .keep_owners
            .then(|| (to_u32(entry.uid), to_u32(entry.gid)));
        let Some(parts) =
            judge_name(&entry.path, entry.kind, self.options).map_err(|why| refuse(&why))?
        else {
            self.summary.skipped += 1;
            return Ok(());
        };
        let mode = mode_for(self.options.modes, entry.kind, entry.mode);
        let parts: Rc<[OsString]> = parts.into();
        if parts.is_empty() {
            // The archive's top folder (`./`): its mode and times become the root's.
            self.dirs.push(DirMeta {
                path: parts,
                depth: 0,
                mode,
                mtime,
                owner,
            });
            return Ok(());
        }
        let (parent, name) = self.parent_of(&parts, &refuse)?;
        match entry.kind {
            Kind::Dir => {
                match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700)) {
                    Err(Errno::EXIST) if is_dir_at(&parent, name) => {}
                    Err(Errno::EXIST) => return Err(refuse("appears twice")),
                    other => other.map_err(|e| write_error(&shown, e))?,
                }
                self.summary.dirs += 1;
                let depth = parts.len();
                self.dirs.push(DirMeta {
                    path: parts,
                    depth,
                    mode,
                    mtime,
                    owner,
                });
            }
            Kind::File => {
                let bytes = self.write_file(entry, tar, &parent, name, &shown, mode, owner)?;
                self.summary.files += 1;
                self.summary.bytes += bytes;
            }
            Kind::Symlink => {
                judge_symlink(self.options, parts.len() - 1, &entry.link)
                    .map_err(|why| refuse(&format!("is a symlink that {why}")))?;
                write_symlink(&entry.link, &parent, name, owner, mtime).map_err(|e| match e {
                    Errno::EXIST => refuse("appears twice"),
                    e => write_error(&shown, e),
                })?;
                self.summary.symlinks += 1;
            }
            Kind::HardLink => {
                self.hard_link(&entry.link, &parent, name, parts.len() - 1, &refuse)
                    .map_err(|e| e.unwrap_or_else(|errno| write_error(&shown, errno)))?;
                self.summary.hardlinks += 1;
            }
            Kind::Char | Kind::Block | Kind::Fifo | Kind::Unsupported(_) => {
                unreachable!("judge_name refuses these")
            }
        }
        Ok(())
    }

    /// The open folder that holds `parts`' last name, creating implied folders on the way;
    /// a symlink or a file on the way is refused.
    fn parent_of<'p>(
        &mut self,
        parts: &'p Rc<[OsString]>,
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
                        path: Rc::clone(parts),
                        depth: depth + 1,
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

    #[expect(clippy::too_many_arguments, reason = "one entry's facts, used once")]
    fn write_file<R: Read>(
        &mut self,
        entry: &reader::Entry,
        tar: &mut Reader<R>,
        parent: &OwnedFd,
        name: &OsStr,
        shown: &str,
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<u64> {
        self.check_room(entry, shown)?;
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
        let write_err = |e: std::io::Error| Error::io_write(format!("cannot write {shown}"), &e);
        let written = self.copy_data(entry, tar, &mut file, shown)?;
        // Holes stay holes: the size is set, not written.
        file.set_len(entry.size).map_err(write_err)?;
        // chown clears setuid/setgid, so the mode comes after it.
        if let Some((uid, gid)) = owner {
            rustix::fs::fchown(&file, Some(uid_of(uid)), Some(gid_of(gid)))
                .map_err(|e| write_error(shown, e))?;
        }
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(|e| write_error(shown, e))?;
        if let Some(mtime) = entry.mtime {
            rustix::fs::futimens(&file, &times(mtime)).map_err(|e| write_error(shown, e))?;
        }
        Ok(written)
    }

    /// The free-space check counts the bytes that will take room: a sparse file's data,
    /// never its logical size.
    fn check_room(&self, entry: &reader::Entry, shown: &str) -> Result<()> {
        if let Some(room) = self.room
            && self.summary.bytes.saturating_add(entry.stored) > room
        {
            return Err(Error::new(
                ErrorKind::NoSpace,
                format!(
                    "extracting {shown} needs {} more but {} had {} free; nothing was extracted",
                    crate::space::human_bytes(entry.stored),
                    self.dir.display(),
                    crate::space::human_bytes(room.saturating_sub(self.summary.bytes))
                ),
            ));
        }
        Ok(())
    }

    /// Copy an entry's data (each chunk of a sparse one at its offset) into `file`: how many
    /// bytes were written.
    fn copy_data<R: Read>(
        &mut self,
        entry: &reader::Entry,
        tar: &mut Reader<R>,
        file: &mut File,
        shown: &str,
    ) -> Result<u64> {
        let write_err = |e: std::io::Error| Error::io_write(format!("cannot write {shown}"), &e);
        let whole = [reader::Chunk {
            offset: 0,
            len: entry.stored,
        }];
        let chunks = entry.sparse.as_deref().unwrap_or(&whole);
        let mut buffer = vec![0u8; COPY_CHUNK];
        let mut written = 0u64;
        for chunk in chunks {
            file.seek(SeekFrom::Start(chunk.offset))
                .map_err(write_err)?;
            let mut at = chunk.offset;
            let mut left = chunk.len;
            while left > 0 {
                self.check_time()?;
                // A whole buffer (or the chunk's rest) at a time, so that runs of zeros are
                // seen in whole, aligned blocks however the decompressor splits its reads.
                let want = usize::try_from(left).map_or(COPY_CHUNK, |l| l.min(COPY_CHUNK));
                let mut filled = 0;
                while filled < want {
                    let n = tar.read_data(&mut buffer[filled..want])?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    return Err(damaged(&std::io::ErrorKind::UnexpectedEof.into()));
                }
                let data = &buffer[..filled];
                if self.options.zeros_as_holes {
                    write_keeping_holes(file, at, data).map_err(write_err)?;
                } else {
                    file.write_all(data).map_err(write_err)?;
                }
                at += filled as u64;
                left -= filled as u64;
                written += filled as u64;
            }
        }
        Ok(written)
    }

    /// A hard link to a file or symlink extracted earlier from the same archive. A link to a
    /// symlink is a second name for the same link text, so that text is judged again at the
    /// new name's depth.
    fn hard_link(
        &mut self,
        target: &[u8],
        parent: &OwnedFd,
        name: &OsStr,
        depth: usize,
        refuse: &dyn Fn(&str) -> Error,
    ) -> std::result::Result<(), std::result::Result<Error, Errno>> {
        if target.len() > MAX_PATH_BYTES {
            return Err(Ok(refuse(&format!(
                "is a hard link whose target is longer than {MAX_PATH_BYTES} bytes"
            ))));
        }
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
        match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
            rustix::fs::FileType::RegularFile => {}
            rustix::fs::FileType::Symlink => {
                let text = rustix::fs::readlinkat(&dir, *target_name, Vec::new())
                    .map_err(|_| not_earlier())?;
                judge_symlink(self.options, depth, text.as_bytes()).map_err(|why| {
                    Ok(refuse(&format!(
                        "is a hard link to a symlink that, at this name, {why}"
                    )))
                })?;
            }
            _ => return Err(Ok(refuse("is a hard link to something other than a file"))),
        }
        rustix::fs::linkat(&dir, *target_name, parent, name, AtFlags::empty()).map_err(
            |e| match e {
                Errno::EXIST => Ok(refuse("appears twice")),
                e => Err(e),
            },
        )
    }

    /// Set each listed folder's owner, mode and times, deepest first (writing inside a folder
    /// moves its mtime, and a read-only folder could not be written into). The folders are
    /// visited in reverse path order (every folder after what is inside it) along a stack of
    /// open folders, so each is opened once from its parent: linear in the tree.
    fn finish_dirs(&mut self) -> Result<()> {
        self.dirs.sort_by(|a, b| b.parts().cmp(a.parts()));
        let mut open: Vec<OwnedFd> = vec![dup(&self.root)?];
        let mut open_path: Vec<&OsString> = Vec::new();
        for meta in &self.dirs {
            self.check_time()?;
            let parts = meta.parts();
            let common = open_path
                .iter()
                .zip(parts)
                .take_while(|(a, b)| **a == *b)
                .count();
            open.truncate(common + 1);
            open_path.truncate(common);
            for part in &parts[common..] {
                let fd = open_child_dir(open.last().expect("the root"), part)
                    .map_err(|e| Error::io("cannot open a folder", &e.into()))?;
                open.push(fd);
                open_path.push(part);
            }
            let fd = open.last().expect("the root");
            let shown = parts.join(OsStr::new("/")).to_string_lossy().into_owned();
            if let Some((uid, gid)) = meta.owner {
                rustix::fs::fchown(fd, Some(uid_of(uid)), Some(gid_of(gid)))
                    .map_err(|e| write_error(&shown, e))?;
            }
            rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))
                .map_err(|e| write_error(&shown, e))?;
            if let Some(mtime) = meta.mtime {
                rustix::fs::futimens(fd, &times(mtime)).map_err(|e| write_error(&shown, e))?;
            }
        }
        Ok(())
    }
}

/// Write `data` at the file's position `at`, seeking over each whole, aligned block of zeros
/// instead of writing it (the file's size is set once its data is all written).
fn write_keeping_holes(file: &mut File, at: u64, data: &[u8]) -> std::io::Result<()> {
    let mut rest = data;
    let mut at = at;
    while !rest.is_empty() {
        let to_boundary = HOLE_BLOCK - usize::try_from(at % HOLE_BLOCK as u64).unwrap_or(0);
        let (block, after) = rest.split_at(to_boundary.min(rest.len()));
        if block.len() == HOLE_BLOCK && block.iter().all(|b| *b == 0) {
            file.seek(SeekFrom::Current(HOLE_SEEK))?;
        } else {
            file.write_all(block)?;
        }
        at += block.len() as u64;
        rest = after;
    }
    Ok(())
}

fn to_u32(id: u64) -> u32 {
    u32::try_from(id).unwrap_or(u32::MAX)
}

/// A symlink already judged, with its owner and time.
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
    let mut last = None;
    for _ in 0..crate::atomic::TEMP_NAME_TRIES {
        let dir = crate::atomic::temp_name(dest, "unpack");
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
#[path = "../../tests/it/kit/hostile_archives.rs"]
mod hostile_archives;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A refused `hostile` archive left nothing in `work` and nothing outside it changed.
    fn left_nothing(work: &Path, hostile: &hostile_archives::Hostile) {
        assert!(
            names(work).is_empty(),
            "{}: left {:?}",
            hostile.name,
            names(work)
        );
        hostile.assert_untouched();
    }

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
        assert_eq!(
            meta("app/bin").mode() & 0o7777,
            0o755,
            "the owner may write a folder"
        );
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
                left_nothing(&work, hostile);
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

    /// Stage an archive GNU tar (or bsdtar) writes of `src` with `flags`.
    fn made_by(program: &str, flags: &[&str], src: &Path, name: &str) -> Vec<u8> {
        let out = std::process::Command::new(program)
            .arg("-cf")
            .arg("-")
            .args(flags)
            .arg("-C")
            .arg(src)
            .arg(name)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn a_20_gib_sparse_file_is_extracted_in_moments_into_a_few_blocks() {
        use std::os::unix::fs::FileExt;
        const HUGE: u64 = 20 << 30;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let file = std::fs::File::create(src.join("disk.img")).unwrap();
        file.set_len(HUGE).unwrap();
        file.write_all_at(&[1u8; 3000], 0).unwrap();
        file.write_all_at(b"middle", HUGE / 2).unwrap();
        file.write_all_at(b"end", HUGE - 3).unwrap();
        for (case, program, flags) in [
            ("posix", "tar", &["--format=posix", "--sparse"][..]),
            ("gnu", "tar", &["--format=gnu", "--sparse"][..]),
            ("bsdtar", "bsdtar", &[][..]),
        ] {
            let installed = std::process::Command::new(program)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success());
            if !installed {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "{program} is required under CI"
                );
                eprintln!("SKIPPED {case}: {program} is not installed");
                continue;
            }
            let archive = made_by(program, flags, &src, "disk.img");
            assert!(archive.len() < 64 * 1024, "{case}: {}", archive.len());
            let started = std::time::Instant::now();
            let dest = dir.path().join(case);
            let summary = stage(&archive[..], &dest, &Options::default(), &Cancel::default())
                .unwrap()
                .commit()
                .unwrap();
            assert!(
                started.elapsed().as_secs() < 5,
                "{case}: {:?}",
                started.elapsed()
            );
            assert!(summary.bytes < 64 * 1024, "{case}: {summary:?}");
            let meta = std::fs::metadata(dest.join("disk.img")).unwrap();
            assert_eq!(meta.len(), HUGE, "{case}");
            assert!(meta.blocks() < 1024, "{case}: {} blocks", meta.blocks());
            let out = std::fs::File::open(dest.join("disk.img")).unwrap();
            let mut buf = [0u8; 6];
            out.read_exact_at(&mut buf, HUGE / 2).unwrap();
            assert_eq!(&buf, b"middle", "{case}");
            out.read_exact_at(&mut buf[..3], HUGE - 3).unwrap();
            assert_eq!(&buf[..3], b"end", "{case}");
        }
    }

    #[test]
    fn a_sparse_map_that_overlaps_or_reaches_past_its_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (case, chunks, size) in [
            (
                "past-the-size",
                &[(0u64, &b"ab"[..]), (99, b"xyz")][..],
                100u64,
            ),
            ("overlapping", &[(0, &b"abcd"[..]), (2, b"xy")][..], 100),
            ("unordered", &[(50, &b"ab"[..]), (10, b"xy")][..], 100),
        ] {
            let archive = hostile_archives::Tar::bare()
                .old_gnu_sparse(b"sparse", chunks, size)
                .finish();
            let dest = dir.path().join(case);
            let err =
                stage(&archive[..], &dest, &Options::default(), &Cancel::default()).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Corrupt, "{case}: {}", err.message);
            assert!(
                err.message.contains("sparse map"),
                "{case}: {}",
                err.message
            );
        }
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }

    #[test]
    fn a_restore_puts_back_links_that_point_out_and_writes_nothing_through_them() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = hostile_archives::write_all(dir.path());
        for hostile in &corpus {
            let work = hostile.work_dir();
            let dest = work.join("out");
            let result = unpack_file(
                &hostile.tar,
                &dest,
                &Options::restoring(),
                &Cancel::default(),
            );
            if hostile.points_out_only {
                result.unwrap_or_else(|e| panic!("{}: {}", hostile.name, e.message));
                std::fs::remove_dir_all(&dest).unwrap();
            } else {
                let err = result.expect_err(hostile.name);
                assert_eq!(
                    err.kind,
                    ErrorKind::UnsafeInput,
                    "{}: {}",
                    hostile.name,
                    err.message
                );
            }
            left_nothing(&work, hostile);
        }
    }

    #[test]
    fn past_its_deadline_an_extraction_stops_with_timeout_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            deadline: Some(std::time::Instant::now()),
            ..Options::default()
        };
        let err = stage(
            &good_archive()[..],
            &dir.path().join("out"),
            &options,
            &Cancel::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Timeout, "{}", err.message);
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
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
