//! `Ctx`: what every tool's `run` is handed: the incoming record, the reporter (the only
//! stderr writer), the cancel token, the deadline, `--lock-timeout`, dry-run, temp-file guards
//! and the host id: the common flags a tool acts on, parsed once by `cli`.

use crate::cancel::Cancel;
use crate::record::{Record, ThisRun};
use crate::report::Reporter;
use crate::scrub::Scrubber;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `--lock-timeout` when nothing set it: `cli`'s fallback, and a `Ctx` made outside `cli`
/// (in a test).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`Ctx::step_timeout`] is without a `--timeout`: the longest a flag accepts, so the
/// deadline it gives is later than any a run reaches and still a valid `Instant`.
pub const NO_TIMEOUT: Duration = crate::time::MAX_DURATION;

#[derive(Debug)]
pub struct Ctx {
    pub tool: String,
    pub host: String,
    pub reporter: Reporter,
    pub cancel: Cancel,
    pub dry_run: bool,
    /// When `run` was called; the deadline counts from here, not from when the tool before
    /// us in the pipe started.
    pub started: Instant,
    timeout: Option<Duration>,
    lock_timeout: Duration,
    record: Record,
    temp_paths: Vec<PathBuf>,
}

impl Ctx {
    #[must_use]
    pub fn new(tool: &str, host: &str, reporter: Reporter, cancel: Cancel, record: Record) -> Self {
        Ctx {
            tool: tool.to_string(),
            host: host.to_string(),
            reporter,
            cancel,
            dry_run: false,
            started: Instant::now(),
            timeout: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            record,
            temp_paths: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// `--lock-timeout`, as `cli` parsed it (with the tool's own default, if it declares one).
    #[must_use]
    pub fn with_lock_timeout(mut self, lock_timeout: Duration) -> Self {
        self.lock_timeout = lock_timeout;
        self
    }

    #[must_use]
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// The record as it came in (earlier steps), for typed lookups.
    #[must_use]
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// The earlier steps this tool may act on: this run's, on this host.
    #[must_use]
    pub fn this_run(&self) -> ThisRun<'_> {
        self.record.this_run(&self.host)
    }

    /// `--timeout`, if the tool has one.
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The hard deadline of this step, if any.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| self.started + t)
    }

    /// `--timeout` of a tool that declares a default one (`Tool::default_timeout`): `cli`
    /// always gives it a value then, so such a tool never handles a missing one (nor restates
    /// its default). Without a timeout it is [`NO_TIMEOUT`]: a wait that must end somewhere
    /// ends after any a run could reach.
    #[must_use]
    pub fn step_timeout(&self) -> Duration {
        self.timeout.unwrap_or(NO_TIMEOUT)
    }

    /// The hard deadline as an instant, for a tool that declares a default `--timeout`:
    /// [`Ctx::step_timeout`] from the start of the step.
    #[must_use]
    pub fn step_deadline(&self) -> Instant {
        self.started + self.step_timeout()
    }

    /// `--lock-timeout`: how long to wait for a lock another run holds (exit 4 after it).
    #[must_use]
    pub fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    #[must_use]
    pub fn scrubber(&self) -> &Scrubber {
        self.reporter.scrubber()
    }

    /// Remove `path` on every exit path unless it is released first (`keep_temp`).
    pub fn track_temp(&mut self, path: &Path) {
        self.temp_paths.push(path.to_path_buf());
    }

    /// The temp file got its final name (or was removed): stop tracking it.
    pub fn keep_temp(&mut self, path: &Path) {
        self.temp_paths.retain(|p| p != path);
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        for path in self.temp_paths.drain(..) {
            if path.is_dir() {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_temp_files_are_removed_on_every_exit_path() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept");
        let dropped = dir.path().join("dropped");
        let folder = dir.path().join("unpacking");
        std::fs::write(&kept, "x").unwrap();
        std::fs::write(&dropped, "x").unwrap();
        std::fs::create_dir_all(folder.join("sub")).unwrap();
        let reporter = Reporter::new("ugw-test", true, Scrubber::default());
        let record = Record::new("r".into());
        let mut ctx = Ctx::new("ugw-test", "h", reporter, Cancel::default(), record);
        for path in [&kept, &dropped, &folder] {
            ctx.track_temp(path);
        }
        ctx.keep_temp(&kept);
        drop(ctx);
        assert!(kept.exists());
        assert!(!dropped.exists() && !folder.exists());
    }

    #[test]
    fn the_deadline_counts_from_the_run_and_only_with_a_timeout() {
        let make = || {
            let reporter = Reporter::new("ugw-test", true, Scrubber::default());
            Ctx::new(
                "ugw-test",
                "h",
                reporter,
                Cancel::default(),
                Record::new("r".into()),
            )
        };
        assert_eq!(
            make().deadline(),
            None,
            "a tool without a timeout has no deadline"
        );
        let ctx = make().with_timeout(Some(Duration::from_secs(90)));
        assert_eq!(ctx.deadline(), Some(ctx.started + Duration::from_secs(90)));
        assert_eq!(ctx.step_deadline(), ctx.started + Duration::from_secs(90));
        assert_eq!(ctx.step_timeout(), Duration::from_secs(90));
        let untimed = make();
        assert_eq!(untimed.step_deadline(), untimed.started + NO_TIMEOUT);
    }

    #[test]
    fn the_lock_timeout_is_the_one_cli_parsed() {
        let reporter = Reporter::new("ugw-test", true, Scrubber::default());
        let ctx = Ctx::new(
            "ugw-test",
            "h",
            reporter,
            Cancel::default(),
            Record::new("r".into()),
        );
        assert_eq!(ctx.lock_timeout(), DEFAULT_LOCK_TIMEOUT);
        let ctx = ctx.with_lock_timeout(Duration::from_secs(60));
        assert_eq!(ctx.lock_timeout(), Duration::from_secs(60));
    }
}
