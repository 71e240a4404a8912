//! Keeps the residual index's pending list short. A chunk's keys enter GIN's
//! pending list when the chunk is written (migration `20261202000080`): an
//! append, ~45 ms per 1,000 chunks of mail where writing them through the
//! index took 1.3–2.1 s. Merging the list is GIN's bulk insertion, a third
//! to a half of that work, and it is done here, off the write's path, as
//! soon as the list holds anything. Every query of the index reads the whole
//! pending list (a residual lookup pays ~2 µs per pending chunk), so the list
//! is not left to autovacuum.
//!
//! Every replica runs one; merges of one index wait for each other in
//! PostgreSQL, and the second finds little left. A write that finds the list
//! over its cap (16 MB) while no merge runs merges it itself, as before.
//!
//! Beside its merges it re-keys the texts an upgrade listed
//! (`index::rekey_listed`), so that a start after an upgrade serves at once.

use std::future::Future;
use std::time::Duration;

use super::index;
use crate::context::Context;
use crate::store::{StoreError, lineage};

/// Re-keys the texts an upgrade listed ([`index::rekey_listed`]: the
/// service serves meanwhile, and residual searches read those texts whole)
/// and, beside it, merges the pending list until `shutdown` resolves: again
/// at once after a merge that emptied pages, else after
/// `residual.index_merge_interval_ms`; no merging when that is 0, or when
/// the role may not merge (it does not own the index: said once, autovacuum
/// merges then). The two run together: the re-key's own keys enter the
/// pending list too, and writes should not find it full meanwhile.
pub async fn run_until_stopped(ctx: Context, shutdown: impl Future<Output = ()> + Send) {
    let work = async { tokio::join!(rekey(&ctx), merge(&ctx)) };
    tokio::pin!(shutdown);
    // A stop cuts a re-key batch short: its transaction rolls back and the
    // chunks stay listed for the next start (or another replica).
    tokio::select! {
        _ = work => shutdown.await,
        () = &mut shutdown => {},
    }
}

/// Merges the pending list, every `residual.index_merge_interval_ms`; returns
/// when that is 0 or when the role may not merge.
async fn merge(ctx: &Context) {
    let every = ctx.settings.residual.index_merge_interval_ms;
    if every == 0 {
        return;
    }
    let every = Duration::from_millis(every);
    loop {
        match lineage::merge_residual_index(&ctx.pool).await {
            Ok(pages) if pages > 0 => {
                tracing::debug!(pages, "residual index: pending list merged");
                continue;
            }
            Ok(_) => {}
            Err(StoreError::Unexpected(e)) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42501") => {
                tracing::warn!(
                    "the database role does not own the residual index (chunks_terms_idx): its pending list is \
                     merged by autovacuum and by the writes that find it full, and residual searches read it \
                     meanwhile"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(error.cause_chain = ?e, "merging the residual index's pending list failed");
                // Not a warning every 200 ms while the database is away.
                tokio::time::sleep(every.max(Duration::from_secs(5))).await;
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Runs [`index::rekey_listed`] until the list is empty: trying again after
/// a failure (the database away at start), and, while entries are left that
/// another replica has taken (`SKIP LOCKED` found none free), looking again
/// until they are gone: a replica stopped mid-batch leaves its entries
/// listed, and the others take them up.
async fn rekey(ctx: &Context) {
    if !ctx.settings.residual.rekey_listed {
        return;
    }
    loop {
        match index::rekey_listed(&ctx.pool).await {
            Ok(_) => match lineage::any_listed_for_rekey(&ctx.pool).await {
                Ok(false) => return,
                Ok(true) => {}
                Err(e) => tracing::warn!(error.cause_chain = ?e, "reading the residual index's re-key list failed"),
            },
            Err(e) => tracing::warn!(error.cause_chain = ?e, "re-keying the residual index failed; trying again in 5 s"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
