//! Certificate signatures: Ed25519 (RFC 8032) over the UTF-8 bytes of the
//! certificate's JSON body. An auditor verifies offline with the public key
//! shipped in the certificate (and pinned from `lethe signing-key`), e.g.
//! with `lethe verify-certificate cert.json` or any Ed25519 library.

use std::path::Path;

use anyhow::Context;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier, VerifyingKey};

/// The service's signing key.
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// Loads the PKCS#8 PEM key at `path`, creating it (mode 0600) when missing.
    ///
    /// # Errors
    /// When the file cannot be read, parsed or created.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if path.exists() {
            let pem = std::fs::read_to_string(path).with_context(|| format!("Failed to read {}", path.display()))?;
            let key = SigningKey::from_pkcs8_pem(&pem).context("Failed to parse the signing key")?;
            return Ok(Self { key });
        }
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = key.to_pkcs8_pem(Default::default()).context("Failed to encode the signing key")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("Failed to create {}", dir.display()))?;
        }
        write_private(path, pem.as_bytes()).with_context(|| format!("Failed to write {}", path.display()))?;
        tracing::info!(path = %path.display(), "created a new certificate signing key");
        Ok(Self { key })
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn sign(&self, body: &str) -> [u8; 64] {
        self.key.sign(body.as_bytes()).to_bytes()
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Verifies a certificate: `signature` and `public_key` base64 (standard).
pub fn verify_certificate(body: &str, signature_b64: &str, public_key_b64: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Ok(sig), Ok(pk)) = (b64.decode(signature_b64), b64.decode(public_key_b64)) else {
        return false;
    };
    let (Ok(sig), Ok(pk)) = (<[u8; 64]>::try_from(sig.as_slice()), <[u8; 32]>::try_from(pk.as_slice())) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    key.verify(body.as_bytes(), &Signature::from_bytes(&sig)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_bodies_verify_and_altered_ones_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.pem");
        let signer = Signer::load_or_create(&path).expect("create");
        let again = Signer::load_or_create(&path).expect("load");
        assert_eq!(signer.public_key(), again.public_key());
        let b64 = base64::engine::general_purpose::STANDARD;
        let sig = b64.encode(signer.sign("{\"deleted\":3}"));
        let pk = b64.encode(signer.public_key());
        assert!(verify_certificate("{\"deleted\":3}", &sig, &pk));
        assert!(!verify_certificate("{\"deleted\":4}", &sig, &pk));
    }
}
