//! Small erasures in bulk (issue 15): a worker claims several jobs at once
//! and runs them stage by stage together; each job is still verified,
//! logged and certified once, in the order received, and a job whose lease
//! another claim takes mid-batch is left to that claim.

use std::time::Duration;

use lethe::erasure::{ExecutionOutcome, try_execute_batch, try_execute_job};
use lethe::grpc::pb;
use lethe::store::jobs;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;

fn batches_of_four(s: &mut lethe::config::Settings) {
    s.erasure.batch_size = 4;
}

/// (job id, kind) of the tenant's log entries, in chain order.
async fn log_entries(pool: &PgPool) -> Vec<(Uuid, String)> {
    sqlx::query_as("SELECT job_id, kind FROM deletion_log ORDER BY seq").fetch_all(pool).await.expect("log")
}

async fn stages_logged(pool: &PgPool, job_id: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT stage FROM erasure_events WHERE job_id = $1 AND status <> 'queued' ORDER BY event_id")
        .bind(job_id)
        .fetch_all(pool)
        .await
        .expect("events")
}

async fn verified(app: &TestApp) -> pb::VerifyDeletionLogResponse {
    app.client.clone().verify_deletion_log(req(&app.keys.ak, pb::VerifyDeletionLogRequest::default())).await.unwrap().into_inner()
}

#[tokio::test]
async fn a_batch_erases_each_of_its_jobs_and_logs_them_once_in_the_order_received() {
    let app = spawn_app_with(Options { no_workers: true, settings: Some(batches_of_four), ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let people = ["ann", "bob", "cyd", "dan", "eve", "fay"];
    let spread: Vec<(&str, u32)> = people.iter().zip(1..).map(|(p, n)| (*p, n)).collect();
    app.ingest_people(&c.name, &spread).await;
    let mut ids = Vec::new();
    for who in people {
        ids.push(app.erase(who).await.job_id.parse::<Uuid>().unwrap());
    }
    // Each person's points, keyed as the restore ledger keeps them.
    let secret = app.ctx.tenant_secret(app.keys.tenant_id).await.unwrap();
    let collection_id: Uuid = sqlx::query_scalar("SELECT collection_id FROM collections WHERE name = 'mail'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut keyed = Vec::new();
    for who in people {
        let points: Vec<Uuid> = sqlx::query_scalar(&format!("SELECT point_id FROM \"{}\" WHERE subjects @> ARRAY[$1]", c.backend_name))
            .bind(who)
            .fetch_all(&app.pool)
            .await
            .unwrap();
        let mut hashes: Vec<Vec<u8>> = points.iter().map(|p| lethe::restore::point_hash(&secret, collection_id, *p)).collect();
        hashes.sort();
        keyed.push(hashes);
    }

    // One call runs one batch: the four oldest jobs, to the end.
    assert_eq!(try_execute_batch(&app.ctx, Uuid::new_v4()).await.unwrap(), ExecutionOutcome::JobRan);
    // The ledger holds each job's points, for its own job, once.
    let sets: Vec<(Uuid, Uuid, String, Vec<Vec<u8>>)> =
        sqlx::query_as("SELECT job_id, collection_id, cause, points FROM erased_point_sets ORDER BY job_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(sets.len(), 4, "one set per batched job: {sets:?}");
    for (i, who) in people.iter().enumerate().take(4) {
        let set = sets.iter().find(|s| s.0 == ids[i]).unwrap_or_else(|| panic!("{who}'s set"));
        assert_eq!((set.1, set.2.as_str(), &set.3), (collection_id, "erasure", &keyed[i]), "{who}");
    }
    for (i, (who, n)) in spread.iter().enumerate() {
        let job = app.job(&ids[i].to_string()).await;
        if i < 4 {
            assert_eq!(job.status, pb::JobStatus::Completed as i32, "{who}: {}", job.error);
            let counts = &job.counts[0];
            assert_eq!((counts.before_total, counts.deleted, counts.after_total), (u64::from(*n), u64::from(*n), 0), "{who}");
            assert_eq!(app.pg_rows_tagged(&c, who).await, 0, "{who}");
            let stages = ["freeze", "plan", "delete", "verify", "residual", "forget_lineage", "physical", "log"];
            assert_eq!(stages_logged(&app.pool, ids[i]).await, stages, "{who}: one event per stage");
        } else {
            assert_eq!(job.status, pb::JobStatus::Queued as i32, "{who} is not in the batch");
            assert_eq!(app.pg_rows_tagged(&c, who).await, i64::from(*n), "{who}");
        }
    }
    let erasures: Vec<(Uuid, String)> = ids[..4].iter().map(|id| (*id, "erasure".to_owned())).collect();
    assert_eq!(log_entries(&app.pool).await, erasures, "one entry per job, chained in the order received");
    assert_eq!(rows(&app.pool, "certificates").await, 4);

    assert_eq!(try_execute_batch(&app.ctx, Uuid::new_v4()).await.unwrap(), ExecutionOutcome::JobRan);
    assert_eq!(try_execute_batch(&app.ctx, Uuid::new_v4()).await.unwrap(), ExecutionOutcome::EmptyQueue);
    let erasures: Vec<(Uuid, String)> = ids.iter().map(|id| (*id, "erasure".to_owned())).collect();
    assert_eq!(log_entries(&app.pool).await, erasures);
    assert_eq!(rows(&app.pool, "certificates").await, 6);
    let chain = verified(&app).await;
    assert!(chain.valid && chain.entries_checked == 6, "{}", chain.problem);
    for who in people {
        assert_eq!(app.pg_rows_tagged(&c, who).await, 0, "{who}");
    }
    app.assert_lineage_consistent().await;
}

#[tokio::test]
async fn a_worker_claims_no_more_than_its_share_of_the_runnable_jobs() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    for who in ["ann", "bob", "cyd", "dan", "eve", "fay", "gus"] {
        app.erase(who).await;
    }
    let owner = Uuid::new_v4();
    // 7 runnable among 4 workers: one each; 6 left among 2: three each;
    // 3 left, batches of 8, one worker: all three.
    assert_eq!(jobs::claim_jobs(&app.pool, owner, 30.0, 8, 4).await.unwrap().len(), 1);
    assert_eq!(jobs::claim_jobs(&app.pool, owner, 30.0, 8, 2).await.unwrap().len(), 3);
    let last = jobs::claim_jobs(&app.pool, owner, 30.0, 8, 1).await.unwrap();
    assert_eq!(last.len(), 3);
    assert!(last.windows(2).all(|w| w[0].received_at <= w[1].received_at), "oldest first");
    assert!(jobs::claim_jobs(&app.pool, owner, 30.0, 8, 1).await.unwrap().is_empty(), "every lease is held");
}

/// The share is taken among the process's idle workers: with the others
/// busy, a worker takes a full batch instead of its fraction of the queue
/// (a burst's first jobs each ran alone, at four times the statements).
#[tokio::test]
async fn a_worker_whose_fellows_are_busy_claims_a_full_batch() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let people = ["ann", "bob", "cyd", "dan", "eve", "fay", "gus"];
    let spread: Vec<(&str, u32)> = people.iter().map(|p| (*p, 1)).collect();
    app.ingest_people(&c.name, &spread).await;
    for who in people {
        app.erase(who).await;
    }
    // Four workers configured (none running): the context the test drives.
    let mut ctx = app.ctx.clone();
    let mut settings = (*ctx.settings).clone();
    (settings.erasure.workers, settings.erasure.batch_size) = (4, 8);
    ctx.settings = std::sync::Arc::new(settings);
    let completed = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM erasure_jobs WHERE status = 'completed'").fetch_one(&app.pool).await.unwrap()
    };
    // All four idle: 7 runnable / 4 = one job.
    assert_eq!(try_execute_batch(&ctx, Uuid::new_v4()).await.unwrap(), ExecutionOutcome::JobRan);
    assert_eq!(completed().await, 1);
    // Three busy: this worker shares with none and takes the other six.
    ctx.busy_workers.store(3, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(try_execute_batch(&ctx, Uuid::new_v4()).await.unwrap(), ExecutionOutcome::JobRan);
    assert_eq!(completed().await, 7);
    assert_eq!(ctx.busy_workers.load(std::sync::atomic::Ordering::Relaxed), 3, "its own count is given back");
}

#[tokio::test]
async fn a_job_whose_lease_another_claim_takes_mid_batch_is_left_to_that_claim() {
    // The pause before each round of stages is where the batch stalls.
    let opts = Options { no_workers: true, stage_pause_ms: 400, settings: Some(batches_of_four), ..Default::default() };
    let app = spawn_app_with(opts).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2), ("bob", 3), ("cyd", 4)]).await;
    let ids: Vec<Uuid> = [app.erase("ann").await, app.erase("bob").await, app.erase("cyd").await]
        .iter()
        .map(|j| j.job_id.parse().unwrap())
        .collect();
    let ctx = app.ctx.clone();
    let batch = tokio::spawn(async move { try_execute_batch(&ctx, Uuid::new_v4()).await });

    // Once bob's job has planned, another worker takes it (its lease ran out).
    let bob = ids[1];
    tokio::time::timeout(Duration::from_secs(30), async {
        while jobs::job(&app.pool, app.keys.tenant_id, bob).await.unwrap().unwrap().stage != "delete" {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("bob's job reaches the delete stage");
    sqlx::query("UPDATE erasure_jobs SET lease_expires_at = now() - interval '1 second' WHERE job_id = $1")
        .bind(bob)
        .execute(&app.pool)
        .await
        .unwrap();
    let taken = jobs::claim_job(&app.pool, Uuid::new_v4(), 30.0).await.unwrap().expect("bob's job is claimable");
    assert_eq!(taken.job_id, bob);

    let outcome = tokio::time::timeout(Duration::from_secs(60), batch).await.expect("the batch ends");
    assert_eq!(outcome.unwrap().unwrap(), ExecutionOutcome::JobRan);
    let row = jobs::job(&app.pool, app.keys.tenant_id, bob).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.stage.as_str(), row.lease_epoch), ("in_progress", "delete", taken.lease_epoch), "the batch wrote nothing more for bob");
    assert_eq!(app.pg_rows_tagged(&c, "bob").await, 3, "the batch deleted nothing of bob's after losing him");
    let logged: Vec<Uuid> = log_entries(&app.pool).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(logged, [ids[0], ids[2]], "the others completed and were logged");

    // Bob's next holder (after that claim's lease ran out too) completes him, once.
    sqlx::query("UPDATE erasure_jobs SET lease_expires_at = now() - interval '1 second' WHERE job_id = $1")
        .bind(bob)
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(try_execute_job(&app.ctx, Uuid::new_v4()).await.unwrap(), ExecutionOutcome::JobRan);
    let done = app.job(&bob.to_string()).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!((done.counts[0].before_total, done.counts[0].deleted, done.counts[0].after_total), (3, 3, 0));
    let logged: Vec<Uuid> = log_entries(&app.pool).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(logged, [ids[0], ids[2], bob]);
    assert_eq!(rows(&app.pool, "certificates").await, 3);
    assert_eq!(stages_logged(&app.pool, bob).await.iter().filter(|s| *s == "log").count(), 1);
    assert!(verified(&app).await.valid);
}

/// How many transactions tombstoned the subjects of these jobs (their rows' `xmin`s).
async fn tombstone_transactions(pool: &PgPool, job_ids: &[&str]) -> usize {
    let ids: Vec<Uuid> = job_ids.iter().map(|j| j.parse().unwrap()).collect();
    let xmins: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT s.xmin::text FROM subjects s JOIN erasure_jobs j USING (subject_id) \
         WHERE j.job_id = ANY($1) AND s.state = 'erased' AND s.external_id IS NULL",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .unwrap();
    xmins.len()
}

async fn rewrite_tables(pool: &PgPool, job_id: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT rewrite_tables FROM erasure_jobs WHERE job_id = $1::uuid").bind(job_id).fetch_one(pool).await.unwrap()
}

/// The calls of `method` on `backend` in `calls`.
fn calls_of(calls: &[lethe::vector_store::Call], backend: lethe::domain::Backend, method: &str) -> usize {
    calls.iter().filter(|c| c.backend == backend && c.method == method).count()
}

/// Plan, delete, verify, forget lineage and physical run for a batch's
/// small subjects together (`erasure::bulk`): one count before, one delete
/// and one count after per collection for all of them, on both backends, one transaction forgetting
/// their lineage, one statement recording their physical statuses, each
/// job's counts, tables to rewrite and statuses as they would be alone, and
/// nobody else's points touched. When a subject of the tenant is on legal
/// hold, what a job must keep has to be told apart: each job runs alone
/// from its delete stage on.
#[tokio::test]
async fn a_batch_plans_deletes_verifies_and_forgets_its_small_subjects_together_unless_a_hold_must_be_told_apart() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let people = [("ann", 3), ("bob", 2), ("cyd", 4), ("dan", 2), ("eve", 1), ("fay", 2)];
    for (i, b) in [pb::Backend::Pgvector, pb::Backend::Qdrant].iter().enumerate() {
        let c = app.create_collection(&format!("mail{i}"), *b).await;
        app.ingest_people(&c.name, &people).await;
    }
    let log = std::sync::Arc::new(lethe::vector_store::CallLog::default());
    let mut ctx = app.ctx.clone();
    ctx.stores = ctx.stores.timed(&log);
    let backends = [lethe::domain::Backend::Pgvector, lethe::domain::Backend::Qdrant];
    let left = |who: &'static str| {
        let app = &app;
        async move { app.count_subject(who).await.counts.iter().map(|c| c.before_total).sum::<u64>() }
    };

    let jobs = [app.erase("ann").await, app.erase("bob").await, app.erase("cyd").await];
    assert_eq!(try_execute_batch(&ctx, Uuid::new_v4()).await.unwrap(), ExecutionOutcome::JobRan);
    for (job, (who, n)) in jobs.iter().zip(people) {
        let (job, n) = (app.job(&job.job_id).await, u64::from(n));
        assert_eq!(job.status, pb::JobStatus::Completed as i32, "{who}: {}", job.error);
        assert_eq!(job.counts.len(), 2, "{who}");
        for c in &job.counts {
            assert_eq!((c.before_by_tag, c.before_by_ids, c.before_total), (n, n, n), "{who} in {}", c.collection);
            assert_eq!((c.deleted, c.after_by_tag, c.after_by_ids, c.after_total), (n, 0, 0, 0), "{who} in {}", c.collection);
        }
        assert_eq!(left(who).await, 0, "{who}");
    }
    for (who, n) in &people[3..] {
        assert_eq!(left(who).await, u64::from(*n) * 2, "{who} is untouched");
    }
    let calls = log.take();
    for backend in backends {
        assert_eq!(calls_of(&calls, backend, "delete_many"), 1, "{backend:?}: one delete for the batch: {calls:?}");
        assert_eq!(calls_of(&calls, backend, "delete"), 0, "{backend:?}: {calls:?}");
        assert_eq!(calls_of(&calls, backend, "count_tag_and_ids_many"), 2, "{backend:?}: one count before, one after: {calls:?}");
        assert_eq!(calls_of(&calls, backend, "count_tag_and_ids"), 0, "{backend:?}: {calls:?}");
    }

    // Their lineage was forgotten together too: the subjects were
    // tombstoned in one transaction (one xmin), and lineage holds nothing of them.
    let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(tombstone_transactions(&app.pool, &ids).await, 1, "three subjects tombstoned in one transaction");
    for who in ["ann", "bob", "cyd"] {
        assert_eq!(app.lineage_chunks_of(who).await, 0, "{who}");
    }
    app.assert_lineage_consistent().await;
    let bulk_tables = rewrite_tables(&app.pool, &jobs[0].job_id).await;
    let bulk_job = app.job(&jobs[0].job_id).await;
    let physical = |j: &pb::ErasureJob| -> Vec<(String, String, String)> {
        j.counts.iter().map(|c| (c.collection.clone(), c.physical_status.clone(), c.physical_detail.clone())).collect()
    };
    assert!(physical(&bulk_job).iter().all(|(_, status, detail)| status == "pending" && !detail.is_empty()), "{bulk_job:?}");
    assert_eq!(bulk_job.lineage_physical_status, "pending", "{}", bulk_job.lineage_physical_detail);

    // Dan on hold: eve's and fay's jobs each run delete and verify alone.
    let hold = pb::SetLegalHoldRequest { subject_id: "dan".into(), hold: true, reason: "case 7".into() };
    app.client.clone().set_legal_hold(req(&app.keys.sk, hold)).await.expect("set legal hold");
    let jobs = [app.erase("eve").await, app.erase("fay").await];
    assert_eq!(try_execute_batch(&ctx, Uuid::new_v4()).await.unwrap(), ExecutionOutcome::JobRan);
    for (job, who) in jobs.iter().zip(["eve", "fay"]) {
        let job = app.job(&job.job_id).await;
        assert_eq!(job.status, pb::JobStatus::Completed as i32, "{who}: {}", job.error);
        assert_eq!(left(who).await, 0, "{who}");
    }
    assert_eq!(left("dan").await, 4, "dan is on hold and untouched");
    let calls = log.take();
    for backend in backends {
        assert_eq!(calls_of(&calls, backend, "delete_many"), 0, "{backend:?}: {calls:?}");
        assert_eq!(calls_of(&calls, backend, "count_tag_and_ids_many"), 1, "{backend:?}: the plan, together still: {calls:?}");
        // Alone, each keeps what dan's tag marks.
        assert_eq!(calls_of(&calls, backend, "delete_keeping"), 2, "{backend:?}: one per job: {calls:?}");
    }
    let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(tombstone_transactions(&app.pool, &ids).await, 2, "each alone");
    assert_eq!(rewrite_tables(&app.pool, &jobs[0].job_id).await, bulk_tables, "the same tables to rewrite alone as together");
    let alone = app.job(&jobs[0].job_id).await;
    assert_eq!(physical(&alone), physical(&bulk_job), "the same physical statuses alone as together");
    assert_eq!(
        (&alone.lineage_physical_status, &alone.lineage_physical_detail),
        (&bulk_job.lineage_physical_status, &bulk_job.lineage_physical_detail)
    );
    let (body, _) = app.certified(&bulk_job.job_id).await;
    assert_eq!(body["lineage_physical"]["status"], "pending", "{body}");
    app.assert_lineage_consistent().await;
}

/// A tenant without any collection (none yet, or all dropped) still gets its
/// erasures done, alone or in a batch: the plan is of no collection, not a
/// lost lease.
#[tokio::test]
async fn erasures_in_a_tenant_without_collections_complete_alone_and_in_a_batch() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let jobs = [app.erase("ann").await, app.erase("bob").await];
    let run = tokio::time::timeout(Duration::from_secs(30), try_execute_batch(&app.ctx, Uuid::new_v4()));
    assert_eq!(run.await.expect("the batch ends").unwrap(), ExecutionOutcome::JobRan);
    let solo = app.erase("cyd").await;
    let run = tokio::time::timeout(Duration::from_secs(30), try_execute_job(&app.ctx, Uuid::new_v4()));
    assert_eq!(run.await.expect("the job ends").unwrap(), ExecutionOutcome::JobRan);
    for job in jobs.iter().chain([&solo]) {
        let done = app.job(&job.job_id).await;
        assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}: {}", job.job_id, done.error);
        assert!(done.counts.is_empty());
    }
    assert_eq!(log_entries(&app.pool).await.len(), 3);
}

/// A person with an address and a name: their own chunk, and `n` chunks of
/// others (tagged `by`) that name them.
async fn naming(app: &TestApp, collection: &str, (who, email, name): (&str, &str, &str), n: usize, by: &str) -> pb::SubjectRef {
    let mut chunks = vec![chunk(&format!("{who}-own"), 0, &format!("From: {email}\nThe gas desk meets at noon."), &[who])];
    for i in 0..n {
        let text = format!("Memo {i}: the curtailment schedule goes to {name} before the close.");
        chunks.push(chunk(&format!("{who}-named-{i}"), 0, &text, &[by]));
    }
    app.ingest(collection, chunks).await.expect("ingest");
    let ident = |kind: pb::IdentifierKind, value: &str| pb::Identifier { kind: kind as i32, value: value.into() };
    pb::SubjectRef {
        id: who.into(),
        identifiers: vec![ident(pb::IdentifierKind::Email, email), ident(pb::IdentifierKind::Name, name)],
    }
}

/// The residual stage of a batch's jobs searches for all of them with their
/// inputs read at once and records every search in one transaction
/// (`erasure::residual::run_many`); each job's candidates, counts, actions
/// and forgotten inputs are what it would have alone, whatever its policy.
#[tokio::test]
async fn a_batch_searches_for_its_jobs_residuals_together_and_each_gets_what_it_would_alone() {
    let app = spawn_app_with(Options { no_workers: true, stage_pause_ms: 300, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let tim = naming(&app, &c.name, ("tim", "tim.belden@enron.com", "Tim Belden"), 2, "ann").await;
    let sara = naming(&app, &c.name, ("sara", "sara.shackleton@enron.com", "Sara Shackleton"), 3, "ann").await;
    let mark = naming(&app, &c.name, ("mark", "mark.haedicke@enron.com", "Mark Haedicke"), 1, "bob").await;
    app.ingest(&c.name, vec![chunk("cyd-own", 0, "Quarterly numbers attached.", &["cyd"])]).await.expect("ingest");
    let erase = |subject: pb::SubjectRef, policy: pb::ResidualPolicy| {
        let app = &app;
        async move {
            let r = pb::EraseRequest { subject: Some(subject), residual_policy: policy as i32, ..Default::default() };
            app.erase_with(r).await.unwrap().job_id
        }
    };
    let jobs = [
        erase(tim, pb::ResidualPolicy::Delete).await,
        erase(sara, pb::ResidualPolicy::Report).await,
        erase(mark, pb::ResidualPolicy::Report).await,
        erase(pb::SubjectRef { id: "cyd".into(), identifiers: vec![] }, pb::ResidualPolicy::Report).await,
    ];
    let ctx = app.ctx.clone();
    let batch = tokio::spawn(async move { try_execute_batch(&ctx, Uuid::new_v4()).await });

    // In the pause after the residual round: the searches of the two jobs
    // that only report were recorded by one transaction (alone, one each).
    for job in &jobs {
        crate::residual_progress::reach_stage(&app, job, pb::Stage::ForgetLineage).await;
    }
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.parse().unwrap()).collect();
    let xmins: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT xmin::text FROM erasure_counts WHERE job_id = ANY($1) AND residual_found > 0 AND residual_deleted = 0",
    )
    .bind(&ids[1..3])
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(xmins.len(), 1, "sara's and mark's searches were recorded together: {xmins:?}");
    let outcome = tokio::time::timeout(Duration::from_secs(60), batch).await.expect("the batch ends");
    assert_eq!(outcome.unwrap().unwrap(), ExecutionOutcome::JobRan);

    let expected = [("tim", 2, 2, "deleted"), ("sara", 3, 0, "reported"), ("mark", 1, 0, "reported"), ("cyd", 0, 0, "")];
    for (job, (who, found, deleted, action)) in jobs.iter().zip(expected) {
        let done = app.job(job).await;
        assert_eq!(done.status, pb::JobStatus::Completed as i32, "{who}: {}", done.error);
        let counts = &done.counts[0];
        assert_eq!((counts.before_total, counts.deleted, counts.after_total), (1, 1, 0), "{who}");
        assert_eq!((counts.residual_found, counts.residual_deleted, counts.residual_redacted), (found, deleted, 0), "{who}");
        assert_eq!(done.residuals.len(), found as usize, "{who}: {:?}", done.residuals);
        assert!(done.residuals.iter().all(|r| r.action == action && r.collection == c.name), "{who}: {:?}", done.residuals);
        assert!(done.residuals.iter().all(|r| r.evidence.iter().all(|e| e.matched.is_empty())), "{who}: no matched text kept");
        assert_eq!(stages_logged(&app.pool, job.parse().unwrap()).await.iter().filter(|s| *s == "residual").count(), 1, "{who}");
        let tables = rewrite_tables(&app.pool, job).await;
        assert_eq!(tables.contains(&"erasure_identifiers".to_owned()), who != "cyd", "{who}: {tables:?}");
    }
    // Inputs forgotten, whatever the policy; only what the policy deletes is gone.
    assert_eq!(rows(&app.pool, "erasure_probes").await, 0);
    assert_eq!(rows(&app.pool, "erasure_identifiers").await, 0);
    for (name, left) in [("belden", 0), ("shackleton", 3), ("haedicke", 1)] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\" WHERE text ILIKE '%{name}%'", c.backend_name))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(n, left, "{name}");
    }
    app.assert_lineage_consistent().await;
    assert!(verified(&app).await.valid);
}

/// A batch's jobs of two tenants, each erasing a person of the same id and
/// name: each job's residual search reads its own tenant's collections
/// and finds only its own tenant's chunks, though searched and recorded
/// with the other's.
#[tokio::test]
async fn a_batch_of_two_tenants_searches_each_jobs_residuals_in_its_own_tenant() {
    let app = spawn_app_with(Options { no_workers: true, stage_pause_ms: 300, ..Default::default() }).await;
    let b = new_tenant(&app.pool).await;
    let mut client = app.client.clone();
    let mine = app.create_collection("mail", pb::Backend::Pgvector).await;
    let tim = naming(&app, &mine.name, ("tim", "tim.belden@enron.com", "Tim Belden"), 2, "ann").await;
    let create = pb::CreateCollectionRequest { name: "mail".into(), backend: pb::Backend::Pgvector as i32, dimension: mine.dimension, ..Default::default() };
    let theirs = client.create_collection(req(&b.sk, create)).await.expect("collection of b").into_inner();
    let mut chunks = vec![chunk("tim-own", 0, "From: tim.belden@enron.com\nThe gas desk meets at noon.", &["tim"])];
    chunks.push(chunk("tim-named-b", 0, "Memo: the curtailment schedule goes to Tim Belden before the close.", &["bob"]));
    let ingest = pb::IngestRequest { collection: "mail".into(), chunks, subjects: vec![] };
    client.ingest(req(&b.sk, ingest)).await.expect("ingest into b");
    let erase = |subject: pb::SubjectRef| pb::EraseRequest { subject: Some(subject), residual_policy: pb::ResidualPolicy::Report as i32, requested_by: "tests@lethe".into(), ..Default::default() };
    // Tim's own point in each tenant, keyed as that tenant's ledger keeps it.
    let mut keyed = Vec::new();
    for (tenant_id, collection) in [(app.keys.tenant_id, &mine), (b.tenant_id, &theirs)] {
        let point: Uuid = sqlx::query_scalar(&format!("SELECT point_id FROM \"{}\" WHERE subjects @> ARRAY['tim']", collection.backend_name))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let collection_id: Uuid = sqlx::query_scalar("SELECT collection_id FROM collections WHERE tenant_id = $1 AND name = 'mail'")
            .bind(tenant_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        let secret = app.ctx.tenant_secret(tenant_id).await.unwrap();
        keyed.push((tenant_id, collection_id, vec![lethe::restore::point_hash(&secret, collection_id, point)]));
    }
    let in_a = app.erase_with(erase(tim.clone())).await.unwrap().job_id;
    let in_b = client.erase(req(&b.sk, erase(tim))).await.expect("erase in b").into_inner().job_id;
    let ctx = app.ctx.clone();
    let batch = tokio::spawn(async move { try_execute_batch(&ctx, Uuid::new_v4()).await });
    crate::residual_progress::reach_stage(&app, &in_a, pb::Stage::ForgetLineage).await;
    let ids: Vec<Uuid> = [&in_a, &in_b].iter().map(|j| j.parse().unwrap()).collect();
    let xmins: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT xmin::text FROM erasure_counts WHERE job_id = ANY($1) AND residual_found > 0")
            .bind(&ids)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(xmins.len(), 1, "both searches recorded together: {xmins:?}");
    tokio::time::timeout(Duration::from_secs(60), batch).await.expect("the batch ends").unwrap().unwrap();
    // Each job's erased point is in its own tenant's ledger, keyed with its tenant's key.
    for ((tenant_id, collection_id, hashes), job_id) in keyed.iter().zip(&ids) {
        let sets: Vec<(Uuid, Uuid, Vec<Vec<u8>>)> =
            sqlx::query_as("SELECT tenant_id, collection_id, points FROM erased_point_sets WHERE job_id = $1")
                .bind(job_id)
                .fetch_all(&app.pool)
                .await
                .unwrap();
        assert_eq!(sets, [(*tenant_id, *collection_id, hashes.clone())]);
    }

    let job_b = client.get_erasure(req(&b.ak, pb::GetErasureRequest { job_id: in_b.clone() })).await.unwrap().into_inner();
    let expected: [(pb::ErasureJob, &pb::Collection, &[&str]); 2] =
        [(app.job(&in_a).await, &mine, &["tim-named-0", "tim-named-1"]), (job_b, &theirs, &["tim-named-b"])];
    for (job, collection, sources) in expected {
        assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
        assert_eq!(job.counts.len(), 1, "{:?}", job.counts);
        assert_eq!(job.counts[0].residual_found, sources.len() as u64, "{:?}", job.counts);
        let mut found: Vec<&str> = job.residuals.iter().map(|r| r.source_id.as_str()).collect();
        found.sort_unstable();
        assert_eq!(found, sources, "only its own tenant's chunks");
        // The points are in its own tenant's table.
        let points: Vec<Uuid> = job.residuals.iter().map(|r| r.point_id.parse().unwrap()).collect();
        let there: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\" WHERE point_id = ANY($1)", collection.backend_name))
            .bind(&points)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(there, sources.len() as i64);
    }
}

/// The freeze of a batch's jobs (`erasure::stages::freeze_many`): every
/// subject frozen by one statement, and a job whose subject was put on
/// legal hold while it was queued refused as it would be alone (nothing
/// deleted, the refusal logged, its subject not frozen), while the others
/// complete.
#[tokio::test]
async fn a_batch_freezes_its_subjects_together_and_refuses_the_one_put_on_hold() {
    let opts = Options { no_workers: true, stage_pause_ms: 300, settings: Some(batches_of_four), ..Default::default() };
    let app = spawn_app_with(opts).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2), ("bob", 3), ("cyd", 4)]).await;
    let jobs = [app.erase("ann").await.job_id, app.erase("bob").await.job_id, app.erase("cyd").await.job_id];
    let hold = pb::SetLegalHoldRequest { subject_id: "bob".into(), hold: true, reason: "case 2026-77".into() };
    app.client.clone().set_legal_hold(req(&app.keys.sk, hold)).await.expect("set legal hold");
    let ctx = app.ctx.clone();
    let batch = tokio::spawn(async move { try_execute_batch(&ctx, Uuid::new_v4()).await });

    // In the pause after the freeze round: ann and cyd frozen by one
    // statement (alone, one each), bob not frozen.
    for job in [&jobs[0], &jobs[2]] {
        crate::residual_progress::reach_stage(&app, job, pb::Stage::Plan).await;
    }
    let states: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT external_id, state, xmin::text FROM subjects WHERE external_id IN ('ann', 'bob', 'cyd') ORDER BY external_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let state = |who: &str| states.iter().find(|s| s.0 == who).map(|s| (s.1.clone(), s.2.clone())).expect(who);
    assert_eq!(state("ann").0, "pending_erasure");
    assert_eq!(state("cyd").0, "pending_erasure");
    assert_eq!(state("ann").1, state("cyd").1, "ann and cyd were frozen together: {states:?}");
    assert_eq!(state("bob").0, "active", "a subject on hold is not frozen");

    let outcome = tokio::time::timeout(Duration::from_secs(60), batch).await.expect("the batch ends");
    assert_eq!(outcome.unwrap().unwrap(), ExecutionOutcome::JobRan);
    for (job, (who, n)) in jobs.iter().zip([("ann", 2), ("bob", 3), ("cyd", 4)]) {
        let done = app.job(job).await;
        if who == "bob" {
            assert_eq!(done.status, pb::JobStatus::Refused as i32, "{done:?}");
            assert!(done.error.starts_with("legal_hold: case 2026-77"), "{}", done.error);
            assert_eq!(app.pg_rows_tagged(&c, who).await, n, "nothing of bob's was deleted");
        } else {
            assert_eq!(done.status, pb::JobStatus::Completed as i32, "{who}: {}", done.error);
            assert_eq!((done.counts[0].before_total, done.counts[0].after_total), (n as u64, 0), "{who}");
            assert_eq!(app.pg_rows_tagged(&c, who).await, 0, "{who}");
        }
    }
    let kinds: Vec<(Uuid, String)> = log_entries(&app.pool).await;
    let id = |j: &str| j.parse::<Uuid>().unwrap();
    assert!(kinds.contains(&(id(&jobs[1]), "refusal".to_owned())), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|(_, k)| k == "erasure").count(), 2, "{kinds:?}");
    assert_eq!(rows(&app.pool, "certificates").await, 2);
    let bob: String = sqlx::query_scalar("SELECT state FROM subjects WHERE external_id = 'bob'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(bob, "active");
    app.assert_lineage_consistent().await;
    assert!(verified(&app).await.valid);
}

/// A chunk two people of one batch share is forgotten once (one row) but
/// is each one's: both jobs count it and both name the tables whose dead
/// rows hold its text for the physical stage (the second one named none,
/// and a guarantee_physical job could have called them confirmed).
#[tokio::test]
async fn a_chunk_two_people_of_a_batch_share_is_forgotten_for_both() {
    let app = spawn_app_with(Options { no_workers: true, settings: Some(batches_of_four), ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest(&c.name, vec![chunk("doc-ab", 0, "ann and bob at the garden committee", &["ann", "bob"])]).await.unwrap();
    let ids: Vec<Uuid> = [app.erase("ann").await, app.erase("bob").await].iter().map(|j| j.job_id.parse().unwrap()).collect();
    assert_eq!(try_execute_batch(&app.ctx, Uuid::new_v4()).await.unwrap(), ExecutionOutcome::JobRan);
    for id in ids {
        let job = app.job(&id.to_string()).await;
        assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
        let (message, tables): (String, Vec<String>) = sqlx::query_as(
            "SELECT e.message, j.rewrite_tables FROM erasure_events e JOIN erasure_jobs j USING (job_id)
             WHERE e.job_id = $1 AND e.stage = 'forget_lineage' AND e.status <> 'queued'",
        )
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert!(message.starts_with("1 lineage chunks forgotten"), "{message}");
        for table in ["chunks", "sources", "chunk_subjects"] {
            assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
        }
    }
    assert_eq!(rows(&app.pool, "chunks").await, 0);
    app.assert_lineage_consistent().await;
}

/// Two people share a chunk and are erased together: both plans count its
/// point, one delete removes it, and each certificate said it deleted it.
/// The first logged is credited; the other counts it as deleted by another
/// erasure, so the certificates' deletions add up to what left the store.
#[tokio::test]
async fn a_point_two_erasures_counted_is_certified_deleted_once() {
    let app = spawn_app_with(Options { no_workers: true, settings: Some(batches_of_four), ..Default::default() }).await;
    for backend in [pb::Backend::Pgvector, pb::Backend::Qdrant] {
        let name = format!("mail_{}", backend.as_str_name().to_lowercase());
        let c = app.create_collection(&name, backend).await;
        let (ann, bob) = (format!("ann-{name}"), format!("bob-{name}"));
        app.ingest(&c.name, vec![
            chunk(&format!("doc-ab-{name}"), 0, "ann and bob at the garden committee", &[&ann, &bob]),
            chunk(&format!("doc-a-{name}"), 0, "ann's own note", &[&ann]),
            chunk(&format!("doc-b-{name}"), 0, "bob's own note", &[&bob]),
        ])
        .await
        .unwrap();
        let ids: Vec<String> = [app.erase(&ann).await, app.erase(&bob).await].into_iter().map(|j| j.job_id).collect();
        assert_eq!(try_execute_batch(&app.ctx, Uuid::new_v4()).await.unwrap(), ExecutionOutcome::JobRan);
        let mut deleted = Vec::new();
        let mut elsewhere = Vec::new();
        for id in &ids {
            let job = app.job(id).await;
            assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
            let count = job.counts.iter().find(|k| k.collection == name).expect("counted");
            assert_eq!((count.before_total, count.after_total), (2, 0), "{name}");
            deleted.push(count.deleted);
            let body: String = sqlx::query_scalar("SELECT body FROM certificates WHERE job_id = $1::uuid")
                .bind(id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            let entry = body["collections"].as_array().unwrap().iter().find(|k| k["collection"] == name.as_str()).unwrap().clone();
            let other = entry["deleted_by_other_erasures"].as_i64().unwrap_or(0);
            assert_eq!(entry["deleted"].as_i64(), Some(i64::try_from(count.deleted).unwrap()));
            assert_eq!(entry["before_total"].as_i64().unwrap(), entry["deleted"].as_i64().unwrap() + other, "adds up: {entry}");
            if other > 0 {
                assert!(job.notes.iter().any(|n| n.code == "deleted_by_another_erasure"), "{:?}", job.notes);
            }
            elsewhere.push(other);
        }
        assert_eq!(deleted.iter().sum::<u64>(), 3, "{name}: three points left the store, each certified once: {deleted:?}");
        assert_eq!(deleted, [2, 1], "{name}: the first logged is credited");
        assert_eq!(elsewhere, [0, 1], "{name}");
        // The credit is kept while a plan may still ask for it; the next
        // credit (the Qdrant round's) forgets it once it is older than any.
        let credits: i64 = sqlx::query_scalar("SELECT count(*) FROM erasure_point_credits").fetch_one(&app.pool).await.unwrap();
        assert_eq!(credits, 1, "{name}: the shared point's credit, the only one left");
        sqlx::query("UPDATE erasure_point_credits SET credited_at = credited_at - interval '2 hours'").execute(&app.pool).await.unwrap();
    }
    // A plan holding contested points counted before a credit keeps it.
    let (job, collection): (Uuid, Uuid) = sqlx::query_as("SELECT job_id, collection_id FROM erasure_counts LIMIT 1").fetch_one(&app.pool).await.unwrap();
    sqlx::query(
        "UPDATE erasure_counts SET contested_points = ARRAY[gen_random_uuid()], planned_at = now() - interval '5 hours' \
         WHERE job_id = $1 AND collection_id = $2",
    )
    .bind(job)
    .bind(collection)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(lethe::store::plans::prune_credits(&app.pool).await.unwrap(), 0);
    sqlx::query("UPDATE erasure_counts SET contested_points = '{}' WHERE job_id = $1").bind(job).execute(&app.pool).await.unwrap();
    assert_eq!(lethe::store::plans::prune_credits(&app.pool).await.unwrap(), 1, "then no plan needs it");
    let verified = app.client.clone().verify_deletion_log(req(&app.keys.ak, pb::VerifyDeletionLogRequest::default())).await.unwrap();
    assert!(verified.into_inner().valid);
}

/// The same across workers: two jobs, each alone, whose plans both count
/// the shared point before either deletes it.
#[tokio::test]
async fn a_point_two_concurrent_erasures_counted_is_certified_deleted_once() {
    let app = spawn_app_with(Options { no_workers: true, stage_pause_ms: 200, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest(&c.name, vec![
        chunk("doc-ab", 0, "ann and bob at the garden committee", &["ann", "bob"]),
        chunk("doc-a", 0, "ann's own note", &["ann"]),
        chunk("doc-b", 0, "bob's own note", &["bob"]),
    ])
    .await
    .unwrap();
    let ids: Vec<String> = [app.erase("ann").await, app.erase("bob").await].into_iter().map(|j| j.job_id).collect();
    let run = || {
        let ctx = app.ctx.clone();
        tokio::spawn(async move { try_execute_job(&ctx, Uuid::new_v4()).await })
    };
    let (a, b) = (run(), run());
    assert_eq!(a.await.unwrap().unwrap(), ExecutionOutcome::JobRan);
    assert_eq!(b.await.unwrap().unwrap(), ExecutionOutcome::JobRan);
    let mut deleted = 0;
    for id in &ids {
        let job = app.job(id).await;
        assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
        assert_eq!((job.counts[0].before_total, job.counts[0].after_total), (2, 0), "both counted the shared point");
        deleted += job.counts[0].deleted;
    }
    assert_eq!(deleted, 3, "each deletion in one certificate");
}
