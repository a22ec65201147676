//! A private PostgreSQL cluster for the tests: `initdb` in a temp folder (as the `postgres`
//! system user when the tests run as root), trust authentication, a free loopback port, one
//! cluster per test binary and a database per test, stopped when the test binary exits,
//! whether its tests passed or not.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// A role the server refuses over an unencrypted connection (created by `database`).
pub const TLS_ONLY: &str = "ugw_tls_only";

/// A role that must give its password ([`PASSWORD`]): the server trusts every other role, so
/// a test that logs in as this one proves the password reached the server.
pub const PASSWORD_ROLE: &str = "ugw_password";
pub const PASSWORD: &str = "pg-test-Secret-7f3a";

/// The running cluster of this test binary.
pub struct Cluster {
    pub port: u16,
    /// The server's self-signed certificate (for 127.0.0.1 and localhost): what
    /// `sslrootcert` names to verify it.
    pub cert: PathBuf,
    /// Holds the data folder, the socket and the log; removed at exit.
    pub dir: PathBuf,
    pg_ctl: PathBuf,
}

/// One test's own database.
pub struct Database {
    pub name: String,
    pub port: u16,
}

impl Database {
    /// `postgres://postgres@127.0.0.1:PORT/NAME?sslmode=disable`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{}?sslmode=disable",
            self.port, self.name
        )
    }

    /// The same database with a password in the URL (trust authentication ignores it).
    pub fn url_with_password(&self, password: &str) -> String {
        format!(
            "postgres://postgres:{password}@127.0.0.1:{}/{}?sslmode=disable",
            self.port, self.name
        )
    }

    /// `postgres://ugw_password:PASSWORD@127.0.0.1:PORT/NAME`: a login the server refuses
    /// without that password.
    pub fn url_of_password_role(&self) -> String {
        format!(
            "postgres://{PASSWORD_ROLE}:{PASSWORD}@127.0.0.1:{}/{}",
            self.port, self.name
        )
    }

    /// Run SQL as the superuser; the first column of each row, as text.
    pub fn sql(&self, sql: &str) -> Vec<String> {
        self.client()
            .simple_query(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .filter_map(|message| match message {
                postgres::SimpleQueryMessage::Row(row) => {
                    Some(row.get(0).unwrap_or("").to_string())
                }
                _ => None,
            })
            .collect()
    }

    /// A client of the test's own, for looking at what the tool did.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url()))
    }
}

/// The cluster, started on first use; `None` (the test skips, or fails under CI=true) when
/// PostgreSQL is not installed.
pub fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            if !(super::require("initdb") && super::require("pg_ctl")) {
                return None;
            }
            Some(Cluster::start())
        })
        .as_ref()
}

/// A fresh database named after the test, or `None` when the test should skip.
pub fn database(test: &str) -> Option<Database> {
    let cluster = cluster()?;
    let name = format!("t_{test}");
    let mut admin = postgres::Client::connect(
        &format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            cluster.port
        ),
        postgres::NoTls,
    )
    .expect("the test cluster accepts connections");
    // The role is shared by every test: two tests creating it at once make the loser see
    // unique_violation rather than duplicate_object, and either means "it is there".
    for statement in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
        format!(
            "DO $$ BEGIN CREATE ROLE {TLS_ONLY} LOGIN SUPERUSER; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ),
        format!(
            "DO $$ BEGIN CREATE ROLE {PASSWORD_ROLE} LOGIN SUPERUSER PASSWORD '{PASSWORD}'; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ),
    ] {
        admin
            .batch_execute(&statement)
            .expect("a database per test");
    }
    Some(Database {
        name,
        port: cluster.port,
    })
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("ugw-pg-")
            .tempdir()
            .expect("a temp folder")
            .keep();
        let as_postgres = running_as_root();
        if as_postgres {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the cluster folder");
        }
        let data = dir.join("data");
        let initdb = which("initdb");
        let pg_ctl = which("pg_ctl");
        run_as(
            as_postgres,
            Command::new(&initdb).arg("-D").arg(&data).args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ]),
            "initdb",
        );
        let cert = server_certificate(&dir, &data, as_postgres);
        // The role TLS tests log in as may only come in encrypted: proof that they were. The
        // password role must give its password.
        let hba = data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        std::fs::write(
            &hba,
            format!(
                "hostnossl all {TLS_ONLY} all reject\nhost all {PASSWORD_ROLE} all scram-sha-256\n{rules}"
            ),
        )
        .expect("write pg_hba.conf");
        let port = super::free_port();
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c max_connections=200 -c ssl=on",
            dir.display()
        );
        run_as(
            as_postgres,
            Command::new(&pg_ctl)
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("log"))
                .args(["-o", &options, "-w", "-t", "60", "start"]),
            "pg_ctl start",
        );
        let cluster = Cluster {
            port,
            cert,
            dir,
            pg_ctl,
        };
        stop_at_exit_later(&cluster.pg_ctl, &cluster.dir, as_postgres);
        cluster
    }

    /// A hot standby of this cluster (`pg_basebackup -R`) on a port of its own, started on
    /// first use and stopped at exit like the primary.
    pub fn standby(&self) -> Option<u16> {
        static STANDBY: OnceLock<Option<u16>> = OnceLock::new();
        *STANDBY.get_or_init(|| {
            // The one beside initdb: Debian's /usr/bin wrapper picks a client by user config.
            let pg_basebackup = self.pg_ctl.with_file_name("pg_basebackup");
            if !pg_basebackup.is_file() && !super::require("pg_basebackup") {
                return None;
            }
            let as_postgres = running_as_root();
            let dir = tempfile::Builder::new()
                .prefix("ugw-pg-standby-")
                .tempdir()
                .expect("a temp folder")
                .keep();
            if as_postgres {
                let (uid, gid) = postgres_ids();
                std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the standby folder");
            }
            stop_at_exit_later(&self.pg_ctl, &dir, as_postgres);
            let data = dir.join("data");
            run_as(
                as_postgres,
                Command::new(&pg_basebackup)
                    .arg("-D")
                    .arg(&data)
                    .args(["-R", "-X", "stream", "--checkpoint=fast", "-h", "127.0.0.1", "-U", "postgres", "-p"])
                    .arg(self.port.to_string()),
                "pg_basebackup",
            );
            let port = super::free_port();
            let options = format!(
                // A hot standby needs at least the primary's max_connections.
                "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c max_connections=200",
                dir.display()
            );
            run_as(
                as_postgres,
                Command::new(&self.pg_ctl)
                    .arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(dir.join("log"))
                    .args(["-o", &options, "-w", "-t", "60", "start"]),
                "pg_ctl start (standby)",
            );
            Some(port)
        })
    }

    /// A PgBouncer (session pooling, trust authentication) in front of this cluster that
    /// reaches it over its Unix socket, as many installs do: the server then knows no port
    /// for the connection. Its port on 127.0.0.1, started on first use and stopped at exit;
    /// `None` (the test skips, or fails under CI=true) without `pgbouncer`.
    pub fn pgbouncer(&self) -> Option<u16> {
        static BOUNCER: OnceLock<Option<u16>> = OnceLock::new();
        *BOUNCER.get_or_init(|| {
            if !super::require("pgbouncer") {
                return None;
            }
            let dir = self.dir.join("pgbouncer");
            std::fs::create_dir_all(&dir).expect("the PgBouncer folder");
            let port = super::free_port();
            std::fs::write(dir.join("users.txt"), "\"postgres\" \"\"\n").expect("users.txt");
            std::fs::write(
                dir.join("pgbouncer.ini"),
                format!(
                    "[databases]\n* = host={} port={}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                     listen_port = {port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {}\n\
                     stats_users = postgres\npool_mode = session\nlogfile = {}\n\
                     ignore_startup_parameters = extra_float_digits\n",
                    self.dir.display(),
                    self.port,
                    dir.join("users.txt").display(),
                    dir.join("log").display(),
                ),
            )
            .expect("pgbouncer.ini");
            let mut cmd = Command::new("pgbouncer");
            cmd.arg(dir.join("pgbouncer.ini"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if running_as_root() {
                // PgBouncer refuses to run as root.
                let (uid, gid) = postgres_ids();
                for file in ["", "users.txt", "pgbouncer.ini"] {
                    std::os::unix::fs::chown(dir.join(file), Some(uid), Some(gid))
                        .expect("chown the PgBouncer files");
                }
                std::os::unix::process::CommandExt::uid(&mut cmd, uid);
                std::os::unix::process::CommandExt::gid(&mut cmd, gid);
            }
            let child = cmd.spawn().expect("start pgbouncer");
            STOP_CHILDREN
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(child);
            let started = std::time::Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(30),
                    "pgbouncer does not listen: {}",
                    std::fs::read_to_string(dir.join("log")).unwrap_or_default()
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Some(port)
        })
    }

    /// A PgBouncer of its own in front of this cluster (over the cluster's Unix socket), in
    /// `pool_mode` (`session`, `transaction`), listening on 127.0.0.1 and on a Unix socket in
    /// its own folder; `console_user` makes `postgres` one of its `stats_users` (able to ask
    /// its console). Its TCP port and its socket folder; stopped at exit. `None` (the test
    /// skips, or fails under CI=true) without `pgbouncer`.
    pub fn pgbouncer_with(&self, pool_mode: &str, console_user: bool) -> Option<(u16, PathBuf)> {
        if !super::require("pgbouncer") {
            return None;
        }
        let port = super::free_port();
        let dir = self.dir.join(format!("pgbouncer-{port}"));
        std::fs::create_dir_all(&dir).expect("the PgBouncer folder");
        std::fs::write(dir.join("users.txt"), "\"postgres\" \"\"\n").expect("users.txt");
        let stats_users = if console_user { "postgres" } else { "nobody" };
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={} port={}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nunix_socket_dir = {}\nauth_type = trust\nauth_file = {}\n\
                 stats_users = {stats_users}\npool_mode = {pool_mode}\nlogfile = {}\n\
                 ignore_startup_parameters = extra_float_digits\n",
                self.dir.display(),
                self.port,
                dir.display(),
                dir.join("users.txt").display(),
                dir.join("log").display(),
            ),
        )
        .expect("pgbouncer.ini");
        let mut cmd = Command::new("pgbouncer");
        cmd.arg(dir.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if running_as_root() {
            let (uid, gid) = postgres_ids();
            for file in ["", "users.txt", "pgbouncer.ini"] {
                std::os::unix::fs::chown(dir.join(file), Some(uid), Some(gid))
                    .expect("chown the PgBouncer files");
            }
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, gid);
        }
        let child = cmd.spawn().expect("start pgbouncer");
        STOP_CHILDREN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(child);
        let listening = super::eventually(std::time::Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && dir.join(format!(".s.PGSQL.{port}")).exists()
        });
        assert!(
            listening,
            "pgbouncer does not listen: {}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        Some((port, dir))
    }

    /// The server log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

/// The processes (PgBouncer) to end at exit, before the clusters they front.
static STOP_CHILDREN: std::sync::Mutex<Vec<std::process::Child>> =
    std::sync::Mutex::new(Vec::new());

/// The clusters to stop at exit: `pg_ctl`, the folder, whether to run as `postgres`.
static STOP: std::sync::Mutex<Vec<(PathBuf, PathBuf, bool)>> = std::sync::Mutex::new(Vec::new());

fn stop_at_exit_later(pg_ctl: &Path, dir: &Path, as_postgres: bool) {
    let mut clusters = STOP
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if clusters.is_empty() {
        // SAFETY: registering a plain extern "C" function to run at exit.
        unsafe {
            libc::atexit(stop_at_exit);
        }
    }
    clusters.push((pg_ctl.to_path_buf(), dir.to_path_buf(), as_postgres));
}

/// Stop the clusters and remove their folders when the test binary exits (after failures
/// too: the harness exits through `exit`, which runs this). Standbys first.
extern "C" fn stop_at_exit() {
    for child in STOP_CHILDREN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter_mut()
    {
        let _ = child.kill();
        let _ = child.wait();
    }
    let clusters = STOP
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (pg_ctl, dir, as_postgres) in clusters.iter().rev() {
        let mut cmd = Command::new(pg_ctl);
        cmd.arg("-D")
            .arg(dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = wrap(*as_postgres, &mut cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A self-signed certificate and its key in the data folder (the server reads them as
/// server.crt and server.key, the key private to its owner); the certificate's path.
fn server_certificate(dir: &Path, data: &Path, as_postgres: bool) -> PathBuf {
    let (cert, key) = super::self_signed(dir);
    for (from, to) in [(&cert, "server.crt"), (&key, "server.key")] {
        let target = data.join(to);
        std::fs::copy(from, &target).expect("the server's certificate");
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod the server's key");
        if as_postgres {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(&target, Some(uid), Some(gid))
                .expect("chown the server's key");
        }
    }
    cert
}

fn run_as(as_postgres: bool, cmd: &mut Command, what: &str) {
    let output = wrap(as_postgres, cmd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `cmd` as the `postgres` user (PostgreSQL refuses to run as root), via `runuser`.
fn wrap(as_postgres: bool, cmd: &mut Command) -> Command {
    let mut out = if as_postgres {
        let mut runuser = Command::new("runuser");
        runuser
            .args(["-u", "postgres", "--"])
            .arg(cmd.get_program());
        runuser
    } else {
        Command::new(cmd.get_program())
    };
    out.args(cmd.get_args());
    out
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn postgres_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.first() != Some(&"postgres") || fields.len() < 4 {
                return None;
            }
            Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
        })
        .expect("running as root needs a `postgres` system user to run the test cluster")
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .map_or_else(
            || Path::new(program).to_path_buf(),
            |p| std::fs::canonicalize(&p).unwrap_or(p),
        )
}
