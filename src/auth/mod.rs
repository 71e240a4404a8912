//! API keys and who may do what. Keys look like `sk_…`, `pk_…`, `ak_…`
//! followed by 32 base64url characters (192 random bits); only their SHA-256
//! is stored. Handlers call [`Authenticator::authorize`] first and never
//! parse headers themselves.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tonic::metadata::MetadataMap;
use uuid::Uuid;

use crate::error::{LetheError, Result};
use crate::store::tenant;

/// The three kinds of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Everything.
    Secret,
    /// Ingest and track only: safe inside a pipeline.
    Publishable,
    /// Read-only: logs, counts, certificates, verification.
    Auditor,
}

impl KeyKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Secret => "sk_",
            Self::Publishable => "pk_",
            Self::Auditor => "ak_",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Publishable => "publishable",
            Self::Auditor => "auditor",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "secret" => Some(Self::Secret),
            "publishable" => Some(Self::Publishable),
            "auditor" => Some(Self::Auditor),
            _ => None,
        }
    }
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ingest, Track, PutSubject.
    Write,
    /// Reads for auditors: jobs, counts, logs, certificates, residual search.
    Audit,
    /// Erase, legal hold, collection management.
    Manage,
}

/// The authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
    pub kind: KeyKind,
}

impl Principal {
    /// # Errors
    /// `PermissionDenied` with the reason code the documentation names.
    pub fn require(&self, action: Action) -> Result<()> {
        let allowed = match action {
            Action::Write => matches!(self.kind, KeyKind::Secret | KeyKind::Publishable),
            Action::Audit => matches!(self.kind, KeyKind::Secret | KeyKind::Auditor),
            Action::Manage => self.kind == KeyKind::Secret,
        };
        if allowed {
            return Ok(());
        }
        let reason = match action {
            Action::Write => "requires_secret_or_publishable_key",
            Action::Audit => "requires_auditor_or_secret_key",
            Action::Manage => "requires_secret_key",
        };
        Err(LetheError::PermissionDenied { reason })
    }
}

/// Creates a new random key of a kind.
pub fn generate_key(kind: KeyKind) -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{}{}", kind.prefix(), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The keys of a new tenant, shown once.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub tenant_id: Uuid,
    pub secret_key: String,
    pub publishable_key: String,
    pub auditor_key: String,
}

/// Checks bearer keys against the database.
#[derive(Clone)]
pub struct Authenticator {
    pool: PgPool,
}

impl Authenticator {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Authenticates the request's bearer key and checks it may do `action`.
    ///
    /// # Errors
    /// `Unauthenticated` for a missing, unknown or revoked key;
    /// `PermissionDenied` for a key of the wrong kind.
    pub async fn authorize(&self, metadata: &MetadataMap, action: Action) -> Result<Principal> {
        let token = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.strip_prefix("Bearer "))
            .ok_or(LetheError::Unauthenticated)?;
        self.authorize_key(token, action).await
    }

    /// Authenticates a key given as text (the web view's sign-in form) and
    /// checks it may do `action`: the same check as every rpc's.
    ///
    /// # Errors
    /// As [`Authenticator::authorize`].
    pub async fn authorize_key(&self, key: &str, action: Action) -> Result<Principal> {
        let token = key.trim();
        let row = tenant::use_key(&self.pool, &hash_key(token)).await?.ok_or(LetheError::Unauthenticated)?;
        let kind = KeyKind::parse(&row.kind).ok_or(LetheError::Unauthenticated)?;
        // The kind is part of the key text too: a key whose prefix disagrees
        // with its stored kind is not a key we issued.
        if row.revoked || !token.starts_with(kind.prefix()) {
            return Err(LetheError::Unauthenticated);
        }
        let principal = Principal { tenant_id: row.tenant_id, key_id: row.key_id, kind };
        principal.require(action)?;
        Ok(principal)
    }

    /// Whether a key that signed in earlier is still live (not revoked): a
    /// web session ends with its key.
    ///
    /// # Errors
    /// Database failures.
    pub async fn still_live(&self, key_hash: &[u8; 32]) -> Result<bool> {
        Ok(tenant::find_key(&self.pool, key_hash).await?.is_some_and(|row| !row.revoked))
    }
}

/// Creates a tenant with one key of each kind. Names are unique.
///
/// # Errors
/// `AlreadyExists` when the name is taken.
pub async fn create_tenant(pool: &PgPool, name: &str) -> Result<NewTenant> {
    crate::domain::bounded_text("name", name, 128)?;
    let tenant_id = Uuid::new_v4();
    let mut tx = pool.begin().await.map_err(crate::store::StoreError::from)?;
    // No HMAC key here: the server makes it on first use, wrapped under its
    // master key (`keys`), which this command need not hold.
    if !tenant::insert_tenant(&mut *tx, tenant_id, name).await? {
        return Err(LetheError::AlreadyExists { message: format!("tenant `{name}` exists") });
    }
    let mut keys = Vec::new();
    for kind in [KeyKind::Secret, KeyKind::Publishable, KeyKind::Auditor] {
        let key = generate_key(kind);
        tenant::insert_key(&mut *tx, tenant_id, kind.as_str(), &hash_key(&key), &key[..8]).await?;
        keys.push(key);
    }
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    let [secret_key, publishable_key, auditor_key]: [String; 3] =
        keys.try_into().map_err(|_| LetheError::Unexpected(anyhow::anyhow!("three keys expected")))?;
    Ok(NewTenant { tenant_id, secret_key, publishable_key, auditor_key })
}

/// Revokes a key given in full.
///
/// # Errors
/// `NotFound` when no live key matches.
pub async fn revoke_key(pool: &PgPool, key: &str) -> Result<()> {
    match tenant::revoke_key(pool, &hash_key(key)).await? {
        0 => Err(LetheError::NotFound("key".into())),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(kind: KeyKind) -> Principal {
        Principal { tenant_id: Uuid::nil(), key_id: Uuid::nil(), kind }
    }

    #[test]
    fn key_kinds_allow_exactly_their_actions() {
        use Action::*;
        use KeyKind::*;
        let table = [
            (Secret, [true, true, true]),
            (Publishable, [true, false, false]),
            (Auditor, [false, true, false]),
        ];
        for (kind, expected) in table {
            for (action, ok) in [Write, Audit, Manage].into_iter().zip(expected) {
                assert_eq!(principal(kind).require(action).is_ok(), ok, "{kind:?} {action:?}");
            }
        }
    }

    #[test]
    fn publishable_key_on_erase_names_the_secret_key_requirement() {
        let err = principal(KeyKind::Publishable).require(Action::Manage).unwrap_err();
        assert!(matches!(err, LetheError::PermissionDenied { reason: "requires_secret_key" }));
    }

    #[test]
    fn generated_keys_carry_their_prefix_and_differ() {
        let a = generate_key(KeyKind::Secret);
        let b = generate_key(KeyKind::Secret);
        assert!(a.starts_with("sk_") && a.len() == 35);
        assert_ne!(a, b);
        assert_ne!(hash_key(&a), hash_key(&b));
    }
}
