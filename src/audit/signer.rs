//! The service's Ed25519 (RFC 8032) signing key: certificates and log heads
//! are signed with it, and auditors verify offline against a public key they
//! pinned (`lethe signing-key`), never against a key a document carries.
//!
//! Life cycle:
//! - The key is a PKCS#8 PEM file readable by its owner only (0600); a file
//!   that others can read is refused.
//! - A missing key is an error unless creation is asked for
//!   (`audit.create_signing_key`, `lethe signing-key --create`): replicas
//!   started apart must not each make their own. Creation is atomic (written
//!   to a temporary file, then linked into place), so two processes racing to
//!   create it end up with the same key.
//! - Every signature names its key by id (the first 16 hex digits of the
//!   SHA-256 of the public key). After a rotation (`lethe signing-key
//!   --rotate`) the old public keys stay in `audit.retired_public_keys`, so
//!   what they signed still verifies.

use std::path::Path;

use anyhow::Context;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// The service's signing key and the public keys it signed with before.
pub struct Signer {
    key: SigningKey,
    retired: Vec<VerifyingKey>,
}

/// A key's id: the first 16 hex digits of SHA-256(public key).
pub fn key_id(public_key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(public_key)[..8])
}

impl Signer {
    /// Loads the key at `path`; creates it (0600) when missing and `create`.
    ///
    /// # Errors
    /// A missing key without `create`, a key readable by others, a file that
    /// cannot be read, parsed or created.
    pub fn load(path: &Path, create: bool, retired_public_keys: &[String]) -> anyhow::Result<Self> {
        let retired = retired_public_keys
            .iter()
            .map(|k| parse_public_key(k).with_context(|| format!("audit.retired_public_keys: `{k}` is not an Ed25519 public key")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if !path.exists() {
            anyhow::ensure!(
                create,
                "the certificate signing key {} does not exist; create it once with `lethe signing-key --create` \
                 (or set audit.create_signing_key) and give every replica the same file",
                path.display()
            );
            create_key(path)?;
        }
        check_private(path)?;
        let pem = std::fs::read_to_string(path).with_context(|| format!("Failed to read {}", path.display()))?;
        let key = SigningKey::from_pkcs8_pem(&pem).context("Failed to parse the signing key")?;
        Ok(Self { key, retired })
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn key_id(&self) -> String {
        key_id(&self.public_key())
    }

    pub fn sign(&self, body: &str) -> [u8; 64] {
        self.key.sign(body.as_bytes()).to_bytes()
    }

    /// The public key with id `key_id` among this service's own (the current
    /// one, then the retired ones), and whether it is retired.
    pub fn own_public_key(&self, key_id_claimed: &str) -> Option<([u8; 32], bool)> {
        std::iter::once((self.key.verifying_key(), false))
            .chain(self.retired.iter().map(|k| (*k, true)))
            .map(|(k, retired)| (k.to_bytes(), retired))
            .find(|(k, _)| key_id(k) == key_id_claimed)
    }

    /// Whether `signature` over `body` is by the key `key_id` (the current key
    /// or a retired one).
    pub fn verify(&self, key_id_claimed: &str, body: &str, signature: &[u8]) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(signature) else { return false };
        std::iter::once(self.key.verifying_key())
            .chain(self.retired.iter().copied())
            .find(|k| key_id(&k.to_bytes()) == key_id_claimed)
            .is_some_and(|k| k.verify(body.as_bytes(), &Signature::from_bytes(&sig)).is_ok())
    }
}

/// Replaces the key at `path` by a new one (atomically); returns the old
/// and new public keys.
///
/// # Errors
/// When the old key cannot be read or the new one written.
pub fn rotate(path: &Path) -> anyhow::Result<([u8; 32], [u8; 32])> {
    let old = Signer::load(path, false, &[])?;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let tmp = write_temp(path, &key)?;
    std::fs::rename(&tmp, path).with_context(|| format!("Failed to replace {}", path.display()))?;
    Ok((old.public_key(), key.verifying_key().to_bytes()))
}

fn create_key(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("Failed to create {}", dir.display()))?;
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let tmp = write_temp(path, &key)?;
    // A hard link fails if the key appeared meanwhile: the first process to
    // link wins, the others load its (complete) file.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), key_id = key_id(&key.verifying_key().to_bytes()), "created a new certificate signing key");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("Failed to write {}", path.display())),
    }
}

/// The key, PEM-encoded, in a new 0600 file beside `path`.
fn write_temp(path: &Path, key: &SigningKey) -> anyhow::Result<std::path::PathBuf> {
    let pem = key.to_pkcs8_pem(Default::default()).context("Failed to encode the signing key")?;
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    write_private(&tmp, pem.as_bytes()).with_context(|| format!("Failed to write {}", tmp.display()))?;
    Ok(tmp)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(unix)]
fn check_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).with_context(|| format!("Failed to read {}", path.display()))?.permissions().mode();
    anyhow::ensure!(
        mode & 0o077 == 0,
        "the signing key {} is readable by others (mode {:o}); `chmod 600` it",
        path.display(),
        mode & 0o777
    );
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

fn parse_public_key(b64: &str) -> anyhow::Result<VerifyingKey> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim())?;
    let bytes = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| anyhow::anyhow!("not 32 bytes"))?;
    Ok(VerifyingKey::from_bytes(&bytes)?)
}

/// Verifies a certificate: `signature` and `public_key` base64 (standard).
/// This proves only that the body was signed by `public_key`; compare the key
/// with one you pinned ([`verify_pinned`]).
pub fn verify_certificate(body: &str, signature_b64: &str, public_key_b64: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Ok(sig) = b64.decode(signature_b64) else { return false };
    let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else { return false };
    let Ok(key) = parse_public_key(public_key_b64) else { return false };
    key.verify(body.as_bytes(), &Signature::from_bytes(&sig)).is_ok()
}

/// Verifies a signature against the pinned public keys (base64) only: the
/// key a document carries proves nothing about who signed it. Returns the id
/// of the pinned key that verifies.
///
/// # Errors
/// No pinned key verifies the signature (or a pin is not a key).
pub fn verify_pinned(body: &str, signature_b64: &str, pins: &[String]) -> anyhow::Result<String> {
    anyhow::ensure!(!pins.is_empty(), "no pinned public key: give the service's key (`lethe signing-key`) with --pin");
    for pin in pins {
        let key = parse_public_key(pin).with_context(|| format!("--pin `{pin}` is not an Ed25519 public key"))?;
        if verify_certificate(body, signature_b64, pin) {
            return Ok(key_id(&key.to_bytes()));
        }
    }
    anyhow::bail!("INVALID: the signature is not by any pinned key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn signed_bodies_verify_against_pins_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.pem");
        let signer = Signer::load(&path, true, &[]).expect("create");
        let again = Signer::load(&path, false, &[]).expect("load");
        assert_eq!(signer.public_key(), again.public_key());
        let sig = b64(&signer.sign("{\"deleted\":3}"));
        let pk = b64(&signer.public_key());
        assert!(verify_certificate("{\"deleted\":3}", &sig, &pk));
        assert!(!verify_certificate("{\"deleted\":4}", &sig, &pk));
        assert_eq!(verify_pinned("{\"deleted\":3}", &sig, &[pk]).expect("pinned"), signer.key_id());
        // A self-made key pair signs validly, but is not the pinned key.
        let other = Signer::load(&dir.path().join("other.pem"), true, &[]).expect("other");
        let forged = b64(&other.sign("{\"deleted\":3}"));
        assert!(verify_certificate("{\"deleted\":3}", &forged, &b64(&other.public_key())));
        assert!(verify_pinned("{\"deleted\":3}", &forged, &[b64(&signer.public_key())]).is_err());
        assert!(verify_pinned("{\"deleted\":3}", &sig, &[]).is_err());
    }

    #[test]
    fn a_missing_key_is_created_only_when_asked_and_others_may_not_read_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/key.pem");
        let err = Signer::load(&path, false, &[]).err().expect("missing key refused");
        assert!(err.to_string().contains("--create"), "{err}");
        assert!(!path.exists());
        Signer::load(&path, true, &[]).expect("created");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let err = Signer::load(&path, false, &[]).err().expect("0644 refused");
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn racing_creators_end_with_one_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.pem");
        let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| Signer::load(&path, true, &[]).expect("load").public_key())).collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "every replica signs with the same key");
        let leftovers = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(leftovers, 1, "no temporary files left");
    }

    #[test]
    fn a_rotated_key_still_verifies_what_it_signed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.pem");
        let old = Signer::load(&path, true, &[]).expect("create");
        let sig = old.sign("head");
        let (was, now) = rotate(&path).expect("rotate");
        assert_eq!(was, old.public_key());
        let new = Signer::load(&path, false, &[b64(&was)]).expect("load rotated");
        assert_eq!(new.public_key(), now);
        assert_ne!(new.key_id(), old.key_id());
        assert!(new.verify(&old.key_id(), "head", &sig), "a retired key still verifies");
        let without = Signer::load(&path, false, &[]).expect("load");
        assert!(!without.verify(&old.key_id(), "head", &sig), "unless it is no longer listed");
    }
}
