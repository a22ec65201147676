//! A real HTTP/1.1 file server on 127.0.0.1:0 for the download tests: files with an `ETag`,
//! `Range`/`If-Range` answered as a release server does, and faults on demand (a status for
//! the first requests, a body cut short, a throttled body). It logs every request it reads,
//! so a test can assert on what the server saw.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One file and how the server misbehaves with it.
#[derive(Clone, Default)]
pub struct Served {
    pub body: Vec<u8>,
    pub etag: String,
    /// Answer this status (no body) to the first `fail_first.0` requests.
    pub fail_first: (usize, u16),
    /// The first `cut_first.0` answers stop after `cut_first.1` body bytes (the connection drops).
    pub cut_first: (usize, usize),
    /// Pause this long after each 64 KiB of body.
    pub throttle: Option<Duration>,
    /// Whether `Range` requests are honoured.
    pub ranges: bool,
    /// After this many requests the file is replaced by another (a new build uploaded
    /// under the same name), served without faults.
    pub changes_after: Option<(usize, Box<Served>)>,
}

impl Served {
    pub fn new(body: &[u8]) -> Served {
        Served {
            body: body.to_vec(),
            etag: format!(
                "\"{:x}\"",
                body.len() * 31 + body.first().copied().unwrap_or(0) as usize
            ),
            ranges: true,
            ..Served::default()
        }
    }
}

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub headers: String,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Served>,
    /// Requests per path so far.
    counts: HashMap<String, usize>,
    log: Vec<Seen>,
}

pub struct FileServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl FileServer {
    pub fn start() -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = Arc::clone(&state);
                    std::thread::spawn(move || serve(stream, &state));
                }
            })
        };
        FileServer {
            addr,
            state,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// Serve `file` at `/name`; returns its URL.
    pub fn put(&self, name: &str, file: Served) -> String {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(format!("/{name}"), file);
        self.url(name)
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// Every request read so far.
    pub fn log(&self) -> Vec<Seen> {
        self.state.lock().unwrap().log.clone()
    }

    /// Requests for `/name` so far.
    pub fn requests_for(&self, name: &str) -> usize {
        let path = format!("/{name}");
        self.log().iter().filter(|s| s.path == path).count()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn serve(mut stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) if head.len() < 64 * 1024 => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let seen = Seen {
        path: path.clone(),
        range: header(&head, "range").map(str::to_string),
        if_range: header(&head, "if-range").map(str::to_string),
        headers: head.clone(),
    };
    let (file, count) = {
        let mut state = state.lock().unwrap();
        state.log.push(seen.clone());
        let count = state.counts.entry(path.clone()).or_insert(0);
        *count += 1;
        let count = *count;
        (state.files.get(&path).cloned(), count)
    };
    let file = match file {
        Some(Served {
            changes_after: Some((after, next)),
            ..
        }) if count > after => Some(Served {
            fail_first: (0, 0),
            cut_first: (0, 0),
            ..*next
        }),
        other => other,
    };
    let Some(file) = file else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    if count <= file.fail_first.0 {
        let status = file.fail_first.1;
        let _ = write!(
            stream,
            "HTTP/1.1 {status} Failing\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    }
    let start = match (&seen.range, file.ranges) {
        (Some(range), true) if seen.if_range.as_deref().is_none_or(|v| v == file.etag) => range
            .trim()
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= file.body.len()),
        _ => None,
    };
    let body = &file.body[start.unwrap_or(0)..];
    let status_line = match start {
        Some(from) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{}\r\n",
            file.body.len().saturating_sub(1),
            file.body.len()
        ),
        None => "HTTP/1.1 200 OK\r\n".to_string(),
    };
    let _ = write!(
        stream,
        "{status_line}Content-Length: {}\r\nETag: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
        body.len(),
        file.etag
    );
    let limit = if count <= file.fail_first.0 + file.cut_first.0 {
        file.cut_first.1.min(body.len())
    } else {
        body.len()
    };
    for chunk in body[..limit].chunks(64 * 1024) {
        if stream.write_all(chunk).is_err() {
            return;
        }
        if let Some(pause) = file.throttle {
            std::thread::sleep(pause);
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}

/// A body of `len` bytes that is not all alike, so a misplaced range or a spliced resume shows.
pub fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}
