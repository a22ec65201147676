//! `--cacert FILE` as curl reads it: the certificates in it are trusted as CAs, and one that
//! is itself the server's certificate (a self-signed `openssl req -x509` one, which `WebPKI`
//! refuses as `CaUsedAsEndEntity`) is trusted as that server's certificate. Also the words
//! for TLS failures, naming the fix.

use crate::error::{Error, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use std::path::Path;
use std::sync::Arc;

/// The rustls configuration that trusts what `path` holds.
pub(super) fn cacert_config(path: &Path) -> Result<Arc<ClientConfig>> {
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = CacertVerifier::new(certs, &provider);
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| Error::usage(format!("TLS set-up failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct CacertVerifier {
    /// Trusted as the server's own certificate when presented exactly.
    pinned: Vec<CertificateDer<'static>>,
    /// The same certificates as CAs; `None` when none of them can be one.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
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
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for CacertVerifier {
    fn verify_server_cert(
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
