//! The download: streamed into the temp file and hashed as it arrives, never held in memory.
//! Transient failures (connect errors, timeouts, 5xx, 429, a body cut short) are retried with
//! backoff within the deadline; a partial file is resumed with `Range` and `If-Range`, so a
//! file that changed on the server restarts from zero, and the digest always covers every byte.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};
use ugw_shared::atomic::AtomicFile;
use ugw_shared::digest::BackgroundSha256;
use ugw_shared::http::{HttpClient, Request, Response};
use ugw_shared::poll::Backoff;
use ugw_shared::report::Progress;
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// Read size: large enough that syscalls do not dominate, small enough to stay far below the
/// memory budget.
const CHUNK: usize = 256 * 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// What arrived.
#[derive(Debug)]
pub(crate) struct Downloaded {
    pub bytes: u64,
    pub sha256: String,
    /// A later attempt continued where an earlier one broke off.
    pub resumed: bool,
    pub attempts: u32,
}

/// Limits every download obeys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_bytes: Option<u64>,
    pub deadline: Instant,
}

/// Why one attempt did not finish.
enum Failed {
    /// Worth another attempt (after a backoff, or the server's `Retry-After`).
    Transient(String, Option<Duration>),
    Final(Error),
}

/// The state kept between attempts: what is in the file, and how to ask for the rest.
struct Partial {
    written: u64,
    hasher: BackgroundSha256,
    /// The `ETag` (strong) or `Last-Modified` of the answer the bytes came from.
    validator: Option<String>,
    resumed: bool,
}

/// Download `url` into `file` (a temp file), retrying and resuming until the deadline.
pub(crate) fn http(
    ctx: &Ctx,
    client: &HttpClient,
    url: &str,
    file: &mut AtomicFile,
    dest: &Path,
    limits: Limits,
) -> Result<Downloaded> {
    let mut partial = Partial {
        written: 0,
        hasher: BackgroundSha256::new(CHUNK),
        validator: None,
        resumed: false,
    };
    let progress = ctx.reporter.progress(None).in_bytes();
    progress.set_message(&format!("downloading {}", file_label(url)));
    let mut backoff = Backoff::exponential(FIRST_BACKOFF).until(limits.deadline);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt(
            ctx,
            client,
            url,
            file,
            dest,
            limits,
            &mut partial,
            &progress,
        ) {
            Ok(()) => {
                return Ok(Downloaded {
                    bytes: partial.written,
                    sha256: partial.hasher.finish(),
                    resumed: partial.resumed,
                    attempts,
                });
            }
            Err(Failed::Final(e)) => return Err(e),
            Err(Failed::Transient(why, retry_after)) => {
                ctx.cancel.check()?;
                let Some(next) = backoff.next_from(Instant::now(), retry_after) else {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "the download did not finish before the deadline (last attempt: {why})"
                        ),
                    ));
                };
                ctx.reporter.warn(&format!(
                    "attempt {attempts} failed ({why}); {} after {}",
                    if partial.written > 0 {
                        "resuming"
                    } else {
                        "retrying"
                    },
                    ugw_shared::time::human(next.wait)
                ));
                ctx.cancel.sleep_until(next.at)?;
            }
        }
    }
}

fn file_label(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one attempt needs the whole download's state"
)]
fn attempt(
    ctx: &Ctx,
    client: &HttpClient,
    url: &str,
    file: &mut AtomicFile,
    dest: &Path,
    limits: Limits,
    partial: &mut Partial,
    progress: &Progress,
) -> Result<(), Failed> {
    let resuming = partial.written > 0 && partial.validator.is_some();
    let mut response = send(ctx, client, url, limits, partial, resuming)?;
    let answered_validator = validator_of(&response);
    take_answer(
        url,
        &response,
        answered_validator.as_ref(),
        resuming,
        file,
        partial,
        progress,
    )?;
    partial.validator = answered_validator;
    let total = response.content_length().map(|len| len + partial.written);
    if let Some(total) = total {
        check_room(total, partial.written, limits.max_bytes, dest).map_err(Failed::Final)?;
        progress.set_length(total);
    }
    progress.set_position(partial.written);
    stream_body(ctx, &mut response.body, file, limits, partial, progress)?;
    match total {
        Some(total) if partial.written < total => Err(Failed::Transient(
            format!("the body ended after {} of {total} bytes", partial.written),
            None,
        )),
        _ => Ok(()),
    }
}

/// The request of one attempt (for the rest of the file when `resuming`), sent: the answer's
/// head, or why there is none.
fn send(
    ctx: &Ctx,
    client: &HttpClient,
    url: &str,
    limits: Limits,
    partial: &Partial,
    resuming: bool,
) -> Result<Response, Failed> {
    let mut request = Request::get(url);
    if resuming {
        let validator = partial.validator.clone().unwrap_or_default();
        request = request
            .header("Range", &format!("bytes={}-", partial.written))
            .header("If-Range", &validator);
    }
    client
        .send(request, limits.deadline, &ctx.cancel)
        .map_err(|e| match ctx.cancel.check() {
            Err(cancelled) => Failed::Final(cancelled),
            Ok(()) if e.permanent => Failed::Final(Error::new(
                ErrorKind::Network,
                format!("cannot fetch {url}: {}", e.message),
            )),
            Ok(()) => Failed::Transient(e.message, None),
        })
}

/// Whether the answer's body is the one to write: the whole file (from zero), or the rest of
/// the version whose bytes are in the file already. Anything else is a failure, to retry or
/// not; a body of another version empties the file first.
fn take_answer(
    url: &str,
    response: &Response,
    answered_validator: Option<&String>,
    resuming: bool,
    file: &mut AtomicFile,
    partial: &mut Partial,
    progress: &Progress,
) -> Result<(), Failed> {
    let status = response.status;
    let same_version = answered_validator == partial.validator.as_ref();
    match status {
        // A 206 to a request that asked for no range is a server that cannot be trusted with
        // the bytes: another attempt would only repeat it (issue 20 item 10).
        206 if !resuming => Err(Failed::Final(Error::new(
            ErrorKind::Network,
            format!(
                "{url} answered 206 Partial Content to a request for the whole file; \
                 refusing its bytes"
            ),
        ))),
        // The rest of the file the bytes so far came from, and only that one: a 206 of
        // another version (the server ignored If-Range) would splice two files (item 12).
        206 if content_range_start(response.header("content-range")) == Some(partial.written)
            && same_version =>
        {
            partial.resumed = true;
            Ok(())
        }
        206 if !same_version => {
            start_over(file, partial, progress)?;
            partial.validator = None;
            Err(Failed::Transient(
                "the rest of the file came from another version of it (its ETag or \
                 Last-Modified changed; the server ignored If-Range); starting over"
                    .into(),
                None,
            ))
        }
        200 | 206 => {
            // A full answer (the file changed, or the server ignores ranges): from zero.
            if partial.written > 0 {
                start_over(file, partial, progress)?;
            }
            if status == 206 {
                return Err(Failed::Transient(
                    "a range answer that does not fit; starting over".into(),
                    None,
                ));
            }
            Ok(())
        }
        429 | 500..=599 => Err(Failed::Transient(
            format!("HTTP {status}"),
            response.retry_after(),
        )),
        404 | 410 => Err(Failed::Final(Error::new(
            ErrorKind::NotFound,
            format!("{url} answered HTTP {status}: no such artifact"),
        ))),
        _ => Err(Failed::Final(Error::new(
            ErrorKind::Network,
            format!("{url} answered HTTP {status} {}", response.reason),
        ))),
    }
}

/// Empty the file and the hasher: the bytes so far are not part of the body to come.
fn start_over(
    file: &mut AtomicFile,
    partial: &mut Partial,
    progress: &Progress,
) -> Result<(), Failed> {
    file.restart().map_err(Failed::Final)?;
    partial.written = 0;
    partial.hasher.reset();
    progress.set_position(0);
    Ok(())
}

/// Read the body to its end into the file and the hasher, within the limits.
fn stream_body(
    ctx: &Ctx,
    body: &mut impl Read,
    file: &mut AtomicFile,
    limits: Limits,
    partial: &mut Partial,
    progress: &Progress,
) -> Result<(), Failed> {
    loop {
        let mut buf = partial.hasher.buffer();
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                ctx.cancel.check().map_err(Failed::Final)?;
                if Instant::now() >= limits.deadline {
                    return Err(Failed::Final(Error::new(
                        ErrorKind::Timeout,
                        "the download did not finish before the deadline",
                    )));
                }
                return Err(Failed::Transient(format!("the body broke off: {e}"), None));
            }
        };
        if limits
            .max_bytes
            .is_some_and(|max| partial.written + n as u64 > max)
        {
            return Err(Failed::Final(too_large(
                limits.max_bytes.unwrap_or_default(),
            )));
        }
        file.write_all(&buf[..n])
            .map_err(|e| Failed::Final(write_error(&e, file)))?;
        partial.hasher.update(buf, n);
        partial.written += n as u64;
        ugw_shared::failpoint::hit("fetch.mid-download");
        progress.inc(n as u64);
    }
}

/// What identifies the version of the file an answer holds: its strong `ETag`, else its
/// `Last-Modified`.
fn validator_of(response: &Response) -> Option<String> {
    response
        .header("etag")
        .filter(|e| !e.starts_with("W/"))
        .or_else(|| response.header("last-modified"))
        .map(str::to_string)
}

/// The first byte of a `Content-Range: bytes 100-199/200` answer.
fn content_range_start(value: Option<&str>) -> Option<u64> {
    let range = value?.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

/// Refuse a body larger than `--max-bytes`, or one the file system has no room for.
fn check_room(total: u64, written: u64, max_bytes: Option<u64>, dest: &Path) -> Result<()> {
    if let Some(max) = max_bytes
        && total > max
    {
        return Err(too_large(max));
    }
    ugw_shared::space::ensure_room(dest, total.saturating_sub(written), "the artifact")
}

fn too_large(max: u64) -> Error {
    Error::new(
        ErrorKind::UnsafeInput,
        format!("the artifact is larger than --max-bytes {max}; refused"),
    )
}

fn write_error(e: &std::io::Error, file: &AtomicFile) -> Error {
    Error::io_write(format!("cannot write {}", file.temp_path().display()), e)
}

/// Copy a local file (`file://`) into `file`, hashed on the way, within the limits.
pub(crate) fn local(
    ctx: &Ctx,
    source: &Path,
    file: &mut AtomicFile,
    dest: &Path,
    limits: Limits,
) -> Result<Downloaded> {
    if let Some(refused) = ugw_shared::atomic::link_refused(source, "the file:// URL's file") {
        return Err(refused);
    }
    let mut reader = ugw_shared::atomic::open_regular(source).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        Error::new(kind, format!("cannot open {}: {e}", source.display()))
    })?;
    let len = reader
        .metadata()
        .map_err(|e| Error::io(format!("cannot read {}", source.display()), &e))?
        .len();
    check_room(len, 0, limits.max_bytes, dest)?;
    let progress = ctx.reporter.progress(Some(len)).in_bytes();
    let hasher = BackgroundSha256::new(CHUNK);
    let mut written = 0u64;
    loop {
        ctx.cancel.check()?;
        let mut buf = hasher.buffer();
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("cannot read {}", source.display()), &e)),
        };
        if limits.max_bytes.is_some_and(|max| written + n as u64 > max) {
            return Err(too_large(limits.max_bytes.unwrap_or_default()));
        }
        file.write_all(&buf[..n])
            .map_err(|e| write_error(&e, file))?;
        hasher.update(buf, n);
        written += n as u64;
        progress.inc(n as u64);
    }
    Ok(Downloaded {
        bytes: written,
        sha256: hasher.finish(),
        resumed: false,
        attempts: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_are_read() {
        assert_eq!(content_range_start(Some("bytes 100-199/200")), Some(100));
        assert_eq!(content_range_start(Some("bytes */200")), None);
        assert_eq!(content_range_start(None), None);
    }
}
