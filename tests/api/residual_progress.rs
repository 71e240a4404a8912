//! The residual stage's counts survive retries and crashes, and nothing it
//! leaves out goes unsaid (issue 11 item 5): a failure in a later
//! collection, then a retry, keeps the earlier collection's deletions
//! counted (and physically reclaimed); candidates beyond the limits are
//! said to be capped, in the job and in its certificate.

use std::time::Duration;

use lethe::grpc::pb;
use uuid::Uuid;

use crate::helpers::*;

pub const TIM_EMAIL: &str = "tim.belden@enron.com";

pub fn tim() -> pb::SubjectRef {
    let ident = |kind: pb::IdentifierKind, value: &str| pb::Identifier { kind: kind as i32, value: value.into() };
    pb::SubjectRef {
        id: "tim".into(),
        identifiers: vec![ident(pb::IdentifierKind::Email, TIM_EMAIL), ident(pb::IdentifierKind::Name, "Tim Belden")],
    }
}

/// Tim's own chunk and `n` chunks of others that name him, in `collection`.
pub async fn naming_tim(app: &TestApp, collection: &str, n: usize) {
    let mut chunks = vec![chunk(&format!("{collection}-tim"), 0, &format!("From: {TIM_EMAIL}\nLunch on Friday?"), &["tim"])];
    for i in 0..n {
        let text = format!("Note {i} for {collection}: please send the curtailment numbers to Tim Belden today.");
        chunks.push(chunk(&format!("{collection}-about-tim-{i}"), 0, &text, &["ann"]));
    }
    app.ingest(collection, chunks).await.expect("ingest");
}

/// Runs the queued job with this test's own worker until it ends (a
/// transient failure releases it for a retry after a back-off).
pub async fn run_to_end(app: &TestApp, job_id: &str) -> pb::ErasureJob {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            lethe::erasure::try_execute_job(&app.ctx, Uuid::new_v4()).await.expect("queue");
            let j = app.job(job_id).await;
            if [pb::JobStatus::Completed as i32, pb::JobStatus::Failed as i32, pb::JobStatus::Refused as i32].contains(&j.status) {
                return j;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the job ends")
}

/// Waits until the job's persisted stage is `stage`.
pub async fn reach_stage(app: &TestApp, job_id: &str, stage: pb::Stage) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while app.job(job_id).await.stage != stage as i32 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the job reaches the stage");
}

async fn rename(app: &TestApp, from: &str, to: &str) {
    sqlx::query(&format!("ALTER TABLE \"{from}\" RENAME TO \"{to}\"")).execute(&app.pool).await.expect("rename");
}

#[tokio::test]
async fn residual_deletions_stay_counted_when_a_later_collection_fails_and_the_stage_is_retried() {
    // Lexical search only: it reads lineage, not the backend, so the broken
    // table is first touched by the deletes.
    let settings = Some((|s| s.residual.semantic = false) as fn(&mut lethe::config::Settings));
    let app = spawn_app_with(Options { no_workers: true, stage_pause_ms: 400, settings, ..Default::default() }).await;
    let a = app.create_collection("first", pb::Backend::Pgvector).await;
    let b = app.create_collection("second", pb::Backend::Pgvector).await;
    naming_tim(&app, &a.name, 2).await;
    naming_tim(&app, &b.name, 3).await;
    // Collections are acted on in id order: the later one fails.
    let id = |c: &pb::Collection| Uuid::parse_str(c.backend_name.trim_start_matches("lv_")).unwrap();
    let (done_first, fails) = if id(&a) < id(&b) { (&a, &b) } else { (&b, &a) };
    let r = pb::EraseRequest {
        subject: Some(tim()),
        residual_policy: pb::ResidualPolicy::Delete as i32,
        guarantee_physical: true,
        ..Default::default()
    };
    let job = app.erase_with(r).await.unwrap().job_id;

    let ctx = app.ctx.clone();
    let first_attempt = tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await });
    // The worker pauses before the residual stage: the later collection's
    // table goes away meanwhile, so its deletes fail after the first
    // collection's succeeded.
    reach_stage(&app, &job, pb::Stage::Residual).await;
    rename(&app, &fails.backend_name, "away").await;
    first_attempt.await.unwrap().unwrap();
    let stopped = app.job(&job).await;
    assert_eq!(stopped.status, pb::JobStatus::InProgress as i32, "released for a retry: {}", stopped.error);
    assert_eq!(stopped.stage, pb::Stage::Residual as i32);
    let pending: Vec<&str> =
        stopped.residuals.iter().filter(|c| c.action == "pending_delete").map(|c| c.collection.as_str()).collect();
    let notes = if fails.name == a.name { 2 } else { 3 };
    assert_eq!(pending, vec![fails.name.as_str(); notes], "the failed collection's candidates are still to do: {stopped:?}");

    rename(&app, "away", &fails.backend_name).await;
    let done = run_to_end(&app, &job).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let count = |c: &pb::Collection| done.counts.iter().find(|k| k.collection == c.name).unwrap().clone();
    for (c, n) in [(done_first, if done_first.name == a.name { 2 } else { 3 }), (fails, if fails.name == a.name { 2 } else { 3 })] {
        let k = count(c);
        assert_eq!((k.residual_found, k.residual_deleted), (n, n), "{}: {k:?}", c.name);
        assert_eq!(k.physical_status, "confirmed", "{}", k.physical_detail);
        assert!(k.physical_detail.contains("VACUUM FULL"), "the table was rewritten: {}", k.physical_detail);
        let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\" WHERE text ILIKE '%belden%'", c.backend_name))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(left, 0, "{}", c.name);
    }
    assert!(done.residuals.iter().all(|c| c.action == "deleted"), "{:?}", done.residuals);
    let (cert, log) = app.certified(&job).await;
    for body in [&cert, &log] {
        let deleted: i64 = body["collections"].as_array().unwrap().iter().map(|c| c["residual_deleted"].as_i64().unwrap()).sum();
        assert_eq!(deleted, 5);
    }
}

#[tokio::test]
async fn candidates_beyond_the_limit_are_said_to_be_capped() {
    let app = spawn_app_with(Options { settings: Some(|s| s.residual.max_candidates = 2), ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    naming_tim(&app, &c.name, 5).await;
    let r = pb::EraseRequest { subject: Some(tim()), residual_policy: pb::ResidualPolicy::Delete as i32, ..Default::default() };
    let done = app.wait_for_job(&app.erase_with(r).await.unwrap().job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.residuals.len(), 2);
    assert_eq!((done.counts[0].residual_found, done.counts[0].residual_deleted), (2, 2));
    let note = done.notes.iter().find(|n| n.code == "residual_candidates_capped").expect("a note says so");
    assert!(note.message.starts_with("5 residual candidates qualified; the 2 best were kept"), "{}", note.message);
    assert_eq!(note.stage, "residual");
    let (cert, log) = app.certified(&done.job_id).await;
    for body in [cert, log] {
        assert!(body["notes"].as_array().unwrap().iter().any(|n| n["code"] == "residual_candidates_capped"), "{body}");
    }
    // The three left out are still there, and said to be.
    let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\" WHERE text ILIKE '%belden%'", c.backend_name))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 3);
}

/// Issue 12 item 3: an identifier that matches more chunks than
/// `residual.max_destructive_per_identifier` is too common to act on.
#[tokio::test]
async fn candidates_found_only_through_a_too_common_identifier_are_reported_not_deleted() {
    let settings = Some((|s| s.residual.max_destructive_per_identifier = 3) as fn(&mut lethe::config::Settings));
    let app = spawn_app_with(Options { settings, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    // The name in five chunks of others, the address in one, both in one.
    naming_tim(&app, &c.name, 5).await;
    let more = vec![
        chunk("to-tim", 0, &format!("Forwarded to {TIM_EMAIL} on Monday."), &["ann"]),
        chunk("both", 0, &format!("Tim Belden <{TIM_EMAIL}> joined the call."), &["ann"]),
    ];
    app.ingest(&c.name, more).await.unwrap();
    let r = pb::EraseRequest { subject: Some(tim()), residual_policy: pb::ResidualPolicy::Delete as i32, ..Default::default() };
    let done = app.wait_for_job(&app.erase_with(r).await.unwrap().job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let action = |s: &str| done.residuals.iter().find(|r| r.source_id == s).map(|r| r.action.as_str()).unwrap_or("missing");
    assert_eq!((action("to-tim"), action("both")), ("deleted", "deleted"));
    for i in 0..5 {
        assert_eq!(action(&format!("mail-about-tim-{i}")), "withheld_too_common");
    }
    assert_eq!((done.counts[0].residual_found, done.counts[0].residual_deleted), (7, 2));
    let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\" WHERE text ILIKE '%Tim Belden today%'", c.backend_name))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 5, "nothing found only through the name was deleted");
    let note = done.notes.iter().find(|n| n.code == "residual_identifier_too_common").expect("a note says so");
    assert!(note.message.contains("(name) matched 6 chunks; the 5 candidates found only through it"), "{}", note.message);
    assert!(!note.message.contains("Belden"), "no plaintext in a note: {}", note.message);
    let (cert, _) = app.certified(&done.job_id).await;
    assert!(cert["notes"].as_array().unwrap().iter().any(|n| n["code"] == "residual_identifier_too_common"));
    let event: String = sqlx::query_scalar("SELECT message FROM erasure_events WHERE job_id = $1 AND stage = 'residual'")
        .bind(Uuid::parse_str(&done.job_id).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(event.contains("5 withheld as found only through too common identifiers"), "{event}");
}

/// A residual stage that only reports (the default policy) changes nothing
/// in a collection: it records its candidates without taking the
/// collection's lock, so a re-index holding it does not hold the erasure
/// up; one that deletes waits for the lock, as before.
#[tokio::test]
async fn a_residual_stage_that_only_reports_takes_no_collection_lock_and_one_that_deletes_waits_for_it() {
    let app = spawn_app_with(Options { no_workers: true, stage_pause_ms: 300, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    naming_tim(&app, &c.name, 2).await;
    let key = lethe::context::collection_lock_key(Uuid::parse_str(c.backend_name.trim_start_matches("lv_")).unwrap());
    for policy in [pb::ResidualPolicy::Report, pb::ResidualPolicy::Delete] {
        let r = pb::EraseRequest { subject: Some(tim()), residual_policy: policy as i32, ..Default::default() };
        let job = app.erase_with(r).await.unwrap().job_id;
        let ctx = app.ctx.clone();
        let worker = tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await });
        // While the worker pauses before the residual stage, the collection
        // is locked as a re-index switching generations locks it.
        reach_stage(&app, &job, pb::Stage::Residual).await;
        let mut reindex = app.pool.acquire().await.unwrap();
        sqlx::query("SELECT pg_advisory_lock($1)").bind(key).execute(&mut *reindex).await.unwrap();
        if policy == pb::ResidualPolicy::Report {
            tokio::time::timeout(Duration::from_secs(30), worker).await.expect("not held up by the lock").unwrap().unwrap();
            let done = app.job(&job).await;
            assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
            assert_eq!((done.counts[0].residual_found, done.counts[0].residual_deleted, done.counts[0].residual_withheld), (2, 0, 0));
            assert!(done.residuals.iter().all(|c| c.action == "reported"), "{:?}", done.residuals);
        } else {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let waiting = app.job(&job).await;
            assert_eq!((waiting.status, waiting.stage), (pb::JobStatus::InProgress as i32, pb::Stage::Residual as i32), "it waits");
            sqlx::query("SELECT pg_advisory_unlock($1)").bind(key).execute(&mut *reindex).await.unwrap();
            tokio::time::timeout(Duration::from_secs(30), worker).await.expect("runs once the lock is free").unwrap().unwrap();
            let done = app.job(&job).await;
            assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
            assert_eq!((done.counts[0].residual_found, done.counts[0].residual_deleted), (2, 2));
        }
        sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut *reindex).await.unwrap();
    }
    let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\" WHERE text ILIKE '%belden%'", c.backend_name))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// Two erasures find the same candidate (bob's note naming Tim Belden, for
/// `tim` and for `belden`, the same man under a second id). `belden`'s
/// first attempt stored its targets and failed before deleting; `tim`'s
/// erasure then deleted the note. `belden`'s retry finds it gone: the
/// deletion is `tim`'s, credited to him, and the two certificates together
/// claim it once.
#[tokio::test]
async fn a_candidate_two_erasures_share_is_claimed_by_the_one_that_deleted_it() {
    let settings = Some((|s| s.residual.semantic = false) as fn(&mut lethe::config::Settings));
    let app = spawn_app_with(Options { no_workers: true, stage_pause_ms: 400, settings, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    naming_tim(&app, &c.name, 1).await;
    let note: String = sqlx::query_scalar("SELECT c.chunk_id::text FROM chunks c JOIN sources s USING (source_id) WHERE s.external_id LIKE '%about-tim%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let erase = |subject: pb::SubjectRef| {
        let app = &app;
        async move {
            let r = pb::EraseRequest { subject: Some(subject), residual_policy: pb::ResidualPolicy::Delete as i32, ..Default::default() };
            app.erase_with(r).await.unwrap().job_id
        }
    };
    let name = pb::Identifier { kind: pb::IdentifierKind::Name as i32, value: "Tim Belden".into() };
    let belden = erase(pb::SubjectRef { id: "belden".into(), identifiers: vec![name] }).await;

    // Belden's first attempt fails at the residual stage's deletes (the
    // table is away), having stored its targets: the note, present then.
    let ctx = app.ctx.clone();
    let first_attempt = tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await });
    reach_stage(&app, &belden, pb::Stage::Residual).await;
    rename(&app, &c.backend_name, "away").await;
    first_attempt.await.unwrap().unwrap();
    rename(&app, "away", &c.backend_name).await;
    assert_eq!(app.job(&belden).await.stage, pb::Stage::Residual as i32, "released for a retry");
    let stored = sqlx::query(
        "UPDATE erasure_counts SET residual_targets = ARRAY[$2::uuid], residual_targets_at = clock_timestamp() WHERE job_id = $1::uuid",
    )
    .bind(&belden)
    .bind(&note)
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored.rows_affected(), 1);
    // Kept from the queue while tim's erasure runs and deletes the note.
    let hold_back = |secs: i32| {
        sqlx::query("UPDATE erasure_jobs SET lease_expires_at = now() + make_interval(secs => $2) WHERE job_id = $1::uuid")
            .bind(belden.clone())
            .bind(secs)
            .execute(&app.pool)
    };
    hold_back(3600).await.unwrap();
    let tims = erase(tim()).await;
    let done = run_to_end(&app, &tims).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!((done.counts[0].residual_found, done.counts[0].residual_deleted), (1, 1));

    hold_back(-1).await.unwrap();
    let retried = run_to_end(&app, &belden).await;
    assert_eq!(retried.status, pb::JobStatus::Completed as i32, "{}", retried.error);
    assert_eq!((retried.counts[0].residual_found, retried.counts[0].residual_deleted), (1, 0), "gone, but not by belden's erasure");
    let actions: Vec<&str> = retried.residuals.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["deleted_elsewhere"]);
    let mut claimed = 0;
    for job in [&tims, &belden] {
        let (cert, log) = app.certified(job).await;
        let sum = |body: &serde_json::Value| -> i64 { body["collections"].as_array().unwrap().iter().map(|c| c["residual_deleted"].as_i64().unwrap()).sum() };
        assert_eq!(sum(&cert), sum(&log));
        claimed += sum(&cert);
    }
    assert_eq!(claimed, 1, "one deletion, claimed once");
}
