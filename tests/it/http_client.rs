//! The shared HTTP client against real servers on loopback: which headers reach which
//! origin, fresh and reused connections, request bodies, a streamed download that stops on
//! Ctrl-C and at its deadline, and failures explained in words that name the fix.

use crate::kit;

use kit::{DemoApp, wait_healthy};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ugw_shared::cancel::Cancel;
use ugw_shared::http::{HttpClient, HttpConfig, Method, Request};
use ugw_shared::scrub::Scrubber;

// ---- a server that remembers what it saw ----

/// One request as it reached the server.
#[derive(Debug, Clone)]
struct Heard {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Heard {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Seen {
    connections: usize,
    requests: Vec<Heard>,
}

type Answer = dyn Fn(&Heard, &mut TcpStream) + Send + Sync;

/// A real HTTP/1.1 server on 127.0.0.1:0 that counts connections, records every request
/// (head and body, `Content-Length` or chunked) and lets `answer` write the response. It
/// keeps a connection open for the next request as long as the client does.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    fn start(answer: impl Fn(&Heard, &mut TcpStream) + Send + Sync + 'static) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let answer: Arc<Answer> = Arc::new(answer);
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                seen2.lock().unwrap().connections += 1;
                let (seen, answer) = (Arc::clone(&seen2), Arc::clone(&answer));
                std::thread::spawn(move || serve(stream, &seen, &*answer));
            }
        });
        Recorder { addr, seen, stop }
    }

    /// Answers every request with `status`, these extra header lines and `body`.
    fn replying(status: u16, extra: &'static str, body: &'static str) -> Recorder {
        Recorder::start(move |_, stream| {
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{extra}\r\n{body}",
                body.len()
            );
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn connections(&self) -> usize {
        self.seen.lock().unwrap().connections
    }

    fn requests(&self) -> Vec<Heard> {
        self.seen.lock().unwrap().requests.clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Seen>, answer: &Answer) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(heard) = read_request(&mut reader) {
        seen.lock().unwrap().requests.push(heard.clone());
        answer(&heard, &mut writer);
        let _ = writer.flush();
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Heard> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut heard = Heard {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if heard
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        heard.body = read_chunked(reader)?;
    } else if let Some(length) = heard.header("content-length") {
        heard.body = vec![0; length.parse().ok()?];
        reader.read_exact(&mut heard.body).ok()?;
    }
    Some(heard)
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

fn client(config: HttpConfig) -> HttpClient {
    HttpClient::new(config, &Scrubber::default()).unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

// ---- which headers go where ----

/// `/redirect?to=URL` on the demo service, with URL percent-encoded.
fn redirect_via(app: &DemoApp, to: &str) -> String {
    let to = to.replace(':', "%3A").replace('/', "%2F");
    format!("{}/redirect?to={to}", app.url)
}

#[test]
fn user_headers_are_sent_only_to_the_origin_they_were_given_for() {
    let first = DemoApp::start(&[]);
    // The same host on another port is another origin.
    let second = DemoApp::start(&[]);
    let headers = [
        "--header",
        "Authorization: Bearer op-t0ken-123456",
        "--header",
        "X-Custom-Auth: cust0m-s3cret-99",
        "--header",
        "X-Trace: trace-abc",
    ];
    let run = |url: &str, expect: &str| {
        let mut args = vec!["--url", url, "--expect", expect, "--timeout", "2s"];
        args.extend_from_slice(&headers);
        wait_healthy(&args)
    };

    let elsewhere = redirect_via(&first, &format!("{}/debug/echo", second.url));
    let out = run(
        &elsewhere,
        r#".headers.authorization == null and .headers["x-custom-auth"] == null and .headers["x-trace"] == null and .headers.host != null"#,
    );
    out.succeeds();
    assert_eq!(second.requests_settled(), 1, "{}", second.log());
    assert!(second.log().contains("GET /debug/echo"), "{}", second.log());

    // On the same origin they all arrive: the check above can fail.
    let here = redirect_via(&first, &format!("{}/debug/echo", first.url));
    run(
        &here,
        r#".headers.authorization == "Bearer op-t0ken-123456" and .headers["x-custom-auth"] == "cust0m-s3cret-99" and .headers["x-trace"] == "trace-abc""#,
    )
    .succeeds();
}

#[test]
fn request_headers_follow_the_same_rule_in_the_library() {
    let target = Recorder::replying(200, "", "ok");
    let on_port = target.addr.port();
    let hop = Recorder::start(move |heard, stream| {
        let to = if heard.target.starts_with("/away") {
            format!("http://127.0.0.1:{on_port}/landed")
        } else {
            "/here".to_string()
        };
        let _ = write!(
            stream,
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n"
        );
    });
    let config = HttpConfig::default().header("X-Config", "c", false);
    let client = client(config);
    let request = Request::get(&hop.url("/away")).header("X-Request", "r");
    let response = client.send(request, soon(), &Cancel::default()).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.url, target.url("/landed"));
    let hopped = &hop.requests()[0];
    assert_eq!(hopped.header("x-config"), Some("c"));
    assert_eq!(hopped.header("x-request"), Some("r"));
    let landed = &target.requests()[0];
    assert_eq!(landed.header("x-config"), None, "{landed:?}");
    assert_eq!(landed.header("x-request"), None, "{landed:?}");
}

// ---- secrets ----

#[test]
fn basic_credentials_from_a_url_are_masked_in_their_base64_form() {
    // The server hands the credentials back under a name no name-based rule knows, so only
    // the registered base64 value can mask them.
    let server = Recorder::start(|heard, stream| {
        let credentials = heard
            .header("authorization")
            .and_then(|v| v.strip_prefix("Basic "))
            .unwrap_or("none")
            .to_string();
        let body = format!(r#"{{"seen":"{credentials}"}}"#);
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    let basic = kit::base64(b"deploy:Pa55phrase-77");
    let url = format!("http://deploy:Pa55phrase-77@{}/status", server.addr);
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("rec.json");
    let mut cmd = kit::tool("ugw-wait-healthy");
    cmd.args(["--url", &url, "--expect", ".x == 1", "--timeout", "300ms"])
        .args(["--new", "--record"])
        .arg(&record);
    let out = kit::run(cmd);
    out.assert_code(1);
    let heard = server.requests();
    assert_eq!(
        heard[0].header("authorization"),
        Some(format!("Basic {basic}").as_str()),
        "the server got the credentials"
    );
    let excerpt = out.wait_result().targets[0].body_excerpt.clone().unwrap();
    assert!(
        excerpt.contains(r#""seen":"#),
        "the body is shown: {excerpt}"
    );
    let file = std::fs::read_to_string(&record).unwrap();
    for (name, text) in [
        ("stdout", &out.stdout),
        ("stderr", &out.stderr),
        ("record file", &file),
    ] {
        for secret in [basic.as_str(), "Pa55phrase-77"] {
            assert!(
                !text.contains(secret),
                "{secret} leaked into {name}: {text}"
            );
        }
    }
}

// ---- connections ----

#[test]
fn every_health_check_attempt_opens_a_fresh_connection() {
    let server = Recorder::replying(200, "Connection: keep-alive\r\n", "ok");
    let out = wait_healthy(&[
        "--url",
        &server.url("/ready"),
        "--successes",
        "3",
        "--interval",
        "20ms",
    ]);
    out.succeeds();
    assert!(out.wait_result().attempts >= 3);
    let requests = server.requests().len();
    assert!(requests >= 3, "{requests}");
    assert_eq!(server.connections(), requests, "one connection per attempt");
}

#[test]
fn connection_reuse_is_an_option() {
    for (reuse, expected) in [(true, 1), (false, 3)] {
        let server = Recorder::replying(200, "", "ok");
        let client = client(HttpConfig {
            reuse_connections: reuse,
            ..HttpConfig::default()
        });
        for _ in 0..3 {
            let got = client.fetch(&Method::GET, &server.url("/"), soon(), 100);
            assert_eq!(got.unwrap().body, b"ok");
        }
        assert_eq!(server.requests().len(), 3);
        assert_eq!(server.connections(), expected, "reuse {reuse}");
    }
}

#[test]
fn the_proxy_environment_is_honoured_except_for_loopback_and_no_proxy() {
    // A proxy that opens every tunnel asked for, and answers inside it itself.
    let proxy = Recorder::start(|heard, stream| {
        let _ = if heard.method == "CONNECT" {
            stream.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        } else {
            stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        };
    });
    let run = |url: &str, no_proxy: &str| {
        let mut cmd = kit::tool("ugw-wait-healthy");
        cmd.env("HTTPS_PROXY", proxy.url(""))
            .env("NO_PROXY", no_proxy)
            .args(["--url", url, "--timeout", "1s"]);
        kit::run(cmd)
    };
    run("http://ready.example.invalid/health", "").succeeds();
    let heard = proxy.requests();
    assert_eq!(heard.len(), 2, "{heard:?}");
    assert_eq!(
        (heard[0].method.as_str(), heard[0].target.as_str()),
        ("CONNECT", "ready.example.invalid:80")
    );
    assert_eq!(heard[1].target, "/health");

    let out = run("http://ready.example.invalid/health", ".example.invalid");
    out.assert_code(1);
    assert!(
        out.target_error().starts_with("host not found"),
        "{}",
        out.target_error()
    );
    let app = DemoApp::start(&[]);
    run(&format!("{}/health/ready", app.url), "").succeeds();
    assert_eq!(app.requests_settled(), 1);
    assert_eq!(
        proxy.requests().len(),
        2,
        "NO_PROXY and loopback went direct"
    );
}

// ---- request bodies ----

#[test]
fn a_request_carries_its_body_in_every_form() {
    let server = Recorder::replying(201, "", "made");
    let client = client(HttpConfig::default());
    let request = Request::new(Method::POST, &server.url("/items"))
        .header("Content-Type", "application/json")
        .body(r#"{"name":"demo"}"#);
    let got = client
        .fetch_request(request, soon(), 100, &Cancel::default())
        .unwrap();
    assert_eq!((got.status, got.body.as_slice()), (201, &b"made"[..]));
    let streamed = Request::new(Method::PUT, &server.url("/blob"))
        .body_reader(std::io::Cursor::new(vec![7u8; 100_000]));
    let got = client
        .fetch_request(streamed, soon(), 100, &Cancel::default())
        .unwrap();
    assert_eq!(got.status, 201);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upload");
    std::fs::write(&path, b"from a file").unwrap();
    let from_file = Request::new(Method::POST, &server.url("/file"))
        .body_file(std::fs::File::open(&path).unwrap());
    client
        .fetch_request(from_file, soon(), 100, &Cancel::default())
        .unwrap();

    let heard = server.requests();
    assert_eq!(
        (heard[0].method.as_str(), heard[0].target.as_str()),
        ("POST", "/items")
    );
    assert_eq!(heard[0].header("content-length"), Some("15"));
    assert_eq!(heard[0].header("content-type"), Some("application/json"));
    assert_eq!(heard[0].body, br#"{"name":"demo"}"#);
    assert_eq!(heard[1].method, "PUT");
    assert_eq!(heard[1].header("transfer-encoding"), Some("chunked"));
    assert_eq!(heard[1].body, vec![7u8; 100_000]);
    assert_eq!(heard[2].header("content-length"), Some("11"));
    assert_eq!(heard[2].body, b"from a file");
}

#[test]
fn redirects_resend_a_body_only_when_the_status_says_so() {
    for (status, method, body) in [(307, "POST", &b"payload"[..]), (303, "GET", &b""[..])] {
        let server = Recorder::start(move |heard, stream| {
            if heard.target == "/first" {
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nLocation: /second\r\nContent-Length: 0\r\n\r\n"
                );
            } else {
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let request = Request::new(Method::POST, &server.url("/first")).body("payload");
        client(HttpConfig::default())
            .fetch_request(request, soon(), 100, &Cancel::default())
            .unwrap();
        let second = &server.requests()[1];
        assert_eq!(second.target, "/second");
        assert_eq!(
            (second.method.as_str(), second.body.as_slice()),
            (method, body)
        );
    }
}

// ---- streaming ----

/// Announces 512 MiB, sends the first 256 KiB, then one more 64 KiB piece per second: a
/// reader is mostly blocked waiting, as on a slow or stalled link.
fn throttled_download() -> Recorder {
    Recorder::start(|_, stream| {
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            512u64 << 20
        );
        let piece = vec![b'x'; 64 << 10];
        for sent in 0.. {
            if stream.write_all(&piece).is_err() {
                return;
            }
            if sent >= 4 {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    })
}

/// Read `body` to its end or error on another thread: (bytes read, when it stopped, error).
/// Read `body` on a thread of its own until it fails: how much it read, when it stopped,
/// why; `progress` counts the bytes read so far.
fn read_all_in_background(
    mut body: impl Read + Send + 'static,
    progress: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<(usize, Instant, std::io::Error)> {
    std::thread::spawn(move || {
        let mut chunk = vec![0u8; 64 << 10];
        let mut total = 0;
        loop {
            match body.read(&mut chunk) {
                Ok(0) => panic!("the 512 MiB body ended after {total} bytes"),
                Ok(n) => {
                    total += n;
                    progress.store(total, Ordering::SeqCst);
                }
                Err(e) => return (total, Instant::now(), e),
            }
        }
    })
}

#[test]
fn a_large_download_stops_within_100ms_of_a_cancel() {
    let _serial = kit::serial();
    let server = throttled_download();
    let cancel = Cancel::default();
    let until = Instant::now() + Duration::from_secs(30);
    let response = client(HttpConfig::default())
        .send(Request::get(&server.url("/big")), until, &cancel)
        .unwrap();
    assert_eq!(response.content_length(), Some(512 << 20));
    let progress = Arc::new(AtomicUsize::new(0));
    let reader = read_all_in_background(response.body, Arc::clone(&progress));
    // The reader got through the five pieces sent at once: it blocks on the link now.
    assert!(
        kit::eventually(Duration::from_secs(10), || {
            progress.load(Ordering::SeqCst) >= 5 * (64 << 10)
        }),
        "the first pieces arrived"
    );
    let tripped = Instant::now();
    cancel.trip(libc::SIGINT);
    let (read, stopped, error) = reader.join().unwrap();
    let took = stopped.duration_since(tripped);
    assert!(read >= 256 << 10, "the download was under way: {read}");
    assert!(
        took <= Duration::from_millis(100),
        "stopped {took:?} after Ctrl-C"
    );
    assert!(error.to_string().contains("interrupted"), "{error}");
}

#[test]
fn a_large_download_stops_within_100ms_of_its_deadline() {
    let _serial = kit::serial();
    let server = throttled_download();
    let until = Instant::now() + Duration::from_millis(700);
    let response = client(HttpConfig::default())
        .send(Request::get(&server.url("/big")), until, &Cancel::default())
        .unwrap();
    let (read, stopped, error) = read_all_in_background(response.body, Arc::default())
        .join()
        .unwrap();
    assert!(read >= 256 << 10, "the download was under way: {read}");
    assert!(stopped >= until, "not before the deadline");
    let late = stopped.duration_since(until);
    assert!(
        late <= Duration::from_millis(100),
        "stopped {late:?} after the deadline"
    );
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut, "{error}");
}

#[test]
fn a_cancel_ends_a_wait_for_the_answer_too() {
    let _serial = kit::serial();
    let app = DemoApp::start(&["--hang"]);
    let cancel = Cancel::default();
    let url = format!("{}/health/ready", app.url);
    let (err, tripped) = std::thread::scope(|scope| {
        let tripper = scope.spawn(|| {
            // The server has the request: the client waits for an answer that never comes.
            let arrived = app.wait_for_requests(1, Duration::from_secs(10));
            cancel.trip(libc::SIGTERM);
            assert!(arrived, "the request reached the server");
            Instant::now()
        });
        let err = client(HttpConfig::default())
            .send(Request::get(&url), soon(), &cancel)
            .unwrap_err();
        (err, tripper.join().unwrap())
    });
    let took = tripped.elapsed();
    assert!(took <= Duration::from_millis(100), "{took:?}");
    assert!(err.message.contains("interrupted"), "{}", err.message);
    assert_eq!(app.requests_settled(), 1, "the request was on its way");
}

#[test]
fn a_cancel_ends_an_upload_to_a_server_that_stopped_reading() {
    let _serial = kit::serial();
    // Accepts, and never reads a byte: the upload fills the socket buffers and blocks.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/upload");
    let holder = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
    let cancel = Cancel::default();
    let other = cancel.clone();
    let tripper = std::thread::spawn(move || {
        // Sent and not taken: the socket buffers fill (the server's side holds what it
        // received unread), so the upload blocks.
        let blocked = kit::eventually(Duration::from_secs(10), || {
            kit::observe::tcp_sockets_to(port)
                .iter()
                .any(|socket| socket.tx_queue >= 64 << 10)
        });
        other.trip(libc::SIGINT);
        assert!(blocked, "the upload filled its socket buffer");
        Instant::now()
    });
    let huge = std::io::repeat(b'x').take(1 << 30);
    let request = Request::new(Method::PUT, &url).body_reader(huge);
    let err = client(HttpConfig::default())
        .send(request, soon(), &cancel)
        .unwrap_err();
    let took = tripper.join().unwrap().elapsed();
    assert!(took <= Duration::from_millis(100), "{took:?}");
    assert!(err.message.contains("interrupted"), "{}", err.message);
    drop(holder.join().unwrap());
}

/// A port whose accept queue is full: a connect to it is never answered (the kernel drops
/// the SYN), like a host behind a firewall that drops packets.
fn unanswered_port() -> (TcpListener, Vec<TcpStream>, SocketAddr) {
    use std::os::fd::AsRawFd;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) on a socket we own; only the backlog changes.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    while let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
        queued.push(stream);
        assert!(queued.len() < 16, "the accept queue never filled");
    }
    (listener, queued, addr)
}

#[test]
fn a_cancel_ends_a_connect_that_is_never_answered() {
    let _serial = kit::serial();
    let (_listener, _queued, addr) = unanswered_port();
    let cancel = Cancel::default();
    let other = cancel.clone();
    let tripper = std::thread::spawn(move || {
        // The client's SYN is out, and never answered.
        let connecting = kit::eventually(Duration::from_secs(10), || {
            kit::observe::tcp_sockets_to(addr.port())
                .iter()
                .any(|socket| socket.state == kit::observe::TCP_SYN_SENT)
        });
        other.trip(libc::SIGINT);
        assert!(connecting, "the connect is under way");
        Instant::now()
    });
    let url = format!("http://{addr}/");
    let err = client(HttpConfig::default())
        .send(Request::get(&url), soon(), &cancel)
        .unwrap_err();
    let took = tripper.join().unwrap().elapsed();
    assert!(took <= Duration::from_millis(100), "{took:?}");
    assert!(err.message.contains("interrupted"), "{}", err.message);
}

// ---- readable errors ----

#[test]
fn a_url_without_a_scheme_says_add_http() {
    let out = wait_healthy(&["--url", "127.0.0.1:8080/x"]);
    out.assert_code(2);
    let message = out.last_step().error.unwrap().message;
    assert!(message.contains("add http://"), "{message}");
    out.stderr_has("add http://");

    let out = wait_healthy(&["--url", "user:SECRETPW12@127.0.0.1:8080/ok"]);
    out.assert_code(2).stderr_has("add http://");
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains("SECRETPW12"), "{text}");
    }
}

/// The demo service over TLS with `cert` and `key`.
fn tls_app(cert: &Path, key: &Path) -> DemoApp {
    let app = DemoApp::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(app.url.starts_with("https://"), "{}", app.url);
    app
}

/// A failing check's message, the same in the record and on stderr.
#[track_caller]
fn failure_says(out: &kit::Outcome, words: &[&str]) {
    out.assert_code(1);
    let error = out.target_error();
    for word in words {
        assert!(error.contains(word), "{word:?} is not in: {error}");
        out.stderr_has(word);
    }
}

#[test]
fn an_untrusted_certificate_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = kit::self_signed(dir.path());
    let app = tls_app(&cert, &key);
    let out = wait_healthy(&[
        "--url",
        &format!("{}/health/ready", app.url),
        "--timeout",
        "500ms",
    ]);
    failure_says(&out, &["certificate", "--cacert FILE", "--insecure"]);

    // A certificate for other names: said so, with the name the URL used.
    let other = rcgen::generate_simple_self_signed(vec!["other.example".to_string()]).unwrap();
    let (other_cert, other_key) = (dir.path().join("o.pem"), dir.path().join("ok.pem"));
    std::fs::write(&other_cert, other.cert.pem()).unwrap();
    std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
    let app = tls_app(&other_cert, &other_key);
    let url = format!("{}/health/ready", app.url);
    let out = wait_healthy(&[
        "--url",
        &url,
        "--cacert",
        other_cert.to_str().unwrap(),
        "--timeout",
        "500ms",
    ]);
    failure_says(&out, &["not valid for the name", "127.0.0.1"]);
}

/// A plain HTTP server as most are: whatever arrives that is not HTTP (a TLS hello) gets
/// `reply` at once (nothing at all: the connection is just closed).
fn plain_http_port(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(reply);
        }
    });
    addr
}

#[test]
fn https_to_a_plain_http_port_says_so() {
    for reply in [
        &b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"[..],
        b"",
    ] {
        let url = format!("https://{}/health/ready", plain_http_port(reply));
        // Not a timing test: one round, with room for the handshake's answer on a loaded
        // machine.
        let out = wait_healthy(&["--url", &url, "--once", "--timeout", "5s"]);
        failure_says(&out, &["plain HTTP", "use http://"]);
        let error = out.target_error();
        assert!(
            !error.contains("corrupt") && !error.contains("end of file"),
            "{error}"
        );
    }
}

#[test]
fn a_self_signed_certificate_from_openssl_is_trusted_with_cacert() {
    if !kit::require("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let app = tls_app(&cert, &key);
    let url = format!("{}/health/ready", app.url);
    let out = wait_healthy(&[
        "--url",
        &url,
        "--cacert",
        cert.to_str().unwrap(),
        "--timeout",
        "2s",
    ]);
    out.succeeds();
    assert_eq!(out.wait_result().targets[0].last_status, Some(200));
    assert_eq!(app.requests_settled(), 1, "{}", app.log());

    // Trusted for its own names only.
    let by_name = url.replace("127.0.0.1", "localhost");
    wait_healthy(&["--url", &by_name, "--cacert", cert.to_str().unwrap()]).succeeds();
}

#[test]
fn a_self_signed_certificate_without_a_ca_is_trusted_with_cacert() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = kit::self_signed(dir.path());
    let app = tls_app(&cert, &key);
    let url = format!("{}/health/ready", app.url);
    let out = wait_healthy(&[
        "--url",
        &url,
        "--cacert",
        cert.to_str().unwrap(),
        "--timeout",
        "2s",
    ]);
    out.succeeds();
    assert_eq!(out.wait_result().targets[0].last_status, Some(200));
}
