//! `ugw-backup verify`: one pass over the archive that re-hashes the file against its
//! `.sha256` sidecar and every entry against the manifest, and checks that nothing is missing
//! or extra. Any difference is `corrupt`, naming the first bad entry.

use crate::manifest::{self, Entry, Kind, Manifest, Name};
use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use ugw_shared::atomic::{AtomicFile, open_regular, read_capped};
use ugw_shared::cancel::Cancel;
use ugw_shared::unpack;
use ugw_shared::{Error, ErrorKind, Result};

/// The largest manifest read (about 3 million entries).
const MAX_MANIFEST: usize = 1 << 30;

/// What a verified archive holds.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Manifest,
    pub sha256: String,
    pub bytes: u64,
    pub entries: u64,
}

fn corrupt(message: String) -> Error {
    Error::new(ErrorKind::Corrupt, message)
}

/// Read the sidecar manifest of `archive`.
pub fn read_manifest(archive: &Path) -> Result<(Manifest, Vec<u8>)> {
    let (manifest_path, _) = manifest::sidecars(archive);
    let bytes = read_capped(&manifest_path, MAX_MANIFEST).map_err(|e| {
        corrupt(format!(
            "the manifest sidecar {} cannot be read: {e}",
            manifest_path.display()
        ))
    })?;
    let manifest = serde_json::from_slice(&bytes).map_err(|e| {
        corrupt(format!(
            "the manifest sidecar {} is not a ugw-backup manifest: {e}",
            manifest_path.display()
        ))
    })?;
    Ok((manifest, bytes))
}

/// Check `archive` whole; `Err(corrupt)` names the first thing wrong.
pub fn verify(
    archive: &Path,
    cancel: &Cancel,
    progress: &ugw_shared::report::Progress,
) -> Result<Verified> {
    let (expected_sum, manifest, manifest_bytes, file) = open_with_sidecars(archive)?;
    let hashed = Hashing::new(file);
    let tally = Arc::clone(&hashed.state);
    let mut tar =
        tar::Archive::new(ugw_shared::unpack::decoder(hashed).map_err(|e| corrupt(e.message))?);
    let mut pass = Pass::new(archive, &manifest, &manifest_bytes);
    let entries = tar
        .entries()
        .map_err(|e| corrupt(format!("the archive cannot be read: {e}")))?;
    for entry in entries {
        cancel.check()?;
        pass.check(entry, cancel, progress)?;
    }
    // Whatever follows the tar's end (padding, the gzip trailer) must be read and hashed too.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| corrupt(format!("the archive's end is damaged: {e}")))?;
    let count = pass.complete()?;
    let (sha256, bytes) = Hashing::finish(&tally);
    if sha256 != expected_sum {
        return Err(corrupt(format!(
            "{} has sha256 {sha256}, its sidecar says {expected_sum}",
            archive.display()
        )));
    }
    Ok(Verified {
        manifest,
        sha256,
        bytes,
        entries: count,
    })
}

/// One pass over the archive's entries against its manifest: what is still expected, and
/// what was seen so far.
struct Pass<'m> {
    archive: &'m Path,
    manifest_bytes: &'m [u8],
    /// A path may appear more than once (as in any tar); each occurrence is checked in order.
    expected: HashMap<Vec<u8>, VecDeque<&'m Entry>>,
    pg_entries: Vec<Vec<u8>>,
    restorable: unpack::Checker,
    last_good: String,
    count: u64,
    inner_manifest_seen: bool,
}

impl<'m> Pass<'m> {
    fn new(archive: &'m Path, manifest: &'m Manifest, manifest_bytes: &'m [u8]) -> Self {
        let mut expected: HashMap<Vec<u8>, VecDeque<&Entry>> = HashMap::new();
        for entry in &manifest.entries {
            expected
                .entry(entry.path.bytes())
                .or_default()
                .push_back(entry);
        }
        Pass {
            archive,
            manifest_bytes,
            expected,
            pg_entries: manifest.pg.iter().map(|p| p.entry.bytes()).collect(),
            restorable: unpack::Checker::new(unpack::Options::restoring()),
            last_good: String::from("(the start)"),
            count: 0,
            inner_manifest_seen: false,
        }
    }

    /// One entry of the archive: restorable, and the one the manifest lists next under its
    /// name (or the manifest itself, the same bytes as its sidecar).
    fn check<R: Read>(
        &mut self,
        entry: io::Result<tar::Entry<'_, R>>,
        cancel: &Cancel,
        progress: &ugw_shared::report::Progress,
    ) -> Result<()> {
        let mut entry = entry.map_err(|e| corrupt(format!("{}: {e}", self.damaged())))?;
        let name = entry.path_bytes().into_owned();
        let shown = Name::from_bytes(&name).shown();
        // A backup that verifies is one its restore accepts: the checks of names, types and
        // links that restore's extraction makes, made here too.
        let link = entry.link_name_bytes().unwrap_or_default().into_owned();
        self.restorable
            .check(&name, restore_kind(entry.header().entry_type()), &link)?;
        if name == manifest::ENTRY_NAME.as_bytes() {
            return self.check_inner_manifest(&mut entry);
        }
        let Some(want) = self.expected.get_mut(&name).and_then(VecDeque::pop_front) else {
            return Err(corrupt(format!(
                "entry '{shown}' is in the archive but not in the manifest"
            )));
        };
        let is_dump = self.pg_entries.contains(&name);
        check_listed(&mut entry, want, &shown, is_dump, cancel, progress)?;
        self.last_good = shown;
        self.count += 1;
        Ok(())
    }

    fn check_inner_manifest<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let mut inner = Vec::new();
        entry
            .take(MAX_MANIFEST as u64)
            .read_to_end(&mut inner)
            .map_err(|e| corrupt(format!("{}: {e}", self.damaged())))?;
        if inner != self.manifest_bytes {
            return Err(corrupt(format!(
                "the manifest sidecar differs from the manifest inside {} (tampered with)",
                self.archive.display()
            )));
        }
        self.inner_manifest_seen = true;
        Ok(())
    }

    fn damaged(&self) -> String {
        format!("the archive is damaged after entry '{}'", self.last_good)
    }

    /// After the last entry: nothing the manifest lists is missing, and the manifest was
    /// inside. Returns the number of entries checked.
    fn complete(self) -> Result<u64> {
        if let Some((missing, _)) = self.expected.iter().find(|(_, left)| !left.is_empty()) {
            return Err(corrupt(format!(
                "entry '{}' is in the manifest but missing from the archive (truncated?)",
                Name::from_bytes(missing).shown()
            )));
        }
        if !self.inner_manifest_seen {
            return Err(corrupt(format!(
                "{} has no {} inside (truncated?)",
                self.archive.display(),
                manifest::ENTRY_NAME
            )));
        }
        Ok(self.count)
    }
}

/// An entry the manifest lists, checked against it; a PostgreSQL dump is also read whole by
/// `pg_restore`, from a temp copy in the temp folder (TMPDIR): the archive's folder may be
/// read-only.
fn check_listed<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    want: &Entry,
    shown: &str,
    is_dump: bool,
    cancel: &Cancel,
    progress: &ugw_shared::report::Progress,
) -> Result<()> {
    let mut dump_copy = if is_dump {
        Some(AtomicFile::create(
            &std::env::temp_dir().join("ugw-backup.pg-check"),
        )?)
    } else {
        None
    };
    check_entry(entry, want, shown, progress, dump_copy.as_mut()).map_err(|e| match e {
        Some(message) => corrupt(message),
        None => corrupt(format!(
            "entry '{shown}' cannot be read: the archive is damaged or truncated"
        )),
    })?;
    if let Some(copy) = dump_copy {
        // verify is not handed the step's deadline (it has none by default): a signal ends
        // the check.
        let no_deadline = Instant::now() + ugw_shared::ctx::NO_TIMEOUT;
        crate::pg::check(copy.temp_path(), no_deadline, cancel)
            .map_err(|e| corrupt(format!("entry '{shown}': {}", e.message)))?;
    }
    Ok(())
}

/// The archive opened, with what its sidecars say: its SHA-256 and its manifest.
fn open_with_sidecars(archive: &Path) -> Result<(String, Manifest, Vec<u8>, std::fs::File)> {
    let (_, sum_path) = manifest::sidecars(archive);
    let sum_text = read_capped(&sum_path, 4096).map_err(|e| {
        corrupt(format!(
            "the checksum sidecar {} cannot be read: {e}",
            sum_path.display()
        ))
    })?;
    let expected_sum = String::from_utf8_lossy(&sum_text)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (manifest, manifest_bytes) = read_manifest(archive)?;
    let file = open_regular(archive).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::new(
            ErrorKind::NotFound,
            format!("{} does not exist", archive.display()),
        ),
        _ => Error::io(format!("cannot open {}", archive.display()), &e),
    })?;
    Ok((expected_sum, manifest, manifest_bytes, file))
}

/// `Err(Some(why))` for a mismatch, `Err(None)` when the stream broke.
fn check_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    want: &Entry,
    shown: &str,
    progress: &ugw_shared::report::Progress,
    mut copy: Option<&mut AtomicFile>,
) -> std::result::Result<(), Option<String>> {
    let kind = match entry.header().entry_type() {
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => Kind::Symlink,
        tar::EntryType::Link => Kind::Hardlink,
        _ => Kind::File,
    };
    if kind != want.kind {
        return Err(Some(format!(
            "entry '{shown}' is a {kind:?} in the archive, a {:?} in the manifest",
            want.kind
        )));
    }
    if matches!(kind, Kind::Symlink | Kind::Hardlink) {
        let link = entry
            .link_name_bytes()
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_default();
        if want.link.as_ref().map(Name::bytes) != Some(link) {
            return Err(Some(format!(
                "entry '{shown}' links elsewhere than the manifest says"
            )));
        }
    }
    if kind != Kind::File {
        return Ok(());
    }
    let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = entry.read(&mut buffer).map_err(|_| None)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        if let Some(copy) = copy.as_mut() {
            copy.write_all(&buffer[..n])
                .map_err(|e| Some(format!("cannot copy entry '{shown}' to check it: {e}")))?;
        }
        size += n as u64;
        progress.inc(n as u64);
    }
    let digest = ugw_shared::digest::hex(hasher.finish().as_ref());
    if size != want.size || Some(&digest) != want.sha256.as_ref() {
        return Err(Some(format!(
            "entry '{shown}' does not match its sha256 in the manifest"
        )));
    }
    Ok(())
}

/// Hashes the raw archive bytes as the decoder reads them.
struct Hashing {
    file: std::fs::File,
    state: Arc<Mutex<(ring::digest::Context, u64)>>,
}

impl Hashing {
    fn new(file: std::fs::File) -> Self {
        Hashing {
            file,
            state: Arc::new(Mutex::new((
                ring::digest::Context::new(&ring::digest::SHA256),
                0,
            ))),
        }
    }

    fn finish(state: &Mutex<(ring::digest::Context, u64)>) -> (String, u64) {
        let guard = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (
            ugw_shared::digest::hex(guard.0.clone().finish().as_ref()),
            guard.1,
        )
    }
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.0.update(&buf[..n]);
        guard.1 += n as u64;
        Ok(n)
    }
}

/// An entry's type as the restore checks see it.
fn restore_kind(kind: tar::EntryType) -> unpack::EntryKind {
    match kind {
        tar::EntryType::Directory => unpack::EntryKind::Dir,
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            unpack::EntryKind::File
        }
        tar::EntryType::Symlink => unpack::EntryKind::Symlink,
        tar::EntryType::Link => unpack::EntryKind::HardLink,
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            unpack::EntryKind::Special
        }
        other => unpack::EntryKind::Other(other.as_byte()),
    }
}
