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
            Record::parse_owned(bytes).map(Some)
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
        StdinKind::File => peek::file(),
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
    Record::parse_owned(bytes).map(Some)
}

#[allow(dead_code, reason = "not every platform peeks")]
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
    Record::parse_owned(bytes).map(Some)
}

/// Read stdin to its end, waking for signals; more than the record cap is refused as soon as
/// it is seen, so an endless stream costs no more than the cap.
fn read_all(reporter: &Reporter, cancel: &Cancel) -> Result<Vec<u8>> {
    // Room for the whole cap at once: untouched pages cost nothing, and the buffer never
    // moves (growing by doubling would copy and briefly hold twice the record).
    let mut bytes = Vec::with_capacity(MAX_BYTES + 1);
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
        if bytes.len() + n > MAX_BYTES {
            return Err(Error::bad_record(format!(
                "the record on stdin is larger than {} MiB; refusing it",
                MAX_BYTES / (1024 * 1024)
            )));
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// Say once that we wait for the record, naming who is to write it. A ugw tool upstream
/// reports its own progress, so waiting for one is normal and goes unsaid.
fn hint_once(reporter: &Reporter) {
    reporter.once_with("stdin-hint", || {
        #[cfg(target_os = "linux")]
        if let Some((pipe, crate::procfs::StdinKind::Pipe)) = crate::procfs::FileId::of_stdin() {
            let writers = crate::procfs::pipe_writers(pipe);
            if writers.iter().any(|(_, name)| name.starts_with("ugw-")) {
                return None;
            }
            if !writers.is_empty() {
                let names: Vec<String> = writers
                    .iter()
                    .map(|(pid, name)| format!("{name} (pid {pid})"))
                    .collect();
                return Some(format!(
                    "waiting for a record on stdin from {}; use --in none to start without one",
                    names.join(", ")
                ));
            }
        }
        Some(HINT.to_string())
    });
}

/// Block until stdin has data or end of input, checking for signals, with the hint after 2 s.
fn wait_readable(reporter: &Reporter, cancel: &Cancel, started: Instant) -> Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    let stdin = rustix::stdio::stdin();
    loop {
        cancel.check()?;
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&tick)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => {}
            // Ready, hung up, or an error that the read itself will report.
            Ok(_) | Err(_) => return Ok(()),
        }
        if started.elapsed() >= HINT_AFTER {
            hint_once(reporter);
        }
    }
}

#[cfg(target_os = "linux")]
mod peek {
    use super::{Cancel, Error, Peek, Reporter, Result, excerpt, wait_readable};
    use rustix::event::{PollFd, PollFlags};
    use rustix::io::Errno;
    use rustix::net::RecvFlags;
    use rustix::pipe::{PipeFlags, SpliceFlags};
    use std::os::fd::OwnedFd;
    use std::time::{Duration, Instant};

    /// What a look at stdin shows at most; a run of blanks this long is consumed (below).
    const WINDOW: usize = 64 * 1024;

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
        let (read_end, write_end) =
            rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)
                .map_err(|e| Error::io("cannot create a pipe to peek at stdin", &e.into()))?;
        tee_loop(&read_end, &write_end, reporter, cancel)
    }

    /// `tee` copies from the start of stdin's buffer every time, so a look sees at most one
    /// buffer's worth. When that is all blanks and the buffer is full, the writer waits for
    /// room that only a read makes: the blanks are consumed (they are nothing a record needs,
    /// and anything else starting with that many blanks is no input anyone wants), or the
    /// peek would wait forever. Shorter runs of blanks are never consumed.
    fn tee_loop(
        read_end: &OwnedFd,
        write_end: &OwnedFd,
        reporter: &Reporter,
        cancel: &Cancel,
    ) -> Result<Peek> {
        let window = window(write_end);
        let stdin = rustix::stdio::stdin();
        let started = Instant::now();
        let mut buf = vec![0u8; window];
        loop {
            wait_readable(reporter, cancel, started)?;
            let seen = match rustix::pipe::tee(stdin, write_end, window, SpliceFlags::NONBLOCK) {
                Ok(0) => return Ok(Peek::Empty), // writers gone, nothing written
                Ok(n) => n,
                // Not a pipe after all: fall back to reading it.
                Err(Errno::INVAL) => return Ok(Peek::Record),
                Err(_) => {
                    cancel.sleep(Duration::from_millis(5))?;
                    continue;
                }
            };
            let got = take(read_end, &mut buf, seen);
            if let Some(peek) = classify(got) {
                return Ok(peek);
            }
            // Only blanks so far.
            if seen >= window {
                consume_blanks(seen, &mut buf)?;
                continue;
            }
            if hung_up() {
                let again = rustix::pipe::tee(stdin, write_end, window, SpliceFlags::NONBLOCK);
                let _ = take(read_end, &mut buf, window);
                if again.is_err() || again == Ok(0) || again == Ok(seen) {
                    return Ok(Peek::Empty);
                }
            }
            cancel.sleep(Duration::from_millis(10))?;
        }
    }

    /// How much one `tee` can show: stdin's buffer, when our pipe can be made as large.
    fn window(write_end: &OwnedFd) -> usize {
        let stdin = rustix::pipe::fcntl_getpipe_size(rustix::stdio::stdin()).unwrap_or(WINDOW);
        let ours = rustix::pipe::fcntl_setpipe_size(write_end, stdin)
            .or_else(|_| rustix::pipe::fcntl_getpipe_size(write_end))
            .unwrap_or(WINDOW);
        stdin.min(ours).max(1)
    }

    /// Empty the private pipe (it holds `len` bytes) into `buf`.
    fn take<'a>(read_end: &OwnedFd, buf: &'a mut [u8], len: usize) -> &'a [u8] {
        let mut got = 0;
        while got < len.min(buf.len()) {
            match rustix::io::read(read_end, &mut buf[got..]) {
                Ok(n) if n > 0 => got += n,
                Err(Errno::INTR) => {}
                _ => break,
            }
        }
        &buf[..got]
    }

    /// Read the `len` blank bytes a look just saw. We are stdin's only reader here, so they
    /// are exactly those bytes; if another process read it too, what we got is no longer
    /// known to be blank and is refused rather than silently lost.
    fn consume_blanks(len: usize, buf: &mut [u8]) -> Result<()> {
        let stdin = rustix::stdio::stdin();
        let mut left = len;
        while left > 0 {
            let want = left.min(buf.len());
            match rustix::io::read(stdin, &mut buf[..want]) {
                Ok(0) => break,
                Ok(n) if buf[..n].iter().all(u8::is_ascii_whitespace) => left -= n,
                Ok(_) => {
                    return Err(Error::bad_record(
                        "stdin changed while it was looked at (another process reads it too)",
                    ));
                }
                Err(Errno::INTR | Errno::AGAIN) => {}
                Err(e) => return Err(Error::io("cannot read stdin", &e.into())),
            }
        }
        Ok(())
    }

    fn hung_up() -> bool {
        let stdin = rustix::stdio::stdin();
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut fds, Some(&zero)).is_ok()
            && fds[0].revents().contains(PollFlags::HUP)
    }

    /// A socket: `recv(MSG_PEEK)`. As with a pipe, a full window of blanks is consumed.
    pub(super) fn socket(reporter: &Reporter, cancel: &Cancel) -> Result<Peek> {
        let stdin = rustix::stdio::stdin();
        let started = Instant::now();
        let mut buf = vec![0u8; WINDOW];
        loop {
            wait_readable(reporter, cancel, started)?;
            let n = match rustix::net::recv(stdin, &mut buf, RecvFlags::PEEK | RecvFlags::DONTWAIT)
            {
                Ok((0, _)) => return Ok(Peek::Empty),
                Ok((n, _)) => n,
                Err(_) => {
                    cancel.sleep(Duration::from_millis(5))?;
                    continue;
                }
            };
            if let Some(peek) = classify(&buf[..n]) {
                return Ok(peek);
            }
            if n == buf.len() {
                consume_blanks(n, &mut buf)?;
            } else {
                cancel.sleep(Duration::from_millis(10))?;
            }
        }
    }

    /// A regular file: `pread` from the current offset, which stays where it was.
    pub(super) fn file() -> Peek {
        let stdin = rustix::stdio::stdin();
        let Ok(start) = rustix::fs::seek(stdin, rustix::fs::SeekFrom::Current(0)) else {
            return Peek::Record;
        };
        let mut offset = start;
        let mut buf = vec![0u8; WINDOW];
        loop {
            let n = match rustix::io::pread(stdin, &mut buf, offset) {
                Ok(n) if n > 0 => n,
                _ => return Peek::Empty,
            };
            if let Some(first) = buf[..n].iter().position(|b| !b.is_ascii_whitespace()) {
                // Look again from there, for a whole excerpt even at the end of this chunk.
                let at = offset + first as u64;
                let n = rustix::io::pread(stdin, &mut buf, at).unwrap_or(0);
                return classify(&buf[..n]).unwrap_or(Peek::Empty);
            }
            offset += n as u64;
        }
    }
}
