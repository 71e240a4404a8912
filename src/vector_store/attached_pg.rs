//! Attached pgvector tables: tables a framework (LangChain, LlamaIndex) or a
//! pipeline created, in Lethe's database, read and deleted from through the
//! collection's [`Mapping`](crate::domain::Mapping). Lethe never writes to
//! them except to delete erased points (and, when asked at Attach, to create
//! the index its tag filter needs).

use sqlx::PgPool;

use super::{Inspection, Keep, PhysicalOutcome, Result, ScoredPoint, Selector, StoredPoint, VectorPoint, VectorStore, VectorStoreError};
use crate::domain::{Backend, CollectionSpec};
use uuid::Uuid;

/// Attached tables over the same pool as lineage.
#[derive(Clone)]
pub struct AttachedPgStore {
    pool: PgPool,
}

impl AttachedPgStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn todo() -> VectorStoreError {
    VectorStoreError::Unsupported("attached pgvector tables are not implemented yet".into())
}

#[async_trait::async_trait]
impl VectorStore for AttachedPgStore {
    fn backend(&self) -> Backend {
        Backend::Pgvector
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop).map_err(|e| {
            VectorStoreError::Unavailable { backend: Backend::Pgvector, source: Box::new(e) }
        })
    }

    async fn inspect(&self, _spec: &CollectionSpec, _create_indexes: bool) -> Result<Inspection> {
        Err(todo())
    }

    async fn create_collection(&self, _spec: &CollectionSpec) -> Result<()> {
        Err(todo())
    }

    async fn drop_collection(&self, _spec: &CollectionSpec) -> Result<()> {
        Err(todo())
    }

    async fn upsert(&self, _spec: &CollectionSpec, _points: &[VectorPoint]) -> Result<()> {
        Err(todo())
    }

    async fn count(&self, _spec: &CollectionSpec, _selector: &Selector) -> Result<u64> {
        Err(todo())
    }

    async fn delete(&self, _spec: &CollectionSpec, _selector: &Selector) -> Result<()> {
        Err(todo())
    }

    async fn count_keeping(&self, _spec: &CollectionSpec, _selector: &Selector, _keep: &Keep) -> Result<u64> {
        Err(todo())
    }

    async fn delete_keeping(&self, _spec: &CollectionSpec, _selector: &Selector, _keep: &Keep) -> Result<()> {
        Err(todo())
    }

    async fn retrieve(&self, _spec: &CollectionSpec, _ids: &[Uuid], _with_vectors: bool) -> Result<Vec<StoredPoint>> {
        Err(todo())
    }

    async fn scroll(
        &self,
        _spec: &CollectionSpec,
        _offset: Option<Uuid>,
        _limit: usize,
        _with_vectors: bool,
    ) -> Result<(Vec<StoredPoint>, Option<Uuid>)> {
        Err(todo())
    }

    async fn search_exact(
        &self,
        _spec: &CollectionSpec,
        _probes: &[Vec<f32>],
        _threshold: f32,
        _limit: usize,
    ) -> Result<Vec<ScoredPoint>> {
        Err(todo())
    }

    async fn reclaim(&self, _spec: &CollectionSpec, _guarantee: bool) -> Result<PhysicalOutcome> {
        Err(todo())
    }

    async fn count_all(&self, _spec: &CollectionSpec) -> Result<u64> {
        Err(todo())
    }
}

/// The uuid of LangChain's collection `name` (`langchain_pg_collection`);
/// None when the table or the name does not exist.
///
/// # Errors
/// Database failures.
pub async fn langchain_collection_uuid(pool: &PgPool, name: &str) -> Result<Option<Uuid>> {
    let _ = (pool, name);
    Err(todo())
}

/// Whether `[schema.]table` exists.
///
/// # Errors
/// Database failures.
pub async fn table_exists(pool: &PgPool, qualified: &str) -> Result<bool> {
    let _ = (pool, qualified);
    Err(todo())
}
