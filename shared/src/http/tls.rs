//! `--cacert FILE` as curl reads it: the certificates in it are trusted as CAs, and one that
//! is itself the server's certificate (a self-signed `openssl req -x509` one, which `WebPKI`
//! refuses as `CaUsedAsEndEntity`) is trusted as that server's certificate. Also the words
//! for TLS failures, naming the fix, and [`peer_certificate`]: what a server presents, its
//! expiry and names, judged but not refused (a certificate check reports an expired one).

use crate::error::{Error, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The rustls configuration that trusts what `path` holds.
pub(super) fn cacert_config(path: &Path) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Judged::new(CacertVerifier::new(read_certs(path)?, &provider), &provider);
    client_config(provider, verifier)
}

fn client_config(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<Arc<ClientConfig>> {
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| Error::usage(format!("TLS set-up failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .map_err(|e| Error::usage(format!("--cacert {}: cannot read it ({e})", path.display())))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(std::result::Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(Error::usage(format!(
            "--cacert {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

#[derive(Debug)]
struct CacertVerifier {
    /// Trusted as the server's own certificate when presented exactly.
    pinned: Vec<CertificateDer<'static>>,
    /// The same certificates as CAs; `None` when none of them can be one.
    webpki: Option<Arc<WebPkiServerVerifier>>,
}

impl CacertVerifier {
    fn new(certs: Vec<CertificateDer<'static>>, provider: &Arc<CryptoProvider>) -> Self {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(certs.iter().cloned());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .ok();
        CacertVerifier {
            pinned: certs,
            webpki,
        }
    }
}

impl CertificateJudge for CacertVerifier {
    fn judge(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            // The very certificate the operator gave: still only for the names it holds.
            let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_name(&parsed, server_name)?;
            return Ok(ServerCertVerified::assertion());
        }
        match &self.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        }
    }
}

/// What differs between ugw's certificate verifiers: the verdict on the certificate. The
/// handshake's signatures (the server proving it holds the certificate's key) are checked the
/// same way by all of them; [`Judged`] adds that part, once.
pub trait CertificateJudge: std::fmt::Debug + Send + Sync {
    /// Whether to go on with this certificate, as `ServerCertVerifier::verify_server_cert`.
    fn judge(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error>;
}

/// A rustls verifier made of a [`CertificateJudge`] and the provider's signature algorithms.
#[derive(Debug)]
pub struct Judged<J> {
    judge: J,
    algorithms: WebPkiSupportedAlgorithms,
}

impl<J: CertificateJudge> Judged<J> {
    #[must_use]
    pub fn new(judge: J, provider: &CryptoProvider) -> Arc<Self> {
        Arc::new(Judged {
            judge,
            algorithms: provider.signature_verification_algorithms,
        })
    }

    #[must_use]
    pub fn judge(&self) -> &J {
        &self.judge
    }
}

impl<J: CertificateJudge> ServerCertVerifier for Judged<J> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.judge
            .judge(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Encrypted, the certificate taken as it comes (libpq's `sslmode=require`): only the
/// handshake's signatures are checked.
#[derive(Debug)]
pub struct AnyCertificate;

impl CertificateJudge for AnyCertificate {
    fn judge(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
}

/// The rustls error inside a ureq error, wherever ureq put it.
fn rustls_error(err: &ureq::Error) -> Option<&rustls::Error> {
    match err {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref(),
        _ => None,
    }
}

/// A TLS failure in words that name the fix; `None` when `err` is not about TLS.
pub(super) fn describe(err: &ureq::Error, authority: &str) -> Option<String> {
    const FIX: &str =
        "give its certificate or CA with --cacert FILE (or --insecure, for a test set-up only)";
    if let ureq::Error::Io(io) = err
        && io.kind() == std::io::ErrorKind::UnexpectedEof
    {
        return Some(format!(
            "TLS: {authority} closed the connection before answering: does it speak plain HTTP? (then use http://)"
        ));
    }
    let tls = rustls_error(err)?;
    Some(match tls {
        rustls::Error::InvalidCertificate(cert) => {
            let why = match cert {
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!("is not valid for the name in the URL ({authority})")
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "has expired".to_string()
                }
                CertificateError::UnknownIssuer => "is signed by an unknown CA".to_string(),
                other => format!("is not accepted ({other:?})"),
            };
            format!("TLS: the certificate of {authority} {why}: {FIX}")
        }
        rustls::Error::InvalidMessage(_) => format!(
            "TLS: {authority} did not answer in TLS: does it speak plain HTTP? (then use http://)"
        ),
        other => format!("TLS with {authority} failed ({other}): {FIX}"),
    })
}

/// What a TLS server presented, and what a client would make of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// Its `notAfter`, in seconds since the Unix epoch.
    pub not_after: i64,
    /// Whole days from now to `notAfter` (negative once it has expired).
    pub days_left: i64,
    pub subject: String,
    /// Its DNS names and IP addresses (subject alternative names).
    pub names: Vec<String>,
    /// Whether it is valid for the server name asked for.
    pub name_ok: bool,
    /// Why a client would not trust it (unknown issuer, expired, wrong name); `None`: trusted.
    pub untrusted: Option<String>,
}

/// Connect to `host:port`, shake hands as `server_name` and read the server's certificate,
/// all before `until`. The chain is checked against `cacert` (as `--cacert` reads it) or the
/// system's roots, and the verdict is reported, not enforced: the handshake goes on with an
/// expired or unknown certificate so that its dates and names can be read. Nothing is sent
/// over the connection after the handshake.
pub fn peer_certificate(
    host: &str,
    port: u16,
    server_name: &str,
    cacert: Option<&Path>,
    until: Instant,
) -> std::result::Result<PeerCertificate, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner: Arc<dyn ServerCertVerifier> = match cacert {
        Some(path) => Judged::new(
            CacertVerifier::new(read_certs(path).map_err(|e| e.message)?, &provider),
            &provider,
        ),
        None => Arc::new(
            rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| format!("the system's certificate store: {e}"))?,
        ),
    };
    let recording = Judged::new(
        Recording {
            inner,
            seen: Mutex::new(None),
        },
        &provider,
    );
    let config = client_config(provider, recording.clone()).map_err(|e| e.message)?;
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|_| format!("'{server_name}' is not a valid TLS server name"))?;
    let mut stream = connect(host, port, until)?;
    let mut conn = rustls::ClientConnection::new(config, name.clone())
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut stream).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut
            {
                "no TLS handshake before the deadline".to_string()
            } else {
                format!("TLS handshake with {host}:{port} failed: {e}")
            }
        })?;
    }
    conn.send_close_notify();
    let _ = conn.complete_io(&mut stream);
    let (der, verdict) = recording
        .judge()
        .seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
        .ok_or_else(|| format!("{host}:{port} presented no certificate"))?;
    describe_certificate(&der, &name, verdict.err())
}

fn connect(host: &str, port: u16, until: Instant) -> std::result::Result<TcpStream, String> {
    let host_only = host.trim_start_matches('[').trim_end_matches(']');
    let stream = crate::tcp::open((host_only, port), until)
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let left = until
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(left))
        .and_then(|()| stream.set_write_timeout(Some(left)))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

fn describe_certificate(
    der: &CertificateDer<'_>,
    name: &ServerName<'_>,
    untrusted: Option<rustls::Error>,
) -> std::result::Result<PeerCertificate, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("the server's certificate does not parse: {e}"))?;
    let not_after = cert.validity().not_after.timestamp();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => (*d).to_string(),
                    x509_parser::extensions::GeneralName::IPAddress(ip) => ip_text(ip),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let name_ok = rustls::server::ParsedCertificate::try_from(der)
        .and_then(|parsed| rustls::client::verify_server_name(&parsed, name))
        .is_ok();
    Ok(PeerCertificate {
        not_after,
        days_left: (not_after - now).div_euclid(86_400),
        subject: cert.subject().to_string(),
        names,
        name_ok,
        untrusted: untrusted.map(|e| e.to_string()),
    })
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).expect("4 bytes")).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).expect("16 bytes")).to_string(),
        _ => format!("{bytes:02x?}"),
    }
}

/// Keeps what the real verifier said about the certificate, and lets the handshake go on
/// whatever it said: the caller only reads the certificate and closes.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ServerCertVerifier>,
    seen: Mutex<
        Option<(
            CertificateDer<'static>,
            std::result::Result<(), rustls::Error>,
        )>,
    >,
}

impl CertificateJudge for Recording {
    fn judge(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ());
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((end_entity.clone().into_owned(), verdict));
        Ok(ServerCertVerified::assertion())
    }
}
