//! Attached Qdrant collections: collections a framework (LangChain,
//! LlamaIndex) or a pipeline created, read and deleted from through the
//! collection's [`Mapping`](crate::domain::Mapping): any UUID or integer
//! ids, the tag at a payload path (string or array), the text at a payload
//! path or inside a JSON text there. Lethe never writes to them except to
//! delete erased points (and, when asked at Attach, to create the payload
//! index its tag filter needs).

use super::*;
use crate::vector_store::Inspection;

/// Attached collections over the same client as [`QdrantStore`].
#[derive(Clone, Debug)]
pub struct AttachedQdrantStore {
    inner: QdrantStore,
}

impl AttachedQdrantStore {
    pub fn new(inner: QdrantStore) -> Self {
        Self { inner }
    }
}

fn todo() -> VectorStoreError {
    VectorStoreError::Unsupported("attached Qdrant collections are not implemented yet".into())
}

#[async_trait::async_trait]
impl VectorStore for AttachedQdrantStore {
    fn backend(&self) -> Backend {
        Backend::Qdrant
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
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
