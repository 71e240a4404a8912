//! The tenants' HMAC keys, kept out of the database.
//!
//! A tenant's HMAC key names people in tombstones, identifier keys and the
//! deletion log (`Context::keyed_hash`). Anyone holding it and a dump could
//! test guesses ("was alice@example.com erased?"), so the database holds it
//! only wrapped (encrypted) under a master key that a [`KeyProvider`] keeps
//! elsewhere: today a key file ([`FileKeyProvider`]); a KMS can implement
//! the trait later.
//!
//! Rotation replaces the master key, not the tenant key: a tombstone's hash
//! cannot be recomputed under a new tenant key (the erased identifiers are
//! gone by design), so the tenant key stays and is re-wrapped under the new
//! master version ([`seal_all`]). A tenant key is made on first use; the
//! plaintext key that earlier versions stored (`tenants.hmac_secret`) is
//! wrapped and cleared by the first server that starts with a master key.

mod file;

use std::sync::Arc;

use rand::RngCore;
use sqlx::PgPool;
use uuid::Uuid;

pub use file::FileKeyProvider;

use crate::config::{KeyProviderKind, KeySettings};
use crate::store::tenant::{self, KeyMaterial};

/// A tenant key encrypted under one version of the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub version: u32,
    pub ciphertext: Vec<u8>,
}

/// Errors of a key provider or of resolving a tenant's key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The master key version a tenant key is wrapped under is not configured.
    #[error("master key version {0} is not configured (keys.master_key_file)")]
    UnknownVersion(u32),
    /// The wrapped key does not decrypt: a wrong master key or altered bytes.
    #[error("the wrapped key of tenant {0} does not decrypt under its master key")]
    Corrupt(Uuid),
    /// The provider cannot be reached (a KMS); retry later.
    #[error("the key provider is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("the master key file is unusable")]
    File(#[source] anyhow::Error),
    /// The master key file is not the one this database's tenant keys need.
    #[error("{0}")]
    WrongFile(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Keeps master keys out of the database and wraps tenant keys with them.
#[async_trait::async_trait]
pub trait KeyProvider: Send + Sync {
    /// The master key version that new wraps use.
    fn current_version(&self) -> u32;

    /// Encrypts a tenant key under the current master key, bound to the tenant.
    async fn wrap(&self, tenant_id: Uuid, key: &[u8]) -> Result<WrappedKey, KeyError>;

    /// Decrypts a tenant key wrapped by `wrap` (any configured version).
    async fn unwrap(&self, tenant_id: Uuid, wrapped: &WrappedKey) -> Result<Vec<u8>, KeyError>;
}

/// The configured provider.
///
/// # Errors
/// When the key file cannot be read or created.
pub fn provider(settings: &KeySettings) -> Result<Arc<dyn KeyProvider>, KeyError> {
    match settings.provider {
        KeyProviderKind::File => Ok(Arc::new(FileKeyProvider::load_or_create(&settings.master_key_file)?)),
    }
}

/// The configured provider, after checking that it holds the keys this
/// database's tenant keys are wrapped under: a missing master key file is
/// made only for a database with no wrapped tenant key yet (a wrong path
/// would otherwise make a new key that opens none of them, and every call
/// needing a tenant key would fail), and the file must open one tenant key
/// of every version in use.
///
/// # Errors
/// `WrongFile` naming the setting and the versions; provider and database failures.
pub async fn checked_provider(pool: &PgPool, settings: &KeySettings) -> Result<Arc<dyn KeyProvider>, KeyError> {
    let in_use = tenant::one_tenant_per_key_version(pool).await?;
    let path = &settings.master_key_file;
    let versions = || in_use.iter().map(|(v, _)| v.to_string()).collect::<Vec<_>>().join(", ");
    if matches!(settings.provider, KeyProviderKind::File) && !path.exists() && !in_use.is_empty() {
        return Err(KeyError::WrongFile(format!(
            "keys.master_key_file `{}` does not exist, but this database's tenant keys are wrapped under master key \
             version(s) {}: point it at the file they were made with (a new file would open none of them)",
            path.display(),
            versions()
        )));
    }
    let keys = provider(settings)?;
    for (version, tenant_id) in &in_use {
        let Some(found) = tenant::key_material(pool, *tenant_id).await? else { continue };
        let Some(w) = wrapped(&found) else { continue };
        match keys.unwrap(*tenant_id, &w).await {
            Ok(_) => {}
            Err(KeyError::Corrupt(_) | KeyError::UnknownVersion(_)) => {
                return Err(KeyError::WrongFile(format!(
                    "keys.master_key_file `{}` does not open this database's tenant keys (master key version {version} \
                     of version(s) {}): is it the file they were made with?",
                    path.display(),
                    versions()
                )));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(keys)
}

/// The tenant's HMAC key: unwrapped, or made (or moved out of the legacy
/// column) and stored wrapped on first use. Concurrent callers agree: a
/// store only succeeds over the state it read, the loser reads again.
///
/// # Errors
/// Unknown tenant, provider and database failures.
pub async fn tenant_key(pool: &PgPool, keys: &dyn KeyProvider, tenant_id: Uuid) -> Result<Vec<u8>, KeyError> {
    for _ in 0..3 {
        let Some(found) = tenant::key_material(pool, tenant_id).await? else {
            return Err(crate::store::StoreError::Unexpected(sqlx::Error::RowNotFound).into());
        };
        if let Some(wrapped) = wrapped(&found) {
            return keys.unwrap(tenant_id, &wrapped).await;
        }
        let key = found.legacy.clone().unwrap_or_else(new_key);
        if store(pool, keys, tenant_id, &found, &key).await? {
            return Ok(key);
        }
    }
    Err(KeyError::Store(crate::store::StoreError::Unexpected(sqlx::Error::Protocol(
        "the tenant key kept changing while being stored".into(),
    ))))
}

/// Wraps every tenant key that is not wrapped under the current master
/// version (the legacy plaintext column included, which is cleared), and
/// makes the missing ones. Returns how many tenants were written.
///
/// # Errors
/// Provider and database failures.
pub async fn seal_all(pool: &PgPool, keys: &dyn KeyProvider) -> Result<usize, KeyError> {
    let current = i32::try_from(keys.current_version()).unwrap_or(i32::MAX);
    let mut sealed = 0;
    for tenant_id in tenant::tenants_not_wrapped_under(pool, current).await? {
        let Some(found) = tenant::key_material(pool, tenant_id).await? else { continue };
        let key = match (wrapped(&found), &found.legacy) {
            (Some(w), _) if w.version == keys.current_version() => continue,
            (Some(w), _) => keys.unwrap(tenant_id, &w).await?,
            (None, Some(legacy)) => legacy.clone(),
            (None, None) => new_key(),
        };
        // Lost to a concurrent store: that one wrapped under a version too.
        sealed += usize::from(store(pool, keys, tenant_id, &found, &key).await?);
    }
    Ok(sealed)
}

fn wrapped(found: &KeyMaterial) -> Option<WrappedKey> {
    let (ciphertext, version) = (found.wrapped.clone()?, found.version?);
    Some(WrappedKey { version: u32::try_from(version).ok()?, ciphertext })
}

fn new_key() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

async fn store(pool: &PgPool, keys: &dyn KeyProvider, tenant_id: Uuid, found: &KeyMaterial, key: &[u8]) -> Result<bool, KeyError> {
    let w = keys.wrap(tenant_id, key).await?;
    let version = i32::try_from(w.version).map_err(|_| KeyError::UnknownVersion(w.version))?;
    Ok(tenant::store_wrapped_key(pool, tenant_id, found, &w.ciphertext, version).await?)
}

/// `lethe keys rotate`: a new master key version becomes current and every
/// tenant key is re-wrapped under it. Returns the new version and how many
/// tenant keys were re-wrapped.
///
/// # Errors
/// File, provider and database failures.
pub async fn rotate(pool: &PgPool, settings: &KeySettings) -> Result<(u32, usize), KeyError> {
    // A wrong path must not become a new file, nor a file that opens nothing.
    checked_provider(pool, settings).await?;
    let version = FileKeyProvider::add_version(&settings.master_key_file)?;
    let keys = provider(settings)?;
    Ok((version, seal_all(pool, &*keys).await?))
}

/// `lethe keys retire`: removes the master key versions that no tenant key
/// is wrapped under anymore (and that are not current). Returns them and
/// the file beside the master key file that keeps them.
///
/// # Errors
/// File and database failures.
pub async fn retire(pool: &PgPool, settings: &KeySettings) -> Result<(Vec<u32>, Option<std::path::PathBuf>), KeyError> {
    checked_provider(pool, settings).await?;
    let used: Vec<u32> = tenant::key_versions_in_use(pool).await?.into_iter().filter_map(|v| u32::try_from(v).ok()).collect();
    FileKeyProvider::remove_versions_except(&settings.master_key_file, &used)
}
