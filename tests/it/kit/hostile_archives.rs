//! Hostile tar archives, written byte by byte (a tar library refuses to write most of them),
//! for every test of strict extraction: `ugw_shared::unpack`'s unit tests include this file,
//! and the integration tests of the tools that unpack use it through the kit. Each archive
//! starts with harmless entries, so a refusal must also remove what was already written.
//!
//! Layout in the folder given to [`write_all`]: `victim` (a file nothing may change or link),
//! the archives, and `sandbox/` where a test extracts to `sandbox/out`. Every escape aims at
//! `ugw-escaped` in the folder itself: two levels above `out`.

#![allow(dead_code)] // each user takes part of the corpus

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The name every escaping entry tries to create outside the destination.
pub const ESCAPED: &str = "ugw-escaped";
const VICTIM_TEXT: &[u8] = b"precious\n";

/// One hostile archive, as plain tar and as gzip.
#[derive(Debug)]
pub struct Hostile {
    pub name: &'static str,
    pub tar: PathBuf,
    pub tar_gz: PathBuf,
    /// Its only hostility is a symlink pointing out, with nothing written through it: a
    /// release extraction refuses it, a backup restore (symlinks are data there) puts the
    /// link back as it was.
    pub points_out_only: bool,
    outside: PathBuf,
}

impl Hostile {
    /// The (empty) folder to extract into, as `<work_dir>/out`.
    pub fn work_dir(&self) -> PathBuf {
        let work = self.outside.join("sandbox");
        std::fs::create_dir_all(&work).unwrap();
        work
    }

    /// Panics if anything outside the destination was created, changed or linked.
    #[track_caller]
    pub fn assert_untouched(&self) {
        for place in [self.outside.clone(), self.outside.join("sandbox")] {
            assert!(
                std::fs::symlink_metadata(place.join(ESCAPED)).is_err(),
                "{}: {} was created",
                self.name,
                place.join(ESCAPED).display()
            );
        }
        let victim = self.outside.join("victim");
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            VICTIM_TEXT,
            "{}: victim changed",
            self.name
        );
        assert_eq!(
            std::fs::metadata(&victim).unwrap().nlink(),
            1,
            "{}: victim linked",
            self.name
        );
    }
}

/// Write every hostile archive (and the victim) into `dir`.
pub fn write_all(dir: &Path) -> Vec<Hostile> {
    std::fs::write(dir.join("victim"), VICTIM_TEXT).unwrap();
    let outside = dir.to_path_buf();
    let abs = |name: &str| outside.join(name).as_os_str().as_bytes().to_vec();
    let escaped = abs(ESCAPED);
    let victim = abs("victim");
    let outside_bytes = outside.as_os_str().as_bytes().to_vec();
    let corpus: Vec<(&'static str, Tar)> = vec![
        ("dotdot", Tar::new().file(b"../../ugw-escaped", b"out")),
        (
            "dotdot-nested",
            Tar::new().file(b"keep/../../../ugw-escaped", b"out"),
        ),
        ("dotdot-dir", Tar::new().dir(b"../../ugw-escaped/")),
        ("absolute", Tar::new().file(&escaped, b"out")),
        (
            "symlink-absolute-then-write",
            Tar::new()
                .symlink(b"evil", &outside_bytes)
                .file(b"evil/ugw-escaped", b"out"),
        ),
        (
            "symlink-relative-then-write",
            Tar::new()
                .symlink(b"evil", b"../..")
                .file(b"evil/ugw-escaped", b"out"),
        ),
        (
            "symlink-out-alone",
            Tar::new().symlink(b"keep/passwd", b"/etc/passwd"),
        ),
        (
            "symlink-chain",
            Tar::new()
                // Read by names alone, keep/sub/out stays in keep/; through keep/up it is
                // sandbox/ugw-escaped.
                .symlink(b"keep/up", b"..")
                .symlink(b"keep/sub/out", b"../up/../ugw-escaped"),
        ),
        (
            "hardlink-absolute-then-write",
            Tar::new().hardlink(b"h", &victim).file(b"h", b"pwned"),
        ),
        (
            "hardlink-dotdot-then-write",
            Tar::new()
                .hardlink(b"h", b"../../victim")
                .file(b"h", b"pwned"),
        ),
        // A hard link out with no later entry of its name: only the link check refuses it
        // (the cases above are also caught by the write that follows, as "appears twice").
        ("hardlink-absolute", Tar::new().hardlink(b"h", &victim)),
        (
            "hardlink-dotdot",
            Tar::new().hardlink(b"h", b"../../victim"),
        ),
        (
            "hardlink-dotdot-nested",
            Tar::new().hardlink(b"keep/h", b"keep/../../../victim"),
        ),
        ("char-device", Tar::new().special(b"null", b'3')),
        ("block-device", Tar::new().special(b"disk", b'4')),
        ("fifo", Tar::new().special(b"pipe", b'6')),
        (
            "pax-path",
            Tar::new().pax_path(b"innocent", b"../../ugw-escaped", b"out"),
        ),
        (
            "gnu-longname",
            Tar::new().long_name(b"../../ugw-escaped", b"out"),
        ),
        (
            "file-then-symlink-same-name",
            Tar::new()
                .file(b"keep/x", b"1")
                .symlink(b"keep/x", &outside_bytes),
        ),
    ];
    corpus
        .into_iter()
        .map(|(name, tar)| {
            let bytes = tar.finish();
            let tar_path = dir.join(format!("{name}.tar"));
            let gz_path = dir.join(format!("{name}.tar.gz"));
            std::fs::write(&tar_path, &bytes).unwrap();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&bytes).unwrap();
            std::fs::write(&gz_path, gz.finish().unwrap()).unwrap();
            Hostile {
                name,
                tar: tar_path,
                tar_gz: gz_path,
                points_out_only: matches!(name, "symlink-out-alone" | "symlink-chain"),
                outside: outside.clone(),
            }
        })
        .collect()
}

/// A raw ustar writer: any name, any type, any link.
pub struct Tar {
    bytes: Vec<u8>,
}

impl Default for Tar {
    fn default() -> Self {
        Tar::new()
    }
}

impl Tar {
    /// An empty archive.
    pub fn bare() -> Tar {
        Tar { bytes: Vec::new() }
    }

    /// An archive that starts with a harmless folder and file.
    pub fn new() -> Tar {
        Tar::bare()
            .dir(b"keep/")
            .file(b"keep/README", b"harmless\n")
    }

    pub fn file(self, name: &[u8], data: &[u8]) -> Tar {
        self.entry(name, b'0', 0o644, b"", data)
    }

    pub fn dir(self, name: &[u8]) -> Tar {
        self.entry(name, b'5', 0o755, b"", b"")
    }

    pub fn symlink(self, name: &[u8], target: &[u8]) -> Tar {
        self.entry(name, b'2', 0o777, target, b"")
    }

    pub fn hardlink(self, name: &[u8], target: &[u8]) -> Tar {
        self.entry(name, b'1', 0o644, target, b"")
    }

    /// A device or FIFO (`kind` b'3' char, b'4' block, b'6' FIFO).
    pub fn special(self, name: &[u8], kind: u8) -> Tar {
        self.entry(name, kind, 0o666, b"", b"")
    }

    /// A file whose header says `name` and whose PAX record says `path`.
    pub fn pax_path(self, name: &[u8], path: &[u8], data: &[u8]) -> Tar {
        let record = pax_record(b"path", path);
        self.entry(b"PaxHeaders/x", b'x', 0o644, b"", &record)
            .file(name, data)
    }

    /// A file whose real name comes in a GNU long-name entry.
    pub fn long_name(self, name: &[u8], data: &[u8]) -> Tar {
        let mut long = name.to_vec();
        long.push(0);
        self.entry(b"././@LongLink", b'L', 0o644, b"", &long)
            .file(b"short", data)
    }

    /// A PAX header (`x`, or `g` for a global one) holding exactly `records` as given, for
    /// records whose length fields are wrong on purpose; [`pax_record`] writes right ones.
    pub fn pax_raw(self, kind: u8, records: &[u8]) -> Tar {
        self.entry(b"PaxHeaders/x", kind, 0o644, b"", records)
    }

    /// An old-GNU sparse file (type `S`): `chunks` are (offset, data) in order, stored one
    /// after another with no padding between them (as GNU tar and Go's sparse-formats.tar
    /// do); `size` is the logical size. At most four chunks (no extension headers).
    pub fn old_gnu_sparse(mut self, name: &[u8], chunks: &[(u64, &[u8])], size: u64) -> Tar {
        assert!(chunks.len() <= 4, "no extension headers in this writer");
        let data: Vec<u8> = chunks.iter().flat_map(|(_, d)| d.iter().copied()).collect();
        let mut h = header(name, b'S', 0o644, b"", data.len());
        h[257..265].copy_from_slice(b"ustar  \0");
        h[329..345].fill(0);
        for (i, (offset, bytes)) in chunks.iter().enumerate() {
            let at = 386 + i * 24;
            h[at..at + 12].copy_from_slice(format!("{offset:011o}\0").as_bytes());
            h[at + 12..at + 24].copy_from_slice(format!("{:011o}\0", bytes.len()).as_bytes());
        }
        h[483..495].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.bytes.extend_from_slice(&h);
        self.bytes.extend_from_slice(&data);
        self.bytes.resize(self.bytes.len().div_ceil(512) * 512, 0);
        self
    }

    pub fn entry(mut self, name: &[u8], kind: u8, mode: u32, link: &[u8], data: &[u8]) -> Tar {
        self.bytes
            .extend_from_slice(&header(name, kind, mode, link, data.len()));
        self.bytes.extend_from_slice(data);
        self.bytes.resize(self.bytes.len().div_ceil(512) * 512, 0);
        self
    }

    /// The archive with its end-of-archive blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.resize(self.bytes.len() + 1024, 0);
        self.bytes
    }
}

/// `"<len> key=value\n"`, where len counts itself.
pub fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len += 1;
    }
    let mut record = format!("{len} ").into_bytes();
    record.extend_from_slice(key);
    record.push(b'=');
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

fn header(name: &[u8], kind: u8, mode: u32, link: &[u8], size: usize) -> [u8; 512] {
    assert!(
        name.len() <= 100 && link.len() <= 100,
        "use pax_path or long_name"
    );
    let mut h = [0u8; 512];
    let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, name);
    put(100, format!("{mode:07o}\0").as_bytes());
    put(108, b"0000000\0");
    put(116, b"0000000\0");
    put(124, format!("{size:011o}\0").as_bytes());
    put(136, format!("{:011o}\0", 1_600_000_000).as_bytes());
    put(148, b"        ");
    put(156, &[kind]);
    put(157, link);
    put(257, b"ustar\0");
    put(263, b"00");
    put(329, b"0000001\0");
    put(337, b"0000003\0");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// One entry of a plain ustar archive as this writer makes them (no PAX, no long names).
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub name: Vec<u8>,
    pub kind: u8,
    pub mode: u32,
    pub link: Vec<u8>,
    pub data: Vec<u8>,
}

/// The entries of an archive written by [`Tar`].
pub fn entries(bytes: &[u8]) -> Vec<RawEntry> {
    let field = |h: &[u8], at: usize, len: usize| {
        let raw = &h[at..at + len];
        raw[..raw.iter().position(|&b| b == 0).unwrap_or(len)].to_vec()
    };
    let octal = |raw: Vec<u8>| {
        let text = String::from_utf8(raw).unwrap();
        usize::from_str_radix(text.trim(), 8).unwrap_or(0)
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() && bytes[at..at + 512].iter().any(|&b| b != 0) {
        let h = &bytes[at..at + 512];
        let size = octal(field(h, 124, 12));
        let data = bytes[at + 512..at + 512 + size].to_vec();
        out.push(RawEntry {
            name: field(h, 0, 100),
            kind: h[156],
            mode: octal(field(h, 100, 8)) as u32,
            link: field(h, 157, 100),
            data,
        });
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}
