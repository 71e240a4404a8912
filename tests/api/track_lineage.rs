//! What one `Track` batch writes to lineage (`store::lineage::record_chunks`):
//! each chunk with its own source, text and residual index keys (they travel
//! as one flat array, each chunk taking its slice), tags naming the right
//! subjects whether they existed before or not, rewrites that keep earlier
//! tags, and chunk ids another collection or source holds refused with
//! nothing written.

use std::sync::Arc;

use lethe::grpc::pb;
use lethe::residual::index;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::*;

fn point(id: Uuid, source: &str, text: &str, tags: &[&str], dim: usize) -> pb::TrackedPoint {
    pb::TrackedPoint {
        point_id: id.to_string(),
        source_id: source.into(),
        text: text.into(),
        tags: tags.iter().map(|s| pb::SubjectTag { subject_id: (*s).into(), role: pb::TagRole::Owner as i32 }).collect(),
        vector: vec![0.5; dim],
        ..Default::default()
    }
}

async fn track(app: &TestApp, collection: &str, points: Vec<pb::TrackedPoint>) -> Result<pb::WriteResponse, tonic::Status> {
    app.client
        .clone()
        .track(req(&app.keys.sk, pb::TrackRequest { collection: collection.into(), points, ..Default::default() }))
        .await
        .map(tonic::Response::into_inner)
}

/// (source's caller id, text, keys, shared) of the tenant's chunk, if any.
async fn chunk_row(app: &TestApp, id: Uuid) -> Option<(String, Option<String>, Option<Vec<i32>>, bool)> {
    sqlx::query_as(
        "SELECT s.external_id, c.text, c.terms, c.shared FROM chunks c JOIN sources s USING (source_id) \
         WHERE c.tenant_id = $1 AND c.chunk_id = $2",
    )
    .bind(app.keys.tenant_id)
    .bind(id)
    .fetch_optional(&app.pool)
    .await
    .expect("read the chunk")
}

/// The caller ids of the subjects tagged on the chunk, sorted.
async fn tags_of(app: &TestApp, id: Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT s.external_id FROM chunk_subjects t JOIN subjects s USING (subject_id) \
         WHERE t.tenant_id = $1 AND t.chunk_id = $2 ORDER BY 1",
    )
    .bind(app.keys.tenant_id)
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .expect("read the tags")
}

async fn rows_in(app: &TestApp, collection: &pb::Collection) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\"", collection.backend_name))
        .fetch_one(&app.pool)
        .await
        .expect("count the collection's rows")
}

#[tokio::test]
async fn track_batch_writes_each_chunk_with_its_own_source_text_keys_and_subjects() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    // `ann` exists before the batch; `bob` and `cyd` are new in it.
    let first = Uuid::new_v4();
    track(&app, "mail", vec![point(first, "a-0", "Ann's first note", &["ann"], dim)]).await.expect("track");

    let texts = [
        ("a-1", "The Palo Verde spread widened on Tuesday.", vec!["ann"]),
        ("a-1", "Bob will call about the hearing.", vec!["bob"]),
        ("b-1", "", vec!["bob", "cyd"]),
        ("c-1", "?!", vec!["cyd"]),
        ("c-2", "The storage report is due on Thursday, Cyd.", vec!["cyd", "ann"]),
        ("d-1", "An untagged memo.", vec![]),
    ];
    let ids: Vec<Uuid> = texts.iter().map(|_| Uuid::new_v4()).collect();
    let points = texts.iter().zip(&ids).map(|((s, t, tags), id)| point(*id, s, t, tags, dim)).collect();
    let out = track(&app, "mail", points).await.expect("track the batch");
    assert_eq!(out.accepted, 6);

    for ((source, text, tags), id) in texts.iter().zip(&ids) {
        let (ext, stored, keys, shared) = chunk_row(&app, *id).await.expect("the chunk is in lineage");
        assert_eq!(&ext, source, "{text:?}: its own source");
        if text.is_empty() {
            assert_eq!((stored, keys), (None, None), "no text, no keys");
        } else {
            assert_eq!(stored.as_deref(), Some(*text));
            assert_eq!(keys, Some(index::terms(app.keys.tenant_id, text)), "{text:?}: exactly its own keys");
        }
        let mut want: Vec<String> = tags.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        assert_eq!(tags_of(&app, *id).await, want, "{text:?}");
        assert_eq!(shared, tags.len() > 1, "{text:?}");
        // The backend row carries the same tags, in order (one tag travels
        // in its own column, several as a slice of one flat array).
        let stored: Vec<String> = sqlx::query_scalar(&format!("SELECT subjects FROM \"{}\" WHERE point_id = $1", c.backend_name))
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .expect("the point is in the collection");
        assert_eq!(stored, *tags, "{text:?}");
    }
    assert_eq!(tags_of(&app, first).await, ["ann"], "the earlier chunk keeps its tag");
    // One subject row per person, whether it existed before the batch or not.
    let subjects: i64 = sqlx::query_scalar("SELECT count(*) FROM subjects WHERE tenant_id = $1")
        .bind(app.keys.tenant_id)
        .fetch_one(&app.pool)
        .await
        .expect("count subjects");
    assert_eq!(subjects, 3);
    // Counts by lineage ids name the right chunks for each person.
    for (who, n) in [("ann", 3), ("bob", 2), ("cyd", 3)] {
        let counts = app.count_subject(who).await;
        let by_ids: u64 = counts.counts.iter().map(|c| c.before_by_ids).sum();
        assert_eq!(by_ids, n, "{who}");
    }
    assert_eq!(rows_in(&app, &c).await, 7);
    app.assert_lineage_consistent().await;
}

#[tokio::test]
async fn track_again_rewrites_text_and_keys_and_keeps_every_tag() {
    let app = spawn_app().await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let x = Uuid::new_v4();
    track(&app, "mail", vec![point(x, "doc", "The storage report is due on Thursday.", &["ann"], dim)]).await.expect("track");
    let (_, _, _, shared) = chunk_row(&app, x).await.expect("chunk");
    assert!(!shared);

    let text = "The storage report moved to Friday.";
    track(&app, "mail", vec![point(x, "doc", text, &["bob"], dim)]).await.expect("track again");
    let (ext, stored, keys, shared) = chunk_row(&app, x).await.expect("chunk");
    assert_eq!((ext.as_str(), stored.as_deref()), ("doc", Some(text)));
    assert_eq!(keys, Some(index::terms(app.keys.tenant_id, text)), "the new text's keys, not the old ones");
    assert!(shared, "a rewritten chunk may carry tags of both writes");
    assert_eq!(tags_of(&app, x).await, ["ann", "bob"], "the earlier tag is kept");
    app.assert_lineage_consistent().await;
}

#[tokio::test]
async fn track_refuses_a_chunk_id_another_collection_or_source_holds_and_writes_nothing_of_the_batch() {
    let app = spawn_app().await;
    let mail = app.create_collection("mail", pb::Backend::Pgvector).await;
    let notes = app.create_collection("notes", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let x = Uuid::new_v4();
    let text = "Ann's letter about the merger";
    track(&app, "mail", vec![point(x, "letter", text, &["ann"], dim)]).await.expect("track");

    // X in another collection, or in another source of its own: refused, and
    // the batch's other chunk, its source and its new subject are not written.
    for (collection, source) in [("notes", "letter"), ("mail", "other")] {
        let y = Uuid::new_v4();
        let batch = vec![point(y, "fresh", "A new note", &["zed"], dim), point(x, source, "Overwritten?", &["bob"], dim)];
        let e = track(&app, collection, batch).await.expect_err("X is taken");
        assert_eq!(e.code(), Code::InvalidArgument, "{collection}/{source}: {e:?}");
        assert!(e.message().contains("point_id"), "{}", e.message());
        assert_eq!(chunk_row(&app, y).await, None, "{collection}: nothing of the batch is recorded");
        let fresh: i64 = sqlx::query_scalar("SELECT count(*) FROM sources WHERE tenant_id = $1 AND external_id = 'fresh'")
            .bind(app.keys.tenant_id)
            .fetch_one(&app.pool)
            .await
            .expect("count sources");
        assert_eq!(fresh, 0, "{collection}");
        assert!(!app.subject_exists("zed").await, "{collection}");
    }
    let (ext, stored, keys, _) = chunk_row(&app, x).await.expect("X is still the letter");
    assert_eq!((ext.as_str(), stored.as_deref()), ("letter", Some(text)));
    assert_eq!(keys, Some(index::terms(app.keys.tenant_id, text)));
    assert_eq!(tags_of(&app, x).await, ["ann"]);
    // The batch was refused before any vector was written: X's own row in
    // `mail` is still the letter's (the second batch would have overwritten it).
    assert_eq!(rows_in(&app, &notes).await, 0, "no vector was written");
    assert_eq!(rows_in(&app, &mail).await, 1, "only X is in mail");
    let x_row: Option<(Vec<String>, Option<String>, String)> =
        sqlx::query_as(&format!("SELECT subjects, text, source_id FROM \"{}\" WHERE point_id = $1", mail.backend_name))
            .bind(x)
            .fetch_optional(&app.pool)
            .await
            .expect("read X's vector row");
    assert_eq!(x_row, Some((vec!["ann".to_owned()], Some(text.to_owned()), "letter".to_owned())), "X's vector row is the letter's");
    app.assert_lineage_consistent().await;
}

/// Writes of the same points at once, in both orders, naming the same new
/// people: every write takes its lineage rows in one order (whatever order
/// its request lists them in) and writes pgvector's vectors under those
/// locks, committed after lineage. So none deadlocks (two of them did, on
/// the new subjects and the chunks, and were told to retry), every write
/// ends, and lineage and vectors agree on each point (before, a vector
/// write after the lineage commit could overtake another's: two of five
/// runs left points whose vector row held another write's text).
#[tokio::test]
async fn writes_of_the_same_points_at_once_all_succeed_and_leave_lineage_and_vectors_agreeing() {
    let app = spawn_app().await;
    let mail = app.create_collection("mail", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let ids: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
    let people: Vec<String> = (0..30).map(|i| format!("person-{i}")).collect();
    let writes = (0..12).map(|w| {
        let mut batch: Vec<pb::TrackedPoint> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let tags = [people[(i + w) % people.len()].as_str(), people[(i * 7 + w) % people.len()].as_str()];
                point(*id, &format!("doc-{}", i % 8), &format!("note {i}, write {w}"), &tags, dim)
            })
            .collect();
        if w % 2 == 1 {
            batch.reverse();
        }
        let app = &app;
        async move { track(app, "mail", batch).await }
    });
    let ended = tokio::time::timeout(std::time::Duration::from_secs(60), futures::future::join_all(writes)).await.expect("every write ends");
    for (w, result) in ended.into_iter().enumerate() {
        assert_eq!(result.unwrap_or_else(|e| panic!("write {w}: {e:?}")).accepted, 40, "write {w}");
    }
    assert_eq!(rows_in(&app, &mail).await, 40);
    let last_texts: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{}\" v JOIN chunks c ON c.chunk_id = v.point_id AND c.tenant_id = $1 WHERE c.text = v.text",
        mail.backend_name
    ))
    .bind(app.keys.tenant_id)
    .fetch_one(&app.pool)
    .await
    .expect("compare texts");
    assert_eq!(last_texts, 40, "each point's vector row carries the text its lineage holds");
    app.assert_lineage_consistent().await;
}

/// A Track that adds a chunk to a source while an erasure forgets the
/// source's only other chunk: the chunk keeps its source. The Track is
/// held at its chunk insert, after it found the source, by a transaction
/// that writes the same chunk id and is rolled back once the erasure has
/// finished (or waits for a source lock). The erasure deletes the source,
/// which holds no committed chunk; the Track then finds it gone when it
/// locks it and records its lineage again, source and all. Before, the
/// chunk was recorded under the deleted source: lineage held a chunk
/// without a source, which DeletePoints and retention by source would
/// never find.
#[tokio::test]
async fn a_chunk_added_to_a_source_an_erasure_empties_keeps_its_source() {
    let app = spawn_app().await;
    let mail = app.create_collection("threads", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let first = Uuid::new_v4();
    track(&app, "threads", vec![point(first, "thread-1", "opening message", &["opal"], dim)]).await.expect("first message");
    let source = chunk_source_id(&app, first).await;

    // The same chunk id, written and not committed: the Track's chunk insert waits for it.
    let reply = Uuid::new_v4();
    let mut holder = app.pool.begin().await.unwrap();
    sqlx::query("INSERT INTO chunks (chunk_id, tenant_id, collection_id, source_id, ordinal) SELECT $1, $2, collection_id, $3, 9 FROM sources WHERE source_id = $3")
        .bind(reply)
        .bind(app.keys.tenant_id)
        .bind(source)
        .execute(&mut *holder)
        .await
        .unwrap();
    // Tagged for someone whose subject lock (one of 512 buckets, by keyed
    // hash) is not opal's: the Track, held, holds it shared, and opal's
    // freeze would wait for it before the erasure reaches its sources.
    let key = |h: Vec<u8>| lethe::context::subject_lock_key(&h);
    let opals = key(app.ctx.keyed_hash(app.keys.tenant_id, "opal").await.unwrap());
    let mut moderator = String::from("moderator");
    while key(app.ctx.keyed_hash(app.keys.tenant_id, &moderator).await.unwrap()) == opals {
        moderator.push('+');
    }
    let write = spawn_track(&app, "threads", vec![point(reply, "thread-1", "a reply", &[moderator.as_str()], dim)]);
    wait_until(&app, "INSERT INTO chunks").await;

    let job = app.erase("opal").await;
    // Until the erasure ends (or waits for a source lock, which the Track,
    // held before it locks its sources, does not have).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let ended = app.job(&job.job_id).await.status == pb::JobStatus::Completed as i32;
        if ended || waiting_on_a_lock(&app, "FROM sources%FOR UPDATE").await {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the erasure neither ended nor waited");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    holder.rollback().await.unwrap();
    let written = write.await.unwrap().expect("the Track is not refused");
    assert_eq!(written.accepted, 1);
    let job = app.wait_for_job(&job.job_id).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    assert_eq!(job.counts[0].deleted, 1);

    let sourced = chunk_row(&app, reply).await.map(|(source, ..)| source);
    assert_eq!(sourced.as_deref(), Some("thread-1"), "the reply is in lineage under its source");
    assert_eq!(rows_in(&app, &mail).await, 1, "the reply's vector; the opening message is erased");
    app.assert_lineage_consistent().await;
}

/// A deleter that locks the source first (as `delete_empty_sources` does,
/// here a transaction of the test's) and deletes it while a Track that
/// wrote a chunk into it waits for its lock: the Track finds the source
/// gone and records its lineage again, source and all, instead of keeping
/// its chunk under the deleted source (or, as it once did, answering that
/// its point id is "already used by another collection or source").
#[tokio::test]
async fn a_track_whose_source_is_deleted_under_it_writes_the_source_again() {
    let app = spawn_app().await;
    let mail = app.create_collection("threads", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let first = Uuid::new_v4();
    track(&app, "threads", vec![point(first, "thread-2", "opening message", &["opal"], dim)]).await.expect("first message");
    let mut deleter = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM sources WHERE tenant_id = $1 AND external_id = 'thread-2' FOR UPDATE")
        .bind(app.keys.tenant_id)
        .execute(&mut *deleter)
        .await
        .unwrap();
    let reply = Uuid::new_v4();
    let write = spawn_track(&app, "threads", vec![point(reply, "thread-2", "a reply", &["moderator"], dim)]);
    // Until the Track waits for the source's lock (or, without one, ends).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !write.is_finished() && !waiting_on_a_lock(&app, "FROM sources%FOR KEY SHARE").await {
        assert!(tokio::time::Instant::now() < deadline, "the Track neither ended nor waited for the source");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for statement in [
        "DELETE FROM chunk_subjects WHERE tenant_id = $1 AND chunk_id = $2",
        "DELETE FROM chunks WHERE tenant_id = $1 AND chunk_id = $2",
        "DELETE FROM sources WHERE tenant_id = $1 AND external_id = 'thread-2' AND $2::uuid IS NOT NULL",
    ] {
        sqlx::query(statement).bind(app.keys.tenant_id).bind(first).execute(&mut *deleter).await.unwrap();
    }
    deleter.commit().await.unwrap();
    let written = write.await.unwrap().expect("the Track is not refused");
    assert_eq!(written.accepted, 1);
    let sourced = chunk_row(&app, reply).await.map(|(source, ..)| source);
    assert_eq!(sourced.as_deref(), Some("thread-2"), "the reply is in lineage under its source, written again");
    assert_eq!(rows_in(&app, &mail).await, 2, "the first message's vector (deleted from lineage only by the test) and the reply's");
    app.assert_lineage_consistent().await;
}

/// A Track of `points` on a task of its own, to be held up by a test's transaction.
fn spawn_track(
    app: &TestApp,
    collection: &str,
    points: Vec<pb::TrackedPoint>,
) -> tokio::task::JoinHandle<Result<pb::WriteResponse, tonic::Status>> {
    let (mut client, key) = (app.client.clone(), app.keys.pk.clone());
    let request = pb::TrackRequest { collection: collection.into(), points, ..Default::default() };
    tokio::spawn(async move { client.track(req(&key, request)).await.map(tonic::Response::into_inner) })
}

/// Whether a session of this test's database (not this one) waits for a
/// lock in a statement matching `pattern` (a LIKE pattern without the
/// outer %s).
async fn waiting_on_a_lock(app: &TestApp, pattern: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%')",
    )
    .bind(pattern)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn wait_until(app: &TestApp, pattern: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !waiting_on_a_lock(app, pattern).await {
        assert!(tokio::time::Instant::now() < deadline, "no statement like {pattern} waited for a lock");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A point written again, without the erased person's tag, after the
/// erasure's verify stage counted it gone and before its lineage was
/// forgotten: its vector is back in the store, so its lineage stays (the new
/// text under the new tag), while the person's tag, their other chunk and its
/// text go, and the certificate still counts both points deleted. Before,
/// forget lineage deleted the rewritten chunk too: a vector that no source,
/// retention rule or re-index reached any more.
#[tokio::test]
async fn a_point_written_again_between_verify_and_forget_keeps_its_lineage() {
    let app = spawn_app().await;
    let mail = app.create_collection("mail", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let (again, other) = (Uuid::new_v4(), Uuid::new_v4());
    let held = HeldAtForget::erase(&app, &mail, again, other).await;
    track(&app, "mail", vec![point(again, "notes-1", "onyx's reply", &["onyx"], dim)]).await.expect("the point is written again");
    let job = held.release(&app).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    assert_eq!(job.counts[0].deleted, 2, "both of the person's points were deleted and verified gone");

    assert_eq!(rows_in(&app, &mail).await, 1, "the point written again is in the store");
    let row = chunk_row(&app, again).await.expect("the point written again keeps its chunk");
    assert_eq!((row.0.as_str(), row.1.as_deref()), ("notes-1", Some("onyx's reply")));
    assert_eq!(tags_of(&app, again).await, vec!["onyx".to_string()], "the person's tag is gone from it");
    assert!(chunk_row(&app, other).await.is_none(), "the person's other chunk is forgotten");
    assert_eq!(chunks_naming(&app, &["opal"]).await, 0, "no chunk keeps the person's text");
    app.assert_lineage_consistent().await;
}

/// A point of the person put back after the count with its old payload, as
/// a redaction's upsert puts back a point the delete has just removed: its
/// chunk changed, but the person's tag on the point says whose it is, so
/// forget lineage deletes it again and forgets its chunk; neither the store
/// nor lineage keeps the person's text.
#[tokio::test]
async fn a_point_of_the_person_put_back_after_the_count_is_deleted_again_and_forgotten() {
    let app = spawn_app().await;
    let mail = app.create_collection("mail", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let (back, other) = (Uuid::new_v4(), Uuid::new_v4());
    track(&app, "mail", opals_points(back, other, dim)).await.expect("track");
    let table = &mail.backend_name;
    save_row(&app, table, back).await;

    let held = HeldAtForget::hold(&app, &mail, other, async { app.erase("opal").await.job_id }).await;
    assert_eq!(rows_in(&app, &mail).await, 0, "both points were deleted");
    put_back(&app, table, back).await;
    let job = held.release(&app).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    assert_eq!(job.counts[0].deleted, 2);

    assert_eq!(rows_in(&app, &mail).await, 0, "the point put back is deleted again");
    assert!(chunk_row(&app, back).await.is_none(), "its chunk is forgotten");
    assert!(chunk_row(&app, other).await.is_none());
    assert_eq!(chunks_naming(&app, &["opal"]).await, 0, "no chunk keeps the person's text");
    app.assert_lineage_consistent().await;
}

/// A point of the person put back after the count that now also carries
/// the tag of a subject on legal hold (onyx): forget lineage's second delete
/// keeps it, as every delete keeps what a hold protects, and says so; its
/// chunk stays, and the other chunk is forgotten.
#[tokio::test]
async fn a_point_put_back_with_a_held_subjects_tag_is_kept_and_said_to_be_held() {
    let app = spawn_app().await;
    let mail = app.create_collection("mail", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let (back, other) = (Uuid::new_v4(), Uuid::new_v4());
    track(&app, "mail", opals_points(back, other, dim)).await.expect("track");
    track(&app, "mail", vec![point(Uuid::new_v4(), "onyx-1", "onyx wrote this", &["onyx"], dim)]).await.expect("track onyx");
    let hold = pb::SetLegalHoldRequest { subject_id: "onyx".into(), hold: true, reason: "case 2026-42".into() };
    app.client.clone().set_legal_hold(req(&app.keys.sk, hold)).await.expect("hold onyx");
    let table = &mail.backend_name;
    save_row(&app, table, back).await;
    sqlx::raw_sql("UPDATE put_back SET subjects = subjects || ARRAY['onyx']").execute(&app.pool).await.unwrap();

    let held = HeldAtForget::hold(&app, &mail, other, async { app.erase("opal").await.job_id }).await;
    put_back(&app, table, back).await;
    let job_id: Uuid = held.job_id.parse().unwrap();
    let job = held.release(&app).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);

    assert_eq!(app.pg_rows_tagged(&mail, "opal").await, 1, "the point put back is kept by onyx's hold");
    assert!(chunk_row(&app, back).await.is_some(), "its chunk stays");
    assert!(chunk_row(&app, other).await.is_none(), "the other chunk is forgotten");
    let message: String =
        sqlx::query_scalar("SELECT message FROM erasure_events WHERE job_id = $1 AND stage = 'forget_lineage' AND status <> 'queued'")
            .bind(job_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(message.contains("1 put back after the count with the subject's tag and kept under legal hold"), "{message}");
    assert!(!message.contains("written again"), "{message}");
    app.assert_lineage_consistent().await;
}

/// Both cases in a batch (`erasure::bulk`, how small erasures run by
/// default): two people erased together, held between their verify and
/// forget stages. One of opal's points is written again for onyx, and one of
/// ruby's is put back with ruby's payload: onyx's write keeps its lineage,
/// ruby's point is deleted again, and no chunk keeps either person's text.
#[tokio::test]
async fn in_a_batch_a_point_written_again_keeps_its_lineage_and_one_put_back_is_deleted_again() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let mail = app.create_collection("mail", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let [again, opal_other, back, ruby_other] = [(); 4].map(|()| Uuid::new_v4());
    let points = vec![
        point(again, "notes-1", "opal wrote this first", &["opal"], dim),
        point(opal_other, "notes-2", "opal wrote this too", &["opal"], dim),
        point(back, "notes-3", "ruby wrote this first", &["ruby"], dim),
        point(ruby_other, "notes-4", "ruby wrote this too", &["ruby"], dim),
    ];
    track(&app, "mail", points).await.expect("track");
    let table = &mail.backend_name;
    save_row(&app, table, back).await;

    let held = HeldAtForget::hold(&app, &mail, opal_other, async {
        let opal = app.erase("opal").await.job_id;
        app.erase("ruby").await;
        let ctx = app.ctx.clone();
        tokio::spawn(async move { lethe::erasure::try_execute_batch(&ctx, Uuid::new_v4()).await.expect("queue") });
        opal
    })
    .await;
    let stages: Vec<String> = sqlx::query_scalar("SELECT stage FROM erasure_jobs").fetch_all(&app.pool).await.unwrap();
    assert_eq!(stages, ["forget_lineage", "forget_lineage"], "both jobs are held at forget lineage, together");
    track(&app, "mail", vec![point(again, "notes-1", "onyx's reply", &["onyx"], dim)]).await.expect("the point is written again");
    put_back(&app, table, back).await;
    held.release(&app).await;
    let jobs: Vec<(String, Option<String>)> = sqlx::query_as("SELECT status, error FROM erasure_jobs").fetch_all(&app.pool).await.unwrap();
    assert!(jobs.iter().all(|(status, _)| status == "completed"), "{jobs:?}");

    let left: Vec<Uuid> = sqlx::query_scalar(&format!("SELECT point_id FROM \"{table}\"")).fetch_all(&app.pool).await.unwrap();
    assert_eq!(left, [again], "onyx's point stays; ruby's, put back, is deleted again");
    let row = chunk_row(&app, again).await.expect("the point written again keeps its chunk");
    assert_eq!(row.1.as_deref(), Some("onyx's reply"));
    assert_eq!(tags_of(&app, again).await, vec!["onyx".to_string()]);
    for id in [opal_other, back, ruby_other] {
        assert!(chunk_row(&app, id).await.is_none(), "{id} is forgotten");
    }
    assert_eq!(chunks_naming(&app, &["opal", "ruby"]).await, 0, "no chunk keeps either person's text");
    app.assert_lineage_consistent().await;
}

/// A chunk whose row changed after the count while its point stayed gone
/// (here an update of the row alone, as a redaction makes): forget lineage
/// holds it back, finds the point gone in the store, and forgets it with
/// its text like the others.
#[tokio::test]
async fn a_chunk_changed_after_the_count_whose_point_is_gone_is_forgotten() {
    let app = spawn_app().await;
    let mail = app.create_collection("mail", pb::Backend::Pgvector).await;
    let (changed, other) = (Uuid::new_v4(), Uuid::new_v4());
    let held = HeldAtForget::erase(&app, &mail, changed, other).await;
    sqlx::query("UPDATE chunks SET updated_at = now() WHERE tenant_id = $1 AND chunk_id = $2")
        .bind(app.keys.tenant_id)
        .bind(changed)
        .execute(&app.pool)
        .await
        .unwrap();
    let job = held.release(&app).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    assert_eq!(rows_in(&app, &mail).await, 0);
    assert!(chunk_row(&app, changed).await.is_none(), "the changed chunk is forgotten");
    assert!(chunk_row(&app, other).await.is_none(), "the other chunk is forgotten");
    let sources: i64 = sqlx::query_scalar("SELECT count(*) FROM sources WHERE tenant_id = $1").bind(app.keys.tenant_id).fetch_one(&app.pool).await.unwrap();
    assert_eq!(sources, 0, "both sources are left empty and deleted");
    app.assert_lineage_consistent().await;
}

/// A job whose verify stage ran under a version before the mark existed
/// (`verified_before` NULL: migration `20261203000010` added it), resumed at
/// forget lineage by this one: every chunk of the person is looked up in
/// the store before it is forgotten. The one written again for onyx keeps
/// its lineage; the other, whose point is gone, is forgotten.
#[tokio::test]
async fn a_job_counted_before_the_mark_existed_looks_every_chunk_up_at_forget() {
    let app = spawn_app().await;
    let mail = app.create_collection("mail", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let (again, other) = (Uuid::new_v4(), Uuid::new_v4());
    let held = HeldAtForget::erase(&app, &mail, again, other).await;
    let unmarked = sqlx::query("UPDATE erasure_counts SET verified_before = NULL WHERE job_id = $1")
        .bind(held.job_id.parse::<Uuid>().unwrap())
        .execute(&app.pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(unmarked, 1, "the job counted one collection");
    track(&app, "mail", vec![point(again, "notes-1", "onyx's reply", &["onyx"], dim)]).await.expect("the point is written again");
    let job = held.release(&app).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    assert_eq!(job.counts[0].deleted, 2);
    let row = chunk_row(&app, again).await.expect("the point written again keeps its chunk");
    assert_eq!(row.1.as_deref(), Some("onyx's reply"));
    assert_eq!(tags_of(&app, again).await, vec!["onyx".to_string()]);
    assert!(chunk_row(&app, other).await.is_none(), "the chunk whose point is gone is forgotten");
    assert_eq!(chunks_naming(&app, &["opal"]).await, 0);
    app.assert_lineage_consistent().await;
}

/// Opal's two points, `first` and `second`, each in a source of its own.
fn opals_points(first: Uuid, second: Uuid, dim: usize) -> Vec<pb::TrackedPoint> {
    vec![point(first, "notes-1", "opal wrote this first", &["opal"], dim), point(second, "notes-2", "opal wrote this too", &["opal"], dim)]
}

/// Keeps a copy of the point's vector row (table `put_back`), for [`put_back`].
async fn save_row(app: &TestApp, table: &str, id: Uuid) {
    sqlx::raw_sql(&format!("CREATE TABLE put_back AS SELECT * FROM \"{table}\" WHERE point_id = '{id}'")).execute(&app.pool).await.unwrap();
}

/// Puts the saved row back, person's payload and all, and writes its chunk
/// row again, as a redaction's upsert and text update do.
async fn put_back(app: &TestApp, table: &str, id: Uuid) {
    sqlx::raw_sql(&format!(
        "INSERT INTO \"{table}\" SELECT * FROM put_back; \
         UPDATE chunks SET updated_at = now() WHERE tenant_id = '{}' AND chunk_id = '{id}'",
        app.keys.tenant_id
    ))
    .execute(&app.pool)
    .await
    .unwrap();
}

/// How many of the tenant's chunks hold any of `words` in their text.
async fn chunks_naming(app: &TestApp, words: &[&str]) -> i64 {
    let patterns: Vec<String> = words.iter().map(|w| format!("%{w}%")).collect();
    sqlx::query_scalar("SELECT count(*) FROM chunks WHERE tenant_id = $1 AND text LIKE ANY($2)")
        .bind(app.keys.tenant_id)
        .bind(&patterns)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// An erasure of `opal`, who owns the two points `first` and `second`,
/// held at forget lineage after its verify stage counted both gone.
///
/// The test holds the erasure twice. A row lock on the second point's
/// vector holds its delete; then a row lock on the job's counts holds its
/// verify stage at the record made before its count, inside the stage's
/// shared hold lock. The test queues for that lock exclusively and lets the
/// stage go: it counts, records and commits, and the test's exclusive lock
/// then holds forget lineage at its own shared lock.
pub(crate) struct HeldAtForget {
    job_id: String,
    holder: sqlx::PgConnection,
    key: (i32, i32),
}

impl HeldAtForget {
    async fn erase(app: &TestApp, collection: &pb::Collection, first: Uuid, second: Uuid) -> Self {
        let dim = app.settings.embedding.dimension;
        track(app, &collection.name, opals_points(first, second, dim)).await.expect("track");
        Self::hold(app, collection, second, async { app.erase("opal").await.job_id }).await
    }

    /// Holds the job `start` starts (and names) at forget lineage; `locked`
    /// is one of the points it deletes.
    pub(crate) async fn hold(app: &TestApp, collection: &pb::Collection, locked: Uuid, start: impl std::future::Future<Output = String>) -> Self {
        let mut at_delete = app.pool.begin().await.unwrap();
        sqlx::query(&format!("SELECT 1 FROM \"{}\" WHERE point_id = $1 FOR UPDATE", collection.backend_name))
            .bind(locked)
            .execute(&mut *at_delete)
            .await
            .unwrap();
        let job_id = start.await;
        let job_uuid: Uuid = job_id.parse().unwrap();
        wait_until(app, "DELETE FROM").await;
        let mut at_verify = app.pool.begin().await.unwrap();
        sqlx::query("SELECT 1 FROM erasure_counts WHERE job_id = $1 FOR UPDATE").bind(job_uuid).execute(&mut *at_verify).await.unwrap();
        at_delete.commit().await.unwrap();
        wait_until(app, "SET verified_before").await;

        // The tenant's hold lock (two keys), which the stage holds shared,
        // asked for exclusively on a session of its own.
        let mut holder = app.pool.acquire().await.unwrap().detach();
        let keys: Vec<(i32, i32)> = sqlx::query_as(
            "SELECT classid::int, objid::int FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.mode = 'ShareLock' AND l.granted \
             AND d.datname = current_database()",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        let [key] = keys[..] else { panic!("the verify stage, alone, holds the tenant's hold lock: {keys:?}") };
        let exclusive = tokio::spawn(async move {
            sqlx::query("SELECT pg_advisory_lock($1, $2)").bind(key.0).bind(key.1).execute(&mut holder).await.unwrap();
            holder
        });
        while !waiting_on_a_lock(app, "pg_advisory_lock(").await {
            assert!(!exclusive.is_finished(), "the exclusive lock was granted while the stage held it shared");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        at_verify.commit().await.unwrap();
        let holder = tokio::time::timeout(std::time::Duration::from_secs(60), exclusive).await.expect("verify commits").unwrap();
        wait_until(app, "pg_advisory_xact_lock_shared").await;
        let stage: String =
            sqlx::query_scalar("SELECT stage FROM erasure_jobs WHERE job_id = $1").bind(job_uuid).fetch_one(&app.pool).await.unwrap();
        assert_eq!(stage, "forget_lineage", "held at forget lineage's hold lock");
        Self { job_id, holder, key }
    }

    /// Lets forget lineage go; the job once it has ended.
    pub(crate) async fn release(mut self, app: &TestApp) -> pb::ErasureJob {
        sqlx::query("SELECT pg_advisory_unlock($1, $2)").bind(self.key.0).bind(self.key.1).execute(&mut self.holder).await.unwrap();
        app.wait_for_job(&self.job_id).await
    }
}

/// An embedder that holds the first batch holding a redacted text until the
/// test lets it go, then embeds it (and any later one at once) with the
/// embedder it wraps: a redaction stopped between reading its chunks and
/// writing them back.
struct HeldRedaction {
    inner: Arc<dyn lethe::embedding::Embedder>,
    armed: std::sync::atomic::AtomicBool,
    reached: tokio::sync::Notify,
    go: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl lethe::embedding::Embedder for HeldRedaction {
    fn model_name(&self) -> &str {
        self.inner.model_name()
    }

    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, lethe::embedding::EmbeddingError> {
        if texts.iter().any(|t| t.contains("[redacted]")) && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.reached.notify_one();
            self.go.notified().await;
        }
        self.inner.embed(texts).await
    }
}

/// A redaction in ruby's erasure rewrites opal's chunk that names ruby, and
/// opal is erased meanwhile: after the redaction has read the chunk and
/// before it writes it back, opal's erasure deletes the point, counts it
/// gone and forgets its lineage. The redaction writes back only under the
/// chunk's lock and only the row version it read: the chunk is gone, so it
/// writes nothing, and claims no redaction. Before, its upsert put opal's
/// point, tagged opal, back in the store without lineage, behind a
/// certificate saying 0 remain.
#[tokio::test]
async fn on_pgvector_a_redaction_racing_the_erasure_of_the_chunks_owner_does_not_write_its_point_back() {
    redaction_racing_the_erasure_of_the_chunks_owner(pb::Backend::Pgvector).await;
}

#[tokio::test]
async fn on_qdrant_a_redaction_racing_the_erasure_of_the_chunks_owner_does_not_write_its_point_back() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    redaction_racing_the_erasure_of_the_chunks_owner(pb::Backend::Qdrant).await;
}

/// Points in the collection's backend.
async fn points_in(app: &TestApp, collection: &str) -> u64 {
    let spec = lethe::store::lineage::collection_by_name(&app.pool, app.keys.tenant_id, collection).await.unwrap().expect("collection");
    app.ctx.stores.get(&spec).expect("backend configured").count_all(&spec).await.expect("count the backend")
}

/// An app embedding through a [`HeldRedaction`], with opal's two points
/// in `mail`, `first` and `second` (which names ruby): (app, gate, mail,
/// first, second).
async fn gated_app(backend: pb::Backend) -> (TestApp, Arc<HeldRedaction>, pb::Collection, Uuid, Uuid) {
    let gate = Arc::new(std::sync::OnceLock::<Arc<HeldRedaction>>::new());
    let held = gate.clone();
    let app = spawn_app_wrapping_embedder(Options::default(), move |inner| {
        let e = Arc::new(HeldRedaction {
            inner,
            armed: std::sync::atomic::AtomicBool::new(true),
            reached: tokio::sync::Notify::new(),
            go: tokio::sync::Notify::new(),
        });
        held.set(e.clone()).ok();
        e
    })
    .await;
    let gate = gate.get().expect("the app embeds through the gate").clone();
    let mail = app.create_collection("mail", backend).await;
    let dim = app.settings.embedding.dimension;
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let points =
        vec![point(first, "notes-1", "opal wrote this first", &["opal"], dim), point(second, "notes-2", "opal asked Ruby Quartz for the slides", &["opal"], dim)];
    track(&app, "mail", points).await.expect("track");
    (app, gate, mail, first, second)
}

/// Ruby's erasure under `redact`, held in its redaction; its job id.
async fn hold_rubys_redaction(app: &TestApp, gate: &HeldRedaction) -> String {
    hold_rubys_redaction_with(app, gate, false).await
}

async fn hold_rubys_redaction_with(app: &TestApp, gate: &HeldRedaction, guarantee_physical: bool) -> String {
    let ruby = pb::SubjectRef {
        id: "ruby".into(),
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Name as i32, value: "Ruby Quartz".into() }],
    };
    let r = pb::EraseRequest {
        subject: Some(ruby),
        residual_policy: pb::ResidualPolicy::Redact as i32,
        guarantee_physical,
        ..Default::default()
    };
    let redaction = app.erase_with(r).await.expect("erase ruby").job_id;
    tokio::time::timeout(std::time::Duration::from_secs(60), gate.reached.notified()).await.expect("the redaction embeds what names ruby");
    redaction
}

/// A chunk written again between the redaction's read and its write-back
/// (here a `Track` of the same point with new text that names ruby too):
/// the redaction does not write the old text's redaction over the new
/// write; it reads the chunk again and redacts what is there now.
#[tokio::test]
async fn a_chunk_written_again_while_it_is_redacted_is_redacted_as_written_not_overwritten() {
    let (app, gate, _, _, second) = gated_app(pb::Backend::Pgvector).await;
    let redaction = hold_rubys_redaction(&app, &gate).await;
    let dim = app.settings.embedding.dimension;
    track(&app, "mail", vec![point(second, "notes-2", "opal sent Ruby Quartz the minutes", &["opal"], dim)]).await.expect("written again");
    gate.go.notify_one();
    let redacted = app.wait_for_job(&redaction).await;
    assert_eq!(redacted.status, pb::JobStatus::Completed as i32, "{}", redacted.error);
    assert_eq!(redacted.counts[0].residual_redacted, 1);
    let row = chunk_row(&app, second).await.expect("the chunk stays");
    assert_eq!(row.1.as_deref(), Some("opal sent [redacted] the minutes"), "the later write, redacted");
    app.assert_lineage_consistent().await;
}

/// A redaction writes one candidate back, is held re-reading another a
/// `Track` changed meanwhile, and the owner of both is erased before it
/// reads them back: neither is counted redacted (both are gone), but the
/// first was rewritten, and its old row, with ruby's name, is a dead row
/// of the collection's table. Ruby's physical guarantee reclaims it rather
/// than saying nothing of hers was rewritten there.
#[tokio::test]
async fn a_candidate_rewritten_then_erased_by_its_owner_is_still_reclaimed_by_the_physical_guarantee() {
    let (app, gate, mail, _, second) = gated_app(pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let third = Uuid::new_v4();
    track(&app, "mail", vec![point(third, "notes-3", "opal sent Ruby Quartz the notes", &["opal"], dim)]).await.expect("track");
    let redaction = hold_rubys_redaction_with(&app, &gate, true).await;
    track(&app, "mail", vec![point(third, "notes-3", "opal sent Ruby Quartz the new notes", &["opal"], dim)]).await.expect("written again");
    // Held again in its second round, the one that reads the third chunk again.
    gate.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    gate.go.notify_one();
    tokio::time::timeout(std::time::Duration::from_secs(60), gate.reached.notified()).await.expect("a second round");
    let second_row = chunk_row(&app, second).await.expect("written back in the first round");
    assert_eq!(second_row.1.as_deref(), Some("opal asked [redacted] for the slides"));
    let erased = app.wait_for_job(&app.erase("opal").await.job_id).await;
    assert_eq!(erased.status, pb::JobStatus::Completed as i32, "{}", erased.error);
    assert_eq!(erased.counts[0].after_total, 0);
    gate.go.notify_one();

    let done = app.wait_for_job(&redaction).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let c = &done.counts[0];
    assert_eq!((c.deleted, c.residual_redacted), (0, 0), "nothing of ruby's own, nothing left to call redacted");
    let rewritten: i64 = sqlx::query_scalar("SELECT residual_rewritten FROM erasure_counts WHERE job_id = $1::uuid")
        .bind(&redaction)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rewritten, 1, "the second chunk was written back");
    assert_eq!(c.physical_status, "confirmed", "{c:?}");
    assert!(!c.physical_detail.starts_with("nothing of the person"), "the rewritten row is reclaimed: {c:?}");
    assert_eq!(points_in(&app, &mail.name).await, 0);
}

/// A point of opal's without lineage (a pipeline wrote it to the backend
/// itself) whose payload text names ruby, found by ruby's residual search
/// through the payloads (the collection holds a chunk without text), and
/// opal erased while the redaction embeds it: the redaction writes no point
/// tagged with a subject being or already erased, so the point opal's
/// erasure deleted by its tag stays deleted. There is no chunk whose lock or
/// row version could have told.
#[tokio::test]
async fn a_redaction_does_not_write_back_a_point_without_lineage_tagged_with_an_erased_subject() {
    let (app, gate, mail, _, _) = gated_app(pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let textless = pb::TrackedPoint { text: String::new(), ..point(Uuid::new_v4(), "onyx-1", "", &["onyx"], dim) };
    track(&app, "mail", vec![textless]).await.expect("a chunk without text");
    let spec = lethe::store::lineage::collection_by_name(&app.pool, app.keys.tenant_id, "mail").await.unwrap().unwrap();
    let direct = Uuid::new_v4();
    let written = lethe::vector_store::VectorPoint {
        id: direct,
        vector: vec![0.5; dim],
        payload: lethe::vector_store::PointPayload {
            tenant_id: app.keys.tenant_id,
            source_id: "pipeline-1".into(),
            subjects: vec!["opal".into()],
            text: Some("opal forwarded Ruby Quartz the agenda".into()),
        },
    };
    app.ctx.stores.get(&spec).unwrap().upsert(&spec, &[written]).await.expect("written to the backend directly");
    let redaction = hold_rubys_redaction(&app, &gate).await;
    let erased = app.wait_for_job(&app.erase("opal").await.job_id).await;
    assert_eq!(erased.status, pb::JobStatus::Completed as i32, "{}", erased.error);
    assert_eq!(erased.counts[0].after_total, 0);
    gate.go.notify_one();
    let redacted = app.wait_for_job(&redaction).await;
    assert_eq!(redacted.status, pb::JobStatus::Completed as i32, "{}", redacted.error);
    let back = app.ctx.stores.get(&spec).unwrap().retrieve(&spec, &[direct], false).await.unwrap();
    assert!(back.is_empty(), "opal's point stays deleted: {back:?}");
    assert_eq!(app.pg_rows_tagged(&mail, "opal").await, 0);
    assert_eq!(redacted.counts[0].residual_redacted, 0, "nothing of opal's was redacted: it was erased");
}

async fn redaction_racing_the_erasure_of_the_chunks_owner(backend: pb::Backend) {
    let (app, gate, _, _, second) = gated_app(backend).await;
    let redaction = hold_rubys_redaction(&app, &gate).await;
    // The redaction holds no lock while it embeds: opal's erasure runs to its end.
    let erased = app.wait_for_job(&app.erase("opal").await.job_id).await;
    assert_eq!(erased.status, pb::JobStatus::Completed as i32, "{}", erased.error);
    assert_eq!((erased.counts[0].deleted, erased.counts[0].after_total), (2, 0));
    assert!(chunk_row(&app, second).await.is_none(), "opal's erasure forgot the chunk the redaction had read");
    gate.go.notify_one();
    let redacted = app.wait_for_job(&redaction).await;
    assert_eq!(redacted.status, pb::JobStatus::Completed as i32, "{}", redacted.error);
    assert_eq!(redacted.counts[0].residual_redacted, 0, "the chunk was erased, not redacted");

    assert_eq!(points_in(&app, "mail").await, 0, "no point of opal's is back in the store");
    assert!(chunk_row(&app, second).await.is_none());
    assert_eq!(chunks_naming(&app, &["opal", "Ruby"]).await, 0, "no chunk keeps opal's text or ruby's name");
    app.assert_lineage_consistent().await;
}

/// Chunks an earlier version left under a deleted source (the race above):
/// the migration that repairs them gives each its source back under a
/// placeholder id, through which DeletePoints by source reaches it, and the
/// point can then be tracked again under its real source.
#[tokio::test]
async fn chunks_left_under_a_deleted_source_get_a_placeholder_source_back() {
    let app = spawn_app().await;
    let mail = app.create_collection("threads", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    track(&app, "threads", vec![point(first, "doc-a", "first", &["ivo"], dim), point(second, "doc-a", "second", &["ivo"], dim)])
        .await
        .expect("track");
    let lost = chunk_source_id(&app, first).await;
    sqlx::query("DELETE FROM sources WHERE source_id = $1").bind(lost).execute(&app.pool).await.unwrap();

    sqlx::raw_sql(include_str!("../../migrations/20261202000090_lost_sources_restored.sql")).execute(&app.pool).await.expect("repair");
    app.assert_lineage_consistent().await;
    let placeholder = format!("lethe:lost-source:{lost}");
    for id in [first, second] {
        assert_eq!(chunk_row(&app, id).await.expect("lineage").0, placeholder);
    }
    let e = track(&app, "threads", vec![point(first, "doc-a", "first, again", &["ivo"], dim)]).await.expect_err("its source is another");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let deleted = app
        .client
        .clone()
        .delete_points(req(&app.keys.pk, pb::DeletePointsRequest { collection: "threads".into(), source_ids: vec![placeholder], ..Default::default() }))
        .await
        .expect("delete by the placeholder source")
        .into_inner();
    assert_eq!((deleted.deleted, deleted.forgotten), (2, 2));
    assert_eq!(rows_in(&app, &mail).await, 0);
    let again = track(&app, "threads", vec![point(first, "doc-a", "first, again", &["ivo"], dim)]).await.expect("tracked again");
    assert_eq!(again.accepted, 1);
    assert_eq!(chunk_row(&app, first).await.expect("lineage").0, "doc-a");
    app.assert_lineage_consistent().await;
}

async fn chunk_source_id(app: &TestApp, id: Uuid) -> Uuid {
    sqlx::query_scalar("SELECT source_id FROM chunks WHERE tenant_id = $1 AND chunk_id = $2")
        .bind(app.keys.tenant_id)
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}
