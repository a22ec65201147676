//! `--start CMD --pidfile F`: ugw-swap as the service manager of a service that has none
//! (issue 21 item 4b). The restart is stop-then-start, because the release running holds the
//! port the new one needs: the process the pidfile names is stopped (TERM to its process
//! group, `--stop-timeout`, then KILL, waited for until it is gone), then CMD is started in
//! the release's folder, detached (a session of its own, stdin /dev/null, stdout and stderr
//! appended to `--log`), and its pid written to the pidfile atomically. A start counts only
//! when the process still runs `--alive-for` later; one that exits before is a failed
//! restart, and the swap switches back and starts the release before.
//!
//! The pidfile's first line is the pid (what `ugw-wait-healthy --pidfile` reads); its second
//! says which process that is (its start time in ticks since boot and the boot's id), so a
//! pid reused by a stranger, or a pidfile ugw-swap did not write, is never signalled.

use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use ugw_shared::atomic::AtomicFile;
use ugw_shared::owner_only::owned_by_invoker;
use ugw_shared::process::{Process, boot_id};
use ugw_shared::scrub::escape_controls;
use ugw_shared::time::human;
use ugw_shared::{Ctx, Error, ErrorKind, Result};

/// What the second line of a pidfile written by `--start` says.
const TAG: &str = "ugw-swap --start";
/// How long a process that ignored SIGTERM for `--stop-timeout` gets after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How much of a pidfile is read (a pid and one line of JSON).
const PIDFILE_CAP: usize = 4096;

/// `--start` and the flags that go with it.
#[derive(Debug, Clone)]
pub(crate) struct Start {
    pub command: String,
    pub pidfile: PathBuf,
    pub log: PathBuf,
    pub stop_timeout: Duration,
    pub alive_for: Duration,
}

impl Start {
    /// `--log` defaults to the pidfile's name with `.log` for its extension, beside it
    /// (`/run/app/app.pid` logs to `/run/app/app.log`).
    pub(crate) fn default_log(pidfile: &Path) -> PathBuf {
        pidfile.with_extension("log")
    }
}

/// Which process the pid in a pidfile is: with its start it names one process for good.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Identity {
    by: String,
    start_ticks: u64,
    boot_id: String,
    #[serde(default)]
    release: Option<String>,
    #[serde(default)]
    started: Option<String>,
}

/// What the pidfile says runs now.
#[derive(Debug)]
pub(crate) enum Running {
    /// No pidfile: nothing was started yet.
    Nothing,
    /// The pidfile names a process that is gone (stale).
    Gone { pid: i32 },
    /// The process ugw-swap started, held by its pidfd.
    Ours {
        process: Process,
        release: Option<String>,
    },
}

fn unsafe_input(message: String) -> Error {
    Error::new(ErrorKind::UnsafeInput, message)
}

/// The name a process runs as, for messages (`sleep`, `ugw-demo-app`).
fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map_or_else(
        |_| "?".to_string(),
        |name| escape_controls(name.trim()).into_owned(),
    )
}

/// Read and check the pidfile before anything is switched or signalled. A symbolic link, a
/// file another user can change, a file that is not ours to read, or a pid that runs but is
/// not the process ugw-swap started (a pidfile written by hand, a pid reused) is refused:
/// exit 1, kind `unsafe_input`, and nothing is signalled.
pub(crate) fn check(start: &Start) -> Result<Running> {
    let path = &start.pidfile;
    let shown = path.display();
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        ugw_shared::owner_only::check_path(folder, "the --pidfile's folder")?;
    }
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Running::Nothing),
        other => other.map_err(|e| Error::io(format!("cannot look at --pidfile {shown}"), &e))?,
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_input(format!(
            "--pidfile {shown} is a symbolic link: refusing to read or replace it (nothing was \
             switched or signalled)"
        )));
    }
    if !meta.is_file() || !owned_by_invoker(&meta) || meta.mode() & 0o022 != 0 {
        return Err(unsafe_input(format!(
            "--pidfile {shown} is not a regular file that only you or root can change (owner \
             uid {}, mode {:o}): a pid written there by another user is never signalled \
             (nothing was switched or signalled)",
            meta.uid(),
            meta.mode() & 0o7777
        )));
    }
    let bytes = ugw_shared::atomic::read_capped(path, PIDFILE_CAP)
        .map_err(|e| Error::io(format!("cannot read --pidfile {shown}"), &e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").trim();
    if first.is_empty() {
        return Ok(Running::Nothing);
    }
    let Some(pid) = first.parse::<i32>().ok().filter(|pid| *pid > 0) else {
        return Err(unsafe_input(format!(
            "--pidfile {shown} holds '{}', not a pid: it was not written by {TAG}; remove it \
             once the service is stopped (nothing was switched or signalled)",
            ugw_shared::scrub::excerpt(first.as_bytes(), 40)
        )));
    };
    let Some(process) = Process::from_pid(pid)? else {
        return Ok(Running::Gone { pid });
    };
    let identity: Option<Identity> = lines
        .next()
        .and_then(|line| serde_json::from_str(line).ok())
        .filter(|id: &Identity| id.by == TAG);
    let Some(identity) = identity else {
        return Err(unsafe_input(format!(
            "--pidfile {shown} names process {pid} ({}), but it was not written by {TAG} (it \
             does not say which process it started): process {pid} is not signalled; stop it \
             yourself and remove the pidfile (nothing was switched)",
            comm(pid)
        )));
    };
    let Some(ticks) = process.start_ticks() else {
        // It exited between the open and the reading.
        return Ok(Running::Gone { pid });
    };
    if ticks != identity.start_ticks || boot_id().as_deref() != Some(&identity.boot_id) {
        return Err(unsafe_input(format!(
            "--pidfile {shown} names process {pid}, but the process with that pid now ({}) \
             is not the one {TAG} started (it started at another time): the pid was reused, \
             and process {pid} is not signalled; remove the pidfile once the service is \
             stopped (nothing was switched)",
            comm(pid)
        )));
    }
    Ok(Running::Ours {
        process,
        release: identity.release,
    })
}

/// Stop what the pidfile names: TERM to its group, `--stop-timeout`, then KILL; returns what
/// was done, for stderr and the record. A signal to ugw-swap ends the wait (interrupted).
pub(crate) fn stop(ctx: &Ctx, start: &Start) -> Result<String> {
    let shown = start.pidfile.display();
    let (process, release) = match check(start)? {
        Running::Nothing => return Ok(format!("no process in {shown}: nothing to stop")),
        Running::Gone { pid } => {
            let note = format!("{shown} names process {pid}, which is gone: nothing to stop");
            ctx.reporter.info(&note);
            return Ok(note);
        }
        Running::Ours { process, release } => (process, release),
    };
    let pid = process.pid();
    let what = release.map_or_else(
        || format!("process {pid}"),
        |r| format!("process {pid} (release {r})"),
    );
    let began = Instant::now();
    ctx.reporter.info(&format!(
        "stopping {what}: SIGTERM, then SIGKILL after {}",
        human(start.stop_timeout)
    ));
    process.signal_group(rustix::process::Signal::TERM)?;
    let note = if process.wait_gone(began + start.stop_timeout, &ctx.cancel)? {
        format!("stopped {what} with SIGTERM in {}", human(began.elapsed()))
    } else {
        process.signal_group(rustix::process::Signal::KILL)?;
        if !process.wait_gone(Instant::now() + KILL_WAIT, &ctx.cancel)? {
            return Err(Error::new(
                ErrorKind::RestartFailed,
                format!("{what} is still running {} after SIGKILL", human(KILL_WAIT)),
            ));
        }
        ctx.reporter.warn(&format!(
            "{what} ignored SIGTERM for --stop-timeout {}: killed",
            human(start.stop_timeout)
        ));
        format!(
            "killed {what} after SIGTERM went unanswered for {}",
            human(start.stop_timeout)
        )
    };
    let stragglers = kill_stragglers(pid);
    if stragglers > 0 {
        ctx.reporter.warn(&format!(
            "killed {stragglers} process(es) of {what}'s group still running after it stopped"
        ));
    }
    ctx.reporter.info(&note);
    Ok(note)
}

/// Kill what is left of the stopped service's group and session (children it started that
/// did not stop with it). Only a process whose group and session are both `leader`'s, which
/// only a process of that session can be: a group id stays taken while a member lives, so it
/// is never a stranger's. Each is signalled through its own pidfd after it was read.
fn kill_stragglers(leader: i32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let members = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
            let field = |n: usize| fields.get(n).and_then(|v| v.parse::<i32>().ok());
            fields.first().is_some_and(|state| *state != "Z")
                && field(2) == Some(leader)
                && field(3) == Some(leader)
        })
    };
    let mut killed = 0;
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
        if pid == leader || !members(pid) {
            continue;
        }
        // Opened, then read again: what the pidfd holds is the member that was read.
        if let Ok(Some(process)) = Process::from_pid(pid)
            && members(pid)
            && process
                .signal(rustix::process::Signal::KILL)
                .unwrap_or(false)
        {
            killed += 1;
        }
    }
    killed
}

/// How a start went.
pub(crate) struct Started {
    pub ok: bool,
    /// `started process 4242 (running after 1 s)`, `exited at once (exit 3)`.
    pub outcome: String,
    pub exit: Option<i32>,
    /// What the process wrote to the log during the start.
    pub output: Vec<u8>,
}

/// Start CMD for `release` in `dir` (its folder; `None`: ugw-swap's own folder), detached,
/// and write the pidfile. It must still run `--alive-for` later.
pub(crate) fn start(
    ctx: &Ctx,
    start: &Start,
    dir: Option<&Path>,
    release: Option<&str>,
) -> Result<Started> {
    let mut log = open_log(&start.log)?;
    let offset = log
        .seek(SeekFrom::End(0))
        .map_err(|e| Error::io(format!("cannot write --log {}", start.log.display()), &e))?;
    let now = ugw_shared::time::rfc3339_millis(SystemTime::now());
    let header = format!(
        "--- {now} ugw-swap starts {}: {}\n",
        release.unwrap_or("the service"),
        ctx.reporter.scrubber().scrub_str(&start.command)
    );
    log.write_all(header.as_bytes())
        .map_err(|e| Error::io_write(format!("cannot write --log {}", start.log.display()), &e))?;
    let output_from = offset + header.len() as u64;
    let began = Instant::now();
    let mut child = spawn(start, &log, dir, release)?;
    let pid = child.id().cast_signed();
    // Our child, not reaped: the pid is this process's until we wait for it.
    let process = Process::from_pid(pid)?;
    record_pid(ctx, start, pid, process.as_ref(), release, now)?;
    let running = match &process {
        Some(process) => !process.wait_gone(began + start.alive_for, &ctx.cancel)?,
        None => false,
    };
    let output = read_from(&start.log, output_from);
    if running {
        return Ok(Started {
            ok: true,
            outcome: format!(
                "started process {pid} (running after {})",
                human(start.alive_for)
            ),
            exit: None,
            output,
        });
    }
    let status = child
        .wait()
        .map_err(|e| Error::io("cannot wait for the --start command", &e))?;
    let (how, exit) = describe_exit(status);
    Ok(Started {
        ok: false,
        outcome: format!(
            "process {pid} exited {} after its start, before --alive-for {} ({how})",
            human(began.elapsed()),
            human(start.alive_for)
        ),
        exit,
        output: read_from(&start.log, output_from),
    })
}

/// CMD started detached: `sh -c`, stdin /dev/null, output to the log, in the release's
/// folder with its name in the environment, leading a session of its own.
fn spawn(
    start: &Start,
    log: &std::fs::File,
    dir: Option<&Path>,
    release: Option<&str>,
) -> Result<std::process::Child> {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&start.command)
        .stdin(Stdio::null())
        .stdout(stdio(log, &start.log)?)
        .stderr(stdio(log, &start.log)?);
    if let Some(dir) = dir {
        let absolute = std::path::absolute(dir)
            .map_err(|e| Error::io(format!("cannot resolve {}", dir.display()), &e))?;
        command
            .current_dir(&absolute)
            .env("UGW_RELEASE_DIR", &absolute);
    }
    if let Some(release) = release {
        command.env("UGW_RELEASE", release);
    }
    // The service leads a session and a group of its own, so that it outlives ugw-swap and
    // the restart's group kill, and a stop reaches its children through the group.
    ugw_sys::in_new_session(&mut command);
    command
        .spawn()
        .map_err(|e| Error::io("cannot start the --start command", &e))
}

/// The pidfile names the process started and which one it is (its start time and boot), so
/// that a later stop never signals a pid reused since.
fn record_pid(
    ctx: &Ctx,
    start: &Start,
    pid: i32,
    process: Option<&Process>,
    release: Option<&str>,
    started: String,
) -> Result<()> {
    let ticks = process.and_then(Process::start_ticks);
    let (Some(ticks), Some(boot)) = (ticks, boot_id()) else {
        return Ok(());
    };
    write_pidfile(
        &start.pidfile,
        pid,
        &Identity {
            by: TAG.to_string(),
            start_ticks: ticks,
            boot_id: boot,
            release: release.map(str::to_string),
            started: Some(started),
        },
    )?;
    ctx.reporter.info(&format!(
        "started process {pid} (pidfile {}, log {})",
        start.pidfile.display(),
        start.log.display()
    ));
    Ok(())
}

/// How a process ended, in words, and its exit code when it had one.
fn describe_exit(status: std::process::ExitStatus) -> (String, Option<i32>) {
    match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => (format!("exit {code}"), Some(code)),
        (None, Some(signal)) => (format!("killed by signal {signal}"), None),
        (None, None) => ("ended".to_string(), None),
    }
}

/// The log, opened to append (created 0600), never through a symbolic link.
fn open_log(path: &Path) -> Result<std::fs::File> {
    if let Some(refused) = ugw_shared::atomic::link_refused(path, "--log") {
        return Err(refused);
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io_write(format!("cannot open --log {}", path.display()), &e))
}

fn stdio(log: &std::fs::File, path: &Path) -> Result<Stdio> {
    Ok(log
        .try_clone()
        .map_err(|e| Error::io(format!("cannot pass --log {} on", path.display()), &e))?
        .into())
}

/// What the log holds from `offset` on (at most the last 64 KiB of it).
fn read_from(path: &Path, offset: u64) -> Vec<u8> {
    const TAIL: u64 = 64 * 1024;
    let Ok(mut file) = ugw_shared::atomic::open_regular(path) else {
        return Vec::new();
    };
    let end = file.metadata().map_or(offset, |m| m.len());
    let from = offset.max(end.saturating_sub(TAIL));
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_ok() {
        let _ = file.take(TAIL).read_to_end(&mut bytes);
    }
    bytes
}

/// The pidfile, replaced in one rename (a symbolic link planted there is replaced, never
/// written through), mode 0644 so that a watcher of another user may read it.
fn write_pidfile(path: &Path, pid: i32, identity: &Identity) -> Result<()> {
    let line = serde_json::to_string(identity).expect("an identity always serialises");
    let mut file = AtomicFile::create(path)?;
    file.write_all(format!("{pid}\n{line}\n").as_bytes())
        .map_err(|e| Error::io_write(format!("cannot write --pidfile {}", path.display()), &e))?;
    file.file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(|e| Error::io(format!("cannot set the mode of {}", path.display()), &e))?;
    file.commit()?;
    Ok(())
}
