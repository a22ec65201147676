//! Errors carry their exit code and a stable `kind` word, so that only `cli` decides how a
//! run ends and every tool reports the same failure class the same way.

use serde_json::Value;
use std::fmt;

/// Exit codes shared by every tool (see `man ugw`).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NO_INPUT: i32 = 3;
    pub const BUSY: i32 = 4;
    pub const SIGINT: i32 = 130;
    pub const SIGTERM: i32 = 143;
}

/// One stable word per failure class; the record's `error.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Usage,
    BadRecord,
    NoInput,
    Busy,
    Timeout,
    FailCondition,
    Io,
    Interrupted,
    Internal,
    MigrationFailed,
    Dirty,
    Pooler,
    OutOfOrder,
    ChecksumMismatch,
}

impl ErrorKind {
    /// Every kind, in the order `man ugw` lists them.
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::Usage,
        ErrorKind::BadRecord,
        ErrorKind::NoInput,
        ErrorKind::Busy,
        ErrorKind::Timeout,
        ErrorKind::FailCondition,
        ErrorKind::Io,
        ErrorKind::Interrupted,
        ErrorKind::Internal,
        ErrorKind::MigrationFailed,
        ErrorKind::Dirty,
        ErrorKind::Pooler,
        ErrorKind::OutOfOrder,
        ErrorKind::ChecksumMismatch,
    ];

    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::BadRecord => "bad_record",
            ErrorKind::NoInput => "no_input",
            ErrorKind::Busy => "busy",
            ErrorKind::Timeout => "timeout",
            ErrorKind::FailCondition => "fail_condition",
            ErrorKind::Io => "io",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Internal => "internal",
            ErrorKind::MigrationFailed => "migration_failed",
            ErrorKind::Dirty => "dirty",
            ErrorKind::Pooler => "pooler",
            ErrorKind::OutOfOrder => "out_of_order",
            ErrorKind::ChecksumMismatch => "checksum_mismatch",
        }
    }

    /// The exit code a failure of this kind ends with. `Interrupted` says 130 here; the
    /// actual signal (130 or 143) is carried by the error itself.
    #[must_use]
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Usage | ErrorKind::BadRecord => exit::USAGE,
            ErrorKind::NoInput => exit::NO_INPUT,
            ErrorKind::Busy => exit::BUSY,
            ErrorKind::Interrupted => exit::SIGINT,
            ErrorKind::Timeout
            | ErrorKind::FailCondition
            | ErrorKind::Io
            | ErrorKind::Internal
            | ErrorKind::MigrationFailed
            | ErrorKind::Dirty
            | ErrorKind::Pooler
            | ErrorKind::OutOfOrder
            | ErrorKind::ChecksumMismatch => exit::FAILED,
        }
    }

    /// One line for the man page.
    #[must_use]
    pub fn meaning(self) -> &'static str {
        match self {
            ErrorKind::Usage => "bad flags or an unreadable configuration; nothing was attempted",
            ErrorKind::BadRecord => {
                "the record on stdin or in --record is not a ugw record (or too large, or of an unknown major version)"
            }
            ErrorKind::NoInput => {
                "the tool before this one in the pipe wrote no record (it crashed or was killed)"
            }
            ErrorKind::Busy => "another run holds the lock this job needs, past --lock-timeout",
            ErrorKind::Timeout => "the deadline (--timeout) passed before the job succeeded",
            ErrorKind::FailCondition => {
                "a fail-fast condition (--fail-if, --fail-status) matched; waiting longer would not help"
            }
            ErrorKind::Io => "reading or writing a file failed",
            ErrorKind::Interrupted => {
                "SIGINT or SIGTERM arrived; the tool stopped, removed its temp files and wrote the record"
            }
            ErrorKind::Internal => "a bug in ugw; please report it with the record",
            ErrorKind::MigrationFailed => {
                "a migration's SQL failed: in a transaction, rolled back with nothing recorded; outside one, it leaves the database dirty"
            }
            ErrorKind::Dirty => {
                "a migration outside a transaction failed half-way; fix the database, then ugw-migrate resolve"
            }
            ErrorKind::Pooler => {
                "the database URL points at a connection pooler; session locks need a direct connection"
            }
            ErrorKind::OutOfOrder => {
                "a pending migration is older than the newest applied one (--allow-out-of-order)"
            }
            ErrorKind::ChecksumMismatch => {
                "an applied migration's file has changed since it ran (--allow-changed)"
            }
        }
    }
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

    /// The run was stopped by `signal` (SIGINT or SIGTERM).
    #[must_use]
    pub fn interrupted(signal: i32) -> Self {
        let (name, code) = if signal == libc::SIGTERM {
            ("SIGTERM", exit::SIGTERM)
        } else {
            ("SIGINT", exit::SIGINT)
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
