//! HAProxy as a child of the test: `-db` (foreground), a generated configuration in a short
//! temp folder (unix socket paths are limited to 108 bytes), an admin-level stats socket and
//! optionally a user-level one, one backend of the servers a test names with fast checks
//! (`inter 100ms fall 3 rise 2`), a frontend on a free port; killed and reaped on drop.
//! Helpers read `show stat` and `show servers state` for a server, the way the test checks
//! what the tool did.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The backend every fixture defines.
pub const BACKEND: &str = "app";

/// One server of the backend: its name, `HOST:PORT`, and whether HAProxy health-checks it.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub addr: String,
    pub check: bool,
    /// Words added to this server's line only (`track app/s2`…).
    pub extra: String,
}

impl Server {
    pub fn new(name: &str, addr: &str, check: bool) -> Server {
        Server {
            name: name.to_string(),
            addr: addr.to_string(),
            check,
            extra: String::new(),
        }
    }

    /// This server with `words` added to its line.
    #[must_use]
    pub fn with(mut self, words: &str) -> Server {
        self.extra = words.to_string();
        self
    }
}

/// How to build the configuration; `HaProxy::start` takes the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// The health check's path (`option httpchk GET PATH`).
    pub check_path: String,
    /// Also open `u.sock` at `level user` (no right to change a server).
    pub user_socket: bool,
    /// Also listen for the runtime API on a TCP port (admin level).
    pub tcp_socket: bool,
    /// Lines added to the backend (`cookie SRV insert`, `retries 0`…).
    pub backend_extra: Vec<String>,
    /// `timeout server`: how long a request may take upstream.
    pub server_timeout: Duration,
    /// Sticky sessions: a `SRV` cookie names the server a client keeps going to, drained or not.
    pub cookies: bool,
    /// Words added to every `server` line (`maxconn 1`…).
    pub server_extra: String,
    /// Master-worker mode (`-W`): SIGUSR2 to the master (`HaProxy::reload`) starts a new
    /// worker that reads the configuration afresh, as `systemctl reload haproxy` does.
    pub master_worker: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            check_path: "/health/live".to_string(),
            user_socket: false,
            tcp_socket: false,
            backend_extra: Vec::new(),
            server_timeout: Duration::from_secs(60),
            cookies: false,
            server_extra: String::new(),
            master_worker: false,
        }
    }
}

/// A running HAProxy; killed and reaped when dropped.
pub struct HaProxy {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The frontend's port on 127.0.0.1.
    pub port: u16,
    /// The runtime API port on 127.0.0.1 when `tcp_socket` was asked for.
    pub api_port: Option<u16>,
    master_worker: bool,
}

impl HaProxy {
    /// Whether haproxy is installed (`kit::require`: skip locally, fail under CI=true).
    pub fn available() -> bool {
        super::require("haproxy")
    }

    /// One backend `app` with `servers`, default options.
    pub fn start(servers: &[Server]) -> HaProxy {
        HaProxy::start_with(servers, &Options::default())
    }

    pub fn start_with(servers: &[Server], options: &Options) -> HaProxy {
        // A free port may be taken between our probe and HAProxy's bind: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            match HaProxy::try_start(servers, options) {
                Ok(haproxy) => return haproxy,
                Err(e) => last_error = e,
            }
        }
        panic!("haproxy did not start: {last_error}");
    }

    fn try_start(servers: &[Server], options: &Options) -> Result<HaProxy, String> {
        let dir = tempfile::Builder::new()
            .prefix("hap")
            .tempdir_in("/tmp")
            .expect("a temp folder");
        let port = super::free_port();
        let api_port = options.tcp_socket.then(super::free_port);
        let config = dir.path().join("h.cfg");
        std::fs::write(&config, config_text(&dir, port, api_port, servers, options)).unwrap();
        let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
        let mut command = Command::new("haproxy");
        if options.master_worker {
            command.arg("-W");
        }
        let child = command
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("haproxy starts");
        let mut haproxy = HaProxy {
            child: Some(child),
            dir,
            port,
            api_port,
            master_worker: options.master_worker,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Some(status) = haproxy.child.as_mut().unwrap().try_wait().unwrap() {
                haproxy.child = None;
                return Err(format!("exited with {status}: {}", haproxy.log()));
            }
            if haproxy.try_command("show info").is_ok() {
                return Ok(haproxy);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("no stats socket after 10 s: {}", haproxy.log()))
    }

    /// The admin-level stats socket.
    pub fn admin_socket(&self) -> PathBuf {
        self.dir.path().join("a.sock")
    }

    /// The user-level stats socket (`Options::user_socket`).
    pub fn user_socket(&self) -> PathBuf {
        self.dir.path().join("u.sock")
    }

    /// `http://127.0.0.1:PORT` of the frontend.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id().cast_signed())
    }

    /// Reload a master-worker HAProxy (`Options::master_worker`): SIGUSR2 to the master, then
    /// wait until a new worker answers on the admin socket (its `Pid` in `show info` changes).
    pub fn reload(&self) {
        let worker = |h: &HaProxy| {
            h.try_command("show info").ok().and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("Pid: ").map(|p| p.trim().to_string()))
            })
        };
        let before = worker(self);
        super::signal(self.pid(), libc::SIGUSR2);
        assert!(
            super::eventually(Duration::from_secs(10), || {
                let now = worker(self);
                now.is_some() && now != before
            }),
            "no new worker after SIGUSR2: {}",
            self.log()
        );
    }

    /// What HAProxy wrote (its warnings: servers going up and down).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    /// Run one runtime API command on the admin socket; its answer.
    pub fn command(&self, command: &str) -> String {
        self.try_command(command)
            .unwrap_or_else(|e| panic!("{command}: {e}\n{}", self.log()))
    }

    fn try_command(&self, command: &str) -> std::io::Result<String> {
        let mut socket = UnixStream::connect(self.admin_socket())?;
        socket.set_read_timeout(Some(Duration::from_secs(5)))?;
        socket.write_all(format!("{command}\n").as_bytes())?;
        let mut answer = String::new();
        socket.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// The `show stat` row of `server` in the backend, by column name.
    pub fn stat(&self, server: &str) -> HashMap<String, String> {
        let text = self.command("show stat");
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .and_then(|h| h.strip_prefix("# "))
            .expect("a show stat header")
            .split(',')
            .collect();
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|row| row.first() == Some(&BACKEND) && row.get(1) == Some(&server))
            .map_or_else(
                || panic!("no server {BACKEND}/{server} in show stat: {text}"),
                |row| by_name(&header, &row),
            )
    }

    /// `status` of `server` in `show stat`: `UP`, `UP 1/2`, `DOWN`, `DRAIN`, `MAINT`, `no check`.
    pub fn status(&self, server: &str) -> String {
        self.stat(server)["status"].clone()
    }

    /// `scur + qcur` of `server`: requests it is handling or that wait for it.
    pub fn in_flight(&self, server: &str) -> u64 {
        let stat = self.stat(server);
        count(&stat, "scur") + count(&stat, "qcur")
    }

    /// Sessions `server` has handled in total (`stot`).
    pub fn total(&self, server: &str) -> u64 {
        count(&self.stat(server), "stot")
    }

    /// Slow GETs (`/slow?ms=MS`) through the frontend, sent until one is in flight on `server`
    /// (round robin spreads them): the handle of every request sent, each giving its status
    /// and when it ended.
    pub fn slow_request_on(
        &self,
        server: &str,
        ms: u64,
    ) -> Vec<JoinHandle<(Result<u16, String>, Instant)>> {
        let mut sent = Vec::new();
        for _ in 0..4 {
            let url = format!("{}/slow?ms={ms}", self.url());
            sent.push(std::thread::spawn(move || {
                let status = super::load::get_url(&url);
                (status, Instant::now())
            }));
            if super::eventually(Duration::from_secs(2), || self.in_flight(server) >= 1) {
                return sent;
            }
        }
        panic!("no request in flight on {server}: {:?}", self.stat(server));
    }

    /// The `show servers state` row of `server`, by column name (`srv_admin_state`,
    /// `srv_op_state`…).
    pub fn server_state(&self, server: &str) -> HashMap<String, String> {
        let text = self.command(&format!("show servers state {BACKEND}"));
        let mut lines = text.lines().skip(1);
        let header: Vec<&str> = lines
            .next()
            .and_then(|h| h.strip_prefix("# "))
            .expect("a show servers state header")
            .split(' ')
            .collect();
        lines
            .map(|line| line.split(' ').collect::<Vec<_>>())
            .find(|row| row.get(3) == Some(&server))
            .map_or_else(
                || panic!("no server {server} in show servers state: {text}"),
                |row| by_name(&header, &row),
            )
    }

    /// Set `server`'s administrative state (`ready`, `drain`, `maint`) as an operator would.
    pub fn set_state(&self, server: &str, state: &str) {
        let answer = self.command(&format!("set server {BACKEND}/{server} state {state}"));
        assert!(answer.trim().is_empty(), "set state {state}: {answer}");
    }

    /// Wait until `server`'s status is `status`; false after `timeout`.
    pub fn wait_status(&self, server: &str, status: &str, timeout: Duration) -> bool {
        super::eventually(timeout, || self.status(server) == status)
    }
}

/// A counter in a `show stat` row (`scur`, `qcur`, `stot`…); 0 when HAProxy leaves it empty.
pub fn count(stat: &HashMap<String, String>, name: &str) -> u64 {
    stat[name].parse().unwrap_or(0)
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A master-worker HAProxy stops its workers, old ones included, on SIGTERM; a
            // SIGKILL would leave them behind.
            if self.master_worker {
                super::signal(child.id().cast_signed(), libc::SIGTERM);
                let until = Instant::now() + Duration::from_secs(5);
                while Instant::now() < until {
                    if let Ok(Some(_)) = child.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn by_name(header: &[&str], row: &[&str]) -> HashMap<String, String> {
    header
        .iter()
        .zip(row)
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn config_text(
    dir: &tempfile::TempDir,
    port: u16,
    api_port: Option<u16>,
    servers: &[Server],
    options: &Options,
) -> String {
    let dir = dir.path().display();
    let mut text = format!("global\n  stats socket {dir}/a.sock level admin\n");
    if options.user_socket {
        let _ = writeln!(text, "  stats socket {dir}/u.sock level user");
    }
    if let Some(api) = api_port {
        let _ = writeln!(text, "  stats socket ipv4@127.0.0.1:{api} level admin");
    }
    let _ = write!(
        text,
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 60s\n  timeout server {}ms\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  default_backend {BACKEND}\n\
         backend {BACKEND}\n  balance roundrobin\n  option httpchk GET {}\n\
         \x20 default-server inter 100ms fall 3 rise 2\n",
        options.server_timeout.as_millis(),
        options.check_path
    );
    if options.cookies {
        text.push_str("  cookie SRV insert indirect nocache\n");
    }
    for line in &options.backend_extra {
        let _ = writeln!(text, "  {line}");
    }
    for server in servers {
        let check = if server.check { " check" } else { "" };
        let cookie = if options.cookies {
            format!(" cookie {}", server.name)
        } else {
            String::new()
        };
        let _ = write!(
            text,
            "  server {} {}{check}{cookie}",
            server.name, server.addr
        );
        for words in [&options.server_extra, &server.extra] {
            if !words.is_empty() {
                let _ = write!(text, " {words}");
            }
        }
        text.push('\n');
    }
    text
}
