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
    /// `--pretty` as given (the record file follows only the flag).
    pretty_flag: bool,
    quiet: bool,
    always: bool,
    dry_run: bool,
    timeout: Option<Duration>,
    lock_timeout: Duration,
    host: String,
}

const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

impl Common {
    fn from(m: &ArgMatches) -> Self {
        Common {
            record: m.get_one::<PathBuf>("record").cloned(),
            new: m.get_flag("new"),
            input: input_mode(m.get_one::<String>("in").map(String::as_str)),
            pretty_flag: m.get_flag("pretty"),
            quiet: m.get_flag("quiet"),
            always: m.get_flag("always"),
            dry_run: m.get_flag("dry-run"),
            timeout: m.get_one::<Duration>("timeout").copied(),
            lock_timeout: m
                .get_one::<Duration>("lock-timeout")
                .copied()
                .unwrap_or(DEFAULT_LOCK_TIMEOUT),
            host: host_id(m.get_one::<String>("host-id").cloned()),
        }
    }

    /// The common flags read leniently from arguments clap refused, so that a usage error
    /// still lands in `--record FILE`, honours `--in` and names the right host.
    fn prescan(args: &[OsString]) -> Self {
        let mut common = Common {
            record: None,
            new: false,
            input: InputMode::Auto,
            pretty_flag: false,
            quiet: false,
            always: false,
            dry_run: false,
            timeout: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            host: String::new(),
        };
        let mut host = std::env::var("UGW_HOST_ID").ok();
        let mut words = args
            .iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned());
        while let Some(word) = words.next() {
            let (flag, inline) = match word.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    (flag.to_string(), Some(value.to_string()))
                }
                _ => (word.clone(), None),
            };
            let mut value = || inline.clone().or_else(|| words.next());
            match flag.as_str() {
                "--" => break,
                "--record" => common.record = value().map(PathBuf::from),
                "--in" => common.input = input_mode(value().as_deref()),
                "--host-id" => host = value(),
                "--lock-timeout" => {
                    if let Some(t) = value().and_then(|v| time::parse_duration(&v).ok()) {
                        common.lock_timeout = t;
                    }
                }
                "--new" => common.new = true,
                "--pretty" => common.pretty_flag = true,
                "--quiet" | "-q" => common.quiet = true,
                "--always" => common.always = true,
                "--dry-run" => common.dry_run = true,
                _ => {}
            }
        }
        common.host = host_id(host);
        common
    }

    /// Indented output: asked for, or stdout is a terminal.
    fn pretty_stdout(&self) -> bool {
        self.pretty_flag || std::io::stdout().is_terminal()
    }
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
    let code = execute(&tool, &std::env::args_os().collect::<Vec<_>>());
    std::process::exit(code)
}

/// Builds this invocation's step.
struct StepMaker {
    tool: String,
    version: String,
    host: String,
    dry_run: bool,
    started_at: SystemTime,
    started: Instant,
}

impl StepMaker {
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
    let started_at = SystemTime::now();
    let started = Instant::now();
    let name = tool.command.get_name().to_string();
    let parsed = tool.command.clone().try_get_matches_from(args);
    let common = match &parsed {
        Ok(m) => Common::from(m),
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{}", e.render()).and_then(|()| out.flush());
            return exit::OK;
        }
        Err(_) => Common::prescan(args),
    };
    let maker = StepMaker {
        tool: name.clone(),
        version: tool.command.get_version().unwrap_or("0").to_string(),
        host: common.host.clone(),
        dry_run: common.dry_run,
        started_at,
        started,
    };
    let scrubber = Scrubber::default();
    let reporter = Reporter::new(&name, common.quiet, scrubber.clone());
    // Flags were wrong: say so as clap does; the failed step still goes where the record goes.
    let flags_refused = parsed.is_err();
    let parsed = parsed.map_err(|e| {
        let rendered = e.render().to_string();
        reporter.block(&rendered);
        let first = rendered
            .lines()
            .next()
            .unwrap_or("bad arguments")
            .trim_start_matches("error: ");
        Error::usage(format!("{first} (see {name} --help)"))
    });
    let cancel = match Cancel::install() {
        Ok(c) => c,
        Err(e) => {
            reporter.error(&e.message);
            return e.exit;
        }
    };
    let out = Output {
        common: &common,
        scrubber: &scrubber,
        reporter: &reporter,
        cancel: &cancel,
        tool: &name,
    };

    // The incoming record, or the reason there is none.
    let incoming = match &common.record {
        Some(_) if common.new => Ok(None),
        Some(path) => read_record_file(path).map(Some),
        None => read_incoming(common.input, &reporter, &cancel),
    };
    let record = match incoming {
        Ok(record) => record.unwrap_or_else(|| Record::new(time::new_run_id(&common.host))),
        Err(err) => {
            reporter.error(&err.message);
            let mut record = Record::new(time::new_run_id(&common.host));
            record.push(maker.failed(&err));
            // A bad FILE is never overwritten; the record goes to stdout only.
            emit(&record, common.pretty_stdout(), &scrubber);
            return err.exit;
        }
    };

    // A failed run is skipped, with the failure's own exit code (a usage error included: the
    // pipe must report the real cause).
    let inverse = parsed.as_ref().is_ok_and(|m| (tool.runs_after_failure)(m));
    if !record.ok && !common.always && !inverse {
        let code = record.failure_exit();
        let cause = record.failure().map(|s| s.tool.clone()).unwrap_or_default();
        reporter.info(&format!(
            "skipped: the run already failed at {cause} (exit {code}); --always runs anyway"
        ));
        let skipped = maker.step(Status::Skipped, code, false, Value::Null, None);
        return out.finish(record, skipped, code);
    }

    let outcome = parsed.and_then(|matches| {
        let mut ctx = Ctx::new(
            &name,
            &common.host,
            reporter.clone(),
            cancel.clone(),
            record.clone(),
        )
        .with_timeout(common.timeout)
        .with_dry_run(common.dry_run);
        (tool.run)(&mut ctx, &matches)
        // ctx drops here: its temp files go on every path
    });
    let (own, code) = match outcome {
        Ok(done) => (
            maker.step(Status::Ok, exit::OK, done.changed, done.result, None),
            exit::OK,
        ),
        Err(err) => {
            if !flags_refused {
                reporter.error(&err.message); // clap's own message was shown already
            }
            (maker.failed(&err), err.exit)
        }
    };
    out.finish(record, own, code)
}

/// Where the record goes: `--record FILE` (under its lock) and stdout.
struct Output<'a> {
    common: &'a Common,
    scrubber: &'a Scrubber,
    reporter: &'a Reporter,
    cancel: &'a Cancel,
    tool: &'a str,
}

impl Output<'_> {
    /// Append our step and write the record out; returns the exit code.
    fn finish(&self, mut record: Record, mut own: Step, code: i32) -> i32 {
        let mut code = code;
        if let Some(path) = &self.common.record {
            match self.write_back(path, &record, &own) {
                Ok(merged) => record = merged,
                Err(err) => {
                    // The step's work is done, but the record file could not say so.
                    self.reporter.error(&err.message);
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
                }
            }
        } else {
            record.push(own);
        }
        emit(&record, self.common.pretty_stdout(), self.scrubber);
        code
    }

    /// Under FILE.lock: re-read FILE (others may have appended meanwhile), append, write back.
    fn write_back(&self, path: &Path, ours: &Record, own: &Step) -> Result<Record> {
        let common = self.common;
        let lock_path = sibling(path, ".lock");
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
            &lock_path,
            lock_timeout,
            &lock_cancel,
            &common.host,
            self.tool,
        )?;
        let mut record = if common.new {
            ours.clone()
        } else {
            // Damaged or gone since we started: never overwrite it; the record is on stdout.
            read_record_file(path).map_err(|e| {
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
        let text = render(&record, common.pretty_flag, self.scrubber);
        self.cancel.critical(|| {
            if common.new && path.exists() {
                keep_previous(path)?;
            }
            crate::atomic::write_atomic(path, text.as_bytes())
        })?;
        Ok(record)
    }
}

/// Keep FILE as FILE.prev without ever leaving no FILE: a hard link (or a copy), after which
/// the atomic write replaces FILE.
fn keep_previous(path: &Path) -> Result<()> {
    let prev = sibling(path, ".prev");
    let _ = std::fs::remove_file(&prev);
    if std::fs::hard_link(path, &prev).is_err() {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
        crate::atomic::write_atomic(&prev, &bytes)?;
    }
    Ok(())
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
    let mut text = record.to_json(pretty, scrubber);
    text.push('\n');
    text
}

/// Write the record to stdout. A closed stdout (`| head`) is not a crash.
fn emit(record: &Record, pretty: bool, scrubber: &Scrubber) {
    let text = render(record, pretty, scrubber);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
