//! Identifiers that would aim an erasure (or an auditor's search) at
//! everyone are refused at the door, whatever key sends them.

use lethe::grpc::pb;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn identifiers_that_would_match_everyone_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    use pb::IdentifierKind::{AnonymousId, Email, Handle, Name, Other, Phone};
    let bad = [
        (Other, "the"),
        (Other, "Hi all"),
        (Name, "The And"),
        (Name, "P Q"),
        (Handle, "@to"),
        (Email, "nobody"),
        (Email, "ann@localhost"),
        (Phone, "+1 555"),
        (AnonymousId, "42"),
    ];
    for (i, (kind, value)) in bad.iter().enumerate() {
        let subject = pb::SubjectRef {
            id: format!("victim-{i}"),
            identifiers: vec![pb::Identifier { kind: *kind as i32, value: (*value).into() }],
        };
        let err = client
            .put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(subject.clone()) }))
            .await
            .expect_err(&format!("{kind:?} `{value}`"));
        assert_eq!(err.code(), Code::InvalidArgument, "{kind:?} `{value}`: {err:?}");
        assert!(err.message().contains("subject.identifiers[0].value"), "{}", err.message());
        let err = app
            .erase_with(pb::EraseRequest {
                subject: Some(subject),
                residual_policy: pb::ResidualPolicy::Delete as i32,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "Erase {kind:?} `{value}`");
        let search = pb::SearchResidualsRequest {
            identifiers: vec![pb::Identifier { kind: *kind as i32, value: (*value).into() }],
            limit: 10,
        };
        let err = client.search_residuals(req(&app.keys.ak, search)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "SearchResiduals {kind:?} `{value}`");
    }
    let written: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM subjects), (SELECT count(*) FROM subject_identifiers), (SELECT count(*) FROM erasure_jobs)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(written, (0, 0, 0));
}

/// A write takes one advisory lock per bucket of subjects its tags fall in,
/// not one per person: 1,000 points naming 60 people each (60,000 locks)
/// filled PostgreSQL's lock table (here 64 × 300 slots) and failed with
/// INTERNAL, as did every other transaction meanwhile.
#[tokio::test]
async fn a_write_naming_tens_of_thousands_of_people_locks_a_bounded_number_of_keys() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let points: Vec<pb::TrackedPoint> = crate::reindex::random_vectors(&app, 1000, 3)
        .into_iter()
        .enumerate()
        .map(|(i, vector)| pb::TrackedPoint {
            point_id: uuid::Uuid::new_v4().to_string(),
            source_id: format!("doc-{i}"),
            text: format!("thread {i}"),
            tags: (0..60).map(|t| pb::SubjectTag { subject_id: format!("p{i}-{t}"), role: pb::TagRole::Mentioned as i32 }).collect(),
            vector,
            ..Default::default()
        })
        .collect();
    let w = app
        .client
        .clone()
        .track(req(&app.keys.pk, pb::TrackRequest { collection: c.name.clone(), points, ..Default::default() }))
        .await
        .expect("the write succeeds")
        .into_inner();
    assert_eq!(w.accepted, 1000);
    // The buckets still order a write against an erasure of one of them.
    let done = app.wait_for_job(&app.erase("p7-3").await.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.counts.iter().map(|c| c.before_total).sum::<u64>(), 1);
    assert_eq!(done.counts.iter().map(|c| c.after_total).sum::<u64>(), 0);
}

/// What one subject keeps is bounded, not only what one request carries:
/// an id repeated in a request's `subjects` is one subject (its identifiers
/// merged, within the 100 of a subject), and identifiers added request
/// after request stop at 1,000 (`too_many_identifiers`), where every later
/// erasure of the subject would search for all of them.
#[tokio::test]
async fn identifiers_of_one_subject_are_bounded_across_entries_and_requests() {
    let app = spawn_app().await;
    let c = app.create_collection("notes", pb::Backend::Pgvector).await;
    let emails = |from: usize, n: usize| -> Vec<pb::Identifier> {
        (from..from + n).map(|i| pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: format!("ann.{i}@corp.example") }).collect()
    };
    let ann = |identifiers: Vec<pb::Identifier>| pb::SubjectRef { id: "ann".into(), identifiers };
    let stored = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM subject_identifiers").fetch_one(&app.pool).await.unwrap()
    };
    let ingest = |subjects: Vec<pb::SubjectRef>| pb::IngestRequest {
        collection: c.name.clone(),
        chunks: vec![chunk("doc", 0, "a note", &["ann"])],
        subjects,
    };
    let mut client = app.client.clone();

    // Listed twice with 60 identifiers each: 120 for one subject.
    let e = client.ingest(req(&app.keys.pk, ingest(vec![ann(emails(0, 60)), ann(emails(60, 60))]))).await.expect_err("120 identifiers");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let field = tonic_types::StatusExt::get_details_bad_request(&e).expect("field").field_violations[0].field.clone();
    assert_eq!(field, "subjects[1].identifiers");
    assert_eq!((stored().await, rows(&app.pool, "chunks").await), (0, 0), "nothing written");
    // Listed twice with the same 60: one subject of 60.
    client.ingest(req(&app.keys.pk, ingest(vec![ann(emails(0, 60)), ann(emails(0, 60))]))).await.expect("the same identifiers twice");
    assert_eq!(stored().await, 60);

    // Request after request, up to 1,000 and no further.
    for from in (60..1_000).step_by(100) {
        let put = pb::PutSubjectRequest { subject: Some(ann(emails(from, 100.min(1_000 - from)))) };
        client.put_subject(req(&app.keys.pk, put)).await.expect("within the bound");
    }
    assert_eq!(stored().await, 1_000);
    let put = pb::PutSubjectRequest { subject: Some(ann(emails(1_000, 1))) };
    let e = client.put_subject(req(&app.keys.pk, put)).await.expect_err("the 1,001st");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "too_many_identifiers"), "{e:?}");
    assert!(!e.message().contains("ann."), "no identifier in the message: {e:?}");
    // On a write too, and a subject listed before the refused one is not
    // stored either.
    let bob = pb::SubjectRef {
        id: "bob".into(),
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: "bob@corp.example".into() }],
    };
    let e = client.ingest(req(&app.keys.pk, ingest(vec![bob, ann(emails(1_000, 1))]))).await.expect_err("on a write too");
    assert_eq!(reason(&e), "too_many_identifiers");
    assert_eq!(stored().await, 1_000);
    let bobs: i64 = sqlx::query_scalar("SELECT count(*) FROM subjects WHERE external_id = 'bob'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(bobs, 0, "the request stored none of its subjects");
    // Those it has already may be given again.
    client.put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(ann(emails(0, 100))) })).await.expect("known ones");
    // A person asking to be erased by one more is never refused.
    let job = app.erase_with(pb::EraseRequest { subject: Some(ann(emails(1_000, 1))), ..Default::default() }).await.expect("Erase at the bound");
    let done = app.wait_for_job(&job.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM subject_identifiers i JOIN subjects s USING (subject_id) WHERE s.state = 'erased'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 1_001, "the erased subject's identifiers (hashes only) include the new one");
}

/// `PutSubject` takes the subject's lock as writes do: while an erasure's
/// freeze holds it (here, a transaction of the test's), the request waits,
/// and after the freeze it finds the subject frozen and stores nothing.
#[tokio::test]
async fn put_subject_waits_for_a_freeze_and_adds_nothing_to_a_frozen_subject() {
    let app = spawn_app().await;
    let ann = |value: &str| pb::SubjectRef {
        id: "ann".into(),
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: value.into() }],
    };
    let mut client = app.client.clone();
    client.put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(ann("ann.orwell@corp.example")) })).await.unwrap();
    let hash = app.ctx.keyed_hash(app.keys.tenant_id, "ann").await.unwrap();
    let mut freeze = app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(lethe::context::subject_lock_key(&hash)).execute(&mut *freeze).await.unwrap();
    let put = tokio::spawn({
        let mut client = app.client.clone();
        let r = req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(ann("ann.second@corp.example")) });
        async move { client.put_subject(r).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!put.is_finished(), "PutSubject waits for the freeze");
    sqlx::query("UPDATE subjects SET state = 'pending_erasure' WHERE subject_hash = $1").bind(&hash).execute(&mut *freeze).await.unwrap();
    freeze.commit().await.unwrap();
    let e = put.await.unwrap().expect_err("the subject is frozen");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "subject_suppressed"), "{e:?}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM subject_identifiers").fetch_one(&app.pool).await.unwrap();
    assert_eq!(stored, 1, "the second address was not added");
}
