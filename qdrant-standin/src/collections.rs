//! `qdrant.Collections` service.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use qdrant_client::qdrant as pb;
use qdrant_client::qdrant::collections_server::Collections;
use qdrant_edge::{
    DEFAULT_VECTOR_NAME, Distance, EdgeConfig, EdgeOptimizersConfig, EdgeShard,
    EdgeSparseVectorParams, EdgeVectorParams, HnswIndexConfig, Modifier, PayloadSchemaParams,
    PayloadSchemaType, VectorStorageDatatype, WalOptions,
};
use tonic::{Request, Response, Status};

use crate::convert::{
    bad_input, collection_not_found, map_to_grpc, op_error, struct_to_map, unsupported,
};
use crate::state::{CollectionMeta, State, collection_dir};

pub struct CollectionsService {
    pub state: Arc<State>,
}

fn elapsed(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn validation(msg: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("Validation error in body: [{msg}]"))
}

/// Qdrant's collection-name rule (`validate_collection_name`).
pub fn validate_collection_name(name: &str) -> Result<(), Status> {
    const FORBIDDEN: &[char] = &['<', '>', ':', '"', '/', '\\', '|', '?', '*', '\0', '\u{1F}'];
    if name.is_empty() || name.len() > 255 {
        return Err(validation(format!(
            "collection_name: length must be between 1 and 255, got {}",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN.contains(c)) {
        return Err(validation(format!(
            "collection_name: collection name cannot contain \"{c}\" char"
        )));
    }
    if name == "." || name == ".." {
        return Err(validation(
            "collection_name: collection name cannot be `.` or `..`",
        ));
    }
    Ok(())
}

fn distance_from_grpc(d: i32) -> Result<Distance, Status> {
    match pb::Distance::try_from(d) {
        Ok(pb::Distance::Cosine) => Ok(Distance::Cosine),
        Ok(pb::Distance::Euclid) => Ok(Distance::Euclid),
        Ok(pb::Distance::Dot) => Ok(Distance::Dot),
        Ok(pb::Distance::Manhattan) => Ok(Distance::Manhattan),
        _ => Err(bad_input(format!("Unknown distance type: {d}"))),
    }
}

fn distance_to_grpc(d: Distance) -> pb::Distance {
    match d {
        Distance::Cosine => pb::Distance::Cosine,
        Distance::Euclid => pb::Distance::Euclid,
        Distance::Dot => pb::Distance::Dot,
        Distance::Manhattan => pb::Distance::Manhattan,
    }
}

fn datatype_from_grpc(d: Option<i32>) -> Result<Option<VectorStorageDatatype>, Status> {
    match d.map(pb::Datatype::try_from) {
        None | Some(Ok(pb::Datatype::Default)) => Ok(None),
        Some(Ok(pb::Datatype::Float32)) => Ok(Some(VectorStorageDatatype::Float32)),
        Some(Ok(pb::Datatype::Float16)) => Ok(Some(VectorStorageDatatype::Float16)),
        Some(Ok(pb::Datatype::Uint8)) => Ok(Some(VectorStorageDatatype::Uint8)),
        Some(Ok(pb::Datatype::Turbo4)) => Ok(Some(VectorStorageDatatype::Turbo4)),
        Some(Ok(other)) => Err(unsupported(format!(
            "vector datatype {}",
            other.as_str_name()
        ))),
        Some(Err(_)) => Err(bad_input("unknown vector datatype")),
    }
}

fn datatype_to_grpc(d: VectorStorageDatatype) -> i32 {
    match d {
        VectorStorageDatatype::Float32 => pb::Datatype::Float32 as i32,
        VectorStorageDatatype::Float16 => pb::Datatype::Float16 as i32,
        VectorStorageDatatype::Uint8 => pb::Datatype::Uint8 as i32,
        VectorStorageDatatype::Turbo4 => pb::Datatype::Turbo4 as i32,
    }
}

fn apply_hnsw_diff(cfg: &mut HnswIndexConfig, d: &pb::HnswConfigDiff) -> Result<(), Status> {
    let us = |v: u64| usize::try_from(v).map_err(|_| bad_input("hnsw value too large"));
    if let Some(m) = d.m {
        cfg.m = us(m)?;
    }
    if let Some(v) = d.ef_construct {
        if v < 4 {
            return Err(validation(format!(
                "hnsw_config.ef_construct: value {v} invalid, must be 4 or larger"
            )));
        }
        cfg.ef_construct = us(v)?;
    }
    if let Some(v) = d.full_scan_threshold {
        cfg.full_scan_threshold = us(v)?;
    }
    if let Some(v) = d.max_indexing_threads {
        cfg.max_indexing_threads = us(v)?;
    }
    if let Some(v) = d.on_disk {
        cfg.on_disk = Some(v);
    }
    if let Some(v) = d.payload_m {
        cfg.payload_m = Some(us(v)?);
    }
    if let Some(v) = d.inline_storage {
        cfg.inline_storage = Some(v);
    }
    Ok(())
}

fn apply_optimizers_diff(
    cfg: &mut EdgeOptimizersConfig,
    d: &pb::OptimizersConfigDiff,
) -> Result<(), Status> {
    let us = |v: u64| usize::try_from(v).map_err(|_| bad_input("optimizer value too large"));
    if let Some(t) = d.deleted_threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(validation(format!(
                "optimizers_config.deleted_threshold: value {t} invalid, must be in range from 0 to 1"
            )));
        }
        cfg.deleted_threshold = Some(t);
    }
    if let Some(n) = d.vacuum_min_vector_number {
        // Same bound as Qdrant's `#[validate(range(min = 100))]`.
        if n < 100 {
            return Err(validation(format!(
                "optimizers_config.vacuum_min_vector_number: value {n} invalid, must be 100 or larger"
            )));
        }
        cfg.vacuum_min_vector_number = Some(us(n)?);
    }
    if let Some(n) = d.default_segment_number {
        cfg.default_segment_number = Some(us(n)?);
    }
    if let Some(n) = d.max_segment_size {
        cfg.max_segment_size = Some(us(n)?);
    }
    if let Some(n) = d.indexing_threshold {
        cfg.indexing_threshold = Some(us(n)?);
    }
    if let Some(b) = d.prevent_unoptimized {
        cfg.prevent_unoptimized = Some(b);
    }
    // memmap_threshold (deprecated), flush_interval_sec and max_optimization_threads have no
    // counterpart in qdrant-edge: the stand-in never optimizes in the background anyway.
    Ok(())
}

fn wal_options_from_grpc(d: &pb::WalConfigDiff) -> Result<WalOptions, Status> {
    let mut o = WalOptions::default();
    if let Some(mb) = d.wal_capacity_mb {
        if mb < 1 {
            return Err(validation(format!(
                "wal_config.wal_capacity_mb: value {mb} invalid, must be 1 or larger"
            )));
        }
        o.segment_capacity = usize::try_from(mb)
            .ok()
            .and_then(|mb| mb.checked_mul(1024 * 1024))
            .ok_or_else(|| bad_input("wal_capacity_mb too large"))?;
    }
    if let Some(n) = d.wal_segments_ahead {
        o.segment_queue_len =
            usize::try_from(n).map_err(|_| bad_input("wal_segments_ahead too large"))?;
    }
    if let Some(n) = d.wal_retain_closed {
        o.retain_closed = usize::try_from(n)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| bad_input("wal_retain_closed must be >= 1"))?;
    }
    Ok(o)
}

/// One dense vector's parameters (`field` names it in validation messages).
fn dense_params_from_grpc(params: &pb::VectorParams, field: &str) -> Result<EdgeVectorParams, Status> {
    if !(1..=65536).contains(&params.size) {
        return Err(validation(format!(
            "{field}.size: value {} invalid, must be from 1 to 65536",
            params.size
        )));
    }
    if params.multivector_config.is_some() {
        return Err(unsupported("multivector_config"));
    }
    if params.quantization_config.is_some() {
        return Err(unsupported("quantization"));
    }
    let mut vector_hnsw = None;
    if let Some(h) = &params.hnsw_config {
        let mut c = HnswIndexConfig::default();
        apply_hnsw_diff(&mut c, h)?;
        vector_hnsw = Some(c);
    }
    Ok(EdgeVectorParams {
        size: params.size as usize,
        distance: distance_from_grpc(params.distance)?,
        on_disk: params.on_disk,
        multivector_config: None,
        datatype: datatype_from_grpc(params.datatype)?,
        quantization_config: None,
        hnsw_config: vector_hnsw,
    })
}

fn sparse_params_from_grpc(params: &pb::SparseVectorParams) -> Result<EdgeSparseVectorParams, Status> {
    let modifier = match params.modifier.map(pb::Modifier::try_from) {
        None | Some(Ok(pb::Modifier::None)) => None,
        Some(Ok(pb::Modifier::Idf)) => Some(Modifier::Idf),
        Some(Err(_)) => return Err(bad_input("unknown sparse vector modifier")),
    };
    let index = params.index.as_ref();
    Ok(EdgeSparseVectorParams {
        full_scan_threshold: index
            .and_then(|i| i.full_scan_threshold)
            .map(|v| usize::try_from(v).map_err(|_| bad_input("full_scan_threshold too large")))
            .transpose()?,
        on_disk: index.and_then(|i| i.on_disk),
        modifier,
        datatype: datatype_from_grpc(index.and_then(|i| i.datatype))?,
    })
}

fn edge_config_from_create(req: &pb::CreateCollection) -> Result<EdgeConfig, Status> {
    use pb::vectors_config::Config;
    let sparse = req.sparse_vectors_config.as_ref().map(|s| &s.map);
    let mut vectors = HashMap::new();
    match req.vectors_config.as_ref().and_then(|v| v.config.as_ref()) {
        None if sparse.is_some_and(|s| !s.is_empty()) => {}
        None => {
            return Err(unsupported(
                "collections without a vector (vectors_config or sparse_vectors_config is required)",
            ));
        }
        // The unnamed vector is the vector named "" (DEFAULT_VECTOR_NAME), as in Qdrant.
        Some(Config::Params(p)) => {
            vectors.insert(DEFAULT_VECTOR_NAME.to_string(), dense_params_from_grpc(p, "vectors_config")?);
        }
        Some(Config::ParamsMap(m)) => {
            if m.map.is_empty() {
                return Err(unsupported("an empty vectors_config.params_map"));
            }
            for (name, p) in &m.map {
                vectors.insert(name.clone(), dense_params_from_grpc(p, &format!("vectors_config.{name}"))?);
            }
        }
    }
    let mut sparse_vectors = HashMap::new();
    for (name, p) in sparse.into_iter().flatten() {
        if vectors.contains_key(name) {
            return Err(bad_input(format!("Vector name `{name}` is used for both a dense and a sparse vector")));
        }
        sparse_vectors.insert(name.clone(), sparse_params_from_grpc(p)?);
    }
    if req.quantization_config.is_some() {
        return Err(unsupported("quantization"));
    }
    if req.sharding_method == Some(pb::ShardingMethod::Custom as i32) {
        return Err(unsupported("custom sharding (shard keys)"));
    }
    if req
        .strict_mode_config
        .as_ref()
        .is_some_and(|s| s.enabled == Some(true))
    {
        return Err(unsupported("strict mode"));
    }
    let mut hnsw = HnswIndexConfig::default();
    if let Some(h) = &req.hnsw_config {
        apply_hnsw_diff(&mut hnsw, h)?;
    }
    let mut optimizers = EdgeOptimizersConfig::default();
    if let Some(o) = &req.optimizers_config {
        apply_optimizers_diff(&mut optimizers, o)?;
    }
    let wal_options = req
        .wal_config
        .as_ref()
        .map(wal_options_from_grpc)
        .transpose()?;
    Ok(EdgeConfig {
        on_disk_payload: req.on_disk_payload.unwrap_or(true),
        vectors,
        sparse_vectors,
        hnsw_config: hnsw,
        quantization_config: None,
        optimizers,
        wal_options,
    })
}

fn hnsw_to_grpc(h: &HnswIndexConfig) -> pb::HnswConfigDiff {
    pb::HnswConfigDiff {
        m: Some(h.m as u64),
        ef_construct: Some(h.ef_construct as u64),
        full_scan_threshold: Some(h.full_scan_threshold as u64),
        max_indexing_threads: Some(h.max_indexing_threads as u64),
        on_disk: h.on_disk,
        payload_m: h.payload_m.map(|v| v as u64),
        inline_storage: h.inline_storage,
        memory: None,
    }
}

pub fn schema_type_to_grpc(t: PayloadSchemaType) -> pb::PayloadSchemaType {
    match t {
        PayloadSchemaType::Keyword => pb::PayloadSchemaType::Keyword,
        PayloadSchemaType::Integer => pb::PayloadSchemaType::Integer,
        PayloadSchemaType::Float => pb::PayloadSchemaType::Float,
        PayloadSchemaType::Geo => pb::PayloadSchemaType::Geo,
        PayloadSchemaType::Text => pb::PayloadSchemaType::Text,
        PayloadSchemaType::Bool => pb::PayloadSchemaType::Bool,
        PayloadSchemaType::Datetime => pb::PayloadSchemaType::Datetime,
        PayloadSchemaType::Uuid => pb::PayloadSchemaType::Uuid,
    }
}

fn schema_params_to_grpc(p: &PayloadSchemaParams) -> Option<pb::PayloadIndexParams> {
    use pb::payload_index_params::IndexParams as I;
    let ip = match p {
        PayloadSchemaParams::Keyword(k) => I::KeywordIndexParams(pb::KeywordIndexParams {
            is_tenant: k.is_tenant,
            on_disk: k.on_disk,
            ..Default::default()
        }),
        PayloadSchemaParams::Integer(i) => I::IntegerIndexParams(pb::IntegerIndexParams {
            lookup: i.lookup,
            range: i.range,
            is_principal: i.is_principal,
            on_disk: i.on_disk,
            ..Default::default()
        }),
        PayloadSchemaParams::Uuid(u) => I::UuidIndexParams(pb::UuidIndexParams {
            is_tenant: u.is_tenant,
            on_disk: u.on_disk,
            ..Default::default()
        }),
        PayloadSchemaParams::Bool(b) => I::BoolIndexParams(pb::BoolIndexParams {
            on_disk: b.on_disk,
            ..Default::default()
        }),
        _ => return None,
    };
    Some(pb::PayloadIndexParams {
        index_params: Some(ip),
    })
}

pub fn collection_info(shard: &EdgeShard, meta: &CollectionMeta) -> pb::CollectionInfo {
    let info = shard.info();
    let cfg = shard.config().clone();
    let dense = |v: &EdgeVectorParams| pb::VectorParams {
        size: v.size as u64,
        distance: distance_to_grpc(v.distance) as i32,
        hnsw_config: v.hnsw_config.as_ref().map(hnsw_to_grpc),
        quantization_config: None,
        on_disk: v.on_disk,
        datatype: v.datatype.map(datatype_to_grpc),
        multivector_config: None,
        memory: None,
    };
    // As Qdrant answers: `Params` for a collection whose only dense vector is the unnamed one,
    // `ParamsMap` when it has named ones (none at all for a sparse-only collection).
    let vectors_config = match (cfg.vectors.len(), cfg.vectors.get(DEFAULT_VECTOR_NAME)) {
        (0, _) => None,
        (1, Some(v)) => Some(pb::vectors_config::Config::Params(dense(v))),
        _ => Some(pb::vectors_config::Config::ParamsMap(pb::VectorParamsMap {
            map: cfg.vectors.iter().map(|(k, v)| (k.clone(), dense(v))).collect(),
        })),
    }
    .map(|config| pb::VectorsConfig {
        config: Some(config),
    });
    let sparse_vectors_config = (!cfg.sparse_vectors.is_empty()).then(|| pb::SparseVectorConfig {
        map: cfg
            .sparse_vectors
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    pb::SparseVectorParams {
                        index: Some(pb::SparseIndexConfig {
                            full_scan_threshold: s.full_scan_threshold.map(|v| v as u64),
                            on_disk: s.on_disk,
                            datatype: s.datatype.map(datatype_to_grpc),
                            memory: None,
                        }),
                        modifier: s.modifier.map(|m| match m {
                            Modifier::None => pb::Modifier::None as i32,
                            Modifier::Idf => pb::Modifier::Idf as i32,
                        }),
                    },
                )
            })
            .collect(),
    });
    let o = &cfg.optimizers;
    let wal = cfg.wal_options.clone().unwrap_or_default();
    let payload_schema = info
        .payload_schema
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                pb::PayloadSchemaInfo {
                    data_type: schema_type_to_grpc(v.data_type) as i32,
                    params: v.params.as_ref().and_then(schema_params_to_grpc),
                    points: Some(v.points as u64),
                },
            )
        })
        .collect();
    pb::CollectionInfo {
        status: pb::CollectionStatus::Green as i32,
        optimizer_status: Some(pb::OptimizerStatus {
            ok: true,
            error: String::new(),
        }),
        segments_count: info.segments_count as u64,
        config: Some(pb::CollectionConfig {
            params: Some(pb::CollectionParams {
                shard_number: 1,
                on_disk_payload: cfg.on_disk_payload,
                vectors_config,
                sparse_vectors_config,
                replication_factor: Some(1),
                write_consistency_factor: Some(1),
                ..Default::default()
            }),
            hnsw_config: Some(hnsw_to_grpc(&cfg.hnsw_config)),
            optimizer_config: Some(pb::OptimizersConfigDiff {
                deleted_threshold: Some(o.deleted_threshold.unwrap_or(0.2)),
                vacuum_min_vector_number: Some(o.vacuum_min_vector_number.unwrap_or(1000) as u64),
                default_segment_number: Some(o.default_segment_number.unwrap_or(0) as u64),
                max_segment_size: o.max_segment_size.map(|v| v as u64),
                indexing_threshold: o.indexing_threshold.map(|v| v as u64),
                prevent_unoptimized: o.prevent_unoptimized,
                ..Default::default()
            }),
            wal_config: Some(pb::WalConfigDiff {
                wal_capacity_mb: Some((wal.segment_capacity / (1024 * 1024)) as u64),
                wal_segments_ahead: Some(wal.segment_queue_len as u64),
                wal_retain_closed: Some(wal.retain_closed.get() as u64),
            }),
            quantization_config: None,
            strict_mode_config: None,
            metadata: map_to_grpc(&meta.metadata),
        }),
        payload_schema,
        points_count: Some(info.points_count as u64),
        indexed_vectors_count: Some(info.indexed_vectors_count as u64),
        warnings: vec![],
        update_queue: Some(pb::UpdateQueueInfo {
            length: 0,
            deferred_points: None,
        }),
        created_at: None,
    }
}

#[tonic::async_trait]
impl Collections for CollectionsService {
    async fn get(
        &self,
        request: Request<pb::GetCollectionInfoRequest>,
    ) -> Result<Response<pb::GetCollectionInfoResponse>, Status> {
        let t = Instant::now();
        let name = request.into_inner().collection_name;
        let (coll, meta) = {
            let reg = self.state.registry.read().await;
            let coll = reg.resolve(&name)?;
            let meta = reg
                .meta
                .collections
                .get(&coll.name)
                .cloned()
                .unwrap_or_default();
            (coll, meta)
        };
        let info = coll
            .read(move |shard| Ok(collection_info(shard, &meta)))
            .await?;
        Ok(Response::new(pb::GetCollectionInfoResponse {
            result: Some(info),
            time: elapsed(t),
        }))
    }

    async fn list(
        &self,
        _request: Request<pb::ListCollectionsRequest>,
    ) -> Result<Response<pb::ListCollectionsResponse>, Status> {
        let t = Instant::now();
        let reg = self.state.registry.read().await;
        let collections = reg
            .collections
            .keys()
            .map(|name| pb::CollectionDescription { name: name.clone() })
            .collect();
        Ok(Response::new(pb::ListCollectionsResponse {
            collections,
            time: elapsed(t),
        }))
    }

    async fn create(
        &self,
        request: Request<pb::CreateCollection>,
    ) -> Result<Response<pb::CollectionOperationResponse>, Status> {
        let t = Instant::now();
        let req = request.into_inner();
        let name = req.collection_name.clone();
        validate_collection_name(&name)?;
        let config = edge_config_from_create(&req)?;
        let metadata = struct_to_map(&req.metadata)?;

        let mut reg = self.state.registry.write().await;
        if reg.collections.contains_key(&name) {
            return Err(bad_input(format!("Collection `{name}` already exists!")));
        }
        if reg.meta.aliases.contains_key(&name) {
            return Err(bad_input(format!(
                "Can't create collection with name {name}. Alias with the same name already exists"
            )));
        }
        let dir = collection_dir(&self.state.data_dir, &name);
        let dir2 = dir.clone();
        let shard = tokio::task::spawn_blocking(move || -> Result<EdgeShard, Status> {
            // Leftovers of a collection that is not in the meta file (e.g. crash during delete).
            if dir2.exists() {
                std::fs::remove_dir_all(&dir2).map_err(|e| {
                    Status::internal(format!(
                        "Service internal error: cannot clean {}: {e}",
                        dir2.display()
                    ))
                })?;
            }
            std::fs::create_dir_all(&dir2).map_err(|e| {
                Status::internal(format!(
                    "Service internal error: cannot create {}: {e}",
                    dir2.display()
                ))
            })?;
            EdgeShard::new(&dir2, config).map_err(op_error)
        })
        .await
        .map_err(|e| Status::internal(format!("Service internal error: {e}")))??;

        let coll = State::new_collection(&name, dir, shard);
        let mut meta = reg.meta.clone();
        meta.collections
            .insert(name.clone(), CollectionMeta { metadata });
        if let Err(e) = self.state.save_meta(&meta) {
            drop(reg);
            let _ = State::destroy(coll).await;
            return Err(e);
        }
        reg.meta = meta;
        reg.collections.insert(name, coll);
        Ok(Response::new(pb::CollectionOperationResponse {
            result: true,
            time: elapsed(t),
        }))
    }

    /// Applies optimizer / HNSW config diffs and metadata, then runs `EdgeShard::optimize()`
    /// synchronously (merge, indexing, vacuum, config-mismatch until idle). Real Qdrant only
    /// recreates its background optimizers here; the stand-in makes vacuum deterministic:
    /// when `UpdateCollection` returns, every segment that qualifies for vacuum has been
    /// rewritten. This happens on every call, also with an empty diff.
    async fn update(
        &self,
        request: Request<pb::UpdateCollection>,
    ) -> Result<Response<pb::CollectionOperationResponse>, Status> {
        let t = Instant::now();
        let req = request.into_inner();
        if req
            .vectors_config
            .as_ref()
            .is_some_and(|v| v.config.is_some())
        {
            return Err(unsupported("updating vector params (vectors_config)"));
        }
        if req.quantization_config.is_some() {
            return Err(unsupported("quantization"));
        }
        if req
            .sparse_vectors_config
            .as_ref()
            .is_some_and(|s| !s.map.is_empty())
        {
            return Err(unsupported("sparse vectors"));
        }
        if req
            .strict_mode_config
            .as_ref()
            .is_some_and(|s| s.enabled == Some(true))
        {
            return Err(unsupported("strict mode"));
        }
        if req
            .params
            .as_ref()
            .is_some_and(|p| p.on_disk_payload.is_some())
        {
            return Err(unsupported("changing on_disk_payload"));
        }
        let metadata = struct_to_map(&req.metadata)?;

        // Hold the registry read lock so the collection cannot be deleted meanwhile.
        let reg = self.state.registry.read().await;
        let coll = reg.resolve(&req.collection_name)?;
        let opt_diff = req.optimizers_config.clone();
        let hnsw_diff = req.hnsw_config;
        coll.write(move |shard| {
            if let Some(d) = &opt_diff {
                let mut o = shard.config().optimizers.clone();
                apply_optimizers_diff(&mut o, d)?;
                shard.set_optimizers_config(o).map_err(op_error)?;
            }
            if let Some(d) = &hnsw_diff {
                let mut h = shard.config().hnsw_config;
                apply_hnsw_diff(&mut h, d)?;
                shard.set_hnsw_config(h).map_err(op_error)?;
            }
            shard.optimize().map_err(op_error)?;
            Ok(())
        })
        .await?;
        drop(reg);
        if !metadata.is_empty() {
            let mut reg = self.state.registry.write().await;
            if !reg.collections.contains_key(&coll.name) {
                return Err(collection_not_found(&req.collection_name));
            }
            let mut meta = reg.meta.clone();
            let entry = meta.collections.entry(coll.name.clone()).or_default();
            for (k, v) in metadata {
                entry.metadata.insert(k, v);
            }
            self.state.save_meta(&meta)?;
            reg.meta = meta;
        }
        Ok(Response::new(pb::CollectionOperationResponse {
            result: true,
            time: elapsed(t),
        }))
    }

    /// Like Qdrant: the name is NOT resolved through aliases; deleting a missing collection
    /// returns `result: false`. Aliases pointing at the collection are removed. The shard is
    /// closed and its directory removed synchronously before the response.
    async fn delete(
        &self,
        request: Request<pb::DeleteCollection>,
    ) -> Result<Response<pb::CollectionOperationResponse>, Status> {
        let t = Instant::now();
        let name = request.into_inner().collection_name;
        let mut reg = self.state.registry.write().await;
        let Some(coll) = reg.collections.get(&name).cloned() else {
            return Ok(Response::new(pb::CollectionOperationResponse {
                result: false,
                time: elapsed(t),
            }));
        };
        let mut meta = reg.meta.clone();
        meta.collections.remove(&name);
        meta.aliases.retain(|_, c| c != &name);
        self.state.save_meta(&meta)?;
        reg.meta = meta;
        reg.collections.remove(&name);
        State::destroy(coll).await?;
        Ok(Response::new(pb::CollectionOperationResponse {
            result: true,
            time: elapsed(t),
        }))
    }

    /// All actions of one request are validated and applied together under the registry
    /// write lock (all or nothing).
    async fn update_aliases(
        &self,
        request: Request<pb::ChangeAliases>,
    ) -> Result<Response<pb::CollectionOperationResponse>, Status> {
        use pb::alias_operations::Action;
        let t = Instant::now();
        let req = request.into_inner();
        let mut reg = self.state.registry.write().await;
        let mut aliases = reg.meta.aliases.clone();
        for op in &req.actions {
            match &op.action {
                None => return Err(bad_input("empty alias action")),
                Some(Action::CreateAlias(c)) => {
                    if !reg.collections.contains_key(&c.collection_name) {
                        return Err(collection_not_found(&c.collection_name));
                    }
                    if reg.collections.contains_key(&c.alias_name) {
                        return Err(bad_input(format!(
                            "Collection `{}` already exists!",
                            c.alias_name
                        )));
                    }
                    validate_collection_name(&c.alias_name)?;
                    aliases.insert(c.alias_name.clone(), c.collection_name.clone());
                }
                Some(Action::DeleteAlias(d)) => {
                    aliases.remove(&d.alias_name);
                }
                Some(Action::RenameAlias(r)) => {
                    let Some(target) = aliases.remove(&r.old_alias_name) else {
                        return Err(crate::convert::not_found(format!(
                            "Alias {} does not exists!",
                            r.old_alias_name
                        )));
                    };
                    if reg.collections.contains_key(&r.new_alias_name) {
                        return Err(bad_input(format!(
                            "Collection `{}` already exists!",
                            r.new_alias_name
                        )));
                    }
                    aliases.insert(r.new_alias_name.clone(), target);
                }
            }
        }
        let mut meta = reg.meta.clone();
        meta.aliases = aliases;
        self.state.save_meta(&meta)?;
        reg.meta = meta;
        Ok(Response::new(pb::CollectionOperationResponse {
            result: true,
            time: elapsed(t),
        }))
    }

    async fn list_collection_aliases(
        &self,
        request: Request<pb::ListCollectionAliasesRequest>,
    ) -> Result<Response<pb::ListAliasesResponse>, Status> {
        let t = Instant::now();
        let name = request.into_inner().collection_name;
        let reg = self.state.registry.read().await;
        let coll = reg.resolve(&name)?;
        let aliases = reg
            .meta
            .aliases
            .iter()
            .filter(|(_, c)| **c == coll.name)
            .map(|(a, c)| pb::AliasDescription {
                alias_name: a.clone(),
                collection_name: c.clone(),
            })
            .collect();
        Ok(Response::new(pb::ListAliasesResponse {
            aliases,
            time: elapsed(t),
        }))
    }

    async fn list_aliases(
        &self,
        _request: Request<pb::ListAliasesRequest>,
    ) -> Result<Response<pb::ListAliasesResponse>, Status> {
        let t = Instant::now();
        let reg = self.state.registry.read().await;
        let aliases = reg
            .meta
            .aliases
            .iter()
            .map(|(a, c)| pb::AliasDescription {
                alias_name: a.clone(),
                collection_name: c.clone(),
            })
            .collect();
        Ok(Response::new(pb::ListAliasesResponse {
            aliases,
            time: elapsed(t),
        }))
    }

    async fn collection_cluster_info(
        &self,
        _request: Request<pb::CollectionClusterInfoRequest>,
    ) -> Result<Response<pb::CollectionClusterInfoResponse>, Status> {
        Err(unsupported("CollectionClusterInfo (no cluster)"))
    }

    async fn collection_exists(
        &self,
        request: Request<pb::CollectionExistsRequest>,
    ) -> Result<Response<pb::CollectionExistsResponse>, Status> {
        let t = Instant::now();
        let name = request.into_inner().collection_name;
        let exists = self.state.registry.read().await.resolve(&name).is_ok();
        Ok(Response::new(pb::CollectionExistsResponse {
            result: Some(pb::CollectionExists { exists }),
            time: elapsed(t),
        }))
    }

    async fn update_collection_cluster_setup(
        &self,
        _request: Request<pb::UpdateCollectionClusterSetupRequest>,
    ) -> Result<Response<pb::UpdateCollectionClusterSetupResponse>, Status> {
        Err(unsupported("UpdateCollectionClusterSetup (no cluster)"))
    }

    async fn create_shard_key(
        &self,
        _request: Request<pb::CreateShardKeyRequest>,
    ) -> Result<Response<pb::CreateShardKeyResponse>, Status> {
        Err(unsupported("shard keys"))
    }

    async fn delete_shard_key(
        &self,
        _request: Request<pb::DeleteShardKeyRequest>,
    ) -> Result<Response<pb::DeleteShardKeyResponse>, Status> {
        Err(unsupported("shard keys"))
    }

    async fn list_shard_keys(
        &self,
        _request: Request<pb::ListShardKeysRequest>,
    ) -> Result<Response<pb::ListShardKeysResponse>, Status> {
        Err(unsupported("shard keys"))
    }
}
