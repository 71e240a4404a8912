//! Master keys in a file that the database never sees: JSON
//! `{"current": 2, "keys": {"1": "<base64>", "2": "<base64>"}}`, 32 random
//! bytes per version, mode 0600, created on first start. Tenant keys are
//! wrapped with AES-256-GCM (random 96-bit nonce; the tenant id and the
//! version are authenticated data, so a wrapped key moved to another tenant
//! or version does not decrypt). Every replica must read the same file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use anyhow::Context as _;
use base64::Engine;
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{KeyError, KeyProvider, WrappedKey};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The file's contents.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    current: u32,
    keys: BTreeMap<u32, String>,
}

/// The keys as loaded, with the file's modification time.
struct Loaded {
    current: u32,
    keys: BTreeMap<u32, LessSafeKey>,
    modified: Option<SystemTime>,
}

/// A [`KeyProvider`] over a master key file. It reads the file again when
/// the file changed and it meets a version it does not know or wraps a key,
/// so a `lethe keys rotate` reaches running servers that share the file.
pub struct FileKeyProvider {
    path: PathBuf,
    loaded: RwLock<Loaded>,
}

fn file_error(e: anyhow::Error) -> KeyError {
    KeyError::File(e)
}

fn random_key() -> String {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    B64.encode(key)
}

fn read(path: &Path) -> anyhow::Result<KeyFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("Failed to read {}", path.display()))?;
    let file: KeyFile = serde_json::from_str(&text).with_context(|| format!("{} is not a master key file", path.display()))?;
    anyhow::ensure!(file.keys.contains_key(&file.current), "{}: the current version {} has no key", path.display(), file.current);
    Ok(file)
}

fn load(path: &Path) -> anyhow::Result<Loaded> {
    warn_if_readable_by_others(path);
    let file = read(path)?;
    let mut keys = BTreeMap::new();
    for (version, b64) in &file.keys {
        let bytes = B64.decode(b64).ok().filter(|b| b.len() == 32);
        let bytes = bytes.with_context(|| format!("{}: key {version} is not 32 bytes of base64", path.display()))?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| anyhow::anyhow!("AES-256-GCM refused key {version}"))?;
        keys.insert(*version, LessSafeKey::new(key));
    }
    Ok(Loaded { current: file.current, keys, modified: modified(path) })
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the master key file is readable by others than its owner (chmod 600)");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// Writes `file` next to `path` and moves it into place: readers never see
/// half a file. With `replace` false, fails if `path` exists (AlreadyExists).
fn write(path: &Path, file: &KeyFile, replace: bool) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}.{}", std::process::id(), Uuid::new_v4().simple()));
    let json = serde_json::to_string_pretty(file).map_err(std::io::Error::other)?;
    write_private(&tmp, json.as_bytes())?;
    let moved = if replace { std::fs::rename(&tmp, path) } else { std::fs::hard_link(&tmp, path) };
    let _ = std::fs::remove_file(&tmp);
    moved
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

/// What the ciphertext is bound to.
fn aad(tenant_id: Uuid, version: u32) -> Vec<u8> {
    [b"lethe tenant hmac key\0".as_slice(), tenant_id.as_bytes(), &version.to_be_bytes()].concat()
}

impl FileKeyProvider {
    /// Loads the key file at `path`, creating it (one random version, mode
    /// 0600) when missing.
    ///
    /// # Errors
    /// When the file cannot be read, parsed or created.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if !path.exists() {
            let file = KeyFile { current: 1, keys: BTreeMap::from([(1, random_key())]) };
            match write(path, &file, false) {
                Ok(()) => tracing::info!(path = %path.display(), "created a new master key file"),
                // Another process made it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(file_error(anyhow::Error::new(e).context(format!("Failed to create {}", path.display())))),
            }
        }
        let loaded = load(path).map_err(file_error)?;
        Ok(Self { path: path.to_owned(), loaded: RwLock::new(loaded) })
    }

    /// Adds a new random version to the file and makes it current (creating
    /// the file if missing). Returns the new version.
    ///
    /// # Errors
    /// When the file cannot be read or written.
    pub fn add_version(path: &Path) -> Result<u32, KeyError> {
        Self::load_or_create(path)?;
        let mut file = read(path).map_err(file_error)?;
        let version = file.keys.keys().max().copied().unwrap_or(0) + 1;
        file.keys.insert(version, random_key());
        file.current = version;
        write(path, &file, true).with_context(|| format!("Failed to write {}", path.display())).map_err(file_error)?;
        Ok(version)
    }

    /// Removes every version but the current one and those in `keep`, and
    /// keeps the removed ones in a file of their own beside it
    /// (`<file>.retired-<unix time>`, mode 0600): the versions in use are
    /// those of the one database the command connected to, and another
    /// database served by the same file may still need one. The operator
    /// deletes that file once every database has been checked. Returns the
    /// removed versions and that file.
    ///
    /// # Errors
    /// When the files cannot be read or written.
    pub fn remove_versions_except(path: &Path, keep: &[u32]) -> Result<(Vec<u32>, Option<PathBuf>), KeyError> {
        let mut file = read(path).map_err(file_error)?;
        let current = file.current;
        let removed: Vec<u32> = file.keys.keys().copied().filter(|v| *v != current && !keep.contains(v)).collect();
        if removed.is_empty() {
            return Ok((removed, None));
        }
        let kept = KeyFile {
            current: removed[removed.len() - 1],
            keys: file.keys.iter().filter(|(v, _)| removed.contains(v)).map(|(v, k)| (*v, k.clone())).collect(),
        };
        let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".retired-{stamp}"));
        let backup = PathBuf::from(name);
        write(&backup, &kept, false).with_context(|| format!("Failed to write {}", backup.display())).map_err(file_error)?;
        file.keys.retain(|v, _| !removed.contains(v));
        write(path, &file, true).with_context(|| format!("Failed to write {}", path.display())).map_err(file_error)?;
        Ok((removed, Some(backup)))
    }

    /// Reads the file again if it changed since it was loaded.
    fn reload_if_changed(&self) -> Result<(), KeyError> {
        let now = modified(&self.path);
        let stale = self.loaded.read().map(|l| l.modified != now).unwrap_or(true);
        if stale {
            let fresh = load(&self.path).map_err(file_error)?;
            if let Ok(mut l) = self.loaded.write() {
                *l = fresh;
            }
        }
        Ok(())
    }

    fn poisoned() -> KeyError {
        file_error(anyhow::anyhow!("the master keys' lock is poisoned"))
    }

    fn seal(&self, tenant_id: Uuid, key: &[u8]) -> Result<WrappedKey, KeyError> {
        let loaded = self.loaded.read().map_err(|_| Self::poisoned())?;
        let version = loaded.current;
        let master = loaded.keys.get(&version).ok_or(KeyError::UnknownVersion(version))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut sealed = key.to_vec();
        master
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad(tenant_id, version)), &mut sealed)
            .map_err(|_| file_error(anyhow::anyhow!("AES-256-GCM sealing failed")))?;
        Ok(WrappedKey { version, ciphertext: [nonce.as_slice(), &sealed].concat() })
    }

    /// Ok(None) when the version is not loaded.
    fn open(&self, tenant_id: Uuid, wrapped: &WrappedKey) -> Result<Option<Vec<u8>>, KeyError> {
        let loaded = self.loaded.read().map_err(|_| Self::poisoned())?;
        let Some(master) = loaded.keys.get(&wrapped.version) else { return Ok(None) };
        if wrapped.ciphertext.len() < NONCE_LEN {
            return Err(KeyError::Corrupt(tenant_id));
        }
        let (nonce, sealed) = wrapped.ciphertext.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Corrupt(tenant_id))?;
        let mut buf = sealed.to_vec();
        let key = master
            .open_in_place(nonce, Aad::from(aad(tenant_id, wrapped.version)), &mut buf)
            .map_err(|_| KeyError::Corrupt(tenant_id))?;
        Ok(Some(key.to_vec()))
    }
}

#[async_trait::async_trait]
impl KeyProvider for FileKeyProvider {
    fn current_version(&self) -> u32 {
        self.loaded.read().map(|l| l.current).unwrap_or(0)
    }

    async fn wrap(&self, tenant_id: Uuid, key: &[u8]) -> Result<WrappedKey, KeyError> {
        // A rotation by another process changes the current version.
        self.reload_if_changed()?;
        self.seal(tenant_id, key)
    }

    async fn unwrap(&self, tenant_id: Uuid, wrapped: &WrappedKey) -> Result<Vec<u8>, KeyError> {
        if let Some(key) = self.open(tenant_id, wrapped)? {
            return Ok(key);
        }
        self.reload_if_changed()?;
        self.open(tenant_id, wrapped)?.ok_or(KeyError::UnknownVersion(wrapped.version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wrapped_key_opens_only_for_its_tenant_and_survives_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let provider = FileKeyProvider::load_or_create(&path).unwrap();
        let (tenant, other) = (Uuid::new_v4(), Uuid::new_v4());
        let key = [7u8; 32];
        let w = provider.wrap(tenant, &key).await.unwrap();
        assert_eq!(w.version, 1);
        assert!(!w.ciphertext.windows(32).any(|x| x == key), "the key is not in the clear");
        assert_eq!(provider.unwrap(tenant, &w).await.unwrap(), key);
        assert!(matches!(provider.unwrap(other, &w).await, Err(KeyError::Corrupt(_))));

        assert_eq!(FileKeyProvider::add_version(&path).unwrap(), 2);
        let rewrapped = provider.wrap(tenant, &key).await.unwrap();
        assert_eq!(rewrapped.version, 2, "a running provider picks the rotation up");
        assert_eq!(provider.unwrap(tenant, &w).await.unwrap(), key, "version 1 still opens");
        let (removed, kept) = FileKeyProvider::remove_versions_except(&path, &[]).unwrap();
        assert_eq!(removed, vec![1]);
        let fresh = FileKeyProvider::load_or_create(&path).unwrap();
        assert!(matches!(fresh.unwrap(tenant, &w).await, Err(KeyError::UnknownVersion(1))));
        assert_eq!(fresh.unwrap(tenant, &rewrapped).await.unwrap(), key);
        // The removed version is kept beside it, until the operator deletes it.
        let kept = FileKeyProvider::load_or_create(&kept.expect("kept")).unwrap();
        assert_eq!(kept.unwrap(tenant, &w).await.unwrap(), key);
    }
}
