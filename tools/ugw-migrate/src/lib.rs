//! ugw-migrate: replaces `alembic upgrade head` run from every node. Plain SQL migrations
//! for SQLite and PostgreSQL, applied once under a lock, each with its ledger row in the
//! same transaction, in two phases (pre-deploy, post-deploy), with the safety checks a
//! zero-downtime upgrade needs: changed files, out-of-order versions, unsafe DDL.
// No unsafe code; only a test may use it, with an `expect` saying why (sql/tests.rs asks
// SQLite itself through its C API).
#![cfg_attr(not(test), forbid(unsafe_code))]
#![cfg_attr(test, deny(unsafe_code))]

mod engine;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod image;
mod lint;
mod pg;
mod source;
mod sql;
mod sqlite;
mod store;
mod tls;

use clap::{Arg, ArgMatches, Command};
use engine::{Allowances, Phases, Resolution, Resolve, Selection, Settings};
use std::path::PathBuf;
use std::time::Duration;
use ugw_shared::cli::flag;
use ugw_shared::db::DbUrl;
use ugw_shared::{Ctx, Result, StepResult, db, tool_command};

/// Flag and subcommand ids: each named once, for the command and for [`Options`].
mod id {
    ugw_shared::flag_ids! {
        UP, STATUS, PLAN, LINT, RESOLVE, BASELINE,

        DIR, FROM_IMAGE, IMAGE_PATH, ALLOW_POOLER, LEDGER_SCHEMA, LEDGER_TABLE, DDL_LOCK_TIMEOUT,
        DDL_RETRIES, MAX_XACT_AGE, STATEMENT_TIMEOUT, HEARTBEAT,

        PHASE, TARGET, VERSION, CREATE, ALLOW_CHANGED, ALLOW_OUT_OF_ORDER, ALLOW_UNSAFE, CHECK,
        APPLIED, FORGET, FORCE, RESOLUTION, DROP_INVALID_INDEXES,
    }
}

const EXAMPLES: &str = "\
Examples:
  # Before the new release is switched on: its pre-deploy migrations, once, whichever node runs
  # first (the database in $DATABASE_URL, the migrations/ folder of the fetched artifact):
  ugw-fetch --url \"$BASE/app-$V-linux-amd64.tar.gz\" --sha256-url \"$BASE/SHA256SUMS\" \\
    --dest /opt/app/staging --extract --strip-components 1 | ugw-migrate up | ugw-swap --root /opt/app

  # The same with the folder named; then, once every node runs the new release, the contract step:
  ugw-migrate up --dir migrations | ugw-migrate up --phase post --dir migrations

  # What would run, with checksums; nothing is locked or written:
  ugw-migrate plan --dir migrations

  # In CI: fail when a pre-deploy migration would break the release still running:
  ugw-migrate lint --dir migrations

  # After a failed CREATE INDEX CONCURRENTLY: list what is left, drop the INVALID indexes:
  ugw-migrate resolve --dir migrations --drop-invalid-indexes";

/// This tool as `cli` and xtask see it: never an inverse, no default deadline.
#[must_use]
pub fn tool() -> ugw_shared::cli::Tool {
    ugw_shared::cli::Tool::new(command(), run)
}

/// The clap command: the common flags, the database and folder flags, the subcommands.
#[must_use]
pub fn command() -> Command {
    let phase = flag::value(id::PHASE, "PHASE", Phases::WORDS, "pre: DIR/*.sql (before the switch); post: DIR/post/*.sql (after every node runs the new release); all").default_value("pre");
    let target = flag::value(
        id::TARGET,
        "VERSION",
        clap::value_parser!(i64).range(0..),
        "Stop after this version",
    );
    let version = Arg::new(id::VERSION)
        .value_name("VERSION")
        .value_parser(clap::value_parser!(i64).range(0..));
    let create = flag::switch(
        id::CREATE,
        "SQLite: create the database file when it does not exist (a first install); without it a missing file is refused (exit 2), so a mistyped --db never starts an empty database",
    );
    tool_command(
        "ugw-migrate",
        "Versioned SQL migrations for SQLite and PostgreSQL: once, under a lock, in two phases",
    )
    .long_about(
        "Run plain SQL migrations the way a zero-downtime upgrade needs: DIR/<version>_<name>.sql before \
         the new release is switched on, DIR/post/<version>_<name>.sql after every node runs it. Each \
         migration and its row in the ledger table ugw_migrations commit together; a PostgreSQL session \
         advisory lock (SQLite: a lock file) makes several nodes apply each exactly once. An applied file \
         that changed, a version older than the newest applied one, and pre-deploy DDL that would break \
         the old release are refused unless allowed (on a fresh database, with no ledger and no tables, \
         those findings are warnings: no release runs against it). A transactional file may not hold \
         BEGIN, COMMIT, ROLLBACK, END, a RELEASE without its SAVEPOINT or VACUUM, nor (SQLite) PRAGMA \
         foreign_keys (use -- ugw:foreign-keys-off): such a file is refused before anything runs. Files \
         are split by each dialect's own rules (PostgreSQL nests block comments and has E'…' and $tag$ \
         quoting; SQLite does not nest them), and only CREATE FUNCTION|PROCEDURE … BEGIN ATOMIC and \
         CREATE TRIGGER … BEGIN bodies are kept whole. Whatever a file SETs ends with it. The PostgreSQL \
         ledger is always named with its schema (ugw.ugw_migrations, or --ledger-schema), so no \
         search_path ever hides it. A SQLite database that does not exist is made only with --create: a \
         mistyped path is refused (exit 2), never started empty. sqlx's `-- no-transaction` first line is read as -- ugw:no-transaction.",
    )
    .after_long_help(EXAMPLES)
    .mut_arg("lock-timeout", |a| {
        a.default_value("60s")
            .help("How long to wait for the migration lock another run holds (exit 4, naming the holder)")
    })
    .subcommand_required(true)
    .next_help_heading("Database and migrations")
    .args(db::args().into_iter().map(|a| a.global(true)))
    .arg(flag::value(id::DIR, "DIR", clap::value_parser!(std::path::PathBuf), "The migrations folder [default: migrations/ of the last ugw-fetch step's artifact]").global(true))
    .arg(flag::switch(id::ALLOW_POOLER, "Connect through a connection pooler anyway (PgBouncer in session mode only)").global(true))
    .arg(flag::text(id::LEDGER_SCHEMA, "SCHEMA", "PostgreSQL: the schema of the ledger table, created when missing [default: ugw, a schema of \
                 its own; a ledger an older ugw-migrate made in the schema its session started in (usually \
                 public) is found there and kept]; every statement names it, so neither a migration's SET \
                 search_path nor the session's search_path ever moves or hides the ledger",).global(true))
    .arg(flag::value(id::LEDGER_TABLE, "NAME", clap::builder::NonEmptyStringValueParser::new(), "SQLite: the ledger table's name [default: ugw_migrations], for an application that lists \
                 every table of its database (give the same name to every run: a ledger under another name is not looked for)",).global(true))
    .next_help_heading("Running DDL (PostgreSQL)")
    .args(timing_args())
    .subcommand(
        Command::new(id::UP)
            .about("Apply the pending migrations of a phase, in version order")
            .arg(phase.clone())
            .arg(target.clone())
            .arg(flag::switch(id::ALLOW_CHANGED, "Proceed although an applied migration's file changed"))
            .arg(flag::switch(id::ALLOW_OUT_OF_ORDER, "Apply a pending version older than the newest applied one of its phase"))
            .arg(flag::switch(id::ALLOW_UNSAFE, "Apply pre-deploy migrations the linter refuses"))
            .arg(create.clone())
            .arg(flag::switch(id::FROM_IMAGE, "Take the migrations from the image this run's ugw-fetch --image step verified (docker create, then docker cp of --image-path; the container is always removed)").conflicts_with(id::DIR))
            .arg(flag::text(id::IMAGE_PATH, "PATH", "With --from-image: the migrations folder inside the image").default_value("/migrations").requires(id::FROM_IMAGE)),
    )
    .subcommand(
        Command::new(id::STATUS)
            .about("Applied, pending (by phase), failed and changed migrations")
            .arg(flag::switch(id::CHECK, "Exit 1 when anything is pending, failed or changed")),
    )
    .subcommand(
        Command::new(id::PLAN)
            .about("Exactly what `up` would run, in order, with checksums; takes no lock, writes nothing")
            .arg(phase)
            .arg(target),
    )
    .subcommand(Command::new(id::LINT).about("Refuse pre-deploy DDL that breaks the old release or locks a busy table"))
    .subcommand(
        Command::new(id::RESOLVE)
            .about("After a failed no-transaction migration: list it, mark it applied or forget it; drop INVALID indexes")
            .arg(version.clone().requires(id::RESOLUTION).help("The failed migration's version"))
            .arg(flag::switch(id::APPLIED, "The database was fixed by hand: record VERSION as applied"))
            .arg(flag::switch(id::FORGET, "Drop VERSION's ledger row so that the next `up` runs it again"))
            .group(clap::ArgGroup::new(id::RESOLUTION).args([id::APPLIED, id::FORGET]).requires(id::VERSION))
            .arg(flag::switch(id::FORCE, "With --forget: drop the row of a migration that succeeded (the next `up` runs it again)").requires(id::FORGET))
            .arg(flag::switch(id::DROP_INVALID_INDEXES, "Drop the INVALID indexes a failed CREATE INDEX CONCURRENTLY left behind")),
    )
    .subcommand(
        Command::new(id::BASELINE)
            .about("Adopt an existing schema: record every migration up to VERSION as applied without running it")
            .arg(version.required(true).help("The last version the existing schema already has"))
            .arg(create),
    )
}

fn timing_args() -> Vec<Arg> {
    let args = [
        flag::duration(id::DDL_LOCK_TIMEOUT, "SET lock_timeout for each migration's transaction, so DDL never queues in front of every query").default_value("2s"),
        flag::value(id::DDL_RETRIES, "N", clap::value_parser!(u32), "Retries (with backoff) of a migration that hit --ddl-lock-timeout").default_value("5"),
        flag::duration(id::MAX_XACT_AGE, "Refuse to start while another transaction is older than this"),
        flag::duration(id::STATEMENT_TIMEOUT, "SET statement_timeout for the whole run"),
        flag::duration(id::HEARTBEAT, "How often a long migration says it is still running").default_value("10s"),
    ];
    args.into_iter().map(|a| a.global(true)).collect()
}

/// Everything the flags say, parsed once: nothing below this file sees `ArgMatches`.
struct Options {
    settings: Settings,
    subcommand: Subcommand,
    /// `up --from-image`: the migrations folder inside this run's fetched image.
    from_image: Option<String>,
}

enum Subcommand {
    Up(Selection, Allowances),
    Plan(Selection),
    Status { check: bool },
    Lint,
    Resolve(Resolve),
    Baseline { version: i64 },
}

impl Options {
    fn from_matches(ctx: &Ctx, matches: &ArgMatches) -> Result<Self> {
        let (name, sub) = matches.subcommand().expect("clap requires a subcommand");
        let subcommand = match name {
            id::UP => Subcommand::Up(
                selection(sub),
                Allowances {
                    changed: sub.get_flag(id::ALLOW_CHANGED),
                    out_of_order: sub.get_flag(id::ALLOW_OUT_OF_ORDER),
                    unsafe_ddl: sub.get_flag(id::ALLOW_UNSAFE),
                },
            ),
            id::PLAN => Subcommand::Plan(selection(sub)),
            id::STATUS => Subcommand::Status {
                check: sub.get_flag(id::CHECK),
            },
            id::LINT => Subcommand::Lint,
            id::RESOLVE => Subcommand::Resolve(Resolve {
                // clap: VERSION comes with --applied or --forget, and they with it.
                settle: sub.get_one::<i64>(id::VERSION).map(|version| {
                    let resolution = if sub.get_flag(id::FORGET) {
                        Resolution::Forget {
                            force: sub.get_flag(id::FORCE),
                        }
                    } else {
                        Resolution::Applied
                    };
                    (*version, resolution)
                }),
                drop_invalid_indexes: sub.get_flag(id::DROP_INVALID_INDEXES),
            }),
            id::BASELINE => Subcommand::Baseline {
                version: defaulted(sub, id::VERSION),
            },
            other => unreachable!("clap knows no subcommand {other}"),
        };
        let from_image = (name == id::UP && sub.get_flag(id::FROM_IMAGE))
            .then(|| defaulted::<String>(sub, id::IMAGE_PATH));
        let settings = Settings {
            db: DbUrl::from_matches(sub, ctx.scrubber()),
            dir: match from_image {
                // Copied out of the image once the flags are all read (`run`).
                Some(_) => Ok(PathBuf::new()),
                None => engine::migrations_dir(ctx, sub.get_one::<PathBuf>(id::DIR).cloned())?,
            },
            allow_pooler: sub.get_flag(id::ALLOW_POOLER),
            lock_timeout: ctx.lock_timeout(),
            ddl_lock_timeout: defaulted(sub, id::DDL_LOCK_TIMEOUT),
            ddl_retries: defaulted(sub, id::DDL_RETRIES),
            max_xact_age: sub.get_one::<Duration>(id::MAX_XACT_AGE).copied(),
            statement_timeout: sub.get_one::<Duration>(id::STATEMENT_TIMEOUT).copied(),
            heartbeat: defaulted(sub, id::HEARTBEAT),
            ledger_schema: sub.get_one::<String>(id::LEDGER_SCHEMA).cloned(),
            ledger_table: sub.get_one::<String>(id::LEDGER_TABLE).cloned(),
            create: matches!(name, id::UP | id::BASELINE).then(|| sub.get_flag(id::CREATE)),
        };
        Ok(Options {
            settings,
            subcommand,
            from_image,
        })
    }
}

/// `--phase` and `--target` of `up` and `plan`.
fn selection(sub: &ArgMatches) -> Selection {
    Selection {
        phase: Phases::from_word(&defaulted::<String>(sub, id::PHASE)),
        target: sub.get_one::<i64>(id::TARGET).copied(),
    }
}

/// A flag's value where clap always has one (a `default_value`, or `required`).
fn defaulted<T: Clone + Send + Sync + 'static>(matches: &ArgMatches, id: &str) -> T {
    matches
        .get_one::<T>(id)
        .cloned()
        .expect("the flag has a default value or is required")
}

/// Run the subcommand.
pub fn run(ctx: &mut Ctx, matches: &ArgMatches) -> Result<StepResult> {
    let Options {
        mut settings,
        subcommand,
        from_image,
    } = Options::from_matches(ctx, matches)?;
    if let Some(image_path) = from_image {
        settings.dir = Ok(image::copy_migrations(ctx, &image_path)?);
    }
    match subcommand {
        // `up --dry-run` answers as `plan` would, with up's allowances.
        Subcommand::Up(selection, allow) if ctx.dry_run => {
            engine::plan(ctx, &settings, selection, allow)
        }
        Subcommand::Up(selection, allow) => engine::up(ctx, &settings, selection, allow),
        Subcommand::Plan(selection) => {
            engine::plan(ctx, &settings, selection, Allowances::default())
        }
        Subcommand::Status { check } => engine::status(ctx, &settings, check),
        Subcommand::Lint => engine::lint(ctx, &settings),
        Subcommand::Resolve(asked) => engine::resolve(ctx, &settings, asked),
        Subcommand::Baseline { version } => engine::baseline(ctx, &settings, version),
    }
}
