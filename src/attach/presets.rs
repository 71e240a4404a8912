//! Presets: the mapping each framework's store needs, from the framework's
//! own schema (read from its released package), so that attaching a
//! LangChain or LlamaIndex store is one call with the metadata key that
//! holds the person.

use std::str::FromStr;

use crate::domain::{Backend, InvalidInput, Mapping};

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

/// The mapping of `preset` for `target` (the LangChain collection name, the
/// table or the Qdrant collection) with the person's id at `tag_key`
/// (`user_id`, or `metadata.user_id`: a leading `metadata.` names the
/// framework's metadata, wherever the framework keeps it).
///
/// # Errors
/// `InvalidInput` (`target`, `tag_key`) for values the preset cannot use.
pub fn resolve(preset: Preset, target: &str, tag_key: &str) -> Result<PresetTarget, InvalidInput> {
    let _ = (preset, target, tag_key);
    Err(InvalidInput::new("preset", "presets are not implemented yet"))
}
