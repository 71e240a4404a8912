//! Lethe: the erasure layer for vector databases.
//!
//! Lethe keeps a source → chunk → vector lineage for every vector a RAG
//! pipeline writes, erases a person's vectors from Qdrant or pgvector by tag
//! and by lineage ids with exact counts before and after, searches for what
//! lineage missed, and records every erasure in a hash-chained log with a
//! signed certificate.
//!
//! # Layout
//!
//! - [`grpc`]: the wire: generated types, the service, conversions, the one
//!   error → status mapping. [`auth`]: API keys and permissions.
//! - [`catalog`], [`ingest`], [`erasure`], [`residual`]: what clients ask
//!   for — collections, the write path, erase jobs and their stages, residual search.
//! - [`restore`]: the restore guard — the erasure ledger, its signed
//!   export and import, and Reconcile, which erases again what a restore
//!   brought back.
//! - [`identity`]: how an identifier is read (one canonical reading shared
//!   by suppression, residual search and [`screening`] of ingested text).
//! - [`audit`]: the deletion log's hash chain and certificate signatures.
//!   [`keys`]: the tenants' HMAC keys, wrapped under master keys kept
//!   outside the database.
//! - [`store`]: every SQL statement on Lethe's tables. [`vector_store`]: the
//!   backends behind one trait. [`embedding`]: the embedders.
//! - [`attach`]: existing framework stores (LangChain, LlamaIndex, hand-made)
//!   registered through a mapping and adopted into lineage.
//! - [`export`]: a subject's access export (everything held about them).
//! - [`retention`]: rules per collection and source kind, the sweep that
//!   queues sources past them as `retention` erase jobs, and its scheduler.
//! - [`web`]: the auditor's read-only pages and `/metrics` ([`metrics`]).
//! - [`config`], [`telemetry`], [`startup`], [`shutdown`], [`cli`]: the process;
//!   [`progress`] and [`operator`]: CLI commands that drive a running service.
#![forbid(unsafe_code)]

pub mod attach;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod context;
pub mod domain;
pub mod embedding;
pub mod erasure;
pub mod error;
pub mod export;
pub mod grpc;
pub mod identity;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod operator;
pub mod progress;
pub mod queue;
pub mod reindex;
pub mod residual;
pub mod restore;
pub mod retention;
pub mod screening;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod vector_store;
pub mod web;
