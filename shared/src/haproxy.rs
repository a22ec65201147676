//! HAProxy's runtime API (the stats socket): one command per connection, on a unix socket or
//! `tcp:HOST:PORT`, every read bound by the caller's deadline and woken by a signal. It reads a
//! server's live counters from `show stat` (by column name, so a new HAProxy adding columns
//! changes nothing), its administrative state from `show servers state`, and sets that state.
//! HAProxy answers a refused or mistaken command in plain text on an open connection; those
//! answers become errors that say what to fix.

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Answers larger than this are cut off: `show stat` of a thousand servers fits.
const ANSWER_LIMIT: usize = 16 << 20;
/// How long one read blocks before looking at the cancel token again.
const READ_SLICE: Duration = Duration::from_millis(20);

/// Where the runtime API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `HOST:PORT`.
    Tcp(String),
}

impl Endpoint {
    /// `tcp:HOST:PORT`, or a unix socket's path.
    pub fn parse(text: &str) -> Result<Endpoint> {
        match text.strip_prefix("tcp:") {
            Some(addr) => Ok(Endpoint::Tcp(crate::tcp::check_addr(addr, "--haproxy")?)),
            None if text.is_empty() => Err(Error::usage(
                "--haproxy needs a socket path or tcp:HOST:PORT",
            )),
            None => Ok(Endpoint::Unix(PathBuf::from(text))),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// A server's administrative state: what `set server B/S state` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    Ready,
    Drain,
    Maint,
}

impl AdminState {
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }

    /// The server's own state from `srv_admin_state` of `show servers state`: the bits set on
    /// the server itself, forced maintenance (0x01) winning over forced draining (0x08). The
    /// inherited bits (0x02, 0x10: a server that `track`s another in maint or drain), the
    /// configuration's (0x04, `disabled`, which `state ready` leaves set on a running server)
    /// and DNS resolution's (0x20) are not its own: a server in MAINT only because the one it
    /// tracks is goes back into traffic the moment that one does, so it is drained by its own
    /// state.
    fn from_bits(bits: u32) -> AdminState {
        const FORCED_MAINT: u32 = 0x01;
        const FORCED_DRAIN: u32 = 0x08;
        if bits & FORCED_MAINT != 0 {
            AdminState::Maint
        } else if bits & FORCED_DRAIN != 0 {
            AdminState::Drain
        } else {
            AdminState::Ready
        }
    }
}

/// One server as `show stat` and `show servers state` see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerView {
    /// `show stat`'s status: `UP`, `UP 1/2` (failing, on its way down), `DOWN`, `DRAIN`,
    /// `MAINT`, `no check`…
    pub status: String,
    /// Sessions on the server now.
    pub scur: u64,
    /// Requests queued for it.
    pub qcur: u64,
    /// Whether HAProxy health-checks it (or the server it tracks).
    pub checked: bool,
    /// Its own administrative state (see `AdminState::from_bits`).
    pub admin: AdminState,
}

impl ServerView {
    /// Requests it is handling or that wait for it.
    #[must_use]
    pub fn in_flight(&self) -> u64 {
        self.scur + self.qcur
    }

    /// Up and taking traffic as far as health goes: fully `UP` for a checked server (not
    /// `UP 1/2`, which is failing), `no check` for one without checks.
    #[must_use]
    pub fn healthy_and_ready(&self) -> bool {
        self.admin == AdminState::Ready
            && if self.checked {
                self.status == "UP"
            } else {
                self.status == "no check"
            }
    }
}

/// The runtime API of one HAProxy.
#[derive(Debug, Clone)]
pub struct Api {
    pub endpoint: Endpoint,
    cancel: Cancel,
}

impl Api {
    #[must_use]
    pub fn new(endpoint: Endpoint, cancel: Cancel) -> Api {
        Api { endpoint, cancel }
    }

    /// Send `command` on a connection of its own and read the answer to its end, before
    /// `until`.
    pub fn command(&self, command: &str, until: Instant) -> Result<String> {
        let failed = |what: &str, e: &std::io::Error| {
            Error::new(
                ErrorKind::Network,
                format!("HAProxy at {}: {what}: {e}", self.endpoint),
            )
        };
        let mut stream = self
            .connect(until)
            .map_err(|e| failed("cannot connect", &e))?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| failed("cannot send", &e))?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            self.cancel.check()?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "HAProxy at {} did not answer '{command}' in time",
                        self.endpoint
                    ),
                ));
            }
            stream
                .set_read_timeout(Some(left.min(READ_SLICE)))
                .map_err(|e| failed("cannot read", &e))?;
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) if answer.len() < ANSWER_LIMIT => answer.extend_from_slice(&chunk[..n]),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        IoKind::WouldBlock | IoKind::TimedOut | IoKind::Interrupted
                    ) => {}
                Err(e) => return Err(failed("cannot read", &e)),
            }
        }
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    fn connect(&self, until: Instant) -> std::io::Result<Box<dyn Stream>> {
        let left = until.saturating_duration_since(Instant::now());
        let write_limit = Some(left.max(Duration::from_millis(1)));
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = UnixStream::connect(path)?;
                stream.set_write_timeout(write_limit)?;
                Ok(Box::new(stream))
            }
            Endpoint::Tcp(addr) => {
                let stream = crate::tcp::open(addr.as_str(), until).map_err(|e| {
                    let kind = if e.timed_out {
                        IoKind::TimedOut
                    } else {
                        IoKind::Other
                    };
                    std::io::Error::new(kind, e.message)
                })?;
                stream.set_write_timeout(write_limit)?;
                Ok(Box::new(stream))
            }
        }
    }

    /// `backend/server` as both listings see it; a usage error when HAProxy has no such
    /// backend or server, a network error when an answer is not what HAProxy writes (cut
    /// short, HTML from something else on the socket, a counter that is not a number): a
    /// reading that cannot be read is never taken for zero.
    pub fn server(&self, backend: &str, server: &str, until: Instant) -> Result<ServerView> {
        let failed = |command: &str, answer: &str, e: RowError| match e {
            RowError::Missing(missing) => self.missing(backend, server, missing),
            RowError::Unreadable(why) => self.unreadable(command, &why, answer),
        };
        let stat = self.command("show stat", until)?;
        let row = stat_row(&stat, backend, server).map_err(|e| failed("show stat", &stat, e))?;
        let state_command = format!("show servers state {backend}");
        let state = self.command(&state_command, until)?;
        let bits = admin_bits(&state, server).map_err(|e| failed(&state_command, &state, e))?;
        let count = |name: &str| -> Result<u64> {
            let value = row.get(name).map_or("", String::as_str);
            value.parse().map_err(|_| {
                self.unreadable(
                    "show stat",
                    &format!("{backend}/{server} has {name} {value:?}, not a count"),
                    &stat,
                )
            })
        };
        let status = row.get("status").cloned().unwrap_or_default();
        if status.is_empty() {
            return Err(self.unreadable(
                "show stat",
                &format!("{backend}/{server} has no status"),
                &stat,
            ));
        }
        Ok(ServerView {
            status,
            scur: count("scur")?,
            qcur: count("qcur")?,
            // A server that `track`s another has that one's health, and no check of its own.
            checked: ["check_status", "tracked"]
                .iter()
                .any(|k| row.get(*k).is_some_and(|s| !s.is_empty())),
            admin: AdminState::from_bits(bits),
        })
    }

    /// `set server backend/server state ready|drain|maint`.
    pub fn set_state(
        &self,
        backend: &str,
        server: &str,
        state: AdminState,
        until: Instant,
    ) -> Result<()> {
        let command = format!("set server {backend}/{server} state {}", state.word());
        let answer = self.command(&command, until)?;
        let answer = answer.trim();
        if answer.is_empty() {
            return Ok(());
        }
        Err(if answer.starts_with("Permission denied") {
            Error::new(
                ErrorKind::Refused,
                format!(
                    "HAProxy at {} refused '{command}': Permission denied (the socket needs 'level admin' in haproxy.cfg's 'stats socket' line)",
                    self.endpoint
                ),
            )
        } else if answer.starts_with("No such backend") {
            self.missing(backend, server, Missing::Backend)
        } else if answer.starts_with("No such server") {
            self.missing(backend, server, Missing::Server)
        } else {
            Error::new(
                ErrorKind::Refused,
                format!(
                    "HAProxy at {} refused '{command}': {}",
                    self.endpoint,
                    crate::scrub::excerpt(answer.as_bytes(), 200)
                ),
            )
        })
    }

    /// An answer that is not what HAProxy writes for `command`.
    fn unreadable(&self, command: &str, why: &str, answer: &str) -> Error {
        Error::new(
            ErrorKind::Network,
            format!(
                "HAProxy at {} gave an answer to '{command}' that cannot be read ({why}): {:?}; \
                 is it HAProxy's stats socket?",
                self.endpoint,
                crate::scrub::excerpt(answer.as_bytes(), 120)
            ),
        )
    }

    fn missing(&self, backend: &str, server: &str, missing: Missing) -> Error {
        let what = match missing {
            Missing::Backend => format!("no backend '{backend}'"),
            Missing::Server => format!("no server '{server}' in backend '{backend}'"),
        };
        Error::usage(format!(
            "HAProxy at {} has {what}: --server takes BACKEND/SERVER as haproxy.cfg names them",
            self.endpoint
        ))
    }
}

trait Stream: Read + Write {
    fn set_read_timeout(&self, limit: Option<Duration>) -> std::io::Result<()>;
}

impl Stream for UnixStream {
    fn set_read_timeout(&self, limit: Option<Duration>) -> std::io::Result<()> {
        UnixStream::set_read_timeout(self, limit)
    }
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, limit: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, limit)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    Backend,
    Server,
}

/// Why a server's row was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RowError {
    /// HAProxy answered, and has no such backend or server.
    Missing(Missing),
    /// The answer is not one HAProxy writes: cut, garbled, or from something else.
    Unreadable(String),
}

/// The `show stat` row of `backend/server`, by column name. The answer must be HAProxy's
/// CSV: a `# pxname,svname,` header, and rows of as many fields as the header (a row cut short
/// by a closed connection has fewer).
fn stat_row(
    text: &str,
    backend: &str,
    server: &str,
) -> std::result::Result<std::collections::HashMap<String, String>, RowError> {
    let mut lines = text.lines();
    let header: Vec<&str> = match lines.next().and_then(|h| h.strip_prefix("# ")) {
        Some(h) if h.starts_with("pxname,svname,") => h.split(',').collect(),
        _ => {
            return Err(RowError::Unreadable(
                "no '# pxname,svname,' header".to_string(),
            ));
        }
    };
    let mut backend_seen = false;
    for line in lines {
        let row: Vec<&str> = line.split(',').collect();
        if row.first() != Some(&backend) {
            continue;
        }
        backend_seen = true;
        if row.get(1) == Some(&server) {
            if row.len() != header.len() {
                return Err(RowError::Unreadable(format!(
                    "the row of {backend}/{server} has {} fields, the header {}",
                    row.len(),
                    header.len()
                )));
            }
            return Ok(header
                .iter()
                .zip(row)
                .map(|(k, v)| ((*k).to_string(), v.to_string()))
                .collect());
        }
    }
    Err(RowError::Missing(if backend_seen {
        Missing::Server
    } else {
        Missing::Backend
    }))
}

/// `srv_admin_state` of `server` in `show servers state BACKEND` (format 1: a version line,
/// a `# ` header, then one line per server). `No such backend` is HAProxy's answer for a
/// backend it does not have; anything else without the header cannot be read.
fn admin_bits(text: &str, server: &str) -> std::result::Result<u32, RowError> {
    if text.trim_start().starts_with("Can't find backend") || text.contains("No such backend") {
        return Err(RowError::Missing(Missing::Backend));
    }
    let unreadable = |why: &str| RowError::Unreadable(why.to_string());
    let mut lines = text.lines().skip_while(|l| !l.starts_with("# "));
    let header: Vec<&str> = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| unreadable("no '# ' header"))?
        .split(' ')
        .collect();
    let (Some(name_at), Some(admin_at)) = (
        header.iter().position(|h| *h == "srv_name"),
        header.iter().position(|h| *h == "srv_admin_state"),
    ) else {
        return Err(unreadable("no srv_name or srv_admin_state column"));
    };
    let row = lines
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|row| row.get(name_at) == Some(&server))
        .ok_or(RowError::Missing(Missing::Server))?;
    if row.len() != header.len() {
        return Err(RowError::Unreadable(format!(
            "the row of {server} has {} fields, the header {}",
            row.len(),
            header.len()
        )));
    }
    row[admin_at].parse().map_err(|_| {
        RowError::Unreadable(format!(
            "{server} has srv_admin_state {:?}, not a number",
            row[admin_at]
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,status,check_status,extra\n\
        fe,FRONTEND,,,3,4,OPEN,,\n\
        app,s1,1,2,4,5,UP,L7OK,x\n\
        app,s2,0,0,0,0,no check,,y\n\
        app,BACKEND,1,2,4,5,UP,,\n";

    const STATE: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n\
        3 app 1 s1 127.0.0.1 2 8 1\n\
        3 app 2 s2 127.0.0.1 2 0 1\n\
        3 app 3 s3 127.0.0.1 0 9 1\n";

    #[test]
    fn a_stat_row_is_read_by_column_name_and_a_missing_name_says_which_part() {
        let row = stat_row(STAT, "app", "s1").unwrap();
        assert_eq!((row["scur"].as_str(), row["qcur"].as_str()), ("4", "1"));
        assert_eq!(row["status"], "UP");
        assert_eq!(row["extra"], "x");
        let missing = |m| Err(RowError::Missing(m));
        assert_eq!(stat_row(STAT, "app", "nope"), missing(Missing::Server));
        assert_eq!(stat_row(STAT, "web", "s1"), missing(Missing::Backend));
    }

    #[test]
    fn a_cut_or_foreign_answer_is_unreadable_never_a_missing_name() {
        fn unreadable<T>(r: &std::result::Result<T, RowError>) -> bool {
            matches!(r, Err(RowError::Unreadable(_)))
        }
        assert!(unreadable(&stat_row("", "app", "s1")));
        assert!(unreadable(&stat_row(
            "<html><body>It works</body></html>\n",
            "app",
            "s1"
        )));
        let cut = "# pxname,svname,qcur,qmax,scur,smax,status,check_status,extra\napp,s1,0,0";
        assert!(unreadable(&stat_row(cut, "app", "s1")));
        assert!(unreadable(&admin_bits("<html></html>\n", "s1")));
        assert!(unreadable(&admin_bits(
            "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n3 app 1 s1 127",
            "s1"
        )));
        assert!(unreadable(&admin_bits(
            "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n3 app 1 s1 127.0.0.1 2 ? 1\n",
            "s1"
        )));
    }

    #[test]
    fn the_admin_state_is_the_servers_own_forced_maintenance_winning_over_draining() {
        assert_eq!(admin_bits(STATE, "s1"), Ok(8));
        assert_eq!(
            admin_bits(STATE, "s4"),
            Err(RowError::Missing(Missing::Server))
        );
        assert_eq!(AdminState::from_bits(8), AdminState::Drain);
        assert_eq!(AdminState::from_bits(0), AdminState::Ready);
        assert_eq!(AdminState::from_bits(9), AdminState::Maint);
        assert_eq!(AdminState::from_bits(0x01 | 0x04), AdminState::Maint);
        // Inherited from a tracked server, or the configuration's bit left after `state
        // ready`: not the server's own.
        assert_eq!(AdminState::from_bits(0x02), AdminState::Ready);
        assert_eq!(AdminState::from_bits(0x10), AdminState::Ready);
        assert_eq!(AdminState::from_bits(0x04), AdminState::Ready);
        assert_eq!(AdminState::from_bits(0x02 | 0x08), AdminState::Drain);
    }

    #[test]
    fn endpoints_are_a_path_or_tcp_host_port() {
        assert_eq!(
            Endpoint::parse("/run/haproxy/admin.sock").unwrap(),
            Endpoint::Unix("/run/haproxy/admin.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp:127.0.0.1:9999").unwrap(),
            Endpoint::Tcp("127.0.0.1:9999".into())
        );
        assert_eq!(
            Endpoint::parse("tcp:[::1]:9999").unwrap().to_string(),
            "tcp:[::1]:9999"
        );
        assert!(Endpoint::parse("tcp:nowhere").is_err());
        assert!(Endpoint::parse("").is_err());
    }

    #[test]
    fn healthy_means_fully_up_when_checked_and_no_check_otherwise() {
        let view = |status: &str, checked, admin| ServerView {
            status: status.into(),
            scur: 0,
            qcur: 0,
            checked,
            admin,
        };
        assert!(view("UP", true, AdminState::Ready).healthy_and_ready());
        assert!(!view("UP 1/2", true, AdminState::Ready).healthy_and_ready());
        assert!(!view("DRAIN", true, AdminState::Drain).healthy_and_ready());
        assert!(view("no check", false, AdminState::Ready).healthy_and_ready());
        assert!(!view("MAINT", false, AdminState::Maint).healthy_and_ready());
    }

    /// A one-shot server on a unix socket that answers each connection with the next answer,
    /// and keeps the commands it heard.
    fn fake_socket(
        answers: Vec<&'static str>,
    ) -> (
        tempfile::TempDir,
        PathBuf,
        std::thread::JoinHandle<Vec<String>>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let mut heard = Vec::new();
            for answer in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while stream.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
                    line.push(byte[0]);
                }
                heard.push(String::from_utf8(line).unwrap());
                stream.write_all(answer.as_bytes()).unwrap();
            }
            heard
        });
        (dir, path, handle)
    }

    #[test]
    fn set_state_turns_haproxy_answers_into_clear_errors() {
        let (_dir, path, server) = fake_socket(vec![
            "\n",
            "Permission denied\n\n",
            "No such server.\n\n",
            "No such backend.\n\n",
        ]);
        let api = Api::new(Endpoint::Unix(path), Cancel::default());
        let until = Instant::now() + Duration::from_secs(5);
        api.set_state("app", "s1", AdminState::Drain, until)
            .unwrap();
        let denied = api
            .set_state("app", "s1", AdminState::Drain, until)
            .unwrap_err();
        assert_eq!(denied.kind, ErrorKind::Refused);
        assert!(denied.message.contains("level admin"), "{}", denied.message);
        let no_server = api
            .set_state("app", "s9", AdminState::Ready, until)
            .unwrap_err();
        assert_eq!((no_server.kind, no_server.exit), (ErrorKind::Usage, 2));
        assert!(
            no_server
                .message
                .contains("no server 's9' in backend 'app'")
        );
        let no_backend = api
            .set_state("web", "s1", AdminState::Maint, until)
            .unwrap_err();
        assert!(
            no_backend.message.contains("no backend 'web'"),
            "{}",
            no_backend.message
        );
        assert_eq!(
            server.join().unwrap(),
            [
                "set server app/s1 state drain",
                "set server app/s1 state drain",
                "set server app/s9 state ready",
                "set server web/s1 state maint"
            ]
        );
    }

    /// A socket that accepts a connection and never answers.
    type Holder = std::thread::JoinHandle<std::io::Result<UnixStream>>;
    fn silent_socket() -> (tempfile::TempDir, PathBuf, Holder) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let holder = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        (dir, path, holder)
    }

    #[test]
    fn a_silent_haproxy_is_a_timeout_at_the_deadline_not_a_hang() {
        let (_dir, path, holder) = silent_socket();
        let api = Api::new(Endpoint::Unix(path), Cancel::default());
        let started = Instant::now();
        let err = api
            .command("show stat", started + Duration::from_millis(200))
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind, ErrorKind::Timeout, "{}", err.message);
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_millis(400), "{took:?}");
        drop(holder.join());
    }

    #[test]
    fn a_signal_ends_a_read_at_once() {
        let (_dir, path, holder) = silent_socket();
        let cancel = Cancel::default();
        let api = Api::new(Endpoint::Unix(path), cancel.clone());
        let tripper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            cancel.trip(libc::SIGTERM);
        });
        let started = Instant::now();
        let err = api
            .command("show stat", started + Duration::from_secs(5))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Interrupted);
        assert!(started.elapsed() < Duration::from_millis(150));
        tripper.join().unwrap();
        drop(holder.join());
    }
}

/// The `show stat` and `show servers state` readers, reachable from fuzz/ only (the
/// `fuzzing` feature, never enabled by the workspace build).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use std::collections::HashMap;

    /// The `show stat` row of `backend/server`, or why it was not read.
    pub fn show_stat(
        text: &str,
        backend: &str,
        server: &str,
    ) -> Result<HashMap<String, String>, String> {
        super::stat_row(text, backend, server).map_err(|e| format!("{e:?}"))
    }

    /// `srv_admin_state` of `server` in a `show servers state` answer, or why it was not read.
    pub fn servers_state(text: &str, server: &str) -> Result<u32, String> {
        super::admin_bits(text, server).map_err(|e| format!("{e:?}"))
    }
}
