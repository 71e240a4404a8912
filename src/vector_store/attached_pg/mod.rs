//! Attached pgvector tables: tables a framework (LangChain, LlamaIndex) or a
//! pipeline created, in Lethe's database, read and deleted from through the
//! collection's [`Mapping`](crate::domain::Mapping). Lethe never writes to
//! them except to delete erased points (and, when asked at Attach, to create
//! the index its tag filter needs).
//!
//! Every statement carries the mapping's scope (LangChain's shared table
//! holds many collections), names come from the mapping as quoted
//! identifiers, and every value is a bound parameter. The trait speaks UUID
//! keys ([`NativeId::key`](crate::domain::NativeId::key)); text ids whose key
//! is a hash are found again through `attached_point_ids`, whose rows are
//! written when such a point is handed out and deleted with the point.
//!
//! # Layout
//! - `sql`: quoted names, bound parameters, scope/tag/id conditions.
//! - `rows`: rows → points, and the `attached_point_ids` rows.
//! - `select`: counts and deletes.
//! - `read`: retrieve, scroll, exhaustive search.
//! - `inspect` + `catalog`: Attach's checks of a table against its mapping.

mod catalog;
mod inspect;
mod read;
mod rows;
mod select;
mod sql;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use uuid::Uuid;

use self::sql::{JsonRead, TableName, Target};
use super::{
    Inspection, Keep, PhysicalOutcome, Result, ScoredPoint, Selector, StoredPoint, VectorPoint, VectorStore,
    VectorStoreError,
};
use crate::domain::{Backend, CollectionSpec, FieldKind, Mapping};

/// Attached tables over the same pool as lineage.
#[derive(Clone)]
pub struct AttachedPgStore {
    pool: PgPool,
    /// `varchar[]` or `text[]` per (table, tag column) of `TextArray` tags.
    array_types: Arc<Mutex<HashMap<(String, String), &'static str>>>,
    /// Collections whose json was found holding a `\u0000` escape: read
    /// with [`JsonRead::Tolerant`] from then on (in this process).
    tolerant: Arc<Mutex<HashSet<Uuid>>>,
}

impl AttachedPgStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, array_types: Arc::default(), tolerant: Arc::default() }
    }

    /// Runs `op`, and once more with the collection's json read
    /// tolerantly when a row's `\u0000` escape failed it (see [`JsonRead`]).
    async fn tolerating_nul<T, F, Fut>(&self, spec: &CollectionSpec, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        // Retried when this attempt read with the cast, even if another call
        // failing at the same time marked the collection first.
        let cast = self.json_read(spec) == JsonRead::Cast;
        match op().await {
            Err(e) if cast && failed_on_nul_escape(&e) && self.read_tolerantly(spec) => {
                tracing::warn!(
                    collection = %spec.name,
                    "a row of the attached table holds a \\u0000 escape in json: its json is read without the index from now on"
                );
                op().await
            }
            other => other,
        }
    }

    /// Marks `spec`'s json for tolerant reading (once); false when the
    /// collection reads no json column (a failure then has another cause).
    fn read_tolerantly(&self, spec: &CollectionSpec) -> bool {
        let uses_json = mapping_of(spec).is_ok_and(|m| {
            [Some(&m.tags), m.text.as_ref(), m.source.as_ref(), m.timestamp.as_ref(), m.scope.as_ref().map(|s| &s.field)]
                .into_iter()
                .flatten()
                .any(|f| f.kind == FieldKind::Json)
        });
        if uses_json && let Ok(mut t) = self.tolerant.lock() {
            t.insert(spec.collection_id);
        }
        uses_json
    }

    fn json_read(&self, spec: &CollectionSpec) -> JsonRead {
        if self.tolerant.lock().is_ok_and(|t| t.contains(&spec.collection_id)) {
            JsonRead::Tolerant
        } else {
            JsonRead::Cast
        }
    }

    /// What statements on `spec`'s table need.
    async fn target<'a>(&self, spec: &'a CollectionSpec) -> Result<Target<'a>> {
        let mapping = mapping_of(spec)?;
        let table = TableName::parse(&spec.backend_name).map_err(|m| backend_error(m, None))?;
        let unchecked = [Some(&mapping.tags), mapping.text.as_ref(), mapping.source.as_ref(), mapping.timestamp.as_ref()]
            .into_iter()
            .chain([mapping.scope.as_ref().map(|s| &s.field)])
            .flatten()
            .find(|f| f.kind == FieldKind::Unknown);
        if let Some(f) = unchecked {
            return Err(backend_error(
                format!("the mapping of `{}` was not checked against the table (`{}`)", spec.backend_name, f.display()),
                None,
            ));
        }
        let tag_array_type = match mapping.tags.kind {
            FieldKind::TextArray => self.array_type(spec, &table, &mapping.tags.column).await?,
            _ => "text[]",
        };
        Ok(Target { spec, mapping, table: table.quoted(), tag_array_type, json: self.json_read(spec) })
    }

    /// The array type of a `TextArray` column, looked up once per column.
    async fn array_type(&self, spec: &CollectionSpec, table: &TableName, column: &str) -> Result<&'static str> {
        let key = (spec.backend_name.clone(), column.to_owned());
        if let Some(t) = self.array_types.lock().ok().and_then(|m| m.get(&key).copied()) {
            return Ok(t);
        }
        let typname = catalog::column_type(&self.pool, table, column).await.map_err(|e| classify(spec, e))?;
        let t = if typname.as_deref() == Some("_varchar") { "varchar[]" } else { "text[]" };
        if let Ok(mut m) = self.array_types.lock() {
            m.insert(key, t);
        }
        Ok(t)
    }
}

fn mapping_of(spec: &CollectionSpec) -> Result<&Mapping> {
    spec.mapping
        .as_deref()
        .ok_or_else(|| backend_error(format!("collection `{}` is not an attached table", spec.backend_name), None))
}

fn backend_error(message: String, source: Option<sqlx::Error>) -> VectorStoreError {
    VectorStoreError::Backend {
        backend: Backend::Pgvector,
        message,
        source: source.map(|e| Box::new(e) as super::BoxError),
    }
}

fn invalid(field: &str, message: impl Into<String>) -> VectorStoreError {
    VectorStoreError::InvalidMapping { field: field.to_owned(), message: message.into() }
}

/// A stored mapping that Attach's inspection would not have let through
/// (at erase time a server fault, not the caller's bad argument).
fn inconsistent(message: String) -> VectorStoreError {
    backend_error(format!("the collection's mapping is inconsistent: {message}"), None)
}

/// A parameter that failed to encode (a bug, not the database's answer).
fn encode_error(err: sqlx::error::BoxDynError) -> VectorStoreError {
    VectorStoreError::Backend {
        backend: Backend::Pgvector,
        message: "could not encode a parameter".into(),
        source: Some(err),
    }
}

/// The one place where sqlx errors become vector store errors.
fn classify(spec: &CollectionSpec, err: sqlx::Error) -> VectorStoreError {
    let err = crate::store::without_row_data(err);
    match &err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            VectorStoreError::Unavailable { backend: Backend::Pgvector, source: Box::new(err) }
        }
        e if crate::store::is_conflict(e) => VectorStoreError::Unavailable { backend: Backend::Pgvector, source: Box::new(err) },
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => {
            VectorStoreError::CollectionNotFound(spec.backend_name.clone())
        }
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42501") => backend_error(
            format!("Lethe's database role lacks a privilege on `{}` (granted at Attach, revoked since?)", spec.backend_name),
            Some(err),
        ),
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42703") => {
            backend_error(format!("a column the mapping of `{}` names no longer exists", spec.backend_name), Some(err))
        }
        _ => backend_error("query failed".into(), Some(err)),
    }
}

/// Whether a statement failed on a json `\u0000` escape (`SQLSTATE 22P05`,
/// "unsupported Unicode escape sequence").
fn failed_on_nul_escape(err: &VectorStoreError) -> bool {
    let VectorStoreError::Backend { source: Some(source), .. } = err else { return false };
    source
        .downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .is_some_and(|db| db.code().as_deref() == Some("22P05"))
}

fn unsupported() -> VectorStoreError {
    VectorStoreError::Unsupported(
        "an attached table is written by its framework; Lethe only deletes erased points from it".into(),
    )
}

fn count_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Whether `qualified` (`table` or `schema.table`, resolved through the
/// search path) is a table in Lethe's database.
///
/// # Errors
/// `InvalidMapping` (`target`) for a name that is not `[schema.]table`;
/// `Unavailable`/`Backend` for database failures.
pub async fn table_exists(pool: &PgPool, qualified: &str) -> Result<bool> {
    let table = TableName::parse(qualified).map_err(|m| invalid("target", m))?;
    catalog::table_oid(pool, &table).await.map(|oid| oid.is_some()).map_err(catalog_error)
}

/// The table an attached name resolves to (its OID), however it is
/// spelled (`t`, `public.t`, `"public"."t"`); `None` when it names no table
/// (or is no table name).
///
/// # Errors
/// `Unavailable`/`Backend` for database failures.
pub async fn table_identity(db: impl sqlx::PgExecutor<'_>, name: &str) -> Result<Option<u32>> {
    let Ok(table) = TableName::parse(name) else { return Ok(None) };
    catalog::table_oid(db, &table).await.map(|oid| oid.map(|o| o.0)).map_err(catalog_error)
}

/// The UUID of the LangChain collection `name` in `langchain_pg_collection`
/// (langchain-postgres `PGVector`); `None` when that table or that name does
/// not exist.
///
/// # Errors
/// `InvalidMapping` (`target`) when several LangChain collections have the
/// name; `Unavailable`/`Backend` for database failures.
pub async fn langchain_collection_uuid(pool: &PgPool, name: &str) -> Result<Option<Uuid>> {
    if !table_exists(pool, "langchain_pg_collection").await? {
        return Ok(None);
    }
    let found: Vec<String> =
        sqlx::query_scalar(r#"SELECT "uuid"::text FROM langchain_pg_collection WHERE name = $1 LIMIT 2"#)
            .bind(name)
            .fetch_all(pool)
            .await
            .map_err(catalog_error)?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Uuid::parse_str(one)
            .map(Some)
            .map_err(|_| invalid("target", format!("LangChain collection `{name}` has the id `{one}`, not a UUID"))),
        _ => Err(invalid("target", format!("several LangChain collections are named `{name}`"))),
    }
}

fn catalog_error(err: sqlx::Error) -> VectorStoreError {
    let err = crate::store::without_row_data(err);
    match &err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            VectorStoreError::Unavailable { backend: Backend::Pgvector, source: Box::new(err) }
        }
        e if crate::store::is_conflict(e) => VectorStoreError::Unavailable { backend: Backend::Pgvector, source: Box::new(err) },
        _ => backend_error("catalog query failed".into(), Some(err)),
    }
}

#[async_trait::async_trait]
impl VectorStore for AttachedPgStore {
    fn backend(&self) -> Backend {
        Backend::Pgvector
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| VectorStoreError::Unavailable { backend: Backend::Pgvector, source: Box::new(e) })
    }

    async fn inspect(&self, spec: &CollectionSpec, create_indexes: bool) -> Result<Inspection> {
        inspect::inspect(&self.pool, spec, create_indexes).await
    }

    async fn create_collection(&self, _spec: &CollectionSpec) -> Result<()> {
        Err(unsupported())
    }

    async fn drop_collection(&self, _spec: &CollectionSpec) -> Result<()> {
        Err(unsupported())
    }

    async fn upsert(&self, _spec: &CollectionSpec, _points: &[VectorPoint]) -> Result<()> {
        Err(unsupported())
    }

    async fn count(&self, spec: &CollectionSpec, selector: &Selector) -> Result<u64> {
        self.tolerating_nul(spec, || self.count_selected(spec, selector, None)).await
    }

    async fn count_tag_and_ids(&self, spec: &CollectionSpec, tag: Option<&str>, ids: &[Uuid]) -> Result<[u64; 3]> {
        self.tolerating_nul(spec, || self.count_split(spec, tag, ids)).await
    }

    async fn delete(&self, spec: &CollectionSpec, selector: &Selector) -> Result<()> {
        self.tolerating_nul(spec, || self.delete_split(spec, selector)).await
    }

    async fn count_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<u64> {
        self.tolerating_nul(spec, || self.count_selected(spec, selector, Some(keep))).await
    }

    async fn delete_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<()> {
        if keep.is_empty() {
            return self.tolerating_nul(spec, || self.delete_split(spec, selector)).await;
        }
        self.tolerating_nul(spec, || self.delete_except(spec, selector, keep)).await
    }

    fn ids_per_request(&self, _configured: usize) -> usize {
        // As pgvector: the ids travel as one array parameter, and splitting
        // them would repeat the tag lookup.
        100_000
    }

    async fn retrieve(&self, spec: &CollectionSpec, ids: &[Uuid], with_vectors: bool) -> Result<Vec<StoredPoint>> {
        self.tolerating_nul(spec, || self.retrieve_points(spec, ids, with_vectors)).await
    }

    async fn scroll(
        &self,
        spec: &CollectionSpec,
        offset: Option<Uuid>,
        limit: usize,
        with_vectors: bool,
    ) -> Result<(Vec<StoredPoint>, Option<Uuid>)> {
        self.tolerating_nul(spec, || self.scroll_points(spec, offset, limit, with_vectors)).await
    }

    async fn search_exact(
        &self,
        spec: &CollectionSpec,
        probes: &[Vec<f32>],
        threshold: f32,
        limit: usize,
    ) -> Result<Vec<ScoredPoint>> {
        self.tolerating_nul(spec, || self.search_points(spec, probes, threshold, limit)).await
    }

    async fn reclaim(&self, spec: &CollectionSpec, guarantee: bool) -> Result<PhysicalOutcome> {
        self.vacuum(spec, guarantee).await
    }

    async fn count_all(&self, spec: &CollectionSpec) -> Result<u64> {
        self.tolerating_nul(spec, || self.count_scope(spec)).await
    }

    async fn create_staging(&self, _spec: &CollectionSpec, _suffix: &str) -> Result<CollectionSpec> {
        Err(unsupported())
    }

    async fn promote(&self, _live: &CollectionSpec, _staging: &CollectionSpec) -> Result<String> {
        Err(unsupported())
    }

    async fn is_promoted(&self, _live: &CollectionSpec, _staging: &CollectionSpec) -> Result<bool> {
        Err(unsupported())
    }

    async fn orphans(&self, _live: &CollectionSpec) -> Result<Vec<String>> {
        // Lethe never makes generations of an attached table.
        Ok(Vec::new())
    }

    async fn drop_physical(&self, _physical_name: &str) -> Result<()> {
        // Never drop a framework's table.
        Err(unsupported())
    }
}
