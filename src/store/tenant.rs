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

pub async fn insert_tenant(ex: impl PgExecutor<'_>, tenant_id: Uuid, name: &str, hmac_secret: &[u8]) -> Result<bool> {
    let done = sqlx::query(
        r#"
        INSERT INTO tenants (tenant_id, name, hmac_secret)
        VALUES ($1, $2, $3)
        ON CONFLICT (name) DO NOTHING
        "#,
    )
    .bind(tenant_id)
    .bind(name)
    .bind(hmac_secret)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn hmac_secret(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Vec<u8>> {
    Ok(sqlx::query_scalar("SELECT hmac_secret FROM tenants WHERE tenant_id = $1").bind(tenant_id).fetch_one(ex).await?)
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

/// Records use, at most once a minute per key (keeps the hot path write-free).
pub async fn touch_key(ex: impl PgExecutor<'_>, key_id: Uuid) -> Result<()> {
    sqlx::query(
        r#"
        UPDATE api_keys
        SET last_used_at = now()
        WHERE key_id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds')
        "#,
    )
    .bind(key_id)
    .execute(ex)
    .await?;
    Ok(())
}

/// Revokes the keys whose hash or displayed prefix matches; returns how many.
pub async fn revoke_key(ex: impl PgExecutor<'_>, key_hash: &[u8]) -> Result<u64> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL")
        .bind(key_hash)
        .execute(ex)
        .await?;
    Ok(done.rows_affected())
}
