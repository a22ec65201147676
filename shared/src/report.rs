//! The reporter: the only writer of stderr. One line per meaningful event, prefixed with the
//! tool's name, scrubbed, quiet when asked, coloured only for a terminal without `NO_COLOR`.

use crate::scrub::Scrubber;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone)]
pub struct Reporter {
    tool: String,
    quiet: bool,
    color: bool,
    scrubber: Scrubber,
}

static WAIT_HINT_SHOWN: AtomicBool = AtomicBool::new(false);

impl Reporter {
    #[must_use]
    pub fn new(tool: &str, quiet: bool, scrubber: Scrubber) -> Self {
        let color = std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Reporter {
            tool: tool.to_string(),
            quiet,
            color,
            scrubber,
        }
    }

    #[must_use]
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
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

    /// Text already formatted for a human (clap's usage error), written as it is; always shown.
    pub fn block(&self, text: &str) {
        let text = self.scrubber.scrub_str(text);
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "{}{}",
            text,
            if text.ends_with('\n') { "" } else { "\n" }
        );
    }

    /// Said once per process however often it is asked (the waiting-for-stdin hint).
    pub fn once(&self, message: &str) {
        if !WAIT_HINT_SHOWN.swap(true, Ordering::SeqCst) {
            self.info(message);
        }
    }

    fn line(&self, label: &str, message: &str) {
        let text = self.scrubber.scrub_str(message);
        let mut stderr = std::io::stderr().lock();
        // A closed stderr must not turn into a failed upgrade step.
        let _ = writeln!(stderr, "{}: {label}{text}", self.tool);
    }
}
