//! Rows of attached tables read back as points: the native id and its key,
//! the payload Lethe reads from the mapped fields, and the lookup rows of
//! text ids whose key is a hash (`attached_point_ids`).

use pgvector::Vector;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Row};
use uuid::Uuid;

use super::sql::Target;
use crate::domain::{Field, IdKind, NativeId, parse_timestamp};
use crate::vector_store::{PointPayload, StoredPoint};

/// A point with the store's own id.
pub(super) struct RowPoint {
    pub native: NativeId,
    pub point: StoredPoint,
}

/// Decodes a row selected with [`Target::columns`].
pub(super) fn decode(t: &Target<'_>, row: &PgRow, with_vector: bool) -> Result<RowPoint, sqlx::Error> {
    let native = match t.mapping.id_kind {
        IdKind::Uuid => NativeId::Uuid(row.try_get("lethe_id")?),
        IdKind::Int => NativeId::Int(row.try_get("lethe_id")?),
        IdKind::Text => NativeId::Text(row.try_get("lethe_id")?),
    };
    let text = field_text(t.mapping.text.as_ref(), row.try_get("lethe_text")?);
    let source = field_text(t.mapping.source.as_ref(), row.try_get("lethe_source")?)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| native.as_string());
    let subjects = subjects(row.try_get::<Option<Value>, _>("lethe_tags")?);
    let vector = if with_vector { row.try_get::<Option<Vector>, _>("lethe_vector")?.map(|v| v.to_vec()) } else { None };
    let written_at = field_text(t.mapping.timestamp.as_ref(), row.try_get("lethe_written")?).and_then(|s| parse_timestamp(&s));
    let point = StoredPoint {
        id: native.key(t.spec.collection_id),
        payload: PointPayload { tenant_id: t.spec.tenant_id, source_id: source, subjects, text },
        vector,
        written_at,
    };
    Ok(RowPoint { native, point })
}

/// The value read at a field's path, then inside the JSON text there when
/// the field says so (None when that text is not JSON or lacks the key).
fn field_text(field: Option<&Field>, value: Option<String>) -> Option<String> {
    let value = value?;
    match field {
        Some(f) if !f.json_text_path.is_empty() => in_json_text(&value, &f.json_text_path),
        _ => Some(value),
    }
}

/// The string (or number) at `path` inside the JSON document `text`.
pub(super) fn in_json_text(text: &str, path: &[String]) -> Option<String> {
    let doc: Value = serde_json::from_str(text).ok()?;
    let mut at = &doc;
    for key in path {
        at = match at {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    scalar_text(at)
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The subjects a tag value names: a string is one, an array its string
/// (and integer) elements; integers count because the tag filter matches them.
pub(super) fn subjects(tags: Option<Value>) -> Vec<String> {
    let integer = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    };
    match tags {
        Some(Value::Array(items)) => items.iter().filter_map(integer).collect(),
        Some(v) => integer(&v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Records the key → id rows of the text ids among `points` whose key is a
/// hash, so that the keys Lethe hands out can be turned back into ids. A
/// row read again is marked as in use (at most every half hour: a scan of a
/// large store would otherwise rewrite every row), so the sweep of rows
/// without lineage (an hour old: `store::attach::sweep_unlinked_point_ids`)
/// never takes one a scroll or a job is using.
pub(super) async fn remember(
    db: impl PgExecutor<'_>,
    collection_id: Uuid,
    points: &[RowPoint],
) -> Result<(), sqlx::Error> {
    let (keys, ids): (Vec<Uuid>, Vec<String>) =
        points.iter().filter(|p| p.native.needs_lookup()).map(|p| (p.point.id, p.native.as_string())).unzip();
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        r#"
        INSERT INTO attached_point_ids AS a (collection_id, point_key, native_id)
        SELECT $1, u.key, u.id
        FROM UNNEST($2::uuid[], $3::text[]) AS u(key, id)
        ON CONFLICT (collection_id, point_key) DO UPDATE SET recorded_at = now()
        WHERE a.recorded_at < now() - interval '30 minutes'
        "#,
    )
    .bind(collection_id)
    .bind(&keys)
    .bind(&ids)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes the key → id rows of deleted text ids (an id may name a person).
pub(super) async fn forget(db: impl PgExecutor<'_>, collection_id: Uuid, ids: Vec<String>) -> Result<(), sqlx::Error> {
    let keys: Vec<Uuid> = ids.into_iter().map(NativeId::Text).filter(NativeId::needs_lookup).map(|n| n.key(collection_id)).collect();
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM attached_point_ids WHERE collection_id = $1 AND point_key = ANY($2)")
        .bind(collection_id)
        .bind(&keys)
        .execute(db)
        .await?;
    Ok(())
}

/// The native id a scroll offset (a key) names, when it names one here.
pub(super) async fn native_of_key(
    db: impl PgExecutor<'_>,
    kind: IdKind,
    collection_id: Uuid,
    key: Uuid,
) -> Result<Option<NativeId>, sqlx::Error> {
    if let Some(id) = NativeId::from_key(kind, key) {
        return Ok(Some(id));
    }
    if kind != IdKind::Text {
        return Ok(None);
    }
    let found: Option<String> =
        sqlx::query_scalar("SELECT native_id FROM attached_point_ids WHERE collection_id = $1 AND point_key = $2")
            .bind(collection_id)
            .bind(key)
            .fetch_optional(db)
            .await?;
    // A text id that is itself the text of a version-8 UUID is its own key.
    Ok(Some(NativeId::Text(found.unwrap_or_else(|| key.to_string()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_inside_json_text_is_read_by_path() {
        let node = r#"{"id_": "n1", "text": "Alice wrote this", "metadata": {"page": 3}}"#;
        assert_eq!(in_json_text(node, &["text".into()]), Some("Alice wrote this".into()));
        assert_eq!(in_json_text(node, &["metadata".into(), "page".into()]), Some("3".into()));
        assert_eq!(in_json_text(node, &["missing".into()]), None);
        assert_eq!(in_json_text("not json", &["text".into()]), None);
    }

    #[test]
    fn subjects_are_strings_and_integers_of_a_value_or_an_array() {
        assert_eq!(subjects(Some(serde_json::json!("alice"))), vec!["alice"]);
        assert_eq!(subjects(Some(serde_json::json!(["alice", 7, null, {"x": 1}, "bob"]))), vec!["alice", "7", "bob"]);
        assert_eq!(subjects(Some(serde_json::json!({"x": 1}))), Vec::<String>::new());
        assert_eq!(subjects(None), Vec::<String>::new());
    }
}
