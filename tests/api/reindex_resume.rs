//! A re-index and erasures that run while it does (issue 11 items 7 and 8):
//! a residual redaction made during the copy is what the promoted generation
//! holds, and a switch cut off between promoting and recording it resumes,
//! dropping (and reporting) every generation readers no longer see.

use lethe::grpc::pb;
use lethe::vector_store::VectorStore;
use uuid::Uuid;

use crate::helpers::*;
use crate::residual_progress::{naming_tim, run_to_end, tim};

async fn start_reindex(app: &TestApp, collection: &str) -> Uuid {
    let r = pb::ReindexRequest { collection: collection.into(), mode: pb::ReindexMode::Copy as i32 };
    let job = app.client.clone().reindex(req(&app.keys.sk, r)).await.expect("reindex").into_inner();
    job.job_id.parse().unwrap()
}

/// Runs the re-index's next stage; returns the stage it is at now.
async fn step(app: &TestApp, job: Uuid) -> String {
    lethe::reindex::step(&app.ctx, app.keys.tenant_id, job).await.expect("stage runs").stage
}

async fn store_and_spec(app: &TestApp, c: &pb::Collection) -> (std::sync::Arc<dyn VectorStore>, lethe::domain::CollectionSpec) {
    let spec = lethe::store::lineage::collection_by_name(&app.pool, app.keys.tenant_id, &c.name).await.unwrap().unwrap();
    let stores = lethe::startup::vector_stores(&app.settings, app.pool.clone()).await.expect("backends");
    (stores.get(&spec).expect("configured").clone(), spec)
}

fn close(a: &[f32], b: &[f32]) -> bool {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x / na - y / nb).abs() < 1e-4)
}

async fn a_redaction_during_the_copy_is_in_the_promoted_generation(backend: pb::Backend) {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let c = app.create_collection("mail", backend).await;
    naming_tim(&app, &c.name, 3).await;
    app.ingest_people(&c.name, &[("bob", 4)]).await;
    let reindex = start_reindex(&app, &c.name).await;
    assert_eq!(step(&app, reindex).await, "copy");
    assert_eq!(step(&app, reindex).await, "switch", "the copy holds the chunks as they were");

    // Tim's erasure redacts the chunks that name him while the re-index waits to switch.
    let r = pb::EraseRequest { subject: Some(tim()), residual_policy: pb::ResidualPolicy::Redact as i32, ..Default::default() };
    let done = run_to_end(&app, &app.erase_with(r).await.unwrap().job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!((done.counts[0].residual_found, done.counts[0].residual_redacted), (3, 3));

    assert_eq!(step(&app, reindex).await, "drop");
    assert_eq!(step(&app, reindex).await, "done");
    let (store, spec) = store_and_spec(&app, &c).await;
    let (points, _) = store.scroll(&spec, None, 1000, true).await.unwrap();
    assert_eq!(points.len(), 3 + 4, "the notes and bob's chunks; Tim's own is gone");
    let notes: Vec<_> = points.iter().filter(|p| p.payload.source_id.contains("about-tim")).collect();
    assert_eq!(notes.len(), 3);
    for p in notes {
        let text = p.payload.text.clone().unwrap();
        assert!(!text.contains("Belden") && text.contains("[redacted]"), "{text}");
        let want = app.ctx.embedder.embed(vec![text.clone()]).await.unwrap().remove(0);
        assert!(close(p.vector.as_ref().unwrap(), &want), "the promoted vector is the redacted text's: {text}");
    }
}

#[tokio::test]
async fn a_redaction_during_a_pgvector_reindex_copy_is_in_the_promoted_generation() {
    a_redaction_during_the_copy_is_in_the_promoted_generation(pb::Backend::Pgvector).await;
}

#[tokio::test]
async fn a_redaction_during_a_qdrant_reindex_copy_is_in_the_promoted_generation() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    a_redaction_during_the_copy_is_in_the_promoted_generation(pb::Backend::Qdrant).await;
}

async fn a_switch_cut_off_after_promoting_resumes_and_drops_unseen_generations(backend: pb::Backend) {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let c = app.create_collection("mail", backend).await;
    app.ingest_people(&c.name, &[("ann", 3), ("bob", 5)]).await;
    let erased = run_to_end(&app, &app.erase("ann").await.job_id).await;
    assert_eq!(erased.status, pb::JobStatus::Completed as i32, "{}", erased.error);
    let (store, spec) = store_and_spec(&app, &c).await;
    // A generation an earlier, interrupted re-index left behind.
    store.create_staging(&spec, "r0ddba11e").await.unwrap();

    let reindex = start_reindex(&app, &c.name).await;
    step(&app, reindex).await;
    assert_eq!(step(&app, reindex).await, "switch");
    // The crash: the new generation is promoted, the job never hears of it.
    let row = lethe::reindex::get(&app.ctx, app.keys.tenant_id, reindex).await.unwrap();
    let staging = lethe::domain::CollectionSpec { backend_name: row.staging_name.clone().unwrap(), ..spec.clone() };
    store.promote(&spec, &staging).await.unwrap();
    assert_eq!(store.orphans(&spec).await.unwrap().len(), 2, "the old generation (with ann's dead rows) and the stray");

    assert_eq!(step(&app, reindex).await, "drop", "the resumed switch records what happened");
    assert_eq!(step(&app, reindex).await, "done");
    let job = app
        .client
        .clone()
        .get_reindex(req(&app.keys.ak, pb::GetReindexRequest { job_id: reindex.to_string() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    assert_eq!((job.final_count, job.orphans_dropped), (5, 2));
    assert!(store.orphans(&spec).await.unwrap().is_empty(), "no generation is left that readers do not see");
    assert_eq!(store.count_all(&spec).await.unwrap(), 5, "bob's points are live");
    // Still writable and erasable.
    app.ingest_people(&c.name, &[("cyd", 2)]).await;
    let again = run_to_end(&app, &app.erase("cyd").await.job_id).await;
    assert_eq!((again.counts[0].before_total, again.counts[0].after_total), (2, 0));
}

#[tokio::test]
async fn a_pgvector_switch_cut_off_after_promoting_resumes_and_drops_unseen_generations() {
    a_switch_cut_off_after_promoting_resumes_and_drops_unseen_generations(pb::Backend::Pgvector).await;
}

#[tokio::test]
async fn a_qdrant_switch_cut_off_after_promoting_resumes_and_drops_unseen_generations() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    a_switch_cut_off_after_promoting_resumes_and_drops_unseen_generations(pb::Backend::Qdrant).await;
}

/// A subject frozen for an erasure that has deleted nothing yet keeps its
/// points through a re-index's switch: a legal hold placed next refuses the
/// erasure ("nothing was deleted"), and that must still be true.
#[tokio::test]
async fn a_switch_keeps_a_frozen_subjects_points_until_their_erasure_deletes() {
    let app = spawn_app_with(Options { no_workers: true, stage_pause_ms: 1500, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 3), ("bob", 2)]).await;
    let reindex = start_reindex(&app, &c.name).await;
    assert_eq!(step(&app, reindex).await, "copy");
    assert_eq!(step(&app, reindex).await, "switch");
    let job = app.erase("ann").await;
    let ctx = app.ctx.clone();
    let worker = tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await });
    // Frozen, planned at most: nothing deleted.
    crate::residual_progress::reach_stage(&app, &job.job_id, pb::Stage::Plan).await;
    assert_eq!(step(&app, reindex).await, "drop");
    let hold = pb::SetLegalHoldRequest { subject_id: "ann".into(), hold: true, reason: "case 11".into() };
    app.client.clone().set_legal_hold(req(&app.keys.sk, hold)).await.expect("hold");
    worker.await.expect("worker").expect("queue");
    let done = app.job(&job.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Refused as i32, "{}", done.error);
    assert_eq!(step(&app, reindex).await, "done");
    assert_eq!(app.pg_rows_tagged(&c, "ann").await, 3, "the refused erasure's subject keeps everything");
    assert_eq!(app.pg_rows_tagged(&c, "bob").await, 2);
    app.assert_lineage_consistent().await;
}
