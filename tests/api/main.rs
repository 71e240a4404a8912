//! End-to-end tests over gRPC against real Postgres+pgvector and the Qdrant
//! stand-in (or a real Qdrant at QDRANT_URL). Run with `scripts/test.sh`.

mod attach;
mod attach_pg_store;
mod audit;
mod auth;
mod bad_input;
mod browser;
mod crash;
mod erased_stays_erased;
mod erasure;
mod health;
mod helpers;
mod hostile;
mod idempotency;
mod leases;
mod legal_hold;
mod log_heads;
mod no_plaintext;
mod physical;
mod physical_truth;
mod reindex;
mod reindex_resume;
mod residual;
mod residual_index;
mod residual_bounds;
mod residual_progress;
mod retention;
mod safe_defaults;
mod service_role;
mod suppression;
mod tenant_keys;
mod tenants;
mod web;
mod web_http;
