//! The flags, checked and compiled once before the first attempt: every mistake here is a
//! usage error (exit 2) with nothing attempted.

use crate::probe::Target;
use clap::ArgMatches;
use regex::Regex;
use std::time::Duration;
use ugw_shared::http::{self, HttpClient, StatusSet};
use ugw_shared::jq::JqExpr;
use ugw_shared::poll::PollPlan;
use ugw_shared::results::Fetched;
use ugw_shared::{Ctx, Error, Result};

#[derive(Debug)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub client: Option<HttpClient>,
    pub method: ugw_shared::http::Method,
    pub status: StatusSet,
    pub expect: Vec<JqExpr>,
    pub body_regex: Option<Regex>,
    pub expect_version: Option<String>,
    pub version_path: JqExpr,
    pub max_latency: Option<Duration>,
    pub fail_if: Vec<JqExpr>,
    pub fail_status: Option<StatusSet>,
    pub timeout: Duration,
    pub attempt_timeout: Duration,
    pub interval: Duration,
    pub max_interval: Option<Duration>,
    pub successes: u32,
    pub stable_for: Option<Duration>,
    pub until_down: bool,
}

impl Plan {
    pub fn from_matches(ctx: &Ctx, m: &ArgMatches) -> Result<Self> {
        let strings = |id: &str| {
            m.get_many::<String>(id)
                .into_iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
        };
        let mut targets = Vec::new();
        for url in strings("url") {
            http::check_url(&url, ctx.scrubber())?;
            targets.push(Target::Http { url });
        }
        for addr in strings("tcp") {
            targets.push(Target::Tcp {
                addr: ugw_shared::tcp::check_addr(&addr, "--tcp")?,
            });
        }
        for command in strings("cmd") {
            if command.trim().is_empty() {
                return Err(Error::usage("--cmd needs a command"));
            }
            targets.push(Target::Cmd { command });
        }
        let has_http = targets.iter().any(|t| matches!(t, Target::Http { .. }));
        let has_cmd = targets.iter().any(|t| matches!(t, Target::Cmd { .. }));

        let compile_all = |id: &str| {
            strings(id)
                .iter()
                .map(|e| JqExpr::compile(e, &format!("--{id}")))
                .collect::<Result<Vec<_>>>()
        };
        let expect = compile_all("expect")?;
        let fail_if = compile_all("fail-if")?;
        let version_path = JqExpr::compile(
            m.get_one::<String>("version-path")
                .map_or(".version", String::as_str),
            "--version-path",
        )?;
        let body_regex = m
            .get_one::<String>("body-regex")
            .map(|re| {
                Regex::new(re).map_err(|e| {
                    Error::usage(format!(
                        "--body-regex '{re}' is not a valid regular expression: {e}"
                    ))
                })
            })
            .transpose()?;
        let status = StatusSet::parse(
            m.get_one::<String>("status").map_or("2xx", String::as_str),
            "--status",
        )?;
        let fail_status = m
            .get_one::<String>("fail-status")
            .map(|s| StatusSet::parse(s, "--fail-status"))
            .transpose()?;
        let method_text = m
            .get_one::<String>("method")
            .map_or("GET", String::as_str)
            .to_ascii_uppercase();
        let method = ugw_shared::http::Method::from_bytes(method_text.as_bytes())
            .map_err(|_| Error::usage(format!("--method '{method_text}' is not an HTTP method")))?;

        let expect_version = match m.get_one::<String>("expect-version") {
            None => None,
            Some(given) => {
                let given = Some(given.trim().to_string()).filter(|v| !v.is_empty());
                ctx.record().flag_or_earlier(
                    "--expect-version",
                    given,
                    ctx.dry_run,
                    |f: Fetched| f.version,
                )?
            }
        };
        let uses_http_assertions = !expect.is_empty()
            || !fail_if.is_empty()
            || body_regex.is_some()
            || expect_version.is_some()
            || fail_status.is_some()
            || m.contains_id("status")
                && m.value_source("status") == Some(clap::parser::ValueSource::CommandLine);
        if uses_http_assertions && !has_http {
            return Err(Error::usage(
                "HTTP assertions (--expect, --status, --expect-version, --fail-if, …) need a --url target",
            ));
        }
        let client = if has_http {
            Some(ctx.http_client(m)?)
        } else {
            None
        };

        let duration = |id: &str| m.get_one::<Duration>(id).copied();
        // Both have defaults in `command()`; clap always fills them in.
        let timeout = ctx.timeout().expect("--timeout has a default");
        let interval = duration("interval").unwrap_or(if has_cmd {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(100)
        });
        if interval.is_zero() {
            return Err(Error::usage("--interval must be more than 0"));
        }
        Ok(Plan {
            targets,
            client,
            method,
            status,
            expect,
            body_regex,
            expect_version,
            version_path,
            max_latency: duration("max-latency"),
            fail_if,
            fail_status,
            timeout,
            attempt_timeout: duration("attempt-timeout").expect("--attempt-timeout has a default"),
            interval,
            max_interval: duration("max-interval"),
            successes: m.get_one::<u32>("successes").copied().unwrap_or(1),
            stable_for: duration("stable-for"),
            until_down: m.get_flag("until-down"),
        })
    }

    /// Whether any assertion reads the body as JSON (only then is it parsed).
    pub fn needs_json(&self) -> bool {
        !self.expect.is_empty() || !self.fail_if.is_empty() || self.expect_version.is_some()
    }

    /// How long the targets must keep passing, in words.
    pub fn stability(&self) -> String {
        let rounds = format!("{} rounds in a row", self.successes);
        match self.stable_for {
            Some(d) if self.successes > 1 => format!("{rounds} for {}", ugw_shared::time::human(d)),
            Some(d) => format!("for {}", ugw_shared::time::human(d)),
            None => rounds,
        }
    }

    pub fn poll_plan(&self) -> PollPlan {
        PollPlan {
            timeout: self.timeout,
            interval: self.interval,
            max_interval: self.max_interval,
            attempt_timeout: self.attempt_timeout,
        }
    }
}
