//! The one place that writes stdout and exits. It parses the common flags, finds the
//! incoming record, skips after a failure, runs the tool (a panic included), appends its step,
//! scrubs, and writes the record (to `--record FILE` under its lock, and to stdout).

pub mod flag;
pub mod flag_ids;
mod record_file;

use crate::atomic::sibling;
use crate::cancel::Cancel;
use crate::ctx::Ctx;
use crate::error::{Error, ErrorKind, Result, exit};
use crate::input::{InputMode, read_incoming};
use crate::lock;
use crate::record::{Record, Status, Step, StepError};
use crate::report::Reporter;
use crate::results::StepResult;
use crate::scrub::Scrubber;
use crate::time;
use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::Value;
use std::cell::Cell;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

pub type RunFn = fn(&mut Ctx, &ArgMatches) -> Result<StepResult>;

/// A tool as `cli` and xtask see it: its clap command, its `run`, whether it is an inverse
/// meant for failures, and its default `--timeout`. Each tool crate exports one `tool()`.
pub struct Tool {
    pub command: Command,
    pub run: RunFn,
    /// Whether these arguments make the tool an inverse meant for failures (it runs on a
    /// failed record instead of skipping: `ugw-swap --rollback`, `ugw-backup restore`).
    pub runs_after_failure: fn(&ArgMatches) -> bool,
    /// The default of `--timeout`; `None`: no deadline unless one is given.
    pub default_timeout: Option<&'static str>,
    /// `--version VALUE` was this tool's release label (now `--release`): refused with a hint
    /// rather than printing the version and exiting 0 in a pipeline that meant the label.
    pub version_was_the_label: bool,
}

impl Tool {
    /// A tool that skips after a failed record and has no default deadline.
    #[must_use]
    pub fn new(command: Command, run: RunFn) -> Self {
        Tool {
            command,
            run,
            runs_after_failure: |_| false,
            default_timeout: None,
            version_was_the_label: false,
        }
    }

    /// `--version VALUE` (or `--version=VALUE`) used to set this tool's release label: refuse
    /// it (usage, exit 2) with a hint to `--release`; a bare `--version` prints the version.
    #[must_use]
    pub fn version_was_the_label(mut self) -> Self {
        self.version_was_the_label = true;
        self
    }

    /// Run on a failed record, instead of skipping, when `inverse(matches)` says so.
    #[must_use]
    pub fn inverse_when(mut self, inverse: fn(&ArgMatches) -> bool) -> Self {
        self.runs_after_failure = inverse;
        self
    }

    /// The default `--timeout` (a duration such as `2m`).
    #[must_use]
    pub fn default_timeout(mut self, timeout: &'static str) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    #[must_use]
    pub fn name(&self) -> &str {
        self.command.get_name()
    }

    /// The clap command as parsed and documented: the tool's, with its default `--timeout`.
    #[must_use]
    pub fn command(&self) -> Command {
        match self.default_timeout {
            Some(timeout) => self
                .command
                .clone()
                .mut_arg("timeout", |a| a.default_value(timeout)),
            None => self.command.clone(),
        }
    }
}

/// The common flags, with their help, defined once for every tool, and global so that they
/// work after a subcommand too (`ugw-backup create --dry-run`). The default `--timeout` is
/// the tool's (`Tool::default_timeout`).
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
    let args = [
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
        Arg::new("output")
            .long("output")
            .value_name("FORMAT")
            .value_parser(["json", "pretty", "none"])
            .help("The record on stdout: json (one line; indented on a terminal), pretty, or none (keep it with --record)"),
        Arg::new("pretty")
            .long("pretty")
            .action(ArgAction::SetTrue)
            .conflicts_with("output")
            .help("Same as --output pretty (the record file is indented too)"),
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
            // Shown in --help and the man pages; the value itself is `ctx`'s constant.
            .default_value(format!("{}s", crate::ctx::DEFAULT_LOCK_TIMEOUT.as_secs()))
            .help("How long to wait for a lock another run holds before giving up (exit 4)"),
        Arg::new("host-id")
            .long("host-id")
            .value_name("ID")
            .env("UGW_HOST_ID")
            .help("The host name in the record, where several nodes share one machine"),
    ];
    args.into_iter().map(|a| a.global(true)).collect()
}

/// How the record goes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Pretty,
    Nothing,
}

/// The common flags, parsed.
struct Common {
    record: Option<PathBuf>,
    new: bool,
    input: InputMode,
    /// `--output` (or `--pretty`) as given; the record file follows only an explicit `pretty`.
    format: Option<Format>,
    quiet: bool,
    always: bool,
    dry_run: bool,
    timeout: Option<Duration>,
    lock_timeout: Duration,
    host: String,
}

impl Common {
    fn from(m: &ArgMatches) -> Self {
        let format = match m.get_one::<String>("output").map(String::as_str) {
            Some("json") => Some(Format::Json),
            Some("pretty") => Some(Format::Pretty),
            Some("none") => Some(Format::Nothing),
            _ => m.get_flag("pretty").then_some(Format::Pretty),
        };
        Common {
            record: m.get_one::<PathBuf>("record").cloned(),
            new: m.get_flag("new"),
            input: input_mode(m.get_one::<String>("in").map(String::as_str)),
            format,
            quiet: m.get_flag("quiet"),
            always: m.get_flag("always"),
            dry_run: m.get_flag("dry-run"),
            timeout: m.get_one::<Duration>("timeout").copied(),
            lock_timeout: m
                .get_one::<Duration>("lock-timeout")
                .copied()
                .unwrap_or(crate::ctx::DEFAULT_LOCK_TIMEOUT),
            host: host_id(m.get_one::<String>("host-id").cloned()),
        }
    }

    /// The common flags read from arguments clap refused, so that a usage error still lands
    /// in `--record FILE`, honours `--in` and names the right host. The same clap parser reads
    /// them, given only the words that are common flags (and their values).
    fn lenient(args: &[OsString]) -> Self {
        let command = Command::new("lenient")
            .args(common_args())
            .ignore_errors(true);
        let mut kept: Vec<OsString> = args.iter().take(1).cloned().collect();
        let mut words = args.iter().skip(1);
        while let Some(word) = words.next() {
            let text = word.to_string_lossy();
            if text == "--" {
                break;
            }
            let (flag, inline) = match text.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
                _ => (text.as_ref(), None),
            };
            let Some(arg) = command.get_arguments().find(|a| {
                a.get_long()
                    .is_some_and(|l| flag.strip_prefix("--") == Some(l))
                    || a.get_short().is_some_and(|s| flag == format!("-{s}"))
            }) else {
                continue;
            };
            if !arg.get_action().takes_values() {
                kept.push(word.clone());
                continue;
            }
            let Some(value) = inline.map(OsString::from).or_else(|| words.next().cloned()) else {
                break;
            };
            // A bad value (`--timeout 30`) is dropped here: clap would stop at it.
            if accepts(arg, &value) {
                kept.extend([OsString::from(format!("--{}", arg.get_id())), value]);
            }
        }
        let matches = command.try_get_matches_from(kept).unwrap_or_default();
        Common::from(&matches)
    }

    /// How stdout gets the record: `None` for nothing, else whether indented.
    fn stdout_pretty(&self) -> Option<bool> {
        match self.format {
            Some(Format::Nothing) => None,
            Some(Format::Pretty) => Some(true),
            Some(Format::Json) => Some(false),
            None => Some(std::io::stdout().is_terminal()),
        }
    }

    fn file_pretty(&self) -> bool {
        self.format == Some(Format::Pretty)
    }
}

/// Whether `arg`'s value parser takes `value` (its conflicts and requirements aside).
fn accepts(arg: &Arg, value: &OsString) -> bool {
    let alone = Arg::new(arg.get_id().clone())
        .long("value")
        .value_parser(arg.get_value_parser().clone());
    Command::new("check")
        .arg(alone)
        .try_get_matches_from([OsString::from("check"), "--value".into(), value.clone()])
        .is_ok()
}

fn input_mode(value: Option<&str>) -> InputMode {
    match value {
        Some("-") => InputMode::Stdin,
        Some("none") => InputMode::None,
        _ => InputMode::Auto,
    }
}

fn host_id(given: Option<String>) -> String {
    given
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(time::hostname)
}

/// Run a tool (the whole of a tool's `main`); never returns.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the tool is handed over for good"
)]
pub fn run_tool(tool: Tool) -> ! {
    let code = execute(&tool, &std::env::args_os().collect::<Vec<_>>());
    std::process::exit(code)
}

/// Builds this invocation's step.
struct StepMaker {
    tool: String,
    version: String,
    /// The run the step belongs to: the incoming record's, once it is known.
    run: String,
    host: String,
    dry_run: bool,
    started_at: SystemTime,
    started: Instant,
}

impl StepMaker {
    /// The step starts once its input is in: in a pipe every tool starts at once, and the
    /// time spent waiting for the tool before is that tool's, not this step's.
    fn input_arrived(&mut self) {
        self.started_at = SystemTime::now();
        self.started = Instant::now();
    }

    fn step(
        &self,
        status: Status,
        exit: i32,
        changed: bool,
        result: Value,
        error: Option<&Error>,
    ) -> Step {
        Step {
            tool: self.tool.clone(),
            tool_version: self.version.clone(),
            run: self.run.clone(),
            host: self.host.clone(),
            started: time::rfc3339_millis(self.started_at),
            elapsed_ms: time::millis(self.started.elapsed()),
            status,
            exit,
            changed,
            dry_run: self.dry_run,
            result,
            error: error.map(|e| StepError {
                kind: e.kind.word().to_string(),
                message: e.message.clone(),
            }),
            extra: serde_json::Map::new(),
        }
    }

    fn failed(&self, err: &Error) -> Step {
        let status = if err.kind == ErrorKind::Interrupted {
            Status::Interrupted
        } else {
            Status::Failed
        };
        self.step(
            status,
            err.exit,
            false,
            err.result.clone().unwrap_or(Value::Null),
            Some(err),
        )
    }
}

/// Everything `main` does, returning the exit code.
fn execute(tool: &Tool, args: &[OsString]) -> i32 {
    let started = (SystemTime::now(), Instant::now());
    let parsed = match old_version_label(tool, args) {
        Some(refused) => Err(refused),
        None => match tool.command().try_get_matches_from(args) {
            Err(e) if is_help(&e) => return print_help(&e),
            parsed => parsed,
        },
    };
    let common = parsed
        .as_ref()
        .map_or_else(|_| Common::lenient(args), Common::from);
    let mut run = match Invocation::start(tool, common, started) {
        Ok(run) => run,
        Err(code) => return code,
    };
    let parsed = parsed.map_err(|e| run.usage_error(&e));
    let record = match run.incoming() {
        Ok(record) => record,
        Err(code) => return code,
    };
    run.maker.input_arrived();
    let inverse = parsed.as_ref().is_ok_and(|m| (tool.runs_after_failure)(m));
    if let Some(skipped) = run.skip_after_failure(&record, inverse) {
        return run.finish(record, Err(skipped));
    }
    let outcome = parsed.and_then(|matches| run.run_tool(tool, &matches, &record));
    run.finish(record, outcome.map_err(NoSuccess::Failed))
}

/// The old spelling of the release label, `--version VALUE` or `--version=VALUE`, on a tool
/// whose label it was: clap would print the version and exit 0, and a pipeline meaning the
/// label would go on with none. A bare `--version` (the next word a flag, a subcommand, or
/// none) is the tool's version. Words after `--` belong to another program.
fn old_version_label(tool: &Tool, args: &[OsString]) -> Option<clap::Error> {
    if !tool.version_was_the_label {
        return None;
    }
    let command = tool.command();
    let is_a_value = |word: &str| !word.starts_with('-') && command.find_subcommand(word).is_none();
    let mut words = args.iter().skip(1).map(|w| w.to_string_lossy());
    while let Some(word) = words.next() {
        let with_value = match word.as_ref() {
            "--" => return None,
            "--version" => words.next().is_some_and(|next| is_a_value(&next)),
            other => other.starts_with("--version="),
        };
        if with_value {
            return Some(command.clone().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--version is the tool's version now; the release label is --release VALUE",
            ));
        }
    }
    None
}

fn is_help(e: &clap::Error) -> bool {
    matches!(
        e.kind(),
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
    )
}

fn print_help(e: &clap::Error) -> i32 {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", e.render()).and_then(|()| out.flush());
    exit::OK
}

/// Why there is no successful step: it was skipped (with the failure's exit code) or failed.
enum NoSuccess {
    Skipped(i32),
    Failed(Error),
}

/// One invocation once the flags are known: what every later stage needs.
struct Invocation {
    name: String,
    common: Common,
    maker: StepMaker,
    scrubber: Scrubber,
    reporter: Reporter,
    cancel: Cancel,
    /// clap's own message was shown already.
    flags_refused: bool,
}

impl Invocation {
    fn start(tool: &Tool, common: Common, started: (SystemTime, Instant)) -> Result<Self, i32> {
        let name = tool.name().to_string();
        let scrubber = Scrubber::default();
        let reporter = Reporter::new(&name, common.quiet, scrubber.clone());
        let cancel = Cancel::install().map_err(|e| {
            reporter.error(&e.message);
            e.exit
        })?;
        let maker = StepMaker {
            tool: name.clone(),
            version: tool.command.get_version().unwrap_or("0").to_string(),
            run: String::new(),
            host: common.host.clone(),
            dry_run: common.dry_run,
            started_at: started.0,
            started: started.1,
        };
        Ok(Invocation {
            name,
            common,
            maker,
            scrubber,
            reporter,
            cancel,
            flags_refused: false,
        })
    }

    /// Flags were wrong: say so as clap does; the failed step still goes where the record goes.
    fn usage_error(&mut self, e: &clap::Error) -> Error {
        self.flags_refused = true;
        let rendered = e.render().to_string();
        self.reporter.block(&rendered);
        // The first paragraph whole: "the following required arguments were not provided:"
        // is followed by the flags it means, one a line (issue 20 item 21).
        let paragraph: Vec<&str> = rendered
            .lines()
            .map(str::trim)
            .take_while(|line| !line.is_empty() && !line.starts_with("Usage:"))
            .collect();
        let first = match paragraph.split_first() {
            None => "bad arguments".to_string(),
            Some((head, [])) => head.trim_start_matches("error: ").to_string(),
            Some((head, rest)) => {
                format!("{} {}", head.trim_start_matches("error: "), rest.join(", "))
            }
        };
        Error::usage(format!("{first} (see {} --help)", self.name))
    }

    /// The incoming record (a new one when there is none), or the exit code when it cannot
    /// be had: then a record with the failed step went to stdout, never to a bad FILE.
    fn incoming(&mut self) -> Result<Record, i32> {
        match self.find_incoming() {
            Ok(record) => {
                let record =
                    record.unwrap_or_else(|| Record::new(time::new_run_id(&self.common.host)));
                self.maker.run.clone_from(&record.run);
                Ok(record)
            }
            Err(err) => {
                self.reporter.error(&err.message);
                let mut record = Record::new(time::new_run_id(&self.common.host));
                self.maker.run.clone_from(&record.run);
                record.push(self.maker.failed(&err));
                Err(self.to_stdout(&record, err.exit))
            }
        }
    }

    fn find_incoming(&mut self) -> Result<Option<Record>> {
        let Some(given) = &self.common.record else {
            return read_incoming(self.common.input, &self.reporter, &self.cancel);
        };
        let path = record_file::resolve(given)?;
        self.common.record = Some(path.clone());
        if self.common.new {
            record_file::check_replaceable(&path)?;
            return Ok(None);
        }
        record_file::read(&path).map(Some)
    }

    /// A failed run is skipped, with the failure's own exit code (a usage error included: the
    /// pipe must report the real cause), unless `--always` or the tool is an inverse.
    fn skip_after_failure(&self, record: &Record, inverse: bool) -> Option<NoSuccess> {
        if record.ok || self.common.always || inverse {
            return None;
        }
        let code = record.failure_exit();
        let cause = record.failure().map(|s| s.tool.clone()).unwrap_or_default();
        self.reporter.info(&format!(
            "skipped, nothing done: the run already failed at {cause} (exit {code}); \
             give --always to run this step after a failure"
        ));
        Some(NoSuccess::Skipped(code))
    }

    /// The tool's `run`, with a panic turned into a failed step (the record survives it).
    fn run_tool(&self, tool: &Tool, matches: &ArgMatches, record: &Record) -> Result<StepResult> {
        let mut ctx = Ctx::new(
            &self.name,
            &self.common.host,
            self.reporter.clone(),
            self.cancel.clone(),
            record.clone(),
        )
        .with_timeout(self.common.timeout)
        .with_lock_timeout(self.common.lock_timeout)
        .with_dry_run(self.common.dry_run);
        let outcome = catching_panics(|| (tool.run)(&mut ctx, matches));
        drop(ctx); // its temp files go on every path, a panic's included
        outcome.unwrap_or_else(|panic| {
            Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "internal error: {panic} (a bug in {}; please report it with the record)",
                    self.name
                ),
            ))
        })
    }

    /// Append our step, save the record, write it out (or exec); returns the exit code.
    fn finish(&self, record: Record, outcome: Result<StepResult, NoSuccess>) -> i32 {
        let (own, code, exec) = match outcome {
            Ok(done) => (
                self.maker
                    .step(Status::Ok, exit::OK, done.changed, done.result, None),
                exit::OK,
                done.exec,
            ),
            Err(NoSuccess::Skipped(code)) => (
                self.maker
                    .step(Status::Skipped, code, false, Value::Null, None),
                code,
                None,
            ),
            Err(NoSuccess::Failed(err)) => {
                if !(self.flags_refused && err.kind == ErrorKind::Usage) {
                    self.reporter.error(&err.message);
                }
                (self.maker.failed(&err), err.exit, None)
            }
        };
        let (record, code) = self.save(record, own, code);
        match exec {
            Some(argv) if code == exit::OK => self.exec(&argv),
            _ => self.to_stdout(&record, code),
        }
    }

    /// Append `own` to the record, and to `--record FILE` when there is one. A step whose work
    /// was done but whose FILE could not say so becomes a failed step.
    fn save(&self, mut record: Record, mut own: Step, code: i32) -> (Record, i32) {
        let Some(path) = &self.common.record else {
            record.push(own);
            return (record, code);
        };
        match self.write_back(path, &record, &own) {
            Ok(merged) => (merged, code),
            Err(err) => {
                self.reporter.error(&err.message);
                let mut code = code;
                if own.status == Status::Ok {
                    own.status = if err.kind == ErrorKind::Interrupted {
                        Status::Interrupted
                    } else {
                        Status::Failed
                    };
                    own.exit = err.exit;
                    own.error = Some(StepError {
                        kind: err.kind.word().to_string(),
                        message: err.message.clone(),
                    });
                    code = err.exit;
                }
                record.push(own);
                (record, code)
            }
        }
    }

    /// Under FILE.lock: re-read FILE (others may have appended meanwhile), append, write back.
    fn write_back(&self, path: &Path, ours: &Record, own: &Step) -> Result<Record> {
        let common = &self.common;
        // After a signal the record must still be saved: wait for the lock briefly, and not
        // cancellably (a second Ctrl-C does not lose the step either).
        let (lock_timeout, lock_cancel) = if self.cancel.signal().is_some() {
            (
                common.lock_timeout.min(Duration::from_secs(2)),
                Cancel::default(),
            )
        } else {
            (common.lock_timeout, self.cancel.clone())
        };
        let _guard = lock::acquire(
            &sibling(path, ".lock"),
            lock_timeout,
            &lock_cancel,
            &common.host,
            &self.name,
        )?;
        let mut record = if common.new {
            ours.clone()
        } else {
            // Damaged or gone since we started: never overwrite it; the record is on stdout.
            record_file::read(path).map_err(|e| {
                Error::new(
                    e.kind,
                    format!(
                        "{} (changed while this step ran; not overwritten)",
                        e.message
                    ),
                )
            })?
        };
        record.push(own.clone());
        let text = render(&record, common.file_pretty(), &self.scrubber);
        self.cancel.critical(|| {
            if common.new && path.exists() {
                keep_previous(path)?;
            }
            crate::atomic::write_atomic(path, text.as_bytes())
        })?;
        crate::failpoint::hit("record.after-write");
        Ok(record)
    }

    /// Write the record to stdout as asked, then a summary line for a human at a terminal.
    /// A record that could not be written is exit 1 (a failure keeps its own code); a closed
    /// pipe is not an error: its reader chose not to read (`| head`, `| true`).
    fn to_stdout(&self, record: &Record, code: i32) -> i32 {
        let Some(pretty) = self.common.stdout_pretty() else {
            return code;
        };
        let text = render(record, pretty, &self.scrubber);
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                self.reporter
                    .error(&format!("cannot write the record to stdout: {e}"));
                return if code == exit::OK { exit::FAILED } else { code };
            }
            _ => {}
        }
        if out.is_terminal()
            && let Some(own) = record.steps.last()
        {
            self.reporter.info(&summary(own));
        }
        code
    }

    /// Replace this process with `argv`; only returns (an exit code) when that fails.
    fn exec(&self, argv: &[OsString]) -> i32 {
        use std::os::unix::process::CommandExt;
        let Some((program, rest)) = argv.split_first() else {
            return exit::OK;
        };
        let err = std::process::Command::new(program).args(rest).exec();
        self.reporter
            .error(&format!("cannot run {}: {err}", program.to_string_lossy()));
        if err.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        }
    }
}

/// One line for a human: how the step ended.
fn summary(step: &Step) -> String {
    let took = time::human(Duration::from_millis(step.elapsed_ms));
    let kind = step
        .error
        .as_ref()
        .map(|e| e.kind.as_str())
        .unwrap_or_default();
    match step.status {
        Status::Ok => format!(
            "ok in {took}{}{}",
            if step.changed { ", changed" } else { "" },
            if step.dry_run { " (dry run)" } else { "" }
        ),
        Status::Skipped => format!("skipped (exit {})", step.exit),
        _ => format!("{kind} after {took} (exit {})", step.exit),
    }
}

thread_local! {
    /// Set while a tool's `run` runs on this thread: its panics are caught, not printed.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Run `f`; a panic becomes `Err` with its message and where it happened. The default hook
/// stays for every other thread, so a test's own assertion still prints.
fn catching_panics<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.get() {
                let payload = info.payload();
                let what = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("a panic")
                    .trim_end();
                let place = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                *LAST_PANIC
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(format!("panicked{place}: {what}"));
            } else {
                previous(info);
            }
        }));
    });
    CATCHING.set(true);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.set(false);
    outcome.map_err(|_| {
        LAST_PANIC
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| "panicked".to_string())
    })
}

/// Keep FILE as FILE.prev without ever leaving no FILE: a hard link (or a copy), after which
/// the atomic write replaces FILE. A link is a new name for FILE's inode, so nothing is ever
/// written through whatever sat at FILE.prev.
fn keep_previous(path: &Path) -> Result<()> {
    let prev = sibling(path, ".prev");
    let _ = std::fs::remove_file(&prev);
    if std::fs::hard_link(path, &prev).is_err() {
        let bytes = crate::atomic::read_capped(path, crate::record::MAX_BYTES)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
        crate::atomic::write_atomic(&prev, &bytes)?;
    }
    Ok(())
}

/// Scrubbed JSON text of the record.
fn render(record: &Record, pretty: bool, scrubber: &Scrubber) -> String {
    let mut text = record.to_json(pretty, scrubber);
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_lock_timeout_clap_shows_as_its_default_is_the_one_ctx_uses() {
        let matches = Command::new("ugw-x")
            .args(common_args())
            .try_get_matches_from(["ugw-x"])
            .unwrap();
        assert_eq!(
            matches.get_one::<Duration>("lock-timeout"),
            Some(&crate::ctx::DEFAULT_LOCK_TIMEOUT)
        );
    }

    #[test]
    fn the_lenient_parse_finds_the_common_flags_around_bad_ones() {
        let common = Common::lenient(&args(&[
            "ugw-x",
            "create",
            "--bogus",
            "--record",
            "f.json",
            "-q",
            "--host-id=h1",
            "--lock-timeout",
            "5s",
            "--timeout",
            "30",
            "--output",
            "none",
            "--",
            "--dry-run",
        ]));
        assert_eq!(common.record, Some(PathBuf::from("f.json")));
        assert!(common.quiet && !common.dry_run);
        assert_eq!(common.host, "h1");
        assert_eq!(common.lock_timeout, Duration::from_secs(5));
        assert_eq!(common.format, Some(Format::Nothing));
        assert_eq!(
            common.timeout, None,
            "a bad value is dropped, not the flags after it"
        );
        let common = Common::lenient(&args(&["ugw-x", "--in", "none", "--pretty", "--always"]));
        assert!(matches!(common.input, InputMode::None));
        assert!(common.always && common.file_pretty());
    }

    #[test]
    fn a_tool_declares_its_default_timeout_and_its_inverse() {
        #[expect(clippy::unnecessary_wraps, reason = "the shape every tool's run has")]
        fn run(_: &mut Ctx, _: &ArgMatches) -> Result<StepResult> {
            Ok(StepResult::default())
        }
        let plain = Tool::new(tool_command("ugw-x", "x"), run);
        let matches = plain.command().get_matches_from(["ugw-x"]);
        assert_eq!(matches.get_one::<Duration>("timeout"), None, "no deadline");
        assert!(!(plain.runs_after_failure)(&matches));
        let declared = Tool::new(tool_command("ugw-x", "x"), run)
            .default_timeout("90s")
            .inverse_when(|m| m.get_flag("always"));
        let matches = declared.command().get_matches_from(["ugw-x", "--always"]);
        assert_eq!(
            matches.get_one::<Duration>("timeout"),
            Some(&Duration::from_secs(90))
        );
        assert!((declared.runs_after_failure)(&matches));
    }

    #[test]
    fn the_summary_says_how_the_step_ended() {
        let maker = StepMaker {
            tool: "ugw-x".into(),
            version: "0".into(),
            run: "r".into(),
            host: "h".into(),
            dry_run: false,
            started_at: SystemTime::now(),
            started: Instant::now(),
        };
        let mut ok = maker.step(Status::Ok, 0, true, Value::Null, None);
        ok.elapsed_ms = 1500;
        assert_eq!(summary(&ok), "ok in 1.5 s, changed");
        let failed = maker.failed(&Error::new(ErrorKind::Timeout, "late"));
        assert!(
            summary(&failed).starts_with("timeout after "),
            "{}",
            summary(&failed)
        );
        assert!(summary(&failed).ends_with("(exit 1)"));
        let skipped = maker.step(Status::Skipped, 4, false, Value::Null, None);
        assert_eq!(summary(&skipped), "skipped (exit 4)");
    }

    #[test]
    fn a_panic_is_caught_with_its_message_and_place() {
        let err = catching_panics(|| panic!("boom {}", 7)).unwrap_err();
        assert!(err.contains("boom 7") && err.contains("cli.rs:"), "{err}");
        assert_eq!(catching_panics(|| 5), Ok(5));
    }
}
