//! PostgreSQL through its own tools, run by the shared runner with no shell: `pg_dump
//! --format=custom` into a temp file (a tar entry needs its size first), checked by
//! `pg_restore -f /dev/null`, which reads every block; restored with `pg_restore --clean
//! --if-exists --single-transaction`. The password travels in `PGPASSWORD`, never in argv.
//! The connection is the URL's alone: the libpq variables it decides (`PGHOSTADDR`,
//! `PGSERVICE`...) are cleared from the child's environment, so a stray `PGHOSTADDR` never
//! sends a dump or a restore to another server than the one the manifest names.

use crate::manifest::PgConnection;
use std::path::Path;
use std::time::Instant;
use ugw_shared::cancel::Cancel;
use ugw_shared::db::{DbUrl, PgTarget, SslMode};
use ugw_shared::runner::{self, Program, RunSpec};
use ugw_shared::scrub::Scrubber;
use ugw_shared::{Error, ErrorKind, Result};

/// libpq variables that would override or redirect what the URL says: where to connect,
/// as whom, to which database, with which session options (the ones the URL sets are set
/// again from it). `PGPASSWORD`, `PGPASSFILE`, the client certificate, `PGSSLROOTCERT` and
/// `PGCONNECT_TIMEOUT` stay when the URL says nothing of them: credentials and trust, not
/// where a dump or a restore lands.
const ROUTING_VARS: &[&str] = &[
    "PGHOSTADDR",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGTARGETSESSIONATTRS",
    "PGLOAD_BALANCE_HOSTS",
    "PGREQUIRESSL",
    "PGDATABASE",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGSSLMODE",
];

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

    /// The connection a manifest recorded, field by field (no password: it comes from the
    /// environment, as for any libpq tool).
    pub fn from_connection(connection: &PgConnection) -> Result<Self> {
        Ok(Target::new(PgTarget {
            host: connection.host.clone(),
            port: connection.port,
            user: connection.user.clone(),
            password: None,
            dbname: connection.dbname.clone(),
            sslmode: SslMode::parse(&connection.sslmode)?,
            application_name: None,
            connect_timeout: None,
            ssl_root_cert: connection
                .sslrootcert
                .as_ref()
                .map(std::path::PathBuf::from),
        }))
    }

    /// The fields a manifest keeps.
    pub fn connection(&self) -> PgConnection {
        PgConnection {
            host: self.connection.host.clone(),
            port: self.connection.port,
            user: self.connection.user.clone(),
            dbname: self.connection.dbname.clone(),
            sslmode: self.connection.sslmode.word().to_string(),
            sslrootcert: self
                .connection
                .ssl_root_cert
                .as_ref()
                .map(|p| p.display().to_string()),
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
        let program = program_of(spec);
        if outcome.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&outcome.stderr).trim().to_string();
        if outcome.ended == runner::Ended::TimedOut {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{what} did not finish before the deadline (--timeout; {}){}",
                    outcome.describe(),
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!(": {stderr}")
                    }
                ),
            ));
        }
        if outcome.ended == runner::Ended::Exited(127) {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{program} cannot be run (is it installed and on PATH?): {stderr}"),
            ));
        }
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

    /// `program args` through `env -u VAR...`: the runner can add to a child's environment
    /// but not take from it, and what the URL decides must not be overridden.
    fn spec(&self, program: &str, args: Vec<String>, deadline: Instant) -> RunSpec {
        let env = self.connection.child_env();
        // `env -u` acts on the environment it is given, ours included: only what the URL
        // does not set is unset.
        let words: Vec<String> = ROUTING_VARS
            .iter()
            .filter(|var| !env.iter().any(|(key, _)| key == *var))
            .flat_map(|var| ["-u".to_string(), (*var).to_string()])
            .chain(std::iter::once(program.to_string()))
            .chain(args)
            .collect();
        env.into_iter().fold(
            RunSpec::argv("env", words, deadline),
            |spec, (key, value)| spec.with_env(key, &value),
        )
    }
}

/// A child's stdout into our open file.
fn into_file(file: &std::fs::File) -> Result<runner::Output> {
    let copy = file
        .try_clone()
        .map_err(|e| Error::io("cannot hand a temp file to pg_dump", &e))?;
    Ok(runner::Output::File(std::sync::Arc::new(copy)))
}

/// The program a spec runs (after `env`'s own options), for messages.
fn program_of(spec: &RunSpec) -> String {
    let Program::Argv(argv) = &spec.program else {
        return String::new();
    };
    let mut words = argv.iter().map(|w| w.to_string_lossy().into_owned());
    let first = words.next().unwrap_or_default();
    if first != "env" {
        return first;
    }
    let mut rest = words.peekable();
    while rest.peek().is_some_and(|w| w == "-u") {
        rest.next();
        rest.next();
    }
    rest.next().unwrap_or_default()
}

/// A libpq conninfo value, quoted: a database named `a=b` or `postgres://x` given to `-d`
/// bare would be read as a connection string.
fn conninfo_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `pg_dump --format=custom` of `target` into `file`, an open temp file of ours: its stdout
/// goes there, so `pg_dump` never opens a path someone could have swapped meanwhile.
pub fn dump(
    target: &Target,
    file: &std::fs::File,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<()> {
    let what = format!("pg_dump of {}", target.shown);
    dump_with(
        target,
        "pg_dump",
        "--format=custom",
        file,
        deadline,
        cancel,
        &what,
    )
}

/// `pg_dumpall --globals-only` (roles, tablespaces) of `target`'s server into `file`, an
/// open temp file of ours.
pub fn dump_globals(
    target: &Target,
    file: &std::fs::File,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<()> {
    let what = format!("pg_dumpall --globals-only of {}", target.shown);
    dump_with(
        target,
        "pg_dumpall",
        "--globals-only",
        file,
        deadline,
        cancel,
        &what,
    )
}

/// `program what_flag --no-password` against `target`, its stdout into `file`.
fn dump_with(
    target: &Target,
    program: &str,
    what_flag: &str,
    file: &std::fs::File,
    deadline: Instant,
    cancel: &Cancel,
    what: &str,
) -> Result<()> {
    let spec = target
        .spec(
            program,
            vec![what_flag.into(), "--no-password".into()],
            deadline,
        )
        .with_stdout(into_file(file)?);
    target.run(&spec, cancel, what)
}

/// `pg_restore -f /dev/null`: reads every block of the dump.
pub fn check(file: &Path, deadline: Instant, cancel: &Cancel) -> Result<()> {
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
pub fn restore(target: &Target, file: &Path, deadline: Instant, cancel: &Cancel) -> Result<()> {
    let spec = target.spec(
        "pg_restore",
        vec![
            "--clean".into(),
            "--if-exists".into(),
            "--single-transaction".into(),
            "--no-password".into(),
            // pg_restore wants a -d to restore into a database; the rest of the connection
            // comes from the environment.
            format!("--dbname=dbname={}", conninfo_quoted(&target.database)),
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
        let spec = target.spec("pg_dump", vec!["--no-password".into()], Instant::now());
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
