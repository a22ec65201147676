//! The connection layers under ureq: a watch that makes every wait for the network end
//! within a tick of a cancel (Ctrl-C) or of the request's deadline, and TLS with the
//! `--cacert` verifier. ureq is synchronous, so the watch of the request being served is
//! the one the calling thread set: `send()` and every body read set it for their duration.

use crate::cancel::{Cancel, TICK};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::cell::RefCell;
use std::io::{Read, Write};
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
