//! PostgreSQL: one direct connection for the whole run. The lock is a session advisory lock
//! (so it goes with the connection, a killed client's included), which is why a pooler in
//! front of the server is refused; the session checks its client so a killed run's backend
//! ends. DDL runs with `SET LOCAL lock_timeout` so it never queues in front of every query.

use crate::source::{CHECKSUM_ALGORITHM, Migration};
use crate::sql::statements;
use crate::store::{Interrupt, LEDGER, LedgerRow, LongTransaction, RunError, RunOptions, Store};
use crate::tls::MakeRustls;
use postgres::Client;
use postgres::error::{ErrorPosition, SqlState};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use ugw_shared::cancel::Cancel;
use ugw_shared::db::{Engine, PgTarget, SslMode};
use ugw_shared::poll::Backoff;
use ugw_shared::time::human;
use ugw_shared::{Error, ErrorKind, Result};

/// Why a pooler is refused, and what to do.
const POOLER_ADVICE: &str = "session locks and no-transaction migrations need a direct connection to the server; \
     use its own address, or --allow-pooler for a pooler in session mode";

/// How long the probe of a PgBouncer console may take.
pub const CONSOLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The ledger's schema when --ledger-schema is not given: one of its own, created on first use.
pub const DEFAULT_SCHEMA: &str = "ugw";

/// How often a held advisory lock is tried again.
const LOCK_RETRY: Duration = Duration::from_millis(50);

pub struct PgStore {
    client: Client,
    target: PgTarget,
    lock_key: i64,
    /// The ledger's schema, as named and quoted: never resolved through a migration's
    /// `search_path`.
    schema_name: String,
    schema: String,
    /// `"schema"."ugw_migrations"`.
    ledger: String,
    /// The ledger row's INSERT, prepared on first use.
    insert: Option<postgres::Statement>,
    /// What every file starts from: the session settings of ours, set again after
    /// `RESET ALL` so that nothing a migration SETs reaches the next one.
    session_setup: String,
    /// For the cancel request's own connection.
    tls: MakeRustls,
}

/// A ledger row into `ledger` (schema-qualified); a row left by a failed no-transaction run
/// is replaced.
fn insert_row_sql(ledger: &str) -> String {
    format!(
        "INSERT INTO {ledger} \
         (version, name, phase, checksum, checksum_algorithm, duration_ms, applied_by, success) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, phase = EXCLUDED.phase, \
         checksum = EXCLUDED.checksum, checksum_algorithm = EXCLUDED.checksum_algorithm, applied_at = now(), \
         duration_ms = EXCLUDED.duration_ms, applied_by = EXCLUDED.applied_by, success = EXCLUDED.success"
    )
}

/// `E'text'`, as a string literal whatever `standard_conforming_strings` a migration set.
fn literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// `"name"`, as PostgreSQL quotes an identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What `open` checks before a run that writes.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// Refuse a standby, a pooler; watch the client connection.
    pub writing: bool,
    pub allow_pooler: bool,
}

impl PgStore {
    pub fn open(
        target: &PgTarget,
        host: &str,
        checks: Checks,
        statement_timeout: Option<Duration>,
        ledger_schema: Option<&str>,
    ) -> Result<Self> {
        let mut config = postgres::Config::new();
        config
            .host(&target.host)
            .port(target.port)
            .user(&target.user)
            .dbname(&target.dbname)
            .connect_timeout(Duration::from_secs(target.connect_timeout.unwrap_or(10)))
            .keepalives(true)
            .application_name(&application_name(host));
        if let Some(password) = &target.password {
            config.password(password);
        }
        config.ssl_mode(match target.sslmode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                postgres::config::SslMode::Require
            }
        });
        let tls = MakeRustls::new(target.sslmode, target.ssl_root_cert.as_deref())?;
        let client = config.connect(tls.clone()).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!(
                    "cannot connect to {}:{}: {}",
                    target.host,
                    target.port,
                    describe(&e, None)
                ),
            )
        })?;
        let mut store = PgStore {
            client,
            target: target.clone(),
            lock_key: lock_key(&target.dbname),
            schema_name: String::new(),
            schema: String::new(),
            ledger: String::new(),
            insert: None,
            session_setup: String::new(),
            tls,
        };
        let schema = match ledger_schema {
            Some(schema) => schema.to_string(),
            None => store.default_schema()?,
        };
        store.schema = quote_ident(&schema);
        store.schema_name = schema;
        store.ledger = format!("{}.{}", store.schema, quote_ident(LEDGER));
        if checks.writing {
            store.check_server(checks.allow_pooler, &config)?;
        }
        if let Some(timeout) = statement_timeout {
            let _ = write!(
                store.session_setup,
                "SET statement_timeout = {};",
                timeout.as_millis()
            );
        }
        if !store.session_setup.is_empty() {
            let setup = store.session_setup.clone();
            store.simple(&setup)?;
        }
        Ok(store)
    }

    /// Without --ledger-schema: the schema [`DEFAULT_SCHEMA`], which no session setting
    /// moves (the session's current schema did: a migration that creates the schema named
    /// after the user, or sets the database's `search_path`, hid the ledger from the next run,
    /// which then ran every migration again). A ledger an older ugw-migrate made in the
    /// schema its session started in is found there, before any migration runs, and kept.
    fn default_schema(&mut self) -> Result<String> {
        let row = self
            .client
            .query_one(
                "SELECT pg_catalog.to_regclass($1) IS NOT NULL, \
                 (SELECT n.nspname::text FROM pg_catalog.pg_class c \
                  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                  WHERE c.oid = pg_catalog.to_regclass($2))",
                &[
                    &format!("{}.{}", quote_ident(DEFAULT_SCHEMA), quote_ident(LEDGER)),
                    &quote_ident(LEDGER),
                ],
            )
            .map_err(|e| self.fail(&e))?;
        let (ours, older): (bool, Option<String>) = (row.get(0), row.get(1));
        Ok(match older {
            Some(schema) if !ours => schema,
            _ => DEFAULT_SCHEMA.to_string(),
        })
    }

    /// A standby cannot be migrated; a pooler would hand our session lock (and a
    /// no-transaction migration's statements) to whichever server connection is free.
    fn check_server(&mut self, allow_pooler: bool, config: &postgres::Config) -> Result<()> {
        let row = self
            .client
            .query_one(
                "SELECT pg_is_in_recovery(), current_setting('server_version_num')::int",
                &[],
            )
            .map_err(|e| self.fail(&e))?;
        let (standby, version): (bool, i32) = (row.get(0), row.get(1));
        if standby {
            return Err(Error::usage(format!(
                "{} is a standby (pg_is_in_recovery); migrate the primary",
                self.where_()
            )));
        }
        // A pooler is recognised by asking it, over TCP or a Unix socket alike, never
        // guessed from ports (a plain port-forward is a direct connection).
        if !allow_pooler && let Some(version) = self.pgbouncer_console(config) {
            return Err(Error::new(
                ErrorKind::Pooler,
                format!(
                    "{} is a connection pooler ({version}): {POOLER_ADVICE}",
                    self.where_(),
                ),
            ));
        }
        if version >= 140_000 {
            // A killed client's backend ends within a second, even mid-statement, and frees the lock.
            self.session_setup += "SET client_connection_check_interval = '1s';";
        }
        Ok(())
    }

    /// PgBouncer, when the same address is one: its admin console (the `pgbouncer` database)
    /// answers `SHOW VERSION` with "PgBouncer …", or refuses a user it does not admit with
    /// a protocol-violation error (08P01), which PostgreSQL never sends at login. A direct
    /// server says the database does not exist, or has one of that name that knows no
    /// `SHOW VERSION`.
    fn pgbouncer_console(&self, config: &postgres::Config) -> Option<String> {
        let mut console = config.clone();
        console.dbname("pgbouncer").connect_timeout(CONSOLE_TIMEOUT);
        let mut client = match console.connect(self.tls.clone()) {
            Ok(client) => client,
            Err(e) if e.code() == Some(&SqlState::PROTOCOL_VIOLATION) => {
                let said = e.as_db_error().map_or("", |db| db.message()).to_string();
                return Some(format!(
                    "its `pgbouncer` console refused us with {said:?}, as PgBouncer does"
                ));
            }
            Err(_) => return None,
        };
        let answer = client.simple_query("SHOW VERSION").ok()?;
        answer.iter().find_map(|message| match message {
            postgres::SimpleQueryMessage::Row(row) => row
                .get(0)
                .filter(|version| version.starts_with("PgBouncer"))
                .map(|version| format!("{version} answers on its `pgbouncer` console")),
            _ => None,
        })
    }

    /// After a no-transaction file: what it SET goes, ours come back (a transactional file's
    /// commit does the same in its own round trip).
    fn reset_session(&mut self) -> Result<()> {
        let sql = format!("RESET ALL; {}", self.session_setup);
        self.simple(&sql)
    }

    fn where_(&self) -> String {
        format!("{}:{}", self.target.host, self.target.port)
    }

    fn simple(&mut self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).map_err(|e| self.fail(&e))
    }

    fn fail(&self, e: &postgres::Error) -> Error {
        Error::new(
            ErrorKind::Io,
            format!("{}: {}", self.where_(), describe(e, None)),
        )
    }

    /// Who holds our advisory lock, from `pg_locks` and `pg_stat_activity`.
    fn holder(&mut self) -> String {
        let key = self.lock_key as u64;
        let query = format!(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'), \
                    to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {} AND l.objid = {} AND l.objsubid = 1",
            key >> 32,
            key & 0xffff_ffff
        );
        match self.client.query(&query, &[]) {
            Ok(rows) if !rows.is_empty() => {
                let row = &rows[0];
                let (pid, app, from, since): (i32, String, String, String) =
                    (row.get(0), row.get(1), row.get(2), row.get(3));
                format!("{app} (backend pid {pid}, from {from}, since {since})")
            }
            _ => "another session".to_string(),
        }
    }

    fn insert_row(
        client: &mut impl postgres::GenericClient,
        ledger: &str,
        m: &Migration,
        ms: i64,
        by: &str,
        success: bool,
    ) -> std::result::Result<u64, postgres::Error> {
        client.execute(
            &insert_row_sql(ledger),
            &[
                &m.version,
                &m.name,
                &m.phase.word(),
                &m.checksum,
                &CHECKSUM_ALGORITHM,
                &ms,
                &by,
                &success,
            ],
        )
    }

    /// The file and its ledger row in one transaction, in one round trip: `BEGIN; SET LOCAL
    /// …; FILE; the row; COMMIT; RESET ALL; …; SELECT marker`. The marker's row is the proof
    /// that the server read the file ending where the splitter did (the row and the COMMIT
    /// were not swallowed by a string the file left open); without it, or for a file that
    /// does not end closed, the transaction is rolled back or the file runs step by step.
    fn run_in_transaction(
        &mut self,
        m: &Migration,
        options: &RunOptions,
        started: Instant,
    ) -> Result<(), RunError> {
        if !crate::sql::ends_closed(&m.sql, Engine::Postgres) {
            return self.run_in_transaction_stepwise(m, options, started);
        }
        let file = m.file_name();
        let marker = format!("ugw-migrate committed {}", m.version);
        // No newline in the prefix: the server's error position gives the file's own line.
        let query = format!(
            "BEGIN; SET LOCAL lock_timeout = {}; {}\n;\
             INSERT INTO {} (version, name, phase, checksum, checksum_algorithm, duration_ms, applied_by, success) \
             VALUES ({}, {}, {}, {}, {}, \
             (extract(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.now()) * 1000)::pg_catalog.int8, {}, true) \
             ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, phase = EXCLUDED.phase, \
             checksum = EXCLUDED.checksum, checksum_algorithm = EXCLUDED.checksum_algorithm, applied_at = pg_catalog.now(), \
             duration_ms = EXCLUDED.duration_ms, applied_by = EXCLUDED.applied_by, success = EXCLUDED.success; \
             COMMIT; RESET ALL; {} SELECT {}",
            options.ddl_lock_timeout.as_millis(),
            m.sql,
            self.ledger,
            m.version,
            literal(&m.name),
            literal(m.phase.word()),
            literal(&m.checksum),
            literal(CHECKSUM_ALGORITHM),
            literal(&options.applied_by),
            self.session_setup,
            literal(&marker),
        );
        ugw_shared::failpoint::hit("migrate.before-ledger-commit");
        let answer = self
            .client
            .simple_query(&query)
            .map_err(|e| run_error(&file, &e, Some((&query, 1))));
        let committed = answer.as_ref().is_ok_and(|messages| {
            messages.iter().rev().find_map(|message| match message {
                postgres::SimpleQueryMessage::Row(row) => Some(row.get(0) == Some(marker.as_str())),
                _ => None,
            }) == Some(true)
        });
        if committed {
            return Ok(());
        }
        // Whatever failed, the transaction (if it began) ends here with nothing kept.
        let _ = self.client.batch_execute("ROLLBACK");
        let _ = self.reset_session();
        answer?;
        Err(RunError::from(Error::new(
            ErrorKind::MigrationFailed,
            format!(
                "{file}: the server did not read the file ending where ugw-migrate did (its last string, quoted name or comment is open to the server); nothing was kept"
            ),
        )))
    }

    /// The same in three round trips, for a file that does not end closed (the server then
    /// says what is wrong with it): `BEGIN; SET LOCAL …; FILE`, the row, `COMMIT`.
    fn run_in_transaction_stepwise(
        &mut self,
        m: &Migration,
        options: &RunOptions,
        started: Instant,
    ) -> Result<(), RunError> {
        let file = m.file_name();
        // No newline in the prefix: the server's error position gives the file's own line.
        let query = format!(
            "BEGIN; SET LOCAL lock_timeout = {}; {}",
            options.ddl_lock_timeout.as_millis(),
            m.sql
        );
        let outcome = (|| {
            self.client
                .batch_execute(&query)
                .map_err(|e| run_error(&file, &e, Some((&query, 1))))?;
            if self.insert.is_none() {
                let statement = self
                    .client
                    .prepare(&insert_row_sql(&self.ledger))
                    .map_err(|e| run_error(&file, &e, None))?;
                self.insert = Some(statement);
            }
            let insert = self.insert.clone().expect("prepared just above");
            let ms = elapsed_ms(started);
            self.client
                .execute(
                    &insert,
                    &[
                        &m.version,
                        &m.name,
                        &m.phase.word(),
                        &m.checksum,
                        &CHECKSUM_ALGORITHM,
                        &ms,
                        &options.applied_by,
                        &true,
                    ],
                )
                .map_err(|e| run_error(&file, &e, None))?;
            // The commit and the session put back as every file finds it, in one round trip.
            ugw_shared::failpoint::hit("migrate.before-ledger-commit");
            self.client
                .batch_execute(&format!("COMMIT; RESET ALL; {}", self.session_setup))
                .map_err(|e| run_error(&file, &e, None))
        })();
        if outcome.is_err() {
            // Whatever failed, the transaction (if it began) ends here with nothing kept.
            let _ = self.client.batch_execute("ROLLBACK");
        }
        outcome
    }

    fn run_without_transaction(
        &mut self,
        m: &Migration,
        options: &RunOptions,
        started: Instant,
    ) -> Result<(), RunError> {
        let file = m.file_name();
        // The `success = false` row commits without waiting for its WAL flush (one fsync
        // less per file): the WAL is written in order, so the first of the file's statements
        // to commit flushes the row with it, and a crash before that loses both, leaving
        // nothing half-done to mark.
        (|| {
            let mut row = self.client.transaction()?;
            row.batch_execute("SET LOCAL synchronous_commit = off")?;
            Self::insert_row(&mut row, &self.ledger, m, 0, &options.applied_by, false)?;
            row.commit()
        })()
        .map_err(|e| run_error(&file, &e, None))?;
        // Each statement waits --ddl-lock-timeout for its table lock, as in a transactional
        // file, so the application's queries never queue behind it for long; except the
        // CONCURRENTLY ones, whose long waits (for older transactions) block nobody and
        // whose timeout would leave an INVALID index. A file that sets lock_timeout itself
        // has the last word.
        let ours = format!(
            "SET lock_timeout = {}",
            options.ddl_lock_timeout.as_millis()
        );
        let mut file_sets_it = false;
        let mut current: Option<bool> = None;
        // One statement per simple query: several in one would run as one implicit transaction.
        for statement in statements(&m.sql, Engine::Postgres) {
            let code: Vec<&crate::sql::Token> = statement.code().collect();
            file_sets_it |= code.first().is_some_and(|t| t.is("SET") || t.is("RESET"))
                && code
                    .iter()
                    .take(3)
                    .any(|t| t.is("lock_timeout") || t.is("ALL"));
            if !file_sets_it {
                let bounded = !code.iter().any(|t| t.is("CONCURRENTLY"));
                if current != Some(bounded) {
                    let set = if bounded {
                        ours.as_str()
                    } else {
                        "SET lock_timeout = 0"
                    };
                    self.client
                        .batch_execute(set)
                        .map_err(|e| run_error(&file, &e, None))?;
                    current = Some(bounded);
                }
            }
            self.client
                .batch_execute(&statement.text)
                .map_err(|e| run_error(&file, &e, Some((&statement.text, statement.text_line))))?;
        }
        ugw_shared::failpoint::hit("migrate.before-ledger-commit");
        self.client
            .execute(
                &format!(
                    "UPDATE {} SET success = true, duration_ms = $1, applied_at = now() WHERE version = $2",
                    self.ledger
                ),
                &[&elapsed_ms(started), &m.version],
            )
            .map_err(|e| run_error(&file, &e, None))?;
        Ok(())
    }
}

impl Store for PgStore {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn lock(&mut self, timeout: Duration, cancel: &Cancel, _host: &str) -> Result<()> {
        // Tried every LOCK_RETRY, and once more when `timeout` is up.
        let mut retries = Backoff::steady(LOCK_RETRY).until(Instant::now() + timeout);
        let mut last_try = false;
        loop {
            let row = self
                .client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&self.lock_key])
                .map_err(|e| self.fail(&e))?;
            if row.get::<_, bool>(0) {
                return Ok(());
            }
            if last_try {
                let holder = self.holder();
                return Err(Error::new(
                    ErrorKind::Busy,
                    format!(
                        "the migration lock of {} is held by {holder}; gave up after --lock-timeout {}",
                        self.target.dbname,
                        human(timeout)
                    ),
                ));
            }
            last_try = !retries.sleep(cancel)?;
        }
    }

    fn is_fresh(&mut self) -> Result<bool> {
        let row = self
            .client
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%')",
                &[],
            )
            .map_err(|e| self.fail(&e))?;
        Ok(row.get(0))
    }

    fn ensure_ledger(&mut self) -> Result<()> {
        // Only a missing schema is created: CREATE SCHEMA IF NOT EXISTS asks for the
        // database's CREATE privilege even when the schema is there.
        let schema_exists: bool = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[&self.schema_name],
            )
            .map_err(|e| self.fail(&e))?
            .get(0);
        if !schema_exists {
            self.client
                .batch_execute(&format!("CREATE SCHEMA {}", self.schema))
                .map_err(|e| {
                    let mut error = self.fail(&e);
                    if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                        error.message = format!(
                            "cannot create the ledger's schema {} ({}): grant this role CREATE on the database, \
                             or name a schema it can create tables in with --ledger-schema",
                            self.schema, error.message
                        );
                    }
                    error
                })?;
        }
        self.simple(&format!(
            "CREATE TABLE IF NOT EXISTS {} (
                version bigint PRIMARY KEY,
                name text NOT NULL,
                phase text NOT NULL CHECK (phase IN ('pre', 'post')),
                checksum text NOT NULL,
                checksum_algorithm text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                duration_ms bigint NOT NULL,
                applied_by text NOT NULL,
                success boolean NOT NULL
            )",
            self.ledger
        ))
    }

    fn applied(&mut self) -> Result<Vec<LedgerRow>> {
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&self.ledger])
            .map_err(|e| self.fail(&e))?
            .get(0);
        if !exists {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT version, name, phase, checksum, checksum_algorithm, \
                     to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
                     duration_ms, applied_by, success FROM {} ORDER BY version",
                    self.ledger
                ),
                &[],
            )
            .map_err(|e| self.fail(&e))?;
        Ok(rows
            .iter()
            .map(|r| LedgerRow {
                version: r.get(0),
                name: r.get(1),
                phase: r.get(2),
                checksum: r.get(3),
                checksum_algorithm: r.get(4),
                applied_at: r.get(5),
                duration_ms: r.get(6),
                applied_by: r.get(7),
                success: r.get(8),
            })
            .collect())
    }

    fn run(&mut self, migration: &Migration, options: &RunOptions) -> Result<Duration, RunError> {
        let started = Instant::now();
        if migration.no_transaction {
            let outcome = self.run_without_transaction(migration, options, started);
            // What the file SET (and our lock_timeout) ends with it, failed or not.
            let reset = self.reset_session();
            outcome?;
            reset?;
        } else {
            self.run_in_transaction(migration, options, started)?;
        }
        Ok(started.elapsed())
    }

    fn mark_applied(&mut self, migration: &Migration, applied_by: &str) -> Result<()> {
        Self::insert_row(
            &mut self.client,
            &self.ledger,
            migration,
            0,
            applied_by,
            true,
        )
        .map_err(|e| self.fail(&e))?;
        Ok(())
    }

    fn forget(&mut self, version: i64) -> Result<()> {
        self.client
            .execute(
                &format!("DELETE FROM {} WHERE version = $1", self.ledger),
                &[&version],
            )
            .map_err(|e| self.fail(&e))?;
        Ok(())
    }

    fn invalid_indexes(&mut self) -> Result<Vec<String>> {
        let rows = self
            .client
            .query(
                "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE NOT i.indisvalid ORDER BY 1",
                &[],
            )
            .map_err(|e| self.fail(&e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn drop_index(&mut self, name: &str) -> Result<()> {
        // `name` comes from invalid_indexes(), quoted there by format('%I').
        self.simple(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
    }

    fn long_transactions(&mut self, older_than: Duration) -> Result<Vec<LongTransaction>> {
        let rows = self
            .client
            .query(
                "SELECT pid, (extract(epoch FROM now() - xact_start) * 1000)::bigint, coalesce(application_name, ''), \
                        coalesce(state, ''), coalesce(usename::text, '') \
                 FROM pg_stat_activity \
                 WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND datname = current_database() \
                   AND now() - xact_start > make_interval(secs => $1) \
                 ORDER BY xact_start",
                &[&older_than.as_secs_f64()],
            )
            .map_err(|e| self.fail(&e))?;
        Ok(rows
            .iter()
            .map(|r| LongTransaction {
                pid: r.get(0),
                age_ms: r.get::<_, i64>(1).max(0) as u64,
                application_name: r.get(2),
                state: r.get(3),
                user: r.get(4),
            })
            .collect())
    }

    fn interrupt(&self) -> Interrupt {
        let token = self.client.cancel_token();
        let tls = self.tls.clone();
        Box::new(move || {
            let _ = token.cancel_query(tls.clone());
        })
    }
}

/// `ugw-migrate 1234@host`: what the holder of the lock looks like to the others (the
/// server keeps 63 bytes of it).
fn application_name(host: &str) -> String {
    let mut name = format!("ugw-migrate {}@{host}", std::process::id());
    while name.len() > 63 {
        name.pop();
    }
    name
}

/// The advisory lock's key: the database and the ledger's name, hashed.
fn lock_key(dbname: &str) -> i64 {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("ugw-migrate/{dbname}/{LEDGER}").as_bytes(),
    );
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(bytes)
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// The server's message, detail and hint, with the line of `sql` it points at.
fn describe(e: &postgres::Error, sql: Option<(&str, usize)>) -> String {
    let Some(db) = e.as_db_error() else {
        // The cause chain: "error performing TLS handshake: invalid peer certificate: …".
        let mut text = e.to_string();
        let mut cause = std::error::Error::source(e);
        while let Some(inner) = cause {
            let more = inner.to_string();
            if !text.contains(&more) {
                text = format!("{text}: {more}");
            }
            cause = inner.source();
        }
        return text;
    };
    let line = match (db.position(), sql) {
        (Some(ErrorPosition::Original(position)), Some((sql, first_line))) => {
            let before: String = sql.chars().take(*position as usize).collect();
            format!("line {}: ", first_line + before.matches('\n').count())
        }
        _ => String::new(),
    };
    let detail = db.detail().map(|d| format!(" ({d})")).unwrap_or_default();
    let hint = db.hint().map(|h| format!(" hint: {h}")).unwrap_or_default();
    format!("{line}{}: {}{detail}{hint}", db.severity(), db.message())
}

fn run_error(file: &str, e: &postgres::Error, sql: Option<(&str, usize)>) -> RunError {
    RunError {
        error: Error::new(
            ErrorKind::MigrationFailed,
            format!("{file}: {}", describe(e, sql)),
        ),
        lock_timeout: e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_is_per_database_and_stable() {
        assert_eq!(lock_key("shop"), lock_key("shop"));
        assert_ne!(lock_key("shop"), lock_key("blog"));
    }

    #[test]
    fn the_application_name_fits_the_server_and_names_the_pid() {
        let name = application_name(&"h".repeat(100));
        assert!(name.len() <= 63);
        assert!(name.starts_with(&format!("ugw-migrate {}@", std::process::id())));
    }
}
