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

/// Runs `work` (a job's stage) while its lease is renewed on schedule: at
/// `renew_at`, then `every` after each renewal's answer. `renew` starts a
/// renewal; `still_held` reads its answer (false: the lease is lost, the
/// work is dropped and `None` returned).
///
/// The renewal runs beside the work, never instead of it. A renewal can
/// wait on the work: for a row the stage's own open transaction holds, or
/// for a pooled connection the stage holds. Awaited in the place of the
/// work (as the workers did), it waited forever for a stage that was no
/// longer polled: a worker hung for good (two crash tests, on a loaded
/// machine). A renewal in flight when the work ends is dropped.
pub async fn beside_renewals<T, R, F>(
    work: impl Future<Output = T>,
    renew_at: &mut tokio::time::Instant,
    every: Duration,
    mut renew: impl FnMut() -> F,
    mut still_held: impl FnMut(R) -> bool,
) -> Option<T>
where
    F: Future<Output = R>,
{
    use futures::future::{FusedFuture, FutureExt};
    tokio::pin!(work);
    let renewal = futures::future::Fuse::terminated();
    tokio::pin!(renewal);
    loop {
        tokio::select! {
            out = &mut work => return Some(out),
            answer = &mut renewal, if !renewal.is_terminated() => {
                *renew_at = tokio::time::Instant::now() + every;
                if !still_held(answer) {
                    return None;
                }
            }
            () = tokio::time::sleep_until(*renew_at), if renewal.is_terminated() => renewal.set(renew().fuse()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn soon() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(5)
    }

    #[tokio::test]
    async fn work_goes_on_while_a_renewal_waits_and_a_lost_lease_drops_it() {
        // A renewal that never answers (it waits on a lock the work holds)
        // does not stop the work from finishing.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let work = async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(());
            "done"
        };
        let started = AtomicUsize::new(0);
        let renew = || {
            started.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<bool>()
        };
        let out = tokio::time::timeout(
            Duration::from_secs(10),
            beside_renewals(work, &mut soon(), Duration::from_millis(5), renew, |held| held),
        )
        .await
        .expect("the work was not polled while the renewal waited");
        assert_eq!(out, Some("done"));
        assert!(rx.await.is_ok());
        assert_eq!(started.load(Ordering::SeqCst), 1, "one renewal in flight at a time");

        // Renewals that answer are made again and again; one that finds the
        // lease lost ends the work.
        let answers = AtomicUsize::new(0);
        let renew = || {
            let n = answers.fetch_add(1, Ordering::SeqCst);
            std::future::ready(n < 3)
        };
        let out = beside_renewals(std::future::pending::<()>(), &mut soon(), Duration::from_millis(5), renew, |held| held).await;
        assert_eq!(out, None);
        assert_eq!(answers.load(Ordering::SeqCst), 4, "three held, the fourth lost");
    }
}
