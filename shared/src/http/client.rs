//! The client: `send()` one request and get its status, headers and a body reader that
//! gives way to Ctrl-C and the deadline; `fetch()` on top of it for answers read whole.
//! Redirects are followed here, not by ureq, so that the headers given for one origin (user
//! headers and secrets alike) are never sent on to another.

use super::config::{Header, HttpConfig};
use super::transport::{self, OwnTlsConnector, SocketConnector};
use super::{Method, is_loopback, origin, parse_retry_after, parse_url, resolve, tls};
use crate::cancel::Cancel;
use crate::error::Result;
use crate::poll::AttemptError;
use crate::scrub::Scrubber;
use clap::ArgMatches;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use ureq::RequestExt;
use ureq::http::HeaderMap;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{ConnectProxyConnector, Connector, RustlsConnector};
use url::Url;

/// What to send with a request.
pub enum RequestBody {
    Empty,
    /// Sent with its length; sent again if a 307/308 redirect asks for it.
    Bytes(Vec<u8>),
    /// A file, sent whole with its length; sent again if a 307/308 redirect asks for it.
    File(std::fs::File),
    /// Streamed (chunked) once: a redirect that needs it again is an error.
    Reader(Box<dyn Read + Send>),
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestBody::Empty => f.write_str("Empty"),
            RequestBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            RequestBody::File(file) => write!(f, "File({file:?})"),
            RequestBody::Reader(_) => f.write_str("Reader"),
        }
    }
}

#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub url: String,
    /// Sent to the origin of `url` only, like the configured headers.
    pub headers: Vec<(String, String)>,
    pub body: RequestBody,
}

impl Request {
    #[must_use]
    pub fn new(method: Method, url: &str) -> Self {
        Request {
            method,
            url: url.to_string(),
            headers: Vec::new(),
            body: RequestBody::Empty,
        }
    }

    #[must_use]
    pub fn get(url: &str) -> Self {
        Request::new(Method::GET, url)
    }

    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    #[must_use]
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = RequestBody::Bytes(bytes.into());
        self
    }

    /// A file's content as the body, with its length.
    #[must_use]
    pub fn body_file(mut self, file: std::fs::File) -> Self {
        self.body = RequestBody::File(file);
        self
    }

    /// A body streamed from a reader (a pipe, a decoder), in chunks.
    #[must_use]
    pub fn body_reader(mut self, reader: impl Read + Send + 'static) -> Self {
        self.body = RequestBody::Reader(Box::new(reader));
        self
    }
}

/// An answer whose body is still to be read.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: HeaderMap,
    /// Where the answer finally came from, after redirects.
    pub url: String,
    /// From the start of `send()` to the answer's head.
    pub latency: Duration,
    pub body: Body,
}

impl Response {
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
    }

    #[must_use]
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }
}

/// The body, read as it arrives. Every read ends within a tick of a signal or of the
/// deadline, with an error that says which.
pub struct Body {
    reader: ureq::BodyReader<'static>,
    cancel: Cancel,
    until: Instant,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

impl Body {
    fn stopped(&self) -> Option<std::io::Error> {
        if self.cancel.signal().is_some() {
            return Some(std::io::Error::other(transport::Cancelled));
        }
        (Instant::now() >= self.until)
            .then(|| std::io::Error::new(std::io::ErrorKind::TimedOut, "the deadline passed"))
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(stop) = self.stopped() {
            return Err(stop);
        }
        let _watch = transport::watch(&self.cancel, self.until);
        self.reader
            .read(buf)
            .map_err(|e| self.stopped().unwrap_or(e))
    }
}

/// One answer, read whole (up to the body limit).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub reason: String,
    pub body: Vec<u8>,
    /// The body was longer than the limit and was cut.
    pub truncated: bool,
    pub latency: Duration,
    pub retry_after: Option<Duration>,
    /// Where the answer finally came from, after redirects.
    pub url: String,
    pub content_type: Option<String>,
}

#[derive(Clone)]
pub struct HttpClient {
    /// Honours the proxy environment (`HTTPS_PROXY`, `NO_PROXY`, …) if the config says so.
    agent: ureq::Agent,
    /// For loopback targets: a health check of this host never goes through a proxy.
    direct: ureq::Agent,
    headers: Arc<[Header]>,
    max_redirects: usize,
    scrubber: Scrubber,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("headers", &self.headers)
            .field("max_redirects", &self.max_redirects)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// The client `config` describes; its secret header values go to `scrubber` first.
    pub fn new(config: HttpConfig, scrubber: &Scrubber) -> Result<Self> {
        config.register_secrets(scrubber);
        config.check_headers()?;
        let own_tls = match &config.cacert {
            Some(path) if !config.insecure => Some(tls::cacert_config(path)?),
            _ => None,
        };
        let proxy = if config.use_proxy {
            ureq::Proxy::try_from_env()
        } else {
            None
        };
        Ok(HttpClient {
            agent: agent(&config, own_tls.clone(), proxy),
            direct: agent(&config, own_tls, None),
            headers: config.headers.into(),
            max_redirects: config.max_redirects,
            scrubber: scrubber.clone(),
        })
    }

    /// The client the shared HTTP flags describe, for a health check (no connection reuse).
    pub fn from_matches(matches: &ArgMatches, scrubber: &Scrubber) -> Result<Self> {
        HttpClient::new(HttpConfig::from_matches(matches, scrubber)?, scrubber)
    }

    /// Send `request` and return the answer's head, all before `until` (or until `cancel`
    /// trips); the body is read from the answer, under the same two limits.
    pub fn send(
        &self,
        request: Request,
        until: Instant,
        cancel: &Cancel,
    ) -> Result<Response, AttemptError> {
        let started = Instant::now();
        let _watch = transport::watch(cancel, until);
        let Request {
            mut method,
            url,
            headers: extra,
            mut body,
        } = request;
        let mut url = parse_url(&url).map_err(|e| AttemptError::new(e.message))?;
        let first = origin(&url);
        for _ in 0..=self.max_redirects {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(AttemptError::timed_out(started.elapsed()));
            }
            // Headers the operator gave are for the origin they gave them for, only.
            let headers = if origin(&url) == first {
                self.headers_with(&extra)
            } else {
                Vec::new()
            };
            let response = self
                .run(&method, &url, &headers, &mut body, left)
                .map_err(|e| explain(&e, &url, started, cancel))?;
            if let Some(location) = redirect_location(&response) {
                self.scrubber.add_url_secrets(location);
                // A redirect to file:// or ftp:// is no less wrong on the next attempt.
                url = resolve(&url, location).map_err(AttemptError::permanent)?;
                redirect_method(response.status().as_u16(), &mut method, &mut body)?;
                continue;
            }
            let (parts, answer) = response.into_parts();
            return Ok(Response {
                status: parts.status.as_u16(),
                reason: parts.status.canonical_reason().unwrap_or("").to_string(),
                headers: parts.headers,
                url: url.to_string(),
                latency: started.elapsed(),
                body: Body {
                    reader: answer.into_reader(),
                    cancel: cancel.clone(),
                    until,
                },
            });
        }
        // A redirect loop (or chain this long) answers the same way next time.
        Err(AttemptError::permanent(format!(
            "more than {} redirects",
            self.max_redirects
        )))
    }

    fn headers_with<'a>(&'a self, extra: &'a [(String, String)]) -> Vec<(&'a str, &'a str)> {
        self.headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .chain(extra.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            .collect()
    }

    /// One request on the wire, through the agent its host calls for.
    fn run(
        &self,
        method: &Method,
        url: &Url,
        headers: &[(&str, &str)],
        body: &mut RequestBody,
        left: Duration,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let agent = if is_loopback(url) {
            &self.direct
        } else {
            &self.agent
        };
        let mut builder = ureq::http::Request::builder()
            .method(method.clone())
            .uri(url.as_str());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        match body {
            RequestBody::Empty => send(agent, builder.body(())?, left),
            RequestBody::Bytes(bytes) => send(agent, builder.body(bytes.as_slice())?, left),
            RequestBody::File(file) => {
                // From its start, also when a redirect asks for it again.
                std::io::Seek::rewind(file)?;
                send(agent, builder.body(&*file)?, left)
            }
            RequestBody::Reader(reader) => send(
                agent,
                builder.body(ureq::SendBody::from_reader(reader))?,
                left,
            ),
        }
    }

    /// Send one request and read the answer whole (up to `body_limit`), all before `until`.
    /// Redirects are followed (at most ten); headers go only to the origin they were given for.
    pub fn fetch(
        &self,
        method: &Method,
        url: &str,
        until: Instant,
        body_limit: usize,
    ) -> Result<HttpResponse, AttemptError> {
        let request = Request::new(method.clone(), url);
        self.fetch_request(request, until, body_limit, &Cancel::default())
    }

    /// `fetch` for any request (with a body, say), giving way to `cancel` too.
    pub fn fetch_request(
        &self,
        request: Request,
        until: Instant,
        body_limit: usize,
        cancel: &Cancel,
    ) -> Result<HttpResponse, AttemptError> {
        let started = Instant::now();
        let response = self.send(request, until, cancel)?;
        let mut body = Vec::new();
        let mut reader = response.body.take(body_limit as u64 + 1);
        reader.read_to_end(&mut body).map_err(|e| {
            if e.kind() == std::io::ErrorKind::TimedOut {
                AttemptError::timed_out(started.elapsed())
            } else {
                AttemptError::new(format!("reading the body failed: {e}"))
            }
        })?;
        let truncated = body.len() > body_limit;
        body.truncate(body_limit);
        let header = |name: &str| {
            response
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(HttpResponse {
            status: response.status,
            retry_after: header("retry-after")
                .and_then(|v| parse_retry_after(&v, SystemTime::now())),
            content_type: header("content-type"),
            reason: response.reason,
            body,
            truncated,
            latency: started.elapsed(),
            url: response.url,
        })
    }
}

/// An agent for `config`: ureq follows no redirects (we do), and the connection layers are
/// ours (see `transport`).
fn agent(
    config: &HttpConfig,
    own_tls: Option<Arc<rustls::ClientConfig>>,
    proxy: Option<ureq::Proxy>,
) -> ureq::Agent {
    let idle = if config.reuse_connections { 8 } else { 0 };
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .disable_verification(config.insecure)
        .build();
    let agent_config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_idle_connections(idle)
        .max_idle_connections_per_host(idle)
        .user_agent(config.user_agent.as_str())
        .tls_config(tls)
        .proxy(proxy)
        .build();
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(SocketConnector)
            .chain(OwnTlsConnector(own_tls))
            .chain(RustlsConnector::default());
    ureq::Agent::with_parts(agent_config, connector, DefaultResolver::default())
}

/// Where a redirect points (none for 304 Not Modified, which is not one).
fn redirect_location(response: &ureq::http::Response<ureq::Body>) -> Option<&str> {
    let status = response.status();
    if !status.is_redirection() || status.as_u16() == 304 {
        return None;
    }
    response.headers().get("location")?.to_str().ok()
}

fn send(
    agent: &ureq::Agent,
    request: ureq::http::Request<impl ureq::AsSendBody>,
    left: Duration,
) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    request
        .with_agent(agent)
        .configure()
        .timeout_global(Some(left))
        .run()
}

/// What a redirect makes of the next request: 301, 302 and 303 turn a `POST` into a `GET`
/// without a body (as browsers and curl do); 307 and 308 send it again as it was.
fn redirect_method(
    status: u16,
    method: &mut Method,
    body: &mut RequestBody,
) -> Result<(), AttemptError> {
    let keep = matches!(status, 307 | 308);
    if !keep && *method != Method::HEAD {
        *method = Method::GET;
        *body = RequestBody::Empty;
    }
    if keep && matches!(body, RequestBody::Reader(_)) {
        return Err(AttemptError::new(format!(
            "a {status} redirect asks for the request body again, but it was streamed once"
        )));
    }
    Ok(())
}

/// A transport failure in words an operator can act on.
fn explain(err: &ureq::Error, url: &Url, started: Instant, cancel: &Cancel) -> AttemptError {
    if cancel.signal().is_some() {
        return AttemptError::new(transport::Cancelled.to_string());
    }
    let timed_out = || AttemptError::timed_out(started.elapsed());
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_string(),
    };
    if url.scheme() == "https"
        && let Some(message) = tls::describe(err, &authority)
    {
        return AttemptError::permanent(message);
    }
    match err {
        ureq::Error::Timeout(_) => timed_out(),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => timed_out(),
        ureq::Error::HostNotFound => AttemptError::permanent("host not found"),
        // std's resolver says it in getaddrinfo's words, with no error kind of its own.
        ureq::Error::Io(io) if io.to_string().starts_with("failed to lookup address") => {
            let why = io.to_string();
            let why = why.rsplit_once(": ").map_or("", |(_, why)| why);
            let message = format!("host not found ({why})");
            // EAI_AGAIN ("Temporary failure in name resolution") may pass; the rest will not.
            if why.contains("Temporary") {
                AttemptError::new(message)
            } else {
                AttemptError::permanent(message)
            }
        }
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            AttemptError::new("connection refused")
        }
        other => AttemptError::new(other.to_string()),
    }
}
