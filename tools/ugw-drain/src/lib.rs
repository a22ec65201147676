//! ugw-drain: replaces `sleep 30  # Allow in-flight requests to drain` and `kill -QUIT; while
//! kill -0 …`. It takes a node out of traffic (HAProxy's runtime API, a graceful signal, a flag
//! file the balancer's health check sees, or the application's own drain endpoint) and waits
//! until its in-flight work is really zero; `--undo` puts it back.
#![forbid(unsafe_code)]

mod balancer;
mod container;
mod earlier;
mod local;
mod signal;
mod wait;

use clap::{ArgMatches, Command};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use ugw_shared::cli::flag;
use ugw_shared::haproxy::{AdminState, Endpoint};
use ugw_shared::http::HttpConfig;
use ugw_shared::prometheus::Selector;
use ugw_shared::results::{DrainMethod, Drained, ToolResult};
use ugw_shared::{Ctx, Error, Result, StepResult, tool_command};

const EXAMPLES: &str = "\
Examples:
  # Take node1 out of HAProxy and wait until its sessions and queue are empty:
  ugw-drain --haproxy /run/haproxy/admin.sock --server app/node1 --record upgrade.json --new

  # ... upgrade node1; then put it back as it was before the drain, and wait until it is UP:
  ugw-drain --record upgrade.json --undo

  # Two balancers at once; sticky clients are moved off after 2 minutes:
  ugw-drain --haproxy /run/haproxy/admin.sock --haproxy tcp:10.0.0.2:9999 --server app/node1 --maint-after 2m

  # The balancer's health check fails on a flag file; wait on the app's in-flight gauge:
  ugw-drain --flag-file /run/app/drain --lb-grace 2s --inflight-metric 'http://127.0.0.1:8080/metrics#http_requests_in_flight'

  # Stop nginx gracefully once the balancer removed it: QUIT, then wait for it to exit:
  ugw-drain --signal QUIT --pidfile /run/nginx.pid --timeout 2m --on-timeout escalate --grace 10s";

/// This tool as `cli` and xtask see it: a 5-minute deadline; `--undo` skips on a failed
/// record like everything else (a node whose new version failed stays out of traffic).
#[must_use]
pub fn tool() -> ugw_shared::cli::Tool {
    ugw_shared::cli::Tool::new(command(), run).default_timeout("5m")
}

/// The flag ids: each is read in one place, [`Options::from_matches`].
mod id {
    ugw_shared::flag_ids! {
        HAPROXY, SERVER, STATE, ZERO_READINGS, MAINT_AFTER,
        SIGNAL, PID, PIDFILE, CONTAINER, GRACE,
        FLAG_FILE, HTTP_POST, LB_GRACE,
        INFLIGHT_METRIC, INFLIGHT_FLOOR, PORT,
        ON_TIMEOUT, INTERVAL, UNDO,
    }
}

/// The clap command: the common flags, then this tool's own.
#[must_use]
pub fn command() -> Command {
    tool_command(
        "ugw-drain",
        "Take a node out of traffic and wait until its in-flight work is done",
    )
    .long_about(
        "Take a node out of traffic and wait until its in-flight work is really zero, instead \
         of sleeping a fixed time. One method per call: HAProxy's runtime API (--haproxy), a \
         graceful signal to a process (--signal), a flag file the load balancer's health check \
         sees (--flag-file), or the application's own drain endpoint (--http-post). --undo puts \
         the node back. stderr shows the in-flight count as it falls.",
    )
    .after_long_help(EXAMPLES)
    .next_help_heading("HAProxy")
    .arg(flag::repeated_text(id::HAPROXY, "SOCK", "HAProxy's admin-level stats socket: a unix socket path or tcp:HOST:PORT (repeatable: every instance is set, their counts summed)"))
    .arg(flag::text(id::SERVER, "BACKEND/SERVER", "The server to drain, as haproxy.cfg names it"))
    .arg(flag::value(id::STATE, "STATE", ["drain", "maint"], "drain: no new sessions but sticky ones; maint: none at all").default_value("drain"))
    .arg(flag::count(id::ZERO_READINGS, "Done when N readings in a row see nothing in flight").default_value("3"))
    .arg(flag::duration(id::MAINT_AFTER, "Escalate from drain to maint when work is still in flight after DURATION (sticky clients keep a drained server busy)"))
    .next_help_heading("Signal")
    .arg(flag::value(id::SIGNAL, "SIG", signal::parse, "Send SIG (QUIT for nginx's graceful stop) and wait for the process to exit; a stop, for after the balancer removed the node").long_help("Send SIG (QUIT for nginx's graceful stop) and wait for the process to exit, \
                 through a pidfd, so a zombie or a reused pid is never taken for it. QUIT closes \
                 nginx's listeners at once: this method is a stop, for after the load balancer \
                 has removed the node. It has no --undo.",))
    .arg(flag::value(id::PID, "N", clap::value_parser!(i32).range(1..), "The process to signal").conflicts_with(id::PIDFILE))
    .arg(flag::path(id::PIDFILE, "FILE", "Read the process id from FILE"))
    .arg(flag::text(id::CONTAINER, "NAME", "Signal the main process of Docker container NAME (docker kill --signal) and wait until the container has exited; the result names its id and exit code").conflicts_with_all([id::PID, id::PIDFILE]))
    .arg(flag::duration(id::GRACE, "With --on-timeout escalate: how long TERM has before KILL").default_value("10s"))
    .next_help_heading("Flag file or drain endpoint")
    .arg(flag::path(id::FLAG_FILE, "PATH", "Create PATH atomically: the balancer's health check (e.g. /health/lb, never the readiness check) fails on it; --undo removes it"))
    .arg(flag::text(id::HTTP_POST, "URL", "POST to the application's own drain endpoint (with --undo: the endpoint that puts it back)").conflicts_with(id::FLAG_FILE))
    .arg(flag::duration(id::LB_GRACE, "How long the balancer takes to notice (its check interval times fall) before in-flight work is counted").default_value("5s"))
    .arg(flag::text(id::INFLIGHT_METRIC, "URL#NAME", "A Prometheus gauge of requests in flight, summed over its label sets (NAME may carry matchers: name{path!=\"/metrics\"})").conflicts_with(id::PORT))
    .arg(flag::value(id::INFLIGHT_FLOOR, "N", clap::value_parser!(u64), "What the gauge reads when idle (1 for an application that counts the scrape itself)").default_value("0"))
    .arg(flag::value(id::PORT, "N", clap::value_parser!(u16).range(1..), "Count ESTABLISHED TCP connections to local port N instead (idle keep-alive connections from a balancer count too)"))
    .args(ugw_shared::http::args())
    .next_help_heading("Waiting")
    .arg(flag::value(id::ON_TIMEOUT, "WHAT", ["fail", "proceed", "escalate"], "At the deadline: fail (exit 1, node left drained), proceed (exit 0, \"forced\": true), escalate (--signal: TERM, then KILL after --grace)").default_value("fail"))
    .arg(flag::duration(id::INTERVAL, "Time between two in-flight readings (at least 10ms)").default_value("100ms"))
    .arg(flag::switch(id::UNDO, "Put the node back: the HAProxy state from before the drain (then wait until UP), or remove the flag file; without method flags, undo the record's last drain"))
}

/// The shortest `--interval`: as ugw-wait-healthy, a faster beat only floods what it reads.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// What to do at the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnTimeout {
    Fail,
    Proceed,
    Escalate,
}

/// How in-flight work is measured (flag file and drain endpoint).
#[derive(Debug, Clone)]
pub(crate) enum Gauge {
    /// A Prometheus gauge: the scrape URL, the selector (parsed, and as given), what it
    /// reads when idle.
    Metric {
        url: String,
        selector: Selector,
        selector_text: String,
        floor: u64,
    },
    Port(u16),
}

/// `--haproxy SOCK --server BACKEND/SERVER`: the server's state on every instance.
#[derive(Debug, Clone)]
pub(crate) struct Haproxy {
    pub sockets: Vec<Endpoint>,
    pub backend: String,
    pub server: String,
    pub state: AdminState,
    pub maint_after: Option<Duration>,
}

/// `--signal SIG --pid N|--pidfile FILE|--container NAME`: a graceful stop of one process.
#[derive(Debug, Clone)]
pub(crate) struct SignalStop {
    pub signal: rustix::process::Signal,
    pub name: String,
    pub target: StopTarget,
    pub grace: Duration,
}

/// What `--signal` stops.
#[derive(Debug, Clone)]
pub(crate) enum StopTarget {
    /// A process on this host (`--pid`, `--pidfile`).
    Process(PidSource),
    /// A Docker container's main process (`--container NAME`).
    Container(String),
}

/// How the node itself says it leaves traffic.
#[derive(Debug, Clone)]
pub(crate) enum Via {
    /// `--flag-file PATH`: a file the balancer's health check fails on.
    FlagFile(PathBuf),
    /// `--http-post URL`: the application's own drain endpoint.
    HttpPost(String),
}

/// The flag file and drain endpoint methods: the node leaves traffic itself, then its
/// in-flight gauge (or port) is watched.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    pub via: Via,
    pub gauge: Option<Gauge>,
    pub lb_grace: Duration,
    /// The shared HTTP flags, for the scrape and the POST.
    pub http: HttpConfig,
}

/// The method, with what it needs.
#[derive(Debug, Clone)]
pub(crate) enum Method {
    Haproxy(Haproxy),
    Signal(SignalStop),
    Local(Local),
}

#[derive(Debug, Clone)]
pub(crate) enum PidSource {
    Pid(i32),
    File(PathBuf),
}

/// How the wait for zero goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaitPlan {
    pub zero_readings: u32,
    pub interval: Duration,
    pub on_timeout: OnTimeout,
}

/// The flags, parsed once: nothing below `run` reads them again.
#[derive(Debug)]
struct Options {
    plan: WaitPlan,
    undo: bool,
    /// The method the flags name; `None` for `--undo` alone (the record's last drain).
    method: Option<Method>,
}

impl Options {
    fn from_matches(ctx: &Ctx, m: &ArgMatches) -> Result<Self> {
        let plan = WaitPlan {
            zero_readings: defaulted(m, id::ZERO_READINGS),
            interval: defaulted(m, id::INTERVAL),
            on_timeout: match m.get_one::<String>(id::ON_TIMEOUT).map(String::as_str) {
                Some("proceed") => OnTimeout::Proceed,
                Some("escalate") => OnTimeout::Escalate,
                _ => OnTimeout::Fail,
            },
        };
        if plan.interval < MIN_INTERVAL {
            return Err(Error::usage(format!(
                "--interval must be at least {}: a faster beat floods the balancer or the \
                 application with readings",
                ugw_shared::time::human(MIN_INTERVAL)
            )));
        }
        Ok(Options {
            plan,
            undo: m.get_flag(id::UNDO),
            method: method_from_flags(ctx, m)?,
        })
    }
}

/// A flag that `command()` gives a `default_value`, so clap always fills it in (the one
/// invariant the `expect` states).
fn defaulted<T: Clone + Send + Sync + 'static>(m: &ArgMatches, id: &str) -> T {
    m.get_one::<T>(id).cloned().expect("the flag has a default")
}

/// Drain, or undo a drain.
pub fn run(ctx: &mut Ctx, matches: &ArgMatches) -> Result<StepResult> {
    let Options { plan, undo, method } = Options::from_matches(ctx, matches)?;
    let method = match method {
        Some(method) => method,
        None if undo => match method_from_record(ctx)? {
            Ok(method) => method,
            Err(nothing_to_undo) => return Ok(nothing_to_undo),
        },
        None => {
            return Err(Error::usage(
                "give one method: --haproxy SOCK --server BACKEND/SERVER, --signal SIG --pid N, \
                 --flag-file PATH or --http-post URL",
            ));
        }
    };
    if plan.on_timeout == OnTimeout::Escalate && !matches!(method, Method::Signal(_)) {
        return Err(Error::usage(
            "--on-timeout escalate is for --signal (TERM, then KILL); use --maint-after with --haproxy",
        ));
    }
    let drained = match (&method, undo) {
        (Method::Signal(_), true) => {
            return Err(Error::usage(
                "--undo cannot restart a process that --signal stopped: start it again with its service manager",
            ));
        }
        (Method::Haproxy(haproxy), false) => balancer::drain(ctx, haproxy, plan)?,
        (Method::Haproxy(haproxy), true) => balancer::undo(ctx, haproxy, plan)?,
        (Method::Signal(stop), false) => match &stop.target {
            StopTarget::Process(source) => signal::stop(ctx, stop, source, plan)?,
            StopTarget::Container(name) => container::stop(ctx, stop, name, plan)?,
        },
        (Method::Local(local), false) => local::drain(ctx, local, plan)?,
        (Method::Local(local), true) => local::undo(ctx, local)?,
    };
    ugw_shared::failpoint::hit("drain.after-state-change");
    Ok(StepResult::typed(drained.changed, &drained))
}

/// The method the flags name, if any; a usage error when they name two, or half of one.
fn method_from_flags(ctx: &Ctx, m: &ArgMatches) -> Result<Option<Method>> {
    let given: Vec<&str> = [id::HAPROXY, id::SIGNAL, id::FLAG_FILE, id::HTTP_POST]
        .into_iter()
        .filter(|id| {
            m.contains_id(id) && m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        })
        .collect();
    if given.len() > 1 {
        return Err(Error::usage(format!(
            "one method per call: --{} and --{} were both given",
            given[0], given[1]
        )));
    }
    let local = |via: Via| -> Result<Method> {
        Ok(Method::Local(Local {
            via,
            gauge: gauge(m)?,
            lb_grace: defaulted(m, id::LB_GRACE),
            http: HttpConfig::from_matches(m, ctx.scrubber())?,
        }))
    };
    if let Some(sockets) = m.get_many::<String>(id::HAPROXY) {
        return haproxy_method(m, sockets).map(Some);
    }
    if let Some((signal, name)) = m.get_one::<(rustix::process::Signal, String)>(id::SIGNAL) {
        let target = match (
            m.get_one::<i32>(id::PID),
            m.get_one::<PathBuf>(id::PIDFILE),
            m.get_one::<String>(id::CONTAINER),
        ) {
            (Some(pid), _, _) => StopTarget::Process(PidSource::Pid(*pid)),
            (None, Some(file), _) => StopTarget::Process(PidSource::File(file.clone())),
            (None, None, Some(name)) => StopTarget::Container(name.clone()),
            (None, None, None) => {
                return Err(Error::usage(
                    "--signal needs --pid N, --pidfile FILE or --container NAME",
                ));
            }
        };
        return Ok(Some(Method::Signal(SignalStop {
            signal: *signal,
            name: name.clone(),
            target,
            grace: defaulted(m, id::GRACE),
        })));
    }
    if let Some(path) = m.get_one::<PathBuf>(id::FLAG_FILE) {
        return local(Via::FlagFile(path.clone())).map(Some);
    }
    if let Some(url) = m.get_one::<String>(id::HTTP_POST) {
        return local(Via::HttpPost(url.clone())).map(Some);
    }
    Ok(None)
}

fn haproxy_method<'a>(m: &ArgMatches, sockets: impl Iterator<Item = &'a String>) -> Result<Method> {
    let sockets = sockets
        .map(|s| Endpoint::parse(s))
        .collect::<Result<Vec<_>>>()?;
    let Some(server) = m.get_one::<String>(id::SERVER) else {
        return Err(Error::usage("--haproxy needs --server BACKEND/SERVER"));
    };
    let (backend, server) = split_server(server)?;
    let state = match m.get_one::<String>(id::STATE).map(String::as_str) {
        Some("maint") => AdminState::Maint,
        _ => AdminState::Drain,
    };
    Ok(Method::Haproxy(Haproxy {
        sockets,
        backend,
        server,
        state,
        maint_after: m.get_one::<Duration>(id::MAINT_AFTER).copied(),
    }))
}

fn split_server(text: &str) -> Result<(String, String)> {
    match text.split_once('/') {
        Some((b, s)) if !b.is_empty() && !s.is_empty() && !s.contains('/') => {
            Ok((b.to_string(), s.to_string()))
        }
        _ => Err(Error::usage(format!(
            "--server '{text}' is not BACKEND/SERVER (e.g. app/node1)"
        ))),
    }
}

/// `--inflight-metric URL#NAME` or `--port N`; the flag file and drain endpoint methods need
/// one of them to know when work is done, except with --undo.
fn gauge(m: &ArgMatches) -> Result<Option<Gauge>> {
    if let Some(port) = m.get_one::<u16>(id::PORT) {
        return Ok(Some(Gauge::Port(*port)));
    }
    let Some(text) = m.get_one::<String>(id::INFLIGHT_METRIC) else {
        return Ok(None);
    };
    let Some((url, selector)) = text
        .rsplit_once('#')
        .filter(|(u, s)| !u.is_empty() && !s.is_empty())
    else {
        return Err(Error::usage(format!(
            "--inflight-metric '{text}' is not URL#NAME (e.g. http://127.0.0.1:8080/metrics#http_requests_in_flight)"
        )));
    };
    let parsed =
        Selector::parse(selector).map_err(|e| Error::usage(format!("--inflight-metric: {e}")))?;
    Ok(Some(Gauge::Metric {
        url: url.to_string(),
        selector: parsed,
        selector_text: selector.to_string(),
        floor: defaulted(m, id::INFLIGHT_FLOOR),
    }))
}

/// `--undo` alone: the newest drain of this run on this host that no later undo put back
/// (`earlier::newest_open`); `Err` with the step's result when there is nothing to put back:
/// every drain was undone already, or a failed run never drained (the failure path runs as
/// written on any failed record). A drain step of another run or host is named and refused,
/// never acted on.
fn method_from_record(ctx: &Ctx) -> Result<Result<Method, StepResult>> {
    let counted = earlier::counted(ctx)?;
    // A dry run after a dry-run drain (a whole pipeline dry-run): undo what it would have
    // drained. Never in a real run: a dry-run step drained nothing.
    let planned = match earlier::newest_open(&counted) {
        Some(_) => None,
        None => ctx
            .this_run()
            .dry_run_result::<Drained>(ctx.dry_run)?
            .filter(|drained| !drained.undo),
    };
    let Some(last) = earlier::newest_open(&counted).or(planned.as_ref()) else {
        if let Some(undone) = counted.iter().find(|d| !d.undo) {
            return Ok(Err(StepResult::typed(
                false,
                &undone_already(ctx, undone.method),
            )));
        }
        let foreign = ctx.this_run().left_out(Drained::TOOL);
        if foreign.is_none() && !ctx.record().ok {
            return Ok(Err(never_drained(ctx)));
        }
        let foreign = foreign
            .map(|why| format!(" ({why}, so it is not undone)"))
            .unwrap_or_default();
        return Err(Error::usage(format!(
            "--undo without method flags undoes this run's last ugw-drain step on this host, and \
             there is none{foreign}: give the method flags"
        )));
    };
    Ok(Ok(match last.method {
        DrainMethod::Haproxy => {
            let sockets = last
                .sockets
                .iter()
                .map(|s| Endpoint::parse(s))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| {
                    Error::bad_record(format!(
                        "the earlier ugw-drain step names a socket that is not one: {}",
                        e.message
                    ))
                })?;
            let (backend, server) = split_server(last.server.as_deref().unwrap_or_default())
                .map_err(|e| {
                    Error::bad_record(format!("the earlier ugw-drain step: {}", e.message))
                })?;
            Method::Haproxy(Haproxy {
                sockets,
                backend,
                server,
                state: AdminState::Drain,
                maint_after: None,
            })
        }
        // An undo of a flag file reads no gauge and sends nothing.
        DrainMethod::FlagFile => Method::Local(Local {
            via: Via::FlagFile(PathBuf::from(last.flag_file.clone().unwrap_or_default())),
            gauge: None,
            lb_grace: Duration::ZERO,
            http: HttpConfig::default(),
        }),
        DrainMethod::Signal => {
            return Err(Error::usage(
                "the last drain stopped a process (--signal): start it again with its service manager",
            ));
        }
        DrainMethod::HttpPost => {
            return Err(Error::usage(
                "the last drain called an application's drain endpoint: give --undo --http-post URL with the endpoint that puts it back",
            ));
        }
    }))
}

/// `--undo` on a failed run that never drained this node: nothing to put back.
fn never_drained(ctx: &Ctx) -> StepResult {
    ctx.reporter
        .info("this run never drained this node: nothing to undo");
    StepResult::unchanged(Value::Null)
}

/// `--undo` when every drain of this run was undone already: running an inverse twice does
/// nothing the second time (ugw(7)).
pub(crate) fn undone_already(ctx: &Ctx, method: DrainMethod) -> Drained {
    ctx.reporter
        .info("this run's drain was undone already: nothing to do");
    wait::blank(method, true)
}
