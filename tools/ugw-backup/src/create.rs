//! `ugw-backup create`: walk the paths, snapshot the databases, and stream one archive (tar,
//! compressed) under a temp name beside its final one, hashing every entry on the way; then
//! the manifest as the last entry, the rename, and the sidecars.

use crate::compress::{Codec, Compressor};
use crate::glob::Glob;
use crate::manifest::{self, Entry, Kind, Manifest, Name, Root, SqliteSnapshot};
use crate::{BackupResult, sqlite};
use std::collections::{HashMap, HashSet};
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use ugw_shared::atomic::{AtomicFile, open_regular, write_atomic};
use ugw_shared::report::Progress;
use ugw_shared::space::{ensure_room, human_bytes};
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// What `create` was asked to do.
#[derive(Debug)]
pub struct Plan {
    pub paths: Vec<PathBuf>,
    /// The `--volume` names and their mount points (also in `paths`).
    pub volumes: Vec<(String, PathBuf)>,
    pub excludes: Vec<Glob>,
    pub sqlite: Vec<PathBuf>,
    pub pg: Vec<crate::pg::Target>,
    /// Add the roles and tablespaces of the first PostgreSQL server.
    pub pg_globals: bool,
    pub out: PathBuf,
    pub name: String,
    pub app_version: Option<String>,
    pub codec: Codec,
    pub level: i32,
    pub threads: usize,
    pub strict: bool,
    pub space_check: bool,
}

/// One thing found on disk to put in the archive.
/// Kept small (tens of bytes): a backup of millions of files holds one per entry until written.
struct Item {
    /// The absolute path; its name in the archive is the same without the leading `/`.
    source: PathBuf,
    /// The size seen by the walk (a regular file's), for the totals and the changed check.
    size: u64,
    regular: bool,
    /// The earlier entry this one is a hard link of.
    link_of: Option<Vec<u8>>,
}

/// Write the archive and its sidecars; returns the step's result, and whether anything was
/// written (`false`: a retry of this run found the archive it made, whole, and reused it).
pub fn create(ctx: &mut Ctx, plan: &Plan) -> Result<(BackupResult, bool)> {
    let started = Instant::now();
    let walked = walk_all(ctx, plan)?;
    let archive_path = plan
        .out
        .join(format!("{}{}", plan.name, plan.codec.extension()));
    if std::fs::symlink_metadata(&archive_path).is_ok() {
        // A retry of this run: nothing to write when its own archive is there, whole.
        let reused = crate::reuse::reuse(ctx, plan, &walked.paths, &archive_path)?;
        return Ok((reused, false));
    }
    if plan.space_check {
        // Worst case: nothing compresses, plus a temp snapshot of each database.
        ensure_room(
            &plan.out,
            walked.input_bytes + walked.db_bytes + walked.input_bytes / 100 + 1024 * 1024,
            "the backup",
        )?;
    }
    ctx.reporter.info(&format!(
        "backing up {} to {}",
        what_is_backed_up(plan, &walked.paths, walked.input_bytes, walked.items.len()),
        archive_path.display()
    ));
    let mut manifest = new_manifest(ctx, plan, &walked);
    let (bytes, sha256) = write_archive(ctx, plan, &walked, &mut manifest, &archive_path)?;
    let elapsed = started.elapsed();
    let files = manifest
        .entries
        .iter()
        .filter(|e| e.kind == Kind::File)
        .count() as u64;
    say_made(ctx, &archive_path, &manifest, bytes, elapsed);
    let made = BackupResult {
        archive: archive_path.display().to_string(),
        sha256,
        bytes,
        input_bytes: walked.input_bytes,
        files,
        sqlite: manifest.sqlite.iter().map(|s| s.path.shown()).collect(),
        pg: manifest.pg.iter().map(|p| p.url.clone()).collect(),
        changed_while_read: manifest.changed_while_read.len() as u64,
        app_version: plan.app_version.clone(),
        elapsed_ms: ugw_shared::time::millis(elapsed),
        pruned: Vec::new(),
        volumes: manifest.volumes(),
    };
    Ok((made, true))
}

/// The manifest as it starts: who made it, when, of what; the entries follow as they are
/// written.
fn new_manifest(ctx: &Ctx, plan: &Plan, walked: &Walked) -> Manifest {
    Manifest {
        ugw_backup: manifest::FORMAT,
        name: plan.name.clone(),
        host: ctx.host.clone(),
        run: Some(ctx.this_run().run().to_string()),
        app_version: plan.app_version.clone(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        created: ugw_shared::time::rfc3339_millis(SystemTime::now()),
        compress: plan.codec.word().to_string(),
        roots: walked
            .roots
            .iter()
            .map(|root| Root {
                volume: plan
                    .volumes
                    .iter()
                    .find(|(_, mount)| root.path.path() == *mount)
                    .map(|(name, _)| name.clone()),
                ..root.clone()
            })
            .collect(),
        entries: Vec::with_capacity(walked.items.len()),
        sqlite: Vec::new(),
        pg: Vec::new(),
        pg_globals: None,
        changed_while_read: Vec::new(),
        excluded: walked.excluded.iter().map(|p| Name::from_path(p)).collect(),
    }
}

/// Stream the files, the databases and the manifest into the archive under its temp name,
/// then give it its name and its sidecars. Returns the archive's size and SHA-256.
fn write_archive(
    ctx: &mut Ctx,
    plan: &Plan,
    walked: &Walked,
    manifest: &mut Manifest,
    archive_path: &Path,
) -> Result<(u64, String)> {
    let archive = AtomicFile::create(archive_path)?.hashed();
    let counted = Counter {
        inner: archive,
        bytes: 0,
    };
    let compressor = Compressor::new(counted, plan.codec, plan.level, plan.threads)
        .map_err(|e| Error::io("cannot start the compressor", &e))?;
    let mut builder = tar::Builder::new(compressor);
    builder.mode(tar::HeaderMode::Complete);
    let progress = ctx.reporter.progress(Some(walked.input_bytes)).in_bytes();
    append_files(ctx, plan, &mut builder, &walked.items, manifest, &progress)?;
    append_databases(ctx, plan, &mut builder, manifest, &progress)?;
    let manifest_json = serde_json::to_vec(&manifest).expect("a manifest serialises");
    append_bytes(
        &mut builder,
        manifest::ENTRY_NAME.as_bytes(),
        &manifest_json,
    )?;
    drop(progress);
    finish_archive(ctx, builder, archive_path, &manifest_json)
}

/// For people: what went in (the files and the database snapshots and dumps, as the
/// manifest lists them), what came out, and how fast.
fn say_made(ctx: &Ctx, archive_path: &Path, manifest: &Manifest, bytes: u64, elapsed: Duration) {
    let file_name = archive_path
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let files = manifest
        .entries
        .iter()
        .filter(|e| e.kind == Kind::File)
        .count();
    let content_bytes: u64 = manifest
        .entries
        .iter()
        .filter(|e| e.kind == Kind::File)
        .map(|e| e.size)
        .sum();
    ctx.reporter.info(&format!(
        "{file_name}: {} in, {} out ({:.0}%), {files} files, {} at {}/s",
        human_bytes(content_bytes),
        human_bytes(bytes),
        bytes as f64 * 100.0 / content_bytes.max(1) as f64,
        ugw_shared::time::human(elapsed),
        human_bytes((content_bytes as f64 / elapsed.as_secs_f64().max(0.001)) as u64),
    ));
}

/// Flush the compressor, give the archive its name, then write the sidecars (the checksum
/// last: a backup with it is whole). Returns the archive's size and SHA-256.
fn finish_archive(
    ctx: &Ctx,
    builder: tar::Builder<Compressor<Counter<AtomicFile>>>,
    archive_path: &Path,
    manifest_json: &[u8],
) -> Result<(u64, String)> {
    let compressor = builder
        .into_inner()
        .map_err(|e| write_error(archive_path, &e))?;
    let counted = compressor
        .finish()
        .map_err(|e| write_error(archive_path, &e))?;
    let bytes = counted.bytes;
    let sha256 = ctx
        .cancel
        .critical(|| counted.inner.commit())?
        .expect("hashed");
    ugw_shared::failpoint::hit("backup.after-archive-rename");
    let (manifest_path, sum_path) = manifest::sidecars(archive_path);
    write_atomic(&manifest_path, manifest_json)?;
    let file_name = archive_path
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    write_atomic(&sum_path, format!("{sha256}  {file_name}\n").as_bytes())?;

    Ok((bytes, sha256))
}

/// What the walk of every `--path` found.
struct Walked {
    /// The paths backed up: resolved, de-duplicated.
    paths: Vec<PathBuf>,
    roots: Vec<Root>,
    items: Vec<Item>,
    /// Folders left out of the walk (the `--out` folder).
    excluded: Vec<PathBuf>,
    input_bytes: u64,
    /// The databases' share of `input_bytes`.
    db_bytes: u64,
}

/// Every `--path` walked: the roots, the items, the input size and the databases' share of it.
fn walk_all(ctx: &Ctx, plan: &Plan) -> Result<Walked> {
    let live_dbs: HashSet<PathBuf> = plan
        .sqlite
        .iter()
        .flat_map(|db| std::iter::once(db.clone()).chain(sqlite::companions(db)))
        .collect();
    let paths = covering_paths(ctx, &plan.paths)?;
    // The backup folder is never backed up: each archive would hold all the ones before it,
    // and an in-place restore would delete the archive it is restoring.
    let out = std::fs::metadata(&plan.out)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    let mut roots = Vec::new();
    let mut items = Vec::new();
    let mut excluded = Vec::new();
    for path in &paths {
        if std::fs::metadata(path).is_ok_and(|m| Some((m.dev(), m.ino())) == out) {
            return Err(Error::usage(format!(
                "--path {} is the --out folder: a backup cannot hold itself; keep the backups elsewhere",
                path.display()
            )));
        }
        let mut walker = Walker {
            ctx,
            plan,
            live_dbs: &live_dbs,
            items: &mut items,
            links: HashMap::new(),
            root: path.clone(),
            out,
            excluded: &mut excluded,
        };
        roots.push(walk_root(&mut walker, path)?);
    }
    let db_bytes: u64 = plan
        .sqlite
        .iter()
        .map(|db| std::fs::metadata(db).map_or(0, |m| m.len()))
        .sum();
    let input_bytes = items
        .iter()
        .filter(|i| i.regular && i.link_of.is_none())
        .map(|i| i.size)
        .sum::<u64>()
        + db_bytes;
    Ok(Walked {
        paths,
        roots,
        items,
        excluded,
        input_bytes,
        db_bytes,
    })
}

/// Each `--path` made absolute and normal once (no `.`, no trailing `/`, `..` resolved), a
/// symlink given on the command line followed (as `tar -h` does for the top level, and said
/// so), then each path inside another (or given twice) dropped: the outer one covers it, and
/// an archive holding the same entry twice could not be restored.
fn covering_paths(ctx: &Ctx, given: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut resolved: Vec<(PathBuf, &PathBuf)> = Vec::new();
    for path in given {
        resolved.push((resolve_path(ctx, path)?, path));
    }
    let mut kept: Vec<PathBuf> = Vec::new();
    for (index, (path, shown)) in resolved.iter().enumerate() {
        let covered_by = resolved.iter().enumerate().find(|(other, (outer, _))| {
            *other != index && path.starts_with(outer) && (outer != path || *other < index)
        });
        if let Some((_, (outer, outer_shown))) = covered_by {
            ctx.reporter.warn(&format!(
                "--path {} is {} --path {}: backed up once, as part of it",
                shown.display(),
                if outer == path {
                    "the same as"
                } else {
                    "inside"
                },
                outer_shown.display()
            ));
            continue;
        }
        kept.push(path.clone());
    }
    Ok(kept)
}

/// One `--path`, absolute and normal; a symlink is followed to what it points to.
fn resolve_path(ctx: &Ctx, path: &Path) -> Result<PathBuf> {
    let absolute: PathBuf = std::path::absolute(path)
        .map_err(|e| Error::io(format!("cannot resolve {}", path.display()), &e))?
        .components()
        .collect();
    let not_found = |e: &io::Error, what: &str| match e.kind() {
        io::ErrorKind::NotFound => Error::new(
            ErrorKind::NotFound,
            format!("--path {} {what}", path.display()),
        ),
        _ => Error::io(format!("cannot read {}", path.display()), e),
    };
    // A `..` would make an archive name that a strict restore refuses: resolve it away.
    let absolute = if absolute
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        std::fs::canonicalize(&absolute).map_err(|e| not_found(&e, "does not exist"))?
    } else {
        absolute
    };
    let meta = std::fs::symlink_metadata(&absolute).map_err(|e| not_found(&e, "does not exist"))?;
    if !meta.file_type().is_symlink() {
        return Ok(absolute);
    }
    let target =
        std::fs::canonicalize(&absolute).map_err(|e| not_found(&e, "is a symlink to nothing"))?;
    ctx.reporter.warn(&format!(
        "--path {} is a symlink: following it (as tar -h does) and backing up {}, where it points; the link itself is not in the backup",
        path.display(),
        target.display()
    ));
    Ok(target)
}

/// Every walked item, in order; a file that changed while read is flagged (`--strict`: fails).
fn append_files<W: Write>(
    ctx: &Ctx,
    plan: &Plan,
    builder: &mut tar::Builder<W>,
    items: &[Item],
    manifest: &mut Manifest,
    progress: &Progress,
) -> Result<()> {
    // The first name of a hard-linked file that vanished: its next name carries the data
    // (`Some(that name)` once written, `None` until then), so no link names a missing entry.
    let mut moved: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    for item in items {
        ctx.cancel.check()?;
        let first = item.link_of.clone();
        let relinked;
        let item = match first.as_ref().and_then(|f| moved.get(f)) {
            Some(now) => {
                relinked = Item {
                    source: item.source.clone(),
                    size: item.size,
                    regular: item.regular,
                    link_of: now.clone(),
                };
                &relinked
            }
            None => item,
        };
        let appended = append_item(builder, item, progress, &ctx.cancel)
            .map_err(|e| ctx.cancel.check().err().unwrap_or(e))?;
        if item.link_of.is_none() && item.regular {
            let key = first.clone().unwrap_or_else(|| item.name().to_vec());
            if appended.is_none() {
                moved.entry(key).or_insert(None);
            } else if moved.get(&key) == Some(&None) {
                moved.insert(key, Some(item.name().to_vec()));
            }
        }
        let Some(entry) = appended else {
            // Deleted after the walk saw it: left out, and counted like a change.
            manifest
                .changed_while_read
                .push(Name::from_bytes(item.name()));
            ctx.reporter.warn(&format!(
                "{} vanished before it was read: left out",
                item.source.display()
            ));
            continue;
        };
        if entry.1 {
            manifest.changed_while_read.push(entry.0.path.clone());
            ctx.reporter.warn(&format!(
                "{} changed while it was read",
                item.source.display()
            ));
        }
        manifest.entries.push(entry.0);
    }
    if plan.strict && !manifest.changed_while_read.is_empty() {
        return Err(Error::new(
            ErrorKind::CheckFailed,
            format!(
                "--strict: {} file(s) changed while they were read, first {}; no backup was kept",
                manifest.changed_while_read.len(),
                manifest.changed_while_read[0].shown()
            ),
        ));
    }
    Ok(())
}

/// The SQLite snapshots, the PostgreSQL dumps and (`--pg-globals`) the server's roles.
fn append_databases<W: Write>(
    ctx: &mut Ctx,
    plan: &Plan,
    builder: &mut tar::Builder<W>,
    manifest: &mut Manifest,
    progress: &Progress,
) -> Result<()> {
    for (index, db) in plan.sqlite.iter().enumerate() {
        let snapshot = snapshot_db(ctx, plan, index, db, builder, progress)?;
        manifest.entries.push(snapshot.1);
        manifest.sqlite.push(snapshot.0);
    }
    for (index, target) in plan.pg.iter().enumerate() {
        let dumped = dump_pg(ctx, plan, index, target, builder, progress)?;
        manifest.entries.push(dumped.1);
        manifest.pg.push(dumped.0);
    }
    if let (true, Some(server)) = (plan.pg_globals, plan.pg.first()) {
        let temp_file = AtomicFile::create(&plan.out.join(format!("{}.pg-globals", plan.name)))?;
        let temp = temp_file.temp_path().to_path_buf();
        ctx.track_temp(&temp);
        crate::pg::dump_globals(server, temp_file.file(), ctx.step_deadline(), &ctx.cancel)?;
        let name = format!("{}/pg/globals.sql", manifest::DB_PREFIX);
        let entry = append_temp(ctx, builder, &temp, name.as_bytes(), progress)?;
        drop(temp_file);
        manifest.pg_globals = Some(entry.path.clone());
        manifest.entries.push(entry);
    }
    Ok(())
}

/// Walk one `--path` (absolute and resolved), adding its items; returns its root for the
/// manifest.
fn walk_root(walker: &mut Walker<'_>, absolute: &Path) -> Result<Root> {
    let meta = std::fs::symlink_metadata(absolute).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::new(
            ErrorKind::NotFound,
            format!("--path {} does not exist", absolute.display()),
        ),
        _ => Error::io(format!("cannot read {}", absolute.display()), &e),
    })?;
    let name = absolute
        .as_os_str()
        .as_bytes()
        .strip_prefix(b"/")
        .unwrap_or_default()
        .to_vec();
    if name.is_empty() {
        return Err(Error::usage(
            "--path / is not supported: name the folders to back up",
        ));
    }
    let kind = kind_of(&meta);
    walker.visit(absolute, &name, &meta)?;
    Ok(Root {
        path: Name::from_path(absolute),
        entry: Name::from_bytes(&name),
        kind,
        volume: None,
    })
}

struct Walker<'a> {
    ctx: &'a Ctx,
    plan: &'a Plan,
    live_dbs: &'a HashSet<PathBuf>,
    items: &'a mut Vec<Item>,
    links: HashMap<(u64, u64), Vec<u8>>,
    root: PathBuf,
    /// The `--out` folder's device and inode.
    out: Option<(u64, u64)>,
    excluded: &'a mut Vec<PathBuf>,
}

impl Walker<'_> {
    fn visit(&mut self, source: &Path, name: &[u8], meta: &Metadata) -> Result<()> {
        self.ctx.cancel.check()?;
        if self.left_out(source, meta) {
            return Ok(());
        }
        let file_type = meta.file_type();
        if file_type.is_file() && sqlite::looks_live(source) {
            self.ctx.reporter.warn(&format!(
                "{} looks like a live SQLite database: copied as a file, which may not be consistent; give it as --db sqlite://{} for a snapshot",
                source.display(),
                source.display()
            ));
        }
        let mut link_of = None;
        if file_type.is_file() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            match self.links.get(&key) {
                Some(first) => link_of = Some(first.clone()),
                None => {
                    self.links.insert(key, name.to_vec());
                }
            }
        }
        self.items.push(Item {
            source: source.to_path_buf(),
            size: meta.len(),
            regular: file_type.is_file(),
            link_of,
        });
        if file_type.is_dir() {
            self.visit_children(source, name)?;
        }
        Ok(())
    }

    /// What the walk leaves out, said so where people would expect it in the backup: what
    /// is not a file, folder or symlink, a live database (snapshotted instead), the `--out`
    /// folder.
    fn left_out(&mut self, source: &Path, meta: &Metadata) -> bool {
        let file_type = meta.file_type();
        if !(file_type.is_file() || file_type.is_dir() || file_type.is_symlink()) {
            self.ctx.reporter.warn(&format!(
                "{} is not a file, folder or symlink: left out",
                source.display()
            ));
            return true;
        }
        if self.live_dbs.contains(source) {
            return true;
        }
        if file_type.is_dir() && Some((meta.dev(), meta.ino())) == self.out {
            self.ctx.reporter.warn(&format!(
                "{} is the --out folder: left out of the backup (an in-place restore leaves it as it is)",
                source.display()
            ));
            self.excluded.push(source.to_path_buf());
            return true;
        }
        false
    }

    /// A folder's entries, sorted by name, each visited unless an `--exclude` matches it.
    fn visit_children(&mut self, source: &Path, name: &[u8]) -> Result<()> {
        let mut children: Vec<_> = std::fs::read_dir(source)
            .map_err(|e| Error::io(format!("cannot list {}", source.display()), &e))?
            .collect::<io::Result<_>>()
            .map_err(|e| Error::io(format!("cannot list {}", source.display()), &e))?;
        children.sort_by_key(std::fs::DirEntry::file_name);
        for child in children {
            let child_path = child.path();
            let file_name = child.file_name();
            let relative = child_path.strip_prefix(&self.root).unwrap_or(&child_path);
            if self.plan.excludes.iter().any(|g| {
                g.excludes(
                    file_name.as_bytes(),
                    relative.as_os_str().as_bytes(),
                    child_path.as_os_str().as_bytes(),
                )
            }) {
                continue;
            }
            let child_meta = match std::fs::symlink_metadata(&child_path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // gone meanwhile
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot read {}", child_path.display()),
                        &e,
                    ));
                }
            };
            let mut child_name = name.to_vec();
            child_name.push(b'/');
            child_name.extend_from_slice(file_name.as_bytes());
            self.visit(&child_path, &child_name, &child_meta)?;
        }
        Ok(())
    }
}

impl Item {
    fn name(&self) -> &[u8] {
        let bytes = self.source.as_os_str().as_bytes();
        bytes.strip_prefix(b"/").unwrap_or(bytes)
    }
}

fn kind_of(meta: &Metadata) -> Kind {
    if meta.is_dir() {
        Kind::Dir
    } else if meta.file_type().is_symlink() {
        Kind::Symlink
    } else {
        Kind::File
    }
}

/// Append one item; returns its manifest entry and whether it changed while being read, or
/// `None` when it vanished after the walk found it (nothing of it was written).
fn append_item<W: Write>(
    builder: &mut tar::Builder<W>,
    item: &Item,
    progress: &Progress,
    cancel: &ugw_shared::cancel::Cancel,
) -> Result<Option<(Entry, bool)>> {
    let meta = &match std::fs::symlink_metadata(&item.source) {
        Err(e) if gone(&e) => return Ok(None),
        other => other.map_err(|e| archive_failed(item, &e))?,
    };
    let name = item.name();
    let path = Path::new(std::ffi::OsStr::from_bytes(name));
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    let mut entry = Entry {
        path: Name::from_bytes(name),
        kind: kind_of(meta),
        size: 0,
        mode: meta.mode() & 0o7777,
        uid: u64::from(meta.uid()),
        gid: u64::from(meta.gid()),
        mtime: meta.mtime(),
        sha256: None,
        link: None,
    };
    header.set_size(0);
    if let Some(first) = &item.link_of {
        header.set_entry_type(tar::EntryType::Link);
        builder
            .append_link(
                &mut header,
                path,
                Path::new(std::ffi::OsStr::from_bytes(first)),
            )
            .map_err(|e| archive_failed(item, &e))?;
        entry.kind = Kind::Hardlink;
        entry.link = Some(Name::from_bytes(first));
        return Ok(Some((entry, false)));
    }
    match entry.kind {
        Kind::Dir => {
            builder
                .append_data(&mut header, path, io::empty())
                .map_err(|e| archive_failed(item, &e))?;
            Ok(Some((entry, false)))
        }
        Kind::Symlink => {
            let target = match std::fs::read_link(&item.source) {
                Err(e) if gone(&e) => return Ok(None),
                other => other.map_err(|e| archive_failed(item, &e))?,
            };
            builder
                .append_link(&mut header, path, &target)
                .map_err(|e| archive_failed(item, &e))?;
            entry.link = Some(Name::from_path(&target));
            Ok(Some((entry, false)))
        }
        Kind::File | Kind::Hardlink => {
            append_file_data(builder, item, header, entry, progress, cancel)
        }
    }
}

/// A regular file's bytes, read once through a [`Snapshot`] (hashed as they pass); it
/// changed while read when it came up short, or its size or mtime moved.
fn append_file_data<W: Write>(
    builder: &mut tar::Builder<W>,
    item: &Item,
    mut header: tar::Header,
    mut entry: Entry,
    progress: &Progress,
    cancel: &ugw_shared::cancel::Cancel,
) -> Result<Option<(Entry, bool)>> {
    let file = match open_regular(&item.source) {
        Err(e) if gone(&e) => return Ok(None),
        other => other.map_err(|e| archive_failed(item, &e))?,
    };
    let before = file.metadata().map_err(|e| archive_failed(item, &e))?;
    header.set_size(before.len());
    let mut reader = Snapshot::new(&file, before.len(), progress, cancel);
    let path = Path::new(std::ffi::OsStr::from_bytes(item.name()));
    builder
        .append_data(&mut header, path, &mut reader)
        .map_err(|e| archive_failed(item, &e))?;
    let after = file.metadata().map_err(|e| archive_failed(item, &e))?;
    let changed = reader.short
        || after.len() != before.len()
        || after.mtime() != before.mtime()
        || after.mtime_nsec() != before.mtime_nsec()
        || before.len() != item.size;
    entry.size = before.len();
    entry.sha256 = Some(reader.digest());
    Ok(Some((entry, changed)))
}

/// `io_write`: a full disk under --no-space-check is `no_space`, not `io`.
fn archive_failed(item: &Item, e: &io::Error) -> Error {
    Error::io_write(format!("cannot archive {}", item.source.display()), e)
}

/// Deleted after the walk saw it.
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Snapshot one SQLite database beside the archive and append it; returns its manifest records.
fn snapshot_db<W: Write>(
    ctx: &mut Ctx,
    plan: &Plan,
    index: usize,
    db: &Path,
    builder: &mut tar::Builder<W>,
    progress: &Progress,
) -> Result<(SqliteSnapshot, Entry)> {
    // O_EXCL|O_NOFOLLOW, 0600, a random name: nothing planted in --out is written through.
    let temp_file = AtomicFile::create(&plan.out.join(format!("{}.sqlite-{index}", plan.name)))?;
    let temp = temp_file.temp_path().to_path_buf();
    ctx.track_temp(&temp);
    for companion in sqlite::companions(&temp) {
        ctx.track_temp(&companion);
    }
    let check = sqlite::snapshot(db, &temp, ctx.step_deadline(), &ctx.cancel)?;
    let file_name = db.file_name().map_or(&b"db"[..], std::ffi::OsStr::as_bytes);
    let mut name = format!("{}/sqlite/{index}-", manifest::DB_PREFIX).into_bytes();
    name.extend_from_slice(file_name);
    let entry = append_temp(ctx, builder, &temp, &name, progress)?;
    drop(temp_file);
    let absolute = std::path::absolute(db).unwrap_or_else(|_| db.to_path_buf());
    Ok((
        SqliteSnapshot {
            path: Name::from_path(&absolute),
            entry: Name::from_bytes(&name),
            bytes: entry.size,
            sha256: entry.sha256.clone().expect("a file has a hash"),
            integrity_check: check,
            method: "backup".into(),
        },
        entry,
    ))
}

/// Dump one PostgreSQL database beside the archive, check the dump, and append it.
fn dump_pg<W: Write>(
    ctx: &mut Ctx,
    plan: &Plan,
    index: usize,
    target: &crate::pg::Target,
    builder: &mut tar::Builder<W>,
    progress: &Progress,
) -> Result<(manifest::PgDump, Entry)> {
    let temp_file = AtomicFile::create(&plan.out.join(format!("{}.pg-{index}", plan.name)))?;
    let temp = temp_file.temp_path().to_path_buf();
    ctx.track_temp(&temp);
    crate::pg::dump(target, temp_file.file(), ctx.step_deadline(), &ctx.cancel)?;
    crate::pg::check(&temp, ctx.step_deadline(), &ctx.cancel)?;
    let name = format!(
        "{}/pg/{index}-{}.dump",
        manifest::DB_PREFIX,
        target.database.replace('/', "_")
    );
    let entry = append_temp(ctx, builder, &temp, name.as_bytes(), progress)?;
    drop(temp_file);
    Ok((
        manifest::PgDump {
            url: target.shown.clone(),
            entry: Name::from_bytes(name.as_bytes()),
            bytes: entry.size,
            sha256: entry.sha256.clone().expect("a file has a hash"),
            check: "pg_restore -f /dev/null: ok".into(),
            connection: Some(target.connection()),
        },
        entry,
    ))
}

/// Append a temp file of ours (a snapshot, a dump) as `name`, then remove it.
fn append_temp<W: Write>(
    ctx: &mut Ctx,
    builder: &mut tar::Builder<W>,
    temp: &Path,
    name: &[u8],
    progress: &Progress,
) -> Result<Entry> {
    let file =
        open_regular(temp).map_err(|e| Error::io(format!("cannot read {}", temp.display()), &e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io("cannot stat a temp file", &e))?
        .len();
    let mtime = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o600);
    header.set_size(size);
    header.set_mtime(mtime);
    let mut reader = Snapshot::new(&file, size, progress, &ctx.cancel);
    builder
        .append_data(
            &mut header,
            Path::new(std::ffi::OsStr::from_bytes(name)),
            &mut reader,
        )
        .map_err(|e| {
            ctx.cancel
                .check()
                .err()
                .unwrap_or_else(|| Error::io_write("cannot archive a database copy", &e))
        })?;
    let sha256 = reader.digest();
    drop(file);
    let _ = std::fs::remove_file(temp);
    ctx.keep_temp(temp);
    Ok(Entry {
        path: Name::from_bytes(name),
        kind: Kind::File,
        size,
        mode: 0o600,
        uid: 0,
        gid: 0,
        mtime: i64::try_from(mtime).unwrap_or(0),
        sha256: Some(sha256),
        link: None,
    })
}

fn append_bytes<W: Write>(builder: &mut tar::Builder<W>, name: &[u8], bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(bytes.len() as u64);
    header.set_mtime(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    builder
        .append_data(
            &mut header,
            Path::new(std::ffi::OsStr::from_bytes(name)),
            bytes,
        )
        .map_err(|e| Error::io("cannot write the manifest", &e))
}

fn write_error(path: &Path, e: &io::Error) -> Error {
    Error::io_write(
        format!("cannot write {} (nothing is kept)", path.display()),
        e,
    )
}

/// Exactly `size` bytes of a file as the tar header promised, hashed as they pass: a file that
/// shrank meanwhile is padded with zeros and flagged, one that grew is cut.
struct Snapshot<'a> {
    file: &'a File,
    left: u64,
    short: bool,
    hasher: ring::digest::Context,
    progress: &'a Progress,
    cancel: &'a ugw_shared::cancel::Cancel,
}

impl<'a> Snapshot<'a> {
    fn new(
        file: &'a File,
        size: u64,
        progress: &'a Progress,
        cancel: &'a ugw_shared::cancel::Cancel,
    ) -> Self {
        Snapshot {
            file,
            left: size,
            short: false,
            hasher: ring::digest::Context::new(&ring::digest::SHA256),
            progress,
            cancel,
        }
    }

    fn digest(self) -> String {
        ugw_shared::digest::hex(self.hasher.finish().as_ref())
    }
}

impl Read for Snapshot<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        if self.cancel.check().is_err() {
            // Not ErrorKind::Interrupted: io::copy would retry it.
            return Err(io::Error::other("interrupted by a signal"));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let mut n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            self.short = true;
            buf[..want].fill(0);
            n = want;
        }
        self.left -= n as u64;
        self.hasher.update(&buf[..n]);
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// Counts the compressed bytes on their way to the archive file.
struct Counter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What a backup holds, in words: its paths and their size, its SQLite databases, and its
/// PostgreSQL databases (only those that are there).
fn what_is_backed_up(plan: &Plan, paths: &[PathBuf], input_bytes: u64, entries: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut parts = Vec::new();
    if !paths.is_empty() {
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        parts.push(format!(
            "{} ({} in {})",
            paths.join(", "),
            human_bytes(input_bytes),
            if entries == 1 {
                "1 entry".to_string()
            } else {
                format!("{entries} entries")
            }
        ));
    }
    if !plan.sqlite.is_empty() {
        parts.push(plural(plan.sqlite.len(), "SQLite database"));
    }
    for target in &plan.pg {
        parts.push(format!("PostgreSQL database {}", target.database));
    }
    parts.join(", ")
}
