//! `qdrant.Points` service.

use std::sync::Arc;
use std::time::Instant;

use qdrant_client::qdrant as pb;
use qdrant_client::qdrant::points_server::Points;
use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::{
    BoolIndexParams, CountRequest, CreateIndex, DatetimeIndexParams,
    DeletePayloadOp, EdgeShard, FieldIndexOperations, Filter, FloatIndexParams, GeoIndexParams,
    IntegerIndexParams, KeywordIndexParams, NamedQuery, PayloadFieldSchema, PayloadOps,
    PayloadSchemaParams, PayloadSchemaType, PointId, PointInsertOperations, PointOperations,
    PointStructPersisted, QueryEnum, QueryRequest, ScoringQuery, ScrollRequest, SearchParams,
    SetPayloadOp, TextIndexParams, TokenizerType, UpdateOperation, UuidIndexParams,
    VectorInternal, WithPayloadInterface, WithVector,
};
use tonic::{Request, Response, Status};

use crate::convert::{
    VectorLayout, bad_input, filter_opt, json_path, op_error, payload_from_grpc,
    payload_to_grpc, point_id_from_grpc, point_id_to_grpc, point_ids_from_grpc, unsupported,
    vectors_from_grpc, vectors_to_grpc, with_payload, with_vector,
};
use crate::state::State;

pub struct PointsService {
    pub state: Arc<State>,
}

fn elapsed(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

const DEFAULT_LIMIT: u64 = 10;

/// Edge applies every update synchronously, so `wait=true` is honoured trivially. As in
/// Qdrant, the status is `Completed` with `wait=true` and `Acknowledged` without it.
fn update_response(
    state: &State,
    wait: Option<bool>,
    t: Instant,
) -> Response<pb::PointsOperationResponse> {
    let status = if wait.unwrap_or(false) {
        pb::UpdateStatus::Completed
    } else {
        pb::UpdateStatus::Acknowledged
    };
    Response::new(pb::PointsOperationResponse {
        result: Some(pb::UpdateResult {
            operation_id: Some(state.next_op_id()),
            status: status as i32,
        }),
        time: elapsed(t),
        usage: None,
    })
}

fn reject_shard_key(sel: &Option<pb::ShardKeySelector>) -> Result<(), Status> {
    if sel.is_some() {
        return Err(unsupported("shard key selectors"));
    }
    Ok(())
}

fn layout_of(shard: &EdgeShard) -> VectorLayout {
    let cfg = shard.config();
    VectorLayout {
        dense: cfg.vectors.iter().map(|(k, v)| (k.clone(), v.size)).collect(),
        sparse: cfg.sparse_vectors.keys().cloned().collect(),
    }
}

enum Selector {
    Ids(Vec<PointId>),
    Filter(Filter),
}

fn selector(sel: Option<&pb::PointsSelector>) -> Result<Selector, Status> {
    use pb::points_selector::PointsSelectorOneOf as S;
    match sel.and_then(|s| s.points_selector_one_of.as_ref()) {
        None => Err(bad_input("PointsSelector is missing")),
        Some(S::Points(ids)) => Ok(Selector::Ids(point_ids_from_grpc(&ids.ids)?)),
        Some(S::Filter(f)) => Ok(Selector::Filter(crate::convert::filter_from_grpc(f)?)),
    }
}

fn limit_of(limit: Option<u64>) -> Result<usize, Status> {
    let l = limit.unwrap_or(DEFAULT_LIMIT);
    if l == 0 {
        return Err(Status::invalid_argument(
            "Validation error in body: [limit: value 0 invalid, must be 1 or larger]",
        ));
    }
    usize::try_from(l).map_err(|_| bad_input("limit too large"))
}

fn search_params(p: Option<&pb::SearchParams>) -> Option<SearchParams> {
    p.map(|p| SearchParams {
        hnsw_ef: p.hnsw_ef.map(|v| v as usize),
        exact: p.exact.unwrap_or(false),
        indexed_only: p.indexed_only.unwrap_or(false),
        ..Default::default()
    })
}

fn scored_to_grpc(p: qdrant_edge::ScoredPoint) -> pb::ScoredPoint {
    pb::ScoredPoint {
        id: Some(point_id_to_grpc(p.id)),
        payload: payload_to_grpc(p.payload.as_ref()),
        score: p.score,
        version: p.version,
        vectors: vectors_to_grpc(p.vector.as_ref()),
        shard_key: None,
        order_value: None,
    }
}

fn record_to_grpc(r: qdrant_edge::Record) -> pb::RetrievedPoint {
    pb::RetrievedPoint {
        id: Some(point_id_to_grpc(r.id)),
        payload: payload_to_grpc(r.payload.as_ref()),
        vectors: vectors_to_grpc(r.vector.as_ref()),
        shard_key: None,
        order_value: None,
    }
}

/// Nearest-neighbour request shared by Query and Search.
struct Nearest {
    vector: Option<Vec<f32>>,
    /// The dense vector searched (`None` or `""`: the unnamed one).
    using: Option<String>,
    filter: Option<Filter>,
    score_threshold: Option<f32>,
    limit: usize,
    offset: usize,
    params: Option<SearchParams>,
    with_payload: WithPayloadInterface,
    with_vector: WithVector,
}

fn run_nearest(shard: &EdgeShard, n: Nearest) -> Result<Vec<pb::ScoredPoint>, Status> {
    let query = match n.vector {
        Some(v) => {
            let using = n.using.unwrap_or_default();
            let size = layout_of(shard).dense_size(&using)?;
            if size != v.len() {
                return Err(bad_input(format!(
                    "Vector dimension error: expected dim: {size}, got {}",
                    v.len()
                )));
            }
            let query = if using.is_empty() {
                NamedQuery::default_dense(v)
            } else {
                NamedQuery::new(VectorInternal::Dense(v), using)
            };
            Some(ScoringQuery::Vector(QueryEnum::Nearest(query)))
        }
        None => None,
    };
    let req = QueryRequest {
        prefetches: vec![],
        query,
        filter: n.filter,
        score_threshold: n.score_threshold.map(OrderedFloat),
        limit: n.limit,
        offset: n.offset,
        params: n.params,
        with_vector: n.with_vector,
        with_payload: n.with_payload,
    };
    let points = shard.query(req).map_err(op_error)?;
    Ok(points.into_iter().map(scored_to_grpc).collect())
}

fn field_schema(
    field_type: Option<i32>,
    params: Option<&pb::PayloadIndexParams>,
) -> Result<PayloadFieldSchema, Status> {
    use pb::payload_index_params::IndexParams as I;
    let ft = match field_type.map(pb::FieldType::try_from) {
        None => None,
        Some(Ok(ft)) => Some(match ft {
            pb::FieldType::Keyword => PayloadSchemaType::Keyword,
            pb::FieldType::Integer => PayloadSchemaType::Integer,
            pb::FieldType::Float => PayloadSchemaType::Float,
            pb::FieldType::Geo => PayloadSchemaType::Geo,
            pb::FieldType::Text => PayloadSchemaType::Text,
            pb::FieldType::Bool => PayloadSchemaType::Bool,
            pb::FieldType::Datetime => PayloadSchemaType::Datetime,
            pb::FieldType::Uuid => PayloadSchemaType::Uuid,
        }),
        Some(Err(_)) => return Err(bad_input("unknown field_type")),
    };
    let nested_unsupported = |n: &Option<String>| -> Result<(), Status> {
        if n.is_some() {
            return Err(unsupported("`nested` payload index params"));
        }
        Ok(())
    };
    let Some(ip) = params.and_then(|p| p.index_params.as_ref()) else {
        return ft.map(PayloadFieldSchema::FieldType).ok_or_else(|| {
            bad_input("Unable to infer type for the field. Please specify `field_type`")
        });
    };
    let sp = match ip {
        I::KeywordIndexParams(p) => {
            nested_unsupported(&p.nested)?;
            PayloadSchemaParams::Keyword(KeywordIndexParams {
                is_tenant: p.is_tenant,
                on_disk: p.on_disk,
                ..Default::default()
            })
        }
        I::IntegerIndexParams(p) => {
            nested_unsupported(&p.nested)?;
            if p.lookup == Some(false) && p.range == Some(false) {
                return Err(bad_input(
                    "the 'lookup' and 'range' capabilities can't be both disabled",
                ));
            }
            PayloadSchemaParams::Integer(IntegerIndexParams {
                lookup: p.lookup,
                range: p.range,
                is_principal: p.is_principal,
                on_disk: p.on_disk,
                enable_hnsw: p.enable_hnsw,
                ..Default::default()
            })
        }
        I::FloatIndexParams(p) => {
            nested_unsupported(&p.nested)?;
            PayloadSchemaParams::Float(FloatIndexParams {
                is_principal: p.is_principal,
                on_disk: p.on_disk,
                enable_hnsw: p.enable_hnsw,
                ..Default::default()
            })
        }
        I::GeoIndexParams(p) => {
            nested_unsupported(&p.nested)?;
            PayloadSchemaParams::Geo(GeoIndexParams {
                on_disk: p.on_disk,
                enable_hnsw: p.enable_hnsw,
                ..Default::default()
            })
        }
        I::TextIndexParams(p) => {
            nested_unsupported(&p.nested)?;
            if p.stopwords.is_some() || p.stemmer.is_some() || p.scoring.is_some() {
                return Err(unsupported(
                    "text index stopwords / stemmer / scoring params",
                ));
            }
            let tokenizer = match pb::TokenizerType::try_from(p.tokenizer) {
                Ok(pb::TokenizerType::Prefix) => TokenizerType::Prefix,
                Ok(pb::TokenizerType::Whitespace) => TokenizerType::Whitespace,
                Ok(pb::TokenizerType::Multilingual) => TokenizerType::Multilingual,
                Ok(pb::TokenizerType::Word | pb::TokenizerType::Unknown) => TokenizerType::Word,
                Ok(other) => return Err(unsupported(format!("tokenizer {}", other.as_str_name()))),
                Err(_) => return Err(bad_input("unknown tokenizer")),
            };
            PayloadSchemaParams::Text(TextIndexParams {
                tokenizer,
                min_token_len: p.min_token_len.map(|v| v as usize),
                max_token_len: p.max_token_len.map(|v| v as usize),
                lowercase: p.lowercase,
                ascii_folding: p.ascii_folding,
                phrase_matching: p.phrase_matching,
                on_disk: p.on_disk,
                enable_hnsw: p.enable_hnsw,
                ..Default::default()
            })
        }
        I::BoolIndexParams(p) => {
            nested_unsupported(&p.nested)?;
            PayloadSchemaParams::Bool(BoolIndexParams {
                on_disk: p.on_disk,
                enable_hnsw: p.enable_hnsw,
                ..Default::default()
            })
        }
        I::DatetimeIndexParams(p) => {
            nested_unsupported(&p.nested)?;
            PayloadSchemaParams::Datetime(DatetimeIndexParams {
                is_principal: p.is_principal,
                on_disk: p.on_disk,
                enable_hnsw: p.enable_hnsw,
                ..Default::default()
            })
        }
        I::UuidIndexParams(p) => {
            nested_unsupported(&p.nested)?;
            PayloadSchemaParams::Uuid(UuidIndexParams {
                is_tenant: p.is_tenant,
                on_disk: p.on_disk,
                enable_hnsw: p.enable_hnsw,
                ..Default::default()
            })
        }
    };
    if let Some(ft) = ft
        && ft != sp.kind()
    {
        return Err(bad_input(format!(
            "field_type {} does not match field_index_params {}",
            ft.name(),
            sp.name()
        )));
    }
    Ok(PayloadFieldSchema::FieldParams(sp))
}

impl PointsService {
    async fn set_payload_common(
        &self,
        req: pb::SetPayloadPoints,
        overwrite: bool,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        let t = Instant::now();
        reject_shard_key(&req.shard_key_selector)?;
        let coll = self.state.resolve(&req.collection_name).await?;
        let payload = payload_from_grpc(&req.payload)?;
        let key = req.key.as_deref().map(json_path).transpose()?;
        if overwrite && key.is_some() {
            // qdrant-edge ignores `key` for overwrites; reject instead of dropping it.
            return Err(unsupported("`key` with OverwritePayload"));
        }
        let (points, filter) = match selector(req.points_selector.as_ref())? {
            Selector::Ids(ids) => (Some(ids), None),
            Selector::Filter(f) => (None, Some(f)),
        };
        let op = SetPayloadOp {
            payload,
            points,
            filter,
            key,
        };
        let op = if overwrite {
            PayloadOps::OverwritePayload(op)
        } else {
            PayloadOps::SetPayload(op)
        };
        coll.write(move |s| {
            s.update(UpdateOperation::PayloadOperation(op))
                .map_err(op_error)
        })
        .await?;
        Ok(update_response(&self.state, req.wait, t))
    }
}

#[tonic::async_trait]
impl Points for PointsService {
    async fn upsert(
        &self,
        request: Request<pb::UpsertPoints>,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        let t = Instant::now();
        let req = request.into_inner();
        reject_shard_key(&req.shard_key_selector)?;
        if req.update_filter.is_some() {
            return Err(unsupported("conditional upsert (update_filter)"));
        }
        if req
            .update_mode
            .is_some_and(|m| m != pb::UpdateMode::Upsert as i32)
        {
            return Err(unsupported("update_mode other than Upsert"));
        }
        let coll = self.state.resolve(&req.collection_name).await?;
        let points = req.points;
        coll.write(move |shard| {
            let layout = layout_of(shard);
            let mut persisted = Vec::with_capacity(points.len());
            for p in &points {
                let id = point_id_from_grpc(
                    p.id.as_ref()
                        .ok_or_else(|| bad_input("PointStruct: id is required"))?,
                )?;
                persisted.push(PointStructPersisted {
                    id,
                    vector: vectors_from_grpc(p.vectors.as_ref(), &layout)?,
                    payload: Some(payload_from_grpc(&p.payload)?),
                });
            }
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(persisted)),
                ))
                .map_err(op_error)
        })
        .await?;
        Ok(update_response(&self.state, req.wait, t))
    }

    async fn delete(
        &self,
        request: Request<pb::DeletePoints>,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        let t = Instant::now();
        let req = request.into_inner();
        reject_shard_key(&req.shard_key_selector)?;
        let coll = self.state.resolve(&req.collection_name).await?;
        let op = match selector(req.points.as_ref())? {
            Selector::Ids(ids) => PointOperations::DeletePoints { ids },
            Selector::Filter(f) => PointOperations::DeletePointsByFilter(f),
        };
        coll.write(move |s| {
            s.update(UpdateOperation::PointOperation(op))
                .map_err(op_error)
        })
        .await?;
        Ok(update_response(&self.state, req.wait, t))
    }

    async fn get(
        &self,
        request: Request<pb::GetPoints>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let t = Instant::now();
        let req = request.into_inner();
        reject_shard_key(&req.shard_key_selector)?;
        let coll = self.state.resolve(&req.collection_name).await?;
        let ids = point_ids_from_grpc(&req.ids)?;
        let wp = with_payload(req.with_payload.as_ref(), true)?;
        let wv = with_vector(req.with_vectors.as_ref());
        let records = coll
            .read(move |s| s.retrieve(&ids, Some(wp), Some(wv)))
            .await?;
        Ok(Response::new(pb::GetResponse {
            result: records.into_iter().map(record_to_grpc).collect(),
            time: elapsed(t),
            usage: None,
        }))
    }

    async fn update_vectors(
        &self,
        _request: Request<pb::UpdatePointVectors>,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        Err(unsupported("UpdateVectors (re-upsert the point instead)"))
    }

    async fn delete_vectors(
        &self,
        _request: Request<pb::DeletePointVectors>,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        Err(unsupported("DeleteVectors"))
    }

    async fn set_payload(
        &self,
        request: Request<pb::SetPayloadPoints>,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        self.set_payload_common(request.into_inner(), false).await
    }

    async fn overwrite_payload(
        &self,
        request: Request<pb::SetPayloadPoints>,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        self.set_payload_common(request.into_inner(), true).await
    }

    async fn delete_payload(
        &self,
        request: Request<pb::DeletePayloadPoints>,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        let t = Instant::now();
        let req = request.into_inner();
        reject_shard_key(&req.shard_key_selector)?;
        let coll = self.state.resolve(&req.collection_name).await?;
        let keys = req
            .keys
            .iter()
            .map(|k| json_path(k))
            .collect::<Result<Vec<_>, _>>()?;
        let (points, filter) = match selector(req.points_selector.as_ref())? {
            Selector::Ids(ids) => (Some(ids), None),
            Selector::Filter(f) => (None, Some(f)),
        };
        let op = PayloadOps::DeletePayload(DeletePayloadOp {
            keys,
            points,
            filter,
        });
        coll.write(move |s| {
            s.update(UpdateOperation::PayloadOperation(op))
                .map_err(op_error)
        })
        .await?;
        Ok(update_response(&self.state, req.wait, t))
    }

    async fn clear_payload(
        &self,
        request: Request<pb::ClearPayloadPoints>,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        let t = Instant::now();
        let req = request.into_inner();
        reject_shard_key(&req.shard_key_selector)?;
        let coll = self.state.resolve(&req.collection_name).await?;
        let op = match selector(req.points.as_ref())? {
            Selector::Ids(points) => PayloadOps::ClearPayload { points },
            Selector::Filter(f) => PayloadOps::ClearPayloadByFilter(f),
        };
        coll.write(move |s| {
            s.update(UpdateOperation::PayloadOperation(op))
                .map_err(op_error)
        })
        .await?;
        Ok(update_response(&self.state, req.wait, t))
    }

    async fn create_field_index(
        &self,
        request: Request<pb::CreateFieldIndexCollection>,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        let t = Instant::now();
        let req = request.into_inner();
        let coll = self.state.resolve(&req.collection_name).await?;
        let field_name = json_path(&req.field_name)?;
        let schema = field_schema(req.field_type, req.field_index_params.as_ref())?;
        let op = FieldIndexOperations::CreateIndex(CreateIndex {
            field_name,
            field_schema: Some(schema),
        });
        coll.write(move |s| {
            s.update(UpdateOperation::FieldIndexOperation(op))
                .map_err(op_error)
        })
        .await?;
        Ok(update_response(&self.state, req.wait, t))
    }

    async fn delete_field_index(
        &self,
        request: Request<pb::DeleteFieldIndexCollection>,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        let t = Instant::now();
        let req = request.into_inner();
        let coll = self.state.resolve(&req.collection_name).await?;
        let op = FieldIndexOperations::DeleteIndex(json_path(&req.field_name)?);
        coll.write(move |s| {
            s.update(UpdateOperation::FieldIndexOperation(op))
                .map_err(op_error)
        })
        .await?;
        Ok(update_response(&self.state, req.wait, t))
    }

    async fn create_vector_name(
        &self,
        _request: Request<pb::CreateVectorNameRequest>,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        Err(unsupported("CreateVectorName (named vectors)"))
    }

    async fn delete_vector_name(
        &self,
        _request: Request<pb::DeleteVectorNameRequest>,
    ) -> Result<Response<pb::PointsOperationResponse>, Status> {
        Err(unsupported("DeleteVectorName (named vectors)"))
    }

    async fn search(
        &self,
        request: Request<pb::SearchPoints>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let t = Instant::now();
        let req = request.into_inner();
        reject_shard_key(&req.shard_key_selector)?;
        if req.sparse_indices.is_some() {
            return Err(unsupported("sparse vectors"));
        }
        let coll = self.state.resolve(&req.collection_name).await?;
        let n = Nearest {
            vector: Some(req.vector.clone()),
            using: req.vector_name.clone(),
            filter: filter_opt(req.filter.as_ref())?,
            score_threshold: req.score_threshold,
            limit: limit_of(Some(req.limit))?,
            offset: req.offset.unwrap_or(0) as usize,
            params: search_params(req.params.as_ref()),
            with_payload: with_payload(req.with_payload.as_ref(), false)?,
            with_vector: with_vector(req.with_vectors.as_ref()),
        };
        let result = coll.read(move |s| Ok(run_nearest(s, n))).await??;
        Ok(Response::new(pb::SearchResponse {
            result,
            time: elapsed(t),
            usage: None,
        }))
    }

    async fn search_batch(
        &self,
        _request: Request<pb::SearchBatchPoints>,
    ) -> Result<Response<pb::SearchBatchResponse>, Status> {
        Err(unsupported("SearchBatch"))
    }

    async fn search_groups(
        &self,
        _request: Request<pb::SearchPointGroups>,
    ) -> Result<Response<pb::SearchGroupsResponse>, Status> {
        Err(unsupported("SearchGroups"))
    }

    async fn scroll(
        &self,
        request: Request<pb::ScrollPoints>,
    ) -> Result<Response<pb::ScrollResponse>, Status> {
        let t = Instant::now();
        let req = request.into_inner();
        reject_shard_key(&req.shard_key_selector)?;
        if req.order_by.is_some() {
            return Err(unsupported("scroll with order_by"));
        }
        let coll = self.state.resolve(&req.collection_name).await?;
        let sr = ScrollRequest {
            offset: req.offset.as_ref().map(point_id_from_grpc).transpose()?,
            limit: Some(limit_of(req.limit.map(u64::from))?),
            filter: filter_opt(req.filter.as_ref())?,
            with_payload: Some(with_payload(req.with_payload.as_ref(), true)?),
            with_vector: with_vector(req.with_vectors.as_ref()),
            order_by: None,
        };
        let (records, next) = coll.read(move |s| s.scroll(sr)).await?;
        Ok(Response::new(pb::ScrollResponse {
            next_page_offset: next.map(point_id_to_grpc),
            result: records.into_iter().map(record_to_grpc).collect(),
            time: elapsed(t),
            usage: None,
        }))
    }

    async fn recommend(
        &self,
        _request: Request<pb::RecommendPoints>,
    ) -> Result<Response<pb::RecommendResponse>, Status> {
        Err(unsupported("Recommend"))
    }

    async fn recommend_batch(
        &self,
        _request: Request<pb::RecommendBatchPoints>,
    ) -> Result<Response<pb::RecommendBatchResponse>, Status> {
        Err(unsupported("RecommendBatch"))
    }

    async fn recommend_groups(
        &self,
        _request: Request<pb::RecommendPointGroups>,
    ) -> Result<Response<pb::RecommendGroupsResponse>, Status> {
        Err(unsupported("RecommendGroups"))
    }

    async fn discover(
        &self,
        _request: Request<pb::DiscoverPoints>,
    ) -> Result<Response<pb::DiscoverResponse>, Status> {
        Err(unsupported("Discover"))
    }

    async fn discover_batch(
        &self,
        _request: Request<pb::DiscoverBatchPoints>,
    ) -> Result<Response<pb::DiscoverBatchResponse>, Status> {
        Err(unsupported("DiscoverBatch"))
    }

    async fn count(
        &self,
        request: Request<pb::CountPoints>,
    ) -> Result<Response<pb::CountResponse>, Status> {
        let t = Instant::now();
        let req = request.into_inner();
        reject_shard_key(&req.shard_key_selector)?;
        let coll = self.state.resolve(&req.collection_name).await?;
        let cr = CountRequest {
            filter: filter_opt(req.filter.as_ref())?,
            exact: req.exact.unwrap_or(true),
        };
        let count = coll.read(move |s| s.count(cr)).await?;
        Ok(Response::new(pb::CountResponse {
            result: Some(pb::CountResult {
                count: count as u64,
            }),
            time: elapsed(t),
            usage: None,
        }))
    }

    async fn update_batch(
        &self,
        _request: Request<pb::UpdateBatchPoints>,
    ) -> Result<Response<pb::UpdateBatchResponse>, Status> {
        Err(unsupported("UpdateBatch"))
    }

    async fn query(
        &self,
        request: Request<pb::QueryPoints>,
    ) -> Result<Response<pb::QueryResponse>, Status> {
        use pb::query::Variant;
        use pb::vector_input::Variant as VI;
        let t = Instant::now();
        let req = request.into_inner();
        reject_shard_key(&req.shard_key_selector)?;
        if !req.prefetch.is_empty() {
            return Err(unsupported("prefetch queries"));
        }
        if req.lookup_from.is_some() {
            return Err(unsupported("lookup_from"));
        }
        let vector = match req.query.as_ref().and_then(|q| q.variant.as_ref()) {
            None => None,
            Some(Variant::Nearest(vi)) => match &vi.variant {
                Some(VI::Dense(d)) => Some(d.data.clone()),
                Some(VI::Id(_)) => return Err(unsupported("nearest-by-point-id queries")),
                Some(VI::Sparse(_)) => return Err(unsupported("sparse vectors")),
                Some(VI::MultiDense(_)) => return Err(unsupported("multi-dense vectors")),
                Some(VI::Document(_) | VI::Image(_) | VI::Object(_)) => {
                    return Err(unsupported("server-side inference"));
                }
                None => return Err(bad_input("empty nearest query vector")),
            },
            Some(other) => {
                let name = match other {
                    Variant::Recommend(_) => "recommend",
                    Variant::Discover(_) => "discover",
                    Variant::Context(_) => "context",
                    Variant::OrderBy(_) => "order_by",
                    Variant::Fusion(_) => "fusion",
                    Variant::Sample(_) => "sample",
                    Variant::Formula(_) => "formula",
                    Variant::NearestWithMmr(_) => "nearest_with_mmr",
                    Variant::Rrf(_) => "rrf",
                    Variant::RelevanceFeedback(_) => "relevance_feedback",
                    Variant::Text(_) => "text (bm25)",
                    Variant::Nearest(_) => "nearest",
                };
                return Err(unsupported(format!("`{name}` queries")));
            }
        };
        let coll = self.state.resolve(&req.collection_name).await?;
        let n = Nearest {
            vector,
            using: req.using.clone(),
            filter: filter_opt(req.filter.as_ref())?,
            score_threshold: req.score_threshold,
            limit: limit_of(req.limit)?,
            offset: req.offset.unwrap_or(0) as usize,
            params: search_params(req.params.as_ref()),
            with_payload: with_payload(req.with_payload.as_ref(), false)?,
            with_vector: with_vector(req.with_vectors.as_ref()),
        };
        let result = coll.read(move |s| Ok(run_nearest(s, n))).await??;
        Ok(Response::new(pb::QueryResponse {
            result,
            time: elapsed(t),
            usage: None,
        }))
    }

    async fn query_batch(
        &self,
        _request: Request<pb::QueryBatchPoints>,
    ) -> Result<Response<pb::QueryBatchResponse>, Status> {
        Err(unsupported("QueryBatch"))
    }

    async fn query_groups(
        &self,
        _request: Request<pb::QueryPointGroups>,
    ) -> Result<Response<pb::QueryGroupsResponse>, Status> {
        Err(unsupported("QueryGroups"))
    }

    async fn facet(
        &self,
        _request: Request<pb::FacetCounts>,
    ) -> Result<Response<pb::FacetResponse>, Status> {
        Err(unsupported("Facet"))
    }

    async fn search_matrix_pairs(
        &self,
        _request: Request<pb::SearchMatrixPoints>,
    ) -> Result<Response<pb::SearchMatrixPairsResponse>, Status> {
        Err(unsupported("SearchMatrixPairs"))
    }

    async fn search_matrix_offsets(
        &self,
        _request: Request<pb::SearchMatrixPoints>,
    ) -> Result<Response<pb::SearchMatrixOffsetsResponse>, Status> {
        Err(unsupported("SearchMatrixOffsets"))
    }
}
