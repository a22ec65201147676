//! The process a wait watches (`--pid PID`, `--pidfile FILE`): the service just started. When
//! it exits, the wait fails at once (kind `process_exited`, with its exit status when that can
//! be known) instead of polling a dead port until the deadline, as Kubernetes detects a crash
//! loop rather than waiting it out. It also keeps a wait from passing on whatever else still
//! answers on the port (the old release) once the new one has died.

use std::path::PathBuf;
use ugw_shared::process::{ExitStatus, Process};
use ugw_shared::results::WatchedProcess;
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// Where the process comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Pid(i32),
    /// Read when the wait starts, and each round until it names a pid (a service may write
    /// it a moment after its start command returned); the first pid it names is the one
    /// watched.
    Pidfile(PathBuf),
}

/// How a watched process ended.
#[derive(Debug, Clone, Copy)]
enum Gone {
    /// With this status.
    Status(ExitStatus),
    /// Its status could not be known (not our child, an older kernel, already reaped).
    Unknown,
}

impl Gone {
    fn of(status: Option<ExitStatus>) -> Self {
        status.map_or(Gone::Unknown, Gone::Status)
    }

    fn status(self) -> Option<ExitStatus> {
        match self {
            Gone::Status(status) => Some(status),
            Gone::Unknown => None,
        }
    }
}

/// The watched process as the wait goes on.
#[derive(Debug)]
pub struct Watched {
    source: Source,
    pid: Option<i32>,
    process: Option<Process>,
    /// Set once it is seen gone.
    ended: Option<Gone>,
    /// What the pidfile held last when it named no pid yet (said once on stderr).
    pidfile_state: Option<String>,
}

impl Watched {
    pub fn new(source: Source) -> Self {
        Watched {
            source,
            pid: None,
            process: None,
            ended: None,
            pidfile_state: None,
        }
    }

    /// `pid 123` or `pid 123 (from --pidfile app.pid)`.
    fn who(&self) -> String {
        let pid = self
            .pid
            .map_or_else(|| "the process".to_string(), |pid| format!("pid {pid}"));
        match &self.source {
            Source::Pid(_) => pid,
            Source::Pidfile(path) => format!("{pid} (from --pidfile {})", path.display()),
        }
    }

    /// Whether it still runs: `Err` of kind `process_exited` once it is gone; `Ok` while it
    /// runs, or while its pidfile names none yet.
    pub fn check(&mut self, ctx: &Ctx) -> Result<()> {
        if self.ended.is_some() {
            return Err(self.exited_error());
        }
        if self.process.is_none() && !self.open(ctx)? {
            return Ok(());
        }
        let alive = self.process.as_ref().is_some_and(Process::alive);
        if alive {
            return Ok(());
        }
        self.ended = Some(Gone::of(
            self.process.as_ref().and_then(Process::exit_status),
        ));
        Err(self.exited_error())
    }

    /// Find the process; `Ok(false)` while a pidfile names none yet. A pid that is not
    /// running when first seen has exited (status unknown).
    fn open(&mut self, ctx: &Ctx) -> Result<bool> {
        let pid = match &self.source {
            Source::Pid(pid) => *pid,
            Source::Pidfile(path) => match read_pidfile(path)? {
                Ok(pid) => pid,
                Err(state) => {
                    if self.pidfile_state.as_deref() != Some(state.as_str()) {
                        ctx.reporter.info(&format!(
                            "--pidfile {}: {state}; reading it again each round",
                            path.display()
                        ));
                        self.pidfile_state = Some(state);
                    }
                    return Ok(false);
                }
            },
        };
        self.pid = Some(pid);
        match Process::from_pid(pid)? {
            Some(process) => {
                ctx.reporter.info(&format!("watching {}", self.who()));
                self.process = Some(process);
            }
            None => self.ended = Some(Gone::Unknown),
        }
        Ok(true)
    }

    /// The failure once it is gone; the targets' state is added by the caller.
    fn exited_error(&self) -> Error {
        let how = match self.ended.and_then(Gone::status) {
            Some(status) => format!("exited ({status})"),
            None if self.process.is_none() => "is not running".to_string(),
            None => "exited (its exit status is not known: it is not our child)".to_string(),
        };
        Error::new(ErrorKind::ProcessExited, format!("{} {how}", self.who()))
    }

    /// Why the wait timed out on the process's side: a pidfile that never named one.
    pub fn never_found(&self) -> Option<String> {
        match (&self.source, &self.pidfile_state) {
            (Source::Pidfile(path), Some(state)) if self.pid.is_none() => Some(format!(
                "--pidfile {} never named a process ({state})",
                path.display()
            )),
            _ => None,
        }
    }

    pub fn result(&self) -> WatchedProcess {
        let status = self.ended.and_then(Gone::status);
        WatchedProcess {
            pid: self.pid,
            pidfile: match &self.source {
                Source::Pidfile(path) => Some(path.display().to_string()),
                Source::Pid(_) => None,
            },
            exited: self.ended.is_some(),
            exit_code: match status {
                Some(ExitStatus::Exited(code)) => Some(code),
                _ => None,
            },
            signal: match status {
                Some(ExitStatus::Signalled(signal)) => Some(signal),
                _ => None,
            },
        }
    }
}

/// The pid a pidfile names: `Ok(Ok(pid))`, `Ok(Err(state))` while it names none (missing,
/// empty, being written), `Err` when it cannot be read at all.
fn read_pidfile(path: &std::path::Path) -> Result<std::result::Result<i32, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Err("no such file yet".into()));
        }
        Err(e) => return Err(Error::io(format!("--pidfile {}", path.display()), &e)),
    };
    // The first word: some services write more than the pid (`123\n`, `123 app`).
    Ok(ugw_shared::pidfile::parse(&text))
}
