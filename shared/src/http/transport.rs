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

/// Wraps the socket (under TLS): waits for input in slices of one tick, looking at the
/// watch between them.
#[derive(Debug)]
pub(super) struct Watched<T>(T);

impl<T: Transport> Transport for Watched<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.0.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if let Some(watch) = current_watch() {
            give_way(&watch)?;
        }
        self.0.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let Some(watch) = current_watch() else {
            return self.0.await_input(timeout);
        };
        let started = Instant::now();
        let budget = timeout.not_zero().map(|d| *d);
        loop {
            give_way(&watch)?;
            let spent = started.elapsed();
            let mut slice = TICK.min(watch.until.saturating_duration_since(Instant::now()));
            if let Some(budget) = budget {
                let Some(left) = budget.checked_sub(spent).filter(|d| !d.is_zero()) else {
                    return Err(ureq::Error::Timeout(timeout.reason));
                };
                slice = slice.min(left);
            }
            let sliced = NextTimeout {
                after: slice.max(Duration::from_millis(1)).into(),
                ..timeout
            };
            match self.0.await_input(sliced) {
                Err(ureq::Error::Timeout(_)) => {}
                other => return other,
            }
        }
    }

    fn is_open(&mut self) -> bool {
        self.0.is_open()
    }

    fn is_tls(&self) -> bool {
        self.0.is_tls()
    }
}

/// Opens the TCP connection (unless a proxy connection came before it), waiting for it in
/// slices of one tick so that a Ctrl-C or the deadline also ends a connect to a host that
/// never answers.
#[derive(Debug)]
pub(super) struct WatchedTcpConnector;

impl<In: Transport> Connector<In> for WatchedTcpConnector {
    type Out = Either<In, Socket>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(transport) = chained {
            return Ok(Some(Either::A(transport)));
        }
        // No deadline of ureq's (we always give one) is a day: far, and no overflow.
        let budget = details
            .timeout
            .not_zero()
            .map_or(Duration::from_secs(86_400), |d| {
                (*d).min(Duration::from_secs(86_400))
            });
        let until = Instant::now() + budget;
        let until = current_watch().map_or(until, |w| w.until.min(until));
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
    let watch = current_watch();
    loop {
        if let Some(watch) = &watch {
            give_way(watch)?;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ureq::Error::Timeout(ureq::Timeout::Connect));
        }
        let slice = Timespec::try_from(left.min(TICK)).unwrap_or_default();
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

/// The timeout as the socket takes it: `None` is forever, and zero is not allowed.
fn socket_timeout(timeout: NextTimeout) -> Option<Duration> {
    timeout
        .not_zero()
        .map(|d| (*d).max(Duration::from_millis(1)))
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
        let until = socket_timeout(timeout).and_then(|d| Instant::now().checked_add(d));
        let watch = current_watch();
        self.stream.set_write_timeout(Some(TICK))?;
        let mut output = &self.buffers.output()[..amount];
        while !output.is_empty() {
            if let Some(watch) = &watch {
                give_way(watch)?;
            }
            if until.is_some_and(|until| Instant::now() >= until) {
                return Err(ureq::Error::Timeout(timeout.reason));
            }
            match self.stream.write(output) {
                Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()),
                Ok(written) => output = &output[written..],
                Err(e) if is_wait(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        self.stream.set_read_timeout(socket_timeout(timeout))?;
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match self.stream.read(input) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if is_wait(&e) => return Err(ureq::Error::Timeout(timeout.reason)),
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

/// Puts the watch on every connection the chain before it opened.
#[derive(Debug)]
pub(super) struct WatchConnector;

impl<In: Transport> Connector<In> for WatchConnector {
    type Out = Watched<In>;

    fn connect(
        &self,
        _: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(Watched))
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
