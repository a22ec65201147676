//! The one place that writes stdout and exits. It parses the common flags, finds the
//! incoming record, skips after a failure, runs the tool, appends its step, scrubs, and
//! writes the record (to `--record FILE` under its lock, and to stdout).

use crate::cancel::Cancel;
use crate::ctx::Ctx;
use crate::error::{Error, ErrorKind, Result, exit};
use crate::input::{InputMode, read_incoming};
use crate::lock;
use crate::record::{Record, Status, Step, StepError};
use crate::report::Reporter;
use crate::scrub::Scrubber;
use crate::time;
use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::Value;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What a tool's `run` returns when it succeeded.
#[derive(Debug, Clone, Default)]
pub struct StepResult {
    pub changed: bool,
    pub result: Value,
}

impl StepResult {
    #[must_use]
    pub fn unchanged(result: Value) -> Self {
        StepResult {
            changed: false,
            result,
        }
    }

    #[must_use]
    pub fn changed(result: Value) -> Self {
        StepResult {
            changed: true,
            result,
        }
    }
}

pub type RunFn = fn(&mut Ctx, &ArgMatches) -> Result<StepResult>;

/// A tool as `cli` sees it.
pub struct Tool {
    pub command: Command,
    pub run: RunFn,
    /// Whether these arguments make the tool an inverse meant for failures (it runs on a
    /// failed record instead of skipping: `ugw-swap --rollback`, `ugw-backup restore`).
    pub runs_after_failure: fn(&ArgMatches) -> bool,
}

/// The common flags, with their help, defined once for every tool. The tool adds its own and
/// may give `--timeout` a default (`cmd.mut_arg("timeout", |a| a.default_value("2m"))`).
#[must_use]
pub fn tool_command(name: &'static str, about: &'static str) -> Command {
    Command::new(name)
        .version(env!("CARGO_PKG_VERSION"))
        .about(about)
        .max_term_width(100)
        .next_help_heading("Record and pipeline")
        .args(common_args())
        .next_help_heading(None)
}

fn common_args() -> Vec<Arg> {
    let duration = clap::builder::ValueParser::new(time::parse_duration);
    vec![
        Arg::new("record")
            .long("record")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .conflicts_with("in")
            .help("Keep the record in FILE (read, append this step, write back atomically under FILE.lock)"),
        Arg::new("new")
            .long("new")
            .action(ArgAction::SetTrue)
            .requires("record")
            .help("Start a new run in --record FILE (an old FILE is kept as FILE.prev)"),
        Arg::new("in")
            .long("in")
            .value_name("-|none")
            .value_parser(["-", "none"])
            .help("'-' reads the record from stdin whatever it is; 'none' never touches stdin"),
        Arg::new("pretty")
            .long("pretty")
            .action(ArgAction::SetTrue)
            .help("Indent the record (the default when stdout is a terminal)"),
        Arg::new("quiet").long("quiet").short('q').action(ArgAction::SetTrue).help("Print only errors on stderr"),
        Arg::new("always")
            .long("always")
            .action(ArgAction::SetTrue)
            .help("Run even when the incoming record has failed (instead of skipping)"),
        Arg::new("dry-run")
            .long("dry-run")
            .action(ArgAction::SetTrue)
            .help("Say in the record what would be done; change nothing"),
        Arg::new("timeout")
            .long("timeout")
            .value_name("DURATION")
            .value_parser(duration.clone())
            .help("Hard deadline for the whole step (e.g. 90s, 5m)"),
        Arg::new("lock-timeout")
            .long("lock-timeout")
            .value_name("DURATION")
            .value_parser(duration)
            .default_value("30s")
            .help("How long to wait for a lock another run holds before giving up (exit 4)"),
        Arg::new("host-id")
            .long("host-id")
            .value_name("ID")
            .env("UGW_HOST_ID")
            .help("The host name in the record, where several nodes share one machine"),
    ]
}

/// The common flags, parsed.
struct Common {
    record: Option<PathBuf>,
    new: bool,
    input: InputMode,
    pretty: bool,
    quiet: bool,
    always: bool,
    dry_run: bool,
    timeout: Option<Duration>,
    lock_timeout: Duration,
    host: String,
}

impl Common {
    fn from(m: &ArgMatches) -> Self {
        Common {
            record: m.get_one::<PathBuf>("record").cloned(),
            new: m.get_flag("new"),
            input: match m.get_one::<String>("in").map(String::as_str) {
                Some("-") => InputMode::Stdin,
                Some(_) => InputMode::None,
                None => InputMode::Auto,
            },
            pretty: m.get_flag("pretty") || std::io::stdout().is_terminal(),
            quiet: m.get_flag("quiet"),
            always: m.get_flag("always"),
            dry_run: m.get_flag("dry-run"),
            timeout: m.get_one::<Duration>("timeout").copied(),
            lock_timeout: m
                .get_one::<Duration>("lock-timeout")
                .copied()
                .unwrap_or(Duration::from_secs(30)),
            host: m
                .get_one::<String>("host-id")
                .filter(|h| !h.trim().is_empty())
                .cloned()
                .unwrap_or_else(time::hostname),
        }
    }
}

/// Run a tool whose every invocation skips after a failed record; never returns.
pub fn main(command: Command, run: RunFn) -> ! {
    main_tool(Tool {
        command,
        run,
        runs_after_failure: |_| false,
    })
}

/// Run a tool; never returns.
#[allow(clippy::needless_pass_by_value)] // the tool is handed over for good
pub fn main_tool(tool: Tool) -> ! {
    let code = execute(&tool, std::env::args_os().collect());
    std::process::exit(code)
}

/// Everything `main` does, returning the exit code.
fn execute(tool: &Tool, args: Vec<OsString>) -> i32 {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let name = tool.command.get_name().to_string();
    let version = tool.command.get_version().unwrap_or("0").to_string();
    let step = |status, exit, changed, dry_run, result, error: Option<&Error>, host: &str| Step {
        tool: name.clone(),
        tool_version: version.clone(),
        host: host.to_string(),
        started: time::rfc3339_millis(started_at),
        elapsed_ms: time::millis(started.elapsed()),
        status,
        exit,
        changed,
        dry_run,
        result,
        error: error.map(|e| StepError {
            kind: e.kind.word().to_string(),
            message: e.message.clone(),
        }),
        extra: serde_json::Map::new(),
    };

    let matches = match tool.command.clone().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            return usage_failure(&name, &e, |err, host| {
                step(
                    Status::Failed,
                    err.exit,
                    false,
                    false,
                    Value::Null,
                    Some(err),
                    host,
                )
            });
        }
    };
    let common = Common::from(&matches);
    let scrubber = Scrubber::default();
    let reporter = Reporter::new(&name, common.quiet, scrubber.clone());
    let cancel = match Cancel::install() {
        Ok(c) => c,
        Err(e) => {
            reporter.error(&e.message);
            return e.exit;
        }
    };

    // The incoming record, or the reason there is none.
    let incoming = match &common.record {
        Some(_) if common.new => Ok(None),
        Some(path) => read_record_file(path).map(Some),
        None => read_incoming(common.input, &reporter, &cancel),
    };
    let incoming = match incoming {
        Ok(record) => record,
        Err(err) => {
            reporter.error(&err.message);
            let mut record = Record::new(time::new_run_id(&common.host));
            record.push(step(
                failed_status(&err),
                err.exit,
                false,
                common.dry_run,
                Value::Null,
                Some(&err),
                &common.host,
            ));
            // A bad FILE is never overwritten; the record goes to stdout only.
            emit(&record, common.pretty, &scrubber);
            return err.exit;
        }
    };
    let record = incoming.unwrap_or_else(|| Record::new(time::new_run_id(&common.host)));

    // A failed run is skipped, with the failure's own exit code.
    if !record.ok && !common.always && !(tool.runs_after_failure)(&matches) {
        let code = record.failure_exit();
        let cause = record.failure().map(|s| s.tool.clone()).unwrap_or_default();
        reporter.info(&format!(
            "skipped: the run already failed at {cause} (exit {code}); --always runs anyway"
        ));
        let skipped = step(
            Status::Skipped,
            code,
            false,
            common.dry_run,
            Value::Null,
            None,
            &common.host,
        );
        return finish(
            &common, record, skipped, &scrubber, &reporter, &cancel, &name, code,
        );
    }

    let mut ctx = Ctx::new(
        &name,
        &common.host,
        reporter.clone(),
        cancel.clone(),
        record.clone(),
    )
    .with_timeout(common.timeout)
    .with_dry_run(common.dry_run);
    let outcome = (tool.run)(&mut ctx, &matches);
    drop(ctx); // temp files go now, on every path

    let (own, code) = match outcome {
        Ok(done) => (
            step(
                Status::Ok,
                exit::OK,
                done.changed,
                common.dry_run,
                done.result,
                None,
                &common.host,
            ),
            exit::OK,
        ),
        Err(err) => {
            reporter.error(&err.message);
            let result = err.result.clone().unwrap_or(Value::Null);
            (
                step(
                    failed_status(&err),
                    err.exit,
                    false,
                    common.dry_run,
                    result,
                    Some(&err),
                    &common.host,
                ),
                err.exit,
            )
        }
    };
    finish(
        &common, record, own, &scrubber, &reporter, &cancel, &name, code,
    )
}

fn failed_status(err: &Error) -> Status {
    if err.kind == ErrorKind::Interrupted {
        Status::Interrupted
    } else {
        Status::Failed
    }
}

/// Append our step and write the record out; returns the exit code.
#[allow(clippy::too_many_arguments)]
fn finish(
    common: &Common,
    mut record: Record,
    mut own: Step,
    scrubber: &Scrubber,
    reporter: &Reporter,
    cancel: &Cancel,
    name: &str,
    code: i32,
) -> i32 {
    let mut code = code;
    if let Some(path) = &common.record {
        match write_back(path, common, &record, &own, scrubber, cancel, name) {
            Ok(merged) => record = merged,
            Err(err) => {
                // The step's work is done, but the record file could not say so.
                reporter.error(&err.message);
                if own.status == Status::Ok {
                    own.status = failed_status(&err);
                    own.exit = err.exit;
                    own.error = Some(StepError {
                        kind: err.kind.word().to_string(),
                        message: err.message.clone(),
                    });
                    code = err.exit;
                }
                record.push(own);
            }
        }
    } else {
        record.push(own);
    }
    emit(&record, common.pretty, scrubber);
    code
}

/// Under FILE.lock: re-read FILE (others may have appended meanwhile), append, write back.
fn write_back(
    path: &Path,
    common: &Common,
    ours: &Record,
    own: &Step,
    scrubber: &Scrubber,
    cancel: &Cancel,
    name: &str,
) -> Result<Record> {
    let lock_path = sibling(path, ".lock");
    // After a signal the record must still be saved: wait for the lock briefly, not at all
    // cancellable (a second Ctrl-C does not lose the step either).
    let (lock_timeout, lock_cancel) = if cancel.signal().is_some() {
        (
            common.lock_timeout.min(Duration::from_secs(2)),
            Cancel::default(),
        )
    } else {
        (common.lock_timeout, cancel.clone())
    };
    let _guard = lock::acquire(&lock_path, lock_timeout, &lock_cancel, &common.host, name)?;
    let mut record = if common.new {
        ours.clone()
    } else {
        match read_record_file(path) {
            Ok(current) => current,
            // Vanished or damaged since we started: keep what we read then.
            Err(_) => ours.clone(),
        }
    };
    record.push(own.clone());
    let text = render(&record, true, scrubber);
    cancel.critical(|| {
        if common.new && path.exists() {
            crate::atomic::rename_durable(path, &sibling(path, ".prev"))?;
        }
        crate::atomic::write_atomic(path, text.as_bytes())
    })?;
    Ok(record)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

fn read_record_file(path: &Path) -> Result<Record> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::usage(format!(
                "--record {}: no such file; add --new to start a run there (nothing was attempted)",
                path.display()
            )));
        }
        Err(e) => return Err(Error::io(format!("--record {}", path.display()), &e)),
    };
    Record::parse(&bytes)
        .map_err(|e| Error::bad_record(format!("--record {}: {}", path.display(), e.message)))
}

/// Scrubbed JSON text of the record.
fn render(record: &Record, pretty: bool, scrubber: &Scrubber) -> String {
    let mut value = serde_json::to_value(record).expect("a record always serialises");
    scrubber.scrub_value(&mut value);
    let mut text = if pretty {
        serde_json::to_string_pretty(&value)
    } else {
        serde_json::to_string(&value)
    }
    .expect("a value always serialises");
    text.push('\n');
    text
}

/// Write the record to stdout. A closed stdout (`| head`) is not a crash.
fn emit(record: &Record, pretty: bool, scrubber: &Scrubber) {
    let text = render(record, pretty, scrubber);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Flags were wrong: say so, and still hand the next tool a record with our failed step.
fn usage_failure(name: &str, err: &clap::Error, step: impl Fn(&Error, &str) -> Step) -> i32 {
    use clap::error::ErrorKind as Clap;
    if matches!(err.kind(), Clap::DisplayHelp | Clap::DisplayVersion) {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{}", err.render()).and_then(|()| out.flush());
        return exit::OK;
    }
    let scrubber = Scrubber::default();
    // Quiet: the waiting hint would only distract from the usage error.
    let reporter = Reporter::new(name, true, scrubber.clone());
    let message = err.render().to_string();
    reporter.block(&message);
    let first = message
        .lines()
        .next()
        .unwrap_or("bad arguments")
        .trim_start_matches("error: ")
        .to_string();
    let error = Error::usage(format!("{first} (see {name} --help)"));
    let host = std::env::var("UGW_HOST_ID")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(time::hostname);
    let cancel = Cancel::install().unwrap_or_default();
    let mut record = read_incoming(InputMode::Auto, &reporter, &cancel)
        .ok()
        .flatten()
        .unwrap_or_else(|| Record::new(time::new_run_id(&host)));
    record.push(step(&error, &host));
    emit(&record, std::io::stdout().is_terminal(), &scrubber);
    exit::USAGE
}
