//! Conversions between the Qdrant gRPC messages (as generated in `qdrant-client`) and the
//! internal types of `qdrant-edge`.
//!
//! Rule: anything we cannot represent faithfully is rejected with a clear `Status`
//! (INVALID_ARGUMENT for malformed input, UNIMPLEMENTED for valid Qdrant input that the
//! stand-in does not support). Nothing is silently dropped from filters.

use std::collections::HashMap;

use qdrant_client::qdrant as pb;
use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::external::serde_json::{Map, Number, Value as Json};
use qdrant_edge::external::uuid::Uuid;
use qdrant_edge::{
    Condition, FieldCondition, Filter, HasIdCondition, HasVectorCondition, IsEmptyCondition,
    IsNullCondition, JsonPath, Match, MatchExcept, MatchPhrase, MatchText, MatchTextAny, MinShould,
    Nested, NestedCondition, OperationError, Payload, PayloadSelector, PointId, Range,
    RangeInterface, SparseVector, ValueVariants, ValuesCount, VectorInternal, VectorPersisted,
    VectorStructInternal, VectorStructPersisted, WithPayloadInterface, WithVector,
};
use tonic::Status;

/// `Status::invalid_argument` with Qdrant's "Wrong input: " prefix.
pub fn bad_input(msg: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("Wrong input: {msg}"))
}

pub fn unsupported(what: impl std::fmt::Display) -> Status {
    Status::unimplemented(format!("qdrant-standin does not support {what}"))
}

pub fn not_found(msg: impl std::fmt::Display) -> Status {
    Status::not_found(format!("Not found: {msg}"))
}

pub fn collection_not_found(name: &str) -> Status {
    not_found(format!("Collection `{name}` doesn't exist!"))
}

/// Map a qdrant-edge error to a gRPC status the way Qdrant maps its `CollectionError`s.
pub fn op_error(e: OperationError) -> Status {
    match e {
        OperationError::PointIdError { .. } => not_found(e),
        OperationError::Timeout { .. } => Status::deadline_exceeded(format!("Timeout error: {e}")),
        OperationError::Cancelled { .. } => Status::cancelled(e.to_string()),
        OperationError::ServiceError { .. }
        | OperationError::InconsistentStorage { .. }
        | OperationError::OutOfMemory { .. } => {
            Status::internal(format!("Service internal error: {e}"))
        }
        _ => bad_input(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Payload values

pub fn value_to_json(v: &pb::Value) -> Result<Json, Status> {
    use pb::value::Kind;
    Ok(match &v.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::DoubleValue(d)) => Number::from_f64(*d)
            .map(Json::Number)
            .ok_or_else(|| bad_input(format!("payload float value must be finite, got {d}")))?,
        Some(Kind::IntegerValue(i)) => Json::Number((*i).into()),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::StructValue(s)) => Json::Object(struct_to_map(&s.fields)?),
        Some(Kind::ListValue(l)) => Json::Array(
            l.values
                .iter()
                .map(value_to_json)
                .collect::<Result<_, _>>()?,
        ),
    })
}

pub fn struct_to_map(fields: &HashMap<String, pb::Value>) -> Result<Map<String, Json>, Status> {
    fields
        .iter()
        .map(|(k, v)| Ok((k.clone(), value_to_json(v)?)))
        .collect()
}

pub fn payload_from_grpc(fields: &HashMap<String, pb::Value>) -> Result<Payload, Status> {
    Ok(Payload(struct_to_map(fields)?))
}

pub fn json_to_value(v: &Json) -> pb::Value {
    use pb::value::Kind;
    let kind = match v {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntegerValue(i),
            None => Kind::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(a) => Kind::ListValue(pb::ListValue {
            values: a.iter().map(json_to_value).collect(),
        }),
        Json::Object(o) => Kind::StructValue(pb::Struct {
            fields: map_to_grpc(o),
        }),
    };
    pb::Value { kind: Some(kind) }
}

pub fn map_to_grpc(m: &Map<String, Json>) -> HashMap<String, pb::Value> {
    m.iter()
        .map(|(k, v)| (k.clone(), json_to_value(v)))
        .collect()
}

pub fn payload_to_grpc(p: Option<&Payload>) -> HashMap<String, pb::Value> {
    p.map(|p| map_to_grpc(&p.0)).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Point ids

pub fn point_id_from_grpc(id: &pb::PointId) -> Result<PointId, Status> {
    use pb::point_id::PointIdOptions;
    match &id.point_id_options {
        Some(PointIdOptions::Num(n)) => Ok(PointId::NumId(*n)),
        Some(PointIdOptions::Uuid(s)) => Uuid::parse_str(s)
            .map(PointId::Uuid)
            .map_err(|e| bad_input(format!("Unable to parse UUID: {s}: {e}"))),
        None => Err(bad_input("Empty ID is not allowed")),
    }
}

pub fn point_ids_from_grpc(ids: &[pb::PointId]) -> Result<Vec<PointId>, Status> {
    ids.iter().map(point_id_from_grpc).collect()
}

pub fn point_id_to_grpc(id: PointId) -> pb::PointId {
    use pb::point_id::PointIdOptions;
    pb::PointId {
        point_id_options: Some(match id {
            PointId::NumId(n) => PointIdOptions::Num(n),
            // Qdrant returns UUIDs in the hyphenated lowercase form.
            PointId::Uuid(u) => PointIdOptions::Uuid(u.hyphenated().to_string()),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Payload keys

pub fn json_path(key: &str) -> Result<JsonPath, Status> {
    key.parse::<JsonPath>()
        .map_err(|()| bad_input(format!("invalid payload key (JSON path): {key:?}")))
}

fn json_paths(keys: &[String]) -> Result<Vec<JsonPath>, Status> {
    keys.iter().map(|k| json_path(k)).collect()
}

// ---------------------------------------------------------------------------------------------
// Filters

pub fn filter_opt(f: Option<&pb::Filter>) -> Result<Option<Filter>, Status> {
    f.map(filter_from_grpc).transpose()
}

pub fn filter_from_grpc(f: &pb::Filter) -> Result<Filter, Status> {
    let list = |cs: &[pb::Condition]| -> Result<Option<Vec<Condition>>, Status> {
        if cs.is_empty() {
            Ok(None)
        } else {
            cs.iter()
                .map(condition_from_grpc)
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
    };
    let min_should = match &f.min_should {
        None => None,
        Some(ms) => Some(MinShould {
            conditions: ms
                .conditions
                .iter()
                .map(condition_from_grpc)
                .collect::<Result<_, _>>()?,
            min_count: usize::try_from(ms.min_count)
                .map_err(|_| bad_input("min_should.min_count is too large"))?,
        }),
    };
    Ok(Filter {
        should: list(&f.should)?,
        min_should,
        must: list(&f.must)?,
        must_not: list(&f.must_not)?,
    })
}

fn condition_from_grpc(c: &pb::Condition) -> Result<Condition, Status> {
    use pb::condition::ConditionOneOf as C;
    match &c.condition_one_of {
        None => Err(bad_input("Malformed Condition type: condition is empty")),
        Some(C::Field(fc)) => Ok(Condition::Field(field_condition_from_grpc(fc)?)),
        Some(C::IsEmpty(e)) => Ok(Condition::IsEmpty(IsEmptyCondition::from(json_path(
            &e.key,
        )?))),
        Some(C::IsNull(n)) => Ok(Condition::IsNull(IsNullCondition::from(json_path(&n.key)?))),
        Some(C::HasId(h)) => Ok(Condition::HasId(
            point_ids_from_grpc(&h.has_id)?
                .into_iter()
                .collect::<HasIdCondition>(),
        )),
        Some(C::Filter(f)) => Ok(Condition::Filter(filter_from_grpc(f)?)),
        Some(C::Nested(n)) => {
            let filter = n
                .filter
                .as_ref()
                .ok_or_else(|| bad_input("Nested condition requires a filter"))?;
            Ok(Condition::Nested(NestedCondition::new(Nested {
                key: json_path(&n.key)?,
                filter: filter_from_grpc(filter)?,
            })))
        }
        Some(C::HasVector(h)) => Ok(Condition::HasVector(HasVectorCondition::from(
            h.has_vector.clone(),
        ))),
        Some(C::Slice(_)) => Err(unsupported("the `slice` filter condition")),
    }
}

fn field_condition_from_grpc(fc: &pb::FieldCondition) -> Result<FieldCondition, Status> {
    let key = json_path(&fc.key)?;
    if fc.geo_bounding_box.is_some() || fc.geo_radius.is_some() || fc.geo_polygon.is_some() {
        return Err(unsupported(format!("geo conditions (field `{}`)", fc.key)));
    }
    if fc.datetime_range.is_some() {
        return Err(unsupported(format!(
            "datetime_range conditions (field `{}`)",
            fc.key
        )));
    }
    let r#match = fc.r#match.as_ref().map(match_from_grpc).transpose()?;
    let range = fc.range.as_ref().map(|r| {
        RangeInterface::Float(Range {
            lt: r.lt.map(OrderedFloat),
            gt: r.gt.map(OrderedFloat),
            gte: r.gte.map(OrderedFloat),
            lte: r.lte.map(OrderedFloat),
        })
    });
    let to_usize = |v: Option<u64>| -> Result<Option<usize>, Status> {
        v.map(|x| usize::try_from(x).map_err(|_| bad_input("values_count bound too large")))
            .transpose()
    };
    let values_count = match &fc.values_count {
        None => None,
        Some(vc) => Some(ValuesCount {
            lt: to_usize(vc.lt)?,
            gt: to_usize(vc.gt)?,
            gte: to_usize(vc.gte)?,
            lte: to_usize(vc.lte)?,
        }),
    };
    if r#match.is_none()
        && range.is_none()
        && values_count.is_none()
        && fc.is_empty.is_none()
        && fc.is_null.is_none()
    {
        return Err(bad_input(format!(
            "At least one field condition must be specified (field `{}`)",
            fc.key
        )));
    }
    Ok(FieldCondition {
        key,
        r#match,
        range,
        geo_bounding_box: None,
        geo_radius: None,
        geo_polygon: None,
        values_count,
        is_empty: fc.is_empty,
        is_null: fc.is_null,
    })
}

fn match_from_grpc(m: &pb::Match) -> Result<Match, Status> {
    use pb::r#match::MatchValue as M;
    Ok(match &m.match_value {
        None => return Err(bad_input("Malformed Match condition: match value is empty")),
        // Keyword = exact value match (an array payload matches if any element is equal).
        Some(M::Keyword(s)) => Match::new_value(ValueVariants::String(s.clone())),
        Some(M::Integer(i)) => Match::new_value(ValueVariants::Integer(*i)),
        Some(M::Boolean(b)) => Match::new_value(ValueVariants::Bool(*b)),
        Some(M::Keywords(rs)) => Match::from(rs.strings.clone()),
        Some(M::Integers(ri)) => Match::from(ri.integers.clone()),
        Some(M::ExceptKeywords(rs)) => Match::Except(MatchExcept::from(rs.strings.clone())),
        Some(M::ExceptIntegers(ri)) => Match::Except(MatchExcept::from(ri.integers.clone())),
        // Full-text matches: token based with a text index, substring-like without one
        // (same segment code as Qdrant).
        Some(M::Text(t)) => Match::Text(MatchText { text: t.clone() }),
        Some(M::TextAny(t)) => Match::TextAny(MatchTextAny {
            text_any: t.clone(),
        }),
        Some(M::Phrase(p)) => Match::Phrase(MatchPhrase { phrase: p.clone() }),
        Some(M::Prefix(_)) => {
            return Err(unsupported("the `prefix` match (not in qdrant-edge 0.7.2)"));
        }
        Some(M::Substring(_)) => {
            return Err(unsupported(
                "the `substring` match (not in qdrant-edge 0.7.2)",
            ));
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Payload / vector selectors

pub fn with_payload(
    sel: Option<&pb::WithPayloadSelector>,
    default: bool,
) -> Result<WithPayloadInterface, Status> {
    use pb::with_payload_selector::SelectorOptions as S;
    Ok(match sel.and_then(|s| s.selector_options.as_ref()) {
        None => WithPayloadInterface::Bool(default),
        Some(S::Enable(b)) => WithPayloadInterface::Bool(*b),
        Some(S::Include(i)) => {
            WithPayloadInterface::Selector(PayloadSelector::new_include(json_paths(&i.fields)?))
        }
        Some(S::Exclude(e)) => {
            WithPayloadInterface::Selector(PayloadSelector::new_exclude(json_paths(&e.fields)?))
        }
    })
}

pub fn with_vector(sel: Option<&pb::WithVectorsSelector>) -> WithVector {
    use pb::with_vectors_selector::SelectorOptions as S;
    match sel.and_then(|s| s.selector_options.as_ref()) {
        None => WithVector::Bool(false),
        Some(S::Enable(b)) => WithVector::Bool(*b),
        Some(S::Include(names)) => WithVector::Selector(names.names.clone()),
    }
}

// ---------------------------------------------------------------------------------------------
// Vectors

/// What a collection's vectors are: dense sizes by name (`""` is the unnamed vector) and the
/// names of its sparse vectors.
pub struct VectorLayout {
    pub dense: HashMap<String, usize>,
    pub sparse: Vec<String>,
}

impl VectorLayout {
    /// The size of the dense vector `name` (`""`: the unnamed one), with Qdrant's error for
    /// a name the collection does not have.
    pub fn dense_size(&self, name: &str) -> Result<usize, Status> {
        self.dense
            .get(name)
            .copied()
            .ok_or_else(|| bad_input(format!("Not existing vector name error: {name}")))
    }
}

fn check_dim(expected: usize, got: usize) -> Result<(), Status> {
    if expected != got {
        return Err(bad_input(format!(
            "Vector dimension error: expected dim: {expected}, got {got}"
        )));
    }
    Ok(())
}

/// The vectors of an upserted point: the unnamed dense vector (`Vector`), or named ones
/// (`Vectors`: dense or sparse, `""` being the unnamed one), checked against the collection.
/// As in Qdrant, a point may lack some of the collection's named vectors.
pub fn vectors_from_grpc(
    v: Option<&pb::Vectors>,
    layout: &VectorLayout,
) -> Result<VectorStructPersisted, Status> {
    use pb::vectors::VectorsOptions;
    match v.and_then(|v| v.vectors_options.as_ref()) {
        None => Err(bad_input("point has no vectors")),
        Some(VectorsOptions::Vector(vec)) => {
            let data = dense_from_vector(vec)?;
            check_dim(layout.dense_size("")?, data.len())?;
            Ok(VectorStructPersisted::Single(data))
        }
        Some(VectorsOptions::Vectors(named)) => {
            let mut out = HashMap::with_capacity(named.vectors.len());
            for (name, vec) in &named.vectors {
                let persisted = if layout.sparse.iter().any(|s| s == name) {
                    VectorPersisted::Sparse(sparse_from_vector(vec)?)
                } else {
                    let data = dense_from_vector(vec)?;
                    check_dim(layout.dense_size(name)?, data.len())?;
                    VectorPersisted::Dense(data)
                };
                out.insert(name.clone(), persisted);
            }
            Ok(VectorStructPersisted::Named(out))
        }
    }
}

#[allow(deprecated)]
fn sparse_from_vector(v: &pb::Vector) -> Result<SparseVector, Status> {
    use pb::vector::Vector as V;
    let (indices, values) = match &v.vector {
        Some(V::Sparse(s)) => (s.indices.clone(), s.values.clone()),
        None => match &v.indices {
            Some(i) => (i.data.clone(), v.data.clone()),
            None => return Err(bad_input("a dense vector given for a sparse vector")),
        },
        Some(_) => return Err(bad_input("a dense vector given for a sparse vector")),
    };
    SparseVector::new(indices, values).map_err(|e| bad_input(format!("invalid sparse vector: {e}")))
}

#[allow(deprecated)]
fn dense_from_vector(v: &pb::Vector) -> Result<Vec<f32>, Status> {
    use pb::vector::Vector as V;
    match &v.vector {
        Some(V::Dense(d)) => Ok(d.data.clone()),
        Some(V::Sparse(_)) => Err(unsupported("sparse vectors")),
        Some(V::MultiDense(_)) => Err(unsupported("multi-dense vectors")),
        Some(V::Document(_) | V::Image(_) | V::Object(_)) => Err(unsupported(
            "server-side inference (Document/Image/Object vectors)",
        )),
        None => {
            if v.indices.is_some() {
                Err(unsupported("sparse vectors"))
            } else if v.vectors_count.is_some() {
                Err(unsupported("multi-dense vectors"))
            } else {
                Ok(v.data.clone())
            }
        }
    }
}

fn vector_output(v: &VectorInternal) -> pb::VectorOutput {
    use pb::vector_output::Vector as V;
    let vector = match v {
        VectorInternal::Dense(d) => V::Dense(pb::DenseVector { data: d.clone() }),
        VectorInternal::Sparse(s) => V::Sparse(pb::SparseVector {
            values: s.values.clone(),
            indices: s.indices.clone(),
        }),
        VectorInternal::MultiDense(m) => V::MultiDense(pb::MultiDenseVector {
            vectors: m
                .multi_vectors()
                .map(|row| pb::DenseVector { data: row.to_vec() })
                .collect(),
        }),
    };
    #[allow(deprecated)]
    pb::VectorOutput {
        data: vec![],
        indices: None,
        vectors_count: None,
        vector: Some(vector),
    }
}

pub fn vectors_to_grpc(v: Option<&VectorStructInternal>) -> Option<pb::VectorsOutput> {
    use pb::vectors_output::VectorsOptions;
    let opts = match v? {
        VectorStructInternal::Single(d) => {
            VectorsOptions::Vector(vector_output(&VectorInternal::Dense(d.clone())))
        }
        VectorStructInternal::MultiDense(m) => {
            VectorsOptions::Vector(vector_output(&VectorInternal::MultiDense(m.clone())))
        }
        VectorStructInternal::Named(map) => {
            if map.len() == 1
                && let Some(d) = map.get("")
            {
                // Collection with a single unnamed vector: Qdrant answers with `Vector`.
                VectorsOptions::Vector(vector_output(d))
            } else if map.is_empty() {
                return None;
            } else {
                VectorsOptions::Vectors(pb::NamedVectorsOutput {
                    vectors: map
                        .iter()
                        .map(|(k, v)| (k.clone(), vector_output(v)))
                        .collect(),
                })
            }
        }
    };
    Some(pb::VectorsOutput {
        vectors_options: Some(opts),
    })
}
