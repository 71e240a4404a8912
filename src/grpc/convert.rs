//! Conversions between wire messages and domain inputs/outputs. Every
//! request field is validated here; a failure names the field.

use prost_types::Timestamp;
use uuid::Uuid;

use super::pb;
use crate::catalog::NewCollection;
use crate::domain::{
    Backend, CollectionName, CollectionSpec, Distance, ExternalId, Identifier, IdentifierKind, InvalidInput,
    JobStatus, ResidualPolicy, Role, Screening, Stage, bounded_text, optional_text,
};
use crate::erasure::{EraseInput, JobView, LiveCount};
use crate::ingest::{ChunkInput, SubjectInput};
use crate::residual::Candidate;
use crate::store::jobs::{CountRow, EventRow};
use crate::store::lineage::SubjectRow;
use crate::store::log::LogRow;

// Bounds of request fields, as the proto comments document them. Strings are
// in bytes of UTF-8.

/// Chunks per `Ingest`, points per `Track`.
pub const MAX_CHUNKS: usize = 1000;
/// A chunk's text (`Ingest`, `Track`).
pub const MAX_TEXT: usize = 32 * 1024;
/// A source's uri.
pub const MAX_SOURCE_URI: usize = 2048;
/// A source's kind.
pub const MAX_SOURCE_KIND: usize = 128;
/// Subjects with identifiers per `Ingest` or `Track`.
pub const MAX_SUBJECTS: usize = 1000;
/// Identifiers per subject.
pub const MAX_IDENTIFIERS: usize = 100;
/// Identifiers per `SearchResiduals`: each adds several patterns that every
/// candidate chunk is matched against.
pub const MAX_SEARCH_IDENTIFIERS: usize = 20;
/// Tags per chunk.
pub const MAX_TAGS: usize = 100;
/// `Erase.requested_by`.
pub const MAX_REQUESTED_BY: usize = 256;
/// `Erase.reason`, `SetLegalHold.reason`.
pub const MAX_REASON: usize = 1024;
/// `Erase.idempotency_key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;
/// `Erase.deadline_days`.
pub const MAX_DEADLINE_DAYS: u32 = 3650;
/// `CreateCollection.retention_days` (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// `CreateCollection.dimension`; pgvector's HNSW index takes at most 2,000.
pub const MAX_DIMENSION: u32 = 4096;
pub const MAX_PGVECTOR_DIMENSION: u32 = 2000;

type R<T> = Result<T, InvalidInput>;

pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

pub fn uuid(field: &str, s: &str) -> R<Uuid> {
    Uuid::parse_str(s.trim()).map_err(|_| InvalidInput::new(field, "must be a UUID"))
}

/// A collection's name as a request gives it.
pub fn collection_name(field: &str, s: &str) -> R<CollectionName> {
    CollectionName::parse(field, s)
}

pub fn new_collection(r: pb::CreateCollectionRequest) -> R<NewCollection> {
    let pb::CreateCollectionRequest { name, backend, dimension, distance, store_text, retention_days, screening } = r;
    let backend = backend_of("backend", backend)?;
    if !(1..=MAX_DIMENSION).contains(&dimension) {
        return Err(InvalidInput::new("dimension", format!("must be between 1 and {MAX_DIMENSION}")));
    }
    if backend == Backend::Pgvector && dimension > MAX_PGVECTOR_DIMENSION {
        return Err(InvalidInput::new(
            "dimension",
            format!("must be at most {MAX_PGVECTOR_DIMENSION} for pgvector (its HNSW index takes no more)"),
        ));
    }
    if retention_days > MAX_RETENTION_DAYS {
        return Err(InvalidInput::new("retention_days", format!("must be at most {MAX_RETENTION_DAYS}")));
    }
    let distance = match pb::Distance::try_from(distance) {
        Ok(pb::Distance::Unspecified | pb::Distance::Cosine) => Distance::Cosine,
        Ok(pb::Distance::Dot) => Distance::Dot,
        Ok(pb::Distance::Euclid) => Distance::Euclid,
        Err(_) => return Err(InvalidInput::new("distance", "unknown distance")),
    };
    Ok(NewCollection {
        name: CollectionName::parse("name", &name)?,
        backend,
        dimension: dimension as usize,
        distance,
        store_text: store_text.unwrap_or(true),
        retention_days,
        screening: screening_policy(screening)?,
    })
}

fn screening_policy(v: i32) -> R<Option<Screening>> {
    match pb::Screening::try_from(v) {
        Ok(pb::Screening::Unspecified) => Ok(None),
        Ok(pb::Screening::Accept) => Ok(Some(Screening::Accept)),
        Ok(pb::Screening::Report) => Ok(Some(Screening::Report)),
        Ok(pb::Screening::Redact) => Ok(Some(Screening::Redact)),
        Ok(pb::Screening::Reject) => Ok(Some(Screening::Reject)),
        Err(_) => Err(InvalidInput::new("screening", "unknown screening policy")),
    }
}

fn backend_of(field: &str, v: i32) -> R<Backend> {
    match pb::Backend::try_from(v) {
        Ok(pb::Backend::Pgvector) => Ok(Backend::Pgvector),
        Ok(pb::Backend::Qdrant) => Ok(Backend::Qdrant),
        Ok(pb::Backend::Unspecified) | Err(_) => Err(InvalidInput::new(field, "must be PGVECTOR or QDRANT")),
    }
}

/// Longest column name Postgres keeps (NAMEDATALEN - 1).
const MAX_COLUMN: usize = 63;
const MAX_PATH_KEYS: usize = 8;
const MAX_KEY: usize = 255;

pub fn attach_input(r: pb::AttachRequest) -> R<crate::attach::AttachInput> {
    let pb::AttachRequest {
        name,
        backend: b,
        preset,
        target,
        tag_key,
        mapping,
        create_indexes,
        distance,
        embedding_model,
        screening,
    } = r;
    let preset = match preset.as_str() {
        "" => None,
        p => Some(p.parse::<crate::attach::presets::Preset>().map_err(|e| InvalidInput::new("preset", e))?),
    };
    let backend = match (b, preset) {
        // The preset says which backend; an unspecified backend takes it.
        (0, Some(p)) => p.backend(),
        _ => backend_of("backend", b)?,
    };
    let target = bounded_text("target", &target, MAX_KEY)?.to_owned();
    let tag_key = if preset.is_some() {
        bounded_text("tag_key", &tag_key, MAX_KEY)?.to_owned()
    } else {
        optional_text("tag_key", &tag_key, MAX_KEY)?.to_owned()
    };
    let distance = match pb::Distance::try_from(distance) {
        Ok(pb::Distance::Unspecified) => None,
        Ok(pb::Distance::Cosine) => Some(Distance::Cosine),
        Ok(pb::Distance::Dot) => Some(Distance::Dot),
        Ok(pb::Distance::Euclid) => Some(Distance::Euclid),
        Err(_) => return Err(InvalidInput::new("distance", "unknown distance")),
    };
    Ok(crate::attach::AttachInput {
        name: CollectionName::parse("name", &name)?,
        backend,
        preset,
        target,
        tag_key,
        mapping: attach_mapping(mapping.unwrap_or_default())?,
        create_indexes,
        distance,
        embedding_model: optional_text("embedding_model", &embedding_model, 128)?.to_owned(),
        screening: screening_policy(screening)?,
    })
}

fn attach_mapping(m: pb::AttachMapping) -> R<crate::attach::MappingInput> {
    let column = |field: &str, v: &str| -> R<Option<String>> {
        Ok(Some(optional_text(field, v, MAX_COLUMN)?.to_owned()).filter(|c| !c.is_empty()))
    };
    let scope = match field_path("mapping.scope", m.scope)? {
        None if m.scope_value.is_empty() => None,
        None => return Err(InvalidInput::new("mapping.scope", "scope_value is set but scope names no field")),
        Some(field) => Some(crate::domain::Scope {
            named: None,
            field,
            value: bounded_text("mapping.scope_value", &m.scope_value, MAX_KEY)?.to_owned(),
        }),
    };
    Ok(crate::attach::MappingInput {
        id: column("mapping.id", &m.id)?,
        vector: column("mapping.vector", &m.vector)?,
        text: field_path("mapping.text", m.text)?,
        source: field_path("mapping.source", m.source)?,
        tags: field_path("mapping.tags", m.tags)?,
        scope,
        timestamp: field_path("mapping.timestamp", m.timestamp)?,
    })
}

fn field_path(field: &str, f: Option<pb::FieldPath>) -> R<Option<crate::domain::Field>> {
    let Some(f) = f else { return Ok(None) };
    let keys = |name: &str, keys: Vec<String>| -> R<Vec<String>> {
        if keys.len() > MAX_PATH_KEYS {
            return Err(InvalidInput::new(format!("{field}.{name}"), format!("has more than {MAX_PATH_KEYS} keys")));
        }
        keys.into_iter()
            .enumerate()
            .map(|(i, k)| bounded_text(&format!("{field}.{name}[{i}]"), &k, MAX_KEY).map(str::to_owned))
            .collect()
    };
    let column = optional_text(&format!("{field}.column"), &f.column, MAX_COLUMN)?.to_owned();
    let path = keys("path", f.path)?;
    let json_text_path = keys("json_text_path", f.json_text_path)?;
    if column.is_empty() && path.is_empty() {
        if !json_text_path.is_empty() {
            return Err(InvalidInput::new(field, "json_text_path needs the column or path that holds the JSON text"));
        }
        return Ok(None);
    }
    Ok(Some(crate::domain::Field { column, path, json_text_path, kind: crate::domain::FieldKind::Unknown }))
}

pub fn attach_job(r: &crate::store::attach::AttachRow, collection: &str) -> pb::AttachJob {
    let u = |n: i64| u64::try_from(n).unwrap_or(0);
    pb::AttachJob {
        collection: collection.to_owned(),
        status: r.status.clone(),
        total: u(r.total),
        scanned: u(r.scanned),
        tracked: u(r.tracked),
        untagged: u(r.untagged),
        suppressed: u(r.suppressed),
        subjects: u(r.subjects),
        rescans: u32::try_from(r.rescans).unwrap_or(0),
        error: r.error.clone().unwrap_or_default(),
        received_at: Some(timestamp(r.received_at)),
        completed_at: r.completed_at.map(timestamp),
    }
}

pub fn collection(c: &CollectionSpec) -> pb::Collection {
    pb::Collection {
        name: c.name.to_string(),
        backend: match c.backend {
            Backend::Pgvector => pb::Backend::Pgvector,
            Backend::Qdrant => pb::Backend::Qdrant,
        } as i32,
        backend_name: c.backend_name.clone(),
        mapping_json: c.mapping.as_deref().and_then(|m| serde_json::to_string(m).ok()).unwrap_or_default(),
        dimension: u32::try_from(c.dimension).unwrap_or(0),
        distance: match c.distance {
            Distance::Cosine => pb::Distance::Cosine,
            Distance::Dot => pb::Distance::Dot,
            Distance::Euclid => pb::Distance::Euclid,
        } as i32,
        embedding_model: c.embedding_model.clone(),
        store_text: c.store_text,
        retention_days: c.retention_days,
        screening: match c.screening {
            Screening::Accept => pb::Screening::Accept,
            Screening::Report => pb::Screening::Report,
            Screening::Redact => pb::Screening::Redact,
            Screening::Reject => pb::Screening::Reject,
        } as i32,
        created_at: Some(timestamp(c.created_at)),
    }
}

pub fn identifier(field: &str, i: pb::Identifier) -> R<Identifier> {
    let kind = match pb::IdentifierKind::try_from(i.kind) {
        Ok(pb::IdentifierKind::Email) => IdentifierKind::Email,
        Ok(pb::IdentifierKind::Name) => IdentifierKind::Name,
        Ok(pb::IdentifierKind::Phone) => IdentifierKind::Phone,
        Ok(pb::IdentifierKind::Handle) => IdentifierKind::Handle,
        Ok(pb::IdentifierKind::AnonymousId) => IdentifierKind::AnonymousId,
        Ok(pb::IdentifierKind::Other | pb::IdentifierKind::Unspecified) => IdentifierKind::Other,
        Err(_) => return Err(InvalidInput::new(format!("{field}.kind"), "unknown identifier kind")),
    };
    let value = bounded_text(&format!("{field}.value"), &i.value, Identifier::MAX_LEN)?.trim().to_owned();
    let id = Identifier { kind, value };
    crate::identity::validate(&id).map_err(|m| InvalidInput::new(format!("{field}.value"), m))?;
    Ok(id)
}

pub fn subject(field: &str, s: Option<pb::SubjectRef>) -> R<SubjectInput> {
    let s = s.ok_or_else(|| InvalidInput::new(field, "is required"))?;
    if s.identifiers.len() > MAX_IDENTIFIERS {
        return Err(InvalidInput::new(format!("{field}.identifiers"), format!("at most {MAX_IDENTIFIERS} identifiers")));
    }
    Ok(SubjectInput {
        id: ExternalId::parse(&format!("{field}.id"), &s.id)?,
        identifiers: s
            .identifiers
            .into_iter()
            .enumerate()
            .map(|(i, x)| identifier(&format!("{field}.identifiers[{i}]"), x))
            .collect::<R<_>>()?,
    })
}

pub fn subjects(list: Vec<pb::SubjectRef>) -> R<Vec<SubjectInput>> {
    if list.len() > MAX_SUBJECTS {
        return Err(InvalidInput::new("subjects", format!("at most {MAX_SUBJECTS} subjects")));
    }
    // A subject listed twice is one: its identifiers are merged, and the
    // merged list keeps the per-subject bound (a request repeating one id a
    // thousand times with a hundred identifiers each would add 100,000).
    let mut merged: Vec<SubjectInput> = Vec::with_capacity(list.len());
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, s) in list.into_iter().enumerate() {
        let s = subject(&format!("subjects[{i}]"), Some(s))?;
        match at.get(s.id.as_str()) {
            None => {
                at.insert(s.id.as_str().to_owned(), merged.len());
                merged.push(s);
            }
            Some(&j) => {
                let into = &mut merged[j].identifiers;
                for x in s.identifiers {
                    if !into.contains(&x) {
                        into.push(x);
                    }
                }
                if into.len() > MAX_IDENTIFIERS {
                    return Err(InvalidInput::new(
                        format!("subjects[{i}].identifiers"),
                        format!("at most {MAX_IDENTIFIERS} identifiers per subject, with those of the same id earlier in the request"),
                    ));
                }
            }
        }
    }
    Ok(merged)
}

fn tags(field: &str, tags: Vec<pb::SubjectTag>) -> R<Vec<(ExternalId, Role)>> {
    if tags.len() > MAX_TAGS {
        return Err(InvalidInput::new(field, format!("at most {MAX_TAGS} tags per chunk")));
    }
    tags.into_iter()
        .enumerate()
        .map(|(i, t)| {
            let role = match pb::TagRole::try_from(t.role) {
                Ok(pb::TagRole::Owner) => Role::Owner,
                Ok(pb::TagRole::Author) => Role::Author,
                Ok(pb::TagRole::Mentioned | pb::TagRole::Unspecified) => Role::Mentioned,
                Err(_) => return Err(InvalidInput::new(format!("{field}[{i}].role"), "unknown role")),
            };
            Ok((ExternalId::parse(&format!("{field}[{i}].subject_id"), &t.subject_id)?, role))
        })
        .collect()
}

fn optional_uuid(field: &str, s: &str) -> R<Option<Uuid>> {
    if s.is_empty() { Ok(None) } else { uuid(field, s).map(Some) }
}

/// A source's optional uri and kind.
fn source_uri_kind(f: impl Fn(&str) -> String, uri: String, kind: String) -> R<(String, String)> {
    optional_text(&f("source_uri"), &uri, MAX_SOURCE_URI)?;
    optional_text(&f("source_kind"), &kind, MAX_SOURCE_KIND)?;
    Ok((uri, kind))
}

/// A chunk's position in its source: stored as a Postgres `integer`.
fn ordinal(field: &str, v: u32) -> R<u32> {
    if i32::try_from(v).is_err() {
        return Err(InvalidInput::new(field, format!("must be at most {}", i32::MAX)));
    }
    Ok(v)
}

fn check_count(n: usize, field: &str) -> R<()> {
    if n == 0 || n > MAX_CHUNKS {
        return Err(InvalidInput::new(field, format!("must hold 1 to {MAX_CHUNKS} items, got {n}")));
    }
    Ok(())
}

/// A source id a write gives: an id, and not one of Lethe's aliases
/// (`lethe:erased-source:…`), which only Lethe gives (a write into a
/// document's own id reaches its alias).
fn written_source_id(field: &str, value: &str) -> R<ExternalId> {
    if value.starts_with(crate::ingest::ALIAS_PREFIX) {
        return Err(InvalidInput::new(
            field,
            format!("must not begin with `{}`: Lethe gives such ids; write into the document's own id", crate::ingest::ALIAS_PREFIX),
        ));
    }
    ExternalId::parse(field, value)
}

pub fn ingest_chunks(chunks: Vec<pb::IngestChunk>) -> R<Vec<ChunkInput>> {
    check_count(chunks.len(), "chunks")?;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let f = |name: &str| format!("chunks[{i}].{name}");
            let pb::IngestChunk { source_id, source_uri, source_kind, text, tags: t, point_id, ordinal: o } = c;
            let (source_uri, source_kind) = source_uri_kind(f, source_uri, source_kind)?;
            Ok(ChunkInput {
                source_id: written_source_id(&f("source_id"), &source_id)?,
                source_uri,
                source_kind,
                text: Some(bounded_text(&f("text"), &text, MAX_TEXT)?.to_owned()),
                tags: tags(&f("tags"), t)?,
                point_id: optional_uuid(&f("point_id"), &point_id)?,
                ordinal: ordinal(&f("ordinal"), o)?,
                vector: None,
                written_at: None,
                native_id: None,
            })
        })
        .collect()
}

/// Track of an attached collection: point ids only (the store's own ids,
/// parsed against its id type later), unique in the request.
pub fn attached_point_ids(points: Vec<pb::TrackedPoint>) -> R<Vec<String>> {
    check_count(points.len(), "points")?;
    let mut seen = std::collections::HashSet::new();
    points
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let f = |name: &str| format!("points[{i}].{name}");
            let given_more = !p.source_id.is_empty()
                || !p.source_uri.is_empty()
                || !p.source_kind.is_empty()
                || !p.text.is_empty()
                || !p.tags.is_empty()
                || !p.vector.is_empty();
            if given_more {
                return Err(InvalidInput::new(
                    f("point_id"),
                    "an attached collection's points are read from the store: give point ids only",
                ));
            }
            let id = bounded_text(&f("point_id"), &p.point_id, 255)?.to_owned();
            if !seen.insert(id.clone()) {
                return Err(InvalidInput::new(f("point_id"), "repeats the point id of an earlier point"));
            }
            Ok(id)
        })
        .collect()
}

/// DeletePoints: point ids (parsed against the collection's id type later)
/// and source ids, together 1 to [`MAX_CHUNKS`], each unique.
pub fn delete_points(r: pb::DeletePointsRequest) -> R<crate::ingest::DeleteInput> {
    let n = r.point_ids.len() + r.source_ids.len();
    if n == 0 || n > MAX_CHUNKS {
        return Err(InvalidInput::new("point_ids", format!("point_ids and source_ids must hold 1 to {MAX_CHUNKS} items together, got {n}")));
    }
    let mut seen = std::collections::HashSet::new();
    let point_ids = r
        .point_ids
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let f = format!("point_ids[{i}]");
            let id = bounded_text(&f, p, 255)?.to_owned();
            if !seen.insert(id.clone()) {
                return Err(InvalidInput::new(f, "repeats an earlier point id"));
            }
            Ok(id)
        })
        .collect::<R<Vec<_>>>()?;
    let mut seen = std::collections::HashSet::new();
    let source_ids = r
        .source_ids
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let f = format!("source_ids[{i}]");
            let id = ExternalId::parse(&f, s)?;
            if !seen.insert(id.as_str().to_owned()) {
                return Err(InvalidInput::new(f, "repeats an earlier source id"));
            }
            Ok(id)
        })
        .collect::<R<Vec<_>>>()?;
    Ok(crate::ingest::DeleteInput { point_ids, source_ids })
}

pub fn tracked_points(points: Vec<pb::TrackedPoint>) -> R<Vec<ChunkInput>> {
    check_count(points.len(), "points")?;
    let mut seen = std::collections::HashSet::new();
    let chunks: Vec<ChunkInput> = points
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let f = |name: &str| format!("points[{i}].{name}");
            let pb::TrackedPoint { point_id, source_id, source_uri, source_kind, text, tags: t, vector } = p;
            let (source_uri, source_kind) = source_uri_kind(f, source_uri, source_kind)?;
            optional_text(&f("text"), &text, MAX_TEXT)?;
            if vector.iter().any(|x| !x.is_finite()) {
                return Err(InvalidInput::new(f("vector"), "must hold finite numbers"));
            }
            Ok(ChunkInput {
                source_id: written_source_id(&f("source_id"), &source_id)?,
                source_uri,
                source_kind,
                text: (!text.is_empty()).then_some(text),
                tags: tags(&f("tags"), t)?,
                point_id: Some(uuid(&f("point_id"), &point_id)?),
                ordinal: u32::try_from(i).unwrap_or(0),
                vector: (!vector.is_empty()).then_some(vector),
                written_at: None,
                native_id: None,
            })
        })
        .collect::<R<_>>()?;
    for (i, c) in chunks.iter().enumerate() {
        if !seen.insert(c.point_id) {
            return Err(InvalidInput::new(format!("points[{i}].point_id"), "repeats the point id of an earlier point"));
        }
    }
    Ok(chunks)
}

pub fn erase(r: pb::EraseRequest) -> R<EraseInput> {
    let pb::EraseRequest {
        subject: s,
        requested_by,
        reason,
        residual_policy,
        idempotency_key,
        deadline_days,
        guarantee_physical,
    } = r;
    let residual_policy = match pb::ResidualPolicy::try_from(residual_policy) {
        Ok(pb::ResidualPolicy::Unspecified | pb::ResidualPolicy::Report) => ResidualPolicy::Report,
        Ok(pb::ResidualPolicy::Delete) => ResidualPolicy::Delete,
        Ok(pb::ResidualPolicy::Redact) => ResidualPolicy::Redact,
        Err(_) => return Err(InvalidInput::new("residual_policy", "unknown policy")),
    };
    if deadline_days > MAX_DEADLINE_DAYS {
        return Err(InvalidInput::new("deadline_days", format!("must be at most {MAX_DEADLINE_DAYS}")));
    }
    let idempotency_key = if idempotency_key.is_empty() {
        None
    } else {
        Some(bounded_text("idempotency_key", &idempotency_key, MAX_IDEMPOTENCY_KEY)?.to_owned())
    };
    Ok(EraseInput {
        subject: subject("subject", s)?,
        requested_by: bounded_text("requested_by", &requested_by, MAX_REQUESTED_BY)?.to_owned(),
        reason: optional_text("reason", &reason, MAX_REASON)?.to_owned(),
        residual_policy,
        idempotency_key,
        deadline_days: (deadline_days > 0).then_some(deadline_days),
        guarantee_physical,
    })
}

/// A legal hold: the subject, whether held, and why (required to hold).
pub fn legal_hold(r: pb::SetLegalHoldRequest) -> R<(ExternalId, bool, Option<String>)> {
    let pb::SetLegalHoldRequest { subject_id, hold, reason } = r;
    let id = ExternalId::parse("subject_id", &subject_id)?;
    let reason = if hold {
        Some(bounded_text("reason", &reason, MAX_REASON)?.to_owned())
    } else {
        optional_text("reason", &reason, MAX_REASON)?;
        None
    };
    Ok((id, hold, reason))
}

/// The identifiers and page size of a `SearchResiduals` request.
pub fn residual_search(r: pb::SearchResidualsRequest) -> R<(Vec<Identifier>, u32)> {
    let pb::SearchResidualsRequest { identifiers, limit: l } = r;
    if identifiers.is_empty() || identifiers.len() > MAX_SEARCH_IDENTIFIERS {
        return Err(InvalidInput::new("identifiers", format!("give 1 to {MAX_SEARCH_IDENTIFIERS} identifiers")));
    }
    let identifiers = identifiers
        .into_iter()
        .enumerate()
        .map(|(i, x)| identifier(&format!("identifiers[{i}]"), x))
        .collect::<R<Vec<_>>>()?;
    Ok((identifiers, limit("limit", l, 100, 1000)?))
}

pub fn job_status(s: &str) -> pb::JobStatus {
    match s.parse::<JobStatus>() {
        Ok(JobStatus::Queued) => pb::JobStatus::Queued,
        Ok(JobStatus::InProgress) => pb::JobStatus::InProgress,
        Ok(JobStatus::Completed) => pb::JobStatus::Completed,
        Ok(JobStatus::Failed) => pb::JobStatus::Failed,
        Ok(JobStatus::Refused) => pb::JobStatus::Refused,
        Err(_) => pb::JobStatus::Unspecified,
    }
}

pub fn status_filter(v: i32) -> R<Option<JobStatus>> {
    Ok(match pb::JobStatus::try_from(v) {
        Ok(pb::JobStatus::Unspecified) => None,
        Ok(pb::JobStatus::Queued) => Some(JobStatus::Queued),
        Ok(pb::JobStatus::InProgress) => Some(JobStatus::InProgress),
        Ok(pb::JobStatus::Completed) => Some(JobStatus::Completed),
        Ok(pb::JobStatus::Failed) => Some(JobStatus::Failed),
        Ok(pb::JobStatus::Refused) => Some(JobStatus::Refused),
        Err(_) => return Err(InvalidInput::new("status", "unknown status")),
    })
}

pub fn stage(s: &str) -> pb::Stage {
    match s.parse::<Stage>() {
        Ok(Stage::Freeze) => pb::Stage::Freeze,
        Ok(Stage::Plan) => pb::Stage::Plan,
        Ok(Stage::Delete) => pb::Stage::Delete,
        Ok(Stage::Verify) => pb::Stage::Verify,
        Ok(Stage::Residual) => pb::Stage::Residual,
        Ok(Stage::ForgetLineage) => pb::Stage::ForgetLineage,
        Ok(Stage::Physical) => pb::Stage::Physical,
        Ok(Stage::Log) => pb::Stage::Log,
        Ok(Stage::Done) => pb::Stage::Done,
        Err(_) => pb::Stage::Unspecified,
    }
}

fn backend(s: &str) -> i32 {
    match s.parse::<Backend>() {
        Ok(Backend::Pgvector) => pb::Backend::Pgvector as i32,
        Ok(Backend::Qdrant) => pb::Backend::Qdrant as i32,
        Err(_) => pb::Backend::Unspecified as i32,
    }
}

fn count(c: &CountRow) -> pb::CollectionCount {
    let u = |n: i64| u64::try_from(n).unwrap_or(0);
    let after = c.after_total.unwrap_or(0);
    pb::CollectionCount {
        collection: c.collection_name.clone(),
        backend: backend(&c.backend),
        before_by_tag: u(c.before_by_tag),
        before_by_ids: u(c.before_by_ids),
        before_total: u(c.before_total),
        deleted: if c.after_total.is_some() { u(c.before_total - after - c.deleted_elsewhere) } else { 0 },
        after_by_tag: u(c.after_by_tag.unwrap_or(0)),
        after_by_ids: u(c.after_by_ids.unwrap_or(0)),
        after_total: u(after),
        residual_found: u(c.residual_found),
        residual_deleted: u(c.residual_deleted),
        residual_redacted: u(c.residual_redacted),
        physical_status: c.physical_status.clone(),
        physical_detail: c.physical_detail.clone(),
        withheld: u(c.withheld),
        residual_withheld: u(c.residual_withheld),
    }
}

pub fn live_count(c: &LiveCount) -> pb::CollectionCount {
    pb::CollectionCount {
        collection: c.collection.clone(),
        backend: backend(&c.backend),
        before_by_tag: c.by_tag,
        before_by_ids: c.by_ids,
        before_total: c.total,
        ..Default::default()
    }
}

pub fn candidate(c: &Candidate) -> pb::ResidualCandidate {
    pb::ResidualCandidate {
        collection: c.collection.clone(),
        // An integer id of an attached store shows as the integer; other ids
        // as their UUID key (text ids of attached tables: see README).
        point_id: crate::domain::int_of_key(c.point_id).map_or_else(|| c.point_id.to_string(), |n| n.to_string()),
        source_id: c.source_id.clone(),
        score: c.score,
        evidence: c
            .evidence
            .iter()
            .map(|e| pb::ResidualEvidence {
                kind: e.kind.clone(),
                detail: e.detail.clone(),
                matched: e.matched.clone(),
                score: e.score,
            })
            .collect(),
        action: c.action.clone(),
    }
}

pub fn job(v: &JobView) -> pb::ErasureJob {
    let j = &v.job;
    let residuals: Vec<Candidate> = serde_json::from_value(j.residuals.clone()).unwrap_or_default();
    let status = job_status(&j.status);
    let terminal = matches!(status, pb::JobStatus::Completed | pb::JobStatus::Refused);
    pb::ErasureJob {
        job_id: j.job_id.to_string(),
        subject_id: v.subject_external_id.clone().unwrap_or_default(),
        subject_hash: hex::encode(&v.subject_hash),
        status: status as i32,
        stage: stage(&j.stage) as i32,
        requested_by: j.requested_by.clone(),
        reason: j.reason.clone(),
        residual_policy: match j.residual_policy.as_str() {
            "delete" => pb::ResidualPolicy::Delete,
            "redact" => pb::ResidualPolicy::Redact,
            _ => pb::ResidualPolicy::Report,
        } as i32,
        received_at: Some(timestamp(j.received_at)),
        started_at: j.started_at.map(timestamp),
        completed_at: j.completed_at.map(timestamp),
        deadline: Some(timestamp(j.deadline)),
        overdue: !terminal && j.deadline < chrono::Utc::now(),
        counts: v.counts.iter().map(count).collect(),
        error: j.error.clone().unwrap_or_default(),
        attempts: u32::try_from(j.attempts).unwrap_or(0),
        residuals: residuals.iter().map(candidate).collect(),
        guarantee_physical: j.guarantee_physical,
        notes: notes(&j.notes).into_iter().map(|n| pb::JobNote { code: n.code, stage: n.stage, message: n.message }).collect(),
        lineage_physical_status: j.lineage_physical_status.clone(),
        lineage_physical_detail: j.lineage_physical_detail.clone(),
        kind: j.kind.clone(),
        retention: v.retention.as_ref().map(|r| pb::RetentionTarget {
            collection: r.collection.clone(),
            sources: r.sources,
            withheld_sources: r.withheld_sources,
        }),
    }
}

/// A `SetRetention` request.
pub fn set_retention(r: pb::SetRetentionRequest) -> R<crate::retention::SetRule> {
    let pb::SetRetentionRequest { collection, days, source_kind, clear } = r;
    let collection = CollectionName::parse("collection", &collection)?;
    let max = crate::retention::MAX_DAYS;
    let days = u32::try_from(days)
        .ok()
        .filter(|d| *d <= max)
        .ok_or_else(|| InvalidInput::new("days", format!("must be between 0 and {max}")))?;
    let source_kind = optional_text("source_kind", &source_kind, MAX_SOURCE_KIND)?;
    let source_kind = (!source_kind.is_empty()).then(|| source_kind.to_owned());
    if clear && source_kind.is_none() {
        return Err(InvalidInput::new("clear", "removes a source kind's rule: give source_kind (days 0 turns the collection's off)"));
    }
    if clear && days > 0 {
        return Err(InvalidInput::new("days", "must be 0 with clear"));
    }
    Ok(crate::retention::SetRule { collection, days: (!clear).then_some(days), source_kind })
}

/// The optional collection of a preview or sweep.
pub fn retention_collection(s: &str) -> R<Option<CollectionName>> {
    if s.is_empty() { Ok(None) } else { CollectionName::parse("collection", s).map(Some) }
}

pub fn collection_retention(c: &crate::retention::CollectionRetention) -> pb::CollectionRetention {
    pb::CollectionRetention {
        collection: c.spec.name.to_string(),
        backend: backend(c.spec.backend.as_str()),
        days: c.spec.retention_days,
        source_kinds: c
            .kind_rules
            .iter()
            .map(|k| pb::SourceKindRule { source_kind: k.source_kind.clone(), days: u32::try_from(k.days).unwrap_or(0) })
            .collect(),
        supported: c.supported,
        last_swept_at: c.last_swept_at.map(timestamp),
        next_sweep_at: c.next_sweep_at.map(timestamp),
    }
}

pub fn retention_sweep(c: &crate::retention::CollectionSweep) -> pb::RetentionSweep {
    let u = |n: i64| u64::try_from(n).unwrap_or(0);
    let d = &c.due;
    pb::RetentionSweep {
        collection: c.collection.clone(),
        sources: u(d.sources),
        chunks: u(d.chunks),
        withheld_sources: u(d.withheld_sources),
        withheld_chunks: u(d.withheld_chunks),
        in_flight_sources: u(d.in_flight_sources),
        failed_sources: u(d.failed_sources),
        deferred_sources: u(c.deferred_sources),
        oldest: d.oldest.map(timestamp),
        job_ids: c.job_ids.iter().map(ToString::to_string).collect(),
    }
}

/// A job's notes as stored (a JSON array); anything unreadable is left out.
fn notes(stored: &serde_json::Value) -> Vec<crate::domain::JobNote> {
    serde_json::from_value(stored.clone()).unwrap_or_default()
}

pub fn event(e: &EventRow) -> pb::ErasureEvent {
    pb::ErasureEvent {
        job_id: e.job_id.to_string(),
        seq: u64::try_from(e.event_id).unwrap_or(0),
        stage: stage(&e.stage) as i32,
        status: job_status(&e.status) as i32,
        message: e.message.clone(),
        at: Some(timestamp(e.at)),
    }
}

pub fn log_entry(e: &LogRow) -> pb::LogEntry {
    pb::LogEntry {
        seq: u64::try_from(e.seq).unwrap_or(0),
        kind: e.kind.clone(),
        job_id: e.job_id.map(|j| j.to_string()).unwrap_or_default(),
        subject_hash: e.subject_hash.as_deref().map(hex::encode).unwrap_or_default(),
        body: e.body.clone(),
        prev_hash: hex::encode(&e.prev_hash),
        entry_hash: hex::encode(&e.entry_hash),
        created_at: Some(timestamp(e.created_at)),
        hash_version: u32::try_from(e.hash_version).unwrap_or(0),
    }
}

pub fn signed_head(h: &crate::audit::SignedHead) -> pb::SignedLogHead {
    pb::SignedLogHead {
        size: u64::try_from(h.size).unwrap_or(0),
        head_hash: hex::encode(&h.head_hash),
        signed_at: Some(timestamp(h.signed_at)),
        key_id: h.key_id.clone(),
        statement: h.statement(),
        signature: crate::erasure::b64(&h.signature),
    }
}

/// A pinned head from VerifyDeletionLog (none when not given).
pub fn pinned_head(size: u64, hash: &str) -> R<Option<crate::audit::PinnedHead>> {
    if size == 0 && hash.is_empty() {
        return Ok(None);
    }
    let size = i64::try_from(size).map_err(|_| InvalidInput::new("pinned_size", "too large"))?;
    if size == 0 {
        return Err(InvalidInput::new("pinned_size", "must be given with pinned_head_hash"));
    }
    let head_hash = hex::decode(hash.trim())
        .ok()
        .filter(|h| h.len() == 32)
        .ok_or_else(|| InvalidInput::new("pinned_head_hash", "must be 64 hex digits (SHA-256)"))?;
    Ok(Some(crate::audit::PinnedHead { size, head_hash }))
}

pub fn subject_out(s: &SubjectRow, identifier_count: i64) -> pb::Subject {
    pb::Subject {
        id: s.external_id.clone().unwrap_or_default(),
        state: s.state.clone(),
        legal_hold: s.legal_hold,
        identifier_count: u32::try_from(identifier_count).unwrap_or(0),
    }
}

/// A page size in `1..=max`, `default` when 0.
pub fn limit(field: &str, v: u32, default: u32, max: u32) -> R<u32> {
    match v {
        0 => Ok(default),
        v if v <= max => Ok(v),
        _ => Err(InvalidInput::new(field, format!("must be at most {max}"))),
    }
}

pub fn reindex_mode(v: i32) -> R<crate::reindex::ReindexMode> {
    match pb::ReindexMode::try_from(v) {
        Ok(pb::ReindexMode::Unspecified | pb::ReindexMode::Copy) => Ok(crate::reindex::ReindexMode::Copy),
        Ok(pb::ReindexMode::Reembed) => Ok(crate::reindex::ReindexMode::Reembed),
        Err(_) => Err(InvalidInput::new("mode", "unknown re-index mode")),
    }
}

pub fn reindex_job(r: &crate::store::reindex::ReindexRow, collection: &str) -> pb::ReindexJob {
    let u = |n: i64| u64::try_from(n).unwrap_or(0);
    pb::ReindexJob {
        job_id: r.job_id.to_string(),
        collection: collection.to_owned(),
        mode: if r.mode == "reembed" { pb::ReindexMode::Reembed } else { pb::ReindexMode::Copy } as i32,
        status: job_status(&r.status) as i32,
        stage: r.stage.clone(),
        total: u(r.total),
        copied: u(r.copied),
        missing: u(r.missing),
        excluded: u(r.excluded),
        final_count: u(r.final_count.unwrap_or(0)),
        error: r.error.clone().unwrap_or_default(),
        received_at: Some(timestamp(r.received_at)),
        started_at: r.started_at.map(timestamp),
        completed_at: r.completed_at.map(timestamp),
        orphans_dropped: u(r.orphans_dropped),
        physical_detail: r.physical_detail.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str) -> pb::IngestChunk {
        pb::IngestChunk { source_id: "s1".into(), text: text.into(), ..Default::default() }
    }

    #[test]
    fn ingest_rejects_empty_oversized_and_too_many_chunks() {
        assert!(ingest_chunks(vec![chunk("hello")]).is_ok());
        assert_eq!(ingest_chunks(vec![]).unwrap_err().field, "chunks");
        assert_eq!(ingest_chunks(vec![chunk("")]).unwrap_err().field, "chunks[0].text");
        assert_eq!(ingest_chunks(vec![chunk(&"x".repeat(MAX_TEXT + 1))]).unwrap_err().field, "chunks[0].text");
        assert_eq!(ingest_chunks(vec![chunk("a"); MAX_CHUNKS + 1]).unwrap_err().field, "chunks");
        let mut bad_id = chunk("a");
        bad_id.point_id = "not-a-uuid".into();
        assert_eq!(ingest_chunks(vec![bad_id]).unwrap_err().field, "chunks[0].point_id");
    }

    #[test]
    fn erase_requires_a_subject_and_a_requester() {
        let ok = pb::EraseRequest {
            subject: Some(pb::SubjectRef { id: "u1".into(), identifiers: vec![] }),
            requested_by: "dpo@example.com".into(),
            ..Default::default()
        };
        assert!(erase(ok.clone()).is_ok());
        assert_eq!(erase(pb::EraseRequest { subject: None, ..ok.clone() }).unwrap_err().field, "subject");
        assert_eq!(erase(pb::EraseRequest { requested_by: String::new(), ..ok.clone() }).unwrap_err().field, "requested_by");
        let bad_email = pb::EraseRequest {
            subject: Some(pb::SubjectRef {
                id: "u1".into(),
                identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: "nobody".into() }],
            }),
            ..ok
        };
        assert_eq!(erase(bad_email).unwrap_err().field, "subject.identifiers[0].value");
    }

    #[test]
    fn collections_need_a_backend_and_a_sane_dimension() {
        let ok = pb::CreateCollectionRequest {
            name: "mail".into(),
            backend: pb::Backend::Pgvector as i32,
            dimension: 384,
            ..Default::default()
        };
        assert!(new_collection(ok.clone()).is_ok());
        assert_eq!(new_collection(pb::CreateCollectionRequest { backend: 0, ..ok.clone() }).unwrap_err().field, "backend");
        assert_eq!(new_collection(pb::CreateCollectionRequest { dimension: 0, ..ok.clone() }).unwrap_err().field, "dimension");
        assert_eq!(new_collection(pb::CreateCollectionRequest { name: "a b".into(), ..ok }).unwrap_err().field, "name");
    }
}
