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
