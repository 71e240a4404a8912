//! The loop every leased job queue runs in the service (adoption, reconcile):
//! take a step, wait for a wake-up or the poll interval when there was
//! nothing to do, log and back off when the queue cannot be read; until
//! `shutdown`. Off with the erase workers (`erasure.workers: 0`: tests that
//! drive jobs themselves).

use std::future::Future;
use std::time::Duration;

use crate::context::Context;
use crate::error::Result;

/// Runs `step` (true: it did a job) until `shutdown` resolves; `queue` names
/// the queue in the log, `wake` is notified when a job is queued on it.
pub async fn run_until_stopped<F, Fut>(
    ctx: &Context,
    queue: &str,
    wake: &tokio::sync::Notify,
    mut step: F,
    shutdown: impl Future<Output = ()> + Send,
)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    if ctx.settings.erasure.workers == 0 {
        shutdown.await;
        return;
    }
    let poll = Duration::from_millis(ctx.settings.erasure.poll_interval_ms);
    let work = async {
        loop {
            match step().await {
                Ok(true) => {}
                Ok(false) => {
                    let _ = tokio::time::timeout(poll, wake.notified()).await;
                }
                Err(e) => {
                    tracing::error!(error.cause_chain = ?e, queue, "cannot read the queue");
                    tokio::time::sleep(poll).await;
                }
            }
        }
    };
    tokio::select! {
        () = work => {},
        () = shutdown => {},
    }
}
