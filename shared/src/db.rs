//! Database URLs, as every tool that talks to a database takes them (ugw-migrate,
//! ugw-backup): `--db URL` / `--db-env VAR` (default `DATABASE_URL`), the SQLite and
//! PostgreSQL forms, a redacted form for the record, the password registered with the
//! scrubber, and the environment a child process (`pg_dump`, `psql`) gets it through.

use crate::error::{Error, Result};
use crate::scrub::{Scrubber, UrlParts};
use clap::{Arg, ArgAction, ArgMatches};
use percent_encoding::percent_decode_str;
use std::path::PathBuf;

/// The variable `--db-env` names when it is not given.
pub const DEFAULT_ENV: &str = "DATABASE_URL";

/// The database flags' ids.
pub const DB: &str = "db";
pub const DB_ENV: &str = "db-env";

/// How many databases a tool takes, which decides how its `--db` and `--db-env` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Databases {
    /// One (ugw-migrate): `--db` or `--db-env`, the variable [`DEFAULT_ENV`] by default
    /// ([`DbUrl::from_matches`]).
    One,
    /// Any number (ugw-backup create): each flag repeatable, no default variable
    /// ([`DbUrl::all_from_matches`]).
    Many,
}

/// The database flags, with their help, defined once for every tool that talks to a
/// database: `--db URL` and `--db-env VAR`, as `count` reads them.
#[must_use]
pub fn group(count: Databases) -> Vec<Arg> {
    match count {
        Databases::One => args(),
        Databases::Many => vec![
            Arg::new(DB)
                .long(DB)
                .value_name("URL")
                .action(ArgAction::Append)
                .help("A database: sqlite:///path/app.db (a snapshot) or postgres://user@host/db (pg_dump; the password from PGPASSWORD or the URL, never argv) (repeatable)"),
            Arg::new(DB_ENV)
                .long(DB_ENV)
                .value_name("VAR")
                .action(ArgAction::Append)
                .help("Read a --db URL from this environment variable (repeatable)"),
        ],
    }
}

/// `--db URL` and `--db-env VAR` for a tool that takes one database ([`Databases::One`]).
#[must_use]
pub fn args() -> Vec<Arg> {
    vec![
        Arg::new(DB)
            .long(DB)
            .value_name("URL")
            .conflicts_with(DB_ENV)
            .help(
                "The database: sqlite:///abs/path.db, sqlite://rel/path.db (the rest is the file's path: `#` and `?` \
                 are part of it, %XX is decoded), postgres://user@host:port/db?sslmode=… \
                 (a password here is visible in `ps`: prefer --db-env)",
            ),
        Arg::new(DB_ENV)
            .long(DB_ENV)
            .value_name("VAR")
            .help("Read the database URL from this environment variable [default: DATABASE_URL]"),
    ]
}

/// Which server speaks behind a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// libpq's `sslmode`, the subset a tool can honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// `sslmode=` as libpq spells it (`allow` is taken as `prefer`).
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::usage(format!(
                    "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }

    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where a PostgreSQL server is and who we are to it.
#[derive(Clone, PartialEq, Eq)]
pub struct PgTarget {
    /// A host name, an IP address, or a Unix socket folder (`?host=/run/postgresql`).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub sslmode: SslMode,
    pub application_name: Option<String>,
    pub connect_timeout: Option<u64>,
    /// `sslrootcert`: the CA certificate (PEM) that `verify-ca` and `verify-full` check against.
    pub ssl_root_cert: Option<PathBuf>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .finish_non_exhaustive()
    }
}

impl PgTarget {
    /// Whether `host` is a Unix socket folder rather than a network address.
    #[must_use]
    pub fn is_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    /// The environment a libpq program (`psql`, `pg_dump`) connects with: the password in
    /// `PGPASSWORD`, never on its command line where `ps` shows it.
    #[must_use]
    pub fn child_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PGHOST", self.host.clone()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", self.user.clone()),
            ("PGDATABASE", self.dbname.clone()),
            ("PGSSLMODE", self.sslmode.word().to_string()),
        ];
        if let Some(password) = &self.password {
            env.push(("PGPASSWORD", password.clone()));
        }
        if let Some(name) = &self.application_name {
            env.push(("PGAPPNAME", name.clone()));
        }
        if let Some(path) = &self.ssl_root_cert {
            env.push(("PGSSLROOTCERT", path.display().to_string()));
        }
        // The URL's own `connect_timeout`: without it a silent server hangs the child until
        // the runner's deadline.
        if let Some(seconds) = self.connect_timeout {
            env.push(("PGCONNECT_TIMEOUT", seconds.to_string()));
        }
        env
    }
}

/// A database URL, parsed. Its `Debug` and `redacted()` never show a password.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// The database file (relative to the working folder for `sqlite://rel/path.db`).
    Sqlite(PathBuf),
    Postgres(PgTarget),
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DbUrl {
    /// `--db URL`, or the URL in `--db-env VAR` (default `DATABASE_URL`); its secrets are
    /// registered with `scrubber` before anything can print them.
    pub fn from_matches(matches: &ArgMatches, scrubber: &Scrubber) -> Result<Self> {
        let text = if let Some(url) = matches.get_one::<String>(DB) {
            url.clone()
        } else {
            let var = matches
                .get_one::<String>(DB_ENV)
                .map_or(DEFAULT_ENV, String::as_str);
            std::env::var(var).map_err(|_| {
                Error::usage(format!(
                    "no database: give --db URL, or set {var} (or name another variable with --db-env)"
                ))
            })?
        };
        DbUrl::parse_registering(&text, scrubber)
    }

    /// Every `--db URL`, then the URL in every `--db-env VAR`, of a tool that takes any
    /// number ([`Databases::Many`]); each one's secrets are registered with `scrubber` before
    /// anything can print them, a URL that does not parse included.
    pub fn all_from_matches(matches: &ArgMatches, scrubber: &Scrubber) -> Result<Vec<Self>> {
        let mut urls: Vec<String> = matches
            .get_many::<String>(DB)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for var in matches.get_many::<String>(DB_ENV).into_iter().flatten() {
            let url = std::env::var(var)
                .map_err(|_| Error::usage(format!("--db-env {var}: the variable is not set")))?;
            scrubber.add_url_secrets(&url);
            urls.push(url);
        }
        urls.iter()
            .map(|url| {
                DbUrl::parse_registering(url, scrubber)
                    .map_err(|e| Error::usage(format!("--db: {}", e.message)))
            })
            .collect()
    }

    /// `parse`, with the URL's password registered with `scrubber` (decoded and as written)
    /// before anything can print it. Only the password is secret: a user name alone is not a
    /// token here.
    pub fn parse_registering(text: &str, scrubber: &Scrubber) -> Result<Self> {
        let url = DbUrl::parse(text).inspect_err(|_| scrubber.add_url_secrets(text))?;
        if let DbUrl::Postgres(PgTarget {
            password: Some(password),
            ..
        }) = &url
        {
            scrubber.add_secret(password);
            if let Some((_, Some(encoded))) = UrlParts::of(text.trim()).userinfo {
                scrubber.add_secret(encoded);
            }
        }
        Ok(url)
    }

    /// Parse one of the accepted forms; errors never repeat the URL (it may hold a password).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        // `sqlite:app.db` (no slashes) is the short form some frameworks write.
        if let Some(rest) = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
        {
            // A path, not a URL to cut: `#` and `?` are file-name characters
            // (`sqlite:///var/lib/shop#1.db` is that file, not `shop`); `%XX` is decoded,
            // so `%25` is a literal `%`.
            let path = rest;
            if path.is_empty() || path == "/" {
                return Err(Error::usage(
                    "a sqlite URL needs a file: sqlite:///abs/path.db or sqlite://rel/path.db",
                ));
            }
            let decoded = percent_decode_str(path).decode_utf8_lossy().into_owned();
            return Ok(DbUrl::Sqlite(PathBuf::from(decoded)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return parse_postgres(text).map(DbUrl::Postgres);
        }
        let scheme = text.split_once("://").map_or("", |(s, _)| s);
        Err(Error::usage(format!(
            "unsupported database URL scheme {scheme:?}: use sqlite:///abs/path.db, sqlite://rel/path.db, postgres:// or postgresql://"
        )))
    }

    #[must_use]
    pub fn engine(&self) -> Engine {
        match self {
            DbUrl::Sqlite(_) => Engine::Sqlite,
            DbUrl::Postgres(_) => Engine::Postgres,
        }
    }

    /// The URL as the record shows it: no password, ever.
    #[must_use]
    pub fn redacted(&self) -> String {
        match self {
            DbUrl::Sqlite(path) if path.is_absolute() => format!("sqlite://{}", path.display()),
            DbUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DbUrl::Postgres(pg) => pg.url(true),
        }
    }
}

impl PgTarget {
    /// The URL as a libpq program takes it, without the password (which travels in
    /// `PGPASSWORD`); with `mark_password`, `password=***` says there is one: the password
    /// is written in and the one redaction policy (`scrub::redacted_url`) masks it.
    #[must_use]
    pub fn url(&self, mark_password: bool) -> String {
        let Some(password) = self.password.as_deref().filter(|_| mark_password) else {
            return self.written(None);
        };
        match url::Url::parse(&self.written(Some(password))) {
            Ok(url) => crate::scrub::redacted_url(&url),
            // Every part is percent-encoded, so it parses; were it not, say only that there is
            // a password.
            Err(_) => self.written(None).replacen('&', "&password=***&", 1),
        }
    }

    /// The URL, with `password` in its query when given.
    fn written(&self, password: Option<&str>) -> String {
        let pg = self;
        // The user goes in the query: a lone `user@` reads as a token to the scrubber.
        let host = if pg.is_socket() {
            String::new()
        } else if pg.host.contains(':') {
            format!("[{}]:{}", pg.host, pg.port)
        } else {
            format!("{}:{}", pg.host, pg.port)
        };
        let socket = if pg.is_socket() {
            format!("&host={}", escape(&pg.host, QUERY_VALUE))
        } else {
            String::new()
        };
        let password = password
            .map(|p| format!("&password={}", escape(p, URL_WORD)))
            .unwrap_or_default();
        let root = pg
            .ssl_root_cert
            .as_ref()
            .map(|p| {
                format!(
                    "&sslrootcert={}",
                    escape(&p.display().to_string(), QUERY_VALUE)
                )
            })
            .unwrap_or_default();
        // Percent-encoded, so that a database `shop#1` or `a/b` parses back as itself, not
        // as `shop` with a fragment.
        format!(
            "postgres://{host}/{}?user={}{password}&sslmode={}{root}{socket}",
            escape(&pg.dbname, URL_WORD),
            escape(&pg.user, URL_WORD),
            pg.sslmode.word()
        )
    }
}

/// What a database or user name keeps unencoded in a URL: RFC 3986's unreserved characters.
const URL_WORD: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// A query value (a socket folder, a certificate path) keeps its slashes readable too.
const QUERY_VALUE: &percent_encoding::AsciiSet = &URL_WORD.remove(b'/');

fn escape(text: &str, set: &'static percent_encoding::AsciiSet) -> String {
    percent_encoding::utf8_percent_encode(text, set).to_string()
}

fn parse_postgres(text: &str) -> Result<PgTarget> {
    // `postgres://user@/db?host=/run/postgresql` names no host in the authority, which the
    // URL parser refuses after a user name: stand `localhost` in (the query's host wins).
    let parts = UrlParts::of(text);
    let text = match parts.userinfo {
        Some((user, password)) if parts.host.is_empty() => {
            let scheme = text.split_once("://").map_or("postgres", |(s, _)| s);
            let password = password.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{scheme}://{user}{password}@localhost{}", parts.rest)
        }
        _ => text.to_string(),
    };
    let url = url::Url::parse(&text).map_err(|e| {
        Error::usage(format!(
            "the PostgreSQL URL is malformed ({e}); expected postgres://user:password@host:port/dbname"
        ))
    })?;
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut target = PgTarget {
        host: url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string()),
        port: url.port().unwrap_or(5432),
        user: Some(decode(url.username()))
            .filter(|u| !u.is_empty())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "postgres".to_string()),
        password: url.password().map(decode),
        dbname: String::new(),
        sslmode: SslMode::Prefer,
        application_name: None,
        connect_timeout: None,
        ssl_root_cert: None,
    };
    target.dbname = Some(decode(url.path().trim_start_matches('/')))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| target.user.clone());
    for (name, value) in url.query_pairs() {
        match &*name {
            "sslmode" => target.sslmode = SslMode::parse(&value)?,
            "host" => target.host = value.into_owned(),
            "port" => {
                target.port = value
                    .parse()
                    .map_err(|_| Error::usage(format!("port={value} is not a port number")))?;
            }
            "user" => target.user = value.into_owned(),
            "password" => target.password = Some(value.into_owned()),
            "dbname" => target.dbname = value.into_owned(),
            "application_name" => target.application_name = Some(value.into_owned()),
            "sslrootcert" => target.ssl_root_cert = Some(PathBuf::from(&*value)),
            "connect_timeout" => {
                target.connect_timeout = Some(value.parse().map_err(|_| {
                    Error::usage(format!(
                        "connect_timeout={value} is not a number of seconds"
                    ))
                })?);
            }
            other => {
                return Err(Error::usage(format!(
                    "the PostgreSQL URL parameter {other:?} is not supported (sslmode, sslrootcert, host, port, user, password, dbname, application_name, connect_timeout are)"
                )));
            }
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(text: &str) -> PgTarget {
        match DbUrl::parse(text).unwrap() {
            DbUrl::Postgres(pg) => pg,
            DbUrl::Sqlite(p) => panic!("sqlite {}", p.display()),
        }
    }

    #[test]
    fn sqlite_urls_are_absolute_or_relative_paths() {
        assert_eq!(
            DbUrl::parse("sqlite:///var/lib/app/app.db").unwrap(),
            DbUrl::Sqlite(PathBuf::from("/var/lib/app/app.db"))
        );
        assert_eq!(
            DbUrl::parse("sqlite://data/app.db").unwrap(),
            DbUrl::Sqlite(PathBuf::from("data/app.db"))
        );
        assert_eq!(
            DbUrl::parse("sqlite://data/my%20app.db")
                .unwrap()
                .redacted(),
            "sqlite://data/my app.db"
        );
        assert_eq!(DbUrl::parse("sqlite://").unwrap_err().exit, 2);
        // `#` and `?` belong to the file's name; `%23` is `#` too.
        assert_eq!(
            DbUrl::parse("sqlite:///var/lib/shop#1.db").unwrap(),
            DbUrl::Sqlite(PathBuf::from("/var/lib/shop#1.db"))
        );
        assert_eq!(
            DbUrl::parse("sqlite://data/what?.db").unwrap(),
            DbUrl::Sqlite(PathBuf::from("data/what?.db"))
        );
        assert_eq!(
            DbUrl::parse("sqlite:app%231.db").unwrap(),
            DbUrl::Sqlite(PathBuf::from("app#1.db"))
        );
        assert!(DbUrl::parse("sqlite:").is_err());
        assert_eq!(DbUrl::parse("mysql://h/db").unwrap_err().exit, 2);
    }

    #[test]
    fn postgres_urls_give_every_part_with_defaults() {
        let t = pg("postgresql://app:s%40cret@db.internal:6432/shop?sslmode=require");
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.dbname.as_str()),
            ("db.internal", 6432, "app", "shop")
        );
        assert_eq!(t.password.as_deref(), Some("s@cret"));
        assert_eq!(t.sslmode, SslMode::Require);
        let t = pg("postgres://app@[::1]/shop");
        assert_eq!((t.host.as_str(), t.port), ("::1", 5432));
        assert_eq!(t.sslmode, SslMode::Prefer);
        let t = pg("postgres://app@/shop?host=/run/postgresql");
        assert!(t.is_socket());
        assert_eq!(pg("postgres://app@h").dbname, "app", "libpq's default");
        assert!(DbUrl::parse("postgres://h/db?sslmode=bogus").is_err());
        assert!(DbUrl::parse("postgres://h/db?sslcert=x").is_err());
        let t = pg("postgres://h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem");
        assert_eq!(t.ssl_root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert!(
            t.child_env()
                .contains(&("PGSSLROOTCERT", "/etc/ca.pem".to_string()))
        );
    }

    #[test]
    fn the_password_never_shows_and_goes_to_children_by_environment() {
        let text = "postgres://app:hunter2secret@127.0.0.1:5432/shop";
        let url = DbUrl::parse(text).unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://127.0.0.1:5432/shop?user=app&password=***&sslmode=prefer"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        let again = DbUrl::parse(&url.redacted()).unwrap();
        assert_eq!(
            again.redacted(),
            url.redacted(),
            "the redacted form parses back"
        );
        let scrubbed =
            Scrubber::default().scrub_str(&DbUrl::parse("postgres://app@h/db").unwrap().redacted());
        assert_eq!(
            scrubbed, "postgres://h:5432/db?user=app&sslmode=prefer",
            "the user survives scrubbing"
        );
        let DbUrl::Postgres(t) = &url else {
            unreachable!()
        };
        assert!(!format!("{t:?}").contains("hunter2"));
        let env = t.child_env();
        assert!(env.contains(&("PGPASSWORD", "hunter2secret".to_string())));
        assert!(env.contains(&("PGPORT", "5432".to_string())));
        let err = DbUrl::parse("postgres://app:hunter2secret@h/db?sslmode=nope").unwrap_err();
        assert!(!err.message.contains("hunter2"), "{}", err.message);
    }

    /// Passwords made of the characters a URL gives meaning to, percent-encoded in the
    /// authority as a URL must carry them, or in the query.
    const HOSTILE_PASSWORDS: &[&str] = &["p@ss:w/rd", "50%off#1?x=y", "a/b?c#d@e:f%g", "::@@//"];

    #[test]
    fn a_hostile_password_never_survives_the_redacted_url_and_its_shape_is_kept() {
        let encode = |p: &str| escape(p, URL_WORD);
        for password in HOSTILE_PASSWORDS {
            for text in [
                format!("postgres://app:{}@127.0.0.1:5432/shop", encode(password)),
                format!("postgres://app:{}@[::1]/shop", encode(password)),
                format!(
                    "postgres://app@/shop?host=/run/postgresql&password={}",
                    encode(password)
                ),
                format!(
                    "postgresql://h/shop?user=app&password={}&sslrootcert=/etc/ca%20.pem",
                    encode(password)
                ),
            ] {
                let url = DbUrl::parse(&text).unwrap();
                let DbUrl::Postgres(t) = &url else {
                    unreachable!()
                };
                assert_eq!(t.password.as_deref(), Some(*password), "{text}");
                let shown = url.redacted();
                for leaked in [password.to_string(), encode(password)] {
                    assert!(!shown.contains(&leaked), "{shown} shows {leaked}");
                }
                assert!(shown.contains("&password=***&"), "{shown}");
                // The rest is what the URL without a password says, with the marker added.
                assert_eq!(
                    shown,
                    t.url(false)
                        .replacen("&sslmode", "&password=***&sslmode", 1)
                );
                assert_eq!(pg(&shown).user, "app", "{shown}");
            }
        }
    }

    #[test]
    fn a_socket_url_registers_its_password_as_written_too() {
        // `user:pw@/db` names no host: the URL crate refuses it, so the password as written
        // (percent-encoded) must come from ugw's own reading of the URL.
        let scrubber = Scrubber::default();
        DbUrl::parse_registering(
            "postgres://app:S0cketPw%21enc@/shop?host=/run/postgresql",
            &scrubber,
        )
        .unwrap();
        assert_eq!(scrubber.scrub_str("S0cketPw%21enc S0cketPw!enc"), "*** ***");
    }

    #[test]
    fn odd_database_and_user_names_survive_the_redacted_url() {
        for name in [
            "shop#1",
            "a?b=c",
            "a/b",
            "50%",
            "my shop",
            "o'q\"d",
            "a+b&c",
            "caf\u{e9}",
        ] {
            let mut t = pg("postgres://u@127.0.0.1:5433/x?connect_timeout=7");
            t.dbname = name.to_string();
            t.user = format!("{name}-user");
            let back = pg(&t.url(false));
            assert_eq!(back.dbname, name, "{}", t.url(false));
            assert_eq!(back.user, t.user, "{}", t.url(false));
            assert_eq!((back.host.as_str(), back.port), ("127.0.0.1", 5433));
        }
        let socket = pg("postgres://u@/db?host=/run/post%20gres");
        assert_eq!(pg(&socket.url(false)).host, "/run/post gres");
        assert!(
            pg("postgres://u@h/db?connect_timeout=7")
                .child_env()
                .contains(&("PGCONNECT_TIMEOUT", "7".to_string()))
        );
    }

    #[test]
    #[expect(unsafe_code, reason = "std::env::set_var, of this test's own variable")]
    fn from_matches_reads_the_flag_or_the_variable_and_registers_the_password() {
        let command = clap::Command::new("t").args(args());
        let scrubber = Scrubber::default();
        let m = command
            .clone()
            .get_matches_from(["t", "--db", "postgres://u:pa%24%24word9@h/db"]);
        let url = DbUrl::from_matches(&m, &scrubber).unwrap();
        assert_eq!(url.engine(), Engine::Postgres);
        assert_eq!(scrubber.scrub_str("x pa$$word9 y"), "x *** y");
        // SAFETY: this test's own variable; no other test reads it.
        unsafe { std::env::set_var("UGW_DB_TEST_URL", "sqlite:///tmp/x.db") };
        let m = command
            .clone()
            .get_matches_from(["t", "--db-env", "UGW_DB_TEST_URL"]);
        assert_eq!(
            DbUrl::from_matches(&m, &scrubber).unwrap(),
            DbUrl::Sqlite(PathBuf::from("/tmp/x.db"))
        );
        let m = command.get_matches_from(["t", "--db-env", "UGW_DB_TEST_UNSET"]);
        let err = DbUrl::from_matches(&m, &scrubber).unwrap_err();
        assert!(err.message.contains("UGW_DB_TEST_UNSET"), "{}", err.message);
    }

    #[test]
    #[expect(unsafe_code, reason = "std::env::set_var, of this test's own variable")]
    fn a_tool_of_many_databases_reads_every_flag_then_every_variable() {
        let command = clap::Command::new("t").args(group(Databases::Many));
        let scrubber = Scrubber::default();
        // SAFETY: this test's own variable; no other test reads it.
        unsafe { std::env::set_var("UGW_DB_TEST_MANY", "postgres://u:s3cr%2Fet7@h/db") };
        let m = command.clone().get_matches_from([
            "t",
            "--db-env",
            "UGW_DB_TEST_MANY",
            "--db",
            "sqlite:///tmp/a.db",
            "--db",
            "sqlite:///tmp/b.db",
        ]);
        let urls = DbUrl::all_from_matches(&m, &scrubber).unwrap();
        let engines: Vec<Engine> = urls.iter().map(DbUrl::engine).collect();
        assert_eq!(engines, [Engine::Sqlite, Engine::Sqlite, Engine::Postgres]);
        assert_eq!(urls[1], DbUrl::Sqlite(PathBuf::from("/tmp/b.db")));
        assert_eq!(scrubber.scrub_str("x s3cr/et7 y"), "x *** y");
        // Neither flag given: no database, and no default variable read.
        let none = DbUrl::all_from_matches(&command.clone().get_matches_from(["t"]), &scrubber);
        assert!(none.unwrap().is_empty());
        let m = command
            .clone()
            .get_matches_from(["t", "--db-env", "UGW_DB_TEST_UNSET_MANY"]);
        let err = DbUrl::all_from_matches(&m, &scrubber).unwrap_err();
        assert!(
            err.message.contains("UGW_DB_TEST_UNSET_MANY"),
            "{}",
            err.message
        );
        let m = command.get_matches_from(["t", "--db", "mysql://u:hunter2pw@h/db"]);
        let err = DbUrl::all_from_matches(&m, &scrubber).unwrap_err();
        assert!(err.message.starts_with("--db: "), "{}", err.message);
        assert!(!err.message.contains("hunter2pw"), "{}", err.message);
    }
}
