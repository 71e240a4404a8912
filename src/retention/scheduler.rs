//! The retention scheduler: every replica runs one, and each tick claims
//! the collections whose sweep is due (`store::retention::claim_due`: one
//! replica wins each collection per interval) and sweeps them. Two sweeps
//! of a collection that overlap anyway (a `SweepRetention` at the same
//! moment) still give each source to one job, under the collection's sweep
//! lock. The jobs themselves run on the erase workers, with their leases.

use std::future::Future;
use std::time::Duration;

use crate::context::Context;
use crate::error::Result;
use crate::store::{lineage, retention as store};

/// Collections claimed per tick.
const CLAIM_LIMIT: i64 = 100;

/// Sweeps due collections every tick until `shutdown` resolves; idle when
/// `retention.enabled` is off. A sweep cut off by the shutdown is rolled
/// back (it writes its jobs in one transaction); its collection is due
/// again after the interval.
pub async fn run_until_stopped(ctx: Context, shutdown: impl Future<Output = ()> + Send) {
    if !ctx.settings.retention.enabled {
        shutdown.await;
        return;
    }
    let work = async {
        loop {
            match tick(&ctx).await {
                Ok(n) if n > 0 => tracing::debug!(collections = n, "retention sweep tick"),
                Ok(_) => {}
                Err(e) => tracing::error!(error.cause_chain = ?e, "retention sweep failed; retrying at the next tick"),
            }
            tokio::time::sleep(tick_every(&ctx)).await;
        }
    };
    tokio::select! {
        () = work => {},
        () = shutdown => {},
    }
}

/// How often due collections are looked for: the interval, at most a
/// minute (a rule set meanwhile is swept within a minute of being due).
fn tick_every(ctx: &Context) -> Duration {
    Duration::from_secs(ctx.settings.retention.interval_secs.clamp(1, 60))
}

/// Claims the due collections and sweeps them; returns how many.
///
/// # Errors
/// When the claim cannot be made; a collection whose sweep fails is logged
/// and swept again at its next interval.
pub async fn tick(ctx: &Context) -> Result<usize> {
    // A turn at the pool while the sweeps run (`Context::slot`).
    let _turn = ctx.slot().await;
    let interval = ctx.settings.retention.interval_secs as f64;
    let due = store::claim_due(&ctx.pool, interval, CLAIM_LIMIT).await?;
    for (tenant_id, collection_id) in &due {
        let Some(spec) = lineage::collection_by_id(&ctx.pool, *tenant_id, *collection_id).await? else { continue };
        if !super::supported(&spec) {
            continue;
        }
        match super::sweep_collection(ctx, &spec, "retention sweep (scheduled)").await {
            // A backlog beyond one sweep: due again at the next tick (the
            // sweep queues only as much as leaves room beside the jobs in flight).
            Ok(swept) if swept.deferred_sources > 0 => {
                store::record_swept(&ctx.pool, spec.tenant_id, spec.collection_id, tick_every(ctx).as_secs_f64()).await?;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(collection = %spec.name, error.cause_chain = ?e, "retention sweep of a collection failed"),
        }
    }
    Ok(due.len())
}
