//! The flags, checked and compiled once before the first attempt: every mistake here, and
//! every value that makes no sense (a 1 ns beat, port 99999, a goal the deadline cannot
//! allow), is a usage error (exit 2) with nothing attempted.

use crate::probe::Target;
use crate::watched::Source;
use crate::{Options, Scoped, TargetFlag};
use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::time::Duration;
use ugw_shared::http::expect::{DEFAULT_STATUS, body_regex};
use ugw_shared::http::scoped::{Positioned, Scopes};
use ugw_shared::http::{self, Expectations, GivenAs, HttpClient, Method, Request, StatusSet};
use ugw_shared::jq::JqExpr;
use ugw_shared::poll::PollPlan;
use ugw_shared::results::{FetchPlanned, FetchedVersion, Swapped, WaitMode};
use ugw_shared::time::human;
use ugw_shared::{Ctx, Error, Result};

/// The fastest beat: below it a wait is a load test of the service it waits for.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

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

/// What an HTTP answer must show; one set per `--url` target: the shared expectations
/// (status, latency, regexes, jq), then this tool's own (a version, fail-fast conditions).
#[derive(Debug)]
pub struct HttpChecks {
    pub expect: Expectations,
    pub expect_version: Option<String>,
    pub version_path: JqExpr,
    pub fail_if: Vec<JqExpr>,
    pub fail_status: Option<StatusSet>,
}

impl HttpChecks {
    /// Whether any assertion reads the body as JSON (only then is it parsed).
    pub fn needs_json(&self) -> bool {
        self.expect
            .reads_json(!self.fail_if.is_empty() || self.expect_version.is_some())
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
    pub fn new(ctx: &Ctx, opts: Options) -> Result<Self> {
        let targets = targets(ctx, &opts)?;
        let has_http = targets.iter().any(|t| matches!(t, Target::Http { .. }));
        let has_cmd = targets.iter().any(|t| matches!(t, Target::Cmd { .. }));
        let plan = Plan {
            targets,
            client: if has_http {
                let config = opts.http.config(ctx.scrubber())?;
                Some(HttpClient::new(config, ctx.scrubber())?)
            } else {
                None
            },
            timeout: ctx.step_timeout(),
            attempt_timeout: opts.attempt_timeout,
            interval: opts.interval.unwrap_or(if has_cmd {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(100)
            }),
            max_interval: opts.max_interval,
            successes: opts.successes,
            stable_for: opts.stable_for,
            max_failures: opts.max_failures,
            until_down: opts.until_down,
            any: opts.any,
            once: opts.once,
            then_run: then_run(opts.command)?,
            watch: match (opts.pid, opts.pidfile) {
                (Some(pid), _) => Some(Source::Pid(pid)),
                (None, Some(path)) => Some(Source::Pidfile(path)),
                (None, None) => None,
            },
            version_differs: opts.fail_if_version_differs,
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
fn then_run(argv: Vec<OsString>) -> Result<Option<Vec<OsString>>> {
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

/// The targets in command-line order, each with the assertions that apply to it.
fn targets(ctx: &Ctx, opts: &Options) -> Result<Vec<Target>> {
    let scopes = Scopes::new(opts.targets.iter().map(|p| p.index).collect());
    refuse_misplaced(&opts.scoped, &scopes, &opts.targets)?;
    let mut targets = Vec::with_capacity(opts.targets.len());
    for (position, given) in opts.targets.iter().enumerate() {
        let (kind, value) = &given.value;
        targets.push(match kind {
            TargetFlag::Url => {
                http::check_url(value, ctx.scrubber())?;
                let own = Own {
                    scoped: &opts.scoped,
                    scopes: &scopes,
                    position,
                };
                Target::Http {
                    url: value.clone(),
                    send: own.http_send()?,
                    checks: Box::new(own.http_checks(ctx)?),
                }
            }
            TargetFlag::Tcp => Target::Tcp {
                addr: ugw_shared::tcp::check_addr(value, "--tcp")?,
            },
            TargetFlag::Cmd if value.trim().is_empty() => {
                return Err(Error::usage("--cmd needs a command"));
            }
            TargetFlag::Cmd => Target::Cmd {
                command: value.clone(),
            },
        });
    }
    Ok(targets)
}

/// An HTTP flag given after a TCP or command target, or with no `--url` at all.
fn refuse_misplaced(
    scoped: &Scoped,
    owners: &Scopes,
    targets: &[Positioned<(TargetFlag, String)>],
) -> Result<()> {
    let has_http = targets.iter().any(|t| t.value.0 == TargetFlag::Url);
    for (id, indices) in scoped.given() {
        if !has_http {
            return Err(Error::usage(format!(
                "--{id} is an HTTP flag: it needs a --url target"
            )));
        }
        if let Some((kind, value)) = indices
            .iter()
            .filter_map(|index| owners.owner(*index))
            .map(|owner| &targets[owner].value)
            .find(|(kind, _)| *kind != TargetFlag::Url)
        {
            return Err(Error::usage(format!(
                "--{id} follows --{} '{value}', but HTTP flags apply to the --url they follow \
                 (or, given before the first target, to every --url)",
                kind.name()
            )));
        }
    }
    Ok(())
}

/// The HTTP flags that apply to the `--url` at `position`: the global ones, then its own
/// (which wins where one value is taken).
struct Own<'a> {
    scoped: &'a Scoped,
    scopes: &'a Scopes,
    position: usize,
}

impl Own<'_> {
    fn all<T: Clone>(&self, given: &[Positioned<T>]) -> Vec<T> {
        self.scopes.values_for(given, self.position)
    }

    fn one<T: Clone>(&self, given: &[Positioned<T>]) -> Option<T> {
        self.scopes.one_for(given, self.position)
    }

    /// The method and body: `--data` keeps the method (a GET with a body is sent as is, as
    /// some search APIs expect).
    fn http_send(&self) -> Result<HttpSend> {
        let method = method(self.one(&self.scoped.method).as_deref())?;
        let data = self.one(&self.scoped.data);
        let body = match self.one(&self.scoped.data_file) {
            Some(path) => Some(data_file(&path)?),
            None => data.map(String::into_bytes),
        };
        Ok(HttpSend { method, body })
    }

    fn http_checks(&self, ctx: &Ctx) -> Result<HttpChecks> {
        let s = self.scoped;
        let compile_all = |given: &[Positioned<String>], flag: &str| {
            self.all(given)
                .iter()
                .map(|e| JqExpr::compile(e, flag))
                .collect::<Result<Vec<_>>>()
        };
        let max_latency = self.one(&s.max_latency);
        if max_latency.is_some_and(|d| d.is_zero()) {
            return Err(Error::usage("--max-latency must be more than 0"));
        }
        let status = self.one(&s.status);
        let expect = Expectations {
            status: StatusSet::parse(status.as_deref().unwrap_or(DEFAULT_STATUS), "--status")?,
            max_latency,
            body_regex: self
                .all(&s.body_regex)
                .iter()
                .map(|re| body_regex(re, "--body-regex"))
                .collect::<Result<_>>()?,
            expect: compile_all(&s.expect, "--expect")?,
            given_as: GivenAs::Flags,
        };
        Ok(HttpChecks {
            expect,
            expect_version: match self.one(&s.expect_version) {
                // Without a value: the version this run's rollback went back to, else the
                // version the last ugw-fetch step staged.
                Some(given) => match expected_version(&given)? {
                    None if let Some(back_to) = rolled_back_to(ctx)? => Some(back_to),
                    given => match ctx.this_run().flag_or_earlier(
                        "--expect-version",
                        given,
                        ctx.dry_run,
                        |f: FetchedVersion| f.version,
                    )? {
                        // A dry run after a dry-run fetch: the version it would have staged.
                        None => ctx
                            .this_run()
                            .dry_run_result::<FetchPlanned>(ctx.dry_run)?
                            .and_then(|planned| planned.version),
                        found => found,
                    },
                },
                None => None,
            },
            version_path: JqExpr::compile(
                self.one(&s.version_path).as_deref().unwrap_or(".version"),
                "--version-path",
            )?,
            fail_if: compile_all(&s.fail_if, "--fail-if")?,
            fail_status: self
                .one(&s.fail_status)
                .map(|text| StatusSet::parse(&text, "--fail-status"))
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
