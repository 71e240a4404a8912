use lethe::grpc::pb;
use tonic::Code;

use crate::helpers::*;

async fn rows(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn bad_inputs_get_clear_errors_and_write_nothing() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let mut client = app.client.clone();
    let sk = &app.keys.sk;

    let cases: Vec<(&str, Vec<pb::IngestChunk>, Code, &str)> = vec![
        ("mail", vec![], Code::InvalidArgument, "chunks"),
        ("mail", vec![chunk("", 0, "text", &["a"])], Code::InvalidArgument, "chunks[0].source_id"),
        ("mail", vec![chunk("s", 0, "", &["a"])], Code::InvalidArgument, "chunks[0].text"),
        ("mail", vec![chunk("s", 0, &"x".repeat(40_000), &["a"])], Code::InvalidArgument, "chunks[0].text"),
        ("mail", vec![chunk("s", 0, "ok", &[""])], Code::InvalidArgument, "chunks[0].tags[0].subject_id"),
        ("mail", vec![chunk("s", 0, "ok", &["a"]), chunk("s", 0, "dup", &["a"])], Code::InvalidArgument, "chunks[1]"),
        ("nope", vec![chunk("s", 0, "ok", &["a"])], Code::NotFound, "collection `nope`"),
    ];
    for (collection, chunks, code, needle) in cases {
        let err = client
            .ingest(req(sk, pb::IngestRequest { collection: collection.into(), chunks, subjects: vec![] }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{needle}: {err:?}");
        assert!(err.message().contains(needle), "{:?} should mention {needle}", err.message());
    }

    // Wrong dimension on Track.
    let err = client
        .track(req(sk, pb::TrackRequest {
            collection: c.name.clone(),
            points: vec![pb::TrackedPoint {
                point_id: uuid::Uuid::new_v4().to_string(),
                source_id: "s".into(),
                vector: vec![0.5; 3],
                ..Default::default()
            }],
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("dimensions"), "{}", err.message());

    // Tracking points that are not in the backend, when asked to verify.
    let err = client
        .track(req(sk, pb::TrackRequest {
            collection: c.name.clone(),
            points: vec![pb::TrackedPoint { point_id: uuid::Uuid::new_v4().to_string(), source_id: "s".into(), ..Default::default() }],
            verify_points: true,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "point_not_found");

    // Unknown and malformed jobs.
    let unknown = client.get_erasure(req(sk, pb::GetErasureRequest { job_id: uuid::Uuid::new_v4().to_string() })).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let malformed = client.get_erasure(req(sk, pb::GetErasureRequest { job_id: "42".into() })).await.unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);

    // Erase without a subject or with an oversized id.
    let err = app.erase_with(pb::EraseRequest { subject: None, ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = app.erase_with(pb::EraseRequest { subject: Some(person(&"x".repeat(300))), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Collections: bad names, a second registration with other settings.
    let bad = pb::CreateCollectionRequest { name: "no spaces".into(), backend: 1, dimension: 384, ..Default::default() };
    assert_eq!(client.create_collection(req(sk, bad)).await.unwrap_err().code(), Code::InvalidArgument);
    let other = pb::CreateCollectionRequest { name: c.name.clone(), backend: 1, dimension: 128, ..Default::default() };
    assert_eq!(client.create_collection(req(sk, other)).await.unwrap_err().code(), Code::AlreadyExists);

    // Nothing was written by any of it.
    for table in ["chunks", "sources", "chunk_subjects", "erasure_jobs"] {
        assert_eq!(rows(&app, table).await, 0, "{table}");
    }
    assert_eq!(rows(&app, &format!("\"{}\"", c.backend_name)).await, 0);
}

#[tokio::test]
async fn health_and_reflection_answer_without_a_key() {
    let app = spawn_app().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: "lethe.v1.Lethe".into() })
        .await
        .expect("health")
        .into_inner()
        .status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(app.channel());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream = reflection.server_reflection_info(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let listed = format!("{:?}", response.message_response);
    assert!(listed.contains("lethe.v1.Lethe"), "{listed}");
}
