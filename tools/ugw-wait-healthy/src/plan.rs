//! The flags, checked and compiled once before the first attempt: every mistake here, and
//! every value that makes no sense (a 1 ns beat, port 99999, a goal the deadline cannot
//! allow), is a usage error (exit 2) with nothing attempted.

use crate::probe::Target;
use crate::watched::Source;
use clap::ArgMatches;
use clap::parser::ValueSource;
use regex::{Regex, RegexBuilder};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;
use ugw_shared::http::{self, HttpClient, Method, Request, StatusSet};
use ugw_shared::jq::JqExpr;
use ugw_shared::poll::PollPlan;
use ugw_shared::results::{Fetched, Swapped, WaitMode};
use ugw_shared::time::human;
use ugw_shared::{Ctx, Error, Result};

/// The fastest beat: below it a wait is a load test of the service it waits for.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// The flags of an HTTP request and its answer: given before the first target they apply to
/// every `--url`, given after a `--url` they apply to it alone.
pub const HTTP_FLAGS: [&str; 11] = [
    "method",
    "data",
    "data-file",
    "status",
    "expect",
    "body-regex",
    "expect-version",
    "version-path",
    "max-latency",
    "fail-if",
    "fail-status",
];

/// What clap gives `--expect-version` without a value: a NUL, which no argument can hold, so
/// that an empty value (`--expect-version "$UNSET"`) is told apart from no value.
pub const FROM_THE_RECORD: &str = "\0";

/// The longest `--data-file`: a smoke check's request, not an upload.
const MAX_DATA_FILE: u64 = 8 * 1024 * 1024;

/// What is sent to one `--url`: its method and body (with every attempt).
#[derive(Debug, Clone)]
pub struct HttpSend {
    pub method: Method,
    pub body: Option<Vec<u8>>,
}

impl HttpSend {
    pub fn request(&self, url: &str) -> Request {
        let request = Request::new(self.method.clone(), url);
        match &self.body {
            Some(bytes) => request.body(bytes.clone()),
            None => request,
        }
    }
}

/// What an HTTP answer must show; one set per `--url` target.
#[derive(Debug)]
pub struct HttpChecks {
    pub status: StatusSet,
    pub expect: Vec<JqExpr>,
    pub body_regex: Vec<Regex>,
    pub expect_version: Option<String>,
    pub version_path: JqExpr,
    pub max_latency: Option<Duration>,
    pub fail_if: Vec<JqExpr>,
    pub fail_status: Option<StatusSet>,
}

impl HttpChecks {
    /// Whether any assertion reads the body as JSON (only then is it parsed).
    pub fn needs_json(&self) -> bool {
        !self.expect.is_empty() || !self.fail_if.is_empty() || self.expect_version.is_some()
    }
}

#[derive(Debug)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub client: Option<HttpClient>,
    /// `--timeout`, for what is said about it; the deadline itself is `Ctx::deadline()`.
    pub timeout: Duration,
    pub attempt_timeout: Duration,
    pub interval: Duration,
    pub max_interval: Option<Duration>,
    pub successes: u32,
    pub stable_for: Option<Duration>,
    pub max_failures: u32,
    pub until_down: bool,
    pub any: bool,
    pub once: bool,
    /// The program to run in this process once healthy (`-- CMD ARGS`).
    pub then_run: Option<Vec<OsString>>,
    /// The process that must keep running while the wait goes on (`--pid`, `--pidfile`).
    pub watch: Option<Source>,
    /// `--fail-if-version-differs N`: another version answering N rounds in a row fails.
    pub version_differs: Option<u32>,
}

impl Plan {
    pub fn from_matches(ctx: &Ctx, m: &ArgMatches) -> Result<Self> {
        let targets = targets(ctx, m)?;
        let has_http = targets.iter().any(|t| matches!(t, Target::Http { .. }));
        let has_cmd = targets.iter().any(|t| matches!(t, Target::Cmd { .. }));
        let duration = |id: &str| m.get_one::<Duration>(id).copied();
        let plan = Plan {
            targets,
            client: if has_http {
                Some(HttpClient::from_matches(m, ctx.scrubber())?)
            } else {
                None
            },
            // Both have defaults in `command()`; clap always fills them in.
            timeout: ctx.step_timeout(),
            attempt_timeout: duration("attempt-timeout").expect("--attempt-timeout has a default"),
            interval: duration("interval").unwrap_or(if has_cmd {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(100)
            }),
            max_interval: duration("max-interval"),
            successes: m.get_one::<u32>("successes").copied().unwrap_or(1),
            stable_for: duration("stable-for"),
            max_failures: m.get_one::<u32>("max-failures").copied().unwrap_or(0),
            until_down: m.get_flag("until-down"),
            any: m.get_flag("any"),
            once: m.get_flag("once"),
            then_run: then_run(m)?,
            watch: match (m.get_one::<i32>("pid"), m.get_one::<PathBuf>("pidfile")) {
                (Some(pid), _) => Some(Source::Pid(*pid)),
                (None, Some(path)) => Some(Source::Pidfile(path.clone())),
                (None, None) => None,
            },
            version_differs: m.get_one::<u32>("fail-if-version-differs").copied(),
        };
        plan.check_timing()?;
        plan.check_watching()?;
        Ok(plan)
    }

    /// Refuse timing that makes no sense or that the deadline cannot allow.
    fn check_timing(&self) -> Result<()> {
        let refuse = |why: String| Err(Error::usage(why));
        if self.timeout.is_zero() {
            return refuse("--timeout must be more than 0".into());
        }
        if self.interval < MIN_INTERVAL {
            return refuse(format!(
                "--interval must be at least {}: a faster beat floods the service",
                human(MIN_INTERVAL)
            ));
        }
        if self.attempt_timeout.is_zero() {
            return refuse("--attempt-timeout must be more than 0".into());
        }
        if let Some(max) = self.max_interval.filter(|max| *max < self.interval) {
            return refuse(format!(
                "--max-interval {} is below --interval {}",
                human(max),
                human(self.interval)
            ));
        }
        if self.once && (self.successes > 1 || self.stable_for.is_some()) {
            return refuse(
                "--once is a single round: it takes no --successes or --stable-for".into(),
            );
        }
        if self.max_failures > 0 && self.stable_for.is_none() {
            return refuse(
                "--max-failures forgives failed rounds within --stable-for; give --stable-for"
                    .into(),
            );
        }
        if let Some(stable) = self.stable_for.filter(|d| *d >= self.timeout) {
            return refuse(format!(
                "--stable-for {} cannot be met within --timeout {}",
                human(stable),
                human(self.timeout)
            ));
        }
        // The beat may run 10% fast; even so, these rounds cannot fit in the deadline.
        let shortest = (self.interval * (self.successes - 1)).mul_f64(0.9);
        if shortest >= self.timeout {
            return refuse(format!(
                "--successes {} at --interval {} cannot be met within --timeout {}",
                self.successes,
                human(self.interval),
                human(self.timeout)
            ));
        }
        Ok(())
    }

    /// Refuse a watched process or a version counter the wait cannot use.
    fn check_watching(&self) -> Result<()> {
        if self.watch.is_some() && self.until_down {
            return Err(Error::usage(
                "--pid/--pidfile watch a process that must stay up; --until-down waits for \
                 targets to stop answering (drop one of them)",
            ));
        }
        if self.version_differs.is_some() && self.expect_version().is_none() {
            return Err(Error::usage(
                "--fail-if-version-differs counts rounds answering another version than \
                 --expect-version: give --expect-version",
            ));
        }
        Ok(())
    }

    pub fn mode(&self) -> WaitMode {
        if self.until_down {
            WaitMode::Down
        } else {
            WaitMode::Up
        }
    }

    /// The version the first `--url` expects, for the record.
    pub fn expect_version(&self) -> Option<&str> {
        self.targets.iter().find_map(|t| match t {
            Target::Http { checks, .. } => checks.expect_version.as_deref(),
            _ => None,
        })
    }

    /// How long the targets must keep passing, in words.
    pub fn stability(&self) -> String {
        let rounds = format!("{} rounds in a row", self.successes);
        match self.stable_for {
            Some(d) if self.successes > 1 => format!("{rounds} for {}", human(d)),
            Some(d) => format!("for {}", human(d)),
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

/// The words after `--`: a program to run once healthy. A `--` with nothing after it is a
/// mistake (a variable that expanded to nothing), not "run nothing".
fn then_run(m: &ArgMatches) -> Result<Option<Vec<OsString>>> {
    let argv: Vec<OsString> = m
        .get_many::<OsString>("command")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if !argv.is_empty() {
        return Ok(Some(argv));
    }
    // clap keeps no trace of a `--` with nothing after it; a last word `--` can only be that
    // (no flag here takes a value that starts with a dash).
    if std::env::args_os()
        .skip(1)
        .last()
        .is_some_and(|last| last == "--")
    {
        return Err(Error::usage(
            "-- needs a command to run once healthy (-- ./server --flag)",
        ));
    }
    Ok(None)
}

fn method(given: Option<&str>) -> Result<Method> {
    let text = given.unwrap_or("GET").to_ascii_uppercase();
    Method::from_bytes(text.as_bytes())
        .map_err(|_| Error::usage(format!("--method '{text}' is not an HTTP method")))
}

/// The body of `--data-file`, read once before the first attempt.
fn data_file(path: &Path) -> Result<Vec<u8>> {
    let cannot = |e: std::io::Error| Error::usage(format!("--data-file {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_DATA_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_DATA_FILE {
        return Err(Error::usage(format!(
            "--data-file {} is larger than {} MiB: a smoke check sends a small request",
            path.display(),
            MAX_DATA_FILE / 1024 / 1024
        )));
    }
    Ok(bytes)
}

/// The values of flag `id` with their positions on the command line, as given there (not
/// defaults).
fn positioned<T: Clone + Send + Sync + 'static>(m: &ArgMatches, id: &str) -> Vec<(usize, T)> {
    if m.value_source(id) != Some(ValueSource::CommandLine) {
        return Vec::new();
    }
    match (m.indices_of(id), m.get_many::<T>(id)) {
        (Some(indices), Some(values)) => indices.zip(values.cloned()).collect(),
        _ => Vec::new(),
    }
}

/// The targets in command-line order, each with the assertions that apply to it.
fn targets(ctx: &Ctx, m: &ArgMatches) -> Result<Vec<Target>> {
    let mut given: Vec<(usize, &str, String)> = Vec::new();
    for kind in ["url", "tcp", "cmd"] {
        let values = positioned::<String>(m, kind).into_iter();
        given.extend(values.map(|(index, value)| (index, kind, value)));
    }
    given.sort_by_key(|(index, ..)| *index);
    let starts: Vec<usize> = given.iter().map(|(index, ..)| *index).collect();
    let scopes = Scopes::new(m, &starts);
    scopes.refuse_misplaced(&given)?;
    let mut targets = Vec::with_capacity(given.len());
    for (position, (_, kind, value)) in given.into_iter().enumerate() {
        targets.push(match kind {
            "url" => {
                http::check_url(&value, ctx.scrubber())?;
                let send = scopes.http_send(position)?;
                let checks = scopes.http_checks(ctx, position)?;
                Target::Http {
                    url: value,
                    send,
                    checks: Box::new(checks),
                }
            }
            "tcp" => Target::Tcp {
                addr: ugw_shared::tcp::check_addr(&value, "--tcp")?,
            },
            _ if value.trim().is_empty() => return Err(Error::usage("--cmd needs a command")),
            _ => Target::Cmd { command: value },
        });
    }
    Ok(targets)
}

/// The assertion flags' values by scope: before the first target (for every `--url`), or
/// after target `i` (for it alone).
struct Scopes<'a> {
    m: &'a ArgMatches,
    starts: &'a [usize],
}

impl<'a> Scopes<'a> {
    fn new(m: &'a ArgMatches, starts: &'a [usize]) -> Self {
        Scopes { m, starts }
    }

    /// Scope 0 is global, scope `i + 1` belongs to target `i`.
    fn scope_of(&self, index: usize) -> usize {
        self.starts
            .iter()
            .take_while(|start| **start < index)
            .count()
    }

    /// The values of `id` that apply to target `position`: the global ones, then its own.
    fn values<T: Clone + Send + Sync + 'static>(&self, id: &str, position: usize) -> Vec<T> {
        positioned::<T>(self.m, id)
            .into_iter()
            .filter(|(index, _)| [0, position + 1].contains(&self.scope_of(*index)))
            .map(|(_, value)| value)
            .collect()
    }

    /// An HTTP flag given after a TCP or command target, or with no `--url` at all.
    fn refuse_misplaced(&self, given: &[(usize, &str, String)]) -> Result<()> {
        let has_http = given.iter().any(|(_, kind, _)| *kind == "url");
        for id in HTTP_FLAGS {
            if self.m.value_source(id) != Some(ValueSource::CommandLine) {
                continue;
            }
            let indices: Vec<usize> = self.m.indices_of(id).into_iter().flatten().collect();
            if !has_http {
                return Err(Error::usage(format!(
                    "--{id} is an HTTP flag: it needs a --url target"
                )));
            }
            if let Some((_, kind, value)) = indices
                .iter()
                .map(|index| self.scope_of(*index))
                .filter(|scope| *scope > 0)
                .map(|scope| &given[scope - 1])
                .find(|(_, kind, _)| *kind != "url")
            {
                return Err(Error::usage(format!(
                    "--{id} follows --{kind} '{value}', but HTTP flags apply to the --url they follow \
                     (or, given before the first target, to every --url)"
                )));
            }
        }
        Ok(())
    }

    /// The method and body for target `position`: its own, else the global ones. `--data`
    /// keeps the method (a GET with a body is sent as is, as some search APIs expect).
    fn http_send(&self, position: usize) -> Result<HttpSend> {
        let method = method(self.values::<String>("method", position).pop().as_deref())?;
        let data = self.values::<String>("data", position).pop();
        let body = match self.values::<PathBuf>("data-file", position).pop() {
            Some(path) => Some(data_file(&path)?),
            None => data.map(String::into_bytes),
        };
        Ok(HttpSend { method, body })
    }

    fn http_checks(&self, ctx: &Ctx, position: usize) -> Result<HttpChecks> {
        let strings = |id: &str| self.values::<String>(id, position);
        // One value: the target's own wins over the global one.
        let one = |id: &str| strings(id).pop();
        let compile_all = |id: &str| {
            strings(id)
                .iter()
                .map(|e| JqExpr::compile(e, &format!("--{id}")))
                .collect::<Result<Vec<_>>>()
        };
        let max_latency = self.values::<Duration>("max-latency", position).pop();
        if max_latency.is_some_and(|d| d.is_zero()) {
            return Err(Error::usage("--max-latency must be more than 0"));
        }
        Ok(HttpChecks {
            status: StatusSet::parse(one("status").as_deref().unwrap_or("2xx"), "--status")?,
            expect: compile_all("expect")?,
            body_regex: strings("body-regex")
                .iter()
                .map(|re| body_regex(re))
                .collect::<Result<_>>()?,
            expect_version: match one("expect-version") {
                // Without a value: the version this run's rollback went back to, else the
                // version the last ugw-fetch step staged.
                Some(given) => match expected_version(&given)? {
                    None if let Some(back_to) = rolled_back_to(ctx)? => Some(back_to),
                    given => ctx.this_run().flag_or_earlier(
                        "--expect-version",
                        given,
                        ctx.dry_run,
                        |f: Fetched| f.version,
                    )?,
                },
                None => None,
            },
            version_path: JqExpr::compile(
                one("version-path").as_deref().unwrap_or(".version"),
                "--version-path",
            )?,
            max_latency,
            fail_if: compile_all("fail-if")?,
            fail_status: one("fail-status")
                .map(|s| StatusSet::parse(&s, "--fail-status"))
                .transpose()?,
        })
    }
}

/// The version `--expect-version` was given: `None` without a value (the record's), a usage
/// error when empty or `null` (a shell variable that was never set, a jq `null` from a
/// lookup that found nothing): waiting for "null" would wait out the deadline.
fn expected_version(given: &str) -> Result<Option<String>> {
    if given == FROM_THE_RECORD {
        return Ok(None);
    }
    let version = given.trim();
    if version.is_empty() || version.eq_ignore_ascii_case("null") {
        let shown = if version.is_empty() {
            "an empty value"
        } else {
            "'null'"
        };
        return Err(Error::usage(format!(
            "--expect-version was given {shown}: name the version (--expect-version v1.2.3), \
             or give the flag no value to expect the one the ugw-fetch step of the record staged"
        )));
    }
    Ok(Some(version.to_string()))
}

/// The version this run's last ugw-swap step went back to, when that step is a rollback
/// (`--always --expect-version` on the failure path waits for the old version, not the
/// fetched one that was rolled back). Only this run's steps on this host count (the trust
/// rule, through `this_run`). A rollback in binary mode names a sha256, not a version: a
/// usage error, since expecting the fetched version would wait for the release taken back.
fn rolled_back_to(ctx: &Ctx) -> Result<Option<String>> {
    let Some(swapped) = ctx.this_run().last_result::<Swapped>()? else {
        return Ok(None);
    };
    if !swapped.rollback {
        return Ok(None);
    }
    match swapped.current {
        Some(release) if swapped.mode == "release" => Ok(Some(release)),
        _ => Err(Error::usage(
            "--expect-version has no value: this run's ugw-swap step rolled back, but names no              release version it went back to (a --target binary is known by its sha256 only);              give the version (--expect-version V)",
        )),
    }
}

/// A `--body-regex`: multi-line, so `^` and `$` match at each line of the body (Prometheus
/// text, logs), as `grep` does.
fn body_regex(re: &str) -> Result<Regex> {
    RegexBuilder::new(re).multi_line(true).build().map_err(|e| {
        Error::usage(format!(
            "--body-regex '{re}' is not a valid regular expression: {e}"
        ))
    })
}
