//! Attaching stores that already exist (issue 13): a LangChain or
//! LlamaIndex store, or a hand-made pgvector table or Qdrant collection,
//! registered as a Lethe collection with a mapping, then adopted (lineage
//! built by a scan) and erased from like any collection.

pub mod presets;
