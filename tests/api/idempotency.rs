//! One erasure per subject at a time, and idempotency keys bound to their
//! request (issue 11): a certificate claims only what its own job deleted.

use lethe::grpc::pb;
use tonic::Code;

use crate::helpers::*;

fn erase_request(subject: &str, key: &str) -> pb::EraseRequest {
    pb::EraseRequest { subject: Some(person(subject)), idempotency_key: key.into(), ..Default::default() }
}

#[tokio::test]
async fn a_second_erase_while_the_first_runs_is_already_exists_naming_the_running_job() {
    // Stages pause so that the first job is still running when the others arrive.
    let app = spawn_app_with(Options { stage_pause_ms: 300, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("zed", 10), ("amy", 2)]).await;

    let first = app.erase_with(erase_request("zed", "ticket-1")).await.expect("first erase");
    for key in ["ticket-2", ""] {
        let err = app.erase_with(erase_request("zed", key)).await.expect_err("a second job for zed");
        assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
        assert_eq!(reason(&err), "erasure_in_progress");
        assert_eq!(error_metadata(&err, "job_id").as_deref(), Some(first.job_id.as_str()));
    }
    let done = app.wait_for_job(&first.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!((done.counts[0].before_total, done.counts[0].deleted, done.counts[0].after_total), (10, 10, 0));
    assert_eq!(rows(&app.pool, "erasure_jobs").await, 1);
    assert_eq!(rows(&app.pool, "deletion_log").await, 1);
    assert_eq!(rows(&app.pool, "certificates").await, 1);

    // Once it has ended, another key starts a follow-up job, which finds
    // nothing left and certifies no deletion of its own.
    let again = app.erase_with(erase_request("zed", "ticket-2")).await.expect("a follow-up after the first ended");
    let again = app.wait_for_job(&again.job_id).await;
    assert_eq!(again.status, pb::JobStatus::Completed as i32, "{}", again.error);
    assert_eq!((again.counts[0].before_total, again.counts[0].deleted), (0, 0));
    let certified: Vec<i64> =
        sqlx::query_scalar("SELECT (c ->> 'deleted')::bigint FROM certificates, jsonb_array_elements(body::jsonb -> 'collections') c")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(certified.iter().sum::<i64>(), 10, "deletions certified across all certificates: {certified:?}");
}

#[tokio::test]
async fn concurrent_erases_of_one_subject_under_different_keys_start_one_job() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("zed", 3)]).await;

    let mut calls = tokio::task::JoinSet::new();
    for i in 0..6 {
        let mut client = app.client.clone();
        let r = req(&app.keys.sk, pb::EraseRequest { requested_by: "t".into(), ..erase_request("zed", &format!("k{i}")) });
        calls.spawn(async move { client.erase(r).await.map(tonic::Response::into_inner) });
    }
    let outcomes = calls.join_all().await;
    let started: Vec<&pb::ErasureJob> = outcomes.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(started.len(), 1, "{outcomes:?}");
    for err in outcomes.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!((err.code(), reason(err)), (Code::AlreadyExists, "erasure_in_progress".to_owned()), "{err:?}");
        assert_eq!(error_metadata(err, "job_id").as_deref(), Some(started[0].job_id.as_str()));
    }
    assert_eq!(rows(&app.pool, "erasure_jobs").await, 1);
    assert_eq!(rows(&app.pool, "erasure_events").await, 1);

    // The database itself refuses a second active job for the subject.
    let second = sqlx::query(
        r#"
        INSERT INTO erasure_jobs (job_id, tenant_id, subject_id, requested_by, reason, residual_policy, status, stage, deadline)
        SELECT gen_random_uuid(), tenant_id, subject_id, 'sql', '', 'report', 'queued', 'freeze', deadline FROM erasure_jobs
        "#,
    )
    .execute(&app.pool)
    .await
    .expect_err("a second active job");
    let constraint = second.as_database_error().and_then(|e| e.constraint()).map(str::to_owned);
    assert_eq!(constraint.as_deref(), Some("erasure_jobs_one_active_per_subject"));
}

/// Rows of every table an Erase writes, to show that a refused one wrote none.
async fn written(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in ["subjects", "subject_identifiers", "erasure_jobs", "erasure_events", "erasure_identifiers", "deletion_log"] {
        counts.push(rows(&app.pool, table).await);
    }
    counts
}

fn email(subject: &str, address: &str) -> pb::SubjectRef {
    let identifier = pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: address.into() };
    pb::SubjectRef { id: subject.into(), identifiers: vec![identifier] }
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_request_is_refused_and_writes_nothing() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let first = app.erase_with(erase_request("idem-a", "K")).await.expect("first use of K");
    let before = written(&app).await;

    let others = [
        erase_request("idem-b", "K"),
        pb::EraseRequest { reason: "another ticket".into(), ..erase_request("idem-a", "K") },
        pb::EraseRequest { residual_policy: pb::ResidualPolicy::Delete as i32, ..erase_request("idem-a", "K") },
        pb::EraseRequest { subject: Some(email("idem-a", "a@x.example")), ..erase_request("idem-a", "K") },
    ];
    for other in others {
        let err = app.erase_with(other.clone()).await.expect_err("K names another request");
        assert_eq!((err.code(), reason(&err)), (Code::FailedPrecondition, "idempotency_key_reused".to_owned()), "{other:?}");
        assert_eq!(written(&app).await, before, "nothing written for {other:?}");
    }
    assert!(!app.subject_exists("idem-b").await, "no subject row for idem-b");

    // The same request under K is a replay: the same job, nothing new.
    let again = app.erase_with(erase_request("idem-a", "K")).await.expect("replay of K");
    assert_eq!(again.job_id, first.job_id);
    assert_eq!(written(&app).await, before);
}

#[tokio::test]
async fn a_replay_with_the_identifiers_in_another_order_is_the_same_request() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let mut subject = email("ann", "ann@x.example");
    subject.identifiers.push(pb::Identifier { kind: pb::IdentifierKind::Name as i32, value: "Ann Lee".into() });
    let first = app.erase_with(pb::EraseRequest { subject: Some(subject.clone()), ..erase_request("ann", "K") }).await.unwrap();
    subject.identifiers.reverse();
    let again = app.erase_with(pb::EraseRequest { subject: Some(subject), ..erase_request("ann", "K") }).await.unwrap();
    assert_eq!(again.job_id, first.job_id);
    assert_eq!(rows(&app.pool, "erasure_jobs").await, 1);
}

/// The key is kept as a keyed hash (a client may build it from the
/// person's id); a job whose row still holds a key as given (made before
/// keys were hashed) is found by it all the same.
#[tokio::test]
async fn keys_are_kept_hashed_and_a_key_kept_as_given_still_replays() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("zed", 2), ("amy", 2)]).await;
    let zed = app.erase_with(erase_request("zed", "erase-zed")).await.expect("zed");
    let kept: Option<String> = sqlx::query_scalar("SELECT idempotency_key FROM erasure_jobs").fetch_one(&app.pool).await.unwrap();
    let kept = kept.expect("a key");
    assert!(kept.starts_with("hmac:") && !kept.contains("zed"), "{kept}");
    assert_eq!(app.erase_with(erase_request("zed", "erase-zed")).await.expect("replay").job_id, zed.job_id);
    let e = app.erase_with(erase_request("amy", "erase-zed")).await.expect_err("reused for another request");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "idempotency_key_reused"));

    // A row as an earlier version wrote it.
    sqlx::query("UPDATE erasure_jobs SET idempotency_key = 'erase-zed'").execute(&app.pool).await.unwrap();
    assert_eq!(app.erase_with(erase_request("zed", "erase-zed")).await.expect("legacy replay").job_id, zed.job_id);
    assert_eq!(rows(&app.pool, "erasure_jobs").await, 1);
}
