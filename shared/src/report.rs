//! The reporter: the only writer of stderr. One line per meaningful event, prefixed with the
//! tool's name, scrubbed, its control characters made visible (remote text cannot drive the
//! terminal), quiet when asked, coloured only for a terminal without `NO_COLOR`. Also the
//! progress of a long step: a bar on a terminal, a heartbeat line in a log.

use crate::scrub::{Scrubber, escape_controls};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a long step says it is alive when stderr is not a terminal (a CI log).
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// The keys of the things said once (`once`), per process.
static SAID_ONCE: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[derive(Debug, Clone)]
pub struct Reporter {
    tool: String,
    quiet: bool,
    terminal: bool,
    color: bool,
    scrubber: Scrubber,
    /// The bar on screen, if any: lines are written around it, not through it.
    bar: Arc<Mutex<Option<ProgressBar>>>,
    sink: Sink,
}

/// Where the lines go: stderr, or a buffer the unit tests read.
#[derive(Debug, Clone)]
enum Sink {
    Stderr,
    #[cfg(test)]
    Buffer(Arc<Mutex<Vec<u8>>>),
}

impl Sink {
    fn draw_target(&self) -> ProgressDrawTarget {
        match self {
            Sink::Stderr => ProgressDrawTarget::stderr(),
            #[cfg(test)]
            Sink::Buffer(_) => ProgressDrawTarget::hidden(),
        }
    }
}

impl Reporter {
    #[must_use]
    pub fn new(tool: &str, quiet: bool, scrubber: Scrubber) -> Self {
        let terminal = std::io::stderr().is_terminal();
        Reporter {
            tool: tool.to_string(),
            quiet,
            terminal,
            color: terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            scrubber,
            bar: Arc::default(),
            sink: Sink::Stderr,
        }
    }

    #[must_use]
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// `--quiet`: only errors are said (a table for people is not drawn either).
    #[must_use]
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// A progress event (`ugw-fetch: verified sha256 …`); silent with --quiet.
    pub fn info(&self, message: &str) {
        if !self.quiet {
            self.line("", message);
        }
    }

    /// Something the operator should look at, though the job goes on; silent with --quiet.
    pub fn warn(&self, message: &str) {
        if !self.quiet {
            self.line(
                if self.color {
                    "\x1b[33mwarning:\x1b[0m "
                } else {
                    "warning: "
                },
                message,
            );
        }
    }

    /// Why the job failed; always shown.
    pub fn error(&self, message: &str) {
        self.line(
            if self.color {
                "\x1b[31merror:\x1b[0m "
            } else {
                "error: "
            },
            message,
        );
    }

    /// Text already formatted for a human (clap's usage error), written as it is but for its
    /// control characters (it quotes what was typed); always shown.
    pub fn block(&self, text: &str) {
        let text = self.scrubber.scrub_str(text);
        let lines: Vec<_> = text.trim_end_matches('\n').split('\n').collect();
        let visible: Vec<_> = lines.iter().map(|l| escape_controls(l)).collect();
        self.write(&format!("{}\n", visible.join("\n")));
    }

    /// Said once per process under `key`, however often it is asked (the waiting-for-stdin
    /// hint); silent with --quiet.
    pub fn once(&self, key: &str, message: &str) {
        self.once_with(key, || Some(message.to_string()));
    }

    /// `once`, with the message made only the first time (`None`: nothing to say, and the key
    /// is spent all the same).
    pub fn once_with(&self, key: &str, message: impl FnOnce() -> Option<String>) {
        let mut said = SAID_ONCE.lock().unwrap_or_else(PoisonError::into_inner);
        if !said.iter().any(|k| k == key) {
            said.push(key.to_string());
            drop(said);
            if let Some(message) = message() {
                self.info(&message);
            }
        }
    }

    /// The progress of a long step towards `total` (unknown: `None`): a bar when stderr is a
    /// terminal, otherwise a line every [`HEARTBEAT`] so a CI log shows the step is alive;
    /// nothing with --quiet. Done when dropped.
    #[must_use]
    pub fn progress(&self, total: Option<u64>) -> Progress {
        self.progress_every(total, HEARTBEAT)
    }

    /// [`Reporter::progress`] with a heartbeat of `every` instead of [`HEARTBEAT`].
    #[must_use]
    pub fn progress_every(&self, total: Option<u64>, every: Duration) -> Progress {
        let counter = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
        let mut progress = Progress {
            counter,
            bytes: Arc::default(),
            on_screen: false,
            heartbeat: None,
            reporter: self.clone(),
        };
        if self.quiet {
            return progress;
        }
        if self.terminal {
            progress.counter.set_draw_target(self.sink.draw_target());
            progress.counter.set_prefix(self.tool.clone());
            progress.style();
            if total.is_none() {
                progress
                    .counter
                    .enable_steady_tick(Duration::from_millis(120));
            }
            progress.on_screen = true;
            *self.bar.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(progress.counter.clone());
        } else {
            progress.heartbeat = Some(Heartbeat::start(
                self.clone(),
                progress.counter.clone(),
                Arc::clone(&progress.bytes),
                every,
            ));
        }
        progress
    }

    fn line(&self, label: &str, message: &str) {
        let text = self.scrubber.scrub_str(message);
        self.write(&format!(
            "{}: {label}{}\n",
            self.tool,
            escape_controls(&text)
        ));
    }

    fn write(&self, text: &str) {
        let bar = self
            .bar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let write = || match &self.sink {
            // A closed stderr must not turn into a failed upgrade step.
            Sink::Stderr => {
                let _ = std::io::stderr().lock().write_all(text.as_bytes());
            }
            #[cfg(test)]
            Sink::Buffer(buffer) => buffer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(text.as_bytes()),
        };
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

/// A long step's progress; see [`Reporter::progress`]. Messages are scrubbed.
#[derive(Debug)]
pub struct Progress {
    /// Holds the position, length and message, drawn or not.
    counter: ProgressBar,
    /// Counting bytes, not items; the heartbeat reads it too.
    bytes: Arc<AtomicBool>,
    on_screen: bool,
    heartbeat: Option<Heartbeat>,
    reporter: Reporter,
}

impl Progress {
    /// Count in bytes (`12.0 MiB/40.0 MiB`) rather than items.
    #[must_use]
    pub fn in_bytes(self) -> Self {
        self.bytes.store(true, Ordering::Relaxed);
        self.style();
        self
    }

    pub fn inc(&self, delta: u64) {
        self.counter.inc(delta);
    }

    pub fn set_position(&self, position: u64) {
        self.counter.set_position(position);
    }

    pub fn set_length(&self, total: u64) {
        self.counter.set_length(total);
    }

    /// What is being done (`downloading app-1.2.tar.gz`).
    pub fn set_message(&self, message: &str) {
        let text = self.reporter.scrubber.scrub_str(message);
        self.counter
            .set_message(escape_controls(&text).into_owned());
    }

    #[must_use]
    pub fn position(&self) -> u64 {
        self.counter.position()
    }

    /// Whether a bar is drawn (stderr is a terminal and not --quiet).
    #[must_use]
    pub fn on_screen(&self) -> bool {
        self.on_screen
    }

    fn style(&self) {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let template = match (self.counter.length().is_some(), bytes) {
            (true, false) => "{prefix}: {msg} [{bar:30}] {human_pos}/{human_len} ({eta})",
            (true, true) => {
                "{prefix}: {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
            }
            (false, false) => "{prefix}: {spinner} {msg} {human_pos} ({elapsed})",
            (false, true) => "{prefix}: {spinner} {msg} {bytes} ({bytes_per_sec})",
        };
        let style = ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> ");
        self.counter.set_style(style);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.on_screen {
            self.counter.finish_and_clear();
            *self
                .reporter
                .bar
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
        }
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.stop();
        }
    }
}

/// A thread that says where a step is every period, until stopped.
#[derive(Debug)]
struct Heartbeat {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Heartbeat {
    fn start(
        reporter: Reporter,
        counter: ProgressBar,
        bytes: Arc<AtomicBool>,
        every: Duration,
    ) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                reporter.info(&beat_line(&counter, bytes.load(Ordering::Relaxed)));
            }
        });
        Heartbeat { stop, thread }
    }

    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// `downloading app.tar.gz: 12/40 (30%) after 1m 30s`. The message is scrubbed already.
fn beat_line(counter: &ProgressBar, bytes: bool) -> String {
    let amount = |n: u64| {
        if bytes {
            HumanBytes(n).to_string()
        } else {
            n.to_string()
        }
    };
    let position = counter.position();
    let done = match counter.length() {
        Some(total) if total > 0 => format!(
            "{}/{} ({}%)",
            amount(position),
            amount(total),
            position.saturating_mul(100) / total
        ),
        _ => amount(position),
    };
    let message = counter.message();
    let elapsed = crate::time::human(counter.elapsed());
    if message.is_empty() {
        format!("still working: {done} after {elapsed}")
    } else {
        format!("{message}: {done} after {elapsed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn captured(quiet: bool, terminal: bool) -> (Reporter, Arc<Mutex<Vec<u8>>>) {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let mut reporter = Reporter::new("ugw-test", quiet, Scrubber::default());
        reporter.terminal = terminal;
        reporter.color = false;
        reporter.sink = Sink::Buffer(Arc::clone(&buffer));
        (reporter, buffer)
    }

    fn text(buffer: &Arc<Mutex<Vec<u8>>>) -> String {
        String::from_utf8(buffer.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn interpolated_control_characters_are_made_visible() {
        let (reporter, out) = captured(false, false);
        reporter.info("version \x1b[31mv9\x1b]0;owned\x07, expecting v2");
        reporter.error("held by pid 1 on host\rugw-test: healthy\n");
        reporter.block("error: invalid value '\x1b[2J' for '--x'\n\nUsage: x\n");
        let out = text(&out);
        assert!(
            !out.contains('\x1b') && !out.contains('\r') && !out.contains('\x07'),
            "{out:?}"
        );
        assert!(
            out.contains(r"version \x1b[31mv9\x1b]0;owned\x07, expecting v2"),
            "{out}"
        );
        assert!(
            out.contains(r"error: held by pid 1 on host\rugw-test: healthy\n"),
            "{out}"
        );
        // Every line is one of ours; the usage text keeps its own line breaks.
        assert_eq!(out.lines().count(), 5, "{out}");
        assert!(out.contains("'\\x1b[2J'"), "{out}");
    }

    #[test]
    fn our_own_colours_stay() {
        let (mut reporter, out) = captured(false, false);
        reporter.color = true;
        reporter.error("boom \x1b[0m");
        assert_eq!(
            text(&out),
            "ugw-test: \x1b[31merror:\x1b[0m boom \\x1b[0m\n"
        );
    }

    #[test]
    fn once_is_once_per_key() {
        let (reporter, out) = captured(false, false);
        reporter.once("report-test-a", "first");
        reporter.once("report-test-a", "again");
        reporter.once("report-test-b", "other");
        assert_eq!(text(&out), "ugw-test: first\nugw-test: other\n");
    }

    #[test]
    fn a_heartbeat_says_a_long_step_is_alive() {
        let (reporter, out) = captured(false, false);
        let started = Instant::now();
        let progress = reporter.progress_every(Some(40), Duration::from_millis(50));
        assert!(
            !progress.on_screen(),
            "no bar when stderr is not a terminal"
        );
        progress.set_message("copying token=s3cr3t-in-message");
        progress.set_position(12);
        while text(&out).lines().count() < 2 {
            assert!(started.elapsed() < Duration::from_secs(20), "no heartbeat");
            std::thread::sleep(Duration::from_millis(10));
        }
        // At least one period between a start and two beats.
        assert!(started.elapsed() >= Duration::from_millis(100));
        drop(progress);
        let said = text(&out);
        assert!(!said.contains("s3cr3t"), "{said}");
        assert!(
            said.lines()
                .all(|l| l.starts_with("ugw-test: copying token=***")
                    && l.contains(" 12/40 (30%) after ")),
            "{said}"
        );
        // Stopped when dropped.
        let lines = said.lines().count();
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(text(&out).lines().count(), lines);
    }

    #[test]
    fn quiet_progress_says_nothing() {
        let (reporter, out) = captured(true, false);
        let progress = reporter.progress_every(None, Duration::from_millis(5));
        progress.inc(3);
        std::thread::sleep(Duration::from_millis(60));
        assert!(!progress.on_screen());
        drop(progress);
        assert_eq!(text(&out), "");
    }

    #[test]
    fn a_terminal_gets_a_bar_and_no_heartbeat() {
        // A terminal, but the test's sink: the bar is decided, and drawn nowhere.
        let (reporter, out) = captured(false, true);
        let progress = reporter.progress_every(Some(10), Duration::from_millis(5));
        assert!(progress.on_screen());
        assert!(progress.heartbeat.is_none());
        assert!(
            reporter.bar.lock().unwrap().is_some(),
            "lines go around the bar"
        );
        progress.inc(4);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(progress.position(), 4);
        drop(progress);
        assert_eq!(text(&out), "");
        assert!(reporter.bar.lock().unwrap().is_none(), "the bar is gone");
    }
}
