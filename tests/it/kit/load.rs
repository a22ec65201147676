//! A constant-rate HTTP load generator of our own (wrk and ab hold a concurrency, not a
//! rate): N requests a second to one URL on their schedule whatever the answers take, each on
//! a fresh connection, counting 2xx answers, other answers and failures (refused, reset, no
//! answer). Bounded in time and in requests outstanding, so a hung server cannot hang a test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one request may take before it counts as failed.
const REQUEST_LIMIT: Duration = Duration::from_secs(30);
/// Requests outstanding at once; past it a request due is not sent and counted `skipped`.
const MAX_OUTSTANDING: u64 = 512;
/// Failures kept word for word, for the test's message.
const KEEP_FAILURES: usize = 20;

/// What the load saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Requests sent (each due on the schedule and not skipped).
    pub sent: u64,
    /// Answered 2xx.
    pub ok: u64,
    /// Answered with another status.
    pub non_2xx: u64,
    /// No answer: refused, reset, closed, or past the request limit.
    pub failed: u64,
    /// Due but not sent because too many were outstanding.
    pub skipped: u64,
}

impl Tally {
    /// Requests that did not get a 2xx (or were not sent).
    pub fn bad(&self) -> u64 {
        self.non_2xx + self.failed + self.skipped
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    ok: AtomicU64,
    non_2xx: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    outstanding: AtomicU64,
    failures: Mutex<Vec<String>>,
}

/// Load running in the background; stopped (and its requests waited for) by `stop` or drop.
pub struct Load {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    scheduler: Option<JoinHandle<()>>,
}

impl Load {
    /// `per_second` GET requests a second to `url` (`http://HOST:PORT/path`), for at most
    /// `limit`.
    pub fn start(url: &str, per_second: u32, limit: Duration) -> Load {
        let (addr, host, path) = split_url(url);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let interval = Duration::from_secs(1) / per_second.max(1);
        let scheduler = {
            let (stop, counters) = (Arc::clone(&stop), Arc::clone(&counters));
            std::thread::spawn(move || {
                let started = Instant::now();
                for n in 0u32.. {
                    let due = started + interval * n;
                    while Instant::now() < due && !stop.load(Ordering::SeqCst) {
                        std::thread::sleep((due - Instant::now()).min(Duration::from_millis(5)));
                    }
                    if stop.load(Ordering::SeqCst) || started.elapsed() >= limit {
                        break;
                    }
                    if counters.outstanding.load(Ordering::SeqCst) >= MAX_OUTSTANDING {
                        counters.skipped.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    counters.outstanding.fetch_add(1, Ordering::SeqCst);
                    counters.sent.fetch_add(1, Ordering::SeqCst);
                    let counters = Arc::clone(&counters);
                    let (host, path) = (host.clone(), path.clone());
                    std::thread::spawn(move || {
                        let outcome = get(addr, &host, &path);
                        counters.count(outcome);
                    });
                }
            })
        };
        Load {
            stop,
            counters,
            scheduler: Some(scheduler),
        }
    }

    /// The counts so far.
    pub fn tally(&self) -> Tally {
        let c = &self.counters;
        Tally {
            sent: c.sent.load(Ordering::SeqCst),
            ok: c.ok.load(Ordering::SeqCst),
            non_2xx: c.non_2xx.load(Ordering::SeqCst),
            failed: c.failed.load(Ordering::SeqCst),
            skipped: c.skipped.load(Ordering::SeqCst),
        }
    }

    /// The first failures and non-2xx answers, described.
    pub fn failures(&self) -> Vec<String> {
        self.counters.failures.lock().unwrap().clone()
    }

    /// Stop sending, wait for the requests outstanding (at most the request limit), count.
    pub fn stop(mut self) -> Tally {
        self.finish();
        self.tally()
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(scheduler) = self.scheduler.take() {
            let _ = scheduler.join();
        }
        let until = Instant::now() + REQUEST_LIMIT + Duration::from_secs(1);
        while self.counters.outstanding.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(scheduler) = self.scheduler.take() {
            let _ = scheduler.join();
        }
    }
}

impl Counters {
    fn count(&self, outcome: Result<u16, String>) {
        let counter = match &outcome {
            Ok(200..=299) => &self.ok,
            Ok(_) => &self.non_2xx,
            Err(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        if !matches!(outcome, Ok(200..=299)) {
            let mut failures = self.failures.lock().unwrap();
            if failures.len() < KEEP_FAILURES {
                failures.push(match outcome {
                    Ok(status) => format!("status {status}"),
                    Err(e) => e,
                });
            }
        }
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `http://HOST:PORT/path` → (address, `HOST:PORT`, `/path`).
fn split_url(url: &str) -> (SocketAddr, String, String) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let addr = host
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("not HOST:PORT: {host}"));
    (addr, host.to_string(), path.to_string())
}

/// One GET on a fresh connection: the status, or why there was none.
pub fn get(addr: SocketAddr, host: &str, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_read_timeout(Some(REQUEST_LIMIT));
    let _ = stream.set_write_timeout(Some(REQUEST_LIMIT));
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let head = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
    head.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {head:?}"))
}

/// One GET to `url` (`http://HOST:PORT/path`): the status, or why there was none.
pub fn get_url(url: &str) -> Result<u16, String> {
    let (addr, host, path) = split_url(url);
    get(addr, &host, &path)
}
