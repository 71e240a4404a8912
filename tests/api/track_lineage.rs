//! What one `Track` batch writes to lineage (`store::lineage::record_chunks`):
//! each chunk with its own source, text and residual index keys (they travel
//! as one flat array, each chunk taking its slice), tags naming the right
//! subjects whether they existed before or not, rewrites that keep earlier
//! tags, and chunk ids another collection or source holds refused with
//! nothing written.

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
