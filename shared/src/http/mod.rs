//! The HTTP client every tool uses: one set of flags (`--header`, `--header-env`, `--cacert`,
//! `--insecure`) made into an [`HttpConfig`], and an [`HttpClient`] whose `send()` streams
//! the answer (the body reader gives way to Ctrl-C and the deadline), follows redirects
//! itself so user headers never reach another origin, and explains its failures.

mod client;
mod config;
pub mod expect;
mod flags;
pub mod scoped;
mod tls;
mod transport;

pub use client::{Body, HttpClient, HttpResponse, Request, RequestBody, Response};
pub use config::{Header, HttpConfig};
pub use expect::{BODY_LIMIT, Expectations, GivenAs, JqBudget, MissKind, Missed};
pub use flags::{HttpFlags, args, header_from_env, header_given};
pub use tls::{AnyCertificate, CertificateJudge, Judged, PeerCertificate, peer_certificate};

use crate::error::{Error, Result};
use crate::scrub::Scrubber;
use std::time::{Duration, SystemTime};
/// HTTP methods, for tools that let the operator choose one.
pub use ureq::http::Method;
use url::Url;

/// A set of HTTP status codes as operators write it: `200`, `200,204`, `2xx`, `200-299`.
#[derive(Debug, Clone)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
    /// As written, for messages (`expecting 2xx`).
    text: String,
}

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
        Ok(StatusSet {
            ranges,
            text: text.trim().to_string(),
        })
    }

    /// The list as it was written.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    #[must_use]
    pub fn contains(&self, code: u16) -> bool {
        self.ranges
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&code))
    }
}

/// Check a URL given on the command line (http or https, with a host) and register the
/// secrets it carries with the scrubber before anything can print it.
pub fn check_url(url: &str, scrubber: &Scrubber) -> Result<Url> {
    // The scrubber reads the secrets of every shape, `user:pw@host/x` without a scheme
    // included: the refusal below quotes the URL.
    scrubber.add_url_secrets(url);
    parse_url(url)
}

/// Check a URL: http or https, with a host.
fn parse_url(text: &str) -> Result<Url> {
    if !text.contains("://") {
        return Err(Error::usage(format!(
            "'{text}' has no scheme: add http:// (or https://) in front"
        )));
    }
    let url = Url::parse(text).map_err(|e| match e {
        url::ParseError::InvalidPort => Error::usage(format!(
            "'{text}' has an invalid port: a port is 1 to 65535"
        )),
        e => Error::usage(format!("'{text}' is not a valid URL ({e})")),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::usage(format!(
            "'{text}' is not an http:// or https:// URL"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::usage(format!("'{text}' has no host")));
    }
    // Port 0 parses (and 65536 does not): either could only ever be "connection refused"
    // until the deadline.
    if url.port() == Some(0) {
        return Err(Error::usage(format!(
            "'{text}' has port 0: a port is 1 to 65535"
        )));
    }
    Ok(url)
}

/// Scheme, host and port (the scheme's default when not written): headers the operator gave
/// for one origin are never sent to another.
fn origin(url: &Url) -> (String, String, u16) {
    (
        url.scheme().to_string(),
        url.host_str().unwrap_or("").to_ascii_lowercase(),
        url.port_or_known_default().unwrap_or(0),
    )
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Resolve a `Location` against the URL that answered it (RFC 3986).
fn resolve(base: &Url, location: &str) -> Result<Url, String> {
    let url = base
        .join(location)
        .map_err(|e| format!("the redirect to '{location}' is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "the redirect to '{location}' is not an http:// or https:// URL"
        ));
    }
    Ok(url)
}

/// `Retry-After` as seconds or as an HTTP date.
/// Capped at a day: a server cannot make a waiter's arithmetic overflow, and every wait is
/// clipped to its deadline anyway.
#[must_use]
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    const MAX: Duration = Duration::from_secs(86_400);
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn retry_after_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        // The two obsolete forms HTTP still asks clients to read.
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:37 1994", now),
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
        let base = url("http://[::1]:8080/a/b?x=1");
        for (location, expected) in [
            ("/c", "http://[::1]:8080/c"),
            ("c", "http://[::1]:8080/a/c"),
            ("?y=2", "http://[::1]:8080/a/b?y=2"),
            ("../c", "http://[::1]:8080/c"),
            ("./c/../d#f", "http://[::1]:8080/a/d#f"),
            ("//h/c", "http://h/c"),
            ("https://h/c", "https://h/c"),
        ] {
            assert_eq!(resolve(&base, location).unwrap().as_str(), expected);
        }
        assert!(resolve(&base, "ftp://h/c").is_err());
        assert!(resolve(&base, "http://[::1/").is_err());
    }

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        let base = url("http://127.0.0.1:8080/a");
        assert_eq!(origin(&base), origin(&url("http://127.0.0.1:8080/b?c")));
        assert_eq!(origin(&url("http://h/")), origin(&url("http://H:80/")));
        for other in [
            "http://localhost:8080/a",
            "https://127.0.0.1:8080/a",
            "http://127.0.0.1:8081/a",
            "http://127.0.0.1/a",
        ] {
            assert_ne!(origin(&base), origin(&url(other)), "{other}");
        }
        assert!(is_loopback(&url("http://[::1]:8080/")));
        assert!(is_loopback(&url("http://127.0.0.2/")));
        assert!(is_loopback(&url("http://LocalHost/")));
        assert!(!is_loopback(&url("http://10.0.0.1/")));
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
        let err = parse_url("127.0.0.1:8080/x").unwrap_err();
        assert!(err.message.contains("add http://"), "{}", err.message);
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

    #[test]
    fn a_url_without_a_scheme_has_its_secrets_registered_before_the_error() {
        let scrubber = Scrubber::default();
        let err = check_url("user:SECRETPW12@127.0.0.1:8080/ok", &scrubber).unwrap_err();
        let shown = scrubber.scrub_str(&err.message);
        assert!(!shown.contains("SECRETPW12"), "{shown}");
        assert!(shown.contains("add http://"), "{shown}");
    }
}
