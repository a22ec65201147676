//! The stage an example runs on: the real services and files it names, put here. Examples are
//! written for a real host (`127.0.0.1:8080`, `/var/lib/ugw`, `$APP_URL`); [`STAND_INS`] says
//! exactly what replaces each of those, and nothing else in an example is changed.

use super::Example;
use crate::kit::{self, DemoApp};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What an example names, and what the test puts there instead. Only these strings are
/// replaced in an example's text.
pub const STAND_INS: &[(&str, &str)] = &[
    (
        "127.0.0.1:8080",
        "the demo service, started for this example on 127.0.0.1:0",
    ),
    (
        "[::1]:8080",
        "the demo service, started for this example on [::1]:0",
    ),
    (
        "https://app.internal/health",
        "https://127.0.0.1:PORT/health/ready: the demo service in its TLS mode (the demo \
         service has no plain /health)",
    ),
    (
        "/etc/app/ca.pem",
        "the self-signed certificate (for 127.0.0.1 and localhost) that service presents",
    ),
    (
        "127.0.0.1:5432",
        "a Postgres stand-in on 127.0.0.1:0 that answers a startup packet as a server would",
    ),
    ("db:5432", "the same Postgres stand-in"),
    (
        "/var/lib/ugw",
        "a folder in the example's temp dir (not created: the example creates it)",
    ),
    (
        "sqlite:///var/lib/app/app.db",
        "a SQLite database in the example's temp dir where the pre-deploy migrations of \
         /opt/app/current/migrations already ran (the stage runs `ugw-migrate up` first)",
    ),
    (
        "/opt/app/current/migrations",
        "a migrations/ folder in the example's temp dir: two pre-deploy migrations, one post-deploy",
    ),
    (
        "/opt/app",
        "a release root in the example's temp dir: releases v0.9.0 and v1.0.0 (current), \
         staged by ugw-swap, and shared/config.toml",
    ),
    (
        "/usr/local/bin/app",
        "a script in the example's temp dir (the old binary)",
    ),
    (
        "/opt/app/staging/app",
        "a newer version of that script in the example's temp dir",
    ),
    ("systemctl restart app", "true (the restart succeeds)"),
];

/// Environment an example reads, set as CI or an operator would set it.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("APP_URL", "the demo service's URL (a CI variable)"),
    ("HEALTH_TOKEN", "a secret, which must never be printed"),
    ("PGHOST, PGPORT", "the Postgres stand-in, for pg_isready"),
    (
        "DATABASE_URL",
        "a SQLite database in the example's temp dir, for ugw-migrate, beside a migrations/ \
         folder of two pre-deploy migrations and one post-deploy one",
    ),
    (
        "BASE, V",
        "a release server on loopback (also the play's base_url) serving \
         app-v1.1.0-linux-amd64.tar.gz and its SHA256SUMS; V=v1.1.0",
    ),
];

/// The Ansible play around an example's tasks: one host on a local connection, and the play
/// variables the tasks use.
pub const ANSIBLE_HOST: &str = "node1";
pub const ANSIBLE_VERSION: &str = "v1.1.0";

/// The value of `HEALTH_TOKEN`.
pub const SECRET: &str = "Bearer doc-example-secret-7f3a9c";

pub struct Stage {
    pub dir: tempfile::TempDir,
    pub demo: Option<DemoApp>,
    pub demo6: Option<DemoApp>,
    pub tls: Option<DemoApp>,
    pub postgres: Option<PostgresStandIn>,
    /// The release server behind `$BASE` and the play's `base_url`.
    pub releases: Option<crate::kit::file_server::FileServer>,
    cert: PathBuf,
    /// `DATABASE_URL` for a ugw-migrate example.
    database_url: Option<String>,
}

impl Stage {
    /// The stage for `example`, each demo service started with `demo_args` (after
    /// `--version-label v1.1.0`). `None`, with the reason printed, when a component it needs is
    /// missing here (under CI=true that fails instead).
    pub fn new(example: &Example, demo_args: &[&str]) -> Option<Stage> {
        let text = example.text.as_str();
        if text.contains("[::1]:8080") && !kit::require_ipv6() {
            return None;
        }
        if text.contains("pg_isready") && !kit::require("pg_isready") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let args: Vec<&str> = ["--version-label", ANSIBLE_VERSION]
            .into_iter()
            .chain(demo_args.iter().copied())
            .collect();
        let needs_demo = ["127.0.0.1:8080", "$APP_URL", "{{ base_url }}"]
            .iter()
            .any(|name| text.contains(name));
        let demo = needs_demo.then(|| DemoApp::start(&args));
        let demo6 = text
            .contains("[::1]:8080")
            .then(|| DemoApp::start(&[&["--listen", "[::1]:0"], args.as_slice()].concat()));
        let (tls, cert) = if text.contains("https://app.internal") {
            let (cert, key) = kit::self_signed(dir.path());
            let tls_args = ["--tls-cert", cert.to_str().unwrap()];
            let key_args = ["--tls-key", key.to_str().unwrap()];
            let app = DemoApp::start(&[&tls_args[..], &key_args[..], args.as_slice()].concat());
            (Some(app), cert)
        } else {
            (None, PathBuf::new())
        };
        let postgres = text.contains("5432").then(PostgresStandIn::start);
        let database_url = text
            .contains("ugw-migrate")
            .then(|| migrations_stand_in(dir.path()));
        let releases = (text.contains("$BASE") || text.contains("{{ base_url }}/app"))
            .then(|| release_server(dir.path(), !text.contains("--strip-components")));
        if text.contains("/opt/app") {
            release_root(&dir.path().join("opt/app"));
        }
        if text.contains("/usr/local/bin/app") || text.contains("/opt/app/staging/app") {
            for (path, version) in [
                ("usr/local/bin/app", "1.0.0"),
                ("opt/app/staging/app", "1.1.0"),
            ] {
                let path = dir.path().join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, format!("#!/bin/sh\necho {version}\n")).unwrap();
            }
        }
        Some(Stage {
            dir,
            demo,
            demo6,
            tls,
            postgres,
            releases,
            cert,
            database_url,
        })
    }

    /// The demo service on 127.0.0.1.
    pub fn demo(&self) -> &DemoApp {
        self.demo
            .as_ref()
            .expect("the example names 127.0.0.1:8080")
    }

    /// `example`'s text with [`STAND_INS`] put in.
    pub fn substitute(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (name, value) in self.replacements() {
            text = text.replace(name, &value);
        }
        text
    }

    fn replacements(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(demo) = &self.demo {
            pairs.push(("127.0.0.1:8080", demo.addr()));
        }
        if let Some(demo) = &self.demo6 {
            pairs.push(("[::1]:8080", demo.addr()));
        }
        if let Some(tls) = &self.tls {
            pairs.push((
                "https://app.internal/health",
                format!("{}/health/ready", tls.url),
            ));
            pairs.push(("/etc/app/ca.pem", self.cert.display().to_string()));
        }
        if let Some(postgres) = &self.postgres {
            pairs.push(("127.0.0.1:5432", postgres.addr.to_string()));
            pairs.push(("db:5432", postgres.addr.to_string()));
        }
        if self.database_url.is_some() {
            let migrations = self.dir.path().join("migrations");
            pairs.push((
                "/opt/app/current/migrations",
                migrations.display().to_string(),
            ));
            let deployed = self.dir.path().join("deployed.db");
            pairs.push((
                "sqlite:///var/lib/app/app.db",
                format!("sqlite://{}", deployed.display()),
            ));
        }
        let var_lib = self.dir.path().join("var/lib/ugw");
        pairs.push(("/var/lib/ugw", var_lib.display().to_string()));
        // /opt/app/staging/app lies under /opt/app: replaced with it.
        for path in ["/opt/app", "/usr/local/bin/app"] {
            let local = self.dir.path().join(&path[1..]);
            pairs.push((path, local.display().to_string()));
        }
        pairs.push(("systemctl restart app", "true".to_string()));
        pairs
    }

    /// `program` in the example's temp dir, with the binaries on PATH, the [`ENVIRONMENT`] set,
    /// and stdin from /dev/null.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.dir.path())
            .env("PATH", kit::path_with_bins())
            .env("HEALTH_TOKEN", SECRET)
            .env_remove("UGW_HOST_ID")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if let Some(demo) = &self.demo {
            cmd.env("APP_URL", &demo.url);
        }
        if let Some(releases) = &self.releases {
            cmd.env("BASE", releases.url("").trim_end_matches('/'))
                .env("V", ANSIBLE_VERSION);
        }
        if let Some(postgres) = &self.postgres {
            cmd.env("PGHOST", postgres.addr.ip().to_string())
                .env("PGPORT", postgres.addr.port().to_string());
        }
        if let Some(url) = &self.database_url {
            cmd.env("DATABASE_URL", url);
        }
        cmd
    }

    /// Print what this stage replaced, for the test's output.
    pub fn describe(&self, example: &Example) {
        eprintln!(
            "running {} ({:?}):\n{}",
            example.source, example.kind, example.text
        );
        for (name, value) in self.replacements() {
            if example.text.contains(name) {
                eprintln!("  {name} -> {value}");
            }
        }
    }
}

/// A release server with the demo's next release, `app-v1.1.0-linux-amd64.tar.gz` (made by
/// `tar`), and its SHA256SUMS, as a project publishes them: `bin/` and `migrations/` at the
/// archive's top when `flat`, else inside one top folder (what `--strip-components 1` is for).
fn release_server(dir: &std::path::Path, flat: bool) -> crate::kit::file_server::FileServer {
    use crate::kit::file_server::{FileServer, Served};
    let name = format!("app-{ANSIBLE_VERSION}-linux-amd64");
    let tree = dir.join("release-build").join(&name);
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(
        tree.join("bin/app"),
        format!("#!/bin/sh\necho {ANSIBLE_VERSION}\n"),
    )
    .unwrap();
    // The release ships its pre-deploy migrations, as ugw-migrate's examples expect.
    std::fs::create_dir_all(tree.join("migrations")).unwrap();
    std::fs::write(
        tree.join("migrations/0001_users.sql"),
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n",
    )
    .unwrap();
    let archive = dir.join("release-build").join(format!("{name}.tar.gz"));
    let (from, what) = if flat {
        (tree.clone(), ".".to_string())
    } else {
        (dir.join("release-build"), name.clone())
    };
    let made = Command::new("tar")
        .arg("czf")
        .arg(&archive)
        .arg("-C")
        .arg(from)
        .arg(what)
        .status()
        .unwrap();
    assert!(made.success(), "tar czf");
    let bytes = std::fs::read(&archive).unwrap();
    let digest = sha256sum(&archive);
    let server = FileServer::start();
    server.put(&format!("{name}.tar.gz"), Served::new(&bytes));
    let sums = format!("{digest}  {name}.tar.gz\n");
    server.put("SHA256SUMS", Served::new(sums.as_bytes()));
    server
}

/// `sha256sum FILE`'s digest.
fn sha256sum(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// Two releases swapped in by the real ugw-swap, v1.0.0 current (the demo's next release,
/// v1.1.0, is what the examples fetch), and a shared config file.
fn release_root(root: &std::path::Path) {
    std::fs::create_dir_all(root.join("shared")).unwrap();
    std::fs::write(root.join("shared/config.toml"), "port = 8080\n").unwrap();
    for version in ["v0.9.0", "v1.0.0"] {
        let artifact = root.join("staging").join(version);
        std::fs::create_dir_all(&artifact).unwrap();
        std::fs::write(artifact.join("VERSION"), version).unwrap();
        let mut swap = kit::tool("ugw-swap");
        swap.args([
            "--root",
            root.to_str().unwrap(),
            "--release",
            version,
            "--from",
        ])
        .arg(&artifact);
        kit::run(swap).assert_code(0);
    }
}

/// A real TCP server that speaks just enough of the Postgres wire protocol for `pg_isready`:
/// it declines TLS and GSS encryption, reads the startup packet and answers
/// `AuthenticationOk` and `ReadyForQuery`. A plain `--tcp` connection is accepted and closed.
pub struct PostgresStandIn {
    pub addr: SocketAddr,
    startups: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

/// Request codes a client sends before its startup packet to ask for encryption.
const SSL_REQUEST: u32 = 80_877_103;
const GSS_ENC_REQUEST: u32 = 80_877_104;
const PROTOCOL_3_0: u32 = 196_608;

impl PostgresStandIn {
    pub fn start() -> PostgresStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let startups = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (startups, stop) = (Arc::clone(&startups), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let startups = Arc::clone(&startups);
                    std::thread::spawn(move || {
                        if postgres_session(stream).is_ok_and(|started| started) {
                            startups.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                }
            })
        };
        PostgresStandIn {
            addr,
            startups,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// Startup packets answered so far (one per `pg_isready`).
    pub fn startups(&self) -> usize {
        self.startups.load(Ordering::SeqCst)
    }
}

/// One connection; true when a client sent a protocol 3.0 startup packet and got its answer.
fn postgres_session(mut stream: TcpStream) -> std::io::Result<bool> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    loop {
        let mut head = [0u8; 8];
        if stream.read_exact(&mut head).is_err() {
            return Ok(false); // a bare TCP check
        }
        let length = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        let code = u32::from_be_bytes(head[4..].try_into().unwrap());
        if code == SSL_REQUEST || code == GSS_ENC_REQUEST {
            stream.write_all(b"N")?;
            continue;
        }
        let mut parameters = vec![0u8; length.saturating_sub(8).min(10_000)];
        stream.read_exact(&mut parameters)?;
        if code != PROTOCOL_3_0 {
            return Ok(false);
        }
        let authentication_ok = [b'R', 0, 0, 0, 8, 0, 0, 0, 0];
        let ready_for_query = [b'Z', 0, 0, 0, 5, b'I'];
        stream.write_all(&[&authentication_ok[..], &ready_for_query[..]].concat())?;
        // The client says Terminate and leaves; whatever it sends is not our business.
        let _ = stream.read(&mut [0u8; 64]);
        return Ok(true);
    }
}

impl Drop for PostgresStandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // `accept` blocks: a connection of our own wakes it to see the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// `migrations/` (a table, a column, and the post-deploy drop of an old column) in `dir`,
/// `deployed.db` where its pre-deploy migrations ran, and the URL of a fresh SQLite database
/// (empty, as an application's is once deployed: ugw-migrate creates one only with --create).
fn migrations_stand_in(dir: &std::path::Path) -> String {
    let migrations = dir.join("migrations");
    std::fs::create_dir_all(migrations.join("post")).unwrap();
    for (name, sql) in [
        (
            "0001_users.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n",
        ),
        (
            "0002_email.sql",
            "ALTER TABLE users ADD COLUMN email TEXT;\n",
        ),
        (
            "post/0003_drop_name.sql",
            "ALTER TABLE users DROP COLUMN name;\n",
        ),
    ] {
        std::fs::write(migrations.join(name), sql).unwrap();
    }
    let mut up = kit::tool("ugw-migrate");
    up.args([
        "up", "--create", "--in", "none", "--output", "none", "--quiet", "--dir",
    ])
    .arg(&migrations)
    .arg("--db")
    .arg(format!("sqlite://{}/deployed.db", dir.display()));
    kit::run(up).assert_code(0);
    rusqlite::Connection::open(dir.join("app.db")).unwrap();
    format!("sqlite://{}/app.db", dir.display())
}
