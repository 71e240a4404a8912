//! The scheduled Reconcile, run by two replicas on one database: the work
//! is done once (one run at a time per tenant, claimed under a lease), and
//! what a restore brought back is deleted and logged once; a run whose
//! worker stalled past its lease is finished by another, and the stalled
//! worker's writes are refused (lease epochs).

use std::time::Duration;

use lethe::grpc::pb;
use secrecy::ExposeSecret;

use crate::helpers::*;
use crate::restore_guard::{back_up, by_tag, entries, erase_completed, restore};

fn every_second(s: &mut lethe::config::Settings) {
    s.restore_guard.reconcile_interval_secs = 1;
    s.restore_guard.schedule_check_secs = 1;
}

#[tokio::test]
async fn two_replicas_reconcile_on_schedule_without_doing_the_work_twice() {
    let opts = Options { settings: Some(every_second), ..Options::default() };
    let app = spawn_app_with(opts).await;
    let (signing, master) = (app.settings.audit.signing_key_file.clone(), app.settings.keys.master_key_file.clone());
    let url = app.settings.database.url.expose_secret().to_owned();
    let replica = spawn_app_on(&url, opts, move |s| {
        s.audit.signing_key_file = signing;
        s.keys.master_key_file = master;
    })
    .await;
    let mail = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people("mail", &[("alice", 3), ("bob", 1)]).await;
    back_up(&app, &mail.backend_name, "backup_mail").await;
    erase_completed(&app, "alice").await;
    restore(&app, &mail.backend_name, "backup_mail").await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let came_back = loop {
        let logged = entries(&app, "reconcile").await;
        let found: Vec<u64> = logged.iter().map(|(_, b)| b["came_back"].as_u64().unwrap_or(0)).filter(|n| *n > 0).collect();
        let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM reconcile_runs WHERE status = 'completed' AND tenant_id = $1")
            .bind(app.keys.tenant_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        // Once alice's points are gone, and a later run found nothing more.
        if !found.is_empty() && runs >= 2 && by_tag(&app, "alice", "mail").await == 0 {
            break found;
        }
        assert!(tokio::time::Instant::now() < deadline, "no scheduled run reconciled the restore: {logged:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(came_back, vec![3], "deleted and logged once, by one replica");
    let triggers: Vec<String> = sqlx::query_scalar("SELECT DISTINCT trigger FROM reconcile_runs WHERE tenant_id = $1")
        .bind(app.keys.tenant_id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(triggers, vec!["schedule".to_owned()]);
    // One entry per collection per run: no run was done twice.
    let per_run: Vec<i64> = sqlx::query_scalar(
        "SELECT count(*) FROM deletion_log WHERE tenant_id = $1 AND kind = 'reconcile' GROUP BY body::jsonb->>'run_id'",
    )
    .bind(app.keys.tenant_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(per_run.iter().all(|n| *n == 1), "{per_run:?}");
    assert_eq!(by_tag(&app, "bob", "mail").await, 1);
    drop(replica);
}

#[tokio::test]
async fn a_run_whose_lease_ran_out_is_finished_by_another_worker_and_the_stalled_one_writes_nothing() {
    use lethe::store::lease::Lease;
    use lethe::store::reconcile as runs;
    use uuid::Uuid;

    let app = spawn_app_with(Options { no_workers: true, ..Options::default() }).await;
    let mail = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people("mail", &[("alice", 3), ("bob", 1)]).await;
    back_up(&app, &mail.backend_name, "backup_mail").await;
    let job = app.erase("alice").await;
    assert_eq!(crate::residual_progress::run_to_end(&app, &job.job_id).await.status, pb::JobStatus::Completed as i32);
    restore(&app, &mail.backend_name, "backup_mail").await;
    let queued = app.client.clone().reconcile(req(&app.keys.sk, pb::ReconcileRequest::default())).await.unwrap().into_inner();

    // Worker A claims the run, then stalls past its lease.
    let a = Uuid::new_v4();
    let claimed = runs::claim(&app.pool, a, 30.0).await.unwrap().expect("A claims the run");
    assert_eq!(claimed.job_id.to_string(), queued.run_id);
    assert!(!lethe::restore::worker::step(&app.ctx, Uuid::new_v4()).await.unwrap(), "a held run is not claimed twice");
    sqlx::query("UPDATE reconcile_runs SET lease_expires_at = now() - interval '1 second'").execute(&app.pool).await.unwrap();
    // Worker B takes it over and finishes it.
    assert!(lethe::restore::worker::step(&app.ctx, Uuid::new_v4()).await.unwrap());
    let run = crate::restore_guard::wait_for_run(&app, &queued.run_id).await;
    assert_eq!(crate::restore_guard::counts(&run, "mail"), (3, 3, 0));
    assert_eq!(by_tag(&app, "alice", "mail").await, 0);
    // A wakes up: every write under its lease is refused.
    let stale = Lease { owner: a, epoch: claimed.lease_epoch };
    let done = runs::collections(&app.pool, claimed.job_id).await.unwrap();
    let row = runs::CollectionRow { collection_id: Uuid::new_v4(), ..done[0].clone() };
    assert!(!runs::record_plan(&app.pool, claimed.job_id, stale, &row).await.unwrap());
    assert!(!runs::complete_collection(&app.pool, claimed.job_id, stale, done[0].collection_id, 5, 5, 99).await.unwrap());
    assert!(!runs::finish(&app.pool, claimed.job_id, stale, "failed", Some("stale"), &[], 0).await.unwrap());
    assert_eq!(entries(&app, "reconcile").await.len(), 1, "logged once");
    let again = runs::collections(&app.pool, claimed.job_id).await.unwrap();
    assert_eq!((again.len(), again[0].before, again[0].log_seq), (1, 3, done[0].log_seq));
}
