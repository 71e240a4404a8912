//! The deletion log (append-only, hash-chained per tenant), its chain heads,
//! and certificates.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use super::Result;

/// A log entry as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogRow {
    pub seq: i64,
    pub kind: String,
    pub job_id: Option<Uuid>,
    pub subject_hash: Option<Vec<u8>>,
    pub body: String,
    pub prev_hash: Vec<u8>,
    pub entry_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// How `entry_hash` was computed (see `audit`): 1 before every shown
    /// column was covered, 2 since.
    pub hash_version: i16,
}

/// The tenant's head as stored, with its signature (none for heads written
/// before heads were signed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeadRow {
    pub seq: i64,
    pub entry_hash: Vec<u8>,
    pub signed_at: Option<DateTime<Utc>>,
    pub key_id: Option<String>,
    pub signature: Option<Vec<u8>>,
}

/// A head's signature, written with it.
#[derive(Debug, Clone)]
pub struct HeadSignature<'a> {
    pub signed_at: DateTime<Utc>,
    pub key_id: &'a str,
    pub signature: &'a [u8],
}

/// The tenant's chain head, locked until the transaction ends, so that
/// appends are serialised per tenant. (0, 32 zero bytes) for an empty log.
pub async fn lock_head(tx: &mut Transaction<'_, Postgres>, tenant_id: Uuid) -> Result<(i64, Vec<u8>)> {
    // One statement: creates the head on the first append, and locks it
    // either way (the no-op update takes the row lock and returns the head).
    Ok(sqlx::query_as(
        r#"
        INSERT INTO deletion_log_heads (tenant_id, seq, entry_hash) VALUES ($1, 0, $2)
        ON CONFLICT (tenant_id) DO UPDATE SET seq = deletion_log_heads.seq
        RETURNING seq, entry_hash
        "#,
    )
    .bind(tenant_id)
    .bind(vec![0u8; 32])
    .fetch_one(&mut **tx)
    .await?)
}

pub async fn head(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Option<HeadRow>> {
    Ok(sqlx::query_as("SELECT seq, entry_hash, signed_at, key_id, signature FROM deletion_log_heads WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(ex)
        .await?)
}

/// Appends an entry and moves the head, in one statement (the head lock is
/// held from `lock_head` to commit: every round trip in between delays the
/// next append of the tenant). The caller computed the hash over `prev_hash`
/// and `body` and holds the head lock.
pub async fn insert_entry(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    entry: &LogRow,
    head: &HeadSignature<'_>,
) -> Result<()> {
    sqlx::query(
        r#"
        WITH moved AS (
            UPDATE deletion_log_heads SET seq = $2, entry_hash = $8, signed_at = $11, key_id = $12, signature = $13
            WHERE tenant_id = $1
        )
        INSERT INTO deletion_log (tenant_id, seq, kind, job_id, subject_hash, body, prev_hash, entry_hash, created_at,
                                  hash_version)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        "#,
    )
    .bind(tenant_id)
    .bind(entry.seq)
    .bind(&entry.kind)
    .bind(entry.job_id)
    .bind(&entry.subject_hash)
    .bind(&entry.body)
    .bind(&entry.prev_hash)
    .bind(&entry.entry_hash)
    .bind(entry.created_at)
    .bind(entry.hash_version)
    .bind(head.signed_at)
    .bind(head.key_id)
    .bind(head.signature)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn entries(ex: impl PgExecutor<'_>, tenant_id: Uuid, after_seq: i64, limit: i64) -> Result<Vec<LogRow>> {
    Ok(sqlx::query_as(
        r#"
        SELECT seq, kind, job_id, subject_hash, body, prev_hash, entry_hash, created_at, hash_version
        FROM deletion_log WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
        "#,
    )
    .bind(tenant_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// A stored certificate.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CertificateRow {
    pub job_id: Uuid,
    pub body: String,
    pub signature: Vec<u8>,
    pub public_key: Vec<u8>,
    /// Id of the signing key (none for certificates made before key ids).
    pub key_id: Option<String>,
}

pub async fn insert_certificate(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    cert: &CertificateRow,
) -> Result<()> {
    sqlx::query(
        r#"
        INSERT INTO certificates (job_id, tenant_id, body, signature, public_key, key_id)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (job_id) DO NOTHING
        "#,
    )
    .bind(cert.job_id)
    .bind(tenant_id)
    .bind(&cert.body)
    .bind(&cert.signature)
    .bind(&cert.public_key)
    .bind(&cert.key_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn certificate(ex: impl PgExecutor<'_>, tenant_id: Uuid, job_id: Uuid) -> Result<Option<CertificateRow>> {
    Ok(sqlx::query_as(
        "SELECT job_id, body, signature, public_key, key_id FROM certificates WHERE tenant_id = $1 AND job_id = $2",
    )
    .bind(tenant_id)
    .bind(job_id)
    .fetch_optional(ex)
    .await?)
}

/// Entry hashes that certificates of the tenant claim as the chain head at
/// their completion: each must still be in the chain.
pub async fn certified_heads(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Vec<(Uuid, String)>> {
    Ok(sqlx::query_as(
        "SELECT job_id, (body::jsonb ->> 'log_entry_hash') FROM certificates WHERE tenant_id = $1 ORDER BY created_at",
    )
    .bind(tenant_id)
    .fetch_all(ex)
    .await?)
}
