//! The HTTP/1.1 plumbing: the accept loop, one thread per connection,
//! request-head parsing, keep-alive, optional TLS, and the graceful drain
//! that ugw's upgrade tests depend on.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::behaviour::{App, Outcome};

/// Longest request head we accept; beyond it the client gets 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// Longest request body we are willing to read (and discard).
pub const MAX_BODY: u64 = 1024 * 1024;
/// How long a connection may sit without a complete request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Reads wake up this often so idle and hung connections notice a shutdown
/// promptly without any cross-thread bookkeeping.
const TICK: Duration = Duration::from_millis(20);
/// A client that stops reading must not pin a thread forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the drain waits for in-flight work before exiting anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// After rejecting a request the client may still be sending; reading that
/// for a moment before closing keeps the kernel from answering with a reset
/// that would destroy our error response.
const LINGER: Duration = Duration::from_millis(500);

/// Counters shared by all connections; `/metrics` reports them.
#[derive(Default)]
pub struct Stats {
    requests: AtomicU64,
    in_flight: AtomicU64,
    by_code: Mutex<BTreeMap<u16, u64>>,
    durations: Mutex<BTreeMap<&'static str, Durations>>,
}

/// Upper bounds (seconds) of the request-duration histogram's buckets; `+Inf` follows.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// One route's request durations: per-bucket (not cumulative) counts, the last for `+Inf`.
#[derive(Default, Clone)]
pub struct Durations {
    pub counts: [u64; DURATION_BUCKETS.len() + 1],
    pub sum_seconds: f64,
}

/// The `path` label of a request: its route, so a client cannot grow the label set.
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/health/ready" => "/health/ready",
        "/health/live" => "/health/live",
        "/health/lb" => "/health/lb",
        "/metrics" => "/metrics",
        "/work" => "/work",
        "/slow" => "/slow",
        "/debug/echo" => "/debug/echo",
        "/redirect" => "/redirect",
        _ if path == "/items" || path.starts_with("/items/") => "/items",
        _ => "other",
    }
}

impl Stats {
    /// Requests currently between "head read" and "response written".
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Responses sent so far, by status code, in code order.
    pub fn answered(&self) -> Vec<(u16, u64)> {
        let by_code = self.by_code.lock().unwrap_or_else(PoisonError::into_inner);
        by_code
            .iter()
            .map(|(code, count)| (*code, *count))
            .collect()
    }

    /// Request durations by route, in route order.
    pub fn durations(&self) -> Vec<(&'static str, Durations)> {
        let durations = self
            .durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        durations.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    fn observe(&self, route: &'static str, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(DURATION_BUCKETS.len());
        let mut durations = self
            .durations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = durations.entry(route).or_default();
        entry.counts[bucket] += 1;
        entry.sum_seconds += seconds;
    }

    fn served(&self) -> u64 {
        self.answered().iter().map(|(_, count)| count).sum()
    }

    fn record(&self, code: u16) {
        let mut by_code = self.by_code.lock().unwrap_or_else(PoisonError::into_inner);
        *by_code.entry(code).or_insert(0) += 1;
    }
}

/// Holds a request in the in-flight gauge until dropped, even on a panic.
struct InFlight<'a>(&'a Stats);

impl<'a> InFlight<'a> {
    fn begin(stats: &'a Stats) -> Self {
        stats.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(stats)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts live connection threads so the drain knows when it is done.
struct Live<'a>(&'a AtomicUsize);

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// A parsed request head. The body, if any, is read and thrown away.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub version: Version,
    /// Names as the client spelled them, values with surrounding blanks
    /// trimmed, in arrival order.
    pub headers: Vec<(String, String)>,
    pub content_length: u64,
    /// The body (at most `MAX_BODY`), read once the head is parsed.
    pub body: Vec<u8>,
    /// A Transfer-Encoding body cannot be skipped without decoding it, so
    /// such a connection is closed after the response instead.
    pub unframed_body: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn connection_has(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    pub fn keep_alive(&self) -> bool {
        self.version == Version::Http11 && !self.connection_has("close") && !self.unframed_body
    }
}

/// Why a request head was refused; each maps to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    BadRequest(&'static str),
    VersionNotSupported,
}

impl ParseError {
    fn status(self) -> u16 {
        match self {
            ParseError::BadRequest(_) => 400,
            ParseError::VersionNotSupported => 505,
        }
    }

    fn message(self) -> &'static str {
        match self {
            ParseError::BadRequest(why) => why,
            ParseError::VersionNotSupported => "HTTP version not supported",
        }
    }
}

/// Where the head in `buf` ends (just past its empty line), accepting bare
/// LF line ends as RFC 9112 allows. `buf` must not start with blank lines.
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &byte) in buf.iter().enumerate() {
        if byte == b'\n' {
            let line = &buf[line_start..i];
            if line_start > 0 && (line.is_empty() || line == b"\r") {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn is_token(text: &[u8]) -> bool {
    !text.is_empty() && text.iter().copied().all(is_tchar)
}

/// Parses a request head (request line, header lines, empty line).
pub fn parse_head(head: &[u8]) -> Result<Request, ParseError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadRequest("malformed request line"));
    };
    if !is_token(method) {
        return Err(ParseError::BadRequest("malformed method"));
    }
    if target.is_empty() || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ParseError::BadRequest("malformed request target"));
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(ParseError::VersionNotSupported);
        }
        _ => return Err(ParseError::BadRequest("malformed HTTP version")),
    };
    // Every byte checked above is visible ASCII, so this never loses data.
    let target = String::from_utf8_lossy(target);
    let (path, query) = split_target(&target)?;

    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(ParseError::BadRequest("obsolete header line folding"));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(ParseError::BadRequest("header line without a colon"));
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if !is_token(name) {
            return Err(ParseError::BadRequest("malformed header name"));
        }
        let value = value.trim_ascii();
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(ParseError::BadRequest(
                "control character in a header value",
            ));
        }
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }

    let mut content_length = None;
    for (_, value) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        for item in value.split(',') {
            let item = item.trim();
            let length: u64 = (!item.is_empty() && item.bytes().all(|b| b.is_ascii_digit()))
                .then(|| item.parse().ok())
                .flatten()
                .ok_or(ParseError::BadRequest("malformed Content-Length"))?;
            if content_length.is_some_and(|seen| seen != length) {
                return Err(ParseError::BadRequest("conflicting Content-Length"));
            }
            content_length = Some(length);
        }
    }
    let chunked = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
    if chunked && content_length.is_some() {
        // Both framings at once is the classic request-smuggling setup.
        return Err(ParseError::BadRequest(
            "both Content-Length and Transfer-Encoding",
        ));
    }

    Ok(Request {
        method: String::from_utf8_lossy(method).into_owned(),
        path,
        query,
        version,
        headers,
        content_length: content_length.unwrap_or(0),
        body: Vec::new(),
        unframed_body: chunked,
    })
}

/// Splits a request target into path and raw query. The absolute form
/// (`http://host/path`), which proxies send, is reduced to its path.
fn split_target(target: &str) -> Result<(String, Option<String>), ParseError> {
    let origin = if target.starts_with('/') || target == "*" {
        target
    } else if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        rest.find(['/', '?']).map_or("/", |i| &rest[i..])
    } else {
        return Err(ParseError::BadRequest("malformed request target"));
    };
    let (path, query) = match origin.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (origin, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    Ok((path.to_owned(), query))
}

/// A response before framing; `Server`, `Content-Length` and `Connection`
/// are added when it is written.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }

    pub fn text(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn to_bytes(&self, head_only: bool, close: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nServer: ugw-demo-app\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str(if close {
            "Connection: close\r\n\r\n"
        } else {
            "Connection: keep-alive\r\n\r\n"
        });
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => match status / 100 {
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

/// A byte stream to a client, plain or TLS, with access to the socket under
/// it for timeouts and shutdown.
trait Transport: Read + Write {
    fn tcp(&self) -> &TcpStream;

    /// Ends the conversation politely (TLS sends `close_notify`).
    fn finish(&mut self) {}
}

impl Transport for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Transport for StreamOwned<ServerConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }

    fn finish(&mut self) {
        self.conn.send_close_notify();
        let _ = self.flush();
    }
}

/// State shared by the accept loop and every connection thread.
struct Shared {
    app: App,
    stats: Stats,
    log_requests: bool,
    shutdown: Arc<AtomicBool>,
    live: AtomicUsize,
}

pub struct Server {
    shared: Arc<Shared>,
    tls: Option<Arc<ServerConfig>>,
}

impl Server {
    pub fn new(
        app: App,
        tls: Option<Arc<ServerConfig>>,
        log_requests: bool,
        shutdown: Arc<AtomicBool>,
    ) -> Self {
        Server {
            shared: Arc::new(Shared {
                app,
                stats: Stats::default(),
                log_requests,
                shutdown,
                live: AtomicUsize::new(0),
            }),
            tls,
        }
    }

    /// Serves until the shutdown flag is raised (and the accept is woken),
    /// then drains. Clears `accepting` once the listener is closed. Returns
    /// how many responses were sent.
    pub fn run(self, listener: TcpListener, accepting: &AtomicBool) -> u64 {
        let shared = &self.shared;
        loop {
            let accepted = listener.accept();
            if shared.shutdown.load(Ordering::SeqCst) {
                break;
            }
            match accepted {
                Ok((stream, _)) => self.spawn_connection(stream),
                Err(e) => {
                    // Typically out of file descriptors: back off rather
                    // than spin, and keep serving the connections we have.
                    eprintln!("ugw-demo-app: accept failed: {e}");
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
        drop(listener);
        accepting.store(false, Ordering::SeqCst);

        let deadline = Instant::now() + DRAIN_LIMIT;
        while shared.live.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        shared.stats.served()
    }

    fn spawn_connection(&self, stream: TcpStream) {
        let shared = Arc::clone(&self.shared);
        let tls = self.tls.clone();
        shared.live.fetch_add(1, Ordering::SeqCst);
        let spawned = thread::Builder::new()
            .name("connection".into())
            .spawn(move || {
                let _live = Live(&shared.live);
                serve_stream(stream, tls, &shared);
            });
        if let Err(e) = spawned {
            // The closure (and its `Live` guard) never ran.
            self.shared.live.fetch_sub(1, Ordering::SeqCst);
            eprintln!("ugw-demo-app: cannot start a connection thread: {e}");
        }
    }
}

fn serve_stream(stream: TcpStream, tls: Option<Arc<ServerConfig>>, shared: &Shared) {
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(TICK)).is_err()
        || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return;
    }
    let _ = stream.set_nodelay(true);
    match tls {
        None => Connection::new(stream, shared).serve(),
        // The handshake runs lazily inside the first read; a client that
        // fails it surfaces as a read error and is simply dropped.
        Some(config) => {
            if let Ok(conn) = ServerConnection::new(config) {
                Connection::new(StreamOwned::new(conn, stream), shared).serve();
            }
        }
    }
}

enum Fill {
    Data,
    Tick,
    Closed,
}

enum Head {
    Complete(usize),
    TooLarge,
    Closed,
}

struct Connection<'a, T: Transport> {
    io: T,
    buf: Vec<u8>,
    shared: &'a Shared,
}

impl<'a, T: Transport> Connection<'a, T> {
    fn new(io: T, shared: &'a Shared) -> Self {
        Connection {
            io,
            buf: Vec::with_capacity(4096),
            shared,
        }
    }

    fn stopping(&self) -> bool {
        self.shared.shutdown.load(Ordering::SeqCst)
    }

    fn serve(mut self) {
        self.serve_requests();
        self.io.finish();
    }

    fn serve_requests(&mut self) {
        loop {
            let head_len = match self.read_head() {
                Head::Complete(len) => len,
                Head::Closed => return,
                Head::TooLarge => return self.reject(431, "request head too large"),
            };
            let parsed = parse_head(&self.buf[..head_len]);
            self.buf.drain(..head_len);
            let mut request = match parsed {
                Ok(request) => request,
                Err(e) => return self.reject(e.status(), e.message()),
            };
            let stats = &self.shared.stats;
            let n = stats.requests.fetch_add(1, Ordering::SeqCst) + 1;
            if self.shared.log_requests {
                // Path only: queries (e.g. /redirect?to=...) may carry
                // things that do not belong in logs, and so may headers.
                eprintln!(
                    "ugw-demo-app: request {n} {} {}",
                    request.method, request.path
                );
            }
            if request.content_length > MAX_BODY {
                return self.reject(413, "request body too large");
            }
            if !self.read_body(&mut request) {
                return;
            }

            let began = Instant::now();
            let in_flight = InFlight::begin(stats);
            let Outcome::Respond(response) = self.shared.app.handle(&request, stats) else {
                drop(in_flight);
                return self.hang();
            };
            let close = !request.keep_alive() || self.stopping();
            let sent = self.send(&response, request.method == "HEAD", close);
            drop(in_flight);
            stats.observe(route_label(&request.path), began.elapsed());
            if !sent || close {
                return;
            }
        }
    }

    /// Reads into `buf` once, waiting at most one tick.
    fn fill(&mut self) -> Fill {
        let mut chunk = [0u8; 8192];
        match self.io.read(&mut chunk) {
            Ok(0) => Fill::Closed,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Fill::Data
            }
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Fill::Tick,
                // Resets, TLS handshake failures, unclean TLS EOFs.
                _ => Fill::Closed,
            },
        }
    }

    fn read_head(&mut self) -> Head {
        let deadline = Instant::now() + IDLE_TIMEOUT;
        loop {
            // Blank lines before a request line are tolerated (RFC 9112
            // section 2.2); some clients send one after a body.
            let blank = self
                .buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            self.buf.drain(..blank);
            if let Some(end) = find_head_end(&self.buf) {
                return if end > MAX_HEAD {
                    Head::TooLarge
                } else {
                    Head::Complete(end)
                };
            }
            if self.buf.len() > MAX_HEAD {
                return Head::TooLarge;
            }
            // Idle (or half-sent) connections are closed on shutdown: only
            // requests whose head has arrived count as in flight.
            if !self.more(Some(deadline)) {
                return Head::Closed;
            }
        }
    }

    /// Reads the request body into `request.body`. False if the connection ended.
    fn read_body(&mut self, request: &mut Request) -> bool {
        let Ok(mut remaining) = usize::try_from(request.content_length) else {
            return false;
        };
        if remaining > self.buf.len()
            && request.version == Version::Http11
            && request
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            // Without this, curl and friends pause a second before sending.
            let _ = self.io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            let _ = self.io.flush();
        }
        let deadline = Instant::now() + IDLE_TIMEOUT;
        loop {
            let take = remaining.min(self.buf.len());
            request.body.extend(self.buf.drain(..take));
            remaining -= take;
            if remaining == 0 {
                return true;
            }
            if !self.more(Some(deadline)) {
                return false;
            }
        }
    }

    /// Waits for more bytes in `buf`. False once the client is gone, the
    /// server is stopping, or `deadline` has passed.
    fn more(&mut self, deadline: Option<Instant>) -> bool {
        loop {
            match self.fill() {
                Fill::Data => return true,
                Fill::Closed => return false,
                Fill::Tick => {
                    if self.stopping() || deadline.is_some_and(|d| Instant::now() >= d) {
                        return false;
                    }
                }
            }
        }
    }

    /// Holds a request unanswered until the client leaves or we stop;
    /// whatever else arrives is read and dropped so a departed client is
    /// noticed.
    fn hang(&mut self) {
        while self.more(None) {
            self.buf.clear();
        }
    }

    /// Writes a response; false if the client is gone.
    fn send(&mut self, response: &Response, head_only: bool, close: bool) -> bool {
        let slow = self.shared.app.slow();
        if !slow.is_zero() {
            thread::sleep(slow);
        }
        self.shared.stats.record(response.status);
        let bytes = response.to_bytes(head_only, close);
        // Broken pipes and resets just end the connection.
        self.io
            .write_all(&bytes)
            .and_then(|()| self.io.flush())
            .is_ok()
    }

    /// Answers a request we could not (or would not) read, then closes.
    fn reject(&mut self, status: u16, why: &str) {
        let response = Response::json(status, &serde_json::json!({ "error": why }));
        if self.send(&response, false, true) {
            self.io.finish();
            self.linger();
        }
    }

    fn linger(&mut self) {
        let tcp = self.io.tcp();
        if tcp.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        let mut sink = [0u8; 8192];
        let mut budget: usize = 256 * 1024;
        let mut tcp: &TcpStream = tcp;
        while budget > 0 && Instant::now() < deadline {
            match tcp.read(&mut sink) {
                Ok(0) => return,
                Ok(n) => budget = budget.saturating_sub(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Request, ParseError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn parses_a_simple_request() {
        let r =
            parse("GET /debug/echo?a=1&b=2 HTTP/1.1\r\nHost: x\r\nX-Thing:  two words \r\n\r\n")
                .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/debug/echo");
        assert_eq!(r.query.as_deref(), Some("a=1&b=2"));
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.header("x-thing"), Some("two words"));
        assert_eq!(r.header("HOST"), Some("x"));
        assert_eq!(r.content_length, 0);
        assert!(r.keep_alive());
    }

    #[test]
    fn connection_semantics() {
        assert!(
            !parse("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n")
                .unwrap()
                .keep_alive()
        );
        assert!(!parse("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive());
        assert!(
            !parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap()
                .keep_alive()
        );
        let chunked = parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert!(chunked.unframed_body && !chunked.keep_alive());
    }

    #[test]
    fn accepts_bare_lf_and_absolute_form() {
        let r = parse("HEAD http://example.test:8080/health/ready?x HTTP/1.0\n\n").unwrap();
        assert_eq!(r.method, "HEAD");
        assert_eq!(r.path, "/health/ready");
        assert_eq!(r.query.as_deref(), Some("x"));
        assert_eq!(
            parse("GET http://example.test HTTP/1.1\r\n\r\n")
                .unwrap()
                .path,
            "/"
        );
    }

    #[test]
    fn content_length() {
        let r = parse("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n").unwrap();
        assert_eq!(r.content_length, 12);
        let same = parse("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n").unwrap();
        assert_eq!(same.content_length, 5);
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "\r\n\r\n",
            "hello\r\n\r\n",
            "GET /\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1 extra\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
            "GET nopath HTTP/1.1\r\n\r\n",
            "GET /\x01 HTTP/1.1\r\n\r\n",
            "GET / HTTQ/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nName : x\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad).map(|_| ()).map_err(ParseError::status),
                Err(400),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse("GET / HTTP/2.0\r\n\r\n").unwrap_err(),
            ParseError::VersionNotSupported
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nA: \xff\r\n\r\n")
                .unwrap()
                .header("a"),
            Some("\u{fffd}")
        );
    }

    #[test]
    fn finds_the_end_of_a_head() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nbody"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r"), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
        assert_eq!(find_head_end(b""), None);
    }

    #[test]
    fn frames_responses() {
        let response = Response::text(503, "text/plain", "no").with_header("Retry-After", "3");
        let full = String::from_utf8(response.to_bytes(false, false)).unwrap();
        assert!(full.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(full.contains("\r\nContent-Length: 2\r\n"));
        assert!(full.contains("\r\nRetry-After: 3\r\n"));
        assert!(full.contains("\r\nServer: ugw-demo-app\r\n"));
        assert!(full.ends_with("\r\nConnection: keep-alive\r\n\r\nno"));
        let head = String::from_utf8(response.to_bytes(true, true)).unwrap();
        assert!(head.contains("\r\nContent-Length: 2\r\n"));
        assert!(head.ends_with("\r\nConnection: close\r\n\r\n"));
    }
}
