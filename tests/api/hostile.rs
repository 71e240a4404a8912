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
