//! The tar stream reader behind [`super::stage`]: the ustar, GNU and PAX headers GNU tar,
//! bsdtar, `git archive` and Python's tarfile write, read as GNU tar and Python read them —
//! GNU long names, local and global PAX records (a global record applies to every entry after
//! it), GNU sparse files in the old GNU format and in the PAX formats 0.0, 0.1 and 1.0. It is
//! strict where a lenient reader could be made to see another archive than GNU tar sees: a
//! header checksum, a PAX record's length, a sparse map that overlaps or does not add up are
//! errors. It yields one entry at a time; its data is read through [`Reader::read_data`].

use crate::error::{Error, ErrorKind, Result};
use std::collections::BTreeMap;
use std::io::Read;

const BLOCK: usize = 512;
/// GNU long names and PAX headers are held in memory whole; a longer one is refused.
const MAX_META_BYTES: u64 = 1 << 20;
/// A sparse map with more chunks than this is refused (it would be held in memory).
const MAX_SPARSE_CHUNKS: u64 = 1 << 20;

/// What an entry is, from its type flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
    Char,
    Block,
    Fifo,
    /// A type flag this reader does not extract (shown as the flag's character).
    Unsupported(u8),
}

/// One run of a sparse file's data: `len` stored bytes that belong at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub len: u64,
}

/// One member of the archive, with its extension headers applied.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: Kind,
    pub link: Vec<u8>,
    /// The permission bits, setuid/setgid/sticky included (`& 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Option<u64>,
    /// A file's size once extracted (a sparse file's logical size).
    pub size: u64,
    /// Where a sparse file's stored data goes, in order; `None`: the data is the file.
    pub sparse: Option<Vec<Chunk>>,
    /// Bytes of data the archive stores for it (a sparse file's data without its holes).
    pub stored: u64,
}

/// A tar stream, read entry by entry.
pub struct Reader<R> {
    inner: R,
    /// Data bytes of the current entry not read yet, then the padding to its block's end.
    left: u64,
    pad: u64,
    /// Records of every global PAX header so far (a record with an empty value removes one).
    global: BTreeMap<String, Vec<u8>>,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            left: 0,
            pad: 0,
            global: BTreeMap::new(),
        }
    }

    /// The next member, or `None` at the end-of-archive block (or the end of the stream).
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        self.skip_rest()?;
        // Records of the local PAX headers before this member, in their order (the 0.0 sparse
        // format repeats keys, so order matters).
        let mut local: Vec<(String, Vec<u8>)> = Vec::new();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pending = false;
        loop {
            let Some(block) = self.read_block()? else {
                if pending {
                    return Err(damaged(
                        "it ends after an extension header, before its member",
                    ));
                }
                return Ok(None);
            };
            if block.iter().all(|b| *b == 0) {
                if pending {
                    return Err(damaged(
                        "an extension header is followed by the archive's end",
                    ));
                }
                return Ok(None);
            }
            check_sum(&block)?;
            let size = number(&block[124..136], "size")?;
            match block[156] {
                b'x' | b'X' => {
                    let data = self.read_meta(size, "a PAX header")?;
                    local.extend(parse_pax(&data)?);
                }
                b'g' => {
                    let data = self.read_meta(size, "a global PAX header")?;
                    for (key, value) in parse_pax(&data)? {
                        if value.is_empty() {
                            self.global.remove(&key);
                        } else {
                            self.global.insert(key, value);
                        }
                    }
                    continue;
                }
                b'V' => {
                    // A volume label (`tar --label`): GNU tar extracts nothing for it.
                    self.left = size;
                    self.pad = pad_of(size);
                    self.skip_rest()?;
                    continue;
                }
                b'L' => long_name = Some(until_nul(&self.read_meta(size, "a GNU long name")?)),
                b'K' => long_link = Some(until_nul(&self.read_meta(size, "a GNU long link")?)),
                _ => {
                    return self
                        .member(&block, size, &local, long_name, long_link)
                        .map(Some);
                }
            }
            pending = true;
        }
    }

    /// Read up to `buf.len()` bytes of the current entry's stored data; 0 at its end.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize> {
        let want = usize::try_from(self.left).map_or(buf.len(), |left| left.min(buf.len()));
        if want == 0 {
            return Ok(0);
        }
        let n = read_some(&mut self.inner, &mut buf[..want])?;
        if n == 0 {
            return Err(truncated());
        }
        self.left -= n as u64;
        Ok(n)
    }

    fn member(
        &mut self,
        block: &[u8; BLOCK],
        stored: u64,
        local: &[(String, Vec<u8>)],
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> Result<Entry> {
        let mut records = self.global.clone();
        for (key, value) in local {
            if value.is_empty() {
                records.remove(key);
            } else {
                records.insert(key.clone(), value.clone());
            }
        }
        let path = entry_path(block, long_name, &records);
        let mut link = long_link.unwrap_or_else(|| field(&block[157..257]).to_vec());
        if let Some(pax) = records.get("linkpath") {
            link.clone_from(pax);
        }
        let shown = crate::scrub::excerpt(&path, 200);
        let in_entry = |e: Error| Error::new(e.kind, format!("entry '{shown}': {}", e.message));
        let mode = u32::try_from(number(&block[100..108], "mode").map_err(in_entry)? & 0o7777)
            .unwrap_or(0);
        let mut uid = number(&block[108..116], "uid").map_err(in_entry)?;
        let mut gid = number(&block[116..124], "gid").map_err(in_entry)?;
        let mut mtime = number(&block[136..148], "mtime").ok();
        let mut stored = stored;
        if let Some(value) = records.get("size") {
            stored = decimal(value, "size").map_err(in_entry)?;
        }
        if let Some(value) = records.get("uid") {
            uid = decimal(value, "uid").map_err(in_entry)?;
        }
        if let Some(value) = records.get("gid") {
            gid = decimal(value, "gid").map_err(in_entry)?;
        }
        if let Some(value) = records.get("mtime") {
            mtime = pax_time(value).map_err(in_entry)?;
        }
        let flag = block[156];
        let kind = kind_of(flag, &path, stored);
        self.left = stored;
        self.pad = pad_of(stored);
        let mut entry = Entry {
            path,
            kind,
            link,
            mode,
            uid,
            gid,
            mtime,
            size: stored,
            sparse: None,
            stored,
        };
        if flag == b'S' {
            self.old_gnu_sparse(block, &mut entry).map_err(in_entry)?;
        } else if kind == Kind::File {
            self.pax_sparse(&records, local, &mut entry)
                .map_err(in_entry)?;
        }
        Ok(entry)
    }

    /// The old GNU sparse format (type `S`): four chunks in the header, more in extension
    /// blocks after it, the logical size in `realsize`.
    fn old_gnu_sparse(&mut self, block: &[u8; BLOCK], entry: &mut Entry) -> Result<()> {
        let mut chunks = Vec::new();
        let mut more = old_gnu_chunks(&block[386..482], &mut chunks)? && block[482] != 0;
        while more {
            let ext = self.read_block()?.ok_or_else(truncated)?;
            more = old_gnu_chunks(&ext[..504], &mut chunks)? && ext[504] != 0;
            if chunks.len() as u64 > MAX_SPARSE_CHUNKS {
                return Err(corrupt("its sparse map is too long"));
            }
        }
        entry.size = number(&block[483..495], "sparse size")?;
        entry.sparse = Some(checked_map(chunks, entry.size, entry.stored)?);
        Ok(())
    }

    /// GNU tar's PAX sparse formats: 0.0 (repeated offset/numbytes records), 0.1 (one map
    /// record) and 1.0 (the map at the start of the data).
    fn pax_sparse(
        &mut self,
        records: &BTreeMap<String, Vec<u8>>,
        local: &[(String, Vec<u8>)],
        entry: &mut Entry,
    ) -> Result<()> {
        let get = |key: &str| records.get(key).map(Vec::as_slice);
        let version = (get("GNU.sparse.major"), get("GNU.sparse.minor"));
        let has_map = get("GNU.sparse.map").is_some()
            || get("GNU.sparse.numblocks").is_some()
            || local.iter().any(|(k, _)| k == "GNU.sparse.offset");
        let one_zero = match version {
            (Some(b"1"), Some(b"0")) => true,
            (Some(b"0"), Some(b"0" | b"1")) | (None, None) if has_map => false,
            (None, None) => return Ok(()),
            (major, minor) => {
                return Err(corrupt(&format!(
                    "it is a GNU sparse file of version {}.{}, which is not supported",
                    String::from_utf8_lossy(major.unwrap_or(b"?")),
                    String::from_utf8_lossy(minor.unwrap_or(b"?"))
                )));
            }
        };
        if let Some(name) = get("GNU.sparse.name") {
            entry.path = name.to_vec();
        }
        let size = get("GNU.sparse.realsize")
            .or_else(|| get("GNU.sparse.size"))
            .ok_or_else(|| corrupt("it is a GNU sparse file without its size"))?;
        entry.size = decimal(size, "GNU.sparse size")?;
        let chunks = if one_zero {
            self.map_in_data()?
        } else {
            let numbers: Vec<u64> = if let Some(map) = get("GNU.sparse.map") {
                map.split(|b| *b == b',')
                    .map(|n| decimal(n, "GNU.sparse.map"))
                    .collect::<Result<_>>()?
            } else {
                // 0.0: offset, numbytes, offset, numbytes… in the order written.
                let mut numbers = Vec::new();
                for (key, value) in local {
                    let want = if numbers.len() % 2 == 0 {
                        "GNU.sparse.offset"
                    } else {
                        "GNU.sparse.numbytes"
                    };
                    if key == "GNU.sparse.offset" || key == "GNU.sparse.numbytes" {
                        if key != want {
                            return Err(corrupt(
                                "its GNU.sparse offset and numbytes records are out of order",
                            ));
                        }
                        numbers.push(decimal(value, key)?);
                    }
                }
                numbers
            };
            if !numbers.len().is_multiple_of(2) {
                return Err(corrupt("its sparse map has an offset without a length"));
            }
            if let Some(count) = get("GNU.sparse.numblocks")
                && decimal(count, "GNU.sparse.numblocks")? != (numbers.len() / 2) as u64
            {
                return Err(corrupt(
                    "its sparse map does not have the number of chunks it declares",
                ));
            }
            numbers
                .chunks_exact(2)
                .map(|pair| Chunk {
                    offset: pair[0],
                    len: pair[1],
                })
                .collect()
        };
        entry.sparse = Some(checked_map(chunks, entry.size, self.left)?);
        entry.stored = self.left;
        Ok(())
    }

    /// The 1.0 map: decimal numbers, one a line (count, then offset and length pairs),
    /// padded to a block, before the data.
    fn map_in_data(&mut self) -> Result<Vec<Chunk>> {
        let mut text: Vec<u8> = Vec::new();
        let mut numbers: Vec<u64> = Vec::new();
        let mut wanted: Option<u64> = None;
        let mut used = 0;
        loop {
            while let Some(end) = text[used..].iter().position(|b| *b == b'\n') {
                let n = decimal(&text[used..used + end], "sparse map")?;
                used += end + 1;
                match wanted {
                    None if n > MAX_SPARSE_CHUNKS => {
                        return Err(corrupt("its sparse map is too long"));
                    }
                    None => wanted = Some(n * 2),
                    Some(_) => numbers.push(n),
                }
                if wanted == Some(numbers.len() as u64) {
                    return Ok(numbers
                        .chunks_exact(2)
                        .map(|pair| Chunk {
                            offset: pair[0],
                            len: pair[1],
                        })
                        .collect());
                }
            }
            if text.len() - used > 40 {
                return Err(corrupt("its sparse map has a number that is too long"));
            }
            if self.left < BLOCK as u64 {
                return Err(corrupt("its sparse map is longer than its data"));
            }
            let mut block = [0u8; BLOCK];
            self.read_exact_data(&mut block)?;
            text.drain(..used);
            used = 0;
            text.extend_from_slice(&block);
        }
    }

    fn read_exact_data(&mut self, buf: &mut [u8]) -> Result<()> {
        let mut at = 0;
        while at < buf.len() {
            let n = self.read_data(&mut buf[at..])?;
            if n == 0 {
                return Err(truncated());
            }
            at += n;
        }
        Ok(())
    }

    /// Skip what is left of the current entry's data and padding.
    fn skip_rest(&mut self) -> Result<()> {
        let rest = self.left + self.pad;
        let copied = std::io::copy(&mut (&mut self.inner).take(rest), &mut std::io::sink())
            .map_err(|e| damaged(&e.to_string()))?;
        if copied != rest {
            return Err(truncated());
        }
        self.left = 0;
        self.pad = 0;
        Ok(())
    }

    /// An extension header's data, whole (with its padding skipped).
    fn read_meta(&mut self, size: u64, what: &str) -> Result<Vec<u8>> {
        if size > MAX_META_BYTES {
            return Err(corrupt(&format!(
                "{what} of {size} bytes is longer than {MAX_META_BYTES}"
            )));
        }
        let mut data = vec![0u8; usize::try_from(size).unwrap_or(0)];
        self.left = size;
        self.pad = pad_of(size);
        self.read_exact_data(&mut data)?;
        self.skip_rest()?;
        Ok(data)
    }

    /// One whole block, `None` at a clean end of the stream.
    fn read_block(&mut self) -> Result<Option<[u8; BLOCK]>> {
        let mut block = [0u8; BLOCK];
        let mut at = 0;
        while at < BLOCK {
            let n = read_some(&mut self.inner, &mut block[at..])?;
            if n == 0 {
                return if at == 0 { Ok(None) } else { Err(truncated()) };
            }
            at += n;
        }
        Ok(Some(block))
    }
}

/// Read chunks from old GNU sparse entries (12-byte offset, 12-byte length) until an empty
/// one; whether all were full (so the map may continue).
fn old_gnu_chunks(area: &[u8], chunks: &mut Vec<Chunk>) -> Result<bool> {
    for entry in area.chunks_exact(24) {
        // GNU tar and bsdtar end the map at the first entry whose offset is empty.
        if entry[0] == 0 {
            return Ok(false);
        }
        chunks.push(Chunk {
            offset: number(&entry[..12], "sparse offset")?,
            len: number(&entry[12..], "sparse length")?,
        });
    }
    Ok(true)
}

/// A sparse map that places every stored byte once, in order, inside the logical size.
fn checked_map(chunks: Vec<Chunk>, size: u64, stored: u64) -> Result<Vec<Chunk>> {
    let mut end = 0u64;
    let mut total = 0u64;
    for chunk in &chunks {
        if chunk.offset < end {
            return Err(corrupt(
                "its sparse map has overlapping or unordered chunks",
            ));
        }
        end = chunk
            .offset
            .checked_add(chunk.len)
            .filter(|e| *e <= size)
            .ok_or_else(|| corrupt("its sparse map reaches past the file's size"))?;
        total = total.saturating_add(chunk.len);
    }
    if total != stored {
        return Err(corrupt(&format!(
            "its sparse map places {total} bytes but {stored} are stored"
        )));
    }
    Ok(chunks)
}

/// PAX records: `"<len> <key>=<value>\n"`, `len` counting the whole record. A length that
/// does not land on the record's newline is an error (Go and Python reject it too).
pub fn parse_pax(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|b| *b == 0) {
            break;
        }
        let bad = || {
            corrupt("a PAX record's length does not match the record (the PAX header is damaged)")
        };
        let space = rest.iter().position(|b| *b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse().ok())
            .ok_or_else(bad)?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad());
        }
        let body = &rest[space + 1..len - 1];
        let equals = body
            .iter()
            .position(|b| *b == b'=')
            .filter(|at| *at > 0)
            .ok_or_else(|| corrupt("a PAX record has no key=value (the PAX header is damaged)"))?;
        let key = String::from_utf8_lossy(&body[..equals]).into_owned();
        records.push((key, body[equals + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(records)
}

/// The header checksum: the bytes summed with the checksum field as spaces (unsigned, or
/// signed as some old tars did).
fn check_sum(block: &[u8; BLOCK]) -> Result<()> {
    let want = number(&block[148..156], "checksum")?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (at, byte) in block.iter().enumerate() {
        let byte = if (148..156).contains(&at) {
            b' '
        } else {
            *byte
        };
        unsigned += u64::from(byte);
        signed += i64::from(byte.cast_signed());
    }
    if want == unsigned || i64::try_from(want).is_ok_and(|w| w == signed) {
        Ok(())
    } else {
        Err(damaged("a header's checksum does not match"))
    }
}

/// A numeric header field: octal (space or NUL padded), or base-256 when its first byte has
/// the high bit set (GNU tar's form for large values).
fn number(field: &[u8], what: &str) -> Result<u64> {
    if let Some((first, rest)) = field.split_first()
        && first & 0x80 != 0
    {
        if *first == 0xff {
            return Err(corrupt(&format!("the header's {what} is negative")));
        }
        let mut value = u64::from(first & 0x7f);
        for byte in rest {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(*byte)))
                .ok_or_else(|| corrupt(&format!("the header's {what} is too large")))?;
        }
        return Ok(value);
    }
    let text = field
        .iter()
        .skip_while(|b| **b == b' ' || **b == 0)
        .take_while(|b| **b != b' ' && **b != 0)
        .copied()
        .collect::<Vec<u8>>();
    if text.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(&text)
        .ok()
        .filter(|t| t.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .and_then(|t| u64::from_str_radix(t, 8).ok())
        .ok_or_else(|| corrupt(&format!("the header's {what} is not a number")))
}

/// A PAX decimal value.
fn decimal(value: &[u8], what: &str) -> Result<u64> {
    std::str::from_utf8(value)
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| corrupt(&format!("its PAX {what} is not a number")))
}

/// A PAX time: seconds, optionally negative and with a fraction; before 1970 is dropped.
fn pax_time(value: &[u8]) -> Result<Option<u64>> {
    let (negative, digits) = match value.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, value),
    };
    let whole = digits.split(|b| *b == b'.').next().unwrap_or_default();
    let fraction_ok = digits.iter().skip(whole.len() + 1).all(u8::is_ascii_digit);
    if !fraction_ok {
        return Err(corrupt("its PAX mtime is not a number"));
    }
    let seconds = decimal(whole, "mtime")?;
    Ok((!negative).then_some(seconds))
}

fn pad_of(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// A NUL-terminated header field.
fn field(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

fn until_nul(bytes: &[u8]) -> Vec<u8> {
    field(bytes).to_vec()
}

fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other.map_err(|e| damaged(&e.to_string())),
        }
    }
}

fn corrupt(why: &str) -> Error {
    Error::new(ErrorKind::Corrupt, format!("the archive is damaged: {why}"))
}

fn damaged(why: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("the archive is damaged or truncated: {why}"),
    )
}

fn truncated() -> Error {
    damaged("it ends in the middle of an entry")
}

/// An entry's path: the header's name (after its ustar prefix), a GNU long name over it, and
/// a PAX `path` record over both.
fn entry_path(
    block: &[u8; BLOCK],
    long_name: Option<Vec<u8>>,
    records: &BTreeMap<String, Vec<u8>>,
) -> Vec<u8> {
    let ustar = &block[257..263] == b"ustar\0";
    let mut path = field(&block[0..100]).to_vec();
    // star's ustar variant ends its header with "tar\0" and keeps times after a shorter
    // prefix.
    let prefix = if &block[508..512] == b"tar\0" {
        field(&block[345..476])
    } else {
        field(&block[345..500])
    };
    if ustar && !prefix.is_empty() {
        let mut joined = prefix.to_vec();
        joined.push(b'/');
        joined.extend_from_slice(&path);
        path = joined;
    }
    if let Some(long) = long_name {
        path = long;
    }
    if let Some(pax) = records.get("path") {
        path.clone_from(pax);
    }
    path
}

/// The kind a header's type flag names.
fn kind_of(flag: u8, path: &[u8], stored: u64) -> Kind {
    match flag {
        // Old tars mark a folder by its name's trailing slash alone.
        b'0' | 0 | b'7' if path.ends_with(b"/") && stored == 0 => Kind::Dir,
        b'0' | 0 | b'7' | b'S' => Kind::File,
        b'1' => Kind::HardLink,
        b'2' => Kind::Symlink,
        b'3' => Kind::Char,
        b'4' => Kind::Block,
        b'5' | b'D' => Kind::Dir,
        b'6' => Kind::Fifo,
        other => Kind::Unsupported(other),
    }
}
