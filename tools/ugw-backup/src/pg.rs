//! PostgreSQL through its own tools, run by the shared runner with no shell: `pg_dump
//! --format=custom` into a temp file (a tar entry needs its size first), checked by
//! `pg_restore -f /dev/null`, which reads every block; restored with `pg_restore --clean
//! --if-exists --single-transaction`. The password travels in `PGPASSWORD`, never in argv.

use std::path::Path;
use std::time::{Duration, Instant};
use ugw_shared::cancel::Cancel;
use ugw_shared::db::{DbUrl, PgTarget};
use ugw_shared::runner::{self, Program, RunSpec};
use ugw_shared::scrub::Scrubber;
use ugw_shared::{Error, ErrorKind, Result};

/// A dump or restore without a --timeout still ends some day.
const NO_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// A PostgreSQL database to dump or restore: the shared URL parsing, shown without its
/// password; the programs connect through the libpq environment (`PgTarget::child_env`).
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL without its password: for the manifest and messages.
    pub shown: String,
    pub database: String,
    connection: PgTarget,
}

impl Target {
    pub fn new(connection: PgTarget) -> Self {
        Target {
            shown: connection.url(false),
            database: connection.dbname.clone(),
            connection,
        }
    }

    /// A `postgres://` URL, its password registered with `scrubber` first.
    pub fn parse(text: &str, scrubber: &Scrubber) -> Result<Self> {
        match DbUrl::parse_registering(text, scrubber)? {
            DbUrl::Postgres(connection) => Ok(Target::new(connection)),
            DbUrl::Sqlite(_) => Err(Error::usage("not a postgres:// URL")),
        }
    }

    /// Run a libpq program against this target; when it fails, `what` failed, with the
    /// reason it gave. A program older than the server is the operator's to fix: a usage error.
    fn run(&self, spec: &RunSpec, cancel: &Cancel, what: &str) -> Result<()> {
        let outcome = runner::run(spec, cancel)?;
        let program = match &spec.program {
            Program::Argv(argv) => argv.first().map(|p| p.to_string_lossy().into_owned()),
            Program::Shell(_) => None,
        }
        .unwrap_or_default();
        if outcome.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&outcome.stderr).trim().to_string();
        if stderr.contains("server version mismatch") {
            return Err(Error::usage(format!(
                "{program} is older than the PostgreSQL server of {}: install a {program} at least as new as the server ({stderr})",
                self.shown,
            )));
        }
        Err(Error::new(
            ErrorKind::CheckFailed,
            format!("{what} failed ({}): {stderr}", outcome.describe()),
        ))
    }

    fn spec(&self, program: &str, args: Vec<String>, deadline: Option<Instant>) -> RunSpec {
        let deadline = deadline.unwrap_or_else(|| Instant::now() + NO_DEADLINE);
        self.connection.child_env().into_iter().fold(
            RunSpec::argv(program, args, deadline),
            |spec, (key, value)| spec.with_env(key, &value),
        )
    }
}

/// `pg_dump --format=custom` of `target` into `file`.
pub fn dump(
    target: &Target,
    file: &Path,
    deadline: Option<Instant>,
    cancel: &Cancel,
) -> Result<()> {
    let spec = target.spec(
        "pg_dump",
        vec![
            "--format=custom".into(),
            "--no-password".into(),
            format!("--file={}", file.display()),
        ],
        deadline,
    );
    target.run(&spec, cancel, &format!("pg_dump of {}", target.shown))
}

/// `pg_dumpall --globals-only` (roles, tablespaces) of `target`'s server into `file`.
pub fn dump_globals(
    target: &Target,
    file: &Path,
    deadline: Option<Instant>,
    cancel: &Cancel,
) -> Result<()> {
    let spec = target.spec(
        "pg_dumpall",
        vec![
            "--globals-only".into(),
            "--no-password".into(),
            format!("--file={}", file.display()),
        ],
        deadline,
    );
    let what = format!("pg_dumpall --globals-only of {}", target.shown);
    target.run(&spec, cancel, &what)
}

/// `pg_restore -f /dev/null`: reads every block of the dump.
pub fn check(file: &Path, deadline: Option<Instant>, cancel: &Cancel) -> Result<()> {
    let deadline = deadline.unwrap_or_else(|| Instant::now() + NO_DEADLINE);
    let spec = RunSpec::argv(
        "pg_restore",
        ["-f".into(), "/dev/null".into(), file.display().to_string()],
        deadline,
    );
    let outcome = runner::run(&spec, cancel)?;
    if outcome.success() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Corrupt,
        format!(
            "the PostgreSQL dump fails pg_restore ({}): {}",
            outcome.describe(),
            String::from_utf8_lossy(&outcome.stderr).trim()
        ),
    ))
}

/// `pg_restore --clean --if-exists --single-transaction` of `file` into `target`.
pub fn restore(
    target: &Target,
    file: &Path,
    deadline: Option<Instant>,
    cancel: &Cancel,
) -> Result<()> {
    let spec = target.spec(
        "pg_restore",
        vec![
            "--clean".into(),
            "--if-exists".into(),
            "--single-transaction".into(),
            "--no-password".into(),
            // pg_restore wants a -d to restore into a database; the rest of the connection
            // comes from the environment.
            format!("--dbname={}", target.database),
            file.display().to_string(),
        ],
        deadline,
    );
    let what = format!(
        "pg_restore into {} (in one transaction, which left it as it was)",
        target.shown
    );
    target.run(&spec, cancel, &what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_for_the_environment() {
        let scrubber = Scrubber::default();
        let target = Target::parse(
            "postgres://app:p%40ss@127.0.0.1:5433/shop?sslmode=disable",
            &scrubber,
        )
        .unwrap();
        assert_eq!(
            target.shown,
            "postgres://127.0.0.1:5433/shop?user=app&sslmode=disable"
        );
        assert_eq!(target.database, "shop");
        let spec = target.spec("pg_dump", vec!["--no-password".into()], None);
        let env = |key: &str| {
            spec.env
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(env("PGPASSWORD"), Some("p@ss"));
        assert_eq!(env("PGDATABASE"), Some("shop"));
        assert_eq!(env("PGPORT"), Some("5433"));
        assert!(!format!("{:?}", spec.program).contains("p@ss"));
        assert_eq!(scrubber.scrub_str("p@ss and p%40ss"), "*** and ***");
        assert!(Target::parse("mysql://x/y", &scrubber).is_err());
        assert!(Target::parse("sqlite:///x.db", &scrubber).is_err());
    }
}
