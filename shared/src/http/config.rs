//! What an HTTP client is made of, independent of how a tool got it: the shared flags are
//! one way to fill it in (`from_matches`), a tool may also build it in code.

use crate::error::{Error, Result};
use crate::scrub::Scrubber;
use clap::ArgMatches;
use std::path::PathBuf;

/// A header sent with every request, but only to the origin of the request's URL.
#[derive(Clone)]
pub struct Header {
    pub name: String,
    pub value: String,
    /// Its value is never shown (it came from `--header-env`, or its name says so).
    pub secret: bool,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.secret { "***" } else { &self.value };
        write!(f, "{}: {value}", self.name)
    }
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub headers: Vec<Header>,
    /// Trust these certificates (CAs, or the server's own) instead of the system's.
    pub cacert: Option<PathBuf>,
    /// Do not verify certificates at all.
    pub insecure: bool,
    pub user_agent: String,
    /// Keep connections open for the next request. Off for health checks: a pooled
    /// connection could still reach the old process.
    pub reuse_connections: bool,
    /// Honour `HTTPS_PROXY`, `NO_PROXY`, … (loopback targets never go through a proxy).
    pub use_proxy: bool,
    pub max_redirects: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            headers: Vec::new(),
            cacert: None,
            insecure: false,
            user_agent: format!("ugw/{}", env!("CARGO_PKG_VERSION")),
            reuse_connections: false,
            use_proxy: true,
            max_redirects: 10,
        }
    }
}

impl HttpConfig {
    /// The shared HTTP flags (`http::args()`). Secret values go to the scrubber first.
    pub fn from_matches(matches: &ArgMatches, scrubber: &Scrubber) -> Result<Self> {
        super::HttpFlags::from_matches(matches).config(scrubber)
    }

    /// Add a header for every request (to the request's origin only).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str, secret: bool) -> Self {
        self.headers.push(Header {
            name: name.to_string(),
            value: value.to_string(),
            secret,
        });
        self
    }

    pub(super) fn register_secrets(&self, scrubber: &Scrubber) {
        for header in self.headers.iter().filter(|h| h.secret) {
            scrubber.add_secret(&header.value);
        }
    }

    /// Every header is one HTTP can carry; the value is never quoted.
    pub(super) fn check_headers(&self) -> Result<()> {
        for h in &self.headers {
            ureq::http::HeaderName::try_from(h.name.as_str())
                .map_err(|_| Error::usage(format!("'{}' is not a valid header name", h.name)))?;
            ureq::http::HeaderValue::try_from(h.value.as_str()).map_err(|_| {
                Error::usage(format!(
                    "the value of header '{}' is not valid in HTTP",
                    h.name
                ))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(args: &[&str]) -> ArgMatches {
        clap::Command::new("t")
            .args(crate::http::args())
            .try_get_matches_from(std::iter::once("t").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn the_flags_make_a_config_and_its_secrets_are_registered() {
        let scrubber = Scrubber::default();
        let m = matches(&[
            "--header",
            "X-Trace: abc",
            "--header",
            "Authorization: Bearer k3y-v4lue-42",
            "--insecure",
        ]);
        let config = HttpConfig::from_matches(&m, &scrubber).unwrap();
        let shown: Vec<_> = config.headers.iter().map(|h| format!("{h:?}")).collect();
        assert_eq!(shown, ["X-Trace: abc", "Authorization: ***"]);
        assert!(config.insecure && !config.reuse_connections && config.use_proxy);
        assert_eq!(scrubber.scrub_str("v=k3y-v4lue-42"), "v=***");
        assert!(!format!("{config:?}").contains("k3y-v4lue-42"));
    }

    #[test]
    fn a_header_http_cannot_carry_is_refused_without_its_value() {
        let config = HttpConfig::default().header("X-Bad", "line\nbreak-s3cret", false);
        let err = config.check_headers().unwrap_err();
        assert!(!err.message.contains("s3cret"), "{}", err.message);
        let config = HttpConfig::default().header("Bad Name", "v", false);
        assert!(config.check_headers().is_err());
    }
}
