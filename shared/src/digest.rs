//! SHA-256 as ugw writes and compares it: lower-case hex, computed while streaming (never
//! the whole file in memory), of a file or of a folder tree. A staged release, a fetched
//! artifact and a swapped binary are all recognised by these digests.

use crate::error::{Error, Result};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Read size for hashing: large enough that syscalls do not dominate, small on the stack.
const CHUNK: usize = 256 * 1024;

/// A streaming SHA-256.
#[derive(Clone)]
pub struct Sha256(ring::digest::Context);

impl std::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256")
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256(ring::digest::Context::new(&ring::digest::SHA256))
    }
}

impl Sha256 {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest as lower-case hex.
    #[must_use]
    pub fn hex(self) -> String {
        hex(self.0.finish().as_ref())
    }
}

/// SHA-256 on a thread of its own, so that hashing overlaps the I/O that feeds it (a
/// download on two cores costs the slower of the two, not their sum). Buffers go back and
/// forth: at most a few chunks are ever allocated, whatever the size of the stream.
#[derive(Debug)]
pub struct BackgroundSha256 {
    chunk: usize,
    to_hasher: Option<std::sync::mpsc::SyncSender<Chunk>>,
    recycled: std::sync::mpsc::Receiver<Vec<u8>>,
    hasher: Option<std::thread::JoinHandle<String>>,
}

#[derive(Debug)]
enum Chunk {
    Bytes(Vec<u8>, usize),
    Reset,
}

/// Chunks queued for the hashing thread before the feeder waits for it.
const QUEUED_CHUNKS: usize = 4;

impl BackgroundSha256 {
    /// A hasher fed in buffers of `chunk` bytes.
    #[must_use]
    pub fn new(chunk: usize) -> Self {
        let (to_hasher, chunks) = std::sync::mpsc::sync_channel::<Chunk>(QUEUED_CHUNKS);
        let (give_back, recycled) = std::sync::mpsc::channel();
        let hasher = std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::default();
                for chunk in chunks {
                    match chunk {
                        Chunk::Bytes(buf, len) => {
                            hasher.update(&buf[..len]);
                            let _ = give_back.send(buf);
                        }
                        Chunk::Reset => hasher = Sha256::default(),
                    }
                }
                hasher.hex()
            })
            .expect("a thread can be started");
        BackgroundSha256 {
            chunk,
            to_hasher: Some(to_hasher),
            recycled,
            hasher: Some(hasher),
        }
    }

    /// An empty buffer of the chunk size to read into (a recycled one when there is one).
    #[must_use]
    pub fn buffer(&self) -> Vec<u8> {
        self.recycled
            .try_recv()
            .unwrap_or_else(|_| vec![0; self.chunk])
    }

    /// Hash the first `len` bytes of `buf` (which is recycled afterwards).
    pub fn update(&self, buf: Vec<u8>, len: usize) {
        if let Some(tx) = &self.to_hasher {
            let _ = tx.send(Chunk::Bytes(buf, len));
        }
    }

    /// Start over, as if nothing had been hashed.
    pub fn reset(&self) {
        if let Some(tx) = &self.to_hasher {
            let _ = tx.send(Chunk::Reset);
        }
    }

    /// The digest of everything since the last reset, as lower-case hex.
    #[must_use]
    pub fn finish(mut self) -> String {
        drop(self.to_hasher.take());
        self.hasher
            .take()
            .and_then(|h| h.join().ok())
            .expect("the hashing thread does not panic")
    }
}

impl Drop for BackgroundSha256 {
    fn drop(&mut self) {
        drop(self.to_hasher.take());
        if let Some(hasher) = self.hasher.take() {
            let _ = hasher.join();
        }
    }
}

/// Lower-case hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A SHA-256 as an operator gives it (any case, blanks around), checked and lower-cased.
#[must_use]
pub fn parse_sha256(text: &str) -> Option<String> {
    sha256_exactly(text.trim())
}

/// A SHA-256 exactly as written (64 hex digits of any case, nothing around them), lower-cased:
/// a checksum file's field, where a blank is part of the line's syntax, not of the digest.
#[must_use]
pub fn sha256_exactly(text: &str) -> Option<String> {
    (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

/// SHA-256 of everything `reader` yields.
pub fn sha256_reader(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.hex()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// SHA-256 of a regular file (never through a symlink in its last component).
pub fn sha256_file(path: &Path) -> Result<String> {
    crate::atomic::open_regular(path)
        .and_then(sha256_reader)
        .map_err(|e| Error::io(format!("cannot hash {}", path.display()), &e))
}

/// SHA-256 of a file, or of a folder tree: every entry's relative path, type, executable
/// bit and content (a symlink's target, not what it points to), in sorted order. Two trees
/// with the same digest hold the same files. Names in `skip` at the top level are left out
/// (ugw's own markers).
pub fn sha256_path(path: &Path, skip: &[&str]) -> Result<String> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
    if meta.is_file() {
        return sha256_file(path);
    }
    if !meta.is_dir() {
        return Err(Error::usage(format!(
            "{} is neither a file nor a folder",
            path.display()
        )));
    }
    let mut hasher = Sha256::default();
    hash_tree(path, Path::new(""), skip, &mut hasher)?;
    Ok(hasher.hex())
}

fn hash_tree(root: &Path, rel: &Path, skip: &[&str], hasher: &mut Sha256) -> Result<()> {
    let dir = root.join(rel);
    let read_err = |e: &std::io::Error| Error::io(format!("cannot read {}", dir.display()), e);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| read_err(&e))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| read_err(&e))?;
    names.sort();
    for name in names {
        if rel.as_os_str().is_empty() && skip.iter().any(|s| name == *s) {
            continue;
        }
        let child = rel.join(&name);
        let full = root.join(&child);
        let meta = std::fs::symlink_metadata(&full)
            .map_err(|e| Error::io(format!("cannot read {}", full.display()), &e))?;
        let label = child.as_os_str().as_encoded_bytes();
        // Length-prefixed, so that no two different trees feed the same bytes.
        hasher.update(&(label.len() as u64).to_le_bytes());
        hasher.update(label);
        if meta.is_dir() {
            hasher.update(b"d");
            hash_tree(root, &child, skip, hasher)?;
        } else if meta.is_symlink() {
            let target = std::fs::read_link(&full)
                .map_err(|e| Error::io(format!("cannot read {}", full.display()), &e))?;
            hasher.update(b"l");
            hasher.update(target.as_os_str().as_encoded_bytes());
        } else if meta.is_file() {
            let exec = meta.permissions().mode() & 0o111 != 0;
            hasher.update(if exec { b"x" } else { b"f" });
            hasher.update(sha256_file(&full)?.as_bytes());
        } else {
            return Err(Error::new(
                crate::ErrorKind::UnsafeInput,
                format!("{} is a device, socket or FIFO", full.display()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_a_file_and_of_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("abc");
        std::fs::write(&file, "abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&file).unwrap(), abc);
        assert_eq!(sha256_path(&file, &[]).unwrap(), abc);
        assert_eq!(
            parse_sha256(&format!(" {} ", abc.to_uppercase())).unwrap(),
            abc
        );
        assert!(parse_sha256("abc").is_none());
        assert!(parse_sha256(&"g".repeat(64)).is_none());
    }

    #[test]
    fn the_background_hasher_agrees_with_the_plain_one_and_resets() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let background = BackgroundSha256::new(4096);
        let mut buf = background.buffer();
        buf[..3].copy_from_slice(b"old");
        background.update(buf, 3);
        background.reset();
        for piece in data.chunks(4096) {
            let mut buf = background.buffer();
            buf[..piece.len()].copy_from_slice(piece);
            background.update(buf, piece.len());
        }
        let mut plain = Sha256::default();
        plain.update(&data);
        assert_eq!(background.finish(), plain.hex());
    }

    #[test]
    fn a_tree_digest_sees_names_contents_links_and_the_executable_bit_only() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("t");
        std::fs::create_dir_all(tree.join("bin")).unwrap();
        std::fs::write(tree.join("bin/app"), "v1").unwrap();
        std::os::unix::fs::symlink("bin/app", tree.join("app")).unwrap();
        let first = sha256_path(&tree, &[".ugw-release"]).unwrap();
        std::fs::write(tree.join(".ugw-release"), "marker").unwrap();
        assert_eq!(
            sha256_path(&tree, &[".ugw-release"]).unwrap(),
            first,
            "skipped"
        );
        let mode = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(tree.join("bin/app"), mode).unwrap();
        let exec = sha256_path(&tree, &[".ugw-release"]).unwrap();
        assert_ne!(exec, first);
        std::fs::write(tree.join("bin/app"), "v2").unwrap();
        assert_ne!(sha256_path(&tree, &[".ugw-release"]).unwrap(), exec);
        std::fs::remove_file(tree.join("app")).unwrap();
        std::os::unix::fs::symlink("bin/other", tree.join("app")).unwrap();
        let relinked = sha256_path(&tree, &[".ugw-release"]).unwrap();
        std::fs::remove_file(tree.join("app")).unwrap();
        std::os::unix::fs::symlink("bin/app", tree.join("app")).unwrap();
        assert_ne!(sha256_path(&tree, &[".ugw-release"]).unwrap(), relinked);
    }
}
