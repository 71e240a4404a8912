//! Attached stores belong to their frameworks, which may delete them
//! (LangChain's `delete_collection`, a dropped LlamaIndex table). A store
//! that no longer exists holds nothing of anyone: [`Vanishable`] answers for
//! it as for an empty one (counts 0, deletes and reads of nothing) instead
//! of failing every erasure of the tenant, and reclaim says that the
//! backend removed the store's files itself. Checking a mapping (`inspect`)
//! still fails for a missing store: Attach needs it to exist.

use std::sync::Arc;

use uuid::Uuid;

use super::{
    Inspection, Keep, PhysicalOutcome, Result, ScoredPoint, Selector, StoredPoint, VectorPoint, VectorStore,
    VectorStoreError,
};
use crate::domain::{Backend, CollectionSpec};

/// An attached store, read as empty once its framework deleted it.
pub struct Vanishable {
    inner: Arc<dyn VectorStore>,
}

impl Vanishable {
    pub fn new(inner: Arc<dyn VectorStore>) -> Self {
        Self { inner }
    }
}

/// `Ok(empty)` when the store is gone, else `r`.
fn or_gone<T>(spec: &CollectionSpec, r: Result<T>, empty: impl FnOnce() -> T) -> Result<T> {
    match r {
        Err(VectorStoreError::CollectionNotFound(name)) => {
            tracing::warn!(collection = %spec.name, store = %name, "the attached store no longer exists: read as empty");
            Ok(empty())
        }
        other => other,
    }
}

#[async_trait::async_trait]
impl VectorStore for Vanishable {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn inspect(&self, spec: &CollectionSpec, create_indexes: bool) -> Result<Inspection> {
        self.inner.inspect(spec, create_indexes).await
    }

    async fn create_collection(&self, spec: &CollectionSpec) -> Result<()> {
        self.inner.create_collection(spec).await
    }

    async fn drop_collection(&self, spec: &CollectionSpec) -> Result<()> {
        self.inner.drop_collection(spec).await
    }

    async fn upsert(&self, spec: &CollectionSpec, points: &[VectorPoint]) -> Result<()> {
        self.inner.upsert(spec, points).await
    }

    async fn count(&self, spec: &CollectionSpec, selector: &Selector) -> Result<u64> {
        or_gone(spec, self.inner.count(spec, selector).await, || 0)
    }

    async fn count_tag_and_ids(&self, spec: &CollectionSpec, tag: Option<&str>, ids: &[Uuid]) -> Result<[u64; 3]> {
        or_gone(spec, self.inner.count_tag_and_ids(spec, tag, ids).await, || [0; 3])
    }

    async fn count_tag_and_ids_many(&self, spec: &CollectionSpec, subjects: &[(Option<&str>, &[Uuid])]) -> Result<Vec<[u64; 3]>> {
        or_gone(spec, self.inner.count_tag_and_ids_many(spec, subjects).await, || vec![[0; 3]; subjects.len()])
    }

    async fn delete(&self, spec: &CollectionSpec, selector: &Selector) -> Result<()> {
        or_gone(spec, self.inner.delete(spec, selector).await, || ())
    }

    async fn delete_many(&self, spec: &CollectionSpec, selectors: &[Selector]) -> Result<()> {
        or_gone(spec, self.inner.delete_many(spec, selectors).await, || ())
    }

    async fn relabel_source(&self, spec: &CollectionSpec, ids: &[Uuid], source_id: &str) -> Result<()> {
        or_gone(spec, self.inner.relabel_source(spec, ids, source_id).await, || ())
    }

    async fn count_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<u64> {
        or_gone(spec, self.inner.count_keeping(spec, selector, keep).await, || 0)
    }

    async fn delete_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<()> {
        or_gone(spec, self.inner.delete_keeping(spec, selector, keep).await, || ())
    }

    fn ids_per_request(&self, configured: usize) -> usize {
        self.inner.ids_per_request(configured)
    }

    async fn retrieve(&self, spec: &CollectionSpec, ids: &[Uuid], with_vectors: bool) -> Result<Vec<StoredPoint>> {
        or_gone(spec, self.inner.retrieve(spec, ids, with_vectors).await, Vec::new)
    }

    async fn scroll(
        &self,
        spec: &CollectionSpec,
        offset: Option<Uuid>,
        limit: usize,
        with_vectors: bool,
    ) -> Result<(Vec<StoredPoint>, Option<Uuid>)> {
        or_gone(spec, self.inner.scroll(spec, offset, limit, with_vectors).await, || (Vec::new(), None))
    }

    async fn search_exact(
        &self,
        spec: &CollectionSpec,
        probes: &[Vec<f32>],
        threshold: f32,
        limit: usize,
    ) -> Result<Vec<ScoredPoint>> {
        or_gone(spec, self.inner.search_exact(spec, probes, threshold, limit).await, Vec::new)
    }

    async fn reclaim(&self, spec: &CollectionSpec, guarantee: bool) -> Result<PhysicalOutcome> {
        or_gone(spec, self.inner.reclaim(spec, guarantee).await, || {
            PhysicalOutcome::Confirmed(format!(
                "`{}` no longer exists: its framework deleted it, and the backend removed its files",
                spec.backend_name
            ))
        })
    }

    async fn count_all(&self, spec: &CollectionSpec) -> Result<u64> {
        or_gone(spec, self.inner.count_all(spec).await, || 0)
    }
}
