use lethe::grpc::pb;
use tonic::Code;

use crate::helpers::*;

async fn verify(app: &TestApp) -> pb::VerifyDeletionLogResponse {
    app.client
        .clone()
        .verify_deletion_log(req(&app.keys.ak, pb::VerifyDeletionLogRequest::default()))
        .await
        .unwrap()
        .into_inner()
}

async fn erase_three(app: &TestApp) {
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2), ("bob", 2), ("cyd", 2)]).await;
    for who in ["ann", "bob", "cyd"] {
        let done = app.wait_for_job(&app.erase(who).await.job_id).await;
        assert_eq!(done.status, pb::JobStatus::Completed as i32);
    }
    let v = verify(app).await;
    assert!(v.valid && v.entries_checked == 3, "{v:?}");
}

/// Tampering needs a superuser: the log table refuses UPDATE and DELETE.
async fn as_superuser(app: &TestApp, sql: &str) {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE deletion_log DISABLE TRIGGER deletion_log_no_update").execute(&mut *tx).await.unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    sqlx::query("ALTER TABLE deletion_log ENABLE TRIGGER deletion_log_no_update").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn the_log_refuses_updates_and_deletes() {
    let app = spawn_app().await;
    erase_three(&app).await;
    let err = sqlx::query("UPDATE deletion_log SET body = '{}' WHERE seq = 1").execute(&app.pool).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(sqlx::query("DELETE FROM deletion_log").execute(&app.pool).await.is_err());
}

#[tokio::test]
async fn an_altered_entry_is_detected() {
    let app = spawn_app().await;
    erase_three(&app).await;
    as_superuser(&app, r#"UPDATE deletion_log SET body = replace(body, '"deleted":2', '"deleted":1') WHERE seq = 2"#).await;
    let v = verify(&app).await;
    assert!(!v.valid);
    assert_eq!(v.first_bad_seq, 2, "{}", v.problem);
}

/// A hash version the verifier does not know is refused, not checked by
/// another version's rules (the version is not under the hash).
#[tokio::test]
async fn an_unknown_hash_version_is_detected() {
    let app = spawn_app().await;
    erase_three(&app).await;
    as_superuser(&app, "UPDATE deletion_log SET hash_version = 7 WHERE seq = 3").await;
    let v = verify(&app).await;
    assert!(!v.valid);
    assert_eq!(v.first_bad_seq, 3, "{}", v.problem);
    assert!(v.problem.contains("hash version 7"), "{}", v.problem);
}

#[tokio::test]
async fn a_removed_entry_is_detected_in_the_middle_and_at_the_end() {
    let app = spawn_app().await;
    erase_three(&app).await;
    as_superuser(&app, "DELETE FROM deletion_log WHERE seq = 2").await;
    let v = verify(&app).await;
    assert!(!v.valid);
    assert_eq!(v.first_bad_seq, 2, "{}", v.problem);

    let app = spawn_app().await;
    erase_three(&app).await;
    as_superuser(&app, "DELETE FROM deletion_log WHERE seq = 3").await;
    let v = verify(&app).await;
    assert!(!v.valid, "{v:?}");
    assert_eq!(v.first_bad_seq, 3, "{}", v.problem);
}

#[tokio::test]
async fn legal_hold_refuses_erasure_and_logs_the_refusal() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2)]).await;
    let mut client = app.client.clone();
    let hold = pb::SetLegalHoldRequest { subject_id: "ann".into(), hold: true, reason: "case 2026-17".into() };
    let s = client.set_legal_hold(req(&app.keys.sk, hold)).await.unwrap().into_inner();
    assert!(s.legal_hold);

    // The hold is on ann only: another subject is queued as usual.
    let other = app.erase("someone-else").await;
    assert_eq!(other.status, pb::JobStatus::Queued as i32);
    let refused = app.erase_with(pb::EraseRequest { subject: Some(person("ann")), ..Default::default() }).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "legal_hold");
    assert_eq!(app.count_subject("ann").await.counts[0].before_total, 2, "nothing was deleted");

    let jobs = client
        .list_erasures(req(&app.keys.ak, pb::ListErasuresRequest { status: pb::JobStatus::Refused as i32, ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].error.contains("case 2026-17"));
    let log = client.list_deletion_log(req(&app.keys.ak, pb::ListDeletionLogRequest::default())).await.unwrap().into_inner();
    assert!(log.entries.iter().any(|e| e.kind == "refusal" && e.job_id == jobs[0].job_id));

    // Lifting the hold lets the erasure through.
    let lift = pb::SetLegalHoldRequest { subject_id: "ann".into(), hold: false, reason: String::new() };
    client.set_legal_hold(req(&app.keys.sk, lift)).await.unwrap();
    let done = app.wait_for_job(&app.erase("ann").await.job_id).await;
    assert_eq!(done.counts.iter().find(|c| c.before_total > 0).map(|c| c.deleted), Some(2));
}

#[tokio::test]
async fn overdue_jobs_are_listed_as_overdue() {
    let app = spawn_app_with(Options { stage_pause_ms: 2_000, ..Default::default() }).await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    let slow = app.erase("ann").await;
    sqlx::query("UPDATE erasure_jobs SET deadline = now() - interval '1 day' WHERE job_id = $1")
        .bind(uuid::Uuid::parse_str(&slow.job_id).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let on_time = app.erase("bob").await;
    let overdue = app
        .client
        .clone()
        .list_erasures(req(&app.keys.ak, pb::ListErasuresRequest { overdue_only: true, ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].job_id, slow.job_id);
    assert!(overdue[0].overdue);
    assert!(!app.job(&on_time.job_id).await.overdue);
    assert_eq!(on_time.deadline.unwrap().seconds - on_time.received_at.unwrap().seconds, 30 * 86_400);
}

/// Verification reads one snapshot: entries appended while it runs were
/// reported as tampering (the chain "ending before its recorded head", a
/// certified entry "not in the chain").
#[tokio::test]
async fn the_log_verifies_while_entries_are_appended() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let people: Vec<String> = (0..24).map(|i| format!("p{i}")).collect();
    let spread: Vec<(&str, u32)> = people.iter().map(|p| (p.as_str(), 1)).collect();
    app.ingest_people(&c.name, &spread).await;
    let mut jobs = Vec::new();
    for who in &people {
        jobs.push(app.erase(who).await.job_id);
    }
    let mut checks = 0;
    loop {
        let v = verify(&app).await;
        assert!(v.valid, "check {checks}: {v:?}");
        checks += 1;
        if v.entries_checked == people.len() as u64 {
            break;
        }
        assert!(checks < 2000, "the erasures did not finish");
    }
    assert!(checks > 1, "verified while appending");
    for job in jobs {
        assert_eq!(app.wait_for_job(&job).await.status, pb::JobStatus::Completed as i32);
    }
}

/// A row outside the chain (sequence 0 or below, which verification never
/// walks but the export and the auditor's view would show) cannot be added,
/// whoever may insert into the log.
#[tokio::test]
async fn the_log_refuses_a_row_outside_the_chain() {
    let app = spawn_app().await;
    erase_three(&app).await;
    let copy = "INSERT INTO deletion_log (tenant_id, seq, kind, job_id, subject_hash, body, prev_hash, entry_hash, created_at, hash_version) \
                SELECT tenant_id, 0, kind, job_id, subject_hash, body, prev_hash, entry_hash, created_at, hash_version FROM deletion_log WHERE seq = 1";
    let err = sqlx::query(copy).execute(&app.pool).await.expect_err("seq 0");
    assert!(err.to_string().contains("deletion_log_seq_positive"), "{err}");
    let v = verify(&app).await;
    assert!(v.valid && v.entries_checked == 3, "{v:?}");
}
