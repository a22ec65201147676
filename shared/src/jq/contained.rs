//! Where a jq expression runs: in a child process forked for it (`ugw_sys::fork_then_exit`), on a large fixed stack, so
//! that nothing an operator writes can end the tool without its step. jaq recurses on nested
//! values (printing, parsing, comparing, dropping them) and on recursive definitions, and a
//! value is easily built deeper than any stack (`reduce range(1e6) as $_ ([]; [.])`): in
//! process that is an abort ("has overflowed its stack") and no record. In a child it is an
//! error message. A runaway child is killed at the deadline instead of left running, and what
//! comes back is parsed with the same nesting bound as a response body.

use super::{Filter, MAX_DEPTH, MAX_OUTPUTS, Val, evaluate};
use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use rustix::process::{Pid as ProcessId, Signal, WaitOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

/// The stack the evaluation runs on: far more than the 8 MiB of a main thread, reserved,
/// not used (only the pages a deep evaluation touches are ever backed).
const EVALUATION_STACK: usize = 256 * 1024 * 1024;

/// How many bytes of values a child may send back (64 values of a few MiB each).
const MAX_ANSWER: u64 = 64 * 1024 * 1024;

/// What the child sends: `ok` and one JSON value a line, or `err` and the message.
const OK: &str = "ok\n";
const ERR: &str = "err\n";

/// The child's pid while it may still be killed; `None` once it is being reaped.
type Pid = Arc<Mutex<Option<libc::pid_t>>>;

/// Every child forked so far, for the tests to see that none outlives its evaluation.
#[cfg(test)]
pub(super) static FORKED: Mutex<Vec<libc::pid_t>> = Mutex::new(Vec::new());

/// Evaluate `filter` on `input` in a forked child, waiting until `until` (or a signal):
/// `Ok(None)` when the time is up, the child then killed.
pub(super) fn evaluate_until(
    filter: &Arc<Filter>,
    text: &str,
    input: &Val,
    until: Instant,
    cancel: &Cancel,
) -> Result<Option<Result<Vec<Val>, String>>> {
    let (tx, rx) = mpsc::sync_channel(1);
    let pid: Pid = Arc::new(Mutex::new(None));
    let (filter, owned_text, value, child) = (
        Arc::clone(filter),
        text.to_string(),
        input.clone(),
        Arc::clone(&pid),
    );
    std::thread::Builder::new()
        .name("jq".into())
        .stack_size(EVALUATION_STACK)
        .spawn(move || {
            let _ = tx.send(fork_and_read(&filter, &owned_text, value, &child));
        })
        .map_err(|e| Error::io("cannot start a jq evaluation", &e))?;
    // Whatever ends the wait (an answer, the deadline, a signal), a child still running is
    // killed: it never outlives the evaluation it was made for.
    let _kill = KillOnDrop(pid);
    match cancel.recv_until(&rx, until)? {
        Some(answer) => answer.map(Some),
        None => Ok(None),
    }
}

struct KillOnDrop(Pid);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pid) = *guard {
            // A pid this evaluation forked and has not reaped (the reader takes it out under
            // this lock before waitpid), so it names our own child.
            kill(pid);
        }
    }
}

/// On the big-stack thread: fork, let the child evaluate, read its answer, reap it.
fn fork_and_read(
    filter: &Filter,
    text: &str,
    input: Val,
    pid: &Pid,
) -> Result<Result<Vec<Val>, String>> {
    let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::io("cannot start a jq evaluation", &std::io::Error::from(e)))?;
    let forked = {
        let mut guard = pid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The child keeps `fork_then_exit`'s contract: it only evaluates (allocating),
        // writes to its pipe and catches every panic. The parent's copy of the write end goes
        // with the closure, so the read below ends when the child's does.
        let parent = rustix::process::getpid();
        let forked = ugw_sys::fork_then_exit(move || child(filter, text, input, write_end, parent))
            .map_err(|e| Error::io("cannot start a jq evaluation", &e))?;
        *guard = Some(forked);
        #[cfg(test)]
        FORKED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(forked);
        forked
    };
    let mut answer = Vec::new();
    let read = std::fs::File::from(read_end)
        .take(MAX_ANSWER + 1)
        .read_to_end(&mut answer);
    // Taken out under the lock: from here on nobody kills this pid, so reaping it is safe.
    let forked = pid
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
        .unwrap_or(forked);
    if answer.len() as u64 > MAX_ANSWER {
        // Our own child, not yet reaped.
        kill(forked);
    }
    let status = reap(forked);
    read.map_err(|e| Error::io("cannot read a jq evaluation's answer", &e))?;
    Ok(judge(text, &answer, status))
}

/// What the child's answer and exit mean.
fn judge(text: &str, answer: &[u8], status: Option<i32>) -> Result<Vec<Val>, String> {
    if answer.len() as u64 > MAX_ANSWER {
        return Err(format!(
            "jq error in '{text}': its values are larger than {} MiB in all",
            MAX_ANSWER >> 20
        ));
    }
    let answer = String::from_utf8_lossy(answer);
    if status == Some(0) {
        if let Some(message) = answer.strip_prefix(ERR) {
            return Err(message.to_string());
        }
        if let Some(values) = answer.strip_prefix(OK) {
            return values.lines().map(|line| parse_value(text, line)).collect();
        }
    }
    Err(format!(
        "jq error in '{text}': the evaluation ran out of stack (a value or a recursion nested \
         too deep) and was stopped"
    ))
}

/// One value back from the child, as deep as a response body may be.
fn parse_value(text: &str, line: &str) -> Result<Val, String> {
    if super::nesting_depth(line.as_bytes()) > MAX_DEPTH {
        return Err(format!(
            "jq error in '{text}': it yields a value nested deeper than {MAX_DEPTH} levels"
        ));
    }
    super::parse_json(line.as_bytes())
        .map(|input| input.0)
        .map_err(|why| format!("jq error in '{text}': it yields a value that is not JSON ({why})"))
}

/// SIGKILL to our own child (one not reaped yet: its pid is still ours).
fn kill(pid: libc::pid_t) {
    if let Some(pid) = ProcessId::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
    }
}

/// The child's exit code; `None` if a signal ended it.
fn reap(pid: libc::pid_t) -> Option<i32> {
    let pid = ProcessId::from_raw(pid)?;
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => return status.exit_status(),
            Err(rustix::io::Errno::INTR) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

/// The forked child: evaluate, send the answer, and give the exit code `fork_then_exit`
/// leaves with. Its stderr goes nowhere (an overflow's "has overflowed its stack" is the
/// parent's message to give, in words). It dies with its parent: a tool killed with SIGKILL
/// (nothing of it left to kill the child at the deadline) must not leave a runaway evaluation
/// eating the host's memory for ever.
fn child(filter: &Filter, text: &str, input: Val, pipe: OwnedFd, parent: ProcessId) -> i32 {
    // The death signal comes when the forking thread ends, and that thread waits for this
    // child; the parent may have died before the signal was set, hence the check after it.
    if rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).is_err()
        || rustix::process::getppid() != Some(parent)
    {
        return 4;
    }
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stderr(&null);
    }
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut out = String::new();
        match evaluate(filter, text, input) {
            Ok(outputs) => {
                out.push_str(OK);
                for value in outputs.0.iter().take(MAX_OUTPUTS) {
                    out.push_str(&value.to_string());
                    out.push('\n');
                }
            }
            Err(message) => {
                out.push_str(ERR);
                out.push_str(&message);
            }
        }
        out
    }));
    match answer {
        Ok(answer) => {
            let mut pipe = std::fs::File::from(pipe);
            i32::from(pipe.write_all(answer.as_bytes()).is_err())
        }
        Err(_) => 3,
    }
}

/// An internal error for an evaluation that ended without any answer.
pub(super) fn no_answer(flag: &str, text: &str) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("{flag} '{text}': the evaluation stopped without an answer"),
    )
}
