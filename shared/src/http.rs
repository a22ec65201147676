//! The HTTP client every tool uses: one set of flags (`--header`, `--header-env`, `--cacert`,
//! `--insecure`), per-attempt deadlines, a fresh connection per attempt (a pooled connection
//! could still reach the old process), and redirects followed here so that secret headers are
//! never sent on to another origin.

use crate::error::{Error, Result};
use crate::poll::AttemptError;
use crate::scrub::Scrubber;
use clap::{Arg, ArgAction, ArgMatches};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use ureq::RequestExt;
/// HTTP methods, for tools that let the operator choose one.
pub use ureq::http::Method;
use ureq::http::{Request, Uri};

const MAX_REDIRECTS: usize = 10;

/// A set of HTTP status codes as operators write it: `200`, `200,204`, `2xx`, `200-299`.
#[derive(Debug, Clone)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    pub fn parse(text: &str, flag: &str) -> Result<Self> {
        let bad = || {
            Error::usage(format!(
                "{flag} '{text}' is not a list like 200, 200,204, 2xx or 200-299"
            ))
        };
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim) {
            let range =
                if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX")) {
                    let digit: u16 = class
                        .parse()
                        .ok()
                        .filter(|d| (1..=5).contains(d))
                        .ok_or_else(bad)?;
                    (digit * 100, digit * 100 + 99)
                } else if let Some((low, high)) = part.split_once('-') {
                    (
                        low.trim().parse().map_err(|_| bad())?,
                        high.trim().parse().map_err(|_| bad())?,
                    )
                } else {
                    let code = part.parse().map_err(|_| bad())?;
                    (code, code)
                };
            if !(100..=599).contains(&range.0)
                || !(100..=599).contains(&range.1)
                || range.0 > range.1
            {
                return Err(bad());
            }
            ranges.push(range);
        }
        Ok(StatusSet(ranges))
    }

    #[must_use]
    pub fn contains(&self, code: u16) -> bool {
        self.0
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&code))
    }
}

/// The HTTP flags, defined once for every tool that speaks HTTP.
#[must_use]
pub fn args() -> Vec<Arg> {
    vec![
        Arg::new("header")
            .long("header")
            .value_name("'NAME: VALUE'")
            .action(ArgAction::Append)
            .help("Send this header with every request (repeatable); not for secrets, see --header-env"),
        Arg::new("header-env")
            .long("header-env")
            .value_name("NAME=ENVVAR")
            .action(ArgAction::Append)
            .help("Send header NAME with the value of environment variable ENVVAR (repeatable); the value is never shown"),
        Arg::new("cacert")
            .long("cacert")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help("Trust the CA certificates in this PEM file instead of the system's"),
        Arg::new("insecure")
            .long("insecure")
            .action(ArgAction::SetTrue)
            .help("Do not verify TLS certificates (self-signed test set-ups only)"),
    ]
}

#[derive(Debug, Clone)]
struct Header {
    name: String,
    value: String,
    secret: bool,
}

#[derive(Debug, Clone)]
pub struct HttpClient {
    /// Honours the proxy environment (`HTTPS_PROXY`, `NO_PROXY`, …).
    agent: ureq::Agent,
    /// For loopback targets: a health check of this host never goes through a proxy.
    direct: ureq::Agent,
    headers: Vec<Header>,
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

impl HttpClient {
    /// Build the client from the shared HTTP flags. Secret values go to the scrubber first.
    pub fn from_matches(matches: &ArgMatches, scrubber: &Scrubber) -> Result<Self> {
        let mut headers = Vec::new();
        for raw in matches.get_many::<String>("header").into_iter().flatten() {
            let Some((name, value)) = raw.split_once(':') else {
                // Not quoted: a malformed header may well hold the secret itself.
                return Err(Error::usage(
                    "a --header is not 'NAME: VALUE' (its text is not shown, as it may hold a secret)",
                ));
            };
            let name = name.trim().to_string();
            let secret = Scrubber::is_secret_name(&name);
            if secret {
                scrubber.add_secret(value.trim());
            }
            headers.push(Header {
                name,
                value: value.trim().to_string(),
                secret,
            });
        }
        for raw in matches
            .get_many::<String>("header-env")
            .into_iter()
            .flatten()
        {
            let Some((name, var)) = raw.split_once('=') else {
                return Err(Error::usage(format!(
                    "--header-env '{raw}' is not 'NAME=ENVVAR'"
                )));
            };
            let value = std::env::var(var.trim()).map_err(|_| {
                Error::usage(format!(
                    "--header-env {raw}: environment variable {} is not set (or not UTF-8)",
                    var.trim()
                ))
            })?;
            scrubber.add_secret(&value);
            headers.push(Header {
                name: name.trim().to_string(),
                value,
                secret: true,
            });
        }
        for h in &headers {
            ureq::http::HeaderName::try_from(h.name.as_str())
                .map_err(|_| Error::usage(format!("'{}' is not a valid header name", h.name)))?;
            ureq::http::HeaderValue::try_from(h.value.as_str()).map_err(|_| {
                Error::usage(format!(
                    "the value of header '{}' is not valid in HTTP",
                    h.name
                ))
            })?;
        }
        let tls = tls_config(
            matches.get_one::<PathBuf>("cacert"),
            matches.get_flag("insecure"),
        )?;
        let config = |proxy: Option<ureq::Proxy>| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .max_idle_connections(0)
                .max_idle_connections_per_host(0)
                .user_agent(format!("ugw/{}", env!("CARGO_PKG_VERSION")))
                .tls_config(tls.clone())
                .proxy(proxy)
                .build()
        };
        Ok(HttpClient {
            agent: ureq::Agent::new_with_config(config(ureq::Proxy::try_from_env())),
            direct: ureq::Agent::new_with_config(config(None)),
            headers,
        })
    }

    /// Send one request and read the answer, all before `until`. Redirects are followed
    /// (at most ten); secret headers go only to the origin they were given for.
    pub fn fetch(
        &self,
        method: &Method,
        url: &str,
        until: Instant,
        body_limit: usize,
    ) -> Result<HttpResponse, AttemptError> {
        let started = Instant::now();
        let first = parse_url(url).map_err(|e| AttemptError::new(e.message))?;
        let mut uri = first.clone();
        for _ in 0..=MAX_REDIRECTS {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(AttemptError::timed_out(started.elapsed()));
            }
            let same_origin = origin(&uri) == origin(&first);
            let mut builder = Request::builder().method(method.clone()).uri(uri.clone());
            for h in self.headers.iter().filter(|h| same_origin || !h.secret) {
                builder = builder.header(h.name.as_str(), h.value.as_str());
            }
            let request = builder
                .body(())
                .map_err(|e| AttemptError::new(format!("cannot build the request: {e}")))?;
            let agent = if is_loopback(&uri) {
                &self.direct
            } else {
                &self.agent
            };
            let response = request
                .with_agent(agent)
                .configure()
                .timeout_global(Some(left))
                .run()
                .map_err(|e| describe(&e, started))?;
            let status = response.status();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok());
            if let Some(location) =
                location.filter(|_| status.is_redirection() && status.as_u16() != 304)
            {
                uri = resolve(&uri, location).map_err(AttemptError::new)?;
                continue;
            }
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let retry_after =
                header("retry-after").and_then(|v| parse_retry_after(&v, SystemTime::now()));
            let content_type = header("content-type");
            let reason = status.canonical_reason().unwrap_or("").to_string();
            let mut body = Vec::new();
            let mut reader = response
                .into_body()
                .into_reader()
                .take(body_limit as u64 + 1);
            reader.read_to_end(&mut body).map_err(|e| {
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) {
                    AttemptError::timed_out(started.elapsed())
                } else {
                    AttemptError::new(format!("reading the body failed: {e}"))
                }
            })?;
            let truncated = body.len() > body_limit;
            body.truncate(body_limit);
            return Ok(HttpResponse {
                status: status.as_u16(),
                reason,
                body,
                truncated,
                latency: started.elapsed(),
                retry_after,
                url: uri.to_string(),
                content_type,
            });
        }
        Err(AttemptError::new(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }
}

/// Check a URL given on the command line (http or https, with a host) and register the
/// secrets it carries with the scrubber before anything can print it.
pub fn check_url(url: &str, scrubber: &Scrubber) -> Result<Uri> {
    scrubber.add_url_secrets(url);
    parse_url(url)
}

/// Check a URL: http or https, with a host.
fn parse_url(url: &str) -> Result<Uri> {
    let uri: Uri = url
        .parse()
        .map_err(|e| Error::usage(format!("'{url}' is not a valid URL ({e})")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(Error::usage(format!(
                "'{url}' is not an http:// or https:// URL"
            )));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(Error::usage(format!("'{url}' has no host")));
    }
    // The parser takes any digits as a port (and then has none): 99999 could only ever be
    // "connection refused" until the deadline.
    let authority = uri.authority().map_or("", |a| a.as_str());
    let host_and_port = authority.rsplit('@').next().unwrap_or(authority);
    let after_host = &host_and_port[host_and_port.rfind(']').unwrap_or(0)..];
    if let Some((_, port)) = after_host.rsplit_once(':')
        && !port.is_empty()
        && uri.port_u16().is_none_or(|p| p == 0)
    {
        return Err(Error::usage(format!(
            "'{url}' has port {port}: a port is 1 to 65535"
        )));
    }
    Ok(uri)
}

fn is_loopback(uri: &Uri) -> bool {
    let host = uri
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn origin(uri: &Uri) -> (String, String, u16) {
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    let default = if scheme == "https" { 443 } else { 80 };
    (
        scheme,
        uri.host().unwrap_or("").to_ascii_lowercase(),
        uri.port_u16().unwrap_or(default),
    )
}

/// Resolve a `Location` against the URL that answered it.
fn resolve(base: &Uri, location: &str) -> Result<Uri, String> {
    let bad = |e: &dyn std::fmt::Display| {
        format!("the redirect to '{location}' is not a valid URL ({e})")
    };
    if location.contains("://") {
        return location.parse().map_err(|e| bad(&e));
    }
    let scheme = base.scheme_str().unwrap_or("http");
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}").parse().map_err(|e| bad(&e));
    }
    let authority = base.authority().map_or("", |a| a.as_str());
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let base_path = base.path();
        let dir = &base_path[..=base_path.rfind('/').unwrap_or(0)];
        format!("{dir}{location}")
    };
    format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| bad(&e))
}

fn tls_config(cacert: Option<&PathBuf>, insecure: bool) -> Result<ureq::tls::TlsConfig> {
    let mut builder = ureq::tls::TlsConfig::builder();
    if let Some(path) = cacert {
        let pem = std::fs::read(path).map_err(|e| {
            Error::usage(format!("--cacert {}: cannot read it ({e})", path.display()))
        })?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(Error::usage(format!(
                "--cacert {}: no PEM certificate in it",
                path.display()
            )));
        }
        builder = builder.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
    } else {
        builder = builder.root_certs(ureq::tls::RootCerts::PlatformVerifier);
    }
    Ok(builder.disable_verification(insecure).build())
}

/// A transport failure in words an operator can act on.
fn describe(err: &ureq::Error, started: Instant) -> AttemptError {
    let timed_out = || AttemptError::timed_out(started.elapsed());
    match err {
        ureq::Error::Timeout(_) => timed_out(),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => timed_out(),
        ureq::Error::HostNotFound => AttemptError::new("host not found"),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            AttemptError::new("connection refused")
        }
        other => AttemptError::new(other.to_string()),
    }
}

/// `Retry-After` as seconds or as an HTTP date.
#[must_use]
/// Capped at a day: a server cannot make a waiter's arithmetic overflow, and every wait is
/// clipped to its deadline anyway.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    const MAX: Duration = Duration::from_secs(86_400);
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(MAX))
}

/// IMF-fixdate, the one HTTP-date form servers send: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_http_date(text: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)
    .and_then(|i| i64::try_from(i).ok())?
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) {
        return None;
    }
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(0..24).contains(h) || !(0..60).contains(m) || !(0..=60).contains(s) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        let day = Some(Duration::from_secs(86_400));
        assert_eq!(parse_retry_after("18446744073709551615", now), day);
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 99999 23:59:59 GMT", now),
            None
        );
        assert_eq!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), day);
    }

    #[test]
    fn redirects_resolve_relative_to_the_answering_url() {
        let base: Uri = "http://[::1]:8080/a/b?x=1".parse().unwrap();
        assert_eq!(
            resolve(&base, "/c").unwrap().to_string(),
            "http://[::1]:8080/c"
        );
        assert_eq!(
            resolve(&base, "c").unwrap().to_string(),
            "http://[::1]:8080/a/c"
        );
        assert_eq!(resolve(&base, "//h/c").unwrap().to_string(), "http://h/c");
        assert_eq!(
            resolve(&base, "https://h/c").unwrap().to_string(),
            "https://h/c"
        );
        assert_ne!(
            origin(&base),
            origin(&"http://127.0.0.1:8080/".parse().unwrap())
        );
        assert!(is_loopback(&base));
        assert!(is_loopback(&"http://127.0.0.2/".parse().unwrap()));
        assert!(!is_loopback(&"http://10.0.0.1/".parse().unwrap()));
    }

    #[test]
    fn status_lists() {
        let set = StatusSet::parse("200,204, 3xx,401-403", "--status").unwrap();
        for code in [200, 204, 301, 399, 401, 403] {
            assert!(set.contains(code), "{code}");
        }
        for code in [201, 400, 404, 500] {
            assert!(!set.contains(code), "{code}");
        }
        for bad in ["abc", "700", "300-200", "700xx", "0xx", ""] {
            assert!(StatusSet::parse(bad, "--status").is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(parse_url("http://127.0.0.1:1/x").is_ok());
        assert!(parse_url("ftp://h/").is_err());
        assert!(parse_url("not a url").is_err());
        for bad_port in [
            "http://127.0.0.1:99999/",
            "http://h:0/",
            "http://u:p@[::1]:65536/",
        ] {
            assert!(parse_url(bad_port).is_err(), "{bad_port}");
        }
        for good in [
            "http://h:/",
            "http://u:p@h/",
            "http://[::1]/",
            "https://[::1]:65535/",
        ] {
            assert!(parse_url(good).is_ok(), "{good}");
        }
    }
}
