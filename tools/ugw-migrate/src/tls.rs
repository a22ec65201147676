//! TLS for the PostgreSQL connection, with rustls: `sslmode=require` (encrypted, the server
//! not verified, as libpq does without a root certificate), `verify-ca` (its chain against
//! `sslrootcert`) and `verify-full` (and its name). The postgres client drives an async
//! stream; `TlsStream` runs rustls' connection over it.

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::future::Future;
use std::io::{self, Read, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ugw_shared::db::SslMode;
use ugw_shared::http::{AnyCertificate, Judged};
use ugw_shared::{Error, Result};

/// Makes a TLS connector per connection (the cancel request's included).
#[derive(Clone)]
pub struct MakeRustls {
    config: Arc<ClientConfig>,
    /// `verify-ca` checks the chain, not the name.
    check_name: bool,
}

impl MakeRustls {
    /// The connector for `mode`; `root_cert` is `sslrootcert` (required to verify).
    pub fn new(mode: SslMode, root_cert: Option<&Path>) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::usage(format!("TLS set-up: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = match mode {
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let path = root_cert.ok_or_else(|| {
                    Error::usage(format!(
                        "sslmode={} needs sslrootcert=FILE (the CA certificate, PEM) in the URL",
                        mode.word()
                    ))
                })?;
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| Error::usage(format!("sslrootcert {}: {e}", path.display())))?
                {
                    let cert = cert.map_err(|e| {
                        Error::usage(format!("sslrootcert {}: {e}", path.display()))
                    })?;
                    roots.add(cert).map_err(|e| {
                        Error::usage(format!("sslrootcert {}: {e}", path.display()))
                    })?;
                }
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| Error::usage(format!("sslrootcert {}: {e}", path.display())))?
            }
            // `sslmode=require`: encrypted, the certificate not checked (libpq's meaning
            // without a root certificate), its signatures still verified.
            _ => Judged::new(AnyCertificate, &provider),
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustls {
            config: Arc::new(config),
            check_name: mode == SslMode::VerifyFull,
        })
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        // verify-ca: the chain counts, not the name; a name is still needed for SNI.
        let name = if self.check_name { domain } else { "localhost" };
        let server = ServerName::try_from(name.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnect {
            config: Arc::clone(&self.config),
            server,
        })
    }
}

pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    server: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = io::Error;
    type Future = Handshake<S>;

    fn connect(self, io: S) -> Handshake<S> {
        let conn = ClientConnection::new(self.config, self.server).map_err(io::Error::other);
        Handshake(Some(conn.map(|conn| TlsStream { io, conn })))
    }
}

/// Drives the handshake to its end.
pub struct Handshake<S>(Option<io::Result<TlsStream<S>>>);

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Handshake<S> {
    type Output = io::Result<TlsStream<S>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut stream = match self.0.take().expect("polled after completion") {
            Ok(stream) => stream,
            Err(e) => return Poll::Ready(Err(e)),
        };
        while stream.conn.is_handshaking() {
            match stream.pump(cx) {
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false)) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection during the TLS handshake",
                    )));
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.0 = Some(Ok(stream));
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(Ok(stream))
    }
}

/// rustls' connection over the client's socket.
pub struct TlsStream<S> {
    io: S,
    conn: ClientConnection,
}

/// The async socket as the blocking `Read`/`Write` rustls wants: `Pending` reads as
/// `WouldBlock` (the waker is registered).
struct Sync<'a, 'b, S> {
    io: &'a mut S,
    cx: &'a mut Context<'b>,
}

impl<S: AsyncRead + Unpin> Read for Sync<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: AsyncWrite + Unpin> Write for Sync<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match Pin::new(&mut *self.io).poll_flush(self.cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream<S> {
    /// Send what rustls has to send, then read once if it wants to: `Ready(true)` when
    /// progress was made, `Ready(false)` at the end of the stream.
    fn pump(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let flushed = self.flush_tls(cx);
        if let Poll::Ready(Err(e)) = flushed {
            return Poll::Ready(Err(e));
        }
        if !self.conn.wants_read() {
            // Pending only with the socket's write waker registered.
            return flushed.map(|_| Ok(true));
        }
        let mut io = Sync {
            io: &mut self.io,
            cx,
        };
        match self.conn.read_tls(&mut io) {
            Ok(0) => Poll::Ready(Ok(false)),
            Ok(_) => {
                self.conn
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                Poll::Ready(Ok(true))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Write out every TLS record rustls holds.
    fn flush_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            let mut io = Sync {
                io: &mut self.io,
                cx,
            };
            match self.conn.write_tls(&mut io) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match this.conn.reader().read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            match this.pump(cx) {
                Poll::Ready(Ok(true)) => {}
                Poll::Ready(Ok(false)) => return Poll::Ready(Ok(())), // end of stream
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let n = this.conn.writer().write(buf)?;
        // The plaintext is buffered in rustls: written, whatever the socket says now.
        if let Poll::Ready(Err(e)) = this.flush_tls(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.flush_tls(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.io).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.conn.send_close_notify();
        match this.flush_tls(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.io).poll_shutdown(cx),
            other => other,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> postgres::tls::TlsStream for TlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
