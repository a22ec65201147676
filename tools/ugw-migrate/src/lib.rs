//! ugw-migrate: replaces `alembic upgrade head` run from every node. Plain SQL migrations
//! for SQLite and PostgreSQL, applied once under a lock, each with its ledger row in the
//! same transaction, in two phases (pre-deploy, post-deploy), with the safety checks a
//! zero-downtime upgrade needs: changed files, out-of-order versions, unsafe DDL.
// No unsafe code; only a test may use it, with an `expect` saying why (sql/tests.rs asks
// SQLite itself through its C API).
#![cfg_attr(not(test), forbid(unsafe_code))]
#![cfg_attr(test, deny(unsafe_code))]

mod engine;
mod lint;
mod pg;
mod source;
mod sql;
mod sqlite;
mod store;
mod tls;

use clap::{Arg, ArgAction, ArgMatches, Command};
use std::time::Duration;
use ugw_shared::time::parse_duration;
use ugw_shared::{Ctx, Result, StepResult, db, tool_command};

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
    let phase = Arg::new("phase")
        .long("phase")
        .value_name("PHASE")
        .value_parser(["pre", "post", "all"])
        .default_value("pre")
        .help("pre: DIR/*.sql (before the switch); post: DIR/post/*.sql (after every node runs the new release); all");
    let target = Arg::new("target")
        .long("target")
        .value_name("VERSION")
        .value_parser(clap::value_parser!(i64).range(0..))
        .help("Stop after this version");
    let version = Arg::new("version")
        .value_name("VERSION")
        .value_parser(clap::value_parser!(i64).range(0..));
    let create = Arg::new("create")
        .long("create")
        .action(ArgAction::SetTrue)
        .help("SQLite: create the database file when it does not exist (a first install); without it a missing file is refused (exit 2), so a mistyped --db never starts an empty database");
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
    .arg(
        Arg::new("dir")
            .long("dir")
            .value_name("DIR")
            .value_parser(clap::value_parser!(std::path::PathBuf))
            .global(true)
            .help("The migrations folder [default: migrations/ of the last ugw-fetch step's artifact]"),
    )
    .arg(
        Arg::new("allow-pooler")
            .long("allow-pooler")
            .action(ArgAction::SetTrue)
            .global(true)
            .help("Connect through a connection pooler anyway (PgBouncer in session mode only)"),
    )
    .arg(
        Arg::new("ledger-schema")
            .long("ledger-schema")
            .value_name("SCHEMA")
            .global(true)
            .help(
                "PostgreSQL: the schema of the ledger table, created when missing [default: ugw, a schema of \
                 its own; a ledger an older ugw-migrate made in the schema its session started in (usually \
                 public) is found there and kept]; every statement names it, so neither a migration's SET \
                 search_path nor the session's search_path ever moves or hides the ledger",
            ),
    )
    .arg(
        Arg::new("ledger-table")
            .long("ledger-table")
            .value_name("NAME")
            .global(true)
            .value_parser(clap::builder::NonEmptyStringValueParser::new())
            .help(
                "SQLite: the ledger table's name [default: ugw_migrations], for an application that lists \
                 every table of its database (give the same name to every run: a ledger under another name is not looked for)",
            ),
    )
    .next_help_heading("Running DDL (PostgreSQL)")
    .args(timing_args())
    .subcommand(
        Command::new("up")
            .about("Apply the pending migrations of a phase, in version order")
            .arg(phase.clone())
            .arg(target.clone())
            .arg(Arg::new("allow-changed").long("allow-changed").action(ArgAction::SetTrue).help("Proceed although an applied migration's file changed"))
            .arg(
                Arg::new("allow-out-of-order")
                    .long("allow-out-of-order")
                    .action(ArgAction::SetTrue)
                    .help("Apply a pending version older than the newest applied one of its phase"),
            )
            .arg(
                Arg::new("allow-unsafe")
                    .long("allow-unsafe")
                    .action(ArgAction::SetTrue)
                    .help("Apply pre-deploy migrations the linter refuses"),
            )
            .arg(create.clone()),
    )
    .subcommand(
        Command::new("status")
            .about("Applied, pending (by phase), failed and changed migrations")
            .arg(Arg::new("check").long("check").action(ArgAction::SetTrue).help("Exit 1 when anything is pending, failed or changed")),
    )
    .subcommand(
        Command::new("plan")
            .about("Exactly what `up` would run, in order, with checksums; takes no lock, writes nothing")
            .arg(phase)
            .arg(target),
    )
    .subcommand(Command::new("lint").about("Refuse pre-deploy DDL that breaks the old release or locks a busy table"))
    .subcommand(
        Command::new("resolve")
            .about("After a failed no-transaction migration: list it, mark it applied or forget it; drop INVALID indexes")
            .arg(version.clone().requires("resolution").help("The failed migration's version"))
            .arg(Arg::new("applied").long("applied").action(ArgAction::SetTrue).help("The database was fixed by hand: record VERSION as applied"))
            .arg(Arg::new("forget").long("forget").action(ArgAction::SetTrue).help("Drop VERSION's ledger row so that the next `up` runs it again"))
            .group(clap::ArgGroup::new("resolution").args(["applied", "forget"]).requires("version"))
            .arg(
                Arg::new("force")
                    .long("force")
                    .action(ArgAction::SetTrue)
                    .requires("forget")
                    .help("With --forget: drop the row of a migration that succeeded (the next `up` runs it again)"),
            )
            .arg(
                Arg::new("drop-invalid-indexes")
                    .long("drop-invalid-indexes")
                    .action(ArgAction::SetTrue)
                    .help("Drop the INVALID indexes a failed CREATE INDEX CONCURRENTLY left behind"),
            ),
    )
    .subcommand(
        Command::new("baseline")
            .about("Adopt an existing schema: record every migration up to VERSION as applied without running it")
            .arg(version.required(true).help("The last version the existing schema already has"))
            .arg(create),
    )
}

fn timing_args() -> Vec<Arg> {
    let duration = clap::builder::ValueParser::new(parse_duration);
    let args = [
        Arg::new("ddl-lock-timeout")
            .long("ddl-lock-timeout")
            .value_name("DURATION")
            .value_parser(duration.clone())
            .default_value("2s")
            .help("SET lock_timeout for each migration's transaction, so DDL never queues in front of every query"),
        Arg::new("ddl-retries")
            .long("ddl-retries")
            .value_name("N")
            .value_parser(clap::value_parser!(u32))
            .default_value("5")
            .help("Retries (with backoff) of a migration that hit --ddl-lock-timeout"),
        Arg::new("max-xact-age")
            .long("max-xact-age")
            .value_name("DURATION")
            .value_parser(duration.clone())
            .help("Refuse to start while another transaction is older than this"),
        Arg::new("statement-timeout")
            .long("statement-timeout")
            .value_name("DURATION")
            .value_parser(duration.clone())
            .help("SET statement_timeout for the whole run"),
        Arg::new("heartbeat")
            .long("heartbeat")
            .value_name("DURATION")
            .value_parser(duration)
            .default_value("10s")
            .help("How often a long migration says it is still running"),
    ];
    args.into_iter().map(|a| a.global(true)).collect()
}

/// Run the subcommand.
pub fn run(ctx: &mut Ctx, matches: &ArgMatches) -> Result<StepResult> {
    let (name, sub) = matches.subcommand().expect("clap requires a subcommand");
    let settings = engine::Settings::from_matches(ctx, sub)?;
    match name {
        "up" if ctx.dry_run => engine::plan(ctx, &settings, sub),
        "up" => engine::up(ctx, &settings, sub),
        "plan" => engine::plan(ctx, &settings, sub),
        "status" => engine::status(ctx, &settings, sub.get_flag("check")),
        "lint" => engine::lint(ctx, &settings),
        "resolve" => engine::resolve(ctx, &settings, sub),
        "baseline" => engine::baseline(
            ctx,
            &settings,
            *sub.get_one::<i64>("version").expect("required"),
        ),
        other => unreachable!("clap knows no subcommand {other}"),
    }
}

/// Durations clap parsed, by flag name.
fn duration(matches: &ArgMatches, name: &str) -> Option<Duration> {
    matches.get_one::<Duration>(name).copied()
}
