//! minisign signatures: of the checksum file, or of the artifact itself. Both algorithms
//! minisign 0.11 verifies are accepted: `ED` (prehashed, its default since 0.8: the file's
//! BLAKE2b-512 is signed, so the file is streamed) and legacy `Ed` (`minisign -S -l`: the
//! whole file is the signed message, so the staged temp file is mapped read-only, never
//! read into memory). The trusted comment is covered by the global signature either way.

use minisign_verify::{PublicKey, Signature};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use ugw_shared::{Error, ErrorKind, Result};

pub(crate) struct Signed {
    key: PublicKey,
    signature: Signature,
}

impl Signed {
    /// `key` is the base64 key or a `.pub` file; `sig` the `.minisig` file's bytes.
    pub(crate) fn new(key: &str, sig: &[u8]) -> Result<Self> {
        let key = if Path::new(key).is_file() {
            PublicKey::from_file(key)
        } else {
            PublicKey::from_base64(key.trim())
        }
        .map_err(|e| {
            Error::usage(format!(
                "--minisign-pubkey is not a minisign public key ({e})"
            ))
        })?;
        let text = String::from_utf8_lossy(sig);
        let signature = Signature::decode(&text).map_err(|e| {
            Error::new(
                ErrorKind::BadSignature,
                format!("the signature file is not a minisign signature ({e})"),
            )
        })?;
        Ok(Signed { key, signature })
    }

    pub(crate) fn verify_bytes(&self, bytes: &[u8], what: &str) -> Result<()> {
        self.key
            .verify(bytes, &self.signature, true)
            .map_err(|e| bad(what, &e))
    }

    /// Verify a file as it is read (prehashed), or mapped (legacy): never whole in memory.
    pub(crate) fn verify_file(&self, path: &Path) -> Result<()> {
        let mut file = ugw_shared::atomic::open_regular(path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
        let mut verifier = match self.key.verify_stream(&self.signature) {
            Ok(verifier) => verifier,
            Err(minisign_verify::Error::UnsupportedLegacyMode) => {
                return self.verify_mapped(&file, path);
            }
            Err(e) => return Err(bad("the artifact", &e)),
        };
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
            if n == 0 {
                break;
            }
            verifier.update(&buf[..n]);
        }
        verifier.finalize().map_err(|e| bad("the artifact", &e))
    }

    /// A legacy signature signs the whole file: verify it over a read-only map of it.
    fn verify_mapped(&self, file: &File, path: &Path) -> Result<()> {
        let cannot = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Io,
                format!(
                    "cannot map {} to verify its signature ({e})",
                    path.display()
                ),
            )
        };
        let len = file.metadata().map_err(|e| cannot(&e))?.len();
        if len == 0 {
            return self.verify_bytes(&[], "the artifact");
        }
        let len = usize::try_from(len).map_err(|e| cannot(&e))?;
        // The staged temp file this run created and holds open: nobody writes it while it is
        // verified, which is `Mapped`'s contract.
        let map = ugw_sys::Mapped::new(file, len).map_err(|e| cannot(&e))?;
        self.verify_bytes(map.bytes(), "the artifact")
    }
}

/// The refusal, with what to do about it where the cause is known.
fn bad(what: &str, e: &minisign_verify::Error) -> Error {
    let advice = match e {
        minisign_verify::Error::UnexpectedKeyId => {
            ": it was made with another key than --minisign-pubkey; check the key the \
             project publishes"
        }
        minisign_verify::Error::InvalidSignature => {
            ": the file, the signature or its trusted comment was changed, or the key is \
             not the one that signed"
        }
        _ => "",
    };
    Error::new(
        ErrorKind::BadSignature,
        format!("the minisign signature of {what} does not verify ({e}){advice}; nothing was kept"),
    )
}
