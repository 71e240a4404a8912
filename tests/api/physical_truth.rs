//! "Physical: confirmed" only when it is true (issue 11 item 6), and
//! guaranteed physical erasure of Lethe's own tables that does not stall
//! every tenant (issue 12 item 5): rewrites only where the person had rows,
//! one rewrite for many jobs, at most one per interval.

use std::time::Duration;

use lethe::grpc::pb;
use sqlx::Connection;
use uuid::Uuid;

use crate::helpers::*;
use crate::physical::{found, pg_database_files};
use crate::residual_progress::{run_to_end, tim};

fn physically(mut r: pb::EraseRequest) -> pb::EraseRequest {
    r.guarantee_physical = true;
    r
}

fn erase(subject: &str) -> pb::EraseRequest {
    physically(pb::EraseRequest { subject: Some(person(subject)), ..Default::default() })
}

#[tokio::test]
async fn a_job_that_only_redacted_rewrites_what_held_the_old_text() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    // Tim has no vectors of his own; two notes of others name him.
    let notes = (0..2)
        .map(|i| chunk(&format!("note-{i}"), 0, &format!("Note {i}: send the numbers to Tim Belden by Friday noon."), &["ann"]))
        .collect();
    app.ingest(&c.name, notes).await.unwrap();
    let needle = b"send the numbers to Tim Belden by Friday".to_vec();
    assert_eq!(found(&pg_database_files(&app).await, std::slice::from_ref(&needle)), 1, "the scan sees the text before");

    let r = physically(pb::EraseRequest { subject: Some(tim()), residual_policy: pb::ResidualPolicy::Redact as i32, ..Default::default() });
    let done = app.wait_for_job(&app.erase_with(r).await.unwrap().job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let k = &done.counts[0];
    assert_eq!((k.deleted, k.residual_redacted), (0, 2));
    assert_eq!(k.physical_status, "confirmed", "{}", k.physical_detail);
    assert!(k.physical_detail.contains("VACUUM FULL"), "nothing was deleted, but rows were rewritten: {}", k.physical_detail);
    assert_eq!(done.lineage_physical_status, "confirmed", "{}", done.lineage_physical_detail);
    assert_eq!(found(&pg_database_files(&app).await, &[needle]), 0, "no old version of the text is left in any file");
}

#[tokio::test]
async fn a_reindex_in_flight_makes_pgvector_physical_erasure_pending() {
    let settings = Some((|s| s.erasure.physical_wait_secs = 1) as fn(&mut lethe::config::Settings));
    let app = spawn_app_with(Options { no_workers: true, settings, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 3), ("bob", 2)]).await;
    let r = pb::ReindexRequest { collection: c.name.clone(), mode: pb::ReindexMode::Copy as i32 };
    let reindex: Uuid = app.client.clone().reindex(req(&app.keys.sk, r)).await.unwrap().into_inner().job_id.parse().unwrap();
    let step = || lethe::reindex::step(&app.ctx, app.keys.tenant_id, reindex);
    step().await.unwrap();
    assert_eq!(step().await.unwrap().stage, "switch", "the staging table holds copies of ann's rows");

    let done = run_to_end(&app, &app.erase_with(erase("ann")).await.unwrap().job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.counts[0].deleted, 3);
    assert_eq!(done.counts[0].physical_status, "pending");
    assert!(done.counts[0].physical_detail.contains(&format!("re-index {reindex}")), "{}", done.counts[0].physical_detail);
    assert!(done.notes.iter().any(|n| n.code == "physical_pending"), "{:?}", done.notes);
    let (cert, _) = app.certified(&done.job_id).await;
    assert_eq!(cert["collections"][0]["physical_status"], "pending");
    // The re-index, once done, leaves ann out.
    step().await.unwrap();
    assert_eq!(step().await.unwrap().stage, "done");
    assert_eq!(app.pg_rows_tagged(&c, "ann").await, 0);
}

#[derive(sqlx::FromRow, Debug)]
struct Served {
    rewrite_tables: Vec<String>,
    tables: Vec<String>,
    forgotten_at: chrono::DateTime<chrono::Utc>,
    started_at: chrono::DateTime<chrono::Utc>,
}

async fn served(app: &TestApp, job_id: &str) -> Served {
    sqlx::query_as(
        "SELECT j.rewrite_tables, r.tables, j.forgotten_at, r.started_at FROM erasure_jobs j JOIN lineage_rewrites r USING (rewrite_id) \
         WHERE j.job_id = $1",
    )
    .bind(Uuid::parse_str(job_id).unwrap())
    .fetch_one(&app.pool)
    .await
    .expect("the job was served by a rewrite")
}

#[tokio::test]
async fn lethe_tables_are_rewritten_only_where_the_person_had_rows() {
    let app = spawn_app().await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    // Known by id only: no chunks, no identifiers, nothing deleted.
    let done = app.wait_for_job(&app.erase_with(erase("nobody")).await.unwrap().job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.counts[0].physical_status, "confirmed");
    assert_eq!(done.lineage_physical_status, "confirmed", "{}", done.lineage_physical_detail);
    let s = served(&app, &done.job_id).await;
    // Only the rows with the caller's id changed: the subject and the job's own.
    assert_eq!(s.rewrite_tables, ["erasure_jobs", "subjects"], "only the rows with the caller's id changed");
    assert_eq!(s.tables, ["erasure_jobs", "subjects"], "the shared lineage tables were not locked for it");
    assert!(s.started_at > s.forgotten_at);
}

#[tokio::test]
async fn one_rewrite_serves_the_jobs_waiting_and_rewrites_are_rate_limited() {
    let settings = Some((|s| s.erasure.lineage_rewrite_interval_secs = 3) as fn(&mut lethe::config::Settings));
    let app = spawn_app_with(Options { settings, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let people = ["p1", "p2", "p3", "p4", "p5", "p6"];
    app.ingest_people(&c.name, &people.iter().map(|p| (*p, 2)).collect::<Vec<_>>()).await;
    let mut jobs = Vec::new();
    for p in people {
        jobs.push(app.erase_with(erase(p)).await.unwrap().job_id);
    }
    for j in &jobs {
        let done = app.wait_for_job(j).await;
        assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
        assert_eq!(done.lineage_physical_status, "confirmed", "{}", done.lineage_physical_detail);
        let s = served(&app, j).await;
        assert!(s.started_at > s.forgotten_at, "the rewrite came after the job's rows were deleted: {s:?}");
        assert!(s.rewrite_tables.iter().all(|t| s.tables.contains(t)), "{s:?}");
        assert!(s.rewrite_tables.contains(&"chunks".to_owned()));
    }
    let starts: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT started_at FROM lineage_rewrites ORDER BY rewrite_id").fetch_all(&app.pool).await.unwrap();
    assert!(starts.len() < people.len(), "jobs shared rewrites: {} for {} jobs", starts.len(), people.len());
    for w in starts.windows(2) {
        assert!(w[1] - w[0] >= chrono::Duration::seconds(3), "at most one rewrite per interval: {starts:?}");
    }
}

#[tokio::test]
async fn a_snapshot_older_than_the_deletion_makes_lethe_tables_pending() {
    let settings = Some((|s| s.erasure.physical_wait_secs = 1) as fn(&mut lethe::config::Settings));
    let app = spawn_app_with(Options { settings, ..Default::default() }).await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    // Another session keeps a snapshot from before the erasure.
    let mut other = sqlx::PgConnection::connect(&database_url()).await.unwrap();
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ").execute(&mut other).await.unwrap();
    sqlx::query("SELECT count(*) FROM pg_class").execute(&mut other).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut other).await.unwrap();
    let r = physically(pb::EraseRequest { subject: Some(tim()), ..Default::default() });
    let done = app.wait_for_job(&app.erase_with(r).await.unwrap().job_id).await;
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.lineage_physical_status, "pending");
    // The session named is one in the way: this test's, or (tests share
    // the cluster, whose every session holds the horizon) another test's
    // that held an older one at the time.
    assert!(done.lineage_physical_detail.contains("session "), "{} (this test's session: {pid})", done.lineage_physical_detail);
    let note = done.notes.iter().find(|n| n.code == "physical_pending").expect("a note says so");
    assert!(note.message.contains("Lethe's own tables"), "{}", note.message);
    let (cert, log) = app.certified(&done.job_id).await;
    for body in [cert, log] {
        assert_eq!(body["lineage_physical"]["status"], "pending", "{body}");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// A rewrite of Lethe's tables asks for an exclusive lock, and every
/// statement on the table queues behind it while it waits. A transaction
/// holding `chunks` (here the test's, idle after a read) made it wait, and
/// every write to `chunks` with it, for as long as that transaction lived.
/// It now gives up after `VACUUM_LOCK_TIMEOUT`; the stage is retried later,
/// writes go on meanwhile, and once the way is clear the rewrite is done.
#[tokio::test]
async fn a_rewrite_that_cannot_take_its_lock_gives_way_and_is_tried_again() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2), ("bob", 1)]).await;
    let mut holder = app.pool.begin().await.unwrap();
    // Read committed, idle after the read: the table's lock, no snapshot.
    sqlx::query("SELECT 1 FROM chunks LIMIT 1").execute(&mut *holder).await.unwrap();
    let job = app.erase_with(erase("ann")).await.unwrap().job_id;
    let job_uuid: Uuid = job.parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (stage, attempts): (String, i32) = sqlx::query_as("SELECT stage, attempts FROM erasure_jobs WHERE job_id = $1")
            .bind(job_uuid)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if stage == "physical" && attempts >= 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the rewrite neither ran nor gave way: {stage}, {attempts} attempts");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Writes to the table go on while the rewrite waits for its next try.
    let written = tokio::time::timeout(Duration::from_secs(30), app.ingest(&c.name, vec![chunk("cy-1", 0, "cy's note", &["cy"])]))
        .await
        .expect("a write is not held behind the rewrite");
    written.expect("ingest");
    holder.commit().await.unwrap();
    let done = app.wait_for_job(&job).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.lineage_physical_status, "confirmed", "{}", done.lineage_physical_detail);
}
