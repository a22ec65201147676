//! Errors carry their exit code and a stable `kind` word, so that only `cli` decides how a
//! run ends and every tool reports the same failure class the same way.

use crate::results::ToolResult;
use serde_json::Value;
use std::fmt;

/// Exit codes shared by every tool (see `man ugw`).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NO_INPUT: i32 = 3;
    pub const BUSY: i32 = 4;
    pub const SIGHUP: i32 = 129;
    pub const SIGINT: i32 = 130;
    pub const SIGTERM: i32 = 143;
}

/// Defines `ErrorKind` from one table, so that a kind cannot exist without its word, exit code
/// and meaning, nor be left out of `ErrorKind::ALL` (the man page and its test read that).
macro_rules! error_kinds {
    ($($kind:ident => $word:literal, $exit:expr, $meaning:literal;)+) => {
        /// One stable word per failure class; the record's `error.kind`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorKind {
            $($kind,)+
        }

        impl ErrorKind {
            /// Every kind, in the order `man ugw` lists them.
            pub const ALL: &[ErrorKind] = &[$(ErrorKind::$kind,)+];

            #[must_use]
            pub fn word(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $word,)+
                }
            }

            /// The exit code a failure of this kind ends with. `Interrupted` says 130 here;
            /// the actual signal is carried by the error itself.
            #[must_use]
            pub fn exit_code(self) -> i32 {
                match self {
                    $(ErrorKind::$kind => $exit,)+
                }
            }

            /// One line for the man page.
            #[must_use]
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $meaning,)+
                }
            }
        }
    };
}

error_kinds! {
    Usage => "usage", exit::USAGE,
        "bad flags or an unreadable configuration; nothing was attempted";
    BadRecord => "bad_record", exit::USAGE,
        "the record on stdin or in --record is not a ugw record (or too large, or of an unknown major version)";
    NoInput => "no_input", exit::NO_INPUT,
        "the tool before this one in the pipe wrote no record (it crashed or was killed)";
    Busy => "busy", exit::BUSY,
        "another run holds the lock this job needs, past --lock-timeout";
    Timeout => "timeout", exit::FAILED,
        "the deadline (--timeout) passed before the job succeeded";
    FailCondition => "fail_condition", exit::FAILED,
        "a fail-fast condition (--fail-if, --fail-status) matched; waiting longer would not help";
    ProcessExited => "process_exited", exit::FAILED,
        "the process a wait watches (--pid, --pidfile) exited; its exit status is in the message when it could be known";
    Io => "io", exit::FAILED,
        "reading or writing a file failed";
    NoSpace => "no_space", exit::FAILED,
        "the destination file system has no room for what was to be written; nothing was replaced";
    Network => "network", exit::FAILED,
        "a remote end could not be reached or broke off (name resolution, refused, reset, TLS)";
    Refused => "refused", exit::FAILED,
        "a remote end refused a change it was asked for (an HAProxy socket without admin level, a drain endpoint answering an error); what the step had changed elsewhere was put back";
    NotFound => "not_found", exit::FAILED,
        "what the job works on (a file, a remote object, a server, a version) does not exist";
    ChecksumMismatch => "checksum_mismatch", exit::FAILED,
        "a digest did not match the expected one (a download, an applied migration); nothing was kept";
    BadSignature => "bad_signature", exit::FAILED,
        "a signature did not verify with the given public key; nothing was kept";
    UnsafeInput => "unsafe_input", exit::FAILED,
        "input that would act outside its place (an archive entry escaping its folder, a link out of it) was refused";
    Corrupt => "corrupt", exit::FAILED,
        "stored data failed its check (a flipped byte, a truncated archive, a missing sidecar)";
    SmokeFailed => "smoke_failed", exit::FAILED,
        "the new artifact failed its smoke test; it was not put in place";
    RestartFailed => "restart_failed", exit::FAILED,
        "the service did not restart after the switch; the switch was undone";
    MigrationFailed => "migration_failed", exit::FAILED,
        "a migration's SQL failed: in a transaction, rolled back with nothing recorded; outside one, it leaves the database dirty";
    Dirty => "dirty", exit::FAILED,
        "a migration failed half-way earlier; the database needs fixing and resolving before anything else runs";
    OutOfOrder => "out_of_order", exit::FAILED,
        "a pending migration is older than one already applied";
    UnsafeMigration => "unsafe_migration", exit::FAILED,
        "a pre-deploy migration would break the release still running or lock a busy table (lint); nothing ran";
    PrePending => "pre_pending", exit::FAILED,
        "post-deploy migrations were asked for while pre-deploy ones are still pending; nothing ran";
    Pooler => "pooler", exit::FAILED,
        "a connection pooler stands between ugw and the database, where a direct connection is needed";
    CheckFailed => "check_failed", exit::FAILED,
        "one or more checks did not hold; the message names them";
    InsufficientData => "insufficient_data", exit::FAILED,
        "too few samples to judge; never taken as a pass";
    Interrupted => "interrupted", exit::SIGINT,
        "SIGHUP, SIGINT or SIGTERM arrived; the tool stopped, removed its temp files and wrote the record";
    Internal => "internal", exit::FAILED,
        "a bug in ugw; please report it with the record";
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// A failure: its kind, a one-line message for the operator, the exit code, and what the
/// tool had found out so far (kept in the failed step's `result`).
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub exit: i32,
    pub result: Option<Value>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            exit: kind.exit_code(),
            result: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Usage, message)
    }

    pub fn bad_record(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::BadRecord, message)
    }

    pub fn io(context: impl fmt::Display, err: &std::io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{context}: {err}"))
    }

    /// A failed write: `no_space` when the file system is full (or the quota spent), so an
    /// operator sees the cause and the exit says it; otherwise as `io`.
    pub fn io_write(context: impl fmt::Display, err: &std::io::Error) -> Self {
        let full = [rustix::io::Errno::NOSPC, rustix::io::Errno::DQUOT]
            .iter()
            .any(|errno| err.raw_os_error() == Some(errno.raw_os_error()));
        if full {
            Error::new(ErrorKind::NoSpace, format!("{context}: {err}"))
        } else {
            Error::io(context, err)
        }
    }

    /// The run was stopped by `signal` (SIGHUP, SIGINT or SIGTERM): exit 128 + the signal.
    #[must_use]
    pub fn interrupted(signal: i32) -> Self {
        let (name, code) = match signal {
            libc::SIGHUP => ("SIGHUP", exit::SIGHUP),
            libc::SIGTERM => ("SIGTERM", exit::SIGTERM),
            _ => ("SIGINT", exit::SIGINT),
        };
        Error {
            kind: ErrorKind::Interrupted,
            message: format!("interrupted by {name}"),
            exit: code,
            result: None,
        }
    }

    /// Keep what the tool found out so far in the failed step.
    #[must_use]
    pub fn with_result(mut self, result: Value) -> Self {
        self.result = Some(result);
        self
    }

    /// Keep a tool's typed result in the failed step: the failure twin of
    /// `StepResult::typed`, so that a later `--rollback` reads what was done so far.
    #[must_use]
    pub fn with_typed<T: ToolResult>(self, result: &T) -> Self {
        self.with_result(crate::results::to_json(result))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_keeps_a_typed_result_as_a_success_would() {
        let fetched = crate::results::Fetched {
            url: "https://example.com/app.tgz".into(),
            path: "/srv/app.tgz".into(),
            sha256: "ab".repeat(32),
            bytes: 3,
            version: Some("1.2.3".into()),
            verified: true,
            resumed: false,
            manifest_sha256: None,
        };
        let failed = Error::new(ErrorKind::Timeout, "too slow").with_typed(&fetched);
        let ok = crate::results::StepResult::typed(true, &fetched);
        assert_eq!(failed.result.as_ref(), Some(&ok.result));
        assert_eq!((failed.kind, failed.exit), (ErrorKind::Timeout, 1));
    }

    #[test]
    fn a_full_disk_or_quota_is_no_space_and_other_write_errors_are_io() {
        let os = |errno: rustix::io::Errno| std::io::Error::from_raw_os_error(errno.raw_os_error());
        for errno in [rustix::io::Errno::NOSPC, rustix::io::Errno::DQUOT] {
            let e = Error::io_write("cannot write x", &os(errno));
            assert_eq!((e.kind, e.exit), (ErrorKind::NoSpace, 1));
            assert!(e.message.starts_with("cannot write x: "), "{}", e.message);
        }
        assert_eq!(
            Error::io_write("w", &os(rustix::io::Errno::IO)).kind,
            ErrorKind::Io
        );
    }

    #[test]
    fn every_kind_has_a_distinct_word_a_documented_code_and_a_one_line_meaning() {
        let mut words: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.word()).collect();
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), ErrorKind::ALL.len(), "two kinds share a word");
        for kind in ErrorKind::ALL {
            assert!(
                kind.word()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_'),
                "{kind}"
            );
            assert!(
                [
                    exit::FAILED,
                    exit::USAGE,
                    exit::NO_INPUT,
                    exit::BUSY,
                    exit::SIGINT
                ]
                .contains(&kind.exit_code()),
                "{kind}"
            );
            assert!(!kind.meaning().contains('\n') && !kind.meaning().ends_with('.'));
        }
        for word in [
            "network",
            "checksum_mismatch",
            "bad_signature",
            "unsafe_input",
            "no_space",
            "busy",
            "smoke_failed",
            "restart_failed",
            "dirty",
            "pooler",
            "check_failed",
            "insufficient_data",
            "corrupt",
            "out_of_order",
            "timeout",
        ] {
            assert!(
                ErrorKind::ALL.iter().any(|k| k.word() == word),
                "{word} is missing"
            );
        }
    }
}
