//! The archive's compression. gzip is written as independent members compressed on every
//! core, in order: each member is one whole buffer deflated by libdeflate (2-3x zlib's speed
//! at the same ratio, and a member needs no streaming state). Parts that look random (media,
//! already-compressed files, blobs) are stored instead of deflated, which costs as much as text
//! and gains nothing. `gzip -d`, `tar -xz` and `MultiGzDecoder` read the members as one stream.
//! zstd uses its own worker threads.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Bytes handed to one worker at a time.
const CHUNK: usize = 1024 * 1024;
/// Each chunk is judged in parts this big: compressed, or stored when it looks random.
const PART: usize = 64 * 1024;
/// The input of one zstd worker's job.
const ZSTD_JOB: u32 = 2 * 1024 * 1024;
/// Bits of entropy per byte above which a part is stored (random bytes measure ~7.997).
const RANDOM_ENTROPY: f64 = 7.95;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Zstd,
    None,
}

impl Codec {
    #[must_use]
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "gzip" => Some(Codec::Gzip),
            "zstd" => Some(Codec::Zstd),
            "none" => Some(Codec::None),
            _ => None,
        }
    }

    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::None => "none",
        }
    }

    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => ".tar.gz",
            Codec::Zstd => ".tar.zst",
            Codec::None => ".tar",
        }
    }

    #[must_use]
    pub fn default_level(self) -> i32 {
        match self {
            // libdeflate level 1: as tight as zlib level 1 (`pigz -1`), in a fraction of its time.
            Codec::Gzip => 1,
            Codec::Zstd => 3,
            Codec::None => 0,
        }
    }
}

/// A writer that compresses into `W`; `finish` flushes everything and hands `W` back.
pub enum Compressor<W: Write + Send + 'static> {
    Gzip(ParallelGz<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write + Send + 'static> Compressor<W> {
    pub fn new(out: W, codec: Codec, level: i32, threads: usize) -> io::Result<Self> {
        Ok(match codec {
            Codec::Gzip => Compressor::Gzip(ParallelGz::new(out, level, threads)),
            Codec::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(out, level)?;
                encoder.include_checksum(true)?;
                if threads > 1 {
                    encoder.multithread(threads as u32)?;
                    // Small jobs keep memory bounded: each worker holds about two of them.
                    encoder.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB))?;
                }
                Compressor::Zstd(encoder)
            }
            Codec::None => Compressor::None(out),
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(gz) => gz.finish(),
            Compressor::Zstd(encoder) => encoder.finish(),
            Compressor::None(mut out) => out.flush().map(|()| out),
        }
    }
}

impl<W: Write + Send + 'static> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(gz) => gz.write(buf),
            Compressor::Zstd(encoder) => encoder.write(buf),
            Compressor::None(out) => out.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(_) => Ok(()),
            Compressor::Zstd(encoder) => encoder.flush(),
            Compressor::None(out) => out.flush(),
        }
    }
}

type Job = (Vec<u8>, SyncSender<io::Result<Vec<u8>>>);

/// gzip members compressed by a pool of threads and written in their order. At most one chunk
/// per thread (and one more) is in flight, so memory stays bounded whatever the input size.
pub struct ParallelGz<W: Write> {
    out: W,
    /// The deflaters of the calling thread, when it compresses alone.
    inline: Option<Deflaters>,
    chunk: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
}

impl<W: Write> ParallelGz<W> {
    /// `level` is libdeflate's (0 to 12; out of range is clamped).
    pub fn new(out: W, level: i32, threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, workers) = if threads > 1 {
            let (tx, rx) = sync_channel::<Job>(1);
            let rx = Arc::new(Mutex::new(rx));
            let workers = (0..threads)
                .map(|_| {
                    let rx = Arc::clone(&rx);
                    std::thread::spawn(move || work(&rx, level))
                })
                .collect();
            (Some(tx), workers)
        } else {
            (None, Vec::new())
        };
        ParallelGz {
            out,
            inline: jobs.is_none().then(|| Deflaters::new(level)),
            chunk: Vec::with_capacity(CHUNK),
            jobs,
            workers,
            pending: VecDeque::new(),
            max_pending: threads + 1,
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        let Some(jobs) = &self.jobs else {
            let deflaters = self.inline.as_mut().expect("deflaters without threads");
            let members = deflaters.gzip_chunk(&data)?;
            return self.out.write_all(&members);
        };
        let (tx, rx) = sync_channel(1);
        jobs.send((data, tx))
            .map_err(|_| io::Error::other("a compression thread stopped"))?;
        self.pending.push_back(rx);
        while self.pending.len() > self.max_pending {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let member = rx
                .recv()
                .map_err(|_| io::Error::other("a compression thread stopped"))??;
            self.out.write_all(&member)?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        if !self.chunk.is_empty() {
            self.submit()?;
        }
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.chunk.len();
        let taken = room.min(buf.len());
        self.chunk.extend_from_slice(&buf[..taken]);
        if self.chunk.len() == CHUNK {
            self.submit()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, level: i32) {
    let mut deflaters = Deflaters::new(level);
    loop {
        let job = jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        let Ok((data, reply)) = job else {
            return;
        };
        let _ = reply.send(deflaters.gzip_chunk(&data));
    }
}

/// The deflaters one thread owns (libdeflate keeps its match-finder tables in them).
struct Deflaters {
    /// At the chosen level, for compressible runs.
    packing: libdeflater::Compressor,
    /// Level 0: stored blocks, for random runs.
    storing: libdeflater::Compressor,
}

impl Deflaters {
    fn new(level: i32) -> Self {
        let level = libdeflater::CompressionLvl::new(level.clamp(0, 12))
            .expect("0 to 12 are libdeflate levels");
        Deflaters {
            packing: libdeflater::Compressor::new(level),
            storing: libdeflater::Compressor::new(libdeflater::CompressionLvl::new(0).expect("0")),
        }
    }

    /// One chunk as gzip members: runs of compressible parts deflated, runs of random ones
    /// stored.
    fn gzip_chunk(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        let random: Vec<bool> = data.chunks(PART).map(looks_random).collect();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut first = 0;
        while first < random.len() {
            let end = random[first..]
                .iter()
                .position(|&r| r != random[first])
                .map_or(random.len(), |n| first + n);
            let run = &data[first * PART..(end * PART).min(data.len())];
            let deflater = if random[first] {
                &mut self.storing
            } else {
                &mut self.packing
            };
            append_member(deflater, run, &mut out)?;
            first = end;
        }
        Ok(out)
    }
}

/// `data` as one gzip member at the end of `out`.
fn append_member(
    deflater: &mut libdeflater::Compressor,
    data: &[u8],
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let start = out.len();
    out.resize(start + deflater.gzip_compress_bound(data.len()), 0);
    let written = deflater
        .gzip_compress(data, &mut out[start..])
        .map_err(|e| io::Error::other(format!("deflate: {e}")))?;
    out.truncate(start + written);
    Ok(())
}

/// Whether `part` has the byte statistics of random data (nothing for deflate to gain).
fn looks_random(part: &[u8]) -> bool {
    if part.len() < 4096 {
        return false;
    }
    let mut counts = [0u32; 256];
    for &byte in part {
        counts[byte as usize] += 1;
    }
    let total = part.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / total;
            -p * p.log2()
        })
        .sum();
    entropy > RANDOM_ENTROPY
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<u8> {
        let mut data = Vec::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        for i in 0..(3 * CHUNK / 100) {
            data.extend_from_slice(
                format!("2026-11-30T04:00:{:02} INFO request {i} ok\n", i % 60).as_bytes(),
            );
            if i % 500 == 0 {
                for _ in 0..(PART / 8 * 3) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    data.extend_from_slice(&rng.to_le_bytes());
                }
            }
        }
        data
    }

    #[test]
    fn members_from_every_thread_count_read_back_as_one_stream() {
        let data = sample();
        for threads in [1, 2, 3] {
            let mut gz = Compressor::new(Vec::new(), Codec::Gzip, 2, threads).unwrap();
            for piece in data.chunks(7000) {
                gz.write_all(piece).unwrap();
            }
            let packed = gz.finish().unwrap();
            assert!(
                packed.len() < data.len(),
                "{threads}: {} of {}",
                packed.len(),
                data.len()
            );
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&packed[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "{threads} threads");
        }
    }

    #[test]
    fn random_parts_are_stored_and_text_is_compressed() {
        let mut rng = 1u64;
        let random: Vec<u8> = (0..PART)
            .map(|_| {
                rng = rng
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (rng >> 56) as u8
            })
            .collect();
        assert!(looks_random(&random));
        let text = "GET /health 200 12ms\n".repeat(PART / 20);
        assert!(!looks_random(text.as_bytes()));
        let stored = Deflaters::new(6).gzip_chunk(&random).unwrap();
        // A stored member: the data plus a few bytes of framing per 64 KiB block.
        assert!(
            stored.len() > random.len() && stored.len() < random.len() + 64,
            "{}",
            stored.len()
        );
    }

    #[test]
    fn zstd_and_none_round_trip() {
        let data = sample();
        for codec in [Codec::Zstd, Codec::None] {
            let mut writer = Compressor::new(Vec::new(), codec, codec.default_level(), 2).unwrap();
            writer.write_all(&data).unwrap();
            let packed = writer.finish().unwrap();
            let mut back = Vec::new();
            ugw_shared::unpack::decoder(&packed[..])
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "{codec:?}");
        }
    }
}
