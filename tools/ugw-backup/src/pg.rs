//! PostgreSQL through its own tools, run by the shared runner with no shell: `pg_dump
//! --format=custom` into a temp file (a tar entry needs its size first), checked by
//! `pg_restore -f /dev/null`, which reads every block; restored with `pg_restore --clean
//! --if-exists --single-transaction`. The password travels in `PGPASSWORD`, never in argv.

use std::path::Path;
use std::time::{Duration, Instant};
use ugw_shared::cancel::Cancel;
use ugw_shared::runner::{self, RunSpec};
use ugw_shared::scrub::Scrubber;
use ugw_shared::{Error, ErrorKind, Result};

/// A dump or restore without a --timeout still ends some day.
const NO_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// A database URL split into what argv may show and the password.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL without its password: for argv, the manifest and messages.
    pub shown: String,
    pub database: String,
    password: Option<String>,
}

impl Target {
    pub fn parse(text: &str, scrubber: &Scrubber) -> Result<Self> {
        scrubber.add_url_secrets(text);
        let mut url = url::Url::parse(text)
            .map_err(|e| Error::usage(format!("--db: not a postgres:// URL ({e})")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(Error::usage("--db: not a postgres:// URL"));
        }
        let password = url.password().map(percent_decode);
        let _ = url.set_password(None);
        let database = url.path().trim_start_matches('/').to_string();
        Ok(Target {
            shown: url.to_string(),
            database: if database.is_empty() {
                "postgres".into()
            } else {
                database
            },
            password,
        })
    }

    fn spec(&self, program: &str, args: Vec<String>, deadline: Option<Instant>) -> RunSpec {
        let deadline = deadline.unwrap_or_else(|| Instant::now() + NO_DEADLINE);
        let spec = RunSpec::argv(program, args, deadline);
        match &self.password {
            Some(password) => spec.with_env("PGPASSWORD", password),
            None => spec,
        }
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
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
            format!("--dbname={}", target.shown),
        ],
        deadline,
    );
    let outcome = runner::run(&spec, cancel)?;
    if outcome.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&outcome.stderr).trim().to_string();
    if stderr.contains("server version mismatch")
        || stderr.contains("aborting because of server version mismatch")
    {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "pg_dump is older than the PostgreSQL server of {}: install a pg_dump at least as new as the server ({stderr})",
                target.shown
            ),
        ));
    }
    Err(Error::new(
        ErrorKind::CheckFailed,
        format!(
            "pg_dump of {} failed ({}): {stderr}",
            target.shown,
            outcome.describe()
        ),
    ))
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
            format!("--dbname={}", target.shown),
        ],
        deadline,
    );
    let outcome = runner::run(&spec, cancel)?;
    if outcome.success() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::CheckFailed,
        format!(
            "pg_dumpall --globals-only of {} failed ({}): {}",
            target.shown,
            outcome.describe(),
            String::from_utf8_lossy(&outcome.stderr).trim()
        ),
    ))
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
            format!("--dbname={}", target.shown),
            file.display().to_string(),
        ],
        deadline,
    );
    let outcome = runner::run(&spec, cancel)?;
    if outcome.success() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::CheckFailed,
        format!(
            "pg_restore into {} failed ({}); the single transaction left it as it was: {}",
            target.shown,
            outcome.describe(),
            String::from_utf8_lossy(&outcome.stderr).trim()
        ),
    ))
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
            "postgres://app@127.0.0.1:5433/shop?sslmode=disable"
        );
        assert_eq!(target.database, "shop");
        assert_eq!(target.password.as_deref(), Some("p@ss"));
        let spec = target.spec("pg_dump", vec![format!("--dbname={}", target.shown)], None);
        assert!(
            spec.env
                .iter()
                .any(|(k, v)| k == "PGPASSWORD" && v == "p@ss")
        );
        assert!(!format!("{:?}", spec.program).contains("p@ss"));
        assert!(Target::parse("mysql://x/y", &scrubber).is_err());
    }
}
