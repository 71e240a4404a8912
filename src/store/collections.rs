//! Collections registered with Lethe: their settings and backend names.

use sqlx::PgExecutor;
use uuid::Uuid;

use super::Result;
use crate::domain::{Backend, CollectionName, CollectionSpec, Distance, Mapping, Screening};

#[derive(sqlx::FromRow)]
pub(super) struct CollectionRow {
    collection_id: Uuid,
    tenant_id: Uuid,
    name: String,
    backend: String,
    backend_name: String,
    dimension: i32,
    distance: String,
    embedding_model: String,
    store_text: bool,
    retention_days: i32,
    screening: String,
    created_at: chrono::DateTime<chrono::Utc>,
    mapping: Option<sqlx::types::Json<Mapping>>,
}

impl CollectionRow {
    pub(super) fn into_spec(self) -> Result<CollectionSpec> {
        let bad = |m: String| super::StoreError::Unexpected(sqlx::Error::Decode(m.into()));
        Ok(CollectionSpec {
            collection_id: self.collection_id,
            tenant_id: self.tenant_id,
            name: CollectionName::parse("name", &self.name).map_err(|e| bad(e.to_string()))?,
            backend: self.backend.parse::<Backend>().map_err(bad)?,
            backend_name: self.backend_name,
            dimension: usize::try_from(self.dimension).unwrap_or(0),
            distance: self.distance.parse::<Distance>().map_err(bad)?,
            embedding_model: self.embedding_model,
            store_text: self.store_text,
            retention_days: u32::try_from(self.retention_days).unwrap_or(0),
            screening: self.screening.parse::<Screening>().map_err(bad)?,
            created_at: self.created_at,
            mapping: self.mapping.map(|m| std::sync::Arc::new(m.0)),
        })
    }
}

const COLLECTION_COLUMNS: &str = "collection_id, tenant_id, name, backend, backend_name, dimension, distance, \
     embedding_model, store_text, retention_days, screening, created_at, mapping";

/// Inserts a collection unless the tenant has one of that name; returns the stored one.
pub async fn insert_collection(ex: &mut sqlx::PgConnection, spec: &CollectionSpec) -> Result<CollectionSpec> {
    sqlx::query(
        r#"
        INSERT INTO collections (collection_id, tenant_id, name, backend, backend_name, dimension,
                                 distance, embedding_model, store_text, retention_days, screening,
                                 mapping, scope_key)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT (tenant_id, name) DO NOTHING
        "#,
    )
    .bind(spec.collection_id)
    .bind(spec.tenant_id)
    .bind(spec.name.as_str())
    .bind(spec.backend.as_str())
    .bind(&spec.backend_name)
    .bind(i32::try_from(spec.dimension).unwrap_or(i32::MAX))
    .bind(spec.distance.as_str())
    .bind(&spec.embedding_model)
    .bind(spec.store_text)
    .bind(i32::try_from(spec.retention_days).unwrap_or(i32::MAX))
    .bind(spec.screening.as_str())
    .bind(spec.mapping.as_deref().map(sqlx::types::Json))
    .bind(spec.mapping.as_deref().map(Mapping::scope_key).unwrap_or_default())
    .execute(&mut *ex)
    .await?;
    collection_by_name(&mut *ex, spec.tenant_id, spec.name.as_str())
        .await?
        .ok_or_else(|| super::StoreError::Unexpected(sqlx::Error::RowNotFound))
}

/// Every collection attached to a store of `backend`, of any tenant: its
/// backend name as attached and its scope key (`Mapping::scope_key`; empty:
/// unscoped).
pub async fn attached_scopes(ex: impl PgExecutor<'_>, backend: &str) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as("SELECT backend_name, scope_key FROM collections WHERE backend = $1 AND mapping IS NOT NULL")
        .bind(backend)
        .fetch_all(ex)
        .await?)
}

/// Serialises Attach's check of the stores attached so far with its
/// insert (a transaction-level lock, held to the transaction's end).
pub async fn lock_attach(ex: impl PgExecutor<'_>) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('lethe-attach'))").execute(ex).await?;
    Ok(())
}

pub async fn collection_by_name(ex: impl PgExecutor<'_>, tenant_id: Uuid, name: &str) -> Result<Option<CollectionSpec>> {
    let row: Option<CollectionRow> =
        sqlx::query_as(&format!("SELECT {COLLECTION_COLUMNS} FROM collections WHERE tenant_id = $1 AND name = $2"))
            .bind(tenant_id)
            .bind(name)
            .fetch_optional(ex)
            .await?;
    row.map(CollectionRow::into_spec).transpose()
}

pub async fn collection_by_id(ex: impl PgExecutor<'_>, tenant_id: Uuid, collection_id: Uuid) -> Result<Option<CollectionSpec>> {
    let row: Option<CollectionRow> =
        sqlx::query_as(&format!("SELECT {COLLECTION_COLUMNS} FROM collections WHERE tenant_id = $1 AND collection_id = $2"))
            .bind(tenant_id)
            .bind(collection_id)
            .fetch_optional(ex)
            .await?;
    row.map(CollectionRow::into_spec).transpose()
}

pub async fn list_collections(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Vec<CollectionSpec>> {
    let rows: Vec<CollectionRow> =
        sqlx::query_as(&format!("SELECT {COLLECTION_COLUMNS} FROM collections WHERE tenant_id = $1 ORDER BY name"))
            .bind(tenant_id)
            .fetch_all(ex)
            .await?;
    rows.into_iter().map(CollectionRow::into_spec).collect()
}
