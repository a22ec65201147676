//! Which headers go where (issue 20 item 7): `--header`/`--header-env` are for the origin of
//! `--url` only. A SHA256SUMS or signature URL on another origin (a second host, a CDN) gets
//! only `--sums-header`/`--sums-header-env`; one on `--url`'s origin gets both. A token for
//! the release server never reaches whoever serves the checksum file.

use crate::id;
use clap::Arg;
use ugw_shared::Result;
use ugw_shared::cli::flag;
use ugw_shared::http::{Header, HttpClient, HttpConfig, header_from_env, header_given};
use ugw_shared::scrub::Scrubber;

/// The flags, for the "HTTP" section of the help.
pub(crate) fn args() -> [Arg; 2] {
    [
        flag::repeated(
            id::SUMS_HEADER,
            "NAME: VALUE",
            clap::value_parser!(String),
            "A header for the --sha256-url and --minisign-sig-url requests (repeatable); --header goes to --url's origin only",
        ),
        flag::repeated(
            id::SUMS_HEADER_ENV,
            "NAME=ENVVAR",
            clap::value_parser!(String),
            "The same, its value read from ENVVAR and never shown (repeatable)",
        ),
    ]
}

/// `--sums-header*` as headers, `given` (`NAME: VALUE`) first, then `from_env`
/// (`NAME=ENVVAR`).
pub(crate) fn sums_headers(given: &[String], from_env: &[String]) -> Result<Vec<Header>> {
    given
        .iter()
        .map(|raw| header_given("--sums-header", raw))
        .chain(
            from_env
                .iter()
                .map(|raw| header_from_env("--sums-header-env", raw)),
        )
        .collect()
}

/// The clients of one run: the artifact's, and the side files' by origin.
pub(crate) struct Clients {
    pub artifact: HttpClient,
    /// `--url`'s origin: `--header*` and `--sums-header*`.
    side_same_origin: HttpClient,
    /// Any other origin: `--sums-header*` only.
    side_other_origin: HttpClient,
    origin: Option<url::Origin>,
}

impl Clients {
    /// `config` is the shared HTTP flags' (with `--header*`), `sums_headers` the
    /// `--sums-header*` ones, `url` the artifact's.
    pub(crate) fn new(
        config: HttpConfig,
        sums_headers: &[Header],
        url: &str,
        scrubber: &Scrubber,
    ) -> Result<Self> {
        let mut other = config.clone();
        other.headers.clear();
        let mut same = config.clone();
        for header in sums_headers {
            other = other.header(&header.name, &header.value, header.secret);
            same = same.header(&header.name, &header.value, header.secret);
        }
        Ok(Clients {
            artifact: HttpClient::new(config, scrubber)?,
            side_same_origin: HttpClient::new(same, scrubber)?,
            side_other_origin: HttpClient::new(other, scrubber)?,
            origin: url::Url::parse(url).ok().map(|u| u.origin()),
        })
    }

    /// The client for a checksum or signature file at `url`.
    pub(crate) fn side(&self, url: &str) -> &HttpClient {
        let origin = url::Url::parse(url).ok().map(|u| u.origin());
        match (&origin, &self.origin) {
            (Some(side), Some(artifact)) if side == artifact && side.is_tuple() => {
                &self.side_same_origin
            }
            _ => &self.side_other_origin,
        }
    }
}
