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
    ScoredPoint as QdrantScoredPoint, ScrollPointsBuilder, SearchParamsBuilder, UpdateCollectionBuilder, UpdateResult,
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

/// Adds the API key to the raw generated client's requests (the official
/// client's interceptor is private).
#[derive(Clone)]
struct ApiKeyInterceptor(Option<MetadataValue<Ascii>>);

impl Interceptor for ApiKeyInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        if let Some(key) = &self.0 {
            request.metadata_mut().insert(API_KEY_HEADER, key.clone());
        }
        Ok(request)
    }
}

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

impl QdrantStore {
    /// Connects (and checks the connection) to Qdrant's gRPC endpoint
    /// (`http(s)://host:6334`). `timeout` bounds every request (the client's
    /// default of 5 s is too low for exact counts and waited deletes).
    ///
    /// The client's version-compatibility check stays on: it only prints a
    /// warning when the server's minor version is more than one away.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached, `Backend` for a bad
    /// URL or API key.
    pub async fn connect(url: &str, api_key: Option<String>, timeout: Duration) -> Result<Self> {
        let key_header = match &api_key {
            Some(key) => Some(
                key.parse::<MetadataValue<Ascii>>()
                    .map_err(|_| backend_error("the Qdrant API key is not a valid header value", None))?,
            ),
            None => None,
        };

        let builder = Qdrant::from_url(url).api_key(api_key).timeout(timeout).connect_timeout(CONNECT_TIMEOUT);
        // `build()` runs the compatibility health check on a thread with its
        // own runtime and blocks until it is done: keep it off the executor.
        let client = tokio::task::spawn_blocking(move || builder.build())
            .await
            .map_err(|e| backend_error(format!("building the Qdrant client failed: {e}"), None))?
            .map_err(|e| map_error(e, ""))?;
        let health = client.health_check().await.map_err(|e| map_error(e, ""))?;
        tracing::info!(url, server_version = %health.version, "connected to Qdrant");

        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| backend_error(format!("invalid Qdrant URL `{url}`: {e}"), Some(Box::new(e))))?
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT);
        if endpoint.uri().scheme_str() == Some("https") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| backend_error(format!("TLS setup for `{url}` failed: {e}"), Some(Box::new(e))))?;
        }
        let channel = endpoint.connect_lazy();
        let aliases = CollectionsClient::with_interceptor(channel, ApiKeyInterceptor(key_header));

        Ok(Self { client, aliases, timeout })
    }

    /// The collection an alias points to, `None` when there is no such alias.
    ///
    /// # Errors
    /// When the aliases cannot be listed.
    pub async fn resolve_alias(&self, alias: &str) -> Result<Option<String>> {
        let list = self.client.list_aliases().await.map_err(|e| map_error(e, alias))?;
        Ok(list.aliases.into_iter().find(|a| a.alias_name == alias).map(|a| a.collection_name))
    }

    /// Points `alias` at `new_collection` atomically: delete and create in ONE
    /// `UpdateAliases` request, so readers never see the alias missing. Creates
    /// the alias when it does not exist yet.
    ///
    /// # Errors
    /// `CollectionNotFound(new_collection)` when the target does not exist.
    pub async fn swap_alias(&self, alias: &str, new_collection: &str) -> Result<()> {
        if !self.collection_exists(new_collection).await? {
            return Err(VectorStoreError::CollectionNotFound(new_collection.to_owned()));
        }
        let mut actions = Vec::with_capacity(2);
        if self.resolve_alias(alias).await?.is_some() {
            actions.push(Action::DeleteAlias(DeleteAlias { alias_name: alias.to_owned() }));
        }
        actions.push(Action::CreateAlias(CreateAlias {
            collection_name: new_collection.to_owned(),
            alias_name: alias.to_owned(),
        }));
        self.update_aliases(actions, new_collection).await
    }

    /// Creates the physical collection `physical` with the spec's vector
    /// parameters and the keyword indexes, without touching any alias. A no-op
    /// for the parts that exist.
    async fn create_physical(&self, spec: &CollectionSpec, physical: &str) -> Result<()> {
        let physical = physical.to_owned();
        if !self.collection_exists(&physical).await? {
            let dimension = u64::try_from(spec.dimension)
                .map_err(|_| backend_error(format!("dimension {} is too large", spec.dimension), None))?;
            let request = CreateCollectionBuilder::new(physical.clone())
                .vectors_config(VectorParamsBuilder::new(dimension, distance(spec.distance)))
                // Erasure wants deleted vectors out of the files soon:
                // - `deleted_threshold(0.0)`: a segment qualifies for vacuum as
                //   soon as it holds ANY deleted point (default 0.2, i.e. 20 %);
                // - `vacuum_min_vector_number(100)`: the server's minimum
                //   (default 1000); smaller segments are never vacuumed.
                .optimizers_config(optimizers_for_erasure())
                // The WAL holds every upserted vector and payload until its
                // closed segments are truncated; 1 MB segments (default 32 MB)
                // make erased data leave the WAL after ~1-2 MB of newer writes
                // instead of ~64 MB.
                .wal_config(WalConfigDiffBuilder::default().wal_capacity_mb(1))
                .timeout(self.server_timeout());
            match self.client.create_collection(request).await {
                Ok(_) => tracing::info!(collection = %physical, "created Qdrant collection"),
                // Lost a race with a concurrent creator: fine if it is there now.
                Err(e) if self.collection_exists(&physical).await.unwrap_or(false) => {
                    tracing::debug!(collection = %physical, error = %e, "collection appeared concurrently");
                }
                Err(e) => return Err(map_error(e, &physical)),
            }
        }
        // Creating an existing index is accepted by Qdrant (idempotent).
        for (field, is_tenant) in [(FIELD_TENANT, true), (FIELD_SUBJECTS, false), (FIELD_SOURCE, false)] {
            let mut request =
                CreateFieldIndexCollectionBuilder::new(physical.clone(), field, FieldType::Keyword).wait(true);
            if is_tenant {
                request = request.field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true).build());
            }
            let response = self.client.create_field_index(request).await.map_err(|e| map_error(e, &physical))?;
            check_completed(response.result, &format!("creating the `{field}` index"))?;
        }
        Ok(())
    }

    async fn collection_exists(&self, name: &str) -> Result<bool> {
        self.client.collection_exists(name).await.map_err(|e| map_error(e, name))
    }

    /// One `UpdateAliases` request: the server applies all actions under one lock.
    async fn update_aliases(&self, actions: Vec<Action>, name: &str) -> Result<()> {
        let request = ChangeAliases {
            actions: actions.into_iter().map(|a| AliasOperations { action: Some(a) }).collect(),
            timeout: Some(self.server_timeout()),
        };
        let mut raw = self.aliases.clone();
        let response = raw.update_aliases(request).await.map_err(|s| map_error(QdrantError::from(s), name))?;
        if response.into_inner().result {
            Ok(())
        } else {
            Err(backend_error(format!("alias change for `{name}` was not applied"), None))
        }
    }

    /// The hits of each query, in order: one `QueryBatch` request, or one
    /// `Query` per probe when the server does not implement `QueryBatch`
    /// (the qdrant-standin test server).
    async fn query_all(&self, name: &str, queries: Vec<QueryPoints>) -> Result<Vec<Vec<QdrantScoredPoint>>> {
        let n = queries.len();
        let request = QueryBatchPointsBuilder::new(name, queries.clone())
            .read_consistency(Self::read_all())
            .timeout(self.server_timeout());
        match self.client.query_batch(request).await {
            Ok(response) if response.result.len() == n => Ok(response.result.into_iter().map(|b| b.result).collect()),
            Ok(response) => Err(backend_error(
                format!("QueryBatch answered {} results for {n} queries", response.result.len()),
                None,
            )),
            Err(QdrantError::ResponseError { status }) if status.code() == tonic::Code::Unimplemented => {
                tracing::debug!(collection = name, "QueryBatch is not implemented: one Query per probe");
                let mut results = Vec::with_capacity(n);
                for query in queries {
                    results.push(self.client.query(query).await.map_err(|e| map_error(e, name))?.result);
                }
                Ok(results)
            }
            Err(e) => Err(map_error(e, name)),
        }
    }

    async fn delete_collection_if_exists(&self, name: &str) -> Result<()> {
        let request = DeleteCollectionBuilder::new(name).timeout(self.server_timeout());
        match self.client.delete_collection(request).await {
            Ok(_) => {
                tracing::info!(collection = name, "dropped Qdrant collection");
                Ok(())
            }
            Err(e) => match map_error(e, name) {
                VectorStoreError::CollectionNotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Server-side wait (seconds) for waited operations: a second below the
    /// client's deadline, so a slow operation answers `WaitTimeout` (reported
    /// as such) rather than the request being cut off.
    fn server_timeout(&self) -> u64 {
        self.timeout.as_secs().saturating_sub(1).max(1)
    }

    fn write_ordering() -> WriteOrdering {
        WriteOrdering { r#type: WriteOrderingType::Strong.into() }
    }

    fn read_all() -> read_consistency::Value {
        read_consistency::Value::Type(ReadConsistencyType::All.into())
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

    async fn delete_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<()> {
        let name = &spec.backend_name;
        // Empty selector: no filters, no request.
        for filter in keeping(selector_filters(selector), keep) {
            let request = DeletePointsBuilder::new(name.clone())
                .points(filter)
                .wait(true)
                .ordering(Self::write_ordering())
                .timeout(self.server_timeout());
            let response = self.client.delete_points(request).await.map_err(|e| map_error(e, name))?;
            check_completed(response.result, "delete")?;
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

fn optimizers_for_erasure() -> OptimizersConfigDiff {
    OptimizersConfigDiffBuilder::default()
        .deleted_threshold(0.0)
        .vacuum_min_vector_number(VACUUM_MIN_VECTOR_NUMBER)
        .build()
}

fn distance(d: Distance) -> qdrant_client::qdrant::Distance {
    match d {
        Distance::Cosine => qdrant_client::qdrant::Distance::Cosine,
        Distance::Dot => qdrant_client::qdrant::Distance::Dot,
        Distance::Euclid => qdrant_client::qdrant::Distance::Euclid,
    }
}

/// The physical collection `{alias}_{suffix}` (`_g1` at creation, the
/// re-index's suffix for later generations).
fn physical_name(alias: &str, suffix: &str) -> String {
    format!("{alias}_{suffix}")
}

/// Whether `name` is `{alias}_{suffix}` with a suffix of letters and digits
/// only. No physical collection of another Lethe alias can look like that:
/// it would need an underscore in the suffix.
fn is_physical_of(name: &str, alias: &str) -> bool {
    name.strip_prefix(alias)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Which scores are better: higher for cosine and dot, lower (a distance) for Euclid.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

impl Better {
    fn for_distance(d: Distance) -> Self {
        match d {
            Distance::Cosine | Distance::Dot => Self::Higher,
            Distance::Euclid => Self::Lower,
        }
    }

    fn is_better(self, a: f32, b: f32) -> bool {
        self.order(a, b) == Ordering::Less
    }

    /// Best first.
    fn order(self, a: f32, b: f32) -> Ordering {
        match self {
            Self::Higher => b.total_cmp(&a),
            Self::Lower => a.total_cmp(&b),
        }
    }
}

// ---- filters ---------------------------------------------------------------

/// An exact keyword match, never the full-text match `From<String>` may pick.
fn keyword(field: &str, value: &str) -> Condition {
    Condition::matches(field, MatchValue::Keyword(value.to_owned()))
}

fn has_ids(ids: &[Uuid]) -> Condition {
    Condition::has_id(ids.iter().map(|id| point_id(*id)))
}

/// Disjoint filters whose union is exactly what the selector selects: the
/// first is `tag OR first ids chunk`, the others `ids chunk AND NOT tag`, so
/// counts add up and deletes can be chunked. No tenant condition: the
/// collection is one tenant's (see `Selector`). An empty selector yields no
/// filter at all (selects nothing).
fn selector_filters(selector: &Selector) -> Vec<Filter> {
    if selector.is_empty() {
        return Vec::new();
    }
    let ids: Vec<Uuid> = selector.ids.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let mut chunks = ids.chunks(ID_CHUNK);
    let mut filters = Vec::new();
    match &selector.tag {
        Some(tag) => {
            let mut should = vec![keyword(FIELD_SUBJECTS, tag)];
            if let Some(first) = chunks.next() {
                should.push(has_ids(first));
            }
            filters.push(Filter { should, ..Filter::default() });
            for chunk in chunks {
                filters.push(Filter {
                    must: vec![has_ids(chunk)],
                    must_not: vec![keyword(FIELD_SUBJECTS, tag)],
                    ..Filter::default()
                });
            }
        }
        None => {
            for chunk in chunks {
                filters.push(Filter { must: vec![has_ids(chunk)], ..Filter::default() });
            }
        }
    }
    filters
}

/// The filters with what `keep` selects excluded from each (they stay disjoint).
fn keeping(mut filters: Vec<Filter>, keep: &Keep) -> Vec<Filter> {
    if keep.is_empty() {
        return filters;
    }
    for f in &mut filters {
        if !keep.tags.is_empty() {
            let any = MatchValue::Keywords(qdrant_client::qdrant::RepeatedStrings { strings: keep.tags.clone() });
            f.must_not.push(Condition::matches(FIELD_SUBJECTS, any));
        }
        if !keep.ids.is_empty() {
            f.must_not.push(has_ids(&keep.ids));
        }
    }
    filters
}

// ---- points and payloads ---------------------------------------------------

fn point_id(id: Uuid) -> PointId {
    PointId::from(id.to_string())
}

fn uuid_from_point_id(id: Option<&PointId>) -> Result<Uuid> {
    match id.and_then(|id| id.point_id_options.as_ref()) {
        Some(PointIdOptions::Uuid(s)) => {
            Uuid::parse_str(s).map_err(|e| backend_error(format!("point id `{s}` is not a UUID: {e}"), None))
        }
        Some(PointIdOptions::Num(n)) => Err(backend_error(format!("numeric point id {n}, expected a UUID"), None)),
        None => Err(backend_error("point without an id", None)),
    }
}

fn string_value(s: &str) -> Value {
    Value { kind: Some(Kind::StringValue(s.to_owned())) }
}

fn payload_to_qdrant(payload: &PointPayload) -> HashMap<String, Value> {
    let mut map = HashMap::with_capacity(4);
    map.insert(FIELD_TENANT.to_owned(), string_value(&payload.tenant_id.to_string()));
    map.insert(FIELD_SOURCE.to_owned(), string_value(&payload.source_id));
    map.insert(
        FIELD_SUBJECTS.to_owned(),
        Value {
            kind: Some(Kind::ListValue(ListValue {
                values: payload.subjects.iter().map(|s| string_value(s)).collect(),
            })),
        },
    );
    if let Some(text) = &payload.text {
        map.insert(FIELD_TEXT.to_owned(), string_value(text));
    }
    map
}

fn optional_string<'a>(map: &'a HashMap<String, Value>, field: &str) -> Result<Option<&'a str>> {
    match map.get(field).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) => Ok(Some(s)),
        None | Some(Kind::NullValue(_)) => Ok(None),
        Some(_) => Err(backend_error(format!("payload field `{field}` is not a string"), None)),
    }
}

/// A point's payload. Points a pipeline wrote may lack Lethe's fields: a
/// missing or unreadable `tenant_id` is the collection's `owner` (a point in
/// a collection is its owner's), a missing `source_id` is empty; only a
/// field of the wrong type is an error.
fn payload_from_qdrant(map: &HashMap<String, Value>, owner: Uuid) -> Result<PointPayload> {
    let tenant_id = optional_string(map, FIELD_TENANT)?.and_then(|t| Uuid::parse_str(t).ok()).unwrap_or(owner);
    let source_id = optional_string(map, FIELD_SOURCE)?.unwrap_or_default().to_owned();
    let subjects = match map.get(FIELD_SUBJECTS).and_then(|v| v.kind.as_ref()) {
        None | Some(Kind::NullValue(_)) => Vec::new(),
        Some(Kind::ListValue(list)) => list
            .values
            .iter()
            .map(|v| match &v.kind {
                Some(Kind::StringValue(s)) => Ok(s.clone()),
                _ => Err(backend_error("payload field `subjects` holds a non-string", None)),
            })
            .collect::<Result<Vec<_>>>()?,
        // A single value (written by hand) is a one-element list to Qdrant too.
        Some(Kind::StringValue(s)) => vec![s.clone()],
        Some(_) => return Err(backend_error("payload field `subjects` is not a list of strings", None)),
    };
    let text = match map.get(FIELD_TEXT).and_then(|v| v.kind.as_ref()) {
        None | Some(Kind::NullValue(_)) => None,
        Some(Kind::StringValue(s)) => Some(s.clone()),
        Some(_) => return Err(backend_error("payload field `text` is not a string", None)),
    };
    Ok(PointPayload { tenant_id, source_id, subjects, text })
}

/// The default dense vector, without the client's `into_vector` (which divides
/// by a server-sent count and could panic on malformed data).
#[allow(deprecated)]
fn dense_vector(vectors: Option<VectorsOutput>) -> Result<Vec<f32>> {
    let Some(VectorsOptions::Vector(output)) = vectors.and_then(|v| v.vectors_options) else {
        return Err(backend_error("point without its default vector", None));
    };
    match output.vector {
        Some(vector_output::Vector::Dense(dense)) => Ok(dense.data),
        // Servers before 1.16 send the flat `data` field only.
        None if output.indices.is_none() && output.vectors_count.is_none() => Ok(output.data),
        _ => Err(backend_error("point vector is not dense", None)),
    }
}

fn stored_point(point: RetrievedPoint, with_vectors: bool, owner: Uuid) -> Result<StoredPoint> {
    let id = uuid_from_point_id(point.id.as_ref())?;
    let payload = payload_from_qdrant(&point.payload, owner)?;
    let vector = if with_vectors { Some(dense_vector(point.vectors)?) } else { None };
    Ok(StoredPoint { id, payload, vector })
}

fn check_completed(result: Option<UpdateResult>, what: &str) -> Result<()> {
    let Some(result) = result else {
        return Err(backend_error(format!("{what}: response without an update result"), None));
    };
    if result.status == i32::from(UpdateStatus::Completed) {
        return Ok(());
    }
    let status = UpdateStatus::try_from(result.status)
        .map_or_else(|_| format!("unknown status {}", result.status), |s| s.as_str_name().to_owned());
    Err(backend_error(format!("{what} not completed: {status}"), None))
}

// ---- errors ----------------------------------------------------------------

fn backend_error(message: impl Into<String>, source: Option<BoxError>) -> VectorStoreError {
    VectorStoreError::Backend { backend: Backend::Qdrant, message: message.into(), source }
}

/// The one mapping of client errors: unreachable, timed out, cancelled or
/// throttled → `Unavailable` (retry), `NotFound` → `CollectionNotFound(name)`,
/// anything else → `Backend`.
fn map_error(err: QdrantError, name: &str) -> VectorStoreError {
    let status = match &err {
        QdrantError::ResponseError { status } | QdrantError::ResourceExhaustedError { status, .. } => Some(status),
        _ => None,
    };
    let Some(status) = status else {
        return backend_error(err.to_string(), Some(Box::new(err)));
    };
    let transient = match status.code() {
        tonic::Code::Unavailable
        | tonic::Code::DeadlineExceeded
        | tonic::Code::Cancelled
        | tonic::Code::ResourceExhausted => true,
        // The client's channel pool reports a failed connect as Internal.
        tonic::Code::Internal if status.message().starts_with("Failed to connect to") => true,
        _ => has_transport_source(status),
    };
    if transient {
        return VectorStoreError::Unavailable { backend: Backend::Qdrant, source: Box::new(err) };
    }
    if status.code() == tonic::Code::NotFound && !name.is_empty() {
        return VectorStoreError::CollectionNotFound(name.to_owned());
    }
    let message = format!("{:?}: {}", status.code(), status.message());
    backend_error(message, Some(Box::new(err)))
}

fn has_transport_source(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if err.is::<tonic::transport::Error>() || err.is::<std::io::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use qdrant_client::qdrant::condition::ConditionOneOf;

    use super::*;

    fn keyword_of(c: &Condition) -> Option<(&str, &MatchValue)> {
        match &c.condition_one_of {
            Some(ConditionOneOf::Field(f)) => f.r#match.as_ref()?.match_value.as_ref().map(|m| (f.key.as_str(), m)),
            _ => None,
        }
    }

    fn id_count(c: &Condition) -> Option<usize> {
        match &c.condition_one_of {
            Some(ConditionOneOf::HasId(h)) => Some(h.has_id.len()),
            _ => None,
        }
    }

    #[test]
    fn empty_selector_selects_nothing() {
        let s = Selector { tag: None, ids: Vec::new() };
        assert!(selector_filters(&s).is_empty());
    }

    #[test]
    fn tags_with_spaces_are_keyword_matches() {
        let filters = selector_filters(&Selector::by_tag("Tim Belden"));
        assert_eq!(filters.len(), 1);
        let f = &filters[0];
        assert!(f.must.is_empty(), "no tenant condition: the collection is one tenant's");
        assert_eq!(keyword_of(&f.should[0]), Some((FIELD_SUBJECTS, &MatchValue::Keyword("Tim Belden".into()))));
        assert!(f.must_not.is_empty());
    }

    #[test]
    fn ids_are_deduplicated_and_chunked_disjointly() {
        let mut ids: Vec<Uuid> = (0..2_500).map(|_| Uuid::new_v4()).collect();
        ids.push(ids[0]);
        let s = Selector { tag: Some("x".into()), ids };
        let filters = selector_filters(&s);
        assert_eq!(filters.len(), 3);
        assert_eq!(filters[0].should.len(), 2);
        assert_eq!(id_count(&filters[0].should[1]), Some(1_000));
        assert_eq!(id_count(&filters[1].must[0]), Some(1_000));
        assert_eq!(id_count(&filters[2].must[0]), Some(500));
        for f in &filters[1..] {
            assert_eq!(keyword_of(&f.must_not[0]), Some((FIELD_SUBJECTS, &MatchValue::Keyword("x".into()))));
        }
        let only_ids = selector_filters(&Selector::by_ids(vec![Uuid::new_v4(); 3]));
        assert_eq!(only_ids.len(), 1);
        assert!(only_ids[0].should.is_empty());
        assert_eq!(id_count(&only_ids[0].must[0]), Some(1));
    }

    #[test]
    fn payload_round_trips() {
        let p = PointPayload {
            tenant_id: Uuid::new_v4(),
            source_id: "doc-1".into(),
            subjects: vec!["Tim Belden".into(), "Ann".into()],
            text: None,
        };
        let map = payload_to_qdrant(&p);
        assert!(!map.contains_key(FIELD_TEXT));
        assert_eq!(payload_from_qdrant(&map, Uuid::new_v4()).unwrap(), p);
        let with_text = PointPayload { text: Some("hello".into()), ..p };
        assert_eq!(payload_from_qdrant(&payload_to_qdrant(&with_text), Uuid::new_v4()).unwrap(), with_text);
    }

    #[test]
    fn malformed_data_is_an_error_not_a_panic() {
        let mut map = payload_to_qdrant(&PointPayload {
            tenant_id: Uuid::new_v4(),
            source_id: "s".into(),
            subjects: vec![],
            text: None,
        });
        // A pipeline's point without Lethe's fields is the collection owner's.
        let owner = Uuid::new_v4();
        map.insert(FIELD_TENANT.into(), string_value("not-a-uuid"));
        assert_eq!(payload_from_qdrant(&map, owner).unwrap().tenant_id, owner);
        map.remove(FIELD_TENANT);
        map.remove(FIELD_SOURCE);
        let bare = payload_from_qdrant(&map, owner).unwrap();
        assert_eq!((bare.tenant_id, bare.source_id.as_str()), (owner, ""));
        map.insert(FIELD_SOURCE.into(), Value { kind: Some(Kind::BoolValue(true)) });
        assert!(matches!(payload_from_qdrant(&map, owner), Err(VectorStoreError::Backend { .. })));
        assert!(uuid_from_point_id(Some(&PointId::from(7u64))).is_err());
        assert!(uuid_from_point_id(None).is_err());
        assert!(dense_vector(None).is_err());
        assert!(check_completed(None, "x").is_err());
        let wait_timeout = UpdateResult { operation_id: None, status: UpdateStatus::WaitTimeout.into() };
        let err = check_completed(Some(wait_timeout), "delete").unwrap_err();
        assert!(err.to_string().contains("WaitTimeout"), "{err}");
    }

    #[test]
    fn errors_are_classified() {
        let e = |s: tonic::Status| map_error(QdrantError::from(s), "c");
        assert!(matches!(e(tonic::Status::unavailable("down")), VectorStoreError::Unavailable { .. }));
        assert!(matches!(e(tonic::Status::deadline_exceeded("slow")), VectorStoreError::Unavailable { .. }));
        assert!(matches!(e(tonic::Status::cancelled("Timeout expired")), VectorStoreError::Unavailable { .. }));
        assert!(matches!(
            e(tonic::Status::internal("Failed to connect to http://x:6334/: ...")),
            VectorStoreError::Unavailable { .. }
        ));
        assert!(
            matches!(e(tonic::Status::not_found("no collection")), VectorStoreError::CollectionNotFound(n) if n == "c")
        );
        assert!(matches!(e(tonic::Status::invalid_argument("bad")), VectorStoreError::Backend { .. }));
        assert!(matches!(e(tonic::Status::internal("boom")), VectorStoreError::Backend { .. }));
    }

    #[test]
    fn physical_names_are_recognised() {
        assert_eq!(physical_name("docs", FIRST_GENERATION), "docs_g1");
        assert!(is_physical_of("docs_g1", "docs"));
        assert!(is_physical_of("docs_r1a2b3c4d", "docs"));
        assert!(!is_physical_of("docs_", "docs"));
        assert!(!is_physical_of("docs_x_g1", "docs"), "a generation of the alias `docs_x`");
        assert!(!is_physical_of("docs2_g1", "docs"));
        assert!(!is_physical_of("docs", "docs"));
    }

    #[tokio::test]
    async fn unreachable_server_is_unavailable() {
        let err = QdrantStore::connect("http://127.0.0.1:9", None, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, VectorStoreError::Unavailable { .. }), "{err:?}");
    }

    fn spec(name: &str, tenant_id: Uuid) -> CollectionSpec {
        CollectionSpec {
            collection_id: Uuid::new_v4(),
            tenant_id,
            name: crate::domain::CollectionName::parse("name", "test").unwrap(),
            backend: Backend::Qdrant,
            backend_name: name.to_owned(),
            dimension: 4,
            distance: Distance::Cosine,
            embedding_model: "test".into(),
            store_text: true,
            retention_days: 30,
            screening: crate::domain::Screening::Accept,
            created_at: chrono::Utc::now(),
        }
    }

    fn point(tenant_id: Uuid, subjects: &[&str], vector: [f32; 4], text: Option<&str>) -> VectorPoint {
        VectorPoint {
            id: Uuid::new_v4(),
            vector: vector.to_vec(),
            payload: PointPayload {
                tenant_id,
                source_id: "src-1".into(),
                subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
                text: text.map(str::to_owned),
            },
        }
    }

    /// Runs against a live server when `LETHE_QDRANT_TEST_URL` is set
    /// (e.g. `http://127.0.0.1:6334`, a Qdrant or the stand-in); skipped otherwise.
    #[tokio::test]
    #[allow(clippy::too_many_lines)]
    async fn live_round_trip() {
        let Ok(url) = std::env::var("LETHE_QDRANT_TEST_URL") else {
            eprintln!("skipped: LETHE_QDRANT_TEST_URL is not set");
            return;
        };
        let store = QdrantStore::connect(&url, None, Duration::from_secs(30)).await.unwrap();
        let t = Uuid::new_v4();
        let other = Uuid::new_v4();
        let name = format!("lethe_test_{}", &Uuid::new_v4().simple().to_string()[..8]);
        let spec = spec(&name, t);

        store.create_collection(&spec).await.unwrap();
        store.create_collection(&spec).await.unwrap(); // idempotent
        assert_eq!(store.resolve_alias(&name).await.unwrap(), Some(format!("{name}_g1")));

        let p1 = point(t, &["Tim Belden"], [1.0, 0.0, 0.0, 0.0], None);
        let p2 = point(t, &["Tim"], [0.0, 1.0, 0.0, 0.0], None);
        let p3 = point(t, &["Tim Belden", "Ann"], [0.9, 0.1, 0.0, 0.0], None);
        let p4 = point(other, &["Tim Belden"], [1.0, 0.0, 0.0, 0.0], None);
        let p5 = point(t, &[], [0.0, 0.0, 2.0, 0.0], Some("some text"));
        store.upsert(&spec, &[p1.clone(), p2.clone(), p3.clone(), p4.clone(), p5.clone()]).await.unwrap();

        let bad = VectorPoint { vector: vec![1.0; 3], ..p1.clone() };
        assert!(matches!(
            store.upsert(&spec, &[bad]).await,
            Err(VectorStoreError::DimensionMismatch { expected: 4, actual: 3 })
        ));

        // Keyword, not full-text: "Tim" does not match "Tim Belden".
        assert_eq!(store.count(&spec, &Selector::by_tag("Tim Belden")).await.unwrap(), 2);
        assert_eq!(store.count(&spec, &Selector::by_tag("Tim")).await.unwrap(), 1);
        assert_eq!(store.count(&spec, &Selector::by_tag("Belden")).await.unwrap(), 0);
        assert_eq!(store.count(&spec, &Selector::by_tag("Tim Belden")).await.unwrap(), 1);
        assert_eq!(store.count(&spec, &Selector::by_ids(vec![p1.id, p2.id, p4.id])).await.unwrap(), 2);
        let tag_or_ids = Selector { tag: Some("Tim Belden".into()), ids: vec![p1.id, p2.id] };
        assert_eq!(store.count(&spec, &tag_or_ids).await.unwrap(), 3);
        // More ids than one chunk: chunks must not double count.
        let mut many: Vec<Uuid> = (0..2_100).map(|_| Uuid::new_v4()).collect();
        many.extend([p1.id, p2.id, p3.id]);
        let big = Selector { tag: Some("Tim Belden".into()), ids: many };
        assert_eq!(store.count(&spec, &big).await.unwrap(), 3);

        let empty = Selector { tag: None, ids: Vec::new() };
        assert_eq!(store.count(&spec, &empty).await.unwrap(), 0);

        // retrieve: missing ids are skipped; cosine collections store normalised vectors.
        let got = store.retrieve(&spec, &[p5.id, Uuid::new_v4(), p1.id], true).await.unwrap();
        assert_eq!(got.len(), 2);
        let got5 = got.iter().find(|p| p.id == p5.id).unwrap();
        assert_eq!(got5.payload, p5.payload);
        assert_eq!(got5.payload.text.as_deref(), Some("some text"));
        let v = got5.vector.as_ref().unwrap();
        assert!((v[2] - 1.0).abs() < 1e-5, "{v:?}");
        let got1 = got.iter().find(|p| p.id == p1.id).unwrap();
        assert_eq!(got1.payload.text, None);
        assert_eq!(got1.payload.subjects, vec!["Tim Belden".to_owned()]);
        assert!(store.retrieve(&spec, &[p1.id], false).await.unwrap()[0].vector.is_none());

        // scroll: pages of 2 in id order over the tenant's 4 points.
        let mut seen = Vec::new();
        let mut offset = None;
        let mut pages = 0;
        loop {
            let (page, next) = store.scroll(&spec, offset, 2, false).await.unwrap();
            assert!(page.len() <= 2);
            pages += 1;
            seen.extend(page.iter().map(|p| p.id));
            match next {
                Some(n) => offset = Some(n),
                None => break,
            }
            assert!(pages < 10);
        }
        let mut expected = vec![p1.id, p2.id, p3.id, p5.id];
        expected.sort();
        assert_eq!(seen, expected, "scroll returns every point of the tenant once, in id order");
        assert_eq!(pages, 2);

        // search_exact: best score per point, its probe, threshold, tenant, limit.
        let probes = vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 0.0, 1.0, 0.0]];
        let hits = store.search_exact(&spec, &probes, 0.9, 10).await.unwrap();
        let ids: Vec<Uuid> = hits.iter().map(|h| h.id).collect();
        assert_eq!(hits.len(), 3, "{hits:?}");
        assert!(ids.contains(&p1.id) && ids.contains(&p3.id) && ids.contains(&p5.id));
        assert!(!ids.contains(&p4.id) && !ids.contains(&p2.id));
        assert_eq!(hits[2].id, p3.id);
        assert!(hits[2].score > 0.9 && hits[2].score < 0.999);
        assert_eq!(hits.iter().find(|h| h.id == p5.id).unwrap().probe, 1);
        assert_eq!(hits.iter().find(|h| h.id == p1.id).unwrap().probe, 0);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert_eq!(store.search_exact(&spec, &probes, 0.9, 2).await.unwrap().len(), 2);
        assert!(store.search_exact(&spec, &probes, 1.01, 10).await.unwrap().is_empty());

        // Empty selector deletes nothing.
        store.delete(&spec, &empty).await.unwrap();
        assert_eq!(store.count(&spec, &Selector::by_ids(vec![p1.id, p2.id, p3.id, p5.id])).await.unwrap(), 4);

        // Delete by tag OR ids in one call.
        store.delete(&spec, &tag_or_ids).await.unwrap();
        assert_eq!(store.count(&spec, &tag_or_ids).await.unwrap(), 0);
        assert_eq!(store.count(&spec, &Selector::by_ids(vec![p5.id])).await.unwrap(), 1);
        assert_eq!(store.count(&spec, &Selector::by_tag("Tim Belden")).await.unwrap(), 1);

        // Chunked upsert (256) and chunked delete by ids (1,000).
        let bulk: Vec<VectorPoint> =
            (0..300u16).map(|i| point(t, &["bulk"], [1.0, f32::from(i), 0.5, 0.0], None)).collect();
        store.upsert(&spec, &bulk).await.unwrap();
        let mut bulk_ids: Vec<Uuid> = (0..1_900).map(|_| Uuid::new_v4()).collect();
        bulk_ids.extend(bulk.iter().map(|p| p.id));
        assert_eq!(store.count(&spec, &Selector::by_ids(bulk_ids.clone())).await.unwrap(), 300);
        assert_eq!(store.count(&spec, &Selector::by_tag("bulk")).await.unwrap(), 300);
        store.delete(&spec, &Selector::by_ids(bulk_ids.clone())).await.unwrap();
        assert_eq!(store.count(&spec, &Selector::by_ids(bulk_ids)).await.unwrap(), 0);
        assert_eq!(store.count(&spec, &Selector::by_ids(vec![p5.id])).await.unwrap(), 1);

        match store.reclaim(&spec, true).await.unwrap() {
            PhysicalOutcome::Pending(reason) => assert!(reason.contains("re-index"), "{reason}"),
            PhysicalOutcome::Confirmed(c) => panic!("Qdrant cannot confirm: {c}"),
        }

        // The API key reaches both clients (the server may ignore it).
        let keyed = QdrantStore::connect(&url, Some("test-key".into()), Duration::from_secs(30)).await.unwrap();
        assert_eq!(keyed.resolve_alias(&name).await.unwrap(), Some(format!("{name}_g1")));
        keyed.swap_alias(&name, &format!("{name}_g1")).await.unwrap();

        // Re-index hooks, as reindex/stages.rs uses them.
        assert_eq!(store.count_tag_and_ids(&spec, Some("Tim"), &[p5.id, Uuid::new_v4()]).await.unwrap(), [0, 1, 1]);
        assert_eq!(store.count_tag_and_ids(&spec, None, &[]).await.unwrap(), [0, 0, 0]);
        assert_eq!(store.count_all(&spec).await.unwrap(), 1);
        assert_eq!(store.count_all(&spec).await.unwrap(), 1);
        assert!(store.create_staging(&spec, "bad_suffix").await.is_err());
        let staging = store.create_staging(&spec, "r1a2b3c4d").await.unwrap();
        assert_eq!(staging.backend_name, format!("{name}_r1a2b3c4d"));
        assert_eq!(store.create_staging(&spec, "r1a2b3c4d").await.unwrap(), staging, "idempotent");
        let copied = store.retrieve(&spec, &[p5.id], true).await.unwrap();
        let copy: Vec<VectorPoint> = copied
            .into_iter()
            .map(|p| VectorPoint { id: p.id, vector: p.vector.unwrap(), payload: p.payload })
            .collect();
        store.upsert(&staging, &copy).await.unwrap();
        assert_eq!(store.count_all(&staging).await.unwrap(), 1);
        assert_eq!(store.count_all(&staging).await.unwrap(), 0);
        assert!(store.drop_physical(&format!("{name}_g1")).await.is_err(), "the live collection is refused");
        assert!(store.drop_physical(&name).await.is_err(), "an alias is refused");
        let retired = store.promote(&spec, &staging).await.unwrap();
        assert_eq!(retired, format!("{name}_g1"));
        assert_eq!(store.resolve_alias(&name).await.unwrap(), Some(staging.backend_name.clone()));
        assert_eq!(store.count_all(&spec).await.unwrap(), 0, "readers of the alias see the new generation");
        assert_eq!(store.retrieve(&spec, &[p5.id], false).await.unwrap()[0].payload, p5.payload);
        assert!(store.promote(&spec, &staging).await.is_err(), "a repeated promote does not name the live one");
        store.drop_physical(&retired).await.unwrap();
        store.drop_physical(&retired).await.unwrap(); // no-op
        assert!(!store.collection_exists(&retired).await.unwrap());
        assert!(matches!(
            store.swap_alias(&name, "lethe_no_such_collection").await,
            Err(VectorStoreError::CollectionNotFound(_))
        ));
        // A staging left behind by an abandoned re-index goes with the collection.
        let leftover = store.create_staging(&spec, "r99").await.unwrap();

        store.drop_collection(&spec).await.unwrap();
        assert_eq!(store.resolve_alias(&name).await.unwrap(), None);
        assert!(!store.collection_exists(&format!("{name}_g1")).await.unwrap());
        assert!(!store.collection_exists(&staging.backend_name).await.unwrap());
        assert!(!store.collection_exists(&leftover.backend_name).await.unwrap());
        store.drop_collection(&spec).await.unwrap(); // no-op
        assert!(matches!(
            store.count(&spec, &Selector::by_tag("x")).await,
            Err(VectorStoreError::CollectionNotFound(n)) if n == name
        ));
    }

    /// Euclid scores are distances: lower is better, the threshold is a maximum.
    #[tokio::test]
    async fn live_euclid_search() {
        let Ok(url) = std::env::var("LETHE_QDRANT_TEST_URL") else {
            eprintln!("skipped: LETHE_QDRANT_TEST_URL is not set");
            return;
        };
        let store = QdrantStore::connect(&url, None, Duration::from_secs(30)).await.unwrap();
        let t = Uuid::new_v4();
        let name = format!("lethe_test_{}", &Uuid::new_v4().simple().to_string()[..8]);
        let spec = CollectionSpec { distance: Distance::Euclid, ..spec(&name, t) };
        store.create_collection(&spec).await.unwrap();
        let near = point(t, &["a"], [0.1, 0.0, 0.0, 0.0], None);
        let nearer = point(t, &["a"], [0.0, 0.0, 0.0, 0.0], None);
        let far = point(t, &["a"], [5.0, 0.0, 0.0, 0.0], None);
        store.upsert(&spec, &[near.clone(), nearer.clone(), far.clone()]).await.unwrap();
        let hits = store.search_exact(&spec, &[vec![0.0; 4]], 0.5, 10).await.unwrap();
        let ids: Vec<Uuid> = hits.iter().map(|h| h.id).collect();
        assert_eq!(ids, vec![nearer.id, near.id], "{hits:?}");
        assert!(hits[0].score.abs() < 1e-6 && (hits[1].score - 0.1).abs() < 1e-4, "{hits:?}");
        store.drop_collection(&spec).await.unwrap();
    }

    #[test]
    fn best_score_depends_on_distance() {
        assert!(Better::for_distance(Distance::Cosine).is_better(0.9, 0.8));
        assert!(Better::for_distance(Distance::Euclid).is_better(0.1, 0.8));
        assert!(!Better::for_distance(Distance::Dot).is_better(0.8, 0.8));
    }
}
