//! Fluent assertions on a finished tool run (`Outcome`): `.succeeds()`, `.fails_with(Kind::…)`,
//! `.stderr_has(…)`, `.step("ugw-…")`. Each failure prints the exit code, the whole stdout and
//! the whole stderr (and the case, for a table test), so a red test says what the tool did
//! without a rerun. The self-tests at the end prove each assertion fails when it should.

use super::{Outcome, Step};
use std::fmt::Display;
use std::time::Duration;

/// The failure classes of `shared/src/error.rs`: the record's `error.kind` word and the exit
/// code come from its one table, so an assertion cannot drift from the tools.
pub use ugw_shared::error::ErrorKind as Kind;

/// Exit codes of a run stopped by a signal (SIGHUP, SIGINT, SIGTERM): 128 + the signal.
const INTERRUPTED_EXITS: [i32; 3] = [129, 130, 143];

impl Outcome {
    /// The same outcome, its assertion failures headed by `case` (which row of a table test).
    #[must_use]
    pub fn case(mut self, case: impl Display) -> Self {
        self.case = Some(case.to_string());
        self
    }

    /// Fail the test with `what` and everything the run showed, unless `holds`.
    #[track_caller]
    fn check(&self, holds: bool, what: impl FnOnce() -> String) -> &Self {
        if !holds {
            let case = self
                .case
                .as_deref()
                .map(|c| format!("{c}: "))
                .unwrap_or_default();
            panic!(
                "{case}{}\nexit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                what(),
                self.code,
                visible(&self.stdout),
                visible(&self.stderr)
            );
        }
        self
    }

    /// It exited 0.
    #[track_caller]
    pub fn succeeds(&self) -> &Self {
        self.check(self.code == 0, || "expected exit 0".to_string())
    }

    /// It failed as `kind` says: the exit code of that kind (any signal's for `Interrupted`)
    /// and the record's last step names that kind.
    #[track_caller]
    pub fn fails_with(&self, kind: Kind) -> &Self {
        let code_fits = if kind == Kind::Interrupted {
            INTERRUPTED_EXITS.contains(&self.code)
        } else {
            self.code == kind.exit_code()
        };
        self.check(code_fits, || {
            format!("expected exit {} ({})", kind.exit_code(), kind.word())
        });
        let found = self.last_step().error_kind().to_string();
        self.check(found == kind.word(), || {
            format!(
                "expected error kind {:?}, the record says {found:?}",
                kind.word()
            )
        })
    }

    /// Stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: impl AsRef<str>) -> &Self {
        let needle = needle.as_ref();
        self.check(self.stderr.contains(needle), || {
            format!("stderr lacks {needle:?}")
        })
    }

    /// Stderr does not contain `needle`.
    #[track_caller]
    pub fn stderr_lacks(&self, needle: impl AsRef<str>) -> &Self {
        let needle = needle.as_ref();
        self.check(!self.stderr.contains(needle), || {
            format!("stderr has {needle:?}")
        })
    }

    /// Stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: impl AsRef<str>) -> &Self {
        let needle = needle.as_ref();
        self.check(self.stdout.contains(needle), || {
            format!("stdout lacks {needle:?}")
        })
    }

    /// Stdout does not contain `needle`.
    #[track_caller]
    pub fn stdout_lacks(&self, needle: impl AsRef<str>) -> &Self {
        let needle = needle.as_ref();
        self.check(!self.stdout.contains(needle), || {
            format!("stdout has {needle:?}")
        })
    }

    /// Neither stdout nor stderr contains `secret` (a test's own stand-in secret, so the
    /// failure may name it).
    #[track_caller]
    pub fn never_shows(&self, secret: impl AsRef<str>) -> &Self {
        let secret = secret.as_ref();
        self.check(!self.stdout.contains(secret), || {
            format!("stdout shows {secret:?}")
        });
        self.check(!self.stderr.contains(secret), || {
            format!("stderr shows {secret:?}")
        })
    }

    /// How long the run's own step took by the tool's clock (the record's `elapsed_ms`): what
    /// a timing assertion reads instead of the test's wall clock, which also counts starting
    /// the process and a busy machine.
    #[track_caller]
    pub fn took(&self) -> Duration {
        Duration::from_millis(self.last_step().elapsed_ms)
    }

    /// The last step `tool` wrote in the record on stdout, for asserts on its fields.
    #[track_caller]
    pub fn step(&self, tool: &str) -> Step {
        let steps = self.record().steps;
        let tools: Vec<String> = steps.iter().map(|s| s.tool.clone()).collect();
        let found = steps.into_iter().rev().find(|s| s.tool == tool);
        self.check(found.is_some(), || {
            format!("no {tool} step in the record (steps: {tools:?})")
        });
        found.unwrap_or_else(|| unreachable!("checked just above"))
    }
}

/// `text` with its control characters (but new lines and tabs) escaped: a failure shows a
/// raw escape the tool let through instead of sending it to the terminal.
fn visible(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

// ---- the assertions themselves fail when they should ----

#[cfg(test)]
mod tests {
    use super::{Duration, Kind, Outcome};

    fn outcome(code: i32, stdout: &str, stderr: &str) -> Outcome {
        Outcome {
            code,
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
            elapsed: Duration::ZERO,
            case: None,
        }
    }

    /// A record with one step of `tool` that failed as `kind` with exit `exit`.
    fn failed(tool: &str, kind: &str, exit: i32) -> String {
        let step = serde_json::json!({
            "tool": tool, "tool_version": "0.1.0", "run": "r", "host": "h",
            "started": "2026-11-21T23:59:01.123Z", "elapsed_ms": 1, "status": "failed",
            "exit": exit, "changed": false, "dry_run": false,
            "error": {"kind": kind, "message": "m"}
        });
        format!(
            "{}\n",
            serde_json::json!({"ugw": 1, "run": "r", "ok": false, "steps": [step]})
        )
    }

    /// Whether `check` panics (its message is printed by the panic hook, as in a real test).
    fn panics(check: impl FnOnce() + std::panic::UnwindSafe) -> bool {
        std::panic::catch_unwind(check).is_err()
    }

    #[test]
    fn succeeds_wants_exit_0() {
        outcome(0, "", "").succeeds();
        assert!(panics(|| {
            outcome(1, "", "").succeeds();
        }));
    }

    #[test]
    fn fails_with_wants_the_exit_code_and_the_kind_of_the_record() {
        outcome(4, &failed("ugw-swap", "busy", 4), "").fails_with(Kind::Busy);
        outcome(143, &failed("ugw-swap", "interrupted", 143), "").fails_with(Kind::Interrupted);
        // The right kind with another kind's exit code, and the other way round.
        assert!(panics(|| {
            outcome(1, &failed("ugw-swap", "busy", 1), "").fails_with(Kind::Busy);
        }));
        assert!(panics(|| {
            outcome(4, &failed("ugw-swap", "timeout", 4), "").fails_with(Kind::Busy);
        }));
        // Timeout and Io share exit 1: only the record tells them apart.
        assert!(panics(|| {
            outcome(1, &failed("ugw-swap", "io", 1), "").fails_with(Kind::Timeout);
        }));
        assert!(panics(|| {
            outcome(1, "", "").fails_with(Kind::Timeout);
        }));
        assert!(panics(|| {
            outcome(2, &failed("ugw-swap", "interrupted", 2), "").fails_with(Kind::Interrupted);
        }));
    }

    #[test]
    fn stderr_and_stdout_assertions_read_the_right_stream() {
        let out = outcome(0, "on stdout", "on stderr");
        out.stderr_has("on stderr")
            .stderr_lacks("on stdout")
            .stdout_has("on stdout")
            .stdout_lacks("on stderr")
            .never_shows("elsewhere");
        assert!(panics(|| {
            outcome(0, "on stdout", "on stderr").stderr_has("on stdout");
        }));
        assert!(panics(|| {
            outcome(0, "on stdout", "on stderr").stderr_lacks("on stderr");
        }));
        assert!(panics(|| {
            outcome(0, "on stdout", "on stderr").stdout_has("on stderr");
        }));
        assert!(panics(|| {
            outcome(0, "on stdout", "on stderr").stdout_lacks("on stdout");
        }));
        assert!(panics(|| {
            outcome(0, "a SECRET", "").never_shows("SECRET");
        }));
        assert!(panics(|| {
            outcome(0, "", "a SECRET").never_shows("SECRET");
        }));
    }

    #[test]
    fn took_is_the_record_s_elapsed_ms_not_the_wall_clock() {
        let mut out = outcome(1, &failed("ugw-drain", "refused", 1), "");
        out.elapsed = Duration::from_secs(9);
        assert_eq!(out.took(), Duration::from_millis(1));
    }

    #[test]
    fn step_finds_the_tool_or_fails() {
        let out = outcome(1, &failed("ugw-drain", "refused", 1), "");
        assert_eq!(out.step("ugw-drain").error_kind(), "refused");
        assert!(panics(|| {
            outcome(1, &failed("ugw-drain", "refused", 1), "").step("ugw-swap");
        }));
    }

    #[test]
    fn a_failure_names_its_case_and_shows_both_streams() {
        let failure = std::panic::catch_unwind(|| {
            outcome(3, "the record", "what it said")
                .case("row 7")
                .stderr_has("absent");
        })
        .expect_err("the needle is absent");
        let message = failure
            .downcast_ref::<String>()
            .expect("a formatted message");
        for part in [
            "row 7: ",
            "\"absent\"",
            "exit: 3",
            "the record",
            "what it said",
        ] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
    }
}
