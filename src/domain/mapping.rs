//! Attached collections: where a store that Lethe did not create keeps each
//! point's id, vector, text, source and the person's tag, and how the ids of
//! such stores (UUIDs, integers, any text) become the UUID keys that lineage
//! names points by.
//!
//! A mapping is data, stored with the collection (JSON) and read by the
//! attached backends (`vector_store::attached_pg`, `vector_store::qdrant::attached`),
//! which are the only code that turns it into SQL or filters.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The type of a store's point ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdKind {
    /// `uuid` columns, Qdrant UUID ids.
    Uuid,
    /// `bigint`/`integer` columns, Qdrant numeric ids.
    Int,
    /// `text`/`varchar` columns (pgvector only).
    Text,
}

impl IdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uuid => "uuid",
            Self::Int => "int",
            Self::Text => "text",
        }
    }
}

/// How a value is stored where a [`Field`] points (pgvector: the column's
/// type; Qdrant: always `Payload`). Filled in by the backend at Attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Not yet checked against the store.
    #[default]
    Unknown,
    /// `text`/`varchar` (a tag: equal to the subject id).
    Text,
    /// `text[]`/`varchar[]` (a tag: one of the elements).
    TextArray,
    /// `jsonb`, read at `path`.
    Jsonb,
    /// `json`, read at `path` (compared through a cast to jsonb).
    Json,
    /// `uuid` (scope columns such as LangChain's `collection_id`).
    Uuid,
    /// `bigint`/`integer`.
    Int,
    /// A Qdrant payload key path.
    Payload,
    /// `timestamptz`, `timestamp` or `date` (a point's time of writing).
    Timestamp,
}

/// A place in a point: a column (pgvector) and a key path inside it (JSON
/// columns, Qdrant payloads), optionally followed by a key path inside a
/// JSON document stored as a string there (LlamaIndex's `_node_content`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Field {
    /// pgvector column; empty for Qdrant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub column: String,
    /// Keys inside the column's JSON or the Qdrant payload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// Keys inside the JSON text found at `path` (read only: text and
    /// source; tags are never matched inside JSON text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_text_path: Vec<String>,
    #[serde(default)]
    pub kind: FieldKind,
}

impl Field {
    pub fn column(name: &str) -> Self {
        Self { column: name.to_owned(), ..Self::default() }
    }

    pub fn at(column: &str, path: &[&str]) -> Self {
        Self { column: column.to_owned(), path: path.iter().map(|s| (*s).to_owned()).collect(), ..Self::default() }
    }

    /// `column.key.key` (pgvector) or `key.key` (Qdrant), then `#key.key` for
    /// a JSON text: the form errors and warnings show.
    pub fn display(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if !self.column.is_empty() {
            parts.push(&self.column);
        }
        parts.extend(self.path.iter().map(String::as_str));
        let mut s = parts.join(".");
        if !self.json_text_path.is_empty() {
            s.push('#');
            s.push_str(&self.json_text_path.join("."));
        }
        s
    }
}

/// A fixed condition every point of the collection meets (LangChain's
/// `collection_id` of one named collection in its shared table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub field: Field,
    pub value: String,
    /// LangChain's collection name, when the scope is the `collection_id`
    /// of the collection so named: the condition follows the name to the
    /// collection's current uuid (a pipeline that deletes and creates its
    /// collection again gets a new one; `value` keeps the uuid at attach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named: Option<String>,
}

/// Where an attached store keeps what erasure needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// The preset it came from (`langchain-pgvector`, …), for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// pgvector: the id column; Qdrant: empty (ids are the points' ids).
    pub id_column: String,
    pub id_kind: IdKind,
    /// pgvector: the vector column; Qdrant: the vector's name (empty: the unnamed vector).
    pub vector: String,
    pub text: Option<Field>,
    /// Where the point's source (document) id is; points without one are
    /// their own source.
    pub source: Option<Field>,
    /// Where the subject tag is: a string or an array of strings (either, row by row).
    pub tags: Field,
    pub scope: Option<Scope>,
    /// Where the time the point was written is (retention measures a
    /// source's age from its oldest point's): a timestamp column, or an RFC
    /// 3339 / ISO 8601 text or seconds (or milliseconds) since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Field>,
}

impl Scope {
    /// A scope value as the store compares it, in one spelling: a `uuid`
    /// column reads `{6F9…}`, `urn:uuid:6f9…` and `6f9…` without hyphens as
    /// one uuid, an integer column `07` and `+7` as 7. Stored that way, one
    /// set of rows has one scope key, and two attachments of it (two
    /// tenants, each erasing the other's points) cannot pass as disjoint.
    ///
    /// # Errors
    /// When the value is not of the column's type.
    pub fn canonical_value(kind: FieldKind, value: &str) -> Result<String, String> {
        match kind {
            FieldKind::Uuid => Uuid::parse_str(value).map(|u| u.to_string()).map_err(|_| "is not a UUID".to_owned()),
            FieldKind::Int => value.parse::<i64>().map(|n| n.to_string()).map_err(|_| "is not an integer".to_owned()),
            _ => Ok(value.to_owned()),
        }
    }
}

impl Mapping {
    /// The uniqueness key of the attached object beside its name (its scope value).
    pub fn scope_key(&self) -> String {
        self.scope
            .as_ref()
            .map(|s| match &s.named {
                Some(name) => format!("{}=name:{name}", s.field.display()),
                None => format!("{}={}", s.field.display(), s.value),
            })
            .unwrap_or_default()
    }
}

/// The time a mapped timestamp field holds: RFC 3339, `YYYY-MM-DD HH:MM:SS[.f][±TZ]`
/// (UTC without a zone), `YYYY-MM-DD`, or seconds since the epoch (from
/// 10¹¹ on, milliseconds: no point was written in the year 5138).
pub fn parse_timestamp(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    // Outside 1900 .. now + 1 day a store's value is no write time (and before
    // 4713 BC PostgreSQL cannot even hold it): such a point counts from its adoption.
    let earliest = chrono::DateTime::from_timestamp(-2_208_988_800, 0)?;
    let latest = chrono::Utc::now() + chrono::Duration::days(1);
    read_timestamp(s).filter(|t| (earliest..=latest).contains(t))
}

fn read_timestamp(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        if !n.is_finite() {
            return None;
        }
        let secs = if n.abs() >= 1e11 { n / 1000.0 } else { n };
        let millis = (secs * 1000.0).round();
        #[allow(clippy::cast_possible_truncation)]
        return DateTime::from_timestamp_millis(millis as i64);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

/// A store's own id of a point.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NativeId {
    Uuid(Uuid),
    Int(i64),
    Text(String),
}

/// The first 4 bytes of the key of an integer id; the next 4 are the
/// collection's (ids repeat across stores: every LlamaIndex table counts
/// from 1), the last 8 the id, big endian: keys of integer ids decode
/// without a lookup.
const INT_KEY_MARKER: [u8; 4] = *b"lt#n";

/// Namespace of the UUIDv5 keys of text ids that are not canonical UUIDs.
const TEXT_KEY_NAMESPACE: Uuid = Uuid::from_u128(0x6c65_7468_6523_7400_8000_0000_0000_0001);

impl NativeId {
    /// Parses the wire form of an id of `kind`.
    ///
    /// # Errors
    /// A message when `s` is not an id of that kind.
    pub fn parse(kind: IdKind, s: &str) -> Result<Self, String> {
        match kind {
            IdKind::Uuid => Uuid::parse_str(s).map(Self::Uuid).map_err(|_| "is not a UUID".to_owned()),
            IdKind::Int => s.parse::<i64>().map(Self::Int).or_else(|_| s.parse::<u64>().map(|u| Self::Int(u as i64)))
                .map_err(|_| "is not an integer id".to_owned()),
            IdKind::Text if s.is_empty() => Err("a point id cannot be empty".into()),
            IdKind::Text => Ok(Self::Text(s.to_owned())),
        }
    }

    /// [`parse`](Self::parse) for a store of `backend`: a pgvector integer
    /// id is a `bigint`, so one above `i64::MAX` names no row (read as
    /// Qdrant's unsigned ids are, it would wrap to a negative row's id).
    ///
    /// # Errors
    /// A message when `s` is not an id of that kind in that store.
    pub fn parse_in(backend: super::Backend, kind: IdKind, s: &str) -> Result<Self, String> {
        if backend == super::Backend::Pgvector && kind == IdKind::Int {
            return s.parse::<i64>().map(Self::Int).map_err(|_| "is not a bigint id".to_owned());
        }
        Self::parse(kind, s)
    }

    /// The UUID that lineage names the point of collection `collection_id`
    /// by (unique in the tenant, as lineage needs): the id itself for UUIDs
    /// and for text ids that are canonical UUIDs (what LangChain writes), the
    /// integer behind a marker and the collection, else a version-8 hash of
    /// the collection and the text (whose id then needs `attached_point_ids`
    /// to be found again).
    pub fn key(&self, collection_id: Uuid) -> Uuid {
        match self {
            Self::Uuid(u) => *u,
            Self::Int(n) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&INT_KEY_MARKER);
                b[4..8].copy_from_slice(&collection_id.as_bytes()[..4]);
                b[8..].copy_from_slice(&n.to_be_bytes());
                Uuid::from_bytes(b)
            }
            Self::Text(s) => match canonical_uuid(s) {
                Some(u) => u,
                None => {
                    // A UUIDv5 of the collection and the text with the version
                    // set to 8, so that it is told apart from UUID texts
                    // (LangChain's are v4 or v5).
                    let mut named = collection_id.as_bytes().to_vec();
                    named.extend_from_slice(s.as_bytes());
                    let mut b = *Uuid::new_v5(&TEXT_KEY_NAMESPACE, &named).as_bytes();
                    b[6] = (b[6] & 0x0f) | 0x80;
                    Uuid::from_bytes(b)
                }
            },
        }
    }

    /// Whether [`key`](Self::key) cannot be turned back into this id without a lookup.
    pub fn needs_lookup(&self) -> bool {
        matches!(self, Self::Text(s) if canonical_uuid(s).is_none())
    }

    /// The id from its key, when the key alone says it (UUIDs, integers,
    /// canonical UUID texts); `None` for the key of another text id.
    pub fn from_key(kind: IdKind, key: Uuid) -> Option<Self> {
        match kind {
            IdKind::Uuid => Some(Self::Uuid(key)),
            IdKind::Int => int_of_key(key).map(Self::Int),
            IdKind::Text => (key.get_version_num() != 8).then(|| Self::Text(key.to_string())),
        }
    }

    /// The wire form (`Display`).
    pub fn as_string(&self) -> String {
        match self {
            Self::Uuid(u) => u.to_string(),
            Self::Int(n) => n.to_string(),
            Self::Text(s) => s.clone(),
        }
    }
}

impl std::fmt::Display for NativeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_string())
    }
}

/// The integer inside an integer id's key.
pub fn int_of_key(key: Uuid) -> Option<i64> {
    let b = key.as_bytes();
    (b[..4] == INT_KEY_MARKER).then(|| i64::from_be_bytes(b[8..].try_into().unwrap_or([0; 8])))
}

/// `s` when it is a UUID in the form `Uuid::to_string` writes (lower case,
/// hyphenated), so that the key's string is the id again.
fn canonical_uuid(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s).ok().filter(|u| u.to_string() == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keys_decode_without_a_lookup() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for n in [0i64, 1, 42, -7, i64::MAX, i64::MIN] {
            let key = NativeId::Int(n).key(a);
            assert_eq!(NativeId::from_key(IdKind::Int, key), Some(NativeId::Int(n)));
            assert_ne!(key, NativeId::Int(n).key(b), "ids repeat across stores, keys do not");
        }
        assert_eq!(int_of_key(Uuid::new_v4()), None);
    }

    #[test]
    fn canonical_uuid_texts_are_their_own_keys_and_other_texts_need_a_lookup() {
        let (c, other) = (Uuid::new_v4(), Uuid::new_v4());
        let u = Uuid::new_v4();
        let id = NativeId::Text(u.to_string());
        assert_eq!(id.key(c), u);
        assert!(!id.needs_lookup());
        assert_eq!(NativeId::from_key(IdKind::Text, u), Some(id));

        let upper = NativeId::Text(u.to_string().to_uppercase());
        assert!(upper.needs_lookup());
        assert_ne!(upper.key(c), u);
        assert_eq!(NativeId::from_key(IdKind::Text, upper.key(c)), None);
        let named = NativeId::Text("alice@example.com#3".into());
        assert!(named.needs_lookup());
        assert_eq!(named.key(c), NativeId::Text("alice@example.com#3".into()).key(c));
        assert_ne!(named.key(c), named.key(other));
    }

    #[test]
    fn ids_parse_by_kind() {
        assert_eq!(NativeId::parse(IdKind::Int, "18446744073709551615"), Ok(NativeId::Int(-1)));
        assert!(NativeId::parse(IdKind::Int, "x").is_err());
        assert!(NativeId::parse_in(crate::domain::Backend::Pgvector, IdKind::Int, "18446744073709551615").is_err());
        assert_eq!(NativeId::parse_in(crate::domain::Backend::Qdrant, IdKind::Int, "18446744073709551615"), Ok(NativeId::Int(-1)));
        assert_eq!(NativeId::parse_in(crate::domain::Backend::Pgvector, IdKind::Int, "-1"), Ok(NativeId::Int(-1)));
        assert!(NativeId::parse(IdKind::Uuid, "12").is_err());
        assert!(NativeId::parse(IdKind::Text, "").is_err());
    }

    #[test]
    fn timestamps_parse_in_the_forms_stores_keep_them() {
        let t = |s: &str| parse_timestamp(s).map(|t| t.to_rfc3339());
        let noon = Some("2024-03-01T12:00:00+00:00".to_owned());
        assert_eq!(t("2024-03-01T12:00:00Z"), noon);
        assert_eq!(t("2024-03-01T14:00:00+02:00"), noon);
        assert_eq!(t("2024-03-01 12:00:00+00"), noon, "PostgreSQL's text of a timestamptz");
        assert_eq!(t("2024-03-01 12:00:00"), noon);
        assert_eq!(t("2024-03-01T12:00:00.000"), noon);
        assert_eq!(t("1709294400"), noon, "seconds");
        assert_eq!(t("1709294400.0"), noon);
        assert_eq!(t("1709294400000"), noon, "milliseconds");
        assert_eq!(t("2024-03-01"), Some("2024-03-01T00:00:00+00:00".to_owned()));
        // Out of any write time's range (PostgreSQL cannot hold the first two).
        for bad in ["", "soon", "2024-13-01", "NaN", "inf", "-7000000000000000", "-10000-01-01 00:00:00", "1800-01-01", "9999-01-01"] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn fields_display_as_paths() {
        let f = Field { column: "metadata_".into(), path: vec!["_node_content".into()], json_text_path: vec!["text".into()], kind: FieldKind::Json };
        assert_eq!(f.display(), "metadata_._node_content#text");
    }
}
