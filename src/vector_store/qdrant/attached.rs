//! Attached Qdrant collections: collections a framework (LangChain,
//! LlamaIndex) or a pipeline created, read and deleted from through the
//! collection's [`Mapping`](crate::domain::Mapping): any UUID or integer
//! ids, the tag at a payload path (string or array), the text at a payload
//! path or inside a JSON text there. Lethe never writes to them except to
//! delete erased points (and, when asked at Attach, to create the payload
//! index its tag filter needs).
//!
//! What the frameworks write (read from their code):
//! - LangChain (`langchain-qdrant` `QdrantVectorStore`): UUID ids, the
//!   unnamed vector (`vector_name=""`; hybrid adds a sparse `langchain-sparse`),
//!   payload `{"page_content": "…", "metadata": {…}}`: tag at `metadata.<key>`.
//! - LlamaIndex (`llama-index-vector-stores-qdrant`): UUID ids (node ids),
//!   the unnamed vector, or `text-dense` plus a sparse `text-sparse-new` in
//!   hybrid collections; payload: the node's metadata keys at the top level
//!   (the tag, e.g. `user_id`), `doc_id`/`ref_doc_id`/`document_id` (the
//!   source), and `_node_content`, the node as JSON text whose `text` key is
//!   the only copy of the chunk text.
//!
//! Point ids: lineage names every point by a UUID key. A UUID id is its own
//! key; an integer id `n` is the key of `NativeId::Int(n as i64)`, decoded
//! with `int_of_key`. Keys are turned back into ids by their form, not by the
//! mapping's `id_kind`, so a hand-made collection that mixes both kinds works.
//!
//! Every filter is a keyword match (`MatchValue::Keyword`: Qdrant matches a
//! string value and any element of an array value) on the mapped payload
//! path, and the mapping's scope is a keyword `must` in every request.

use qdrant_client::qdrant::vectors_config::Config as VectorsConfigKind;
use qdrant_client::qdrant::with_payload_selector::SelectorOptions as PayloadSelectorOptions;
use qdrant_client::qdrant::with_vectors_selector::SelectorOptions as VectorsSelectorOptions;
use qdrant_client::qdrant::{
    CollectionInfo, PayloadIncludeSelector, PayloadSchemaType, Range, VectorOutput, VectorsSelector,
};

use super::*;
use crate::domain::{Field, FieldKind, IdKind, Mapping, NativeId, int_of_key};
use crate::vector_store::Inspection;

/// Points per scroll page when `retrieve` reads ids (bounded by `ID_CHUNK`).
const RETRIEVE_CHUNK: usize = ID_CHUNK;

/// Attached collections over the same client as [`QdrantStore`].
#[derive(Clone, Debug)]
pub struct AttachedQdrantStore {
    inner: QdrantStore,
}

impl AttachedQdrantStore {
    pub fn new(inner: QdrantStore) -> Self {
        Self { inner }
    }
}

/// A collection's mapping turned into payload keys and conditions.
struct Layout<'a> {
    /// The collection (or alias) as the framework created it.
    name: &'a str,
    /// Lethe's id of the collection (integer ids' keys carry it).
    collection_id: Uuid,
    mapping: &'a Mapping,
    /// The tag's payload key in Qdrant's path syntax (`metadata.user_id`).
    tag_key: String,
    /// `scope.field = scope.value`, added as a `must` to every filter.
    scope: Option<Condition>,
    /// Top-level payload keys the reads need, in Qdrant's syntax (the rest
    /// is not fetched); `None`: the whole payload.
    payload_keys: Option<Vec<String>>,
}

impl<'a> Layout<'a> {
    fn of(spec: &'a CollectionSpec) -> Result<Self> {
        let mapping = spec.mapping.as_deref().ok_or_else(|| {
            backend_error(format!("`{}` is not an attached collection (no mapping)", spec.backend_name), None)
        })?;
        let tag_key = payload_key(&mapping.tags.path).map_err(|m| invalid("tags", m))?;
        if !mapping.tags.json_text_path.is_empty() {
            return Err(invalid("tags", "tags are matched in the store, not inside a JSON text"));
        }
        let scope = match &mapping.scope {
            Some(s) if !s.field.json_text_path.is_empty() => {
                return Err(invalid("scope", "a scope is matched in the store, not inside a JSON text"));
            }
            Some(s) => Some(keyword(&payload_key(&s.field.path).map_err(|m| invalid("scope", m))?, &s.value)),
            None => None,
        };
        let mut payload_keys: Option<Vec<String>> = Some(Vec::new());
        let fields = [Some(&mapping.tags), mapping.text.as_ref(), mapping.source.as_ref(), mapping.timestamp.as_ref()];
        for first in fields.into_iter().flatten().filter_map(|f| f.path.first()) {
            match (payload_key(std::slice::from_ref(first)), payload_keys.as_mut()) {
                (Ok(key), Some(keys)) if !keys.contains(&key) => keys.push(key),
                (Ok(_), _) => {}
                // A key Qdrant's paths cannot name: read whole payloads.
                (Err(_), _) => payload_keys = None,
            }
        }
        Ok(Self { name: &spec.backend_name, collection_id: spec.collection_id, mapping, tag_key, scope, payload_keys })
    }

    /// `conditions` plus the scope, as one filter.
    fn filter(&self, mut must: Vec<Condition>) -> Filter {
        must.extend(self.scope.clone());
        Filter { must, ..Filter::default() }
    }

    /// The scope alone (`None`: the whole collection).
    fn scope_filter(&self) -> Option<Filter> {
        self.scope.clone().map(|c| Filter { must: vec![c], ..Filter::default() })
    }

    /// Disjoint filters for what `selector` selects except `keep`, each within the scope.
    fn selector_filters(&self, selector: &Selector, keep: &Keep) -> Vec<Filter> {
        if selector.is_empty() {
            return Vec::new();
        }
        let ids: Vec<PointId> =
            selector.ids.iter().copied().collect::<BTreeSet<_>>().into_iter().map(native_point_id).collect();
        let filters = tag_or_ids_filters(&self.tag_key, selector.tag.as_deref(), &ids);
        let keep_ids: Vec<PointId> = keep.ids.iter().copied().map(native_point_id).collect();
        let mut filters = keeping_at(filters, &self.tag_key, &keep.tags, &keep_ids);
        if let Some(scope) = &self.scope {
            for f in &mut filters {
                f.must.push(scope.clone());
            }
        }
        filters
    }

    fn with_payload(&self) -> PayloadSelectorOptions {
        match &self.payload_keys {
            Some(fields) => PayloadSelectorOptions::Include(PayloadIncludeSelector { fields: fields.clone() }),
            None => PayloadSelectorOptions::Enable(true),
        }
    }

    /// The mapped vector only (all vectors for the unnamed one: a selector
    /// naming `""` is not something every server version accepts).
    fn with_vectors(&self, with_vectors: bool) -> VectorsSelectorOptions {
        if with_vectors && !self.mapping.vector.is_empty() {
            VectorsSelectorOptions::Include(VectorsSelector { names: vec![self.mapping.vector.clone()] })
        } else {
            VectorsSelectorOptions::Enable(with_vectors)
        }
    }

    fn stored_point(&self, point: RetrievedPoint, with_vectors: bool, owner: Uuid) -> Result<StoredPoint> {
        let (id, native) = key_of_point_id(self.collection_id, point.id.as_ref())?;
        let payload = mapped_payload(self.mapping, &point.payload, owner, &native);
        let vector = if with_vectors { mapped_vector(point.vectors, &self.mapping.vector)? } else { None };
        let written_at = mapped_timestamp(self.mapping, &point.payload);
        Ok(StoredPoint { id, payload, vector, written_at })
    }
}

fn invalid(field: &str, message: impl Into<String>) -> VectorStoreError {
    VectorStoreError::InvalidMapping { field: field.to_owned(), message: message.into() }
}

fn unsupported_write(what: &str) -> VectorStoreError {
    VectorStoreError::Unsupported(format!(
        "{what} is not possible on an attached collection: its framework writes it; Lethe only deletes erased points from it"
    ))
}

/// A payload key path in Qdrant's syntax: keys joined by `.`, each quoted
/// unless made of letters, digits, `_` and `-` only (Qdrant's JSON path
/// grammar, which has no escapes: a key with `"` or `\` cannot be named).
pub(super) fn payload_key(path: &[String]) -> std::result::Result<String, String> {
    if path.is_empty() {
        return Err("a payload key is required".into());
    }
    let mut out = String::new();
    for (i, key) in path.iter().enumerate() {
        if key.is_empty() {
            return Err("a payload key cannot be empty".into());
        }
        if key.contains(['"', '\\']) {
            return Err(format!("the payload key `{key}` (with `\"` or `\\`) cannot be named in a Qdrant filter"));
        }
        if i > 0 {
            out.push('.');
        }
        if key.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
            out.push_str(key);
        } else {
            out.push('"');
            out.push_str(key);
            out.push('"');
        }
    }
    Ok(out)
}

/// The keys of a payload key written in Qdrant's syntax (`a."b c"`), `None`
/// for paths with array indexes (they never name the tag field).
pub(super) fn parse_payload_key(s: &str) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    let mut rest = s;
    loop {
        let (key, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if key.is_empty() {
            return None;
        }
        keys.push(key.to_owned());
        if after.is_empty() {
            return Some(keys);
        }
        rest = after.strip_prefix('.')?;
    }
}

/// The Qdrant id of a key: an integer id's key decodes to the integer, any
/// other key is a UUID id.
pub(super) fn native_point_id(key: Uuid) -> PointId {
    match int_of_key(key) {
        Some(n) => PointId::from(n as u64),
        None => point_id(key),
    }
}

/// A point's key and its id as the collection writes it.
pub(super) fn key_of_point_id(collection_id: Uuid, id: Option<&PointId>) -> Result<(Uuid, NativeId)> {
    let native = match id.and_then(|id| id.point_id_options.as_ref()) {
        Some(PointIdOptions::Uuid(s)) => NativeId::Uuid(
            Uuid::parse_str(s).map_err(|e| backend_error(format!("point id `{s}` is not a UUID: {e}"), None))?,
        ),
        Some(PointIdOptions::Num(n)) => NativeId::Int(*n as i64),
        None => return Err(backend_error("point without an id", None)),
    };
    Ok((native.key(collection_id), native))
}

/// The value at a payload path (keys through nested objects, as Qdrant reads it).
pub(super) fn value_at<'a>(payload: &'a HashMap<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = payload.get(first)?;
    for key in rest {
        match &value.kind {
            Some(Kind::StructValue(s)) => value = s.fields.get(key)?,
            _ => return None,
        }
    }
    Some(value)
}

/// Tags: a string or an integer is one (`42` is the tag `"42"`, as the
/// filters match it), an array gives its string and integer elements.
pub(super) fn tag_values(value: Option<&Value>) -> Vec<String> {
    let one = |v: &Value| match &v.kind {
        Some(Kind::StringValue(s)) => Some(s.clone()),
        Some(Kind::IntegerValue(n)) => Some(n.to_string()),
        _ => None,
    };
    match value.and_then(|v| v.kind.as_ref()) {
        Some(Kind::ListValue(list)) => list.values.iter().filter_map(one).collect(),
        Some(_) => value.and_then(one).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A source id: a string, or a number written out.
fn scalar_string(value: &Value) -> Option<String> {
    match value.kind.as_ref()? {
        Kind::StringValue(s) => Some(s.clone()),
        Kind::IntegerValue(n) => Some(n.to_string()),
        Kind::DoubleValue(d) if d.is_finite() => Some(d.to_string()),
        _ => None,
    }
}

/// The value a [`Field`] names: at its path, then inside the JSON text found
/// there when it has a `json_text_path` (a JSON text that does not parse,
/// or lacks the keys, gives nothing).
fn field_value(payload: &HashMap<String, Value>, field: &Field) -> Option<FieldValue> {
    let value = value_at(payload, &field.path)?;
    if field.json_text_path.is_empty() {
        return Some(FieldValue::Qdrant(value.clone()));
    }
    match value.kind.as_ref()? {
        Kind::StringValue(text) => {
            let parsed: serde_json::Value = serde_json::from_str(text).ok()?;
            let mut json = &parsed;
            for key in &field.json_text_path {
                json = json.as_object()?.get(key)?;
            }
            Some(FieldValue::Json(json.clone()))
        }
        // A document stored as an object rather than as JSON text: the same keys.
        Kind::StructValue(_) => {
            let mut value = value;
            for key in &field.json_text_path {
                match &value.kind {
                    Some(Kind::StructValue(s)) => value = s.fields.get(key)?,
                    _ => return None,
                }
            }
            Some(FieldValue::Qdrant(value.clone()))
        }
        _ => None,
    }
}

enum FieldValue {
    Qdrant(Value),
    Json(serde_json::Value),
}

impl FieldValue {
    fn text(&self) -> Option<String> {
        match self {
            Self::Qdrant(v) => match v.kind.as_ref()? {
                Kind::StringValue(s) => Some(s.clone()),
                _ => None,
            },
            Self::Json(v) => v.as_str().map(str::to_owned),
        }
    }

    fn scalar(&self) -> Option<String> {
        match self {
            Self::Qdrant(v) => scalar_string(v),
            Self::Json(serde_json::Value::String(s)) => Some(s.clone()),
            Self::Json(serde_json::Value::Number(n)) => Some(n.to_string()),
            Self::Json(_) => None,
        }
    }
}

/// A point's payload through the mapping: the owner as tenant (the
/// collection is one tenant's), the source (else the point's own id), the
/// tags, the text.
pub(super) fn mapped_payload(
    mapping: &Mapping,
    payload: &HashMap<String, Value>,
    owner: Uuid,
    id: &NativeId,
) -> PointPayload {
    let source_id = mapping
        .source
        .as_ref()
        .and_then(|f| field_value(payload, f))
        .and_then(|v| v.scalar())
        .unwrap_or_else(|| id.as_string());
    let subjects = tag_values(value_at(payload, &mapping.tags.path));
    let text = mapping.text.as_ref().and_then(|f| field_value(payload, f)).and_then(|v| v.text());
    PointPayload { tenant_id: owner, source_id, subjects, text }
}

/// When the point was written, where the mapping says (a text or a number;
/// see `domain::parse_timestamp`); None without a field or a readable value.
pub(super) fn mapped_timestamp(mapping: &Mapping, payload: &HashMap<String, Value>) -> Option<chrono::DateTime<chrono::Utc>> {
    let value = field_value(payload, mapping.timestamp.as_ref()?)?.scalar()?;
    crate::domain::parse_timestamp(&value)
}

/// The mapped dense vector of a point; `None` when the point lacks it (a
/// named vector may be absent from some points).
#[allow(deprecated)]
pub(super) fn mapped_vector(vectors: Option<VectorsOutput>, name: &str) -> Result<Option<Vec<f32>>> {
    let output = match vectors.and_then(|v| v.vectors_options) {
        None => return Ok(None),
        Some(VectorsOptions::Vector(output)) if name.is_empty() => output,
        Some(VectorsOptions::Vector(_)) => return Ok(None),
        Some(VectorsOptions::Vectors(mut named)) => match named.vectors.remove(name) {
            Some(output) => output,
            None => return Ok(None),
        },
    };
    dense_of(output, name).map(Some)
}

#[allow(deprecated)]
fn dense_of(output: VectorOutput, name: &str) -> Result<Vec<f32>> {
    match output.vector {
        Some(vector_output::Vector::Dense(dense)) => Ok(dense.data),
        // Servers before 1.16 send the flat `data` field only.
        None if output.indices.is_none() && output.vectors_count.is_none() => Ok(output.data),
        _ => Err(backend_error(format!("the vector `{name}` is not dense"), None)),
    }
}

/// What the collection's vector config says of the mapped vector.
struct VectorConfig {
    dimension: usize,
    distance: Option<Distance>,
    warning: Option<String>,
}

fn vector_config(info: &CollectionInfo, name: &str) -> Result<VectorConfig> {
    let params = info.config.as_ref().and_then(|c| c.params.as_ref());
    let dense = params.and_then(|p| p.vectors_config.as_ref()).and_then(|v| v.config.as_ref());
    let sparse: Vec<String> = params
        .and_then(|p| p.sparse_vectors_config.as_ref())
        .map(|s| {
            let mut names: Vec<String> = s.map.keys().cloned().collect();
            names.sort();
            names
        })
        .unwrap_or_default();
    let mut dense_names: Vec<String> = match dense {
        None => Vec::new(),
        Some(VectorsConfigKind::Params(_)) => vec![String::new()],
        Some(VectorsConfigKind::ParamsMap(m)) => m.map.keys().cloned().collect(),
    };
    dense_names.sort();
    let found = match dense {
        Some(VectorsConfigKind::Params(p)) if name.is_empty() => Some(p),
        Some(VectorsConfigKind::ParamsMap(m)) => m.map.get(name),
        _ => None,
    };
    let Some(params) = found else {
        let shown = |n: &String| if n.is_empty() { "the unnamed vector".to_owned() } else { format!("`{n}`") };
        let mut has: Vec<String> = dense_names.iter().map(shown).collect();
        has.extend(sparse.iter().map(|n| format!("`{n}` (sparse)")));
        let what = if name.is_empty() { "no unnamed vector".to_owned() } else { format!("no dense vector `{name}`") };
        let message = if sparse.iter().any(|s| s == name) {
            format!("`{name}` is a sparse vector; Lethe needs the dense vector the texts were embedded into")
        } else if has.is_empty() {
            format!("the collection has {what} and no vectors at all")
        } else {
            format!("the collection has {what}; it has {}", has.join(", "))
        };
        return Err(invalid("vector", message));
    };
    if params.multivector_config.is_some() {
        return Err(invalid("vector", "the vector is a multivector (several vectors per point); Lethe needs one dense vector per point"));
    }
    let dimension = usize::try_from(params.size).map_err(|_| invalid("vector", "the vector size is too large"))?;
    let (distance, warning) = match qdrant_client::qdrant::Distance::try_from(params.distance) {
        Ok(qdrant_client::qdrant::Distance::Cosine) => (Some(Distance::Cosine), None),
        Ok(qdrant_client::qdrant::Distance::Dot) => (Some(Distance::Dot), None),
        Ok(qdrant_client::qdrant::Distance::Euclid) => (Some(Distance::Euclid), None),
        Ok(other) => (
            None,
            Some(format!(
                "the vector's distance is {}, which Lethe does not score: choose the distance its residual threshold is written in",
                other.as_str_name()
            )),
        ),
        Err(_) => (None, Some(format!("the vector's distance ({}) is unknown", params.distance))),
    };
    Ok(VectorConfig { dimension, distance, warning })
}

/// The payload index on `path`, if any: its schema type.
fn index_on(info: &CollectionInfo, path: &[String]) -> Option<PayloadSchemaType> {
    info.payload_schema
        .iter()
        .find(|(key, _)| parse_payload_key(key).as_deref() == Some(path))
        .map(|(_, schema)| PayloadSchemaType::try_from(schema.data_type).unwrap_or(PayloadSchemaType::UnknownType))
}

impl AttachedQdrantStore {
    fn client(&self) -> &Qdrant {
        &self.inner.client
    }

    async fn count_filter(&self, name: &str, filter: Option<Filter>) -> Result<u64> {
        let mut request = CountPointsBuilder::new(name).exact(true).read_consistency(QdrantStore::read_all());
        if let Some(filter) = filter {
            request = request.filter(filter);
        }
        let response = self.client().count(request).await.map_err(|e| map_error(e, name))?;
        Ok(response.result.ok_or_else(|| backend_error("count response without a result", None))?.count)
    }

    /// One scroll page of `filter`, from `offset` (inclusive).
    async fn scroll_page(
        &self,
        layout: &Layout<'_>,
        filter: Option<Filter>,
        offset: Option<PointId>,
        limit: usize,
        with_vectors: bool,
    ) -> Result<(Vec<RetrievedPoint>, Option<PointId>)> {
        let mut request = ScrollPointsBuilder::new(layout.name)
            .limit(u32::try_from(limit).unwrap_or(u32::MAX))
            .with_payload(layout.with_payload())
            .with_vectors(layout.with_vectors(with_vectors))
            .read_consistency(QdrantStore::read_all());
        if let Some(filter) = filter {
            request = request.filter(filter);
        }
        if let Some(offset) = offset {
            request = request.offset(offset);
        }
        let response = self.client().scroll(request).await.map_err(|e| map_error(e, layout.name))?;
        Ok((response.result, response.next_page_offset))
    }

    async fn collection_info(&self, name: &str) -> Result<CollectionInfo> {
        let response = self.client().collection_info(name).await.map_err(|e| map_error(e, name))?;
        response.result.ok_or_else(|| backend_error("collection info response without a result", None))
    }

    /// `name`, the collection it is an alias of, and every alias of that
    /// collection (one listing of the aliases).
    async fn store_names(&self, name: &str) -> Result<Vec<String>> {
        let aliases = self.client().list_aliases().await.map_err(|e| map_error(e, name))?.aliases;
        let collection = aliases
            .iter()
            .find(|a| a.alias_name == name)
            .map_or_else(|| name.to_owned(), |a| a.collection_name.clone());
        let mut names = vec![collection.clone()];
        names.extend(aliases.into_iter().filter(|a| a.collection_name == collection).map(|a| a.alias_name));
        Ok(names)
    }

    /// Checks that some point in scope has `field` (a non-empty value at its
    /// path); the number of those points.
    async fn count_having(&self, layout: &Layout<'_>, key: &str) -> Result<u64> {
        let filter = Filter {
            must_not: vec![Condition::is_empty(key)],
            ..layout.filter(Vec::new())
        };
        self.count_filter(layout.name, Some(filter)).await
    }

    /// The id kind of the collection's points: integer ids sort before UUIDs
    /// in Qdrant's id order, so the first point says whether there are
    /// integers, and a scroll from the smallest UUID whether there are UUIDs.
    async fn id_kinds(&self, layout: &Layout<'_>) -> Result<(bool, bool)> {
        let (first, _) = self.scroll_page(layout, layout.scope_filter(), None, 1, false).await?;
        let has_int = matches!(
            first.first().and_then(|p| p.id.as_ref()).and_then(|id| id.point_id_options.as_ref()),
            Some(PointIdOptions::Num(_))
        );
        if !has_int {
            return Ok((false, !first.is_empty()));
        }
        let (uuids, _) = self.scroll_page(layout, layout.scope_filter(), Some(point_id(Uuid::nil())), 1, false).await?;
        Ok((true, !uuids.is_empty()))
    }

    /// The keyword index a filter on `path` needs: present, created (when
    /// asked), or a warning with the request that creates it.
    async fn ensure_keyword_index(
        &self,
        info: &CollectionInfo,
        name: &str,
        role: &str,
        path: &[String],
        create: bool,
        out: &mut Inspection,
    ) -> Result<()> {
        let key = payload_key(path).map_err(|m| invalid(role, m))?;
        match index_on(info, path) {
            // A UUID index serves keyword matches of UUID values as well.
            Some(PayloadSchemaType::Keyword | PayloadSchemaType::Uuid) => return Ok(()),
            Some(other) => {
                // Creating a keyword index would replace it (and what the
                // framework uses it for): only say so.
                out.warnings.push(format!(
                    "the {role} key `{key}` of `{name}` has a {} payload index, not a keyword index: each erasure's \
                     filter on it reads every point's payload. Lethe does not replace it (the framework may use it); \
                     a keyword index is `PUT /collections/{name}/index {}`",
                    other.as_str_name().to_lowercase(),
                    index_request(&key),
                ));
                return Ok(());
            }
            None => {}
        }
        if create {
            let request = CreateFieldIndexCollectionBuilder::new(name, key.clone(), FieldType::Keyword)
                .wait(true)
                .timeout(self.inner.server_timeout());
            let response = self.client().create_field_index(request).await.map_err(|e| map_error(e, name))?;
            check_completed(response.result, &format!("creating the keyword index on `{key}`"))?;
            tracing::info!(collection = name, field = key, "created a keyword payload index on an attached collection");
            out.created.push(format!("keyword payload index on `{key}` of `{name}`"));
        } else {
            out.warnings.push(format!(
                "no keyword payload index on the {role} key `{key}` of `{name}`: each erasure's filter reads every \
                 point's payload. Create it with `PUT /collections/{name}/index {}` (or attach with create_indexes)",
                index_request(&key),
            ));
        }
        Ok(())
    }
}

/// The REST body that creates a keyword index on `key`.
fn index_request(key: &str) -> String {
    serde_json::json!({ "field_name": key, "field_schema": "keyword" }).to_string()
}

fn with_payload_kind(mut field: Field) -> Field {
    field.kind = FieldKind::Payload;
    field
}

#[async_trait::async_trait]
impl VectorStore for AttachedQdrantStore {
    fn backend(&self) -> Backend {
        Backend::Qdrant
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn inspect(&self, spec: &CollectionSpec, create_indexes: bool) -> Result<Inspection> {
        let layout = Layout::of(spec)?;
        let name = layout.name;
        let mapping = layout.mapping;
        for (role, field) in
            [("text", mapping.text.as_ref()), ("source", mapping.source.as_ref()), ("timestamp", mapping.timestamp.as_ref())]
        {
            if let Some(f) = field {
                payload_key(&f.path).map_err(|m| invalid(role, m))?;
            }
        }
        let info = match self.collection_info(name).await {
            Ok(info) => info,
            Err(VectorStoreError::CollectionNotFound(_)) => {
                return Err(invalid("target", format!("Qdrant has no collection or alias `{name}`")));
            }
            Err(e) => return Err(e),
        };
        let vector = vector_config(&info, &mapping.vector)?;

        let mut inspected = mapping.clone();
        inspected.tags = with_payload_kind(inspected.tags);
        inspected.text = inspected.text.map(with_payload_kind);
        inspected.source = inspected.source.map(with_payload_kind);
        inspected.timestamp = inspected.timestamp.map(with_payload_kind);
        if let Some(scope) = &mut inspected.scope {
            scope.field.kind = FieldKind::Payload;
        }
        let mut out = Inspection {
            mapping: inspected,
            dimension: vector.dimension,
            distance: vector.distance,
            points: 0,
            warnings: vector.warning.into_iter().collect(),
            created: Vec::new(),
            store_names: self.store_names(name).await?,
        };

        out.points = self.count_filter(name, layout.scope_filter()).await?;
        if out.points == 0 {
            if let Some(scope) = &mapping.scope
                && self.count_filter(name, None).await? > 0
            {
                out.warnings.push(format!(
                    "no point of `{name}` has `{}` = `{}`: the attached collection is empty",
                    scope.field.display(),
                    scope.value
                ));
            }
        } else {
            let tags = mapping.tags.display();
            if self.count_having(&layout, &layout.tag_key).await? == 0 {
                return Err(invalid("tags", format!("no point in the collection has `{tags}`")));
            }
            // Keyword matches never match numbers: points tagged with a
            // number could not be erased by their tag.
            let numeric = Filter {
                must: vec![Condition::range(&layout.tag_key, Range { gte: Some(f64::MIN), ..Range::default() })],
                ..layout.filter(Vec::new())
            };
            let numbers = self.count_filter(name, Some(numeric)).await?;
            if numbers > 0 {
                return Err(invalid(
                    "tags",
                    format!(
                        "points with a number at `{tags}`: {numbers}; tags are matched as strings (a string or \
                         an array of strings), so those points could not be found by the person's id"
                    ),
                ));
            }
            // A path that holds objects names no tag (`owner` where the
            // person is `owner.person`): a keyword match never finds anyone.
            let having = Filter { must_not: vec![Condition::is_empty(&layout.tag_key)], ..layout.filter(Vec::new()) };
            let (sample, _) = self.scroll_page(&layout, Some(having), None, 100, false).await?;
            let holds_objects = sample.iter().any(|p| {
                value_at(&p.payload, &mapping.tags.path).is_some_and(|v| match &v.kind {
                    Some(Kind::StructValue(_)) => true,
                    Some(Kind::ListValue(l)) => l.values.iter().any(|x| matches!(x.kind, Some(Kind::StructValue(_)))),
                    _ => false,
                })
            });
            if holds_objects {
                return Err(invalid(
                    "tags",
                    format!("`{tags}` holds objects, not the person's id (a string or an array of strings): name the key inside"),
                ));
            }
            let fields = [("text", mapping.text.as_ref()), ("source", mapping.source.as_ref()), ("timestamp", mapping.timestamp.as_ref())];
            for (role, field) in fields {
                let Some(f) = field else { continue };
                let key = payload_key(&f.path).map_err(|m| invalid(role, m))?;
                if self.count_having(&layout, &key).await? == 0 {
                    if role == "timestamp" {
                        // A mistyped key would make every source look young forever.
                        return Err(invalid(role, format!("no point in the collection has `{}`", f.display())));
                    }
                    out.warnings.push(format!(
                        "no point in the collection has `{}`: {}",
                        f.display(),
                        if role == "text" { "points will have no text" } else { "each point will be its own source" }
                    ));
                }
            }
            let (has_int, has_uuid) = self.id_kinds(&layout).await?;
            out.mapping.id_kind = match (has_int, has_uuid) {
                (true, false) => IdKind::Int,
                (false, true) => IdKind::Uuid,
                (true, true) => {
                    out.warnings.push(format!(
                        "`{name}` has both integer and UUID point ids: both are erased, and ids given as text are \
                         read as UUIDs"
                    ));
                    IdKind::Uuid
                }
                (false, false) => out.mapping.id_kind,
            };
        }

        self.ensure_keyword_index(&info, name, "tag", &mapping.tags.path, create_indexes, &mut out).await?;
        if let Some(scope) = &mapping.scope {
            self.ensure_keyword_index(&info, name, "scope", &scope.field.path, create_indexes, &mut out).await?;
        }
        Ok(out)
    }

    async fn create_collection(&self, _spec: &CollectionSpec) -> Result<()> {
        Err(unsupported_write("creating the collection"))
    }

    async fn drop_collection(&self, _spec: &CollectionSpec) -> Result<()> {
        Err(unsupported_write("dropping the collection"))
    }

    async fn upsert(&self, _spec: &CollectionSpec, _points: &[VectorPoint]) -> Result<()> {
        Err(unsupported_write("writing points"))
    }

    async fn count(&self, spec: &CollectionSpec, selector: &Selector) -> Result<u64> {
        self.count_keeping(spec, selector, &Keep::default()).await
    }

    async fn count_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<u64> {
        let layout = Layout::of(spec)?;
        let mut total = 0u64;
        // The filters are disjoint: their counts add up to the selector's.
        for filter in layout.selector_filters(selector, keep) {
            total = total.saturating_add(self.count_filter(layout.name, Some(filter)).await?);
        }
        Ok(total)
    }

    /// The three counts concurrently (each as [`count`](VectorStore::count)).
    async fn count_tag_and_ids(&self, spec: &CollectionSpec, tag: Option<&str>, ids: &[Uuid]) -> Result<[u64; 3]> {
        let by_tag = Selector { tag: tag.map(str::to_owned), ids: Vec::new() };
        let by_ids = Selector::by_ids(ids.to_vec());
        let both = Selector { tag: tag.map(str::to_owned), ids: ids.to_vec() };
        let (a, b, c) =
            tokio::try_join!(self.count(spec, &by_tag), self.count(spec, &by_ids), self.count(spec, &both))?;
        Ok([a, b, c])
    }

    async fn count_all(&self, spec: &CollectionSpec) -> Result<u64> {
        let layout = Layout::of(spec)?;
        self.count_filter(layout.name, layout.scope_filter()).await
    }

    async fn delete(&self, spec: &CollectionSpec, selector: &Selector) -> Result<()> {
        self.delete_keeping(spec, selector, &Keep::default()).await
    }

    async fn delete_keeping(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<()> {
        let layout = Layout::of(spec)?;
        let name = layout.name;
        // Empty selector: no filters, no request.
        for filter in layout.selector_filters(selector, keep) {
            let request = DeletePointsBuilder::new(name)
                .points(filter)
                .wait(true)
                .ordering(QdrantStore::write_ordering())
                .timeout(self.inner.server_timeout());
            let response = self.client().delete_points(request).await.map_err(|e| map_error(e, name))?;
            check_completed(response.result, "delete")?;
        }
        Ok(())
    }

    /// Points by key, within the scope: a scroll filtered by the ids (and the
    /// scope), so that a point of another scope is not this collection's.
    async fn retrieve(&self, spec: &CollectionSpec, ids: &[Uuid], with_vectors: bool) -> Result<Vec<StoredPoint>> {
        let layout = Layout::of(spec)?;
        let unique: Vec<PointId> =
            ids.iter().copied().collect::<BTreeSet<_>>().into_iter().map(native_point_id).collect();
        let mut points = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(RETRIEVE_CHUNK) {
            let filter = layout.filter(vec![Condition::has_id(chunk.to_vec())]);
            let (page, _) = self.scroll_page(&layout, Some(filter), None, chunk.len(), with_vectors).await?;
            for point in page {
                points.push(layout.stored_point(point, with_vectors, spec.tenant_id)?);
            }
        }
        Ok(points)
    }

    /// Qdrant pages in point-id order (integer ids first, then UUIDs). The
    /// returned offset is the key of the FIRST point of the next page
    /// (Qdrant's offset is inclusive): pass it back unchanged.
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
        let layout = Layout::of(spec)?;
        let offset = offset.map(native_point_id);
        let (page, next) = self.scroll_page(&layout, layout.scope_filter(), offset, limit, with_vectors).await?;
        let mut points = Vec::with_capacity(page.len());
        for point in page {
            points.push(layout.stored_point(point, with_vectors, spec.tenant_id)?);
        }
        let next = next.map(|id| key_of_point_id(spec.collection_id, Some(&id)).map(|(key, _)| key)).transpose()?;
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
        let layout = Layout::of(spec)?;
        let name = layout.name;
        let better = Better::for_distance(spec.distance);
        let mut best: HashMap<Uuid, ScoredPoint> = HashMap::new();
        for (chunk_index, chunk) in probes.chunks(PROBE_CHUNK).enumerate() {
            let queries: Vec<QueryPoints> = chunk
                .iter()
                .map(|probe| {
                    let mut query = QueryPointsBuilder::new(name)
                        .query(Query::new_nearest(probe.clone()))
                        // Exhaustive scan: HNSW is approximate and may miss a residual.
                        .params(SearchParamsBuilder::default().exact(true))
                        .score_threshold(threshold)
                        .limit(limit as u64)
                        .with_payload(layout.with_payload())
                        .with_vectors(false)
                        .read_consistency(QdrantStore::read_all())
                        .timeout(self.inner.server_timeout());
                    if !layout.mapping.vector.is_empty() {
                        query = query.using(layout.mapping.vector.clone());
                    }
                    if let Some(filter) = layout.scope_filter() {
                        query = query.filter(filter);
                    }
                    query.build()
                })
                .collect();
            for (i, batch) in self.inner.query_all(name, queries).await?.into_iter().enumerate() {
                let probe = chunk_index * PROBE_CHUNK + i;
                for hit in batch {
                    let (id, native) = key_of_point_id(spec.collection_id, hit.id.as_ref())?;
                    let payload = mapped_payload(layout.mapping, &hit.payload, spec.tenant_id, &native);
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

    /// Reports, writes nothing. Lethe reclaims its own Qdrant collections by
    /// re-indexing into a new generation behind an alias and deleting the
    /// old one; an attached collection is the framework's (its name is what
    /// the application opens), so Lethe neither rebuilds it nor changes its
    /// optimizer settings (they are the operator's). Re-triggering the
    /// optimizers with unchanged settings would add nothing: Qdrant already
    /// re-checks them after every update, the delete included.
    async fn reclaim(&self, spec: &CollectionSpec, guarantee: bool) -> Result<PhysicalOutcome> {
        let layout = Layout::of(spec)?;
        let name = layout.name;
        let info = self.collection_info(name).await?;
        let optimizer = info.config.as_ref().and_then(|c| c.optimizer_config.as_ref());
        let threshold = optimizer.and_then(|o| o.deleted_threshold).unwrap_or(0.2);
        let min_vectors = optimizer.and_then(|o| o.vacuum_min_vector_number).unwrap_or(1000);
        let mut reason = format!(
            "Qdrant deletes are soft: the erased points' vectors and payloads stay in the segment files of the \
             attached collection `{name}` until Qdrant's vacuum optimizer rewrites their segments, which it does \
             in the background only for segments of at least {min_vectors} points whose deleted share exceeds \
             {threshold} (the collection's own settings, which Lethe leaves to its operator); the WAL and any \
             snapshot or backup keep them longer."
        );
        if guarantee {
            reason.push_str(
                " Lethe cannot guarantee their removal here: it rebuilds only the collections it created (a new \
                 generation behind an alias); an attached collection belongs to its framework. Lowering the \
                 collection's deleted_threshold (e.g. to 0) and vacuum_min_vector_number (to 100) makes the \
                 vacuum likelier; re-creating the collection from the sources removes them for certain.",
            );
        }
        Ok(PhysicalOutcome::Pending(reason))
    }

    async fn create_staging(&self, _spec: &CollectionSpec, _suffix: &str) -> Result<CollectionSpec> {
        Err(unsupported_write("re-indexing"))
    }

    async fn promote(&self, _live: &CollectionSpec, _staging: &CollectionSpec) -> Result<String> {
        Err(unsupported_write("re-indexing"))
    }

    async fn is_promoted(&self, _live: &CollectionSpec, _staging: &CollectionSpec) -> Result<bool> {
        Err(unsupported_write("re-indexing"))
    }

    async fn orphans(&self, _live: &CollectionSpec) -> Result<Vec<String>> {
        Err(unsupported_write("re-indexing"))
    }

    async fn drop_physical(&self, _physical_name: &str) -> Result<()> {
        Err(unsupported_write("dropping a collection"))
    }
}

#[cfg(test)]
mod tests {
    use qdrant_client::qdrant::condition::ConditionOneOf;

    use super::*;
    use crate::domain::Scope;

    fn s(v: &str) -> Value {
        string_value(v)
    }

    fn object(fields: &[(&str, Value)]) -> Value {
        Value {
            kind: Some(Kind::StructValue(qdrant_client::qdrant::Struct {
                fields: fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            })),
        }
    }

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|k| (*k).to_owned()).collect()
    }

    fn mapping() -> Mapping {
        Mapping {
            preset: None,
            id_column: String::new(),
            id_kind: IdKind::Uuid,
            vector: String::new(),
            text: Some(Field { path: path(&["_node_content"]), json_text_path: path(&["text"]), ..Field::default() }),
            source: Some(Field { path: path(&["ref_doc_id"]), ..Field::default() }),
            tags: Field { path: path(&["metadata", "user_id"]), ..Field::default() },
            scope: None,
            timestamp: None,
        }
    }

    #[test]
    fn payload_keys_quote_what_qdrant_cannot_read_raw() {
        assert_eq!(payload_key(&path(&["metadata", "user_id"])).unwrap(), "metadata.user_id");
        assert_eq!(payload_key(&path(&["meta data", "user.id"])).unwrap(), r#""meta data"."user.id""#);
        assert!(payload_key(&[]).is_err());
        assert!(payload_key(&path(&["a", ""])).is_err());
        assert!(payload_key(&path(&[r#"a"b"#])).is_err());
        for p in [path(&["metadata", "user_id"]), path(&["meta data", "user.id"]), path(&["x-y"])] {
            assert_eq!(parse_payload_key(&payload_key(&p).unwrap()), Some(p));
        }
        assert_eq!(parse_payload_key("tags[]"), None);
        assert_eq!(parse_payload_key(r#""a b".c"#), Some(path(&["a b", "c"])));
        assert_eq!(parse_payload_key("a..b"), None);
    }

    #[test]
    fn integer_and_uuid_ids_round_trip_through_keys() {
        for id in [PointId::from(42u64), PointId::from(u64::MAX), point_id(Uuid::new_v4())] {
            let (key, _) = key_of_point_id(Uuid::new_v4(), Some(&id)).unwrap();
            assert_eq!(native_point_id(key), id);
        }
        let (key, native) = key_of_point_id(Uuid::new_v4(), Some(&PointId::from(7u64))).unwrap();
        assert_eq!(native, NativeId::Int(7));
        assert_eq!(int_of_key(key), Some(7));
    }

    #[test]
    fn payloads_read_through_the_mapping() {
        let owner = Uuid::new_v4();
        let m = mapping();
        let payload: HashMap<String, Value> = [
            ("metadata".to_owned(), object(&[("user_id", s("Tim Belden"))])),
            ("_node_content".to_owned(), s(r#"{"id_": "n1", "text": "the chunk"}"#)),
            ("ref_doc_id".to_owned(), s("doc-7")),
        ]
        .into();
        let p = mapped_payload(&m, &payload, owner, &NativeId::Int(3));
        assert_eq!(p, PointPayload {
            tenant_id: owner,
            source_id: "doc-7".into(),
            subjects: vec!["Tim Belden".into()],
            text: Some("the chunk".into()),
        });

        // Arrays of tags (an integer is its digits, other kinds are left
        // out), numeric sources, JSON text that does not parse.
        let list = Value {
            kind: Some(Kind::ListValue(ListValue {
                values: vec![s("Ann"), Value { kind: Some(Kind::IntegerValue(5)) }, Value { kind: Some(Kind::BoolValue(true)) }, s("Bob")],
            })),
        };
        let payload: HashMap<String, Value> = [
            ("metadata".to_owned(), object(&[("user_id", list)])),
            ("_node_content".to_owned(), s("{not json")),
            ("ref_doc_id".to_owned(), Value { kind: Some(Kind::IntegerValue(12)) }),
        ]
        .into();
        let p = mapped_payload(&m, &payload, owner, &NativeId::Int(3));
        assert_eq!(p.subjects, vec!["Ann".to_owned(), "5".to_owned(), "Bob".to_owned()]);
        assert_eq!(p.source_id, "12");
        assert_eq!(p.text, None);

        // No source: the point is its own source.
        let p = mapped_payload(&m, &HashMap::new(), owner, &NativeId::Int(3));
        assert_eq!((p.source_id.as_str(), p.subjects.len(), p.text), ("3", 0, None));
    }

    #[test]
    fn filters_carry_the_scope_and_select_nothing_when_empty() {
        let mut m = mapping();
        m.scope = Some(Scope { field: Field { path: path(&["tenant"]), ..Field::default() }, value: "acme".into(), named: None });
        let spec = CollectionSpec {
            collection_id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            name: crate::domain::CollectionName::parse("name", "c").unwrap(),
            backend: Backend::Qdrant,
            backend_name: "c".into(),
            dimension: 4,
            distance: Distance::Cosine,
            embedding_model: "m".into(),
            store_text: true,
            retention_days: 0,
            screening: crate::domain::Screening::Accept,
            created_at: chrono::Utc::now(),
            mapping: Some(std::sync::Arc::new(m)),
        };
        let layout = Layout::of(&spec).unwrap();
        assert!(layout.selector_filters(&Selector { tag: None, ids: vec![] }, &Keep::default()).is_empty());
        let ids = vec![NativeId::Int(5).key(spec.collection_id), Uuid::new_v4()];
        let filters = layout.selector_filters(&Selector { tag: Some("Tim Belden".into()), ids }, &Keep::default());
        assert_eq!(filters.len(), 1);
        let scope_key = |c: &Condition| match &c.condition_one_of {
            Some(ConditionOneOf::Field(f)) => f.key.clone(),
            _ => String::new(),
        };
        assert_eq!(filters[0].must.iter().map(scope_key).collect::<Vec<_>>(), vec!["tenant".to_owned()]);
        match &filters[0].should[0].condition_one_of {
            Some(ConditionOneOf::Field(f)) => {
                assert_eq!(f.key, "metadata.user_id");
                assert_eq!(
                    f.r#match.as_ref().and_then(|m| m.match_value.clone()),
                    Some(MatchValue::Keyword("Tim Belden".into()))
                );
            }
            other => panic!("expected a keyword match, got {other:?}"),
        }
        match &filters[0].should[1].condition_one_of {
            Some(ConditionOneOf::HasId(h)) => assert!(h.has_id.contains(&PointId::from(5u64))),
            other => panic!("expected ids, got {other:?}"),
        }
    }
}
