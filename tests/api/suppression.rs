use std::time::Duration;

use lethe::grpc::pb;

use crate::helpers::*;

#[tokio::test]
async fn ingestion_for_a_subject_is_suppressed_during_and_after_erasure() {
    let app = spawn_app_with(Options { stage_pause_ms: 250, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let ann = pb::SubjectRef {
        id: "ann".into(),
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: "ann@example.com".into() }],
    };
    let mut client = app.client.clone();
    client
        .put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(ann.clone()) }))
        .await
        .unwrap();
    app.ingest_people(&c.name, &[("ann", 2), ("bob", 1)]).await;
    let job = app.erase_with(pb::EraseRequest { subject: Some(ann), ..Default::default() }).await.unwrap();

    // Mid-erasure: wait until the job has frozen the subject, then write.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let j = app.job(&job.job_id).await;
        if j.stage >= pb::Stage::Delete as i32 {
            assert_ne!(j.status, pb::JobStatus::Completed as i32, "the job finished before the mid-erasure write");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mid = app
        .ingest(&c.name, vec![chunk("late", 0, "late mail from ann", &["ann"]), chunk("b2", 0, "bob again", &["bob"])])
        .await
        .unwrap();
    assert_eq!((mid.accepted, mid.suppressed), (1, 1));

    let done = app.wait_for_job(&job.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.counts[0].before_total, 2, "the suppressed chunk was never written");

    // After: the tombstone still blocks the id, and the identifier under a new id.
    let after = app.ingest(&c.name, vec![chunk("later", 0, "ann is back", &["ann"])]).await.unwrap();
    assert_eq!((after.accepted, after.suppressed), (0, 1));
    let alias = pb::SubjectRef {
        id: "ann-new-account".into(),
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: "ANN@example.com".into() }],
    };
    let w = client
        .ingest(req(&app.keys.pk, pb::IngestRequest {
            collection: c.name.clone(),
            chunks: vec![chunk("alias", 0, "hello", &["ann-new-account"])],
            subjects: vec![alias],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((w.accepted, w.suppressed), (0, 1));
    assert_eq!(app.pg_rows_tagged(&c, "ann").await, 0);
    assert_eq!(app.pg_rows_tagged(&c, "ann-new-account").await, 0);
    assert_eq!(app.pg_rows_tagged(&c, "bob").await, 2);
    // Tombstones keep only keyed hashes.
    let clear: i64 = sqlx::query_scalar("SELECT count(*) FROM subject_identifiers WHERE value ILIKE 'ann@%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(clear, 0);
}

/// `id` tracked beside bob, then erased.
async fn erase_beside_bob(app: &TestApp, c: &pb::Collection, id: &str) {
    app.ingest_people(&c.name, &[(id, 1), ("bob", 1)]).await;
    let job = app.erase(id).await;
    assert_eq!(app.wait_for_job(&job.job_id).await.status, pb::JobStatus::Completed as i32, "{id:?}");
}

/// A write of a chunk tagged `tag` (source `back-{i}`) beside one of bob's:
/// bob's is accepted, the tagged one suppressed.
async fn assert_tag_suppressed(app: &TestApp, c: &pb::Collection, i: usize, tag: &str) {
    let w = app.ingest(&c.name, vec![chunk(&format!("back-{i}"), 0, "a note", &[tag]), chunk(&format!("b-{i}"), 0, "bob", &["bob"])]).await;
    let w = w.unwrap_or_else(|e| panic!("{tag:?}: {e:?}"));
    assert_eq!((w.accepted, w.suppressed), (1, 1), "{tag:?}");
}

/// A tag is read as identifiers are: with an invisible character (zero-width
/// space, soft hyphen, BOM, word joiner) or in full-width letters it is the
/// erased id all the same, and its chunk is suppressed. An id made only of
/// invisible characters is blank.
#[tokio::test]
async fn a_tag_spelled_with_invisible_characters_is_the_erased_id() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    erase_beside_bob(&app, &c, "ps1").await;
    let spellings = ["ps1\u{200B}", "\u{200B}ps1", "ps\u{00AD}1", "\u{FEFF}ps1\u{2060}", "ｐｓ１"];
    for (i, tag) in spellings.iter().enumerate() {
        assert_tag_suppressed(&app, &c, i, tag).await;
    }
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM sources WHERE external_id LIKE 'back-%'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(written, 0, "no chunk of ps1 under another spelling");
    // PutSubject of such an id is refused as the erased id's is, and the id not kept.
    let mut client = app.client.clone();
    for id in ["ps1\u{200B}", "ｐｓ１"] {
        let e = client
            .put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(person(id)) }))
            .await
            .expect_err("reads as the erased id");
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{id:?}: {e:?}");
        assert!(e.message().contains("subject_suppressed"), "{e:?}");
        let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM subjects WHERE external_id = $1").bind(id).fetch_one(&app.pool).await.unwrap();
        assert_eq!(kept, 0, "{id:?} is not kept in clear");
    }
    // Another id with a zero-width space stays another id when no one erased reads as it.
    let w = app.ingest(&c.name, vec![chunk("cy", 0, "cy's note", &["cy\u{200B}"])]).await.unwrap();
    assert_eq!((w.accepted, w.suppressed), (1, 0));
    for blank in ["\u{200B}", "\u{FEFF}", " \u{00AD} "] {
        let e = app.ingest(&c.name, vec![chunk("z", 0, "text", &[blank])]).await.expect_err("a blank tag");
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{blank:?}: {e:?}");
        let e = app.erase_with(pb::EraseRequest { subject: Some(person(blank)), ..Default::default() }).await.expect_err("a blank id");
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{blank:?}: {e:?}");
    }
}

/// An erased id written with an HTML character reference (`ps&#45;4`,
/// `ps&#x2D;4`) or JSON's escape (`ps\u002d4`), as a scraper or a JSON
/// export writes it, is the erased id: its chunk is suppressed and
/// `PutSubject` of it refused, no subject kept in clear; and once an id
/// written so is erased, its plain spelling is blocked.
#[tokio::test]
async fn a_tag_written_with_a_character_reference_or_a_json_escape_is_the_erased_id() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    erase_beside_bob(&app, &c, "ps-4").await;
    let spellings = ["ps&#45;4", "ps&#x2D;4", r"ps\u002d4", r"ps\u002D4"];
    for (i, tag) in spellings.iter().enumerate() {
        assert_tag_suppressed(&app, &c, i, tag).await;
        let e = app
            .client
            .clone()
            .put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(person(tag)) }))
            .await
            .expect_err("reads as the erased id");
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{tag:?}: {e:?}");
    }
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM sources WHERE external_id LIKE 'back-%'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(written, 0, "no chunk of ps-4 under another spelling");
    let clear: i64 = sqlx::query_scalar("SELECT count(*) FROM subjects WHERE external_id ILIKE 'ps%4'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(clear, 0);
    // An id one character off stays another id.
    let w = app.ingest(&c.name, vec![chunk("cy", 0, "cy's note", &["ps&#45;5"])]).await.unwrap();
    assert_eq!((w.accepted, w.suppressed), (1, 0));
    // The other way round: `ps&#45;6` erased, its plain spelling is blocked.
    app.ingest_people(&c.name, &[("ps&#45;6", 1)]).await;
    let job = app.erase("ps&#45;6").await;
    assert_eq!(app.wait_for_job(&job.job_id).await.status, pb::JobStatus::Completed as i32);
    for (i, tag) in ["ps-6", r"ps\u002d6"].iter().enumerate() {
        let w = app.ingest(&c.name, vec![chunk(&format!("six-{i}"), 0, "a note", &[tag])]).await.unwrap();
        assert_eq!((w.accepted, w.suppressed), (0, 1), "{tag:?}");
    }
}

/// The other way round: once `ｐｓ２` (full-width) or `ps%2D3` (escaped) is
/// erased, a write tagged with the plain spelling is suppressed too; an
/// existing subject under that spelling becomes suppressed (its caller id
/// cleared, its own chunks kept), and `PutSubject` of it is refused.
#[tokio::test]
async fn an_erased_id_spelled_otherwise_blocks_its_plain_spelling() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ｐｓ２", 1), ("ps%2D3", 1), ("ps-3", 2), ("bob", 1)]).await;
    for id in ["ｐｓ２", "ps%2D3"] {
        let job = app.erase(id).await;
        let done = app.wait_for_job(&job.job_id).await;
        assert_eq!(done.status, pb::JobStatus::Completed as i32, "{id}: {}", done.error);
    }
    for (i, tag) in ["ps2", "ps-3", "ｐｓ２"].iter().enumerate() {
        let w = app.ingest(&c.name, vec![chunk(&format!("back-{i}"), 0, "a note", &[tag]), chunk(&format!("b-{i}"), 0, "bob", &["bob"])]).await;
        let w = w.unwrap_or_else(|e| panic!("{tag:?}: {e:?}"));
        assert_eq!((w.accepted, w.suppressed), (1, 1), "{tag:?}");
    }
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM sources WHERE external_id LIKE 'back-%'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(written, 0);
    // `PutSubject` finds the alias: suppressed, without an id in clear.
    let put = app
        .client
        .clone()
        .put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(person("ps2")) }))
        .await
        .expect("the alias is there")
        .into_inner();
    assert_eq!((put.state.as_str(), put.id.as_str()), ("suppressed", ""));
    // `ps-3` existed: suppressed, its id not kept in clear, its chunks its own.
    let clear: i64 = sqlx::query_scalar("SELECT count(*) FROM subjects WHERE external_id IN ('ps2', 'ps-3', 'ps%2D3', 'ｐｓ２')")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(clear, 0);
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM subjects WHERE state <> 'active' ORDER BY state").fetch_all(&app.pool).await.unwrap();
    assert_eq!(states, ["erased", "erased", "suppressed", "suppressed"], "the two erased, ps-3 and an alias for ps2");
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chunk_subjects cs JOIN subjects s USING (subject_id) WHERE s.state = 'suppressed'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(kept, 2, "ps-3's chunks stay: the erasure of another id does not reach them");
}
