//! The manifest: what a backup holds, entry by entry, with the checks it passed. It is the
//! archive's last entry (`ugw-manifest.json`) and a sidecar beside it, so `list` and `verify`
//! know what to expect without reading the whole archive first.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The manifest's format version.
pub const FORMAT: u32 = 1;
/// The manifest's name inside the archive.
pub const ENTRY_NAME: &str = "ugw-manifest.json";
/// Where database snapshots and dumps sit inside the archive.
pub const DB_PREFIX: &str = "ugw-db";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub ugw_backup: u32,
    pub name: String,
    /// The host the backup was made on (`--host-id`, `UGW_HOST_ID` or the host name).
    pub host: String,
    /// The run whose `create` made it (the record's `run`): a restore from the record puts
    /// back only a backup its own run made. A manifest written before this field was added
    /// has none, and belongs to no run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    pub app_version: Option<String>,
    pub tool_version: String,
    pub created: String,
    pub compress: String,
    /// What was given as `--path`, and where it sits in the archive.
    pub roots: Vec<Root>,
    pub entries: Vec<Entry>,
    pub sqlite: Vec<SqliteSnapshot>,
    pub pg: Vec<PgDump>,
    /// The `pg_dumpall --globals-only` script (roles, tablespaces), with `--pg-globals`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_globals: Option<Name>,
    /// Entries whose size or mtime moved while they were read (or that vanished before).
    pub changed_while_read: Vec<Name>,
    /// Folders under a root that were left out of the walk (the `--out` folder itself): an
    /// in-place restore carries them over from the live tree instead of deleting them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<Name>,
}

impl Manifest {
    /// The Docker volumes the backup holds, in the order of its roots.
    #[must_use]
    pub fn volumes(&self) -> Vec<String> {
        self.roots
            .iter()
            .filter_map(|root| root.volume.clone())
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Root {
    /// The absolute path as backed up.
    pub path: Name,
    /// Its path inside the archive.
    pub entry: Name,
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The Docker named volume whose mount point this is (`create --volume NAME`): an
    /// in-place restore puts it back only into that volume, with its containers stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub path: Name,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sha256: Option<String>,
    /// A symlink's target, or the earlier entry a hard link shares its data with.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub link: Option<Name>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqliteSnapshot {
    /// The live database file.
    pub path: Name,
    pub entry: Name,
    pub bytes: u64,
    pub sha256: String,
    pub integrity_check: String,
    pub method: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PgDump {
    /// The database URL without its password (for people: the fields below are what a
    /// restore connects with).
    pub url: String,
    pub entry: Name,
    pub bytes: u64,
    pub sha256: String,
    pub check: String,
    /// The connection as structured fields: a database name holding `#`, `?`, `/` or `%`
    /// never has to survive a URL round trip. Absent in manifests written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<PgConnection>,
}

/// Where a dump came from, field by field (never the password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgConnection {
    /// A host name, an address, or a Unix socket folder.
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub sslmode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslrootcert: Option<String>,
}

/// A file name kept losslessly: text when it is UTF-8, else base64 of its bytes (with a
/// readable, lossy rendering beside it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Name {
    Text(String),
    Bytes { base64: String, lossy: String },
}

impl Name {
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Name::Text(text.to_string()),
            Err(_) => Name::Bytes {
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
                lossy: String::from_utf8_lossy(bytes).into_owned(),
            },
        }
    }

    #[must_use]
    pub fn from_path(path: &Path) -> Self {
        Self::from_bytes(path.as_os_str().as_bytes())
    }

    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Name::Text(text) => text.as_bytes().to_vec(),
            Name::Bytes { base64, .. } => base64::engine::general_purpose::STANDARD
                .decode(base64)
                .unwrap_or_default(),
        }
    }

    #[must_use]
    pub fn path(&self) -> PathBuf {
        PathBuf::from(OsStr::from_bytes(&self.bytes()))
    }

    /// For messages.
    #[must_use]
    pub fn shown(&self) -> String {
        match self {
            Name::Text(text) => text.clone(),
            Name::Bytes { lossy, .. } => lossy.clone(),
        }
    }
}

/// The sidecars of `archive`: its manifest and its checksum file.
#[must_use]
pub fn sidecars(archive: &Path) -> (PathBuf, PathBuf) {
    let name = archive.file_name().map(OsStr::as_bytes).unwrap_or_default();
    let stem = [".tar.gz", ".tar.zst", ".tar"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext.as_bytes()))
        .unwrap_or(name);
    let mut manifest = stem.to_vec();
    manifest.extend_from_slice(b".manifest.json");
    let mut sum = name.to_vec();
    sum.extend_from_slice(b".sha256");
    (
        archive.with_file_name(OsStr::from_bytes(&manifest)),
        archive.with_file_name(OsStr::from_bytes(&sum)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_survive_whatever_their_bytes() {
        for bytes in [&b"plain/name.txt"[..], b"caf\xe9 with space", b"\xff\xfe"] {
            let name = Name::from_bytes(bytes);
            let json = serde_json::to_string(&name).unwrap();
            let back: Name = serde_json::from_str(&json).unwrap();
            assert_eq!(back.bytes(), bytes, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&Name::from_bytes(b"a b")).unwrap(),
            "\"a b\""
        );
    }

    #[test]
    fn a_manifest_written_before_runs_were_recorded_reads_as_no_run() {
        let old = r#"{"ugw_backup":1,"name":"b","host":"h","app_version":null,
            "tool_version":"0.1.0","created":"2026-01-01T00:00:00.000Z","compress":"gzip",
            "roots":[],"entries":[],"sqlite":[],"pg":[],"changed_while_read":[]}"#;
        let manifest: Manifest = serde_json::from_str(old).unwrap();
        assert_eq!(manifest.run, None);
        let mut with_run = manifest.clone();
        with_run.run = Some("r1".into());
        let text = serde_json::to_string(&with_run).unwrap();
        assert!(text.contains(r#""run":"r1""#), "{text}");
        assert!(
            !serde_json::to_string(&manifest)
                .unwrap()
                .contains("\"run\"")
        );
    }

    #[test]
    fn sidecars_sit_beside_the_archive() {
        let (manifest, sum) = sidecars(Path::new("/b/app-1.tar.gz"));
        assert_eq!(manifest, Path::new("/b/app-1.manifest.json"));
        assert_eq!(sum, Path::new("/b/app-1.tar.gz.sha256"));
        let (manifest, _) = sidecars(Path::new("/b/app-1.tar.zst"));
        assert_eq!(manifest, Path::new("/b/app-1.manifest.json"));
    }
}
