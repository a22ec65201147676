//! Where the incoming record comes from when it is not `--record FILE`: the stdin rules of
//! DESIGN.md, in order. The rules exist so that a tool never eats a shell's script, never
//! consumes what is not a record, and never silently starts afresh when the tool before it
//! in a pipe died.

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::record::{MAX_BYTES, Record};
use crate::report::Reporter;
use crate::scrub::excerpt;
use std::io::{IsTerminal, Read};
use std::time::{Duration, Instant};

/// `--in`: where stdin stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// The six rules decide.
    Auto,
    /// `--in -`: read stdin whatever it is.
    Stdin,
    /// `--in none`: never touch stdin.
    None,
}

/// How long a peek waits for a first byte before it says so on stderr.
const HINT_AFTER: Duration = Duration::from_secs(2);
const HINT: &str = "waiting for a record on stdin (from the tool before this one in the pipe); \
                    use --in none to start without one";

/// The incoming record, or `None` for a new run.
pub fn read_incoming(
    mode: InputMode,
    reporter: &Reporter,
    cancel: &Cancel,
) -> Result<Option<Record>> {
    match mode {
        InputMode::None => Ok(None),
        InputMode::Stdin => {
            let bytes = read_all(reporter, cancel)?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Err(no_input());
            }
            Record::parse(&bytes).map(Some)
        }
        InputMode::Auto => {
            if std::io::stdin().is_terminal() {
                return Ok(None);
            }
            auto(reporter, cancel)
        }
    }
}

fn no_input() -> Error {
    Error::new(
        ErrorKind::NoInput,
        "no record on stdin: the tool before this one in the pipe wrote nothing (did it crash or get killed?); \
         nothing was attempted",
    )
}

#[cfg(target_os = "linux")]
fn auto(reporter: &Reporter, cancel: &Cancel) -> Result<Option<Record>> {
    use crate::procfs::{FileId, StdinKind, shell_ancestors};

    let Some((ours, kind)) = FileId::of_stdin() else {
        return Ok(None); // stdin is closed
    };
    let Some(shells) = shell_ancestors() else {
        return read_parse(reporter, cancel);
    };
    // Rule 3: never touch the script of a shell, however deep we are nested below it. A shell
    // whose fd 0 we may not see (it runs as another user) is taken to be reading ours unless
    // it is interactive (it has a terminal, and that terminal is its fd 0, not our stdin).
    let reads_our_stdin = |s: &crate::procfs::Shell| match s.stdin {
        Some(id) => id == ours,
        None => !s.has_tty,
    };
    if shells.iter().any(|s| s.reads_stdin && reads_our_stdin(s)) {
        return Ok(None);
    }
    // Rule 5 versus 6: made for us, or inherited from the shell that ran us? When the nearest
    // shell's fd 0 cannot be seen, inherited: a record is still read, nothing else is refused.
    let made_for_us = matches!(kind, StdinKind::Pipe | StdinKind::File | StdinKind::Socket)
        && shells
            .first()
            .and_then(|s| s.stdin)
            .is_some_and(|id| id != ours);
    // Rule 4: look before consuming.
    let peek = match kind {
        StdinKind::Pipe => peek::pipe(reporter, cancel)?,
        StdinKind::Socket => peek::socket(reporter, cancel)?,
        StdinKind::File => peek::file()?,
        StdinKind::Other => return Ok(None),
    };
    match peek {
        Peek::Record => read_parse(reporter, cancel),
        Peek::Empty if made_for_us && kind == StdinKind::File => {
            Err(Error::bad_record("stdin is an empty file, not a record"))
        }
        Peek::Empty if made_for_us => Err(no_input()),
        Peek::Other(first) if made_for_us => Err(Error::bad_record(format!(
            "stdin does not hold a ugw record (it starts with {first}); nothing was read from it. \
             Use --in none to start a new record"
        ))),
        Peek::Empty | Peek::Other(_) => Ok(None),
    }
}

#[cfg(not(target_os = "linux"))]
fn auto(reporter: &Reporter, cancel: &Cancel) -> Result<Option<Record>> {
    // Without /proc and tee(2) only rules 1 and 2 hold: stdin is read.
    let bytes = read_all(reporter, cancel)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Record::parse(&bytes).map(Some)
}

#[allow(dead_code)] // not every platform peeks
enum Peek {
    /// The first non-blank byte is `{`.
    Record,
    /// End of input before any non-blank byte.
    Empty,
    /// Something else; the first bytes, quoted.
    Other(String),
}

fn read_parse(reporter: &Reporter, cancel: &Cancel) -> Result<Option<Record>> {
    let bytes = read_all(reporter, cancel)?;
    Record::parse(&bytes).map(Some)
}

/// Read stdin to its end (at most the record cap plus one byte), waking for signals.
fn read_all(reporter: &Reporter, cancel: &Cancel) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let limit = MAX_BYTES + 1;
    let started = Instant::now();
    let mut stdin = std::io::stdin().lock();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        wait_readable(reporter, cancel, started)?;
        let n = match stdin.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("cannot read stdin", &e)),
        };
        if n == 0 {
            return Ok(bytes);
        }
        bytes.extend_from_slice(&chunk[..n]);
        if bytes.len() >= limit {
            return Err(Error::bad_record(format!(
                "the record on stdin is larger than {} MiB; refusing it",
                MAX_BYTES / (1024 * 1024)
            )));
        }
    }
}

/// Block until stdin has data or end of input, checking for signals, with the hint after 2 s.
fn wait_readable(reporter: &Reporter, cancel: &Cancel, started: Instant) -> Result<()> {
    loop {
        cancel.check()?;
        let mut fds = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&raw mut fds, 1, 20) };
        if ready != 0 {
            // Ready, hung up, or an error that the read itself will report.
            return Ok(());
        }
        if started.elapsed() >= HINT_AFTER {
            reporter.once("stdin-hint", HINT);
        }
    }
}

#[cfg(target_os = "linux")]
mod peek {
    use super::{Cancel, Error, Peek, Reporter, Result, excerpt, wait_readable};
    use std::time::{Duration, Instant};

    fn classify(bytes: &[u8]) -> Option<Peek> {
        let first = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
        if bytes[first] == b'{' {
            Some(Peek::Record)
        } else {
            Some(Peek::Other(format!("'{}'", excerpt(&bytes[first..], 40))))
        }
    }

    /// A pipe: `tee(2)` its content into a private pipe, so nothing is consumed.
    pub(super) fn pipe(reporter: &Reporter, cancel: &Cancel) -> Result<Peek> {
        let mut ends = [0i32; 2];
        // SAFETY: `ends` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(Error::io(
                "cannot create a pipe to peek at stdin",
                &std::io::Error::last_os_error(),
            ));
        }
        let [read_end, write_end] = ends;
        let result = tee_loop(read_end, write_end, reporter, cancel);
        // SAFETY: both descriptors are ours and closed once.
        unsafe {
            libc::close(read_end);
            libc::close(write_end);
        }
        result
    }

    fn tee_loop(
        read_end: i32,
        write_end: i32,
        reporter: &Reporter,
        cancel: &Cancel,
    ) -> Result<Peek> {
        let started = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            wait_readable(reporter, cancel, started)?;
            // SAFETY: plain syscalls on descriptors we own (and fd 0).
            let n = unsafe { libc::tee(0, write_end, buf.len(), libc::SPLICE_F_NONBLOCK) };
            if n == 0 {
                return Ok(Peek::Empty); // writers gone, nothing written
            }
            if n < 0 {
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EINVAL) {
                    // Not a pipe after all: fall back to reading it.
                    return Ok(Peek::Record);
                }
                cancel.sleep(Duration::from_millis(5))?;
                continue;
            }
            // Drain the private copy; tee copies from the start of stdin's buffer each time.
            let mut got = Vec::new();
            loop {
                // SAFETY: `buf` is valid for its length.
                let r = unsafe { libc::read(read_end, buf.as_mut_ptr().cast(), buf.len()) };
                if r <= 0 {
                    break;
                }
                got.extend_from_slice(&buf[..r as usize]);
            }
            if let Some(peek) = classify(&got) {
                return Ok(peek);
            }
            // Only blanks so far: wait for more, or for the end.
            if hung_up() {
                // SAFETY: as above.
                let again = unsafe { libc::tee(0, write_end, buf.len(), libc::SPLICE_F_NONBLOCK) };
                if again <= 0 || again as usize == got.len() {
                    return Ok(Peek::Empty);
                }
            }
            cancel.sleep(Duration::from_millis(10))?;
        }
    }

    fn hung_up() -> bool {
        let mut fds = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&raw mut fds, 1, 0) };
        fds.revents & libc::POLLHUP != 0
    }

    /// A socket: `recv(MSG_PEEK)`.
    pub(super) fn socket(reporter: &Reporter, cancel: &Cancel) -> Result<Peek> {
        let started = Instant::now();
        let mut buf = vec![0u8; 4096];
        loop {
            wait_readable(reporter, cancel, started)?;
            // SAFETY: `buf` is valid for its length.
            let n = unsafe {
                libc::recv(
                    0,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                )
            };
            if n == 0 {
                return Ok(Peek::Empty);
            }
            if n < 0 {
                cancel.sleep(Duration::from_millis(5))?;
                continue;
            }
            if let Some(peek) = classify(&buf[..n as usize]) {
                return Ok(peek);
            }
            if n as usize == buf.len() {
                buf.resize(buf.len() * 2, 0);
            } else {
                cancel.sleep(Duration::from_millis(10))?;
            }
        }
    }

    /// A regular file: `pread` from the current offset, which stays where it was.
    pub(super) fn file() -> Result<Peek> {
        // SAFETY: lseek with SEEK_CUR only reports the offset.
        let start = unsafe { libc::lseek(0, 0, libc::SEEK_CUR) };
        if start < 0 {
            return Ok(Peek::Record);
        }
        let mut offset = start;
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        loop {
            // SAFETY: `buf` is valid for its length.
            let n = unsafe { libc::pread(0, buf.as_mut_ptr().cast(), buf.len(), offset) };
            if n <= 0 {
                return Ok(Peek::Empty);
            }
            seen.extend_from_slice(&buf[..n as usize]);
            if let Some(peek) = classify(&seen) {
                return Ok(peek);
            }
            offset += n as libc::off_t;
        }
    }
}
