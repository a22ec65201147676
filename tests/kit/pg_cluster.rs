//! A private PostgreSQL cluster for a test: `initdb` in a temp folder (owned by `postgres`
//! when the tests run as root, as PostgreSQL refuses to run as root), password auth, one
//! free port on 127.0.0.1, stopped and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const PASSWORD: &str = "pg-test-Secret-7f3a";

pub struct PgCluster {
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
    /// Where `initdb` and `pg_ctl` are: Debian keeps them off PATH.
    bindir: PathBuf,
}

/// The server programs' folder: beside an `initdb` on PATH, else the newest Debian one.
fn server_bindir() -> Option<PathBuf> {
    let on_path = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = on_path.and_then(|p| p.parent().map(Path::to_path_buf)) {
        return Some(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

impl PgCluster {
    /// A running cluster, or `None` (the test skips, or fails under CI=true) without initdb.
    pub fn start() -> Option<PgCluster> {
        let Some(bindir) = server_bindir() else {
            super::require("initdb"); // says why (and fails under CI=true)
            return None;
        };
        if !(super::require("psql") && super::require("pg_dump") && super::require("pg_restore")) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = rustix::process::geteuid().is_root();
        if as_postgres {
            std::fs::set_permissions(
                dir.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = PgCluster {
            dir,
            port,
            as_postgres,
            bindir,
        };
        std::fs::write(cluster.path("pw"), PASSWORD).unwrap();
        if as_postgres {
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(cluster.path("pw"))
                .status()
                .unwrap();
        }
        cluster.as_owner(&[
            "initdb",
            "-D",
            &cluster.path_str("data"),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            &format!("--pwfile={}", cluster.path_str("pw")),
            "--no-sync",
        ]);
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            cluster.port,
            cluster.path_str("")
        );
        cluster.as_owner(&[
            "pg_ctl",
            "-D",
            &cluster.path_str("data"),
            "-l",
            &cluster.path_str("log"),
            "-o",
            &options,
            "-w",
            "start",
        ]);
        Some(cluster)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn path_str(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn as_owner(&self, argv: &[&str]) {
        let program = self.bindir.join(argv[0]);
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"])
                .arg(&program)
                .args(&argv[1..]);
            cmd
        } else {
            let mut cmd = Command::new(&program);
            cmd.args(&argv[1..]);
            cmd
        };
        let output = cmd.current_dir("/").stdin(Stdio::null()).output().unwrap();
        assert!(
            output.status.success(),
            "{argv:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/db`
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Run SQL in `db`; its output, one row a line, fields separated by `|`.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let output = Command::new("psql")
            .args([
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGPASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.path_str("data");
        if self.as_postgres {
            let _ = Command::new("runuser")
                .args([
                    "-u",
                    "postgres",
                    "--",
                    "pg_ctl",
                    "-D",
                    &data,
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        } else {
            let _ = Command::new("pg_ctl")
                .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
