//! The vector backends behind one trait: what erasure needs from a vector
//! database (upsert with tags, exact counts, delete by tag or ids, exact
//! search, scroll, physical reclaim). This module owns no lineage: callers
//! pass what to select; the backends own only their vectors.
//!
//! Invariant for every implementation: a [`Selector`] with neither a tag nor
//! ids selects **nothing** (count 0, delete no-op) — never the whole collection.

mod attached_pg;
mod pgvector;
mod qdrant;
mod timed;
mod vanished;

use std::sync::Arc;

use uuid::Uuid;

use crate::domain::{Backend, CollectionSpec};

pub use self::attached_pg::{AttachedPgStore, langchain_collection_uuid, table_exists, table_identity};
pub use self::pgvector::PgVectorStore;
pub use self::qdrant::{AttachedQdrantStore, QdrantStore};
pub use self::timed::{Call, CallLog, Timed};
pub use self::vanished::Vanishable;

/// Failures of a vector backend, classified so the engine can decide to retry.
#[derive(Debug, thiserror::Error)]
pub enum VectorStoreError {
    #[error("collection `{0}` does not exist in the backend")]
    CollectionNotFound(String),
    #[error("vector has {actual} dimensions, collection expects {expected}")]
    DimensionMismatch { expected: usize, actual: usize },
    #[error("{backend} is unavailable")]
    Unavailable {
        backend: Backend,
        #[source]
        source: BoxError,
    },
    /// An attached store does not look like its mapping says (Attach): a
    /// missing column or payload key, a type that cannot hold what the
    /// field is for, no points to read a dimension from.
    #[error("{field}: {message}")]
    InvalidMapping { field: String, message: String },
    /// What the collection is cannot do this (an attached store is never
    /// written to by Lethe, except to delete erased points).
    #[error("{0}")]
    Unsupported(String),
    #[error("{backend} is not configured")]
    NotConfigured { backend: Backend },
    #[error("{backend} request failed: {message}")]
    Backend {
        backend: Backend,
        message: String,
        #[source]
        source: Option<BoxError>,
    },
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = VectorStoreError> = std::result::Result<T, E>;

/// What Lethe writes beside each vector, as payload fields (Qdrant) or
/// indexed columns (pgvector).
#[derive(Debug, Clone, PartialEq)]
pub struct PointPayload {
    pub tenant_id: Uuid,
    /// The caller's source id.
    pub source_id: String,
    /// The caller's ids of the subjects the chunk concerns (the erasure tags).
    pub subjects: Vec<String>,
    /// Chunk text, when the collection stores text.
    pub text: Option<String>,
}

/// A point to write.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorPoint {
    pub id: Uuid,
    pub vector: Vec<f32>,
    pub payload: PointPayload,
}

/// A point read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPoint {
    pub id: Uuid,
    pub payload: PointPayload,
    /// Present when asked for.
    pub vector: Option<Vec<f32>>,
    /// When the point was written, where an attached store's mapping says
    /// (`Mapping::timestamp`); None otherwise.
    pub written_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A search hit: `score` is the best similarity over the probes (cosine for
/// cosine collections, higher is closer) and `probe` the index of that probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPoint {
    pub id: Uuid,
    pub score: f32,
    pub probe: usize,
    pub payload: PointPayload,
}

/// The points of a collection that carry `tag` **or** whose id is in `ids`.
///
/// A collection belongs to one tenant, so every point in it is the owner's
/// whatever its payload says: selectors (and scrolls, searches and counts)
/// never filter on the payload's `tenant_id`. A point a pipeline wrote
/// without one, with another tenant's, or spelled differently is still
/// counted, erased and verified (a filter on it would hide the point from
/// plan, delete and verify while the certificate says 0 remain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub tag: Option<String>,
    pub ids: Vec<Uuid>,
}

impl Selector {
    pub fn by_tag(tag: &str) -> Self {
        Self { tag: Some(tag.to_owned()), ids: Vec::new() }
    }

    pub fn by_ids(ids: Vec<Uuid>) -> Self {
        Self { tag: None, ids }
    }

    /// True when the selector selects nothing by construction.
    pub fn is_empty(&self) -> bool {
        self.tag.is_none() && self.ids.is_empty()
    }
}

/// Points a deletion must leave alone: those carrying any of `tags` or
/// whose id is in `ids` (chunks shared with a subject on legal hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keep {
    pub tags: Vec<String>,
    pub ids: Vec<Uuid>,
}

impl Keep {
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.ids.is_empty()
    }
}

/// An attached store as Attach found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The mapping with every field's kind filled in from the store.
    pub mapping: crate::domain::Mapping,
    /// The vectors' dimension (the column's type, the collection's config, or
    /// the first point's vector).
    pub dimension: usize,
    /// The distance the store's index or config uses, when it says.
    pub distance: Option<crate::domain::Distance>,
    /// Points in the store (within the mapping's scope).
    pub points: u64,
    /// What an operator should know, each with the exact statement or
    /// payload index to create: e.g. no index serves the tag filter, so each
    /// erasure reads the whole table.
    pub warnings: Vec<String>,
    /// Indexes created because the request asked for them.
    pub created: Vec<String>,
    /// Every name that reaches the same store, the attached name among
    /// them: a Qdrant collection and each alias pointing to it (two
    /// attachments of one store meet however either is spelled). Empty
    /// where the caller compares stores otherwise (pgvector: by table OID).
    pub store_names: Vec<String>,
}

/// What the backend did to reclaim deleted vectors physically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhysicalOutcome {
    /// The deleted vectors' bytes are gone from the backend's live files.
    Confirmed(String),
    /// Logically deleted, bytes may remain until the backend rewrites them.
    Pending(String),
}

/// A vector database as erasure needs it. Implementations must be exact:
/// counts are exact counts, searches are exhaustive, writes are applied
/// before the call returns (`upsert_in`'s when its caller commits).
#[async_trait::async_trait]
pub trait VectorStore: Send + Sync {
    fn backend(&self) -> Backend;

    /// A cheap round trip that succeeds only while the backend answers (health).
    async fn ping(&self) -> Result<()>;

    /// Checks an attached collection's mapping against the store, reads what
    /// Lethe needs to know about it, and creates the indexes that filtered
    /// deletes need when `create_indexes` (else warns with the statement).
    /// Writes nothing else.
    ///
    /// # Errors
    /// `InvalidMapping` when the store does not match the mapping.
    async fn inspect(&self, spec: &CollectionSpec, create_indexes: bool) -> Result<Inspection> {
        let _ = (spec, create_indexes);
        Err(unsupported(self.backend(), "attaching"))
    }

    /// Creates the collection and its tag indexes; a no-op when it exists.
    async fn create_collection(&self, spec: &CollectionSpec) -> Result<()>;

    /// Removes the collection and its data; a no-op when it does not exist.
    async fn drop_collection(&self, spec: &CollectionSpec) -> Result<()>;

    /// Writes points (insert or overwrite by id).
    async fn upsert(&self, spec: &CollectionSpec, points: &[VectorPoint]) -> Result<()>;

    /// [`upsert`](Self::upsert) on `conn`, a connection to Lethe's own
    /// Postgres in the caller's transaction, where the backend's tables are
    /// in that database (pgvector): `true`, and the points are committed
    /// (or rolled back) with the caller's transaction. `false`, having
    /// written nothing, elsewhere (Qdrant): the caller writes with `upsert`
    /// after its commit. The write path uses it for the lineage
    /// transaction: lineage and vectors become visible together, and two
    /// writes of the same points write both in the lineage's row order.
    async fn upsert_in(&self, conn: &mut sqlx::PgConnection, spec: &CollectionSpec, points: &[VectorPoint]) -> Result<bool> {
        let _ = (conn, spec, points);
        Ok(false)
    }

    /// Exact number of points the selector selects.
    async fn count(&self, spec: &CollectionSpec, selector: &Selector) -> Result<u64>;

    /// Exact counts `[by tag, by ids, by tag or ids]` of the collection's points,
    /// as three [`count`](Self::count)s would give them. Backends override it
    /// to answer in one round trip (erasure counts twice per collection).
    async fn count_tag_and_ids(&self, spec: &CollectionSpec, tag: Option<&str>, ids: &[Uuid]) -> Result<[u64; 3]> {
        let by_tag = match tag {
            Some(t) => self.count(spec, &Selector::by_tag(t)).await?,
            None => 0,
        };
        let by_ids = self.count(spec, &Selector::by_ids(ids.to_vec())).await?;
        let both = Selector { tag: tag.map(str::to_owned), ids: ids.to_vec() };
        Ok([by_tag, by_ids, self.count(spec, &both).await?])
    }

    /// [`count_tag_and_ids`](Self::count_tag_and_ids) of several subjects
    /// `(tag, lineage ids)`, in their order: a batch of erasures counts its
    /// subjects together. Backends override it to answer in one round trip.
    async fn count_tag_and_ids_many(&self, spec: &CollectionSpec, subjects: &[(Option<&str>, &[Uuid])]) -> Result<Vec<[u64; 3]>> {
        let mut counts = Vec::with_capacity(subjects.len());
        for (tag, ids) in subjects {
            counts.push(self.count_tag_and_ids(spec, *tag, ids).await?);
        }
        Ok(counts)
    }

    /// Deletes what the selector selects and waits until it is applied.
    async fn delete(&self, spec: &CollectionSpec, selector: &Selector) -> Result<()>;

    /// Deletes what any of the selectors selects (a batch's subjects) and
    /// waits until it is applied. Backends override it to delete in one
    /// round trip; each selector's ids stay within
    /// [`ids_per_request`](Self::ids_per_request).
    async fn delete_many(&self, spec: &CollectionSpec, selectors: &[Selector]) -> Result<()> {
        for selector in selectors {
            self.delete(spec, selector).await?;
        }
        Ok(())
    }

    /// Sets the source id of these points' payloads (of those present) to
    /// `source_id`: a source given an alias because its id named an erased
    /// person (`ingest::sources`) takes its points' payloads with it. For the
    /// collections Lethe created; an attached store's metadata is the
    /// framework's, left as written.
    async fn relabel_source(&self, spec: &CollectionSpec, ids: &[Uuid], source_id: &str) -> Result<()> {
        let _ = (spec, ids, source_id);
        Err(unsupported(self.backend(), "relabelling sources"))
    }

    /// Exact number of points the selector selects that `keep` does not.
    async fn count_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<u64> {
        if keep.is_empty() {
            return self.count(spec, selector).await;
        }
        Err(unsupported(self.backend(), "keeping points"))
    }

    /// Deletes what the selector selects except what `keep` selects, and
    /// waits until it is applied.
    async fn delete_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<()> {
        if keep.is_empty() {
            return self.delete(spec, selector).await;
        }
        Err(unsupported(self.backend(), "keeping points"))
    }

    /// How many ids one `delete` should carry: `configured`
    /// (`erasure.delete_batch_size`) unless the backend knows better.
    fn ids_per_request(&self, configured: usize) -> usize {
        configured
    }

    /// Points by id (missing ids are skipped).
    async fn retrieve(&self, spec: &CollectionSpec, ids: &[Uuid], with_vectors: bool) -> Result<Vec<StoredPoint>>;

    /// A page of the collection's points in id order starting at `offset`
    /// (inclusive), and the first id of the next page to pass back.
    async fn scroll(
        &self,
        spec: &CollectionSpec,
        offset: Option<Uuid>,
        limit: usize,
        with_vectors: bool,
    ) -> Result<(Vec<StoredPoint>, Option<Uuid>)>;

    /// Exhaustive (not approximate) search: every point of the collection whose
    /// similarity to any probe is at least `threshold`, best first, at most `limit`.
    async fn search_exact(
        &self,
        spec: &CollectionSpec,
        probes: &[Vec<f32>],
        threshold: f32,
        limit: usize,
    ) -> Result<Vec<ScoredPoint>>;

    /// Asks the backend to reclaim deleted points physically.
    async fn reclaim(&self, spec: &CollectionSpec, guarantee: bool) -> Result<PhysicalOutcome>;

    /// Exact number of points in the collection.
    async fn count_all(&self, spec: &CollectionSpec) -> Result<u64> {
        let _ = spec;
        Err(unsupported(self.backend(), "counting all points"))
    }

    /// Creates an empty next generation of the collection (same dimension,
    /// distance and indexes), named with `suffix`; returns its spec, whose
    /// `backend_name` is the new physical name. Idempotent.
    async fn create_staging(&self, spec: &CollectionSpec, suffix: &str) -> Result<CollectionSpec> {
        let _ = (spec, suffix);
        Err(unsupported(self.backend(), "re-index"))
    }

    /// Atomically makes `staging` the collection that readers of
    /// `live.backend_name` see; returns the retired physical name.
    async fn promote(&self, live: &CollectionSpec, staging: &CollectionSpec) -> Result<String> {
        let _ = (live, staging);
        Err(unsupported(self.backend(), "re-index"))
    }

    /// Whether `staging` already is what readers of `live.backend_name` see:
    /// a switch cut off after [`promote`](Self::promote) and before the job
    /// recorded it.
    async fn is_promoted(&self, live: &CollectionSpec, staging: &CollectionSpec) -> Result<bool> {
        let _ = (live, staging);
        Err(unsupported(self.backend(), "re-index"))
    }

    /// Physical names of the collection's generations that readers do not
    /// see: staging or retired generations left behind by an interrupted
    /// re-index (they may hold dead data of erased people).
    async fn orphans(&self, live: &CollectionSpec) -> Result<Vec<String>> {
        let _ = live;
        Err(unsupported(self.backend(), "re-index"))
    }

    /// Removes a retired (or abandoned staging) physical collection; a no-op when absent.
    async fn drop_physical(&self, physical_name: &str) -> Result<()> {
        let _ = physical_name;
        Err(unsupported(self.backend(), "re-index"))
    }
}

fn configured(store: &Option<Arc<dyn VectorStore>>) -> Result<&Arc<dyn VectorStore>> {
    store.as_ref().ok_or(VectorStoreError::NotConfigured { backend: Backend::Qdrant })
}

fn unsupported(backend: Backend, what: &str) -> VectorStoreError {
    VectorStoreError::Backend { backend, message: format!("{what} is not supported by this backend"), source: None }
}

/// The configured backends, looked up by a collection: the collections Lethe
/// created live in its own layout, attached ones are read through their
/// mapping.
#[derive(Clone)]
pub struct VectorStores {
    pub pgvector: Arc<dyn VectorStore>,
    /// `None` when no Qdrant URL is configured.
    pub qdrant: Option<Arc<dyn VectorStore>>,
    pub attached_pgvector: Arc<dyn VectorStore>,
    pub attached_qdrant: Option<Arc<dyn VectorStore>>,
}

impl VectorStores {
    /// The store that holds `spec`'s points.
    ///
    /// # Errors
    /// `NotConfigured` for Qdrant without a URL.
    pub fn get(&self, spec: &CollectionSpec) -> Result<&Arc<dyn VectorStore>> {
        match (spec.backend, spec.is_attached()) {
            (Backend::Pgvector, false) => Ok(&self.pgvector),
            (Backend::Pgvector, true) => Ok(&self.attached_pgvector),
            (Backend::Qdrant, false) => configured(&self.qdrant),
            (Backend::Qdrant, true) => configured(&self.attached_qdrant),
        }
    }

    /// The store for new collections Lethe creates in `backend`.
    ///
    /// # Errors
    /// `NotConfigured` for Qdrant without a URL.
    pub fn backend(&self, backend: Backend) -> Result<&Arc<dyn VectorStore>> {
        match backend {
            Backend::Pgvector => Ok(&self.pgvector),
            Backend::Qdrant => self.qdrant.as_ref().ok_or(VectorStoreError::NotConfigured { backend }),
        }
    }

    /// The same stores, each wrapped in [`Timed`] recording its calls in
    /// `log` (diagnostics: the benchmark's split of a job's time).
    #[must_use]
    pub fn timed(&self, log: &Arc<CallLog>) -> Self {
        let wrap = |s: &Arc<dyn VectorStore>| Arc::new(Timed::new(s.clone(), log.clone())) as Arc<dyn VectorStore>;
        Self {
            pgvector: wrap(&self.pgvector),
            qdrant: self.qdrant.as_ref().map(wrap),
            attached_pgvector: wrap(&self.attached_pgvector),
            attached_qdrant: self.attached_qdrant.as_ref().map(wrap),
        }
    }

    /// Checks a vector's dimension against the collection.
    ///
    /// # Errors
    /// `DimensionMismatch`.
    pub fn check_dimension(spec: &CollectionSpec, vector: &[f32]) -> Result<()> {
        if vector.len() == spec.dimension {
            Ok(())
        } else {
            Err(VectorStoreError::DimensionMismatch { expected: spec.dimension, actual: vector.len() })
        }
    }
}
