//! Points and payloads: Lethe's payload fields to and from Qdrant's values,
//! read leniently (a pipeline's point may lack Lethe's fields).

use super::*;

pub(super) fn point_id(id: Uuid) -> PointId {
    PointId::from(id.to_string())
}

pub(super) fn uuid_from_point_id(id: Option<&PointId>) -> Result<Uuid> {
    match id.and_then(|id| id.point_id_options.as_ref()) {
        Some(PointIdOptions::Uuid(s)) => {
            Uuid::parse_str(s).map_err(|e| backend_error(format!("point id `{s}` is not a UUID: {e}"), None))
        }
        Some(PointIdOptions::Num(n)) => Err(backend_error(format!("numeric point id {n}, expected a UUID"), None)),
        None => Err(backend_error("point without an id", None)),
    }
}

pub(super) fn string_value(s: &str) -> Value {
    Value { kind: Some(Kind::StringValue(s.to_owned())) }
}

pub(super) fn payload_to_qdrant(payload: &PointPayload) -> HashMap<String, Value> {
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

pub(super) fn optional_string<'a>(map: &'a HashMap<String, Value>, field: &str) -> Result<Option<&'a str>> {
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
pub(super) fn payload_from_qdrant(map: &HashMap<String, Value>, owner: Uuid) -> Result<PointPayload> {
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
pub(super) fn dense_vector(vectors: Option<VectorsOutput>) -> Result<Vec<f32>> {
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

pub(super) fn stored_point(point: RetrievedPoint, with_vectors: bool, owner: Uuid) -> Result<StoredPoint> {
    let id = uuid_from_point_id(point.id.as_ref())?;
    let payload = payload_from_qdrant(&point.payload, owner)?;
    let vector = if with_vectors { Some(dense_vector(point.vectors)?) } else { None };
    Ok(StoredPoint { id, payload, vector, written_at: None })
}

pub(super) fn check_completed(result: Option<UpdateResult>, what: &str) -> Result<()> {
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
