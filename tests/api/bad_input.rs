use lethe::grpc::pb;
use tonic::{Code, Status};

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

/// One call of any rpc, so that cases of every request can sit in one table.
#[derive(Clone)]
enum Rpc {
    CreateCollection(pb::CreateCollectionRequest),
    PutSubject(pb::PutSubjectRequest),
    SetLegalHold(pb::SetLegalHoldRequest),
    Ingest(pb::IngestRequest),
    Track(pb::TrackRequest),
    Erase(pb::EraseRequest),
    GetErasure(pb::GetErasureRequest),
    WatchErasure(pb::GetErasureRequest),
    ListErasures(pb::ListErasuresRequest),
    CountSubject(pb::CountSubjectRequest),
    ListDeletionLog(pb::ListDeletionLogRequest),
    GetCertificate(pb::GetCertificateRequest),
    SearchResiduals(pb::SearchResidualsRequest),
    Reindex(pb::ReindexRequest),
    GetReindex(pb::GetReindexRequest),
    WatchReindex(pb::GetReindexRequest),
    ListReindexes(pb::ListReindexesRequest),
    ExportSubject(pb::ExportSubjectRequest),
}

/// Sends `rpc` with the secret key; the status, or OK.
async fn send(app: &TestApp, rpc: Rpc) -> Status {
    let mut c = app.client.clone();
    let sk = app.keys.sk.as_str();
    let result = match rpc {
        Rpc::CreateCollection(m) => c.create_collection(req(sk, m)).await.map(drop),
        Rpc::PutSubject(m) => c.put_subject(req(sk, m)).await.map(drop),
        Rpc::SetLegalHold(m) => c.set_legal_hold(req(sk, m)).await.map(drop),
        Rpc::Ingest(m) => c.ingest(req(sk, m)).await.map(drop),
        Rpc::Track(m) => c.track(req(sk, m)).await.map(drop),
        Rpc::Erase(m) => c.erase(req(sk, m)).await.map(drop),
        Rpc::GetErasure(m) => c.get_erasure(req(sk, m)).await.map(drop),
        Rpc::WatchErasure(m) => c.watch_erasure(req(sk, m)).await.map(drop),
        Rpc::ListErasures(m) => c.list_erasures(req(sk, m)).await.map(drop),
        Rpc::CountSubject(m) => c.count_subject(req(sk, m)).await.map(drop),
        Rpc::ListDeletionLog(m) => c.list_deletion_log(req(sk, m)).await.map(drop),
        Rpc::GetCertificate(m) => c.get_certificate(req(sk, m)).await.map(drop),
        Rpc::SearchResiduals(m) => c.search_residuals(req(sk, m)).await.map(drop),
        Rpc::Reindex(m) => c.reindex(req(sk, m)).await.map(drop),
        Rpc::GetReindex(m) => c.get_reindex(req(sk, m)).await.map(drop),
        Rpc::WatchReindex(m) => c.watch_reindex(req(sk, m)).await.map(drop),
        Rpc::ListReindexes(m) => c.list_reindexes(req(sk, m)).await.map(drop),
        Rpc::ExportSubject(m) => c.export_subject(req(sk, m)).await.map(drop),
    };
    result.err().unwrap_or_else(|| Status::ok(""))
}

/// The field of the first BadRequest violation.
fn bad_field(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first())
        .map(|v| v.field.clone())
        .unwrap_or_default()
}

fn ident(kind: pb::IdentifierKind, value: &str) -> pb::Identifier {
    pb::Identifier { kind: kind as i32, value: value.into() }
}

fn subject_with(id: &str, value: &str) -> pb::SubjectRef {
    pb::SubjectRef { id: id.into(), identifiers: vec![ident(pb::IdentifierKind::Name, value)] }
}

fn track(points: Vec<pb::TrackedPoint>) -> Rpc {
    Rpc::Track(pb::TrackRequest { collection: "mail".into(), points, ..Default::default() })
}

fn point(f: impl FnOnce(&mut pb::TrackedPoint)) -> pb::TrackedPoint {
    let mut p =
        pb::TrackedPoint { point_id: uuid::Uuid::new_v4().to_string(), source_id: "s".into(), ..Default::default() };
    f(&mut p);
    p
}

fn ingest_one(f: impl FnOnce(&mut pb::IngestChunk)) -> Rpc {
    let mut c = chunk("s", 0, "some text", &["a"]);
    f(&mut c);
    Rpc::Ingest(pb::IngestRequest { collection: "mail".into(), chunks: vec![c], subjects: vec![] })
}

fn erase(f: impl FnOnce(&mut pb::EraseRequest)) -> Rpc {
    let mut r = pb::EraseRequest { subject: Some(person("u1")), requested_by: "dpo".into(), ..Default::default() };
    f(&mut r);
    Rpc::Erase(r)
}

/// A request with a given value in one of its string fields.
type WithValue = Box<dyn Fn(&str) -> Rpc>;

/// Every string field of every request, as (field path, its bound in bytes
/// (36 for UUIDs), the request with a value in that field).
fn string_fields() -> Vec<(&'static str, usize, WithValue)> {
    let s = |v: &str| v.to_owned();
    vec![
        (
            "name",
            64,
            Box::new(move |v| {
                Rpc::CreateCollection(pb::CreateCollectionRequest {
                    name: s(v),
                    backend: 1,
                    dimension: 8,
                    ..Default::default()
                })
            }),
        ),
        ("subject.id", 256, Box::new(|v| Rpc::PutSubject(pb::PutSubjectRequest { subject: Some(person(v)) }))),
        (
            "subject.identifiers[0].value",
            512,
            Box::new(|v| Rpc::PutSubject(pb::PutSubjectRequest { subject: Some(subject_with("u1", v)) })),
        ),
        (
            "subject_id",
            256,
            Box::new(|v| {
                Rpc::SetLegalHold(pb::SetLegalHoldRequest { subject_id: v.into(), hold: true, reason: "case 1".into() })
            }),
        ),
        (
            "reason",
            1024,
            Box::new(|v| {
                Rpc::SetLegalHold(pb::SetLegalHoldRequest { subject_id: "u1".into(), hold: true, reason: v.into() })
            }),
        ),
        (
            "reason",
            1024,
            Box::new(|v| {
                Rpc::SetLegalHold(pb::SetLegalHoldRequest { subject_id: "u1".into(), hold: false, reason: v.into() })
            }),
        ),
        (
            "collection",
            64,
            Box::new(|v| {
                Rpc::Ingest(pb::IngestRequest {
                    collection: v.into(),
                    chunks: vec![chunk("s", 0, "t", &["a"])],
                    subjects: vec![],
                })
            }),
        ),
        ("chunks[0].source_id", 256, Box::new(|v| ingest_one(|c| c.source_id = v.into()))),
        ("chunks[0].source_uri", 2048, Box::new(|v| ingest_one(|c| c.source_uri = v.into()))),
        ("chunks[0].source_kind", 128, Box::new(|v| ingest_one(|c| c.source_kind = v.into()))),
        ("chunks[0].text", 32 * 1024, Box::new(|v| ingest_one(|c| c.text = v.into()))),
        ("chunks[0].point_id", 36, Box::new(|v| ingest_one(|c| c.point_id = v.into()))),
        ("chunks[0].tags[0].subject_id", 256, Box::new(|v| ingest_one(|c| c.tags[0].subject_id = v.into()))),
        (
            "subjects[0].id",
            256,
            Box::new(|v| {
                Rpc::Ingest(pb::IngestRequest {
                    collection: "mail".into(),
                    chunks: vec![chunk("s", 0, "t", &["a"])],
                    subjects: vec![subject_with(v, "Ann Lee")],
                })
            }),
        ),
        (
            "collection",
            64,
            Box::new(|v| {
                Rpc::Track(pb::TrackRequest { collection: v.into(), points: vec![point(|_| ())], ..Default::default() })
            }),
        ),
        ("points[0].point_id", 36, Box::new(|v| track(vec![point(|p| p.point_id = v.into())]))),
        ("points[0].source_id", 256, Box::new(|v| track(vec![point(|p| p.source_id = v.into())]))),
        ("points[0].source_uri", 2048, Box::new(|v| track(vec![point(|p| p.source_uri = v.into())]))),
        ("points[0].source_kind", 128, Box::new(|v| track(vec![point(|p| p.source_kind = v.into())]))),
        ("points[0].text", 32 * 1024, Box::new(|v| track(vec![point(|p| p.text = v.into())]))),
        (
            "points[0].tags[0].subject_id",
            256,
            Box::new(|v| track(vec![point(|p| p.tags = vec![pb::SubjectTag { subject_id: v.into(), role: 1 }])])),
        ),
        (
            "subjects[0].identifiers[0].value",
            512,
            Box::new(|v| {
                Rpc::Track(pb::TrackRequest {
                    collection: "mail".into(),
                    points: vec![point(|_| ())],
                    subjects: vec![subject_with("a", v)],
                    ..Default::default()
                })
            }),
        ),
        ("subject.id", 256, Box::new(|v| erase(|r| r.subject = Some(person(v))))),
        ("subject.identifiers[0].value", 512, Box::new(|v| erase(|r| r.subject = Some(subject_with("u1", v))))),
        ("requested_by", 256, Box::new(|v| erase(|r| r.requested_by = v.into()))),
        ("reason", 1024, Box::new(|v| erase(|r| r.reason = v.into()))),
        ("idempotency_key", 128, Box::new(|v| erase(|r| r.idempotency_key = v.into()))),
        ("job_id", 36, Box::new(|v| Rpc::GetErasure(pb::GetErasureRequest { job_id: v.into() }))),
        ("job_id", 36, Box::new(|v| Rpc::WatchErasure(pb::GetErasureRequest { job_id: v.into() }))),
        ("subject_id", 256, Box::new(|v| Rpc::CountSubject(pb::CountSubjectRequest { subject_id: v.into() }))),
        ("job_id", 36, Box::new(|v| Rpc::GetCertificate(pb::GetCertificateRequest { job_id: v.into() }))),
        (
            "identifiers[0].value",
            512,
            Box::new(|v| {
                Rpc::SearchResiduals(pb::SearchResidualsRequest {
                    identifiers: vec![ident(pb::IdentifierKind::Name, v)],
                    limit: 0,
                })
            }),
        ),
        ("collection", 64, Box::new(|v| Rpc::Reindex(pb::ReindexRequest { collection: v.into(), mode: 0 }))),
        ("job_id", 36, Box::new(|v| Rpc::GetReindex(pb::GetReindexRequest { job_id: v.into() }))),
        ("job_id", 36, Box::new(|v| Rpc::WatchReindex(pb::GetReindexRequest { job_id: v.into() }))),
        ("subject_id", 256, Box::new(|v| Rpc::ExportSubject(pb::ExportSubjectRequest { subject_id: v.into() }))),
    ]
}

/// Tables that any accepted request would have written to.
async fn written(app: &TestApp) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for table in
        ["chunks", "sources", "chunk_subjects", "subjects", "subject_identifiers", "erasure_jobs", "reindex_jobs", "deletion_log"]
    {
        out.push((table, rows(app, table).await));
    }
    out
}

#[tokio::test]
async fn every_string_field_is_bounded_nul_free_and_named_when_bad() {
    let app = spawn_app().await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    let before = written(&app).await;
    for (field, max, make) in string_fields() {
        // A NUL inside an otherwise good value, a value one byte over the
        // bound (all 'x': also not a UUID), and a megabyte.
        let nul = if max == 36 { format!("{}\0", &uuid::Uuid::new_v4().to_string()[..35]) } else { "ab\0c".to_owned() };
        for value in [nul, "x".repeat(max + 1), "y".repeat(1 << 20)] {
            let status = send(&app, make(&value)).await;
            let shown: String = value.chars().take(12).collect();
            assert_eq!(status.code(), Code::InvalidArgument, "{field} = {shown:?}…: {status:?}");
            assert_eq!(reason(&status), "invalid_argument", "{field}");
            assert_eq!(bad_field(&status), field, "{field} = {shown:?}…: {}", status.message());
        }
    }
    assert_eq!(written(&app).await, before, "a rejected request wrote something");
}

#[tokio::test]
async fn out_of_range_numbers_unknown_enums_and_huge_lists_are_invalid_arguments() {
    let app = spawn_app().await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    let before = written(&app).await;
    let dim = u32::try_from(app.settings.embedding.dimension).unwrap();
    let collection = |f: fn(&mut pb::CreateCollectionRequest)| {
        let mut r = pb::CreateCollectionRequest { name: "c2".into(), backend: 1, dimension: 8, ..Default::default() };
        f(&mut r);
        Rpc::CreateCollection(r)
    };
    let many_tags: Vec<pb::SubjectTag> =
        (0..101).map(|i| pb::SubjectTag { subject_id: format!("s{i}"), role: 1 }).collect();
    let cases: Vec<(&str, Rpc)> = vec![
        ("backend", collection(|r| r.backend = 99)),
        ("distance", collection(|r| r.distance = -1)),
        ("dimension", collection(|r| r.dimension = 0)),
        ("dimension", collection(|r| r.dimension = u32::MAX)),
        ("dimension", collection(|r| r.dimension = 3000)),
        ("retention_days", collection(|r| r.retention_days = u32::MAX)),
        (
            "subject.identifiers[0].kind",
            Rpc::PutSubject(pb::PutSubjectRequest {
                subject: Some(pb::SubjectRef {
                    id: "u".into(),
                    identifiers: vec![pb::Identifier { kind: 42, value: "x".into() }],
                }),
            }),
        ),
        (
            "subject.identifiers",
            Rpc::PutSubject(pb::PutSubjectRequest {
                subject: Some(pb::SubjectRef {
                    id: "u".into(),
                    identifiers: vec![ident(pb::IdentifierKind::Name, "Ann Lee"); 101],
                }),
            }),
        ),
        ("subject", Rpc::PutSubject(pb::PutSubjectRequest { subject: None })),
        (
            "chunks",
            Rpc::Ingest(pb::IngestRequest {
                collection: "mail".into(),
                chunks: vec![chunk("s", 0, "t", &[]); 1001],
                subjects: vec![],
            }),
        ),
        ("chunks[0].tags", ingest_one(|c| c.tags = many_tags.clone())),
        ("chunks[0].tags[0].role", ingest_one(|c| c.tags[0].role = 7)),
        ("chunks[0].ordinal", ingest_one(|c| c.ordinal = u32::MAX)),
        (
            "subjects",
            Rpc::Ingest(pb::IngestRequest {
                collection: "mail".into(),
                chunks: vec![chunk("s", 0, "t", &[])],
                subjects: (0..1001).map(|i| person(&format!("p{i}"))).collect(),
            }),
        ),
        ("points", track(vec![])),
        ("points[0].vector", track(vec![point(|p| p.vector = vec![f32::NAN; dim as usize])])),
        ("points[0].vector", track(vec![point(|p| p.vector = vec![f32::INFINITY; dim as usize])])),
        ("points[0].vector", track(vec![point(|p| p.vector = vec![f32::NEG_INFINITY; dim as usize])])),
        ("points[0].vector", track(vec![point(|p| p.vector = vec![0.5; 3])])),
        ("points[0].vector", track(vec![point(|p| p.vector = vec![0.5; 100_000])])),
        ("points", track(vec![point(|p| p.vector = vec![0.5; dim as usize]), point(|_| ())])),
        (
            "points[1].point_id",
            track(vec![
                point(|p| p.point_id = "6f9619ff-8b86-d011-b42d-00c04fc964ff".into()),
                point(|p| p.point_id = "6f9619ff-8b86-d011-b42d-00c04fc964ff".into()),
            ]),
        ),
        ("deadline_days", erase(|r| r.deadline_days = 3651)),
        ("deadline_days", erase(|r| r.deadline_days = u32::MAX)),
        ("residual_policy", erase(|r| r.residual_policy = 9)),
        ("subject", erase(|r| r.subject = None)),
        ("job_id", Rpc::GetErasure(pb::GetErasureRequest { job_id: "42".into() })),
        ("job_id", Rpc::GetErasure(pb::GetErasureRequest { job_id: String::new() })),
        ("limit", Rpc::ListErasures(pb::ListErasuresRequest { limit: 501, ..Default::default() })),
        ("limit", Rpc::ListErasures(pb::ListErasuresRequest { limit: u32::MAX, ..Default::default() })),
        ("status", Rpc::ListErasures(pb::ListErasuresRequest { status: 99, ..Default::default() })),
        ("limit", Rpc::ListDeletionLog(pb::ListDeletionLogRequest { limit: 1001, after_seq: 0 })),
        ("after_seq", Rpc::ListDeletionLog(pb::ListDeletionLogRequest { limit: 0, after_seq: u64::MAX })),
        ("identifiers", Rpc::SearchResiduals(pb::SearchResidualsRequest { identifiers: vec![], limit: 0 })),
        (
            "identifiers",
            Rpc::SearchResiduals(pb::SearchResidualsRequest {
                identifiers: vec![ident(pb::IdentifierKind::Name, "Ann Lee"); 21],
                limit: 0,
            }),
        ),
        (
            "identifiers[0].kind",
            Rpc::SearchResiduals(pb::SearchResidualsRequest {
                identifiers: vec![pb::Identifier { kind: -3, value: "x".into() }],
                limit: 0,
            }),
        ),
        (
            "identifiers[0].value",
            Rpc::SearchResiduals(pb::SearchResidualsRequest {
                identifiers: vec![ident(pb::IdentifierKind::Email, "no-at-sign")],
                limit: 0,
            }),
        ),
        (
            "identifiers[0].value",
            Rpc::SearchResiduals(pb::SearchResidualsRequest {
                identifiers: vec![ident(pb::IdentifierKind::Name, " \t ")],
                limit: 0,
            }),
        ),
        (
            "limit",
            Rpc::SearchResiduals(pb::SearchResidualsRequest {
                identifiers: vec![ident(pb::IdentifierKind::Name, "Ann Lee")],
                limit: 1001,
            }),
        ),
        ("mode", Rpc::Reindex(pb::ReindexRequest { collection: "mail".into(), mode: 5 })),
        ("limit", Rpc::ListReindexes(pb::ListReindexesRequest { limit: 501 })),
    ];
    for (field, rpc) in cases {
        let status = send(&app, rpc).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(bad_field(&status), field, "{}", status.message());
    }
    assert_eq!(written(&app).await, before, "a rejected request wrote something");
}

/// Mirrors of request messages with `bytes` where the proto has `string`
/// (same tags), to send what a well-behaved client cannot: strings that are
/// not UTF-8.
mod raw {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IngestChunk {
        #[prost(bytes = "vec", tag = "1")]
        pub source_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub source_uri: Vec<u8>,
        #[prost(bytes = "vec", tag = "3")]
        pub source_kind: Vec<u8>,
        #[prost(bytes = "vec", tag = "4")]
        pub text: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IngestRequest {
        #[prost(bytes = "vec", tag = "1")]
        pub collection: Vec<u8>,
        #[prost(message, repeated, tag = "2")]
        pub chunks: Vec<IngestChunk>,
    }

    /// `GetErasureRequest`, `EraseRequest.requested_by` (tag 2) …: one string field.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OneString {
        #[prost(bytes = "vec", tag = "1")]
        pub first: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub second: Vec<u8>,
    }

    /// A string field sent as a varint: a malformed message.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WrongWireType {
        #[prost(uint64, tag = "1")]
        pub first: u64,
    }
}

/// A codec that sends and receives message bytes as they are.
#[derive(Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), Status> {
        prost::bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use prost::bytes::Buf;
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// Sends `body` as the encoded request of `method` (e.g. "Ingest") with the secret key.
async fn send_raw(app: &TestApp, method: &str, body: Vec<u8>) -> Status {
    let mut grpc = tonic::client::Grpc::new(app.channel());
    grpc.ready().await.expect("ready");
    let path: tonic::codegen::http::uri::PathAndQuery = format!("/lethe.v1.Lethe/{method}").parse().expect("path");
    grpc.unary(req(&app.keys.sk, body), path, RawCodec).await.err().unwrap_or_else(|| Status::ok(""))
}

#[tokio::test]
async fn strings_that_are_not_utf8_and_malformed_messages_are_invalid_arguments() {
    use prost::Message;
    let app = spawn_app().await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    let bad = b"caf\xc3\x28 \xff\xfe".to_vec();
    let ingest = |f: &dyn Fn(&mut raw::IngestChunk)| {
        let mut c = raw::IngestChunk { source_id: b"s".to_vec(), text: b"text".to_vec(), ..Default::default() };
        f(&mut c);
        raw::IngestRequest { collection: b"mail".to_vec(), chunks: vec![c] }.encode_to_vec()
    };
    let first = |v: &[u8]| raw::OneString { first: v.to_vec(), second: vec![] }.encode_to_vec();
    let second = |v: &[u8]| raw::OneString { first: vec![], second: v.to_vec() }.encode_to_vec();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("Ingest", "chunks.source_uri", ingest(&|c| c.source_uri = bad.clone())),
        ("Ingest", "chunks.source_kind", ingest(&|c| c.source_kind = bad.clone())),
        ("Ingest", "chunks.text", ingest(&|c| c.text = bad.clone())),
        ("Ingest", "chunks.source_id", ingest(&|c| c.source_id = bad.clone())),
        ("Ingest", "collection", raw::IngestRequest { collection: bad.clone(), chunks: vec![] }.encode_to_vec()),
        ("Track", "collection", first(&bad)),
        ("GetErasure", "job_id", first(&bad)),
        ("Erase", "requested_by", second(&bad)),
        ("CountSubject", "subject_id", first(&bad)),
        ("SetLegalHold", "subject_id", first(&bad)),
        ("Reindex", "collection", first(&bad)),
        ("CreateCollection", "name", first(&bad)),
        // Malformed: a string field sent as a varint, a length past the end,
        // a key that is not a varint.
        ("GetErasure", "job_id", raw::WrongWireType { first: 7 }.encode_to_vec()),
        ("GetErasure", "job_id", vec![0x0a, 0x7f, b'a']),
        ("Ingest", "request", vec![0xff]),
    ];
    for (method, field, body) in cases {
        let status = send_raw(&app, method, body).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{method} {field}: {status:?}");
        assert_eq!(reason(&status), "invalid_argument", "{method} {field}");
        assert_eq!(bad_field(&status), field, "{method}: {}", status.message());
    }
    assert_eq!(rows(&app, "chunks").await, 0);
}
