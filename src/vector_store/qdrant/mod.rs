//! Qdrant behind [`VectorStore`], over the official gRPC client
//! (`qdrant_client::Qdrant`) plus the raw generated `CollectionsClient` for
//! alias changes that must be atomic.
//!
//! Naming: a collection's `backend_name` is an **alias**; the data lives in a
//! physical collection `{backend_name}_{suffix}`: `_g1` at creation, the
//! re-index's suffix for each later generation (`create_staging`). `promote`
//! swaps the alias in one request ([`QdrantStore::swap_alias`]) and
//! `drop_physical` deletes the old generation: the only way to be sure that
//! deleted vectors are physically gone from Qdrant's segment files.
//!
//! Every point carries the payload
//! `{"tenant_id": "<uuid>", "source_id": "…", "subjects": ["…"], "text": "…"}`
//! (`text` only when stored); the point id is the UUID as a string id.
//! Every filter matches keywords explicitly (`MatchValue::Keyword`): the
//! client's `From<String>` turns a value with a space into a *full-text*
//! match, which would select more than the exact subject.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use qdrant_client::qdrant::alias_operations::Action;
use qdrant_client::qdrant::collections_client::CollectionsClient;
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::vectors_output::VectorsOptions;
use qdrant_client::qdrant::{
    AliasOperations, ChangeAliases, Condition, CountPointsBuilder, CreateAlias, CreateCollectionBuilder,
    CreateFieldIndexCollectionBuilder, DeleteAlias, DeleteCollectionBuilder, DeletePointsBuilder, FieldType, Filter,
    GetPointsBuilder, KeywordIndexParamsBuilder, ListValue, OptimizersConfigDiff, OptimizersConfigDiffBuilder, PointId,
    PointStruct, Query, QueryBatchPointsBuilder, QueryPoints, QueryPointsBuilder, ReadConsistencyType, RetrievedPoint,
    ScoredPoint as QdrantScoredPoint, ScrollPointsBuilder, SearchParamsBuilder, SetPayloadPointsBuilder, UpdateCollectionBuilder, UpdateResult,
    UpdateStatus, UpsertPointsBuilder, Value, VectorParamsBuilder, Vectors, VectorsOutput, WalConfigDiffBuilder,
    WriteOrdering, WriteOrderingType, read_consistency, vector_output,
};
use qdrant_client::{Qdrant, QdrantError};
use tonic::codegen::InterceptedService;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use uuid::Uuid;

use super::{
    BoxError, Keep, PhysicalOutcome, PointPayload, Result, ScoredPoint, Selector, StoredPoint, VectorPoint, VectorStore,
    VectorStoreError, VectorStores,
};
use crate::domain::{Backend, CollectionSpec, Distance};

mod attached;
mod client;
mod collections;
mod errors;
mod filters;
mod payload;
#[cfg(test)]
mod tests;

pub use attached::AttachedQdrantStore;
use client::*;
use collections::*;
use errors::*;
use filters::*;
use payload::*;

const FIELD_TENANT: &str = "tenant_id";
const FIELD_SOURCE: &str = "source_id";
const FIELD_SUBJECTS: &str = "subjects";
const FIELD_TEXT: &str = "text";

/// Points per upsert request.
const UPSERT_CHUNK: usize = 256;
/// Ids per `HasId` condition (count, delete) or per `get_points` request.
const ID_CHUNK: usize = 1_000;
/// Probes per `query_batch` request.
const PROBE_CHUNK: usize = 64;
/// Suffix of the physical collection made by `create_collection`.
const FIRST_GENERATION: &str = "g1";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The server's minimum (`#[validate(range(min = 100))]`).
const VACUUM_MIN_VECTOR_NUMBER: u64 = 100;
/// API key header, as the official client sends it.
const API_KEY_HEADER: &str = "api-key";

/// Qdrant over gRPC. Cheap to clone (the client and channel are shared).
#[derive(Clone)]
pub struct QdrantStore {
    client: Qdrant,
    /// Raw client for `UpdateAliases` with several actions in one request.
    aliases: CollectionsClient<InterceptedService<Channel, ApiKeyInterceptor>>,
    timeout: Duration,
}

impl fmt::Debug for QdrantStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the config: it holds the API key.
        f.debug_struct("QdrantStore")
            .field("uri", &self.client.config.uri)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl VectorStore for QdrantStore {
    fn backend(&self) -> Backend {
        Backend::Qdrant
    }

    async fn ping(&self) -> Result<()> {
        self.client.health_check().await.map(drop).map_err(|e| map_error(e, ""))
    }

    async fn create_collection(&self, spec: &CollectionSpec) -> Result<()> {
        let alias = &spec.backend_name;
        if let Some(target) = self.resolve_alias(alias).await? {
            tracing::debug!(alias, target, "Qdrant collection exists");
            return Ok(());
        }
        let physical = physical_name(alias, FIRST_GENERATION);
        self.create_physical(spec, &physical).await?;
        let create = Action::CreateAlias(CreateAlias { collection_name: physical.clone(), alias_name: alias.clone() });
        match self.update_aliases(vec![create], alias).await {
            Ok(()) => Ok(()),
            // A concurrent creator made the alias first.
            Err(_) if self.resolve_alias(alias).await?.is_some() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn drop_collection(&self, spec: &CollectionSpec) -> Result<()> {
        let alias = &spec.backend_name;
        let target = self.resolve_alias(alias).await?;
        if target.is_some() {
            self.update_aliases(vec![Action::DeleteAlias(DeleteAlias { alias_name: alias.clone() })], alias).await?;
        }
        // The alias target plus every physical collection of this name (left
        // over by an interrupted create or re-index).
        let mut doomed: BTreeSet<String> = target.into_iter().collect();
        let collections = self.client.list_collections().await.map_err(|e| map_error(e, alias))?;
        doomed.extend(collections.collections.into_iter().map(|c| c.name).filter(|name| is_physical_of(name, alias)));
        for name in &doomed {
            self.delete_collection_if_exists(name).await?;
        }
        Ok(())
    }

    async fn upsert(&self, spec: &CollectionSpec, points: &[VectorPoint]) -> Result<()> {
        for point in points {
            VectorStores::check_dimension(spec, &point.vector)?;
        }
        let name = &spec.backend_name;
        for chunk in points.chunks(UPSERT_CHUNK) {
            let structs: Vec<PointStruct> = chunk
                .iter()
                .map(|p| PointStruct {
                    id: Some(point_id(p.id)),
                    payload: payload_to_qdrant(&p.payload),
                    vectors: Some(Vectors::from(p.vector.clone())),
                })
                .collect();
            let request = UpsertPointsBuilder::new(name.clone(), structs).wait(true).ordering(Self::write_ordering());
            let response = self.client.upsert_points(request).await.map_err(|e| map_error(e, name))?;
            check_completed(response.result, "upsert")?;
        }
        Ok(())
    }

    async fn count(&self, spec: &CollectionSpec, selector: &Selector) -> Result<u64> {
        self.count_keeping(spec, selector, &Keep::default()).await
    }

    async fn count_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<u64> {
        let name = &spec.backend_name;
        let mut total = 0u64;
        // The filters are disjoint: their counts add up to the selector's.
        for filter in keeping(selector_filters(selector), keep) {
            let request =
                CountPointsBuilder::new(name.clone()).filter(filter).exact(true).read_consistency(Self::read_all());
            let response = self.client.count(request).await.map_err(|e| map_error(e, name))?;
            let count = response.result.ok_or_else(|| backend_error("count response without a result", None))?;
            total = total.saturating_add(count.count);
        }
        Ok(total)
    }

    /// The three counts concurrently (each as [`count`](VectorStore::count)).
    async fn count_tag_and_ids(
        &self,
        spec: &CollectionSpec,
        tag: Option<&str>,
        ids: &[Uuid],
    ) -> Result<[u64; 3]> {
        let by_tag = Selector { tag: tag.map(str::to_owned), ids: Vec::new() };
        let by_ids = Selector::by_ids(ids.to_vec());
        let both = Selector { tag: tag.map(str::to_owned), ids: ids.to_vec() };
        let (a, b, c) =
            tokio::try_join!(self.count(spec, &by_tag), self.count(spec, &by_ids), self.count(spec, &both))?;
        Ok([a, b, c])
    }

    /// Every subject's three counts concurrently (Qdrant has no count of
    /// several filters in one request).
    async fn count_tag_and_ids_many(&self, spec: &CollectionSpec, subjects: &[(Option<&str>, &[Uuid])]) -> Result<Vec<[u64; 3]>> {
        futures::future::try_join_all(subjects.iter().map(|(tag, ids)| self.count_tag_and_ids(spec, *tag, ids))).await
    }

    async fn count_all(&self, spec: &CollectionSpec) -> Result<u64> {
        let name = &spec.backend_name;
        let request = CountPointsBuilder::new(name.clone())
            .exact(true)
            .read_consistency(Self::read_all());
        let response = self.client.count(request).await.map_err(|e| map_error(e, name))?;
        Ok(response.result.ok_or_else(|| backend_error("count response without a result", None))?.count)
    }

    async fn delete(&self, spec: &CollectionSpec, selector: &Selector) -> Result<()> {
        self.delete_keeping(spec, selector, &Keep::default()).await
    }

    /// One request for a batch's subjects whose ids fit one filter; else
    /// one selector at a time.
    async fn delete_many(&self, spec: &CollectionSpec, selectors: &[Selector]) -> Result<()> {
        match any_selector_filter(selectors) {
            Some(Some(filter)) => self.delete_filter(spec, filter).await,
            Some(None) => Ok(()),
            None => {
                for selector in selectors {
                    self.delete(spec, selector).await?;
                }
                Ok(())
            }
        }
    }

    /// A request per `ID_CHUNK` ids, for those whose source id is another.
    async fn relabel_source(&self, spec: &CollectionSpec, ids: &[Uuid], source_id: &str) -> Result<()> {
        let name = &spec.backend_name;
        let ids: Vec<PointId> = ids.iter().copied().collect::<BTreeSet<_>>().into_iter().map(point_id).collect();
        for chunk in ids.chunks(ID_CHUNK) {
            let filter = Filter {
                must: vec![Condition::has_id(chunk.to_vec())],
                must_not: vec![keyword(FIELD_SOURCE, source_id)],
                ..Filter::default()
            };
            let payload: qdrant_client::Payload =
                [(FIELD_SOURCE, string_value(source_id))].into_iter().collect::<HashMap<_, _>>().into();
            let request = SetPayloadPointsBuilder::new(name.clone(), payload)
                .points_selector(filter)
                .wait(true)
                .ordering(Self::write_ordering())
                .timeout(self.server_timeout());
            let response = self.client.set_payload(request).await.map_err(|e| map_error(e, name))?;
            check_completed(response.result, "set payload")?;
        }
        Ok(())
    }

    async fn delete_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<()> {
        // Empty selector: no filters, no request.
        for filter in keeping(selector_filters(selector), keep) {
            self.delete_filter(spec, filter).await?;
        }
        Ok(())
    }

    async fn retrieve(&self, spec: &CollectionSpec, ids: &[Uuid], with_vectors: bool) -> Result<Vec<StoredPoint>> {
        let name = &spec.backend_name;
        let mut seen = BTreeSet::new();
        let unique: Vec<Uuid> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        let mut points = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(ID_CHUNK) {
            let request = GetPointsBuilder::new(name.clone(), chunk.iter().map(|id| point_id(*id)).collect::<Vec<_>>())
                .with_payload(true)
                .with_vectors(with_vectors)
                .read_consistency(Self::read_all());
            let response = self.client.get_points(request).await.map_err(|e| map_error(e, name))?;
            for point in response.result {
                points.push(stored_point(point, with_vectors, spec.tenant_id)?);
            }
        }
        Ok(points)
    }

    /// Qdrant pages in point-id order. The returned offset is the FIRST id of
    /// the next page (Qdrant's offset is inclusive): pass it back unchanged.
    async fn scroll(
        &self,
        spec: &CollectionSpec,
        offset: Option<Uuid>,
        limit: usize,
        with_vectors: bool,
    ) -> Result<(Vec<StoredPoint>, Option<Uuid>)> {
        if limit == 0 {
            return Ok((Vec::new(), offset));
        }
        let name = &spec.backend_name;
        let mut request = ScrollPointsBuilder::new(name.clone())
            .limit(u32::try_from(limit).unwrap_or(u32::MAX))
            .with_payload(true)
            .with_vectors(with_vectors)
            .read_consistency(Self::read_all());
        if let Some(offset) = offset {
            request = request.offset(point_id(offset));
        }
        let response = self.client.scroll(request).await.map_err(|e| map_error(e, name))?;
        let mut points = Vec::with_capacity(response.result.len());
        for point in response.result {
            points.push(stored_point(point, with_vectors, spec.tenant_id)?);
        }
        let next = response.next_page_offset.map(|id| uuid_from_point_id(Some(&id))).transpose()?;
        Ok((points, next))
    }

    async fn search_exact(
        &self,
        spec: &CollectionSpec,
        probes: &[Vec<f32>],
        threshold: f32,
        limit: usize,
    ) -> Result<Vec<ScoredPoint>> {
        if probes.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        for probe in probes {
            VectorStores::check_dimension(spec, probe)?;
        }
        let name = &spec.backend_name;
        let better = Better::for_distance(spec.distance);
        let mut best: HashMap<Uuid, ScoredPoint> = HashMap::new();
        for (chunk_index, chunk) in probes.chunks(PROBE_CHUNK).enumerate() {
            let queries: Vec<QueryPoints> = chunk
                .iter()
                .map(|probe| {
                    QueryPointsBuilder::new(name.clone())
                        .query(Query::new_nearest(probe.clone()))
                        // Exhaustive scan: HNSW is approximate and may miss a residual.
                        .params(SearchParamsBuilder::default().exact(true))
                        .score_threshold(threshold)
                        .limit(limit as u64)
                        .with_payload(true)
                        .with_vectors(false)
                        .read_consistency(Self::read_all())
                        .timeout(self.server_timeout())
                        .build()
                })
                .collect();
            for (i, batch) in self.query_all(name, queries).await?.into_iter().enumerate() {
                let probe = chunk_index * PROBE_CHUNK + i;
                for hit in batch {
                    let id = uuid_from_point_id(hit.id.as_ref())?;
                    let payload = payload_from_qdrant(&hit.payload, spec.tenant_id)?;
                    let candidate = ScoredPoint { id, score: hit.score, probe, payload };
                    match best.get(&id) {
                        // Ties keep the earlier probe.
                        Some(current) if !better.is_better(candidate.score, current.score) => {}
                        _ => {
                            best.insert(id, candidate);
                        }
                    }
                }
            }
        }
        let mut hits: Vec<ScoredPoint> = best.into_values().collect();
        hits.sort_by(|a, b| better.order(a.score, b.score).then_with(|| a.id.cmp(&b.id)));
        hits.truncate(limit);
        Ok(hits)
    }

    /// A new physical collection `{backend_name}_{suffix}` beside the live one
    /// (same vector parameters, optimizer/WAL settings and indexes), not
    /// visible to readers of the alias until [`promote`](VectorStore::promote).
    async fn create_staging(&self, spec: &CollectionSpec, suffix: &str) -> Result<CollectionSpec> {
        if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(backend_error(format!("invalid staging suffix `{suffix}` (letters and digits only)"), None));
        }
        let physical = physical_name(&spec.backend_name, suffix);
        if self.resolve_alias(&physical).await?.is_some() {
            return Err(backend_error(format!("`{physical}` is an alias, not a staging collection"), None));
        }
        self.create_physical(spec, &physical).await?;
        Ok(CollectionSpec { backend_name: physical, ..spec.clone() })
    }

    /// Points the alias `live.backend_name` at `staging.backend_name` in one
    /// atomic `UpdateAliases` request; returns the collection it pointed to.
    async fn promote(&self, live: &CollectionSpec, staging: &CollectionSpec) -> Result<String> {
        let alias = &live.backend_name;
        let retired =
            self.resolve_alias(alias).await?.ok_or_else(|| VectorStoreError::CollectionNotFound(alias.clone()))?;
        if retired == staging.backend_name {
            // A retry after a promote that succeeded: the retired name is not
            // known any more, and naming the live collection would get it dropped.
            return Err(backend_error(
                format!("`{alias}` already points to `{retired}`; the previous collection is not known"),
                None,
            ));
        }
        self.swap_alias(alias, &staging.backend_name).await?;
        Ok(retired)
    }

    async fn is_promoted(&self, live: &CollectionSpec, staging: &CollectionSpec) -> Result<bool> {
        Ok(self.resolve_alias(&live.backend_name).await?.as_deref() == Some(staging.backend_name.as_str()))
    }

    /// Every physical collection of the alias except the one it points to.
    async fn orphans(&self, live: &CollectionSpec) -> Result<Vec<String>> {
        let alias = &live.backend_name;
        // Without its alias nothing tells the live generation apart: none is an orphan then.
        let target = self.resolve_alias(alias).await?.ok_or_else(|| VectorStoreError::CollectionNotFound(alias.clone()))?;
        let collections = self.client.list_collections().await.map_err(|e| map_error(e, alias))?;
        Ok(collections.collections.into_iter().map(|c| c.name).filter(|name| is_physical_of(name, alias) && *name != target).collect())
    }

    /// Deletes a physical collection; refuses one that an alias points to
    /// (Qdrant would delete the alias with it, i.e. a live collection).
    async fn drop_physical(&self, physical_name: &str) -> Result<()> {
        let aliases = self.client.list_aliases().await.map_err(|e| map_error(e, physical_name))?;
        if let Some(a) =
            aliases.aliases.iter().find(|a| a.collection_name == physical_name || a.alias_name == physical_name)
        {
            return Err(backend_error(
                format!(
                    "refusing to drop `{physical_name}`: the alias `{}` points to `{}`",
                    a.alias_name, a.collection_name
                ),
                None,
            ));
        }
        self.delete_collection_if_exists(physical_name).await
    }

    async fn reclaim(&self, spec: &CollectionSpec, guarantee: bool) -> Result<PhysicalOutcome> {
        let alias = &spec.backend_name;
        let physical =
            self.resolve_alias(alias).await?.ok_or_else(|| VectorStoreError::CollectionNotFound(alias.clone()))?;
        // Any optimizers diff recreates the optimizers, which re-evaluates
        // every segment against the vacuum condition.
        let request = UpdateCollectionBuilder::new(physical.clone())
            .optimizers_config(optimizers_for_erasure())
            .timeout(self.server_timeout());
        self.client.update_collection(request).await.map_err(|e| map_error(e, &physical))?;
        let mut reason = format!(
            "Qdrant deletes are soft: deleted vectors stay in the segment files of `{physical}` until an \
             optimizer rewrites the segment. The optimizers were re-triggered (deleted_threshold=0, \
             vacuum_min_vector_number={VACUUM_MIN_VECTOR_NUMBER}), but Qdrant vacuums only segments of at \
             least {VACUUM_MIN_VECTOR_NUMBER} points with a deleted share above the threshold, \
             asynchronously, and reports no per-point completion; the WAL (until about 1 MB of newer \
             writes rotates it out) and any snapshot or backup still hold the data."
        );
        if guarantee {
            reason.push_str(
                " Guaranteed removal needs a re-index into a new collection generation, an alias swap and \
                 dropping the old collection; reclaim does not do that.",
            );
        } else {
            reason.push_str(" Guaranteed removal needs a re-index into a new collection generation.");
        }
        Ok(PhysicalOutcome::Pending(reason))
    }
}
