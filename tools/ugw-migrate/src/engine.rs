//! The subcommands, over any `Store`: what is pending, what `up` refuses and why, running
//! each migration with its heartbeat and retries, and what the record says.

use crate::lint::{Finding, lint as lint_file, refusals as refused_in};
use crate::pg::{Checks, PgStore};
use crate::source::{Migration, Phase, load};
use crate::sqlite::{BusyWait, IfMissing, SqliteStore};
use crate::store::{LedgerRow, RunOptions, Store};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use ugw_shared::db::{DbUrl, Engine, PgTarget};
use ugw_shared::poll::Backoff;
use ugw_shared::results::{
    AppliedMigration, FetchPlanned, Fetched, FetchedImage, Migrated, PendingMigration,
};
use ugw_shared::time::{human, millis};
use ugw_shared::{Ctx, Error, ErrorKind, Result, StepResult};

/// Transactions older than this are reported before DDL starts.
const LONG_TRANSACTION: Duration = Duration::from_secs(5);
/// The first wait before retrying a migration that hit --ddl-lock-timeout; doubled each time
/// (jittered, up to `poll::MAX_BACKOFF`).
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How often a statement that outlived the deadline (or a signal) is stopped again.
const INTERRUPT_AGAIN: Duration = Duration::from_millis(200);

/// The flags every subcommand shares, parsed once (by `lib.rs`).
pub struct Settings {
    pub db: std::result::Result<DbUrl, Error>,
    pub dir: std::result::Result<PathBuf, Error>,
    pub allow_pooler: bool,
    pub lock_timeout: Duration,
    pub ddl_lock_timeout: Duration,
    pub ddl_retries: u32,
    pub max_xact_age: Option<Duration>,
    pub statement_timeout: Option<Duration>,
    pub heartbeat: Duration,
    pub ledger_schema: Option<String>,
    pub ledger_table: Option<String>,
    /// `--create` of `up` and `baseline`; `None` where the subcommand has no such flag.
    pub create: Option<bool>,
}

/// Which pending migrations `up` (and `plan`) take: a phase, and where to stop.
#[derive(Debug, Clone, Copy)]
pub struct Selection {
    pub phase: Phases,
    pub target: Option<i64>,
}

/// `--phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phases {
    Pre,
    Post,
    All,
}

impl Phases {
    pub const WORDS: [&'static str; 3] = ["pre", "post", "all"];

    /// The flag's value; clap allows only [`Phases::WORDS`].
    #[must_use]
    pub fn from_word(word: &str) -> Self {
        match word {
            "post" => Phases::Post,
            "all" => Phases::All,
            _ => Phases::Pre,
        }
    }

    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Phases::Pre => "pre",
            Phases::Post => "post",
            Phases::All => "all",
        }
    }
}

/// The refusals of `up` an operator may lift; `plan` lifts none.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowances {
    pub changed: bool,
    pub out_of_order: bool,
    pub unsafe_ddl: bool,
}

/// `resolve`: a failed migration to settle, and whether to drop the INVALID indexes.
#[derive(Debug, Clone, Copy)]
pub struct Resolve {
    pub settle: Option<(i64, Resolution)>,
    pub drop_invalid_indexes: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum Resolution {
    /// `--applied`: the database was fixed by hand.
    Applied,
    /// `--forget` (`--force`: even a migration that succeeded).
    Forget { force: bool },
}

/// The migrations folder: `--dir`, or `migrations/` of this run's ugw-fetch artifact.
pub fn migrations_dir(
    ctx: &Ctx,
    dir: Option<PathBuf>,
) -> Result<std::result::Result<PathBuf, Error>> {
    if let Some(dir) = dir {
        return Ok(Ok(dir));
    }
    // An image has no folder here: its migrations are copied out with --from-image.
    if let Ok(Some(image)) = ctx.this_run().last_result::<FetchedImage>() {
        return Ok(Err(Error::usage(format!(
            "this run's ugw-fetch step fetched the image {}: take its migrations with \
             --from-image (--image-path, default /migrations), or give --dir",
            image.reference
        ))));
    }
    let fetched = ctx.this_run().last_result::<Fetched>()?.map(|f| f.path);
    let fetched = match fetched {
        Some(path) => Some(PathBuf::from(path).join("migrations")),
        None => planned_dir(ctx)?,
    };
    Ok(fetched.ok_or_else(|| {
        Error::usage(
            "no --dir, and no ugw-fetch step in the record whose artifact holds migrations/",
        )
    }))
}

impl Settings {
    /// --lock-timeout, cut to what is left of --timeout.
    fn lock_wait(&self, ctx: &Ctx) -> Duration {
        ctx.deadline().map_or(self.lock_timeout, |d| {
            self.lock_timeout
                .min(d.saturating_duration_since(Instant::now()))
        })
    }

    fn db(&self) -> Result<&DbUrl> {
        self.db.as_ref().map_err(Clone::clone)
    }

    /// The migrations; what was skipped, and why, is said on stderr.
    fn files(&self, ctx: &Ctx) -> Result<Vec<Migration>> {
        let (files, skipped) = load(self.dir.as_ref().map_err(Clone::clone)?)?;
        for note in &skipped {
            ctx.reporter.warn(note);
        }
        Ok(files)
    }

    fn dir_text(&self) -> String {
        self.dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    }

    /// Connect; `writing` runs refuse a pooler or a standby, and a missing SQLite file
    /// unless `--create` was given.
    fn open(&self, ctx: &Ctx, writing: bool) -> Result<Box<dyn Store>> {
        let missing = match (writing, self.create) {
            (false, _) => IfMissing::Absent,
            (true, Some(true)) => IfMissing::Create,
            (true, Some(false)) => IfMissing::Refuse {
                advice: "give --create to make a new one there (a first install)",
            },
            (true, None) => IfMissing::Refuse {
                advice: "there is nothing to resolve",
            },
        };
        Ok(match self.db()? {
            // The busy timeout is the lock wait: at most what is left of --timeout.
            DbUrl::Sqlite(path) => Box::new(SqliteStore::open(
                path,
                missing,
                BusyWait {
                    limit: self.lock_timeout,
                    deadline: ctx.deadline(),
                    cancel: ctx.cancel.clone(),
                },
                self.ledger_table.as_deref(),
            )?),
            DbUrl::Postgres(target) => Box::new(self.connect(ctx, target, writing)?),
        })
    }

    /// Connect on a thread of its own, so that a server that takes the connection and never
    /// answers costs at most --timeout (or twice the URL's `connect_timeout` and the pooler
    /// probe without one), and a signal ends the wait at once.
    fn connect(&self, ctx: &Ctx, target: &PgTarget, writing: bool) -> Result<PgStore> {
        let limit = ctx.deadline().unwrap_or_else(|| {
            Instant::now()
                + 2 * Duration::from_secs(target.connect_timeout.unwrap_or(10))
                + crate::pg::CONSOLE_TIMEOUT
        });
        let (tx, rx) = mpsc::channel();
        let (target_owned, host) = (target.clone(), ctx.host.clone());
        let checks = Checks {
            writing,
            allow_pooler: self.allow_pooler,
        };
        let (statement_timeout, schema) = (self.statement_timeout, self.ledger_schema.clone());
        std::thread::spawn(move || {
            let _ = tx.send(PgStore::open(
                &target_owned,
                &host,
                checks,
                statement_timeout,
                schema.as_deref(),
            ));
        });
        match ctx.cancel.recv_until(&rx, limit)? {
            Some(store) => store,
            // The thread is left to the process's exit: nothing of it is kept.
            None => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{}:{} took the connection but did not complete the PostgreSQL handshake before {}",
                    target.host,
                    target.port,
                    if ctx.deadline().is_some() {
                        "--timeout"
                    } else {
                        "its connect_timeout"
                    }
                ),
            )),
        }
    }
}

/// The ledger beside the files.
struct Survey {
    files: Vec<Migration>,
    applied: Vec<LedgerRow>,
}

impl Survey {
    fn row(&self, version: i64) -> Option<&LedgerRow> {
        self.applied.iter().find(|a| a.version == version)
    }

    fn pending(&self) -> Vec<&Migration> {
        self.files
            .iter()
            .filter(|m| self.row(m.version).is_none())
            .collect()
    }

    fn failed(&self) -> Vec<&LedgerRow> {
        self.applied.iter().filter(|a| !a.success).collect()
    }

    /// Applied migrations whose file now sums differently.
    fn changed(&self) -> Vec<&Migration> {
        self.files
            .iter()
            .filter(|m| {
                self.row(m.version)
                    .is_some_and(|a| a.success && a.checksum != m.checksum)
            })
            .collect()
    }

    /// Ledger rows whose file is gone.
    fn missing(&self) -> Vec<&LedgerRow> {
        self.applied
            .iter()
            .filter(|a| !self.files.iter().any(|m| m.version == a.version))
            .collect()
    }

    fn highest_applied(&self, phase: Phase) -> Option<i64> {
        self.applied
            .iter()
            .filter(|a| a.phase == phase.word())
            .map(|a| a.version)
            .max()
    }

    /// What `up --phase … --target …` runs, in order; `post` refuses while a pre is pending.
    fn selection(&self, selection: Selection) -> Result<Vec<&Migration>> {
        let Selection { phase, target } = selection;
        let pending: Vec<&Migration> = self
            .pending()
            .into_iter()
            .filter(|m| target.is_none_or(|t| m.version <= t))
            .collect();
        let pre_pending: Vec<String> = pending
            .iter()
            .filter(|m| m.phase == Phase::Pre)
            .map(|m| m.file_name())
            .collect();
        Ok(match phase {
            Phases::Post if !pre_pending.is_empty() => {
                return Err(Error::new(
                    ErrorKind::PrePending,
                    format!(
                        "post-deploy migrations wait for the pre-deploy ones, and these are pending: {} (run `up` first)",
                        pre_pending.join(", ")
                    ),
                ));
            }
            Phases::Post => pending
                .into_iter()
                .filter(|m| m.phase == Phase::Post)
                .collect(),
            Phases::All => pending,
            Phases::Pre => pending
                .into_iter()
                .filter(|m| m.phase == Phase::Pre)
                .collect(),
        })
    }

    /// The refusals of `up` (and `plan`), in the order an operator fixes them.
    /// On a `fresh` database the linter's findings are returned as warnings instead.
    fn refusals(
        &self,
        selected: &[&Migration],
        allow: Allowances,
        engine: Engine,
        fresh: bool,
    ) -> Result<Vec<String>> {
        if let Some(failed) = self.failed().first() {
            return Err(Error::new(
                ErrorKind::Dirty,
                format!(
                    "migration {}_{} failed outside a transaction and may be half-applied: fix the database, then run \
                     `ugw-migrate resolve {} --applied` (it is complete now) or `--forget` (run it again); \
                     `ugw-migrate resolve` lists INVALID indexes it may have left",
                    failed.version, failed.name, failed.version
                ),
            ));
        }
        let changed = self.changed();
        if !changed.is_empty() && !allow.changed {
            return Err(Error::new(
                ErrorKind::ChecksumMismatch,
                format!(
                    "applied migrations changed since they ran: {} (restore them, or --allow-changed)",
                    names(&changed)
                ),
            ));
        }
        let early: Vec<&Migration> = selected
            .iter()
            .copied()
            .filter(|m| self.highest_applied(m.phase).is_some_and(|h| m.version < h))
            .collect();
        if !early.is_empty() && !allow.out_of_order {
            return Err(Error::new(
                ErrorKind::OutOfOrder,
                format!(
                    "pending migrations are older than the newest applied one of their phase: {} (renumber them, or --allow-out-of-order)",
                    names(&early)
                ),
            ));
        }
        let broken: Vec<Finding> = selected
            .iter()
            .flat_map(|m| refused_in(m, engine))
            .collect();
        if !broken.is_empty() {
            let lines: Vec<String> = broken.iter().map(Finding::line_text).collect();
            return Err(Error::new(
                ErrorKind::UnsafeMigration,
                format!(
                    "refusing to run anything: {} (--allow-unsafe does not change this)",
                    lines.join("; ")
                ),
            ));
        }
        let findings: Vec<Finding> = selected.iter().flat_map(|m| lint_file(m, engine)).collect();
        if !findings.is_empty() && fresh {
            // No release runs against a database that has nothing yet: nothing to break.
            let lines: Vec<String> = findings.iter().map(Finding::line_text).collect();
            return Ok(vec![format!(
                "a fresh database (no ledger, no tables): no release runs against it, so these zero-downtime findings are warnings only: {}",
                lines.join("; ")
            )]);
        }
        if !findings.is_empty() && !allow.unsafe_ddl {
            let lines: Vec<String> = findings.iter().map(Finding::line_text).collect();
            return Err(Error::new(
                ErrorKind::UnsafeMigration,
                format!(
                    "pre-deploy migrations would break the release still running: {} (move them to post/, add -- ugw:allow RULE, or --allow-unsafe)",
                    lines.join("; ")
                ),
            ));
        }
        Ok(Vec::new())
    }
}

fn names(migrations: &[&Migration]) -> String {
    migrations
        .iter()
        .map(|m| m.file_name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn brief(m: &Migration) -> PendingMigration {
    PendingMigration {
        version: m.version,
        name: m.name.clone(),
        phase: m.phase.word().to_string(),
        checksum: m.checksum.clone(),
    }
}

fn survey(ctx: &Ctx, store: &mut dyn Store, settings: &Settings) -> Result<Survey> {
    Ok(Survey {
        files: settings.files(ctx)?,
        applied: store.applied()?,
    })
}

/// `plan` (and `up --dry-run`): what `up` would run, refused as `up` would refuse it.
pub fn plan(
    ctx: &mut Ctx,
    settings: &Settings,
    selection: Selection,
    allow: Allowances,
) -> Result<StepResult> {
    let mut store = settings.open(ctx, false)?;
    if let Ok(dir) = &settings.dir
        && !dir.exists()
        && planned_dir(ctx)?.as_ref() == Some(dir)
        && ctx.this_run().last_result::<Fetched>()?.is_none()
    {
        return not_fetched(ctx, settings, store.as_mut(), selection);
    }
    bounded(ctx, store.as_mut(), |store| {
        plan_on(ctx, settings, store, selection, allow)
    })
}

/// In a dry run with no real fetch step: `migrations/` of the artifact this run's dry-run
/// ugw-fetch step would have staged. `None` in a real run (a dry-run step never lets one act).
fn planned_dir(ctx: &Ctx) -> Result<Option<PathBuf>> {
    Ok(ctx
        .this_run()
        .dry_run_result::<FetchPlanned>(ctx.dry_run)?
        .map(|planned| PathBuf::from(planned.path).join("migrations")))
}

/// A dry run on a dry-run fetch: the migrations are in an artifact nobody fetched, so which
/// would run is not known. Said, with the database's ledger as it is, and exit 0.
fn not_fetched(
    ctx: &Ctx,
    settings: &Settings,
    store: &mut dyn Store,
    selection: Selection,
) -> Result<StepResult> {
    let applied = store.applied()?.len();
    let dir = settings.dir_text();
    ctx.reporter.info(&format!(
        "dry run: would apply the migrations in {dir}/ (not fetched: dry-run, so which ones \
         is not known; {applied} applied already)"
    ));
    Ok(StepResult::unchanged(json!({
        "db": settings.db()?.redacted(),
        "dir": dir,
        "phase": selection.phase.word(),
        "would_apply": Value::Null,
        "not_fetched": true,
        "applied": applied,
    })))
}

fn plan_on(
    ctx: &Ctx,
    settings: &Settings,
    store: &mut dyn Store,
    selection: Selection,
    allow: Allowances,
) -> Result<StepResult> {
    let survey = survey(ctx, store, settings)?;
    let phase = selection.phase.word();
    let selected = survey.selection(selection)?;
    let result = json!({
        "db": settings.db()?.redacted(),
        "dir": settings.dir_text(),
        "phase": phase,
        "would_apply": selected.iter().map(|m| brief(m)).collect::<Vec<_>>(),
    });
    let fresh = store.is_fresh()?;
    let warnings = survey
        .refusals(&selected, allow, store.engine(), fresh)
        .map_err(|e| e.with_result(result.clone()))?;
    for warning in &warnings {
        ctx.reporter.warn(warning);
    }
    for m in &selected {
        ctx.reporter.info(&format!(
            "would apply {} (sha256 {})",
            m.file_name(),
            m.checksum
        ));
    }
    if selected.is_empty() {
        ctx.reporter.info("nothing to apply");
    }
    Ok(StepResult::unchanged(result))
}

/// What `up` has done so far: the step's result, on success and on failure alike.
struct UpReport<'a> {
    settings: &'a Settings,
    phase: &'a str,
    lock_wait: Duration,
    applied: Vec<AppliedMigration>,
    warnings: Vec<String>,
}

impl UpReport<'_> {
    /// The result, with what is still pending once `done` of `selected` have run.
    fn result(&self, survey: &Survey, selected: &[&Migration], done: usize) -> Migrated {
        let pending = survey
            .pending()
            .into_iter()
            .filter(|m| !selected[..done].iter().any(|s| s.version == m.version))
            .map(brief)
            .collect();
        Migrated {
            db: self.settings.db().map(DbUrl::redacted).unwrap_or_default(),
            dir: self.settings.dir_text(),
            phase: self.phase.to_string(),
            applied: self.applied.clone(),
            pending,
            lock_wait_ms: millis(self.lock_wait),
            warnings: self.warnings.clone(),
        }
    }

    /// The result as a failed step carries it.
    fn failed(&self, survey: &Survey, selected: &[&Migration], done: usize) -> Value {
        let result = self.result(survey, selected, done);
        StepResult::typed(!result.applied.is_empty(), &result).result
    }
}

/// `up`: lock, look, refuse or apply, report.
pub fn up(
    ctx: &mut Ctx,
    settings: &Settings,
    selection: Selection,
    allow: Allowances,
) -> Result<StepResult> {
    let mut store = settings.open(ctx, true)?;
    bounded(ctx, store.as_mut(), |store| {
        up_on(ctx, settings, store, selection, allow)
    })
}

fn up_on(
    ctx: &Ctx,
    settings: &Settings,
    store: &mut dyn Store,
    selection: Selection,
    allow: Allowances,
) -> Result<StepResult> {
    let lock_started = Instant::now();
    store.lock(settings.lock_wait(ctx), &ctx.cancel, &ctx.host)?;
    // Asked before the ledger is made: a database with neither ledger nor tables is fresh.
    let fresh = store.is_fresh()?;
    store.ensure_ledger()?;
    let survey = survey(ctx, store, settings)?;
    let mut report = UpReport {
        settings,
        phase: selection.phase.word(),
        lock_wait: lock_started.elapsed(),
        applied: Vec::new(),
        warnings: survey
            .missing()
            .iter()
            .map(|a| missing_file(a, settings))
            .collect(),
    };
    let selected = survey.selection(selection)?;
    for warning in &report.warnings {
        ctx.reporter.warn(warning);
    }
    let refused = survey
        .refusals(&selected, allow, store.engine(), fresh)
        .and_then(|warnings| {
            for warning in warnings {
                ctx.reporter.warn(&warning);
                report.warnings.push(warning);
            }
            if selected.is_empty() {
                return Ok(());
            }
            check_long_transactions(ctx, settings, store, &mut report.warnings)
        });
    refused.map_err(|e| e.with_result(report.failed(&survey, &selected, 0)))?;
    let options = RunOptions {
        ddl_lock_timeout: settings.ddl_lock_timeout,
        applied_by: applied_by(ctx, env!("CARGO_PKG_VERSION")),
    };
    for (done, migration) in selected.iter().enumerate() {
        let took = apply(ctx, settings, store, migration, &options)
            .map_err(|e| e.with_result(report.failed(&survey, &selected, done)))?;
        ctx.reporter.info(&format!(
            "applied {} in {}",
            migration.file_name(),
            human(took)
        ));
        report.applied.push(AppliedMigration {
            version: migration.version,
            name: migration.name.clone(),
            phase: migration.phase.word().to_string(),
            duration_ms: millis(took),
        });
    }
    if selected.is_empty() {
        ctx.reporter
            .info(&format!("nothing to apply ({})", report.phase));
    }
    let result = report.result(&survey, &selected, selected.len());
    Ok(StepResult::typed(!result.applied.is_empty(), &result))
}

fn missing_file(row: &LedgerRow, settings: &Settings) -> String {
    format!(
        "applied migration {}_{} has no file in {}",
        row.version,
        row.name,
        settings.dir_text()
    )
}

/// The ledger's `applied_by`: host, pid, and what ran it.
fn applied_by(ctx: &Ctx, what: &str) -> String {
    format!("{} pid {} ugw-migrate {what}", ctx.host, std::process::id())
}

/// Report transactions that would hold our DDL up; refuse past --max-xact-age.
fn check_long_transactions(
    ctx: &Ctx,
    settings: &Settings,
    store: &mut dyn Store,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let threshold = settings
        .max_xact_age
        .map_or(LONG_TRANSACTION, |m| m.min(LONG_TRANSACTION));
    for tx in store.long_transactions(threshold)? {
        let age = Duration::from_millis(tx.age_ms);
        let text = format!(
            "a transaction has been open for {} (backend pid {}, user {}, {}, {})",
            human(age),
            tx.pid,
            if tx.user.is_empty() {
                "unknown"
            } else {
                &tx.user
            },
            if tx.application_name.is_empty() {
                "no application_name"
            } else {
                &tx.application_name
            },
            tx.state,
        );
        if settings.max_xact_age.is_some_and(|max| age > max) {
            return Err(Error::new(
                ErrorKind::FailCondition,
                format!("{text}; refusing to start DDL (--max-xact-age)"),
            ));
        }
        ctx.reporter.warn(&text);
        warnings.push(text);
    }
    Ok(())
}

/// One migration, retried with backoff while its DDL times out waiting for a lock.
fn apply(
    ctx: &Ctx,
    settings: &Settings,
    store: &mut dyn Store,
    m: &Migration,
    options: &RunOptions,
) -> Result<Duration> {
    // A retry starts only when it and its --ddl-lock-timeout fit before --timeout.
    let mut backoff = Backoff::exponential(FIRST_BACKOFF).until(
        ctx.deadline()
            .map(|d| d.checked_sub(settings.ddl_lock_timeout).unwrap_or(d)),
    );
    let mut attempt = 0;
    loop {
        ctx.cancel.check()?;
        let interrupt = store.interrupt();
        let (outcome, late) = watched(ctx, &m.file_name(), settings.heartbeat, &interrupt, || {
            store.run(m, options)
        });
        if outcome.is_ok() {
            ugw_shared::failpoint::hit("migrate.after-ledger-commit");
        }
        let failure = match outcome {
            Ok(took) => return Ok(took),
            Err(failure) => failure,
        };
        if let Some(signal) = ctx.cancel.signal() {
            return Err(Error::interrupted(signal));
        }
        if late {
            let left = if m.no_transaction {
                "it ran outside a transaction: the database is dirty (see `ugw-migrate resolve`)"
            } else {
                "its transaction was rolled back"
            };
            return Err(Error::new(
                ErrorKind::Timeout,
                format!("--timeout passed while {} ran; {left}", m.file_name()),
            ));
        }
        if !failure.lock_timeout || m.no_transaction {
            return Err(failure.error);
        }
        if attempt == settings.ddl_retries {
            return Err(Error::new(
                ErrorKind::MigrationFailed,
                format!(
                    "{}: gave up after {} attempts, each waiting --ddl-lock-timeout {} for a table lock another transaction holds; nothing was applied",
                    m.file_name(),
                    attempt + 1,
                    human(settings.ddl_lock_timeout)
                ),
            ));
        }
        attempt += 1;
        let Some(retry) = backoff.next_from(Instant::now(), None) else {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{}: gave up after {} attempts: another retry (after its backoff, then up to --ddl-lock-timeout {}) would end past --timeout; nothing was applied",
                    m.file_name(),
                    attempt,
                    human(settings.ddl_lock_timeout)
                ),
            ));
        };
        ctx.reporter.warn(&format!(
            "{}: waited --ddl-lock-timeout {} for a table lock; retry {attempt}/{} in {}",
            m.file_name(),
            human(settings.ddl_lock_timeout),
            settings.ddl_retries,
            human(retry.wait)
        ));
        ctx.cancel.sleep_until(retry.at)?;
    }
}

/// Run `work` while a watcher says every `heartbeat` that it is still running, and stops
/// the running statement when a signal arrives or the step's deadline (`--timeout`)
/// passes; the second value says it was the deadline.
fn watched<T>(
    ctx: &Ctx,
    label: &str,
    heartbeat: Duration,
    interrupt: &crate::store::Interrupt,
    work: impl FnOnce() -> T,
) -> (T, bool) {
    let (done, finished) = mpsc::channel::<()>();
    let late = AtomicBool::new(false);
    let out = std::thread::scope(|scope| {
        let late = &late;
        scope.spawn(move || {
            let started = Instant::now();
            let mut next_beat = started + heartbeat;
            loop {
                let wake = ctx.deadline().map_or(next_beat, |d| d.min(next_beat));
                if ctx.cancel.recv_until(&finished, wake).is_err() {
                    interrupt(); // a signal: stop the statement, the run ends interrupted
                    return;
                }
                if matches!(finished.try_recv(), Err(mpsc::TryRecvError::Disconnected)) {
                    return;
                }
                if ctx.deadline().is_some_and(|d| Instant::now() >= d) {
                    late.store(true, Ordering::SeqCst);
                    interrupt();
                    return;
                }
                if Instant::now() >= next_beat {
                    ctx.reporter.info(&format!(
                        "still running {label} after {}",
                        human(started.elapsed())
                    ));
                    next_beat += heartbeat;
                }
            }
        });
        let out = work();
        drop(done);
        out
    });
    (out, late.load(Ordering::SeqCst))
}

/// Run `work` so that no wait on the database outlives the step: when --timeout passes or a
/// signal arrives, the statement running (a ledger query behind another session's lock, a
/// busy SQLite database) is stopped, again every [`INTERRUPT_AGAIN`] until `work` returns,
/// and the error says which it was. A migration's own watcher words its timeout itself.
fn bounded<T>(
    ctx: &Ctx,
    store: &mut dyn Store,
    work: impl FnOnce(&mut dyn Store) -> Result<T>,
) -> Result<T> {
    let interrupt = store.interrupt();
    let (done, finished) = mpsc::channel::<()>();
    let late = AtomicBool::new(false);
    let out = std::thread::scope(|scope| {
        let late = &late;
        let interrupt = &interrupt;
        scope.spawn(move || {
            loop {
                // Without --timeout only a signal ends the wait; wake now and then to look.
                let wake = ctx
                    .deadline()
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
                let signalled = ctx.cancel.recv_until(&finished, wake).is_err();
                if !signalled {
                    if matches!(finished.try_recv(), Err(mpsc::TryRecvError::Disconnected)) {
                        return;
                    }
                    if ctx.deadline().is_none_or(|d| Instant::now() < d) {
                        continue;
                    }
                    late.store(true, Ordering::SeqCst);
                }
                loop {
                    interrupt();
                    match finished.recv_timeout(INTERRUPT_AGAIN) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            }
        });
        let out = work(store);
        drop(done);
        out
    });
    match out {
        Err(e) if matches!(e.kind, ErrorKind::Timeout | ErrorKind::Interrupted) => Err(e),
        Err(e) if ctx.cancel.signal().is_some() => Err(with_result_of(
            Error::interrupted(ctx.cancel.signal().unwrap_or_default()),
            e,
        )),
        Err(e) if late.load(Ordering::SeqCst) => {
            let timeout = Error::new(
                ErrorKind::Timeout,
                format!(
                    "--timeout passed while waiting on the database (another session may hold a lock the ledger or a migration needs): {}",
                    e.message
                ),
            );
            Err(with_result_of(timeout, e))
        }
        other => other,
    }
}

/// `error`, carrying the step result `cause` carried.
fn with_result_of(error: Error, cause: Error) -> Error {
    match cause.result {
        Some(result) => error.with_result(result),
        None => error,
    }
}

/// `status`: the ledger beside the files; `--check` fails when anything needs doing.
pub fn status(ctx: &mut Ctx, settings: &Settings, check: bool) -> Result<StepResult> {
    let mut store = settings.open(ctx, false)?;
    bounded(ctx, store.as_mut(), |store| {
        status_on(ctx, settings, store, check)
    })
}

fn status_on(
    ctx: &Ctx,
    settings: &Settings,
    store: &mut dyn Store,
    check: bool,
) -> Result<StepResult> {
    let survey = survey(ctx, store, settings)?;
    let pending = survey.pending();
    let by_phase = |phase: Phase| -> Vec<PendingMigration> {
        pending
            .iter()
            .filter(|m| m.phase == phase)
            .map(|m| brief(m))
            .collect()
    };
    let failed = survey.failed();
    let changed = survey.changed();
    let missing = survey.missing();
    let result = json!({
        "db": settings.db()?.redacted(),
        "dir": settings.dir_text(),
        "applied": survey.applied.iter().filter(|a| a.success).collect::<Vec<_>>(),
        "pending": {"pre": by_phase(Phase::Pre), "post": by_phase(Phase::Post)},
        "failed": failed,
        "changed": changed.iter().map(|m| brief(m)).collect::<Vec<_>>(),
        "missing_files": missing,
    });
    let applied_count = survey.applied.len() - failed.len();
    ctx.reporter.info(&format!(
        "{applied_count} applied, {} pending pre, {} pending post, {} failed, {} changed, {} without a file",
        by_phase(Phase::Pre).len(),
        by_phase(Phase::Post).len(),
        failed.len(),
        changed.len(),
        missing.len()
    ));
    if check && !(pending.is_empty() && failed.is_empty() && changed.is_empty()) {
        return Err(Error::new(
            ErrorKind::FailCondition,
            format!(
                "not up to date: {} pending, {} failed, {} changed",
                pending.len(),
                failed.len(),
                changed.len()
            ),
        )
        .with_result(result));
    }
    Ok(StepResult::unchanged(result))
}

/// `lint`: every pre-deploy file, whether applied or not; the dialect of --db when given.
pub fn lint(ctx: &mut Ctx, settings: &Settings) -> Result<StepResult> {
    let engine = settings.db.as_ref().map_or(Engine::Postgres, DbUrl::engine);
    let files = settings.files(ctx)?;
    let findings: Vec<Finding> = files
        .iter()
        .flat_map(|m| {
            let mut found = refused_in(m, engine);
            found.extend(lint_file(m, engine));
            found
        })
        .collect();
    for finding in &findings {
        ctx.reporter.warn(&finding.line_text());
    }
    let result = json!({
        "dir": settings.dir_text(),
        "dialect": engine.word(),
        "files": files.len(),
        "findings": findings,
    });
    if findings.is_empty() {
        ctx.reporter
            .info(&format!("{} migrations, no findings", files.len()));
        return Ok(StepResult::unchanged(result));
    }
    Err(Error::new(
        ErrorKind::UnsafeMigration,
        format!("{} finding(s) in pre-deploy migrations", findings.len()),
    )
    .with_result(result))
}

/// `resolve`: list failed migrations and INVALID indexes; settle one; drop the indexes.
pub fn resolve(ctx: &mut Ctx, settings: &Settings, asked: Resolve) -> Result<StepResult> {
    let mut store = settings.open(ctx, true)?;
    bounded(ctx, store.as_mut(), |store| {
        resolve_on(ctx, settings, store, asked)
    })
}

fn resolve_on(
    ctx: &Ctx,
    settings: &Settings,
    store: &mut dyn Store,
    asked: Resolve,
) -> Result<StepResult> {
    store.lock(settings.lock_wait(ctx), &ctx.cancel, &ctx.host)?;
    store.ensure_ledger()?;
    let survey = survey(ctx, store, settings)?;
    let mut changed = false;
    let mut resolved = Value::Null;
    if let Some((version, resolution)) = asked.settle {
        resolved = settle(ctx, settings, store, &survey, version, resolution)?;
        changed = true;
    }
    let (invalid, dropped) = invalid_indexes(ctx, store, asked.drop_invalid_indexes)?;
    changed |= !dropped.is_empty();
    let failed: Vec<&LedgerRow> = survey
        .failed()
        .into_iter()
        .filter(|a| resolved.get("version").and_then(Value::as_i64) != Some(a.version))
        .collect();
    for row in &failed {
        ctx.reporter.warn(&format!(
            "{}_{} failed outside a transaction; resolve {} --applied or --forget",
            row.version, row.name, row.version
        ));
    }
    let result = json!({
        "db": settings.db()?.redacted(),
        "failed": failed,
        "resolved": resolved,
        "invalid_indexes": invalid.iter().filter(|i| !dropped.contains(i)).collect::<Vec<_>>(),
        "dropped_indexes": dropped,
    });
    Ok(if changed {
        StepResult::changed(result)
    } else {
        StepResult::unchanged(result)
    })
}

/// `resolve VERSION --applied|--forget`: settle the ledger row of VERSION; what was done, for
/// the result's `resolved`.
fn settle(
    ctx: &Ctx,
    settings: &Settings,
    store: &mut dyn Store,
    survey: &Survey,
    version: i64,
    resolution: Resolution,
) -> Result<Value> {
    let row = survey.row(version).ok_or_else(|| {
        Error::usage(format!(
            "version {version} has no ledger row; nothing to resolve"
        ))
    })?;
    if let Resolution::Forget { force } = resolution {
        if row.success && !force {
            return Err(Error::usage(format!(
                "{version}_{} was applied successfully at {}; --forget is for a failed or dirty row. \
                 Forgetting it makes the next `up` run it again on a database that already has its changes \
                 (a data migration would apply twice); add --force if that is what you want",
                row.name, row.applied_at
            )));
        }
        store.forget(version)?;
        ctx.reporter.info(&format!(
            "forgot {version}_{}: the next `up` runs it again",
            row.name
        ));
        return Ok(json!({"version": version, "resolution": "forget"}));
    }
    let file = survey
        .files
        .iter()
        .find(|m| m.version == version)
        .ok_or_else(|| {
            Error::usage(format!(
                "version {version} has no file in {}",
                settings.dir_text()
            ))
        })?;
    store.mark_applied(file, &applied_by(ctx, "resolve"))?;
    ctx.reporter
        .info(&format!("recorded {} as applied", file.file_name()));
    Ok(json!({"version": version, "resolution": "applied"}))
}

/// The INVALID indexes a failed CREATE INDEX CONCURRENTLY left, and those dropped of them
/// (`--drop-invalid-indexes`); each is said on stderr.
fn invalid_indexes(
    ctx: &Ctx,
    store: &mut dyn Store,
    drop: bool,
) -> Result<(Vec<String>, Vec<String>)> {
    let invalid = store.invalid_indexes()?;
    let mut dropped = Vec::new();
    if drop {
        for index in &invalid {
            store.drop_index(index)?;
            ctx.reporter.info(&format!("dropped INVALID index {index}"));
            dropped.push(index.clone());
        }
    } else {
        for index in &invalid {
            ctx.reporter.warn(&format!("index {index} is INVALID (a failed CREATE INDEX CONCURRENTLY); --drop-invalid-indexes drops it"));
        }
    }
    Ok((invalid, dropped))
}

/// `baseline VERSION`: record every migration up to VERSION as applied, running none.
pub fn baseline(ctx: &mut Ctx, settings: &Settings, version: i64) -> Result<StepResult> {
    let mut store = settings.open(ctx, true)?;
    bounded(ctx, store.as_mut(), |store| {
        baseline_on(ctx, settings, store, version)
    })
}

fn baseline_on(
    ctx: &Ctx,
    settings: &Settings,
    store: &mut dyn Store,
    version: i64,
) -> Result<StepResult> {
    store.lock(settings.lock_wait(ctx), &ctx.cancel, &ctx.host)?;
    store.ensure_ledger()?;
    let survey = survey(ctx, store, settings)?;
    let by = applied_by(ctx, "baseline");
    let mut adopted = Vec::new();
    for m in survey
        .pending()
        .into_iter()
        .filter(|m| m.version <= version)
    {
        store.mark_applied(m, &by)?;
        adopted.push(brief(m));
    }
    ctx.reporter.info(&format!(
        "baseline {version}: recorded {} migrations as applied",
        adopted.len()
    ));
    let result = json!({"db": settings.db()?.redacted(), "baseline": version, "adopted": adopted});
    Ok(if adopted.is_empty() {
        StepResult::unchanged(result)
    } else {
        StepResult::changed(result)
    })
}
