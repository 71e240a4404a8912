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
