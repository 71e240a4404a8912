use std::time::Duration;

use lethe::grpc::pb;
use rand::{Rng, SeedableRng};

use crate::helpers::*;

/// `n` random unit vectors of the app's dimension.
pub fn random_vectors(app: &TestApp, n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..app.settings.embedding.dimension).map(|_| rng.r#gen::<f32>() - 0.5).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// Tracks vectors for a subject; returns them.
pub async fn track(app: &TestApp, collection: &str, who: &str, n: usize, seed: u64) -> Vec<Vec<f32>> {
    let vectors = random_vectors(app, n, seed);
    let points = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| pb::TrackedPoint {
            point_id: uuid::Uuid::new_v4().to_string(),
            source_id: format!("{who}-{seed}-{i}"),
            text: format!("{who} wrote chunk {i}"),
            tags: vec![pb::SubjectTag { subject_id: who.into(), role: pb::TagRole::Owner as i32 }],
            vector: v.clone(),
            ..Default::default()
        })
        .collect();
    assert_eq!(track_points(app, collection, points).await as usize, n);
    vectors
}

/// Tracks `points` with the secret key; returns how many were accepted.
pub async fn track_points(app: &TestApp, collection: &str, points: Vec<pb::TrackedPoint>) -> u32 {
    app.client
        .clone()
        .track(req(&app.keys.sk, pb::TrackRequest { collection: collection.into(), points, ..Default::default() }))
        .await
        .expect("track")
        .into_inner()
        .accepted
}

pub async fn reindex(app: &TestApp, collection: &str, mode: pb::ReindexMode) -> pb::ReindexJob {
    let mut client = app.client.clone();
    let job = client
        .reindex(req(&app.keys.sk, pb::ReindexRequest { collection: collection.into(), mode: mode as i32 }))
        .await
        .expect("reindex")
        .into_inner();
    let mut stream = client
        .watch_reindex(req(&app.keys.ak, pb::GetReindexRequest { job_id: job.job_id.clone() }))
        .await
        .expect("watch")
        .into_inner();
    let mut last = job;
    while let Some(j) = tokio::time::timeout(Duration::from_secs(60), stream.message()).await.expect("progress").expect("stream") {
        last = j;
    }
    last
}

async fn rows(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\"")).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn reindex_rebuilds_from_lineage_without_erased_or_untracked_vectors() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    track(&app, &c.name, "ann", 30, 1).await;
    track(&app, &c.name, "bob", 20, 2).await;
    // A vector nobody told Lethe about, and one of ann's that survived outside lineage.
    sqlx::query(&format!(
        "INSERT INTO \"{}\" (point_id, tenant_id, source_id, subjects, embedding) \
         SELECT gen_random_uuid(), tenant_id, 'stray', ARRAY['ann'], embedding FROM \"{}\" LIMIT 2",
        c.backend_name, c.backend_name
    ))
    .execute(&app.pool)
    .await
    .unwrap();
    let done = app.wait_for_job(&app.erase("ann").await.job_id).await;
    assert_eq!(done.counts[0].before_total, 32, "the tag finds ann's strays too");

    let job = reindex(&app, &c.name, pb::ReindexMode::Copy).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    assert_eq!((job.total, job.copied, job.final_count), (20, 20, 20));
    assert_eq!(job.stage, "done");
    // Readers use the same name; the old generation is gone.
    assert_eq!(rows(&app, &c.backend_name).await, 20);
    assert_eq!(app.pg_rows_tagged(&c, "bob").await, 20);
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename LIKE $1")
        .bind(format!("{}%", c.backend_name))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(tables, 1, "staging renamed in, retired dropped");
    // Still writable and erasable after the switch.
    track(&app, &c.name, "cyd", 3, 3).await;
    let again = app.wait_for_job(&app.erase("cyd").await.job_id).await;
    assert_eq!((again.counts[0].before_total, again.counts[0].after_total), (3, 0));
}

/// The nil UUID is a point id a client may choose; re-index pages by id from
/// the nil UUID up (an index range its workers' generic plans can use), so
/// the first page must keep it, in both modes.
#[tokio::test]
async fn a_point_with_the_nil_id_survives_a_reindex() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    track(&app, &c.name, "ann", 3, 1).await;
    let nil = uuid::Uuid::nil();
    let point = pb::TrackedPoint {
        point_id: nil.to_string(),
        source_id: "nil-source".into(),
        text: "bob wrote the first chunk".into(),
        tags: vec![pb::SubjectTag { subject_id: "bob".into(), role: pb::TagRole::Owner as i32 }],
        vector: random_vectors(&app, 1, 9).remove(0),
        ..Default::default()
    };
    assert_eq!(track_points(&app, &c.name, vec![point]).await, 1, "the nil id is a point id");
    for mode in [pb::ReindexMode::Copy, pb::ReindexMode::Reembed] {
        let job = reindex(&app, &c.name, mode).await;
        assert_eq!(job.status, pb::JobStatus::Completed as i32, "{mode:?}: {}", job.error);
        assert_eq!((job.total, job.copied, job.final_count), (4, 4, 4), "{mode:?}");
        let kept: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\" WHERE point_id = $1", c.backend_name))
            .bind(nil)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(kept, 1, "{mode:?}: the nil id's vector is in the new generation");
    }
    let done = app.wait_for_job(&app.erase("bob").await.job_id).await;
    assert_eq!((done.counts[0].before_total, done.counts[0].after_total), (1, 0));
}

#[tokio::test]
async fn reembed_rebuilds_vectors_from_stored_text() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 4)]).await;
    sqlx::query(&format!("UPDATE \"{}\" SET embedding = array_fill(0.5, ARRAY[384])::vector", c.backend_name))
        .execute(&app.pool)
        .await
        .unwrap();
    let job = reindex(&app, &c.name, pb::ReindexMode::Reembed).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    let stale: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{}\" WHERE embedding = array_fill(0.5, ARRAY[384])::vector",
        c.backend_name
    ))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stale, 0, "every vector was embedded again");
}

#[tokio::test]
async fn writes_and_erasures_during_a_reindex_are_neither_lost_nor_resurrected() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    for seed in 0..4 {
        track(&app, &c.name, "bob", 500, seed).await;
    }
    track(&app, &c.name, "ann", 200, 10).await;
    let mut client = app.client.clone();
    let job = client
        .reindex(req(&app.keys.sk, pb::ReindexRequest { collection: c.name.clone(), mode: 1 }))
        .await
        .unwrap()
        .into_inner();
    // Meanwhile: new chunks for cyd, and ann's erasure.
    let erase = app.erase("ann").await;
    let mut written = 0;
    for seed in 20..26 {
        track(&app, &c.name, "cyd", 25, seed).await;
        written += 25;
    }
    let done = app.wait_for_job(&erase.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let finished = loop {
        let j = client.get_reindex(req(&app.keys.ak, pb::GetReindexRequest { job_id: job.job_id.clone() })).await.unwrap().into_inner();
        if j.status == pb::JobStatus::Completed as i32 || j.status == pb::JobStatus::Failed as i32 {
            break j;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(finished.status, pb::JobStatus::Completed as i32, "{}", finished.error);
    assert_eq!(app.pg_rows_tagged(&c, "ann").await, 0, "ann is not resurrected");
    assert_eq!(app.pg_rows_tagged(&c, "cyd").await, written, "no write is lost");
    assert_eq!(app.pg_rows_tagged(&c, "bob").await, 2000);
    let lineage: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks").fetch_one(&app.pool).await.unwrap();
    assert_eq!(rows(&app, &c.backend_name).await, lineage, "backend and lineage agree");
}

/// The copy's start is recorded only once the writes in flight to the
/// collection have finished (they hold its lock shared from lineage to
/// vector): a write whose lineage came just before the start and whose
/// vector came after the copy read it would be promoted with its old vector.
#[tokio::test]
async fn a_reindex_starts_its_copy_after_the_writes_in_flight() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    track(&app, &c.name, "ann", 3, 1).await;
    let write = app.write_in_flight(&c.name).await;
    let job = app
        .client
        .clone()
        .reindex(req(&app.keys.sk, pb::ReindexRequest { collection: c.name.clone(), mode: pb::ReindexMode::Copy as i32 }))
        .await
        .expect("reindex")
        .into_inner();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let started: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT copy_started_at FROM reindex_jobs WHERE job_id = $1::uuid").bind(&job.job_id).fetch_one(&app.pool).await.unwrap();
    assert_eq!(started, None, "no copy starts while a write is in flight");
    write.commit().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let j = app.client.clone().get_reindex(req(&app.keys.ak, pb::GetReindexRequest { job_id: job.job_id.clone() })).await.unwrap().into_inner();
        if j.status == pb::JobStatus::Completed as i32 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{j:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows(&app, &c.backend_name).await, 3);
}

/// A re-index asked for while one runs: the same mode again answers with the
/// running job; another mode is refused (FAILED_PRECONDITION), not answered
/// with a job of the mode it did not ask for.
#[tokio::test]
async fn a_reindex_of_another_mode_while_one_runs_is_refused() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2)]).await;
    let ask = |mode: pb::ReindexMode| {
        let mut client = app.client.clone();
        let r = req(&app.keys.sk, pb::ReindexRequest { collection: c.name.clone(), mode: mode as i32 });
        async move { client.reindex(r).await.map(tonic::Response::into_inner) }
    };
    let first = ask(pb::ReindexMode::Copy).await.expect("queued");
    assert_eq!(ask(pb::ReindexMode::Copy).await.expect("the same again").job_id, first.job_id);
    let e = ask(pb::ReindexMode::Reembed).await.expect_err("another mode while it runs");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains(&first.job_id), "{e:?}");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM reindex_jobs").fetch_one(&app.pool).await.unwrap();
    assert_eq!(jobs, 1);
}
