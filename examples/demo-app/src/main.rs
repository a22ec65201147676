//! `ugw-demo-app`: a small but real HTTP/1.1 service whose health endpoint can
//! be told to misbehave, so ugw's demo and integration tests have something
//! honest to upgrade, probe and drain. This file holds the flags, startup and
//! signal handling; see `server.rs` and `behaviour.rs` for the rest.

mod behaviour;
mod schema;
mod server;

use std::ffi::OsString;
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use signal_hook::consts::{SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::behaviour::{App, Behaviour};
use crate::schema::Column;
use crate::server::Server;

const NAME: &str = "ugw-demo-app";

const HELP: &str = "\
ugw-demo-app: a small HTTP/1.1 service for ugw's demo and tests.

Usage: ugw-demo-app [FLAGS]

Serving:
  --listen ADDR           address to bind (default 127.0.0.1:8080; port 0 picks
                          a free port, IPv6 as [::1]:0)
  --tls-cert FILE         serve HTTPS with this PEM certificate chain
  --tls-key FILE          ... and this PEM private key (both or neither)
  --log-requests          log one stderr line per request
  --slow DURATION         delay every response by DURATION (e.g. 250ms)

Health (/health/ready), counted by its n-th request (1-based):
  --version-label V       version reported when ready (default v1.0.0)
  --ready-after DURATION  answer 503 \"starting\" until DURATION after start
                          (default 0)
  --fail-first N          requests 1..=N answer 503 \"starting\"
  --fail-every K          every K-th request answers 503 \"degraded\"
  --retry-after SECS      503 answers carry Retry-After: SECS
  --hang-first N          requests 1..=N are never answered
  --hang                  no request is ever answered
  --garbage               answer 200 with an HTML body instead of JSON
  --status-field S        report status S instead of \"ok\" when ready
  --fail-status CODE      answer CODE (200..=599) instead of 200 when ready

Load balancer, work and resources:
  --lb-flag FILE          /health/lb answers 503 while FILE exists (the
                          balancer's check, so a drain never touches
                          /health/ready)
  --health-token T        /health/* want `Authorization: Bearer T`
                          (default: $UGW_DEMO_HEALTH_TOKEN when set)
  --metrics-token T       /metrics wants `Authorization: Bearer T`
  --error-every K         every K-th /work request answers 500
  --bloat MIB             hold MIB of memory for the process's life

Database:
  --db FILE               the service's SQLite database
  --require-column T.C    answer 503 \"waiting for migration\" (with the reason)
                          until table T of --db has column C (repeatable)

  -h, --help              print this help

Routes: GET /health/ready, /health/live, /health/lb, /metrics,
        /debug/echo, /redirect?to=URL, /slow?ms=N, /work?ms=N;
        POST /items (a JSON object), GET and DELETE /items/ID.
Metrics: http_requests_in_flight (not counting the scrape),
        http_requests_total{code}, http_request_duration_seconds{path}
        (histogram), demo_ready, process_resident_memory_bytes,
        process_cpu_seconds_total, process_start_time_seconds.

Output: stdout gets exactly one line, `listening on http(s)://HOST:PORT`.
Stderr gets `ugw-demo-app: ready_at_unix_ms=MS` at start, optional request
lines, and `ugw-demo-app: stopped (N requests served)` on exit.
SIGTERM, SIGINT or SIGQUIT stop accepting, let in-flight requests finish
(at most 30 s), and exit 0.

Exit codes: 0 stopped by a signal, 1 startup failed, 2 bad flags.
";

/// Everything the flags decide.
struct Options {
    listen: SocketAddr,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    log_requests: bool,
    behaviour: Behaviour,
}

enum Command {
    Run(Box<Options>),
    Help,
}

fn main() -> ExitCode {
    // Both clocks are read together so the advertised ready time matches the
    // instant /health/ready actually flips.
    let started = Instant::now();
    let started_wall = SystemTime::now();

    let options = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{NAME}: error: {message} (see --help)");
            return ExitCode::from(2);
        }
    };
    match run(*options, started, started_wall) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{NAME}: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options, started: Instant, started_wall: SystemTime) -> Result<(), String> {
    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => Some(load_tls(cert, key)?),
        _ => None,
    };
    // Registered before binding so a signal sent right after the
    // `listening on` line is never lost to the default handler.
    let signals = Signals::new([SIGTERM, SIGINT, SIGQUIT])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let listener = TcpListener::bind(options.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;

    let ready_at = started_wall + options.behaviour.ready_after;
    let ready_at_ms = ready_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    eprintln!("{NAME}: ready_at_unix_ms={ready_at_ms}");

    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut stdout = io::stdout().lock();
    // A test that closed our stdout early is not a reason to refuse service.
    let _ = writeln!(stdout, "listening on {scheme}://{local}");
    let _ = stdout.flush();
    drop(stdout);

    let shutdown = Arc::new(AtomicBool::new(false));
    let accepting = Arc::new(AtomicBool::new(true));
    spawn_signal_thread(signals, wake_address(local), &shutdown, &accepting)?;

    let app = App::new(options.behaviour, started, started_wall);
    let server = Server::new(app, tls, options.log_requests, shutdown);
    let answered = server.run(listener, &accepting);
    eprintln!("{NAME}: stopped ({answered} requests served)");
    Ok(())
}

/// The accept loop blocks in `accept`, so a signal alone cannot stop it: the
/// signal thread raises the flag and then connects to the listener to wake
/// it, retrying until the loop confirms it has stopped accepting.
fn spawn_signal_thread(
    mut signals: Signals,
    wake: SocketAddr,
    shutdown: &Arc<AtomicBool>,
    accepting: &Arc<AtomicBool>,
) -> Result<(), String> {
    let shutdown = Arc::clone(shutdown);
    let accepting = Arc::clone(accepting);
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            // The loop never ends: dropping `signals` would restore the
            // default handlers, and a second SIGTERM would then kill us
            // in the middle of draining.
            for _ in signals.forever() {
                shutdown.store(true, Ordering::SeqCst);
                while accepting.load(Ordering::SeqCst) {
                    let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(200));
                    thread::sleep(Duration::from_millis(20));
                }
            }
        })
        .map(drop)
        .map_err(|e| format!("cannot start the signal thread: {e}"))
}

/// Where to connect to reach our own listener: a wildcard bind is reachable
/// on the loopback address of the same family.
fn wake_address(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

fn load_tls(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("cannot read TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate found in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read TLS key {}: {e}", key.display()))?;
    // The provider is named explicitly so the binary never depends on a
    // process-wide default being installed.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key do not work together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut options = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        tls_cert: None,
        tls_key: None,
        log_requests: false,
        behaviour: Behaviour::default(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("argument is not valid UTF-8: {}", a.to_string_lossy()))?;
        // Both `--flag value` and `--flag=value` are accepted.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || -> Result<String, String> {
            if let Some(value) = inline.clone() {
                return Ok(value);
            }
            args.next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .into_string()
                .map_err(|_| format!("the value of {flag} is not valid UTF-8"))
        };
        let b = &mut options.behaviour;
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--listen" => options.listen = parse_listen(&value()?)?,
            "--tls-cert" => options.tls_cert = Some(PathBuf::from(value()?)),
            "--tls-key" => options.tls_key = Some(PathBuf::from(value()?)),
            "--log-requests" => options.log_requests = true,
            "--slow" => b.slow = parse_duration(&flag, &value()?)?,
            "--version-label" => b.version_label = value()?,
            "--ready-after" => b.ready_after = parse_duration(&flag, &value()?)?,
            "--fail-first" => b.fail_first = parse_number(&flag, &value()?)?,
            "--fail-every" => {
                let k = parse_number(&flag, &value()?)?;
                if k == 0 {
                    return Err("--fail-every must be at least 1".into());
                }
                b.fail_every = Some(k);
            }
            "--retry-after" => b.retry_after = Some(parse_number(&flag, &value()?)?),
            "--hang-first" => b.hang_first = parse_number(&flag, &value()?)?,
            "--hang" => b.hang = true,
            "--garbage" => b.garbage = true,
            "--status-field" => b.status_field = value()?,
            "--db" => b.schema.db = Some(PathBuf::from(value()?)),
            "--require-column" => b.schema.required.push(Column::parse(&value()?)?),
            "--lb-flag" => b.lb_flag = Some(PathBuf::from(value()?)),
            "--health-token" => b.health_token = Some(value()?),
            "--metrics-token" => b.metrics_token = Some(value()?),
            "--error-every" => {
                b.work_error_every = Some(parse_number(&flag, &value()?)?);
                if b.work_error_every == Some(0) {
                    return Err("--error-every must be at least 1".into());
                }
            }
            "--bloat" => b.bloat_mib = parse_number(&flag, &value()?)?,
            "--fail-status" => {
                let code = parse_number(&flag, &value()?)?;
                // 1xx would not end the exchange, and codes past 599 are not
                // HTTP; neither makes a meaningful health answer.
                if !(200..=599).contains(&code) {
                    return Err(format!("--fail-status must be 200..=599, got {code}"));
                }
                b.fail_status = u16::try_from(code).unwrap_or(500);
            }
            _ if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            _ => return Err(format!("unexpected argument {flag}")),
        }
        if inline.is_some() && matches!(flag.as_str(), "--log-requests" | "--hang" | "--garbage") {
            return Err(format!("{flag} takes no value"));
        }
    }
    if !options.behaviour.schema.required.is_empty() && options.behaviour.schema.db.is_none() {
        return Err("--require-column needs --db".into());
    }
    if options.tls_cert.is_some() != options.tls_key.is_some() {
        return Err("--tls-cert and --tls-key must be given together".into());
    }
    // A token in the environment stays out of `ps`, as an operator's would.
    if options.behaviour.health_token.is_none() {
        options.behaviour.health_token = std::env::var("UGW_DEMO_HEALTH_TOKEN")
            .ok()
            .filter(|token| !token.is_empty());
    }
    Ok(Command::Run(Box::new(options)))
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    // Host names such as `localhost:0` are resolved once, here.
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            format!(
                "--listen: not an address: {text:?} (want HOST:PORT, e.g. 127.0.0.1:0 or [::1]:0)"
            )
        })
}

fn parse_duration(flag: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{flag}: not a duration: {text:?} ({e}; e.g. 1500ms, 2s)"))
}

fn parse_number(flag: &str, text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("{flag}: not a non-negative integer: {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(OsString::from))
    }

    fn options(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Run(options)) => *options,
            Ok(Command::Help) => panic!("unexpected help"),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    #[test]
    fn defaults() {
        let o = options(&[]);
        assert_eq!(o.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(o.behaviour.version_label, "v1.0.0");
        assert_eq!(o.behaviour.ready_after, Duration::ZERO);
        assert_eq!(o.behaviour.fail_status, 200);
        assert!(!o.log_requests);
    }

    #[test]
    fn flags_with_values() {
        let o = options(&[
            "--listen",
            "[::1]:0",
            "--ready-after=1500ms",
            "--fail-every",
            "2",
            "--retry-after",
            "7",
            "--status-field",
            "failed",
            "--fail-status",
            "500",
            "--log-requests",
        ]);
        assert_eq!(o.listen, "[::1]:0".parse().unwrap());
        assert_eq!(o.behaviour.ready_after, Duration::from_millis(1500));
        assert_eq!(o.behaviour.fail_every, Some(2));
        assert_eq!(o.behaviour.retry_after, Some(7));
        assert_eq!(o.behaviour.status_field, "failed");
        assert_eq!(o.behaviour.fail_status, 500);
        assert!(o.log_requests);
    }

    #[test]
    fn bad_flags_are_errors() {
        for args in [
            &["--nope"][..],
            &["--fail-first"],
            &["--fail-first", "x"],
            &["--fail-every", "0"],
            &["--error-every", "0"],
            &["--bloat", "lots"],
            &["--fail-status", "99"],
            &["--ready-after", "soon"],
            &["--listen", "nowhere"],
            &["--tls-cert", "c.pem"],
            &["--hang=yes"],
            &["stray"],
            &["--require-column", "items.note"],
            &["--db", "a.db", "--require-column", "items"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be rejected");
        }
        assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
    }

    #[test]
    fn wildcard_binds_are_woken_through_loopback() {
        let v4 = wake_address("0.0.0.0:81".parse().unwrap());
        assert_eq!(v4, "127.0.0.1:81".parse().unwrap());
        let v6 = wake_address("[::]:82".parse().unwrap());
        assert_eq!(v6, "[::1]:82".parse().unwrap());
    }
}
