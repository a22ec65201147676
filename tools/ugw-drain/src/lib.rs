//! ugw-drain: replaces `sleep 30  # Allow in-flight requests to drain` and `kill -QUIT; while
//! kill -0 …`. It takes a node out of traffic (HAProxy's runtime API, a graceful signal, a flag
//! file the balancer's health check sees, or the application's own drain endpoint) and waits
//! until its in-flight work is really zero; `--undo` puts it back.

mod balancer;
mod earlier;
mod local;
mod signal;
mod wait;

use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use ugw_shared::haproxy::{AdminState, Endpoint};
use ugw_shared::results::{DrainMethod, Drained, ToolResult};
use ugw_shared::time::parse_duration;
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

/// The clap command: the common flags, then this tool's own.
#[must_use]
#[allow(clippy::too_many_lines)] // one flag after another: a builder reads best whole
pub fn command() -> Command {
    let duration = clap::builder::ValueParser::new(parse_duration);
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
    .arg(
        Arg::new("haproxy")
            .long("haproxy")
            .value_name("SOCK")
            .action(ArgAction::Append)
            .help("HAProxy's admin-level stats socket: a unix socket path or tcp:HOST:PORT (repeatable: every instance is set, their counts summed)"),
    )
    .arg(
        Arg::new("server")
            .long("server")
            .value_name("BACKEND/SERVER")
            .help("The server to drain, as haproxy.cfg names it"),
    )
    .arg(
        Arg::new("state")
            .long("state")
            .value_name("STATE")
            .value_parser(["drain", "maint"])
            .default_value("drain")
            .help("drain: no new sessions but sticky ones; maint: none at all"),
    )
    .arg(
        Arg::new("zero-readings")
            .long("zero-readings")
            .value_name("N")
            .value_parser(clap::value_parser!(u32).range(1..))
            .default_value("3")
            .help("Done when N readings in a row see nothing in flight"),
    )
    .arg(
        Arg::new("maint-after")
            .long("maint-after")
            .value_name("DURATION")
            .value_parser(duration.clone())
            .help("Escalate from drain to maint when work is still in flight after DURATION (sticky clients keep a drained server busy)"),
    )
    .next_help_heading("Signal")
    .arg(
        Arg::new("signal")
            .long("signal")
            .value_name("SIG")
            .value_parser(signal::parse)
            .help("Send SIG (QUIT for nginx's graceful stop) and wait for the process to exit; a stop, for after the balancer removed the node")
            .long_help(
                "Send SIG (QUIT for nginx's graceful stop) and wait for the process to exit, \
                 through a pidfd, so a zombie or a reused pid is never taken for it. QUIT closes \
                 nginx's listeners at once: this method is a stop, for after the load balancer \
                 has removed the node. It has no --undo.",
            ),
    )
    .arg(
        Arg::new("pid")
            .long("pid")
            .value_name("N")
            .value_parser(clap::value_parser!(i32).range(1..))
            .conflicts_with("pidfile")
            .help("The process to signal"),
    )
    .arg(
        Arg::new("pidfile")
            .long("pidfile")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help("Read the process id from FILE"),
    )
    .arg(
        Arg::new("grace")
            .long("grace")
            .value_name("DURATION")
            .value_parser(duration.clone())
            .default_value("10s")
            .help("With --on-timeout escalate: how long TERM has before KILL"),
    )
    .next_help_heading("Flag file or drain endpoint")
    .arg(
        Arg::new("flag-file")
            .long("flag-file")
            .value_name("PATH")
            .value_parser(clap::value_parser!(PathBuf))
            .help("Create PATH atomically: the balancer's health check (e.g. /health/lb, never the readiness check) fails on it; --undo removes it"),
    )
    .arg(
        Arg::new("http-post")
            .long("http-post")
            .value_name("URL")
            .conflicts_with("flag-file")
            .help("POST to the application's own drain endpoint (with --undo: the endpoint that puts it back)"),
    )
    .arg(
        Arg::new("lb-grace")
            .long("lb-grace")
            .value_name("DURATION")
            .value_parser(duration.clone())
            .default_value("5s")
            .help("How long the balancer takes to notice (its check interval times fall) before in-flight work is counted"),
    )
    .arg(
        Arg::new("inflight-metric")
            .long("inflight-metric")
            .value_name("URL#NAME")
            .conflicts_with("port")
            .help("A Prometheus gauge of requests in flight, summed over its label sets (NAME may carry matchers: name{path!=\"/metrics\"})"),
    )
    .arg(
        Arg::new("inflight-floor")
            .long("inflight-floor")
            .value_name("N")
            .value_parser(clap::value_parser!(u64))
            .default_value("0")
            .help("What the gauge reads when idle (1 for an application that counts the scrape itself)"),
    )
    .arg(
        Arg::new("port")
            .long("port")
            .value_name("N")
            .value_parser(clap::value_parser!(u16).range(1..))
            .help("Count ESTABLISHED TCP connections to local port N instead (idle keep-alive connections from a balancer count too)"),
    )
    .args(ugw_shared::http::args())
    .next_help_heading("Waiting")
    .arg(
        Arg::new("on-timeout")
            .long("on-timeout")
            .value_name("WHAT")
            .value_parser(["fail", "proceed", "escalate"])
            .default_value("fail")
            .help("At the deadline: fail (exit 1, node left drained), proceed (exit 0, \"forced\": true), escalate (--signal: TERM, then KILL after --grace)"),
    )
    .arg(
        Arg::new("interval")
            .long("interval")
            .value_name("DURATION")
            .value_parser(duration)
            .default_value("100ms")
            .help("Time between two in-flight readings (at least 10ms)"),
    )
    .arg(
        Arg::new("undo")
            .long("undo")
            .action(ArgAction::SetTrue)
            .help("Put the node back: the HAProxy state from before the drain (then wait until UP), or remove the flag file; without method flags, undo the record's last drain"),
    )
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
    /// A Prometheus gauge: the scrape URL, the selector text, what it reads when idle.
    Metric {
        url: String,
        selector: String,
        floor: u64,
    },
    Port(u16),
}

/// The method, with what it needs.
#[derive(Debug, Clone)]
pub(crate) enum Method {
    Haproxy {
        sockets: Vec<Endpoint>,
        backend: String,
        server: String,
        state: AdminState,
        maint_after: Option<Duration>,
    },
    Signal {
        signal: rustix::process::Signal,
        name: String,
        pid: PidSource,
        grace: Duration,
    },
    FlagFile {
        path: PathBuf,
        gauge: Option<Gauge>,
        lb_grace: Duration,
    },
    HttpPost {
        url: String,
        gauge: Option<Gauge>,
        lb_grace: Duration,
    },
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

/// Drain, or undo a drain.
pub fn run(ctx: &mut Ctx, matches: &ArgMatches) -> Result<StepResult> {
    let plan = WaitPlan {
        zero_readings: *matches.get_one::<u32>("zero-readings").expect("default"),
        interval: *matches.get_one::<Duration>("interval").expect("default"),
        on_timeout: match matches.get_one::<String>("on-timeout").map(String::as_str) {
            Some("proceed") => OnTimeout::Proceed,
            Some("escalate") => OnTimeout::Escalate,
            _ => OnTimeout::Fail,
        },
    };
    if plan.interval < MIN_INTERVAL {
        return Err(Error::usage(format!(
            "--interval must be at least {}: a faster beat floods the balancer or the application \
             with readings",
            ugw_shared::time::human(MIN_INTERVAL)
        )));
    }
    let undo = matches.get_flag("undo");
    let method = match method_from_flags(matches)? {
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
    if plan.on_timeout == OnTimeout::Escalate && !matches!(method, Method::Signal { .. }) {
        return Err(Error::usage(
            "--on-timeout escalate is for --signal (TERM, then KILL); use --maint-after with --haproxy",
        ));
    }
    let drained = match (&method, undo) {
        (Method::Signal { .. }, true) => {
            return Err(Error::usage(
                "--undo cannot restart a process that --signal stopped: start it again with its service manager",
            ));
        }
        (Method::Haproxy { .. }, false) => balancer::drain(ctx, &method, plan)?,
        (Method::Haproxy { .. }, true) => balancer::undo(ctx, &method, plan)?,
        (Method::Signal { .. }, false) => signal::stop(ctx, &method, plan)?,
        (_, false) => local::drain(ctx, matches, &method, plan)?,
        (_, true) => local::undo(ctx, matches, &method)?,
    };
    Ok(StepResult::typed(drained.changed, &drained))
}

/// The method the flags name, if any; a usage error when they name two, or half of one.
fn method_from_flags(m: &ArgMatches) -> Result<Option<Method>> {
    let given: Vec<&str> = ["haproxy", "signal", "flag-file", "http-post"]
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
    let lb_grace = *m.get_one::<Duration>("lb-grace").expect("default");
    Ok(match given.first().copied() {
        None => None,
        Some("haproxy") => Some(haproxy_method(m)?),
        Some("signal") => {
            let (signal, name) = m
                .get_one::<(rustix::process::Signal, String)>("signal")
                .cloned()
                .expect("given");
            let pid = match (m.get_one::<i32>("pid"), m.get_one::<PathBuf>("pidfile")) {
                (Some(pid), _) => PidSource::Pid(*pid),
                (None, Some(file)) => PidSource::File(file.clone()),
                (None, None) => {
                    return Err(Error::usage("--signal needs --pid N or --pidfile FILE"));
                }
            };
            let grace = *m.get_one::<Duration>("grace").expect("default");
            Some(Method::Signal {
                signal,
                name,
                pid,
                grace,
            })
        }
        Some("flag-file") => Some(Method::FlagFile {
            path: m.get_one::<PathBuf>("flag-file").cloned().expect("given"),
            gauge: gauge(m)?,
            lb_grace,
        }),
        Some(_) => Some(Method::HttpPost {
            url: m.get_one::<String>("http-post").cloned().expect("given"),
            gauge: gauge(m)?,
            lb_grace,
        }),
    })
}

fn haproxy_method(m: &ArgMatches) -> Result<Method> {
    let sockets = m
        .get_many::<String>("haproxy")
        .into_iter()
        .flatten()
        .map(|s| Endpoint::parse(s))
        .collect::<Result<Vec<_>>>()?;
    let Some(server) = m.get_one::<String>("server") else {
        return Err(Error::usage("--haproxy needs --server BACKEND/SERVER"));
    };
    let (backend, server) = split_server(server)?;
    let state = match m.get_one::<String>("state").map(String::as_str) {
        Some("maint") => AdminState::Maint,
        _ => AdminState::Drain,
    };
    Ok(Method::Haproxy {
        sockets,
        backend,
        server,
        state,
        maint_after: m.get_one::<Duration>("maint-after").copied(),
    })
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
    if let Some(port) = m.get_one::<u16>("port") {
        return Ok(Some(Gauge::Port(*port)));
    }
    let Some(text) = m.get_one::<String>("inflight-metric") else {
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
    ugw_shared::prometheus::Selector::parse(selector)
        .map_err(|e| Error::usage(format!("--inflight-metric: {e}")))?;
    Ok(Some(Gauge::Metric {
        url: url.to_string(),
        selector: selector.to_string(),
        floor: *m.get_one::<u64>("inflight-floor").expect("default"),
    }))
}

/// `--undo` alone: the newest drain of this run on this host that no later undo put back
/// (`earlier::newest_open`); `Err` with the step's result when there is nothing to put back:
/// every drain was undone already, or a failed run never drained (the failure path runs as
/// written on any failed record). A drain step of another run or host is named and refused,
/// never acted on.
fn method_from_record(ctx: &Ctx) -> Result<Result<Method, StepResult>> {
    let counted = earlier::counted(ctx)?;
    let Some(last) = earlier::newest_open(&counted) else {
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
    let lb_grace = Duration::ZERO;
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
            Method::Haproxy {
                sockets,
                backend,
                server,
                state: AdminState::Drain,
                maint_after: None,
            }
        }
        DrainMethod::FlagFile => Method::FlagFile {
            path: PathBuf::from(last.flag_file.clone().unwrap_or_default()),
            gauge: None,
            lb_grace,
        },
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
