//! minisign signatures: of the checksum file, or of the artifact itself.

use minisign_verify::{PublicKey, Signature};
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
            .verify(bytes, &self.signature, false)
            .map_err(|e| bad(what, &e))
    }

    /// Verify a file as it is read, never whole in memory.
    pub(crate) fn verify_file(&self, path: &Path) -> Result<()> {
        let mut verifier = self
            .key
            .verify_stream(&self.signature)
            .map_err(|e| bad("the artifact", &e))?;
        let mut file = ugw_shared::atomic::open_regular(path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
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
}

fn bad(what: &str, e: &minisign_verify::Error) -> Error {
    Error::new(
        ErrorKind::BadSignature,
        format!("the minisign signature of {what} does not verify ({e}); nothing was kept"),
    )
}
