//! Fenced job writes (issue 11): once another claim has taken a job, the
//! worker that held it before writes nothing more, and exactly one log entry
//! and certificate are issued.

use std::time::Duration;

use lethe::grpc::pb;
use lethe::store::jobs::{self, Lease};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;

/// Lets the job's lease run out now (instead of waiting for it).
async fn expire_lease(pool: &PgPool, job_id: Uuid) {
    sqlx::query("UPDATE erasure_jobs SET lease_expires_at = now() - interval '1 second' WHERE job_id = $1")
        .bind(job_id)
        .execute(pool)
        .await
        .expect("expire the lease");
}

async fn claim(pool: &PgPool, owner: Uuid) -> (jobs::JobRow, Lease) {
    let job = jobs::claim_job(pool, owner, 30.0).await.expect("claim").expect("a claimable job");
    let lease = Lease { owner, epoch: job.lease_epoch };
    (job, lease)
}

async fn events(pool: &PgPool, job_id: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT message FROM erasure_events WHERE job_id = $1 ORDER BY event_id")
        .bind(job_id)
        .fetch_all(pool)
        .await
        .expect("events")
}

#[tokio::test]
async fn a_superseded_claim_cannot_advance_release_or_finish_the_job() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    app.erase("zed").await;
    let pool = &app.pool;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());

    // A claims, stalls past its lease; B claims; B stalls too and A claims
    // again under the same owner id, but a new epoch.
    let (job, first) = claim(pool, a).await;
    expire_lease(pool, job.job_id).await;
    let (_, second) = claim(pool, b).await;
    expire_lease(pool, job.job_id).await;
    let (_, third) = claim(pool, a).await;
    assert_eq!((first.owner, third.owner), (a, a));
    assert!(first.epoch < second.epoch && second.epoch < third.epoch);

    let advance = |lease, message| jobs::Advance { job_id: job.job_id, lease, next_stage: "plan", done_stage: "freeze", message };
    for stale in [first, second] {
        assert!(jobs::advance_many(pool, &[advance(stale, "a stale worker")], 30.0).await.unwrap().is_empty(), "{stale:?}");
        assert!(!jobs::renew_lease(pool, job.job_id, stale, 30.0).await.unwrap());
        assert!(!jobs::release_for_retry(pool, job.job_id, stale, "stale", 1.0).await.unwrap());
        assert!(!jobs::set_residuals(pool, job.job_id, stale, &serde_json::json!(["stale"])).await.unwrap());
        assert!(!jobs::finish(pool, job.job_id, stale, "failed", Some("stale")).await.unwrap());
    }
    let row = jobs::job(pool, app.keys.tenant_id, job.job_id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.stage.as_str(), row.error), ("in_progress", "freeze", None));
    assert_eq!(row.residuals, serde_json::json!([]));
    assert_eq!(events(pool, job.job_id).await, ["queued"]);

    // The current claim's writes are applied.
    assert_eq!(jobs::advance_many(pool, &[advance(third, "the current worker")], 30.0).await.unwrap(), [job.job_id]);
    assert!(jobs::finish(pool, job.job_id, third, "failed", Some("done by the current worker")).await.unwrap());
    let row = jobs::job(pool, app.keys.tenant_id, job.job_id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.error.as_deref()), ("failed", Some("done by the current worker")));
    assert_eq!(events(pool, job.job_id).await, ["queued", "the current worker"]);
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_before_the_log_stage_writes_no_log_entry_or_certificate() {
    // The pause before each stage is where the worker stalls.
    let app = spawn_app_with(Options { no_workers: true, stage_pause_ms: 500, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("zed", 3), ("amy", 1)]).await;
    let job_id: Uuid = app.erase("zed").await.job_id.parse().unwrap();

    let ctx = app.ctx.clone();
    let stalled = tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await });
    // Once it has advanced to the log stage, it pauses: its lease runs out
    // there and another worker claims the job.
    tokio::time::timeout(Duration::from_secs(30), async {
        while jobs::job(&app.pool, app.keys.tenant_id, job_id).await.unwrap().unwrap().stage != "log" {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the job reaches the log stage");
    expire_lease(&app.pool, job_id).await;
    let (_, taken) = claim(&app.pool, Uuid::new_v4()).await;

    let outcome = tokio::time::timeout(Duration::from_secs(30), stalled).await.expect("the stalled worker returns");
    assert_eq!(outcome.unwrap().unwrap(), lethe::erasure::ExecutionOutcome::JobRan);
    assert_eq!(rows(&app.pool, "deletion_log").await, 0, "the stalled worker logged nothing");
    assert_eq!(rows(&app.pool, "certificates").await, 0);
    let row = jobs::job(&app.pool, app.keys.tenant_id, job_id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.lease_epoch), ("in_progress", taken.epoch));

    // The job's next holder (here: a worker that claims after that one's
    // lease ran out too) completes it, once.
    expire_lease(&app.pool, job_id).await;
    let ran = lethe::erasure::try_execute_job(&app.ctx, Uuid::new_v4()).await.unwrap();
    assert_eq!(ran, lethe::erasure::ExecutionOutcome::JobRan);
    let done = app.job(&job_id.to_string()).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!((done.counts[0].before_total, done.counts[0].deleted, done.counts[0].after_total), (3, 3, 0));
    assert_eq!(rows(&app.pool, "deletion_log").await, 1);
    assert_eq!(rows(&app.pool, "certificates").await, 1);
    let logged = events(&app.pool, job_id).await.into_iter().filter(|m| m.starts_with("log entry")).count();
    assert_eq!(logged, 1);
}

#[tokio::test]
async fn a_stale_reindex_worker_writes_nothing() {
    use lethe::store::reindex;
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let c = app.create_collection("mail", lethe::grpc::pb::Backend::Pgvector).await;
    let spec = lethe::store::lineage::collection_by_name(&app.pool, app.keys.tenant_id, &c.name).await.unwrap().unwrap();
    let (row, created) =
        reindex::insert(&app.pool, spec.tenant_id, spec.collection_id, "copy", Some(uuid::Uuid::new_v4())).await.unwrap();
    assert!(created);
    let stale = reindex::get(&app.pool, spec.tenant_id, row.job_id).await.unwrap().unwrap().lease_epoch;
    // Another worker claims the job meanwhile.
    sqlx::query("UPDATE reindex_jobs SET lease_epoch = lease_epoch + 1 WHERE job_id = $1")
        .bind(row.job_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let id = uuid::Uuid::new_v4();
    assert!(!reindex::prepared(&app.pool, row.job_id, stale, "stale_staging", 5).await.unwrap());
    assert!(!reindex::progress(&app.pool, row.job_id, stale, id, 5, 0).await.unwrap());
    assert!(!reindex::switched(&app.pool, row.job_id, stale, "old", (5, 0), "").await.unwrap());
    assert!(!reindex::orphans_dropped(&app.pool, row.job_id, stale, 3).await.unwrap());
    let now = reindex::get(&app.pool, spec.tenant_id, row.job_id).await.unwrap().unwrap();
    assert_eq!((now.staging_name, now.copied, now.retired_name, now.orphans_dropped), (None, 0, None, 0));
    assert!(reindex::prepared(&app.pool, row.job_id, stale + 1, "staging", 5).await.unwrap(), "the holder writes");
}

/// `f`'s output, unless it takes 5 s (a renewal waiting for a row lock).
async fn within<T>(f: impl std::future::Future<Output = T>) -> Result<T, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(5), f).await
}

async fn lease_expires_at(pool: &PgPool, job_id: Uuid) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("SELECT lease_expires_at FROM erasure_jobs WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(pool)
        .await
        .expect("lease")
}

#[tokio::test]
async fn a_renewal_never_waits_for_the_row_its_own_stage_has_locked() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    app.erase("zed").await;
    let pool = &app.pool;
    let owner = Uuid::new_v4();
    let (job, lease) = claim(pool, owner).await;
    // The stage's transaction has written the job's row and waits on the
    // worker, which renews meanwhile (as the residual stage's does).
    let mut stage = pool.begin().await.expect("begin");
    assert!(jobs::set_residuals(&mut *stage, job.job_id, lease, &serde_json::json!([])).await.unwrap());
    let before = lease_expires_at(pool, job.job_id).await;
    let renewed = within(jobs::renew_lease(pool, job.job_id, lease, 60.0)).await.expect("the renewal waited for the row");
    assert!(renewed.unwrap(), "the lease is still this worker's");
    let many = within(jobs::renew_leases(pool, owner, &[(job.job_id, lease.epoch)], 60.0)).await.expect("waited");
    assert_eq!(many.unwrap(), [job.job_id]);
    // A lease that is not this worker's is not reported held, locked or not.
    let stale = Lease { owner, epoch: lease.epoch - 1 };
    assert!(!within(jobs::renew_lease(pool, job.job_id, stale, 60.0)).await.expect("waited").unwrap());
    assert_eq!(lease_expires_at(pool, job.job_id).await, before, "the locked row was skipped, not renewed");
    stage.commit().await.expect("commit");
    // Once the stage's transaction has ended, the lease is extended.
    assert!(jobs::renew_lease(pool, job.job_id, lease, 60.0).await.unwrap());
    assert!(lease_expires_at(pool, job.job_id).await > before + chrono::Duration::seconds(20));
}

/// A job whose stage stops the process is claimed again and again: after
/// as many claims as transient failures may take, it is failed, and as its
/// deletion had begun, the log says so with its counts before.
#[tokio::test]
async fn a_job_claimed_again_and_again_is_failed_and_its_begun_deletion_logged() {
    let app = spawn_app_with(Options { no_workers: true, stage_pause_ms: 300, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("zed", 3), ("amy", 1)]).await;
    let job_id: Uuid = app.erase("zed").await.job_id.parse().unwrap();
    let ctx = app.ctx.clone();
    let running = tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await });
    // The process "stops" once the job has deleted (it pauses before verify).
    tokio::time::timeout(Duration::from_secs(30), async {
        while jobs::job(&app.pool, app.keys.tenant_id, job_id).await.unwrap().unwrap().stage != "verify" {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the job reaches verify");
    running.abort();
    assert_eq!(app.pg_rows_tagged(&c, "zed").await, 0, "deleted before the stop");
    // It came back twenty times, and stopped the process each time.
    sqlx::query("UPDATE erasure_jobs SET attempts = 20, lease_expires_at = now() - interval '1 second' WHERE job_id = $1")
        .bind(job_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let ran = lethe::erasure::try_execute_job(&app.ctx, Uuid::new_v4()).await.unwrap();
    assert_eq!(ran, lethe::erasure::ExecutionOutcome::JobRan);
    let failed = app.job(&job_id.to_string()).await;
    assert_eq!(failed.status, pb::JobStatus::Failed as i32);
    assert!(failed.error.contains("abandoned after 20 claims"), "{}", failed.error);
    let (kind, body): (String, String) =
        sqlx::query_as("SELECT kind, body FROM deletion_log WHERE job_id = $1").bind(job_id).fetch_one(&app.pool).await.unwrap();
    assert_eq!(kind, "failure");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((body["stage"].as_str(), body["collections"][0]["before_total"].as_i64()), (Some("verify"), Some(3)));
    assert!(!body.to_string().contains("zed"), "no plaintext: {body}");
    let verified = app
        .client
        .clone()
        .verify_deletion_log(req(&app.keys.ak, pb::VerifyDeletionLogRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(verified.valid, "{verified:?}");
    // Nothing more runs it.
    assert_eq!(lethe::erasure::try_execute_job(&app.ctx, Uuid::new_v4()).await.unwrap(), lethe::erasure::ExecutionOutcome::EmptyQueue);
}
