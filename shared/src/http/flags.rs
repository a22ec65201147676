//! The HTTP flags every tool that speaks HTTP shares (`--header`, `--header-env`,
//! `--cacert`, `--insecure`): defined once ([`args`]), read once into [`HttpFlags`], and made
//! into an [`HttpConfig`] there, so no tool reads their ids by hand.

use super::config::{Header, HttpConfig};
use crate::error::{Error, Result};
use crate::scrub::Scrubber;
use clap::{Arg, ArgAction, ArgMatches};
use std::path::PathBuf;

/// The flags' ids.
pub const HEADER: &str = "header";
pub const HEADER_ENV: &str = "header-env";
pub const CACERT: &str = "cacert";
pub const INSECURE: &str = "insecure";

/// The HTTP flags, defined once for every tool that speaks HTTP.
#[must_use]
pub fn args() -> Vec<Arg> {
    vec![
        Arg::new(HEADER)
            .long(HEADER)
            .value_name("'NAME: VALUE'")
            .action(ArgAction::Append)
            .help("Send this header with every request (repeatable); not for secrets, see --header-env"),
        Arg::new(HEADER_ENV)
            .long(HEADER_ENV)
            .value_name("NAME=ENVVAR")
            .action(ArgAction::Append)
            .help("Send header NAME with the value of environment variable ENVVAR (repeatable); the value is never shown"),
        Arg::new(CACERT)
            .long(CACERT)
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help("Trust the certificates in this PEM file (CAs, or the server's own self-signed one) instead of the system's"),
        Arg::new(INSECURE)
            .long(INSECURE)
            .action(ArgAction::SetTrue)
            .help("Do not verify TLS certificates (self-signed test set-ups only)"),
    ]
}

/// The shared HTTP flags as given, before anything is checked.
#[derive(Clone, Default)]
pub struct HttpFlags {
    /// `NAME: VALUE`, as given (not shown: it may hold a secret).
    pub headers: Vec<String>,
    /// `NAME=ENVVAR`.
    pub header_env: Vec<String>,
    pub cacert: Option<PathBuf>,
    pub insecure: bool,
}

/// Never the headers' text: a `--header` may hold a secret.
impl std::fmt::Debug for HttpFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFlags")
            .field("headers", &self.headers.len())
            .field("header_env", &self.header_env)
            .field("cacert", &self.cacert)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl HttpFlags {
    /// The flags of [`args`] in `matches`.
    #[must_use]
    pub fn from_matches(matches: &ArgMatches) -> Self {
        let strings = |id: &str| -> Vec<String> {
            matches
                .get_many::<String>(id)
                .into_iter()
                .flatten()
                .cloned()
                .collect()
        };
        HttpFlags {
            headers: strings(HEADER),
            header_env: strings(HEADER_ENV),
            cacert: matches.get_one::<PathBuf>(CACERT).cloned(),
            insecure: matches.get_flag(INSECURE),
        }
    }

    /// The client configuration these flags describe; secret values go to the scrubber
    /// before anything can print them.
    pub fn config(&self, scrubber: &Scrubber) -> Result<HttpConfig> {
        let mut config = HttpConfig::default();
        for raw in &self.headers {
            config.headers.push(header_given("--header", raw)?);
        }
        for raw in &self.header_env {
            config.headers.push(header_from_env("--header-env", raw)?);
        }
        config.register_secrets(scrubber);
        config.cacert.clone_from(&self.cacert);
        config.insecure = self.insecure;
        Ok(config)
    }
}

/// One `NAME: VALUE` given to `flag` (`--header`, ugw-fetch's `--sums-header`) as a header,
/// secret when its name says so.
pub fn header_given(flag: &str, raw: &str) -> Result<Header> {
    let Some((name, value)) = raw.split_once(':') else {
        // Not quoted: a malformed header may well hold the secret itself.
        return Err(Error::usage(format!(
            "a {flag} is not 'NAME: VALUE' (its text is not shown, as it may hold a secret)"
        )));
    };
    let name = name.trim();
    Ok(Header {
        name: name.to_string(),
        value: value.trim().to_string(),
        secret: Scrubber::is_secret_name(name),
    })
}

/// One `NAME=ENVVAR` given to `flag` as a header whose value is read from the environment:
/// always secret, as it was kept out of argv for a reason.
pub fn header_from_env(flag: &str, raw: &str) -> Result<Header> {
    let Some((name, var)) = raw.split_once('=') else {
        return Err(Error::usage(format!("{flag} '{raw}' is not 'NAME=ENVVAR'")));
    };
    let value = std::env::var(var.trim()).map_err(|_| {
        Error::usage(format!(
            "{flag} {raw}: environment variable {} is not set (or not UTF-8)",
            var.trim()
        ))
    })?;
    Ok(Header {
        name: name.trim().to_string(),
        value,
        secret: true,
    })
}
