//! The connection layers under ureq: a watch that makes every wait for the network end
//! within a tick of a cancel (Ctrl-C) or of the request's deadline, and TLS with the
//! `--cacert` verifier. ureq is synchronous, so the watch of the request being served is
//! the one the calling thread set: `send()` and every body read set it for their duration.

use crate::cancel::{Cancel, TICK};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

/// What a wait in this thread must give way to.
#[derive(Clone)]
struct Watch {
    cancel: Cancel,
    until: Instant,
}

thread_local! {
    static WATCH: RefCell<Option<Watch>> = const { RefCell::new(None) };
}

/// The watch set for as long as it lives; the previous one comes back after.
pub(super) struct WatchScope {
    previous: Option<Watch>,
}

pub(super) fn watch(cancel: &Cancel, until: Instant) -> WatchScope {
    let watch = Watch {
        cancel: cancel.clone(),
        until,
    };
    WatchScope {
        previous: WATCH.with(|w| w.replace(Some(watch))),
    }
}

impl Drop for WatchScope {
    fn drop(&mut self) {
        WATCH.with(|w| *w.borrow_mut() = self.previous.take());
    }
}

fn current_watch() -> Option<Watch> {
    WATCH.with(|w| w.borrow().clone())
}

/// Why a watched wait ended early; the client turns it back into words.
#[derive(Debug)]
pub(super) struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted by a signal")
    }
}

impl std::error::Error for Cancelled {}

fn give_way(watch: &Watch) -> Result<(), ureq::Error> {
    if watch.cancel.signal().is_some() {
        return Err(ureq::Error::Io(std::io::Error::other(Cancelled)));
    }
    if Instant::now() >= watch.until {
        return Err(ureq::Error::Timeout(ureq::Timeout::Global));
    }
    Ok(())
}

/// Opens the TCP connection (unless a proxy connection came before it), waiting for it in
/// slices of one tick so that a Ctrl-C or the deadline also ends a connect to a host that
/// never answers.
#[derive(Debug)]
pub(super) struct SocketConnector;

impl<In: Transport> Connector<In> for SocketConnector {
    type Out = Either<In, Socket>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(transport) = chained {
            return Ok(Some(Either::A(transport)));
        }
        // Without any deadline (we always give one), a day: far, and no overflow.
        let until = Waits::new(details.timeout)
            .until
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        let mut last = None;
        for (index, addr) in details.addrs.iter().enumerate() {
            // The time left is shared among the addresses left: one that never answers
            // leaves time for the next.
            let left = until.saturating_duration_since(Instant::now());
            let share = left / u32::try_from(details.addrs.len() - index).unwrap_or(1);
            match connect_until(*addr, Instant::now() + share) {
                Ok(stream) => {
                    if details.config.no_delay() {
                        stream.set_nodelay(true)?;
                    }
                    let buffers = LazyBuffers::new(
                        details.config.input_buffer_size(),
                        details.config.output_buffer_size(),
                    );
                    return Ok(Some(Either::B(Socket { stream, buffers })));
                }
                Err(e @ ureq::Error::Io(_)) if !is_cancelled(&e) => last = Some(e),
                Err(ureq::Error::Timeout(reason)) => last = Some(ureq::Error::Timeout(reason)),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(ureq::Error::Timeout(ureq::Timeout::Connect)))
    }
}

fn is_cancelled(err: &ureq::Error) -> bool {
    matches!(err, ureq::Error::Io(io) if io.get_ref().is_some_and(<dyn std::error::Error + Send + Sync>::is::<Cancelled>))
}

/// A non-blocking connect, polled one tick at a time.
fn connect_until(addr: SocketAddr, until: Instant) -> Result<TcpStream, ureq::Error> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let fd = rustix::net::socket_with(family, SocketType::STREAM, flags, None)
        .map_err(std::io::Error::from)?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) | Err(rustix::io::Errno::INPROGRESS) => {}
        Err(e) => return Err(std::io::Error::from(e).into()),
    }
    let waits = Waits {
        watch: current_watch(),
        until: Some(until),
        reason: ureq::Timeout::Connect,
    };
    loop {
        let slice = Timespec::try_from(waits.next_slice()?).unwrap_or_default();
        let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
        match rustix::event::poll(&mut fds, Some(&slice)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => {}
            Ok(_) => break,
            Err(e) => return Err(std::io::Error::from(e).into()),
        }
    }
    rustix::net::sockopt::socket_error(&fd)
        .map_err(std::io::Error::from)?
        .map_err(std::io::Error::from)?;
    let stream = TcpStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// A plain TCP connection as ureq's transport.
#[derive(Debug)]
pub(super) struct Socket {
    stream: TcpStream,
    buffers: LazyBuffers,
}

/// One wait on the socket, cut into slices of one tick: between them the watch of this
/// thread (Ctrl-C, the request's deadline) and ureq's own timeout are looked at.
struct Waits {
    watch: Option<Watch>,
    until: Option<Instant>,
    reason: ureq::Timeout,
}

impl Waits {
    fn new(timeout: NextTimeout) -> Self {
        let ureq_until = timeout
            .not_zero()
            .and_then(|d| Instant::now().checked_add(*d));
        let watch = current_watch();
        let until = match (&watch, ureq_until) {
            (Some(watch), Some(until)) => Some(until.min(watch.until)),
            (Some(watch), None) => Some(watch.until),
            (None, until) => until,
        };
        Waits {
            watch,
            until,
            reason: timeout.reason,
        }
    }

    /// How long the next slice may wait; an error once the wait must end.
    fn next_slice(&self) -> Result<Duration, ureq::Error> {
        if let Some(watch) = &self.watch {
            give_way(watch)?;
        }
        let Some(until) = self.until else {
            return Ok(TICK);
        };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ureq::Error::Timeout(self.reason));
        }
        Ok(left.clamp(Duration::from_millis(1), TICK))
    }
}

/// A socket timeout or an interrupted call: nothing went wrong, try again.
fn is_wait(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    matches!(err.kind(), WouldBlock | TimedOut | Interrupted)
}

impl Transport for Socket {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    /// Written a tick at a time, so that an upload to a server that stopped reading also
    /// gives way to the watch.
    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let waits = Waits::new(timeout);
        let mut output = &self.buffers.output()[..amount];
        while !output.is_empty() {
            self.stream.set_write_timeout(Some(waits.next_slice()?))?;
            match self.stream.write(output) {
                Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()),
                Ok(written) => output = &output[written..],
                Err(e) if is_wait(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Read a tick at a time, so that a server that sends nothing (or slowly) never keeps
    /// a Ctrl-C or the deadline waiting.
    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let waits = Waits::new(timeout.for_read());
        let input = self.buffers.input_append_buf();
        let amount = loop {
            self.stream.set_read_timeout(Some(waits.next_slice()?))?;
            match self.stream.read(input) {
                Err(e) if is_wait(&e) => {}
                other => break other?,
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    /// Open when nothing is waiting to be read: a server that closed (or sent bytes no
    /// one asked for) makes a pooled connection useless.
    fn is_open(&mut self) -> bool {
        let mut probe = [0u8];
        let open = self.stream.set_nonblocking(true).is_ok()
            && matches!(self.stream.peek(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        open && self.stream.set_nonblocking(false).is_ok()
    }
}

/// TLS with our own rustls configuration (the `--cacert` verifier). Without one, the
/// connection goes on to ureq's own TLS (the platform's roots, or `--insecure`).
#[derive(Debug)]
pub(super) struct OwnTlsConnector(pub Option<Arc<ClientConfig>>);

impl<In: Transport> Connector<In> for OwnTlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        let Some(config) = self
            .0
            .clone()
            .filter(|_| details.needs_tls() && !transport.is_tls())
        else {
            return Ok(Some(Either::A(transport)));
        };
        let host = details
            .uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ureq::Error::Tls("the host is not a valid TLS server name"))?;
        let mut conn = ClientConnection::new(config, name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        Ok(Some(Either::B(TlsTransport {
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            stream: StreamOwned { conn, sock },
        })))
    }
}

pub(super) struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
