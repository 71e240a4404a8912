//! Legal holds at every destructive step (issue 11 item 4), not only at
//! submit: a hold on the subject before anything is deleted refuses the job
//! (logged as a refusal, nothing deleted, the subject unfrozen); a hold that
//! arrives after the delete stops everything destructive that is left and
//! the certificate says so; the person's points and residual candidates
//! that are shared with another subject on hold are kept and reported.

use std::time::Duration;

use lethe::grpc::pb;
use lethe::vector_store::{PointPayload, VectorPoint};
use uuid::Uuid;

use crate::helpers::*;
use crate::residual_progress::{reach_stage, run_to_end};

const ANN_EMAIL: &str = "ann.lee@acme.example";

async fn set_hold(app: &TestApp, subject: &str, hold: bool) {
    let r = pb::SetLegalHoldRequest { subject_id: subject.into(), hold, reason: if hold { "case 2026-42".into() } else { String::new() } };
    let s = app.client.clone().set_legal_hold(req(&app.keys.sk, r)).await.expect("set legal hold").into_inner();
    assert_eq!(s.legal_hold, hold);
}

fn ann() -> pb::SubjectRef {
    pb::SubjectRef {
        id: "ann".into(),
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: ANN_EMAIL.into() }],
    }
}

fn erase_ann(policy: pb::ResidualPolicy) -> pb::EraseRequest {
    pb::EraseRequest { subject: Some(ann()), residual_policy: policy as i32, ..Default::default() }
}

/// Ann's own three chunks, bob's two, and cyd's note that names ann.
async fn corpus(app: &TestApp, collection: &str) {
    app.ingest_people(collection, &[("ann", 3), ("bob", 2)]).await;
    let note = chunk("cyd-note", 0, &format!("Cyd asked {ANN_EMAIL} for the slides."), &["cyd"]);
    app.ingest(collection, vec![note]).await.expect("ingest");
}

async fn log_kinds(app: &TestApp, job_id: &str) -> Vec<String> {
    let log = app.client.clone().list_deletion_log(req(&app.keys.ak, pb::ListDeletionLogRequest::default())).await.unwrap();
    log.into_inner().entries.into_iter().filter(|e| e.job_id == job_id).map(|e| e.kind).collect()
}

async fn subject_state(app: &TestApp) -> String {
    sqlx::query_scalar("SELECT state FROM subjects WHERE external_id = 'ann'").fetch_one(&app.pool).await.expect("ann")
}

/// A hold placed while the job waits (queued, or paused before `stage`)
/// refuses it: nothing deleted, the refusal logged, the subject free again.
async fn a_hold_before_the_delete_refuses_the_job(stage: Option<pb::Stage>) {
    let app = spawn_app_with(Options { no_workers: true, stage_pause_ms: 300, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    corpus(&app, &c.name).await;
    let job = app.erase_with(erase_ann(pb::ResidualPolicy::Delete)).await.unwrap().job_id;
    let done = match stage {
        None => {
            set_hold(&app, "ann", true).await;
            run_to_end(&app, &job).await
        }
        Some(stage) => {
            let ctx = app.ctx.clone();
            let worker = tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await });
            reach_stage(&app, &job, stage).await;
            set_hold(&app, "ann", true).await;
            worker.await.unwrap().unwrap();
            app.job(&job).await
        }
    };
    assert_eq!(done.status, pb::JobStatus::Refused as i32, "{done:?}");
    assert!(done.error.starts_with("legal_hold: case 2026-42"), "{}", done.error);
    assert_eq!(app.pg_rows_tagged(&c, "ann").await, 3, "nothing was deleted");
    assert_eq!(log_kinds(&app, &job).await, ["refusal"]);
    assert_eq!(rows(&app.pool, "certificates").await, 0);
    assert_eq!(rows(&app.pool, "erasure_probes").await, 0, "what the plan captured is gone");
    assert_eq!(subject_state(&app).await, "active", "the subject is not frozen any more");
    let w = app.ingest(&c.name, vec![chunk("ann-late", 0, "a late note by ann", &["ann"])]).await.unwrap();
    assert_eq!(w.suppressed, 0);

    // Once the hold is lifted, the erasure goes through.
    set_hold(&app, "ann", false).await;
    let again = run_to_end(&app, &app.erase_with(erase_ann(pb::ResidualPolicy::Delete)).await.unwrap().job_id).await;
    assert_eq!(again.status, pb::JobStatus::Completed as i32, "{}", again.error);
    assert_eq!((again.counts[0].before_total, again.counts[0].after_total), (4, 0));
}

#[tokio::test]
async fn a_hold_placed_while_the_job_is_queued_refuses_it() {
    a_hold_before_the_delete_refuses_the_job(None).await;
}

#[tokio::test]
async fn a_hold_placed_after_the_freeze_refuses_the_job_before_anything_is_deleted() {
    a_hold_before_the_delete_refuses_the_job(Some(pb::Stage::Delete)).await;
}

#[tokio::test]
async fn a_hold_placed_after_the_delete_stops_what_is_left_and_the_certificate_says_so() {
    let app = spawn_app_with(Options { no_workers: true, stage_pause_ms: 300, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    corpus(&app, &c.name).await;
    let job = app.erase_with(erase_ann(pb::ResidualPolicy::Delete)).await.unwrap().job_id;
    let ctx = app.ctx.clone();
    let worker = tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await });
    reach_stage(&app, &job, pb::Stage::Verify).await;
    set_hold(&app, "ann", true).await;
    tokio::time::timeout(Duration::from_secs(30), worker).await.unwrap().unwrap().unwrap();

    let done = app.job(&job).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!((done.counts[0].deleted, done.counts[0].after_total), (3, 0), "the deletion cannot be undone");
    // Cyd's note names ann: found, but neither deleted nor forgotten.
    assert_eq!(done.residuals.len(), 1);
    assert_eq!(done.residuals[0].action, "withheld_legal_hold");
    assert_eq!((done.counts[0].residual_found, done.counts[0].residual_deleted, done.counts[0].residual_withheld), (1, 0, 1));
    let cyd: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks c JOIN sources s USING (source_id) WHERE s.external_id = 'cyd-note'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(cyd, 1);
    assert_eq!(app.lineage_chunks_of("ann").await, 3, "ann's lineage is kept while the hold lasts");
    assert_eq!(subject_state(&app).await, "pending_erasure", "and ann stays frozen");
    let stages: Vec<&str> = done.notes.iter().filter(|n| n.code == "legal_hold").map(|n| n.stage.as_str()).collect();
    assert_eq!(stages, ["residual", "forget_lineage"], "{:?}", done.notes);
    assert!(done.notes[0].message.contains("cannot be undone"), "{:?}", done.notes);
    let (cert, log) = app.certified(&job).await;
    for body in [cert, log] {
        let codes: Vec<&str> = body["notes"].as_array().unwrap().iter().filter_map(|n| n["code"].as_str()).collect();
        assert_eq!(codes, ["legal_hold", "legal_hold"], "{body}");
        assert_eq!(body["collections"][0]["residual_withheld"], 1);
    }
}

async fn shared_points_and_candidates_of_a_held_subject_are_kept(backend: pb::Backend) {
    let app = spawn_app().await;
    let c = app.create_collection("mail", backend).await;
    app.ingest_people(&c.name, &[("ann", 2)]).await;
    let chunks = vec![
        chunk("minutes", 0, "Minutes of the meeting of ann and bob about the merger.", &["ann", "bob"]),
        chunk("bob-mail", 0, &format!("Bob wrote to {ANN_EMAIL} about the merger."), &["bob"]),
        chunk("cyd-mail", 0, &format!("Cyd wrote to {ANN_EMAIL} about lunch."), &["cyd"]),
    ];
    app.ingest(&c.name, chunks).await.unwrap();
    // A point the pipeline wrote for ann and bob that lineage does not know.
    let spec = lethe::store::lineage::collection_by_name(&app.pool, app.keys.tenant_id, &c.name).await.unwrap().unwrap();
    let stores = lethe::startup::vector_stores(&app.settings, app.pool.clone()).await.unwrap();
    let store = stores.get(&spec).unwrap().clone();
    let stray = Uuid::new_v4();
    let payload = PointPayload { tenant_id: app.keys.tenant_id, source_id: "stray".into(), subjects: vec!["ann".into(), "bob".into()], text: None };
    let vector = app.ctx.embedder.embed(vec!["stray".into()]).await.unwrap().remove(0);
    store.upsert(&spec, &[VectorPoint { id: stray, vector, payload }]).await.unwrap();
    set_hold(&app, "bob", true).await;

    let done = app.wait_for_job(&app.erase_with(erase_ann(pb::ResidualPolicy::Delete)).await.unwrap().job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let k = &done.counts[0];
    assert_eq!((k.before_total, k.deleted, k.after_total, k.withheld), (4, 2, 2, 2), "{k:?}");
    assert_eq!((k.residual_found, k.residual_deleted, k.residual_withheld), (2, 1, 1), "{k:?}");
    let action = |s: &str| done.residuals.iter().find(|r| r.source_id == s).map(|r| r.action.clone());
    assert_eq!(action("bob-mail").as_deref(), Some("withheld_legal_hold"));
    assert_eq!(action("cyd-mail").as_deref(), Some("deleted"));
    let (points, _) = store.scroll(&spec, None, 100, false).await.unwrap();
    let sources: std::collections::BTreeSet<String> = points.into_iter().map(|p| p.payload.source_id).collect();
    assert_eq!(sources, ["bob-mail", "minutes", "stray"].iter().map(|s| (*s).to_owned()).collect());
    let codes: Vec<(String, String)> = done.notes.iter().map(|n| (n.code.clone(), n.stage.clone())).collect();
    assert!(codes.contains(&("legal_hold_withheld".into(), "verify".into())), "{codes:?}");
    assert!(codes.contains(&("legal_hold_withheld".into(), "residual".into())), "{codes:?}");
    let (cert, _) = app.certified(&done.job_id).await;
    assert_eq!(cert["collections"][0]["withheld"], 2);
    // The shared chunk keeps its lineage: a re-index keeps it, and ann's
    // next erasure, once the hold is lifted, finds it.
    assert_eq!(app.lineage_chunks_of("ann").await, 1);
    let r = crate::reindex::reindex(&app, &c.name, pb::ReindexMode::Copy).await;
    assert_eq!(r.status, pb::JobStatus::Completed as i32, "{}", r.error);
    assert_eq!(store.count(&spec, &lethe::vector_store::Selector::by_tag("bob")).await.unwrap(), 2, "minutes and bob-mail stay");
    set_hold(&app, "bob", false).await;
    let again = app.wait_for_job(&app.erase_with(erase_ann(pb::ResidualPolicy::Delete)).await.unwrap().job_id).await;
    assert_eq!(again.status, pb::JobStatus::Completed as i32, "{}", again.error);
    assert_eq!((again.counts[0].before_total, again.counts[0].after_total, again.counts[0].withheld), (1, 0, 0));
    app.assert_lineage_consistent().await;
}

#[tokio::test]
async fn on_pgvector_points_and_candidates_shared_with_a_held_subject_are_kept_and_reported() {
    shared_points_and_candidates_of_a_held_subject_are_kept(pb::Backend::Pgvector).await;
}

#[tokio::test]
async fn on_qdrant_points_and_candidates_shared_with_a_held_subject_are_kept_and_reported() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    shared_points_and_candidates_of_a_held_subject_are_kept(pb::Backend::Qdrant).await;
}

#[tokio::test]
async fn redaction_leaves_the_chunks_of_a_held_subject_as_they_are() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let bob_text = format!("Bob wrote to {ANN_EMAIL} about the merger.");
    let chunks = vec![
        chunk("ann-own", 0, "A note ann wrote herself.", &["ann"]),
        chunk("bob-mail", 0, &bob_text, &["bob"]),
        chunk("cyd-mail", 0, &format!("Cyd wrote to {ANN_EMAIL} about lunch."), &["cyd"]),
    ];
    app.ingest(&c.name, chunks).await.unwrap();
    set_hold(&app, "bob", true).await;
    let done = app.wait_for_job(&app.erase_with(erase_ann(pb::ResidualPolicy::Redact)).await.unwrap().job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!((done.counts[0].residual_redacted, done.counts[0].residual_withheld), (1, 1));
    let text = |s: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT c.text FROM chunks c JOIN sources s USING (source_id) WHERE s.external_id = $1")
                .bind(s)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(text("bob-mail").await, bob_text, "bob's chunk is as it was");
    assert!(!text("cyd-mail").await.contains(ANN_EMAIL));
    let payload: String = sqlx::query_scalar(&format!("SELECT text FROM \"{}\" WHERE source_id = 'bob-mail'", c.backend_name))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(payload, bob_text);
}
