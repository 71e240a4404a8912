//! A diagnostic decorator: [`Timed`] forwards every call to the store it
//! wraps and records which call it was, when it started (wall clock, to be
//! set beside the job events' `clock_timestamp()`s) and how long it took, in
//! a shared [`CallLog`]. Off unless a caller installs it
//! ([`VectorStores::timed`](super::VectorStores::timed)); the benchmark does,
//! to tell a job's time in the backend from Lethe's own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use uuid::Uuid;

use super::{
    Inspection, Keep, PhysicalOutcome, Result, ScoredPoint, Selector, StoredPoint, VectorPoint, VectorStore,
};
use crate::domain::{Backend, CollectionSpec};

/// One call to a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub backend: Backend,
    /// The trait method.
    pub method: &'static str,
    pub started: SystemTime,
    pub elapsed: Duration,
}

/// The calls of every [`Timed`] store sharing it, in the order they ended.
#[derive(Debug, Default)]
pub struct CallLog(Mutex<Vec<Call>>);

impl CallLog {
    /// The calls recorded since the last `take`, and a fresh start.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn push(&self, call: Call) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(call);
    }
}

/// A store whose calls are recorded in a [`CallLog`].
pub struct Timed {
    inner: Arc<dyn VectorStore>,
    log: Arc<CallLog>,
}

impl Timed {
    pub fn new(inner: Arc<dyn VectorStore>, log: Arc<CallLog>) -> Self {
        Self { inner, log }
    }

    async fn time<T>(&self, method: &'static str, call: impl Future<Output = T>) -> T {
        let (started, t) = (SystemTime::now(), Instant::now());
        let out = call.await;
        self.log.push(Call { backend: self.inner.backend(), method, started, elapsed: t.elapsed() });
        out
    }
}

#[async_trait::async_trait]
impl VectorStore for Timed {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }

    async fn ping(&self) -> Result<()> {
        self.time("ping", self.inner.ping()).await
    }

    async fn inspect(&self, spec: &CollectionSpec, create_indexes: bool) -> Result<Inspection> {
        self.time("inspect", self.inner.inspect(spec, create_indexes)).await
    }

    async fn create_collection(&self, spec: &CollectionSpec) -> Result<()> {
        self.time("create_collection", self.inner.create_collection(spec)).await
    }

    async fn drop_collection(&self, spec: &CollectionSpec) -> Result<()> {
        self.time("drop_collection", self.inner.drop_collection(spec)).await
    }

    async fn upsert(&self, spec: &CollectionSpec, points: &[VectorPoint]) -> Result<()> {
        self.time("upsert", self.inner.upsert(spec, points)).await
    }

    async fn upsert_in(&self, conn: &mut sqlx::PgConnection, spec: &CollectionSpec, points: &[VectorPoint]) -> Result<bool> {
        // Recorded only where it wrote (a Qdrant store writes nothing here).
        let (started, t) = (SystemTime::now(), Instant::now());
        let out = self.inner.upsert_in(conn, spec, points).await;
        if !matches!(out, Ok(false)) {
            self.log.push(Call { backend: self.inner.backend(), method: "upsert_in", started, elapsed: t.elapsed() });
        }
        out
    }

    async fn count(&self, spec: &CollectionSpec, selector: &Selector) -> Result<u64> {
        self.time("count", self.inner.count(spec, selector)).await
    }

    async fn count_tag_and_ids(&self, spec: &CollectionSpec, tag: Option<&str>, ids: &[Uuid]) -> Result<[u64; 3]> {
        self.time("count_tag_and_ids", self.inner.count_tag_and_ids(spec, tag, ids)).await
    }

    async fn count_tag_and_ids_many(&self, spec: &CollectionSpec, subjects: &[(Option<&str>, &[Uuid])]) -> Result<Vec<[u64; 3]>> {
        self.time("count_tag_and_ids_many", self.inner.count_tag_and_ids_many(spec, subjects)).await
    }

    async fn delete(&self, spec: &CollectionSpec, selector: &Selector) -> Result<()> {
        self.time("delete", self.inner.delete(spec, selector)).await
    }

    async fn delete_many(&self, spec: &CollectionSpec, selectors: &[Selector]) -> Result<()> {
        self.time("delete_many", self.inner.delete_many(spec, selectors)).await
    }

    async fn relabel_source(&self, spec: &CollectionSpec, ids: &[Uuid], source_id: &str) -> Result<()> {
        self.time("relabel_source", self.inner.relabel_source(spec, ids, source_id)).await
    }

    async fn count_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<u64> {
        self.time("count_keeping", self.inner.count_keeping(spec, selector, keep)).await
    }

    async fn delete_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<()> {
        self.time("delete_keeping", self.inner.delete_keeping(spec, selector, keep)).await
    }

    fn ids_per_request(&self, configured: usize) -> usize {
        self.inner.ids_per_request(configured)
    }

    async fn retrieve(&self, spec: &CollectionSpec, ids: &[Uuid], with_vectors: bool) -> Result<Vec<StoredPoint>> {
        self.time("retrieve", self.inner.retrieve(spec, ids, with_vectors)).await
    }

    async fn scroll(
        &self,
        spec: &CollectionSpec,
        offset: Option<Uuid>,
        limit: usize,
        with_vectors: bool,
    ) -> Result<(Vec<StoredPoint>, Option<Uuid>)> {
        self.time("scroll", self.inner.scroll(spec, offset, limit, with_vectors)).await
    }

    async fn search_exact(
        &self,
        spec: &CollectionSpec,
        probes: &[Vec<f32>],
        threshold: f32,
        limit: usize,
    ) -> Result<Vec<ScoredPoint>> {
        self.time("search_exact", self.inner.search_exact(spec, probes, threshold, limit)).await
    }

    async fn reclaim(&self, spec: &CollectionSpec, guarantee: bool) -> Result<PhysicalOutcome> {
        self.time("reclaim", self.inner.reclaim(spec, guarantee)).await
    }

    async fn count_all(&self, spec: &CollectionSpec) -> Result<u64> {
        self.time("count_all", self.inner.count_all(spec)).await
    }

    async fn create_staging(&self, spec: &CollectionSpec, suffix: &str) -> Result<CollectionSpec> {
        self.time("create_staging", self.inner.create_staging(spec, suffix)).await
    }

    async fn promote(&self, live: &CollectionSpec, staging: &CollectionSpec) -> Result<String> {
        self.time("promote", self.inner.promote(live, staging)).await
    }

    async fn is_promoted(&self, live: &CollectionSpec, staging: &CollectionSpec) -> Result<bool> {
        self.time("is_promoted", self.inner.is_promoted(live, staging)).await
    }

    async fn orphans(&self, live: &CollectionSpec) -> Result<Vec<String>> {
        self.time("orphans", self.inner.orphans(live)).await
    }

    async fn drop_physical(&self, physical_name: &str) -> Result<()> {
        self.time("drop_physical", self.inner.drop_physical(physical_name)).await
    }
}
