//! Which earlier drain an `--undo` puts back (ugw(7), WHAT A TOOL TRUSTS): only drain steps of
//! this run written on this host, matched by what they name (the balancer socket by its
//! canonical path or address and the backend/server, the flag file by its canonical path), never
//! simply the record's last step. A drain step counts whatever its status once it carries its
//! result (one interrupted or failed at its deadline may have left the node drained); an undo
//! step counts only when it succeeded (a failed one put nothing back). The state to put back is
//! the one the oldest drain since the last undo of the same thing found, so a second drain of a
//! node already drained by this run does not make its drained state the one to restore.

use std::path::{Path, PathBuf};
use ugw_shared::haproxy::{AdminState, Endpoint};
use ugw_shared::record::Status;
use ugw_shared::results::{DrainMethod, Drained, ToolResult};
use ugw_shared::{Ctx, Error, Result};

/// What an undo finds for one thing it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Episode<T> {
    /// A drain of it is not undone yet: the state it found.
    Open(T),
    /// Its last drain in this run was undone already.
    Closed,
    /// This run never drained it.
    Unknown,
}

/// This run's drain and undo steps on this host that count, newest first.
pub(crate) fn counted(ctx: &Ctx) -> Result<Vec<Drained>> {
    let mut found = Vec::new();
    for step in ctx.this_run().steps_newest_first(Drained::TOOL) {
        if step.result.is_null() {
            continue;
        }
        let drained: Drained = serde_json::from_value(step.result.clone()).map_err(|e| {
            Error::bad_record(format!(
                "the result of an earlier ugw-drain step is malformed: {e}"
            ))
        })?;
        let counts = if drained.undo {
            step.status == Status::Ok
        } else {
            step.status != Status::Skipped
        };
        if counts {
            found.push(drained);
        }
    }
    Ok(found)
}

/// A socket as a drain records it and an undo matches it: a unix socket by its canonical path
/// (`./h.sock` and `/run/h/h.sock` are one socket), `tcp:HOST:PORT` with the host in lower
/// case and an IP address in its standard form.
pub(crate) fn socket_identity(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Unix(path) => std::fs::canonicalize(path)
            .unwrap_or_else(|_| canonical_name(path))
            .display()
            .to_string(),
        Endpoint::Tcp(addr) => match addr.parse::<std::net::SocketAddr>() {
            Ok(parsed) => format!("tcp:{parsed}"),
            Err(_) => format!("tcp:{}", addr.to_ascii_lowercase()),
        },
    }
}

/// A recorded socket's identity; a recorded text that is not a socket names nothing.
fn recorded_socket(text: &str) -> Option<String> {
    Endpoint::parse(text).ok().map(|e| socket_identity(&e))
}

/// `path` with its folder made canonical and its own name kept: the flag file's identity (the
/// flag may not exist yet, or be a symlink whose own presence is what counts).
pub(crate) fn canonical_name(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => {
            std::fs::canonicalize(dir).map_or_else(|_| absolute.clone(), |dir| dir.join(name))
        }
        _ => absolute,
    }
}

fn same_flag(drained: &Drained, path: &Path) -> bool {
    drained.method == DrainMethod::FlagFile
        && drained
            .flag_file
            .as_deref()
            .is_some_and(|recorded| canonical_name(Path::new(recorded)) == path)
}

/// Whether a step of this run set a server through `socket` (an identity from
/// `socket_identity`), a drain or an undo, whatever the server.
pub(crate) fn through_socket(counted: &[Drained], socket: &str) -> bool {
    counted.iter().any(|d| {
        d.method == DrainMethod::Haproxy
            && d.sockets
                .iter()
                .any(|s| recorded_socket(s).as_deref() == Some(socket))
    })
}

fn names_socket(drained: &Drained, server: &str, socket: &str) -> Option<usize> {
    if drained.method != DrainMethod::Haproxy || drained.server.as_deref() != Some(server) {
        return None;
    }
    drained
        .sockets
        .iter()
        .position(|s| recorded_socket(s).as_deref() == Some(socket))
}

/// What this run's drains of one thing found: `found` is `None` for a step that does not name
/// it, else the state that step records before it. The oldest drain since the newest undo of
/// it is the one whose state counts.
fn episode<T>(
    counted: &[Drained],
    found: impl Fn(&Drained) -> Option<Result<T>>,
) -> Result<Episode<T>> {
    let mut oldest = None;
    let mut undone = false;
    for drained in counted {
        let Some(state) = found(drained) else {
            continue;
        };
        if drained.undo {
            undone = true;
            break;
        }
        oldest = Some(state?);
    }
    Ok(match oldest {
        Some(state) => Episode::Open(state),
        None if undone => Episode::Closed,
        None => Episode::Unknown,
    })
}

/// What this run's drains of `server` found on `socket` (an identity from `socket_identity`).
pub(crate) fn haproxy_state(
    counted: &[Drained],
    server: &str,
    socket: &str,
) -> Result<Episode<AdminState>> {
    episode(counted, |drained| {
        let at = names_socket(drained, server, socket)?;
        let word = drained.states_before.get(at).map_or("", String::as_str);
        Some(parse_state(word).ok_or_else(|| {
            Error::bad_record(format!(
                "an earlier ugw-drain step of {server} on {socket} records the state {word:?} before it, which is not ready, drain or maint"
            ))
        }))
    })
}

/// What this run's drains of the flag file `path` (canonical) found: `present` or `absent`.
pub(crate) fn flag_state(counted: &[Drained], path: &Path) -> Result<Episode<bool>> {
    episode(counted, |drained| {
        if !same_flag(drained, path) {
            return None;
        }
        Some(match drained.state_before.as_deref() {
            Some("present") => Ok(true),
            Some("absent") => Ok(false),
            other => Err(Error::bad_record(format!(
                "an earlier ugw-drain step of {} records the state {other:?} before it, which is not present or absent",
                path.display()
            ))),
        })
    })
}

/// Whether the undo `undo` put back what `drain` did (newer undo, older drain).
fn undoes(undo: &Drained, drain: &Drained) -> bool {
    if undo.method != drain.method {
        return false;
    }
    match drain.method {
        // names_socket matches the server too.
        DrainMethod::Haproxy => drain.server.as_deref().is_some_and(|server| {
            drain
                .sockets
                .iter()
                .filter_map(|s| recorded_socket(s))
                .any(|s| names_socket(undo, server, &s).is_some())
        }),
        DrainMethod::FlagFile => drain
            .flag_file
            .as_deref()
            .is_some_and(|f| same_flag(undo, &canonical_name(Path::new(f)))),
        // The endpoint that puts a node back is another URL than the one that drained it.
        DrainMethod::HttpPost => true,
        DrainMethod::Signal => false,
    }
}

/// The newest drain of this run that no later undo put back: what `--undo` without method
/// flags undoes.
pub(crate) fn newest_open(counted: &[Drained]) -> Option<&Drained> {
    counted.iter().enumerate().find_map(|(at, drained)| {
        (!drained.undo && !counted[..at].iter().any(|u| u.undo && undoes(u, drained)))
            .then_some(drained)
    })
}

/// An undo with method flags when this run has no drain of what they name: refused when the
/// record holds drains of something else or of another run or host (a step is never stretched
/// to cover what it does not name), `Ok` when it holds no drain at all (the command line alone
/// says what to put back).
pub(crate) fn refuse_unmatched(ctx: &Ctx, counted: &[Drained], what: &str) -> Result<()> {
    if let Some(other) = counted.iter().find(|d| !d.undo) {
        return Err(Error::usage(format!(
            "this run's drain steps on this host do not name {what} (the last one drained {}): \
             refused; give the method flags of the drain to undo",
            describe(other)
        )));
    }
    if let Some(why) = ctx.this_run().left_out(Drained::TOOL) {
        return Err(Error::usage(format!(
            "no drain of {what} in this run on this host: {why}, so it is not undone"
        )));
    }
    Ok(())
}

/// What a drain step names, for a message.
pub(crate) fn describe(drained: &Drained) -> String {
    match drained.method {
        DrainMethod::Haproxy => format!(
            "{} on {}",
            drained.server.as_deref().unwrap_or("?"),
            drained.sockets.join(", ")
        ),
        DrainMethod::FlagFile => {
            format!("flag file {}", drained.flag_file.as_deref().unwrap_or("?"))
        }
        DrainMethod::HttpPost => drained.http_post.as_deref().unwrap_or("?").to_string(),
        DrainMethod::Signal => format!("process {}", drained.pid.unwrap_or(0)),
    }
}

pub(crate) fn parse_state(word: &str) -> Option<AdminState> {
    match word {
        "ready" => Some(AdminState::Ready),
        "drain" => Some(AdminState::Drain),
        "maint" => Some(AdminState::Maint),
        _ => None,
    }
}
