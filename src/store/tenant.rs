//! Tenants and API keys.

use sqlx::PgExecutor;
use uuid::Uuid;

use super::Result;

/// A stored API key, found by its hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub key_id: Uuid,
    pub tenant_id: Uuid,
    pub kind: String,
    pub revoked: bool,
}

/// A new tenant, without its HMAC key: `keys::tenant_key` makes it, wrapped,
/// on first use.
pub async fn insert_tenant(ex: impl PgExecutor<'_>, tenant_id: Uuid, name: &str) -> Result<bool> {
    let done = sqlx::query(
        r#"
        INSERT INTO tenants (tenant_id, name)
        VALUES ($1, $2)
        ON CONFLICT (name) DO NOTHING
        "#,
    )
    .bind(tenant_id)
    .bind(name)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What the database holds of a tenant's HMAC key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyMaterial {
    /// The plaintext key of earlier versions, until it is wrapped.
    #[sqlx(rename = "hmac_secret")]
    pub legacy: Option<Vec<u8>>,
    #[sqlx(rename = "hmac_key_wrapped")]
    pub wrapped: Option<Vec<u8>>,
    /// The master key version `wrapped` is encrypted under.
    #[sqlx(rename = "hmac_key_version")]
    pub version: Option<i32>,
}

pub async fn key_material(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Option<KeyMaterial>> {
    Ok(sqlx::query_as("SELECT hmac_secret, hmac_key_wrapped, hmac_key_version FROM tenants WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(ex)
        .await?)
}

/// Stores the tenant's key wrapped (and clears the legacy plaintext) if the
/// row still holds what `seen` read; false when another writer came first.
pub async fn store_wrapped_key(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    seen: &KeyMaterial,
    wrapped: &[u8],
    version: i32,
) -> Result<bool> {
    let done = sqlx::query(
        r#"
        UPDATE tenants
        SET hmac_key_wrapped = $2, hmac_key_version = $3, hmac_secret = NULL
        WHERE tenant_id = $1
          AND hmac_key_wrapped IS NOT DISTINCT FROM $4
          AND hmac_key_version IS NOT DISTINCT FROM $5
          AND hmac_secret IS NOT DISTINCT FROM $6
        "#,
    )
    .bind(tenant_id)
    .bind(wrapped)
    .bind(version)
    .bind(&seen.wrapped)
    .bind(seen.version)
    .bind(&seen.legacy)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Tenants whose key is not wrapped under master key `version` (legacy
/// plaintext, none yet, or an older version).
pub async fn tenants_not_wrapped_under(ex: impl PgExecutor<'_>, version: i32) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar("SELECT tenant_id FROM tenants WHERE hmac_key_version IS DISTINCT FROM $1 ORDER BY tenant_id")
        .bind(version)
        .fetch_all(ex)
        .await?)
}

/// One tenant per master key version in use: (version, tenant).
pub async fn one_tenant_per_key_version(ex: impl PgExecutor<'_>) -> Result<Vec<(i32, Uuid)>> {
    Ok(sqlx::query_as(
        "SELECT DISTINCT ON (hmac_key_version) hmac_key_version, tenant_id FROM tenants \
         WHERE hmac_key_version IS NOT NULL ORDER BY hmac_key_version, tenant_id",
    )
    .fetch_all(ex)
    .await?)
}

/// The master key versions that tenant keys are wrapped under.
pub async fn key_versions_in_use(ex: impl PgExecutor<'_>) -> Result<Vec<i32>> {
    Ok(sqlx::query_scalar("SELECT DISTINCT hmac_key_version FROM tenants WHERE hmac_key_version IS NOT NULL")
        .fetch_all(ex)
        .await?)
}

pub async fn insert_key(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    kind: &str,
    key_hash: &[u8],
    key_prefix: &str,
) -> Result<Uuid> {
    let key_id = Uuid::new_v4();
    sqlx::query(
        r#"
        INSERT INTO api_keys (key_id, tenant_id, kind, key_hash, key_prefix)
        VALUES ($1, $2, $3, $4, $5)
        "#,
    )
    .bind(key_id)
    .bind(tenant_id)
    .bind(kind)
    .bind(key_hash)
    .bind(key_prefix)
    .execute(ex)
    .await?;
    Ok(key_id)
}

pub async fn find_key(ex: impl PgExecutor<'_>, key_hash: &[u8]) -> Result<Option<KeyRow>> {
    Ok(sqlx::query_as(
        r#"
        SELECT key_id, tenant_id, kind, revoked_at IS NOT NULL AS revoked
        FROM api_keys
        WHERE key_hash = $1
        "#,
    )
    .bind(key_hash)
    .fetch_optional(ex)
    .await?)
}

/// The key with this hash, recording its use (at most once a minute per
/// key, so the hot path rarely writes; never for a revoked key), in one
/// statement: every request authenticates, and this was two.
pub async fn use_key(ex: impl PgExecutor<'_>, key_hash: &[u8]) -> Result<Option<KeyRow>> {
    Ok(sqlx::query_as(
        r#"
        WITH k AS (
            SELECT key_id, tenant_id, kind, revoked_at IS NOT NULL AS revoked
            FROM api_keys
            WHERE key_hash = $1
        ),
        touched AS (
            UPDATE api_keys a SET last_used_at = now()
            FROM k
            WHERE a.key_id = k.key_id AND NOT k.revoked
              AND (a.last_used_at IS NULL OR a.last_used_at < now() - interval '60 seconds')
        )
        SELECT key_id, tenant_id, kind, revoked FROM k
        "#,
    )
    .bind(key_hash)
    .fetch_optional(ex)
    .await?)
}

/// Revokes the keys whose hash or displayed prefix matches; returns how many.
pub async fn revoke_key(ex: impl PgExecutor<'_>, key_hash: &[u8]) -> Result<u64> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL")
        .bind(key_hash)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}
