//! Presets: the mapping each framework's store needs, from the framework's
//! own schema (read from its released package), so that attaching a
//! LangChain or LlamaIndex store is one call with the metadata key that
//! holds the person.
//!
//! # What the frameworks write (langchain-postgres 0.0.19, langchain-qdrant
//! 1.1.0, llama-index-vector-stores-postgres 0.9.0 and -qdrant 0.10.4 on
//! llama-index-core 0.14)
//!
//! - **langchain-postgres `PGVector`** (`vectorstores.py`, deprecated but what
//!   most stores were written with): one shared table for every LangChain
//!   collection, `langchain_pg_embedding(id varchar PRIMARY KEY, collection_id
//!   uuid REFERENCES langchain_pg_collection(uuid) ON DELETE CASCADE, embedding
//!   vector` (the dimension only when `embedding_length` was given)`, document
//!   varchar, cmetadata jsonb)`, index `ix_cmetadata_gin` (GIN
//!   `jsonb_path_ops`: serves `@>` only), none on `collection_id`.
//!   `langchain_pg_collection(uuid uuid PRIMARY KEY, name varchar UNIQUE NOT
//!   NULL, cmetadata json)`. Ids are the caller's strings, else `uuid4()`
//!   text. Metadata is the caller's dict as is (a tag may be a string in one
//!   row and a list in the next). No source id of its own.
//! - **langchain-postgres `PGVectorStore`** (`v2/engine.py`): one table per
//!   store, created as `"<schema>"."<table>"` (quoted: case kept; schema
//!   `public` by default) with `langchain_id uuid PRIMARY KEY, content text NOT
//!   NULL, embedding vector(N) NOT NULL, langchain_metadata json` (json, not
//!   jsonb), plus the caller's `metadata_columns` (none by default: all
//!   metadata goes into `langchain_metadata`). No index. Ids `uuid4()`.
//! - **llama-index-vector-stores-postgres `PGVectorStore`** (`base.py`): the
//!   table name and schema are **lowercased**, the table is
//!   `<schema>.data_<table_name>` (schema `public`, table `llamaindex` by
//!   default) with `id bigint PRIMARY KEY` (autoincrement), `text varchar NOT
//!   NULL, metadata_ json` (jsonb only with `use_jsonb=True`), `node_id
//!   varchar` (LlamaIndex's own id, `uuid4()` text; neither unique nor
//!   indexed), `embedding vector(N)`; a btree index `<table_name>_idx_1` on
//!   `(metadata_->>'ref_doc_id')` (an HNSW index only with `hnsw_kwargs`).
//!   `metadata_` holds the node's metadata keys, `_node_content` (the whole
//!   node as JSON text, its `text` emptied), `_node_type`, and the source as
//!   `document_id`, `doc_id` and `ref_doc_id` (the string `"None"` when the
//!   node has no source).
//! - **langchain-qdrant `QdrantVectorStore`**: the unnamed vector by default
//!   (`vector_name=""`; sparse vectors are named `langchain-sparse`), payload
//!   `{page_content, metadata: {…caller's metadata}}`, ids `uuid4().hex`
//!   (Qdrant stores them as UUIDs).
//! - **llama-index-vector-stores-qdrant `QdrantVectorStore`**: the unnamed
//!   vector (hybrid collections: named `text-dense` beside a sparse one; give
//!   the name in the mapping), ids the node ids (UUIDs), payload = the node's
//!   metadata keys at the top level, `_node_content` (the whole node as JSON
//!   text: the chunk text lives only there, at `text`), `_node_type`,
//!   `document_id`, `doc_id` (keyword-indexed) and `ref_doc_id`.

use std::str::FromStr;

use crate::domain::{Backend, Field, IdKind, InvalidInput, Mapping, Scope};

/// A framework's store layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// langchain-postgres `PGVector` (the older, shared `langchain_pg_embedding` table).
    LangchainPgvector,
    /// langchain-postgres `PGVectorStore` (one table per store).
    LangchainPgvectorStore,
    /// llama-index-vector-stores-postgres `PGVectorStore` (table `data_<name>`).
    LlamaindexPgvector,
    /// langchain-qdrant `QdrantVectorStore`.
    LangchainQdrant,
    /// llama-index-vector-stores-qdrant `QdrantVectorStore`.
    LlamaindexQdrant,
}

impl Preset {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LangchainPgvector => "langchain-pgvector",
            Self::LangchainPgvectorStore => "langchain-pgvector-store",
            Self::LlamaindexPgvector => "llamaindex-pgvector",
            Self::LangchainQdrant => "langchain-qdrant",
            Self::LlamaindexQdrant => "llamaindex-qdrant",
        }
    }

    pub fn backend(self) -> Backend {
        match self {
            Self::LangchainPgvector | Self::LangchainPgvectorStore | Self::LlamaindexPgvector => Backend::Pgvector,
            Self::LangchainQdrant | Self::LlamaindexQdrant => Backend::Qdrant,
        }
    }
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::LangchainPgvector,
            Self::LangchainPgvectorStore,
            Self::LlamaindexPgvector,
            Self::LangchainQdrant,
            Self::LlamaindexQdrant,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| format!("unknown preset `{s}`"))
    }
}

/// Where a preset's store is and how it maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetTarget {
    /// Candidate backend names, first existing wins (LlamaIndex prefixes
    /// `data_` to the table name it is given; a caller may give either).
    pub backend_names: Vec<String>,
    /// The mapping. For `langchain-pgvector` the scope value is the
    /// LangChain collection **name**: Attach replaces it with its uuid.
    pub mapping: Mapping,
}

/// Longest `target` and longest key of `tag_key`, in bytes.
const MAX_TARGET: usize = 255;
const MAX_KEY: usize = 255;
/// Most keys in a field path (as `FieldPath` in the proto).
const MAX_KEYS: usize = 8;
/// Longest Postgres identifier (NAMEDATALEN - 1): a longer one is cut short
/// by Postgres, so it would name another table than the framework's.
const MAX_IDENTIFIER: usize = 63;

/// The mapping of `preset` for `target` (the LangChain collection name, the
/// table or the Qdrant collection) with the person's id at `tag_key`
/// (`user_id`, or `metadata.user_id`: a leading `metadata.` names the
/// framework's metadata, wherever the framework keeps it).
///
/// # Errors
/// `InvalidInput` (`target`, `tag_key`) for values the preset cannot use.
pub fn resolve(preset: Preset, target: &str, tag_key: &str) -> Result<PresetTarget, InvalidInput> {
    check_target(target)?;
    let keys = tag_keys(tag_key)?;
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (backend_names, mapping) = match preset {
        Preset::LangchainPgvector => (vec!["langchain_pg_embedding".to_owned()], langchain_pgvector(target, &key_refs)),
        Preset::LangchainPgvectorStore => (vec![table(target)?.to_string()], langchain_pgvector_store(&key_refs)),
        Preset::LlamaindexPgvector => (llamaindex_tables(table(target)?), llamaindex_pgvector(&key_refs)),
        Preset::LangchainQdrant => (vec![target.to_owned()], langchain_qdrant(&key_refs)?),
        Preset::LlamaindexQdrant => (vec![target.to_owned()], llamaindex_qdrant(&key_refs)),
    };
    Ok(PresetTarget { backend_names, mapping: Mapping { preset: Some(preset.as_str().to_owned()), ..mapping } })
}

/// The shared table, scoped to one LangChain collection by name. LangChain
/// has no source id of its own (a loader's `source` key is a file name, not
/// an id, and many stores lack it): each point is its own source.
fn langchain_pgvector(collection: &str, keys: &[&str]) -> Mapping {
    Mapping {
        preset: None,
        id_column: "id".into(),
        id_kind: IdKind::Text,
        vector: "embedding".into(),
        text: Some(Field::column("document")),
        source: None,
        tags: Field::at("cmetadata", keys),
        scope: Some(Scope { field: Field::column("collection_id"), value: collection.to_owned(), named: None }),
        timestamp: None,
    }
}

fn langchain_pgvector_store(keys: &[&str]) -> Mapping {
    Mapping {
        preset: None,
        id_column: "langchain_id".into(),
        id_kind: IdKind::Uuid,
        vector: "embedding".into(),
        text: Some(Field::column("content")),
        source: None,
        tags: Field::at("langchain_metadata", keys),
        scope: None,
        timestamp: None,
    }
}

/// `ref_doc_id` is the source key LlamaIndex indexes in this table.
fn llamaindex_pgvector(keys: &[&str]) -> Mapping {
    Mapping {
        preset: None,
        id_column: "id".into(),
        id_kind: IdKind::Int,
        vector: "embedding".into(),
        text: Some(Field::column("text")),
        source: Some(Field::at("metadata_", &["ref_doc_id"])),
        tags: Field::at("metadata_", keys),
        scope: None,
        timestamp: None,
    }
}

fn langchain_qdrant(keys: &[&str]) -> Result<Mapping, InvalidInput> {
    let mut path = vec!["metadata"];
    path.extend_from_slice(keys);
    if path.len() > MAX_KEYS {
        return Err(InvalidInput::new("tag_key", format!("must have at most {} keys under `metadata`", MAX_KEYS - 1)));
    }
    Ok(Mapping {
        preset: None,
        id_column: String::new(),
        id_kind: IdKind::Uuid,
        vector: String::new(),
        text: Some(Field::at("", &["page_content"])),
        source: None,
        tags: Field::at("", &path),
        scope: None,
        timestamp: None,
    })
}

/// The text is only inside `_node_content`; `doc_id` is the source key
/// LlamaIndex gives a payload index.
fn llamaindex_qdrant(keys: &[&str]) -> Mapping {
    Mapping {
        preset: None,
        id_column: String::new(),
        id_kind: IdKind::Uuid,
        vector: String::new(),
        text: Some(Field { json_text_path: vec!["text".into()], ..Field::at("", &["_node_content"]) }),
        source: Some(Field::at("", &["doc_id"])),
        tags: Field::at("", keys),
        scope: None,
        timestamp: None,
    }
}

fn check_target(target: &str) -> Result<(), InvalidInput> {
    if target.trim().is_empty() {
        return Err(InvalidInput::new("target", "must not be empty"));
    }
    if target.len() > MAX_TARGET {
        return Err(InvalidInput::new("target", format!("must be at most {MAX_TARGET} bytes, got {}", target.len())));
    }
    if target.chars().any(char::is_control) {
        return Err(InvalidInput::new("target", "must not contain control characters"));
    }
    Ok(())
}

/// Checks a pgvector target given without a preset as a preset's is
/// checked: a `[schema.]table` whose parts fit Postgres's identifiers (a
/// longer part would be truncated by Postgres into a table the allowlist
/// never saw).
///
/// # Errors
/// Why the target is refused (field `target`).
pub fn check_pgvector_target(target: &str) -> Result<(), InvalidInput> {
    check_target(target)?;
    table(target).map(|_| ())
}

/// A table named `[schema.]table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Table<'a> {
    schema: Option<&'a str>,
    name: &'a str,
}

impl std::fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(self.name),
        }
    }
}

fn table(target: &str) -> Result<Table<'_>, InvalidInput> {
    let (schema, name) = match target.split_once('.') {
        Some((s, n)) => (Some(s), n),
        None => (None, target),
    };
    for part in schema.into_iter().chain([name]) {
        if part.is_empty() || part.contains('.') {
            return Err(InvalidInput::new("target", "must be a table name, `table` or `schema.table`"));
        }
        if part.len() > MAX_IDENTIFIER {
            return Err(InvalidInput::new("target", format!("`{part}` is longer than {MAX_IDENTIFIER} bytes, Postgres's limit")));
        }
    }
    Ok(Table { schema, name })
}

/// What LlamaIndex creates for `table_name` (lowercased, `data_` in front;
/// the schema lowercased too), then the name as given, for a caller who gave
/// the table's own name (`data_docs`).
fn llamaindex_tables(given: Table<'_>) -> Vec<String> {
    let schema = given.schema.map(str::to_lowercase);
    let created = Table { schema: schema.as_deref(), name: &format!("data_{}", given.name.to_lowercase()) }.to_string();
    let mut names = vec![created];
    if names[0] != given.to_string() {
        names.push(given.to_string());
    }
    names
}

/// `tag_key` as keys: a leading `metadata.` removed, split on dots.
fn tag_keys(tag_key: &str) -> Result<Vec<String>, InvalidInput> {
    if tag_key.trim().is_empty() {
        return Err(InvalidInput::new("tag_key", "must not be empty"));
    }
    if tag_key.contains('\0') {
        return Err(InvalidInput::new("tag_key", "must not contain NUL characters"));
    }
    let rest = tag_key.strip_prefix("metadata.").unwrap_or(tag_key);
    let keys: Vec<String> = rest.split('.').map(str::to_owned).collect();
    if keys.iter().any(String::is_empty) {
        return Err(InvalidInput::new("tag_key", "must be keys separated by single dots, as `user_id` or `metadata.user.id`"));
    }
    if keys.len() > MAX_KEYS {
        return Err(InvalidInput::new("tag_key", format!("must have at most {MAX_KEYS} keys, got {}", keys.len())));
    }
    if let Some(k) = keys.iter().find(|k| k.len() > MAX_KEY) {
        return Err(InvalidInput::new("tag_key", format!("keys must be at most {MAX_KEY} bytes, got {}", k.len())));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FieldKind;

    fn ok(preset: Preset, target: &str, tag_key: &str) -> PresetTarget {
        resolve(preset, target, tag_key).unwrap_or_else(|e| panic!("{preset:?} {target} {tag_key}: {e}"))
    }

    fn field_of(e: InvalidInput) -> String {
        e.field
    }

    #[test]
    fn langchain_pgvector_maps_the_shared_table_scoped_to_the_collection_name() {
        let t = ok(Preset::LangchainPgvector, "my docs", "metadata.user_id");
        assert_eq!(t.backend_names, ["langchain_pg_embedding"]);
        let m = t.mapping;
        assert_eq!(m.preset.as_deref(), Some("langchain-pgvector"));
        assert_eq!((m.id_column.as_str(), m.id_kind, m.vector.as_str()), ("id", IdKind::Text, "embedding"));
        assert_eq!(m.text, Some(Field::column("document")));
        assert_eq!(m.source, None);
        assert_eq!(m.tags, Field::at("cmetadata", &["user_id"]));
        assert_eq!(m.scope, Some(Scope { field: Field::column("collection_id"), value: "my docs".into(), named: None }));
    }

    #[test]
    fn langchain_pgvector_store_maps_its_own_table_as_given() {
        let t = ok(Preset::LangchainPgvectorStore, "rag.MyStore", "user.id");
        assert_eq!(t.backend_names, ["rag.MyStore"]);
        let m = t.mapping;
        assert_eq!((m.id_column.as_str(), m.id_kind, m.vector.as_str()), ("langchain_id", IdKind::Uuid, "embedding"));
        assert_eq!(m.text, Some(Field::column("content")));
        assert_eq!(m.tags, Field::at("langchain_metadata", &["user", "id"]));
        assert_eq!(m.scope, None);
    }

    #[test]
    fn llamaindex_pgvector_mirrors_the_lowercased_data_table() {
        let t = ok(Preset::LlamaindexPgvector, "Docs", "user_id");
        assert_eq!(t.backend_names, ["data_docs", "Docs"]);
        let t = ok(Preset::LlamaindexPgvector, "docs", "user_id");
        assert_eq!(t.backend_names, ["data_docs", "docs"]);
        let t = ok(Preset::LlamaindexPgvector, "data_docs", "user_id");
        assert_eq!(t.backend_names, ["data_data_docs", "data_docs"]);
        let t = ok(Preset::LlamaindexPgvector, "RAG.Docs", "user_id");
        assert_eq!(t.backend_names, ["rag.data_docs", "RAG.Docs"]);
        let m = t.mapping;
        assert_eq!((m.id_column.as_str(), m.id_kind, m.vector.as_str()), ("id", IdKind::Int, "embedding"));
        assert_eq!(m.text, Some(Field::column("text")));
        assert_eq!(m.source, Some(Field::at("metadata_", &["ref_doc_id"])));
        assert_eq!(m.tags, Field::at("metadata_", &["user_id"]));
        assert_eq!(m.tags.kind, FieldKind::Unknown);
    }

    #[test]
    fn langchain_qdrant_keeps_metadata_under_its_key() {
        for key in ["user_id", "metadata.user_id"] {
            let t = ok(Preset::LangchainQdrant, "docs", key);
            assert_eq!(t.backend_names, ["docs"]);
            let m = t.mapping;
            assert_eq!((m.id_column.as_str(), m.id_kind, m.vector.as_str()), ("", IdKind::Uuid, ""));
            assert_eq!(m.text, Some(Field::at("", &["page_content"])));
            assert_eq!(m.tags, Field::at("", &["metadata", "user_id"]));
            assert_eq!(m.tags.display(), "metadata.user_id");
        }
    }

    #[test]
    fn llamaindex_qdrant_reads_the_text_inside_node_content_and_tags_at_the_top() {
        let m = ok(Preset::LlamaindexQdrant, "docs", "metadata.owner.id").mapping;
        assert_eq!((m.id_column.as_str(), m.id_kind, m.vector.as_str()), ("", IdKind::Uuid, ""));
        assert_eq!(m.text.map(|f| f.display()).as_deref(), Some("_node_content#text"));
        assert_eq!(m.source, Some(Field::at("", &["doc_id"])));
        assert_eq!(m.tags, Field::at("", &["owner", "id"]));
    }

    #[test]
    fn a_key_named_metadata_alone_is_a_key() {
        let m = ok(Preset::LlamaindexQdrant, "docs", "metadata").mapping;
        assert_eq!(m.tags, Field::at("", &["metadata"]));
    }

    #[test]
    fn bad_tag_keys_are_refused_naming_tag_key() {
        let long = "k".repeat(256);
        for key in ["", " ", "metadata.", "a..b", ".a", "a.", "a.b.c.d.e.f.g.h.i", long.as_str(), "a\0b"] {
            let e = resolve(Preset::LlamaindexQdrant, "docs", key).expect_err(key);
            assert_eq!(field_of(e), "tag_key", "{key:?}");
        }
        assert!(resolve(Preset::LlamaindexQdrant, "docs", "a.b.c.d.e.f.g.h").is_ok());
        assert!(resolve(Preset::LlamaindexQdrant, "docs", &"k".repeat(255)).is_ok());
        // langchain-qdrant puts one key of its own in front.
        let e = resolve(Preset::LangchainQdrant, "docs", "a.b.c.d.e.f.g.h").expect_err("9 keys");
        assert_eq!(field_of(e), "tag_key");
    }

    #[test]
    fn bad_targets_are_refused_naming_target() {
        let long = "t".repeat(256);
        for preset in [Preset::LangchainPgvector, Preset::LangchainPgvectorStore, Preset::LlamaindexPgvector, Preset::LangchainQdrant, Preset::LlamaindexQdrant] {
            for target in ["", "  ", long.as_str(), "a\nb"] {
                let e = resolve(preset, target, "user_id").expect_err(target);
                assert_eq!(field_of(e), "target", "{preset:?} {target:?}");
            }
        }
        let ident = "t".repeat(64);
        for preset in [Preset::LangchainPgvectorStore, Preset::LlamaindexPgvector] {
            for target in ["a.b.c", ".t", "s.", ident.as_str()] {
                let e = resolve(preset, target, "user_id").expect_err(target);
                assert_eq!(field_of(e), "target", "{preset:?} {target:?}");
            }
        }
        // A LangChain collection name and a Qdrant collection are not tables.
        assert!(resolve(Preset::LangchainPgvector, "a.b.c", "user_id").is_ok());
        assert!(resolve(Preset::LangchainQdrant, "a.b.c", "user_id").is_ok());
    }

    #[test]
    fn presets_parse_from_their_names_and_say_their_backend() {
        for p in [Preset::LangchainPgvector, Preset::LangchainPgvectorStore, Preset::LlamaindexPgvector, Preset::LangchainQdrant, Preset::LlamaindexQdrant] {
            assert_eq!(p.as_str().parse::<Preset>(), Ok(p));
        }
        assert!("langchain".parse::<Preset>().is_err());
        assert_eq!(Preset::LlamaindexQdrant.backend(), Backend::Qdrant);
        assert_eq!(Preset::LangchainPgvectorStore.backend(), Backend::Pgvector);
    }
}
