use lethe::grpc::pb;
use tonic::{Code, Status};

use crate::helpers::*;

const RPCS: &[&str] = &[
    "CreateCollection", "ListCollections", "PutSubject", "SetLegalHold", "Ingest", "Track", "DeletePoints", "Erase",
    "GetErasure", "ListErasures", "CountSubject", "ListDeletionLog", "VerifyDeletionLog", "GetCertificate", "SearchResiduals",
    "WatchErasure", "ExportSubject",
];

/// Calls one rpc with a minimal request; only the status code matters.
async fn call(app: &TestApp, rpc: &str, key: &str) -> Result<(), Status> {
    let mut c = app.client.clone();
    let job_id = uuid::Uuid::new_v4().to_string();
    fn ok<T>(_: T) {}
    match rpc {
        "CreateCollection" => c
            .create_collection(req(key, pb::CreateCollectionRequest {
                name: "authz".into(),
                backend: pb::Backend::Pgvector as i32,
                dimension: 384,
                ..Default::default()
            }))
            .await
            .map(ok),
        "ListCollections" => c.list_collections(req(key, pb::ListCollectionsRequest {})).await.map(ok),
        "PutSubject" => c.put_subject(req(key, pb::PutSubjectRequest { subject: Some(person("p")) })).await.map(ok),
        "SetLegalHold" => c
            .set_legal_hold(req(key, pb::SetLegalHoldRequest { subject_id: "p".into(), hold: false, reason: String::new() }))
            .await
            .map(ok),
        "Ingest" => c
            .ingest(req(key, pb::IngestRequest { collection: "mail".into(), chunks: vec![chunk("s", 0, "t", &["p"])], subjects: vec![] }))
            .await
            .map(ok),
        "Track" => c
            .track(req(key, pb::TrackRequest {
                collection: "mail".into(),
                points: vec![pb::TrackedPoint { point_id: job_id, source_id: "s".into(), ..Default::default() }],
                ..Default::default()
            }))
            .await
            .map(ok),
        "DeletePoints" => c
            .delete_points(req(key, pb::DeletePointsRequest {
                collection: "mail".into(),
                source_ids: vec!["s".into()],
                ..Default::default()
            }))
            .await
            .map(ok),
        "Erase" => c
            .erase(req(key, pb::EraseRequest { subject: Some(person("q")), requested_by: "t".into(), ..Default::default() }))
            .await
            .map(ok),
        "GetErasure" => c.get_erasure(req(key, pb::GetErasureRequest { job_id })).await.map(ok),
        "WatchErasure" => c.watch_erasure(req(key, pb::GetErasureRequest { job_id })).await.map(|_| ()),
        "ListErasures" => c.list_erasures(req(key, pb::ListErasuresRequest::default())).await.map(ok),
        "CountSubject" => c.count_subject(req(key, pb::CountSubjectRequest { subject_id: "p".into() })).await.map(ok),
        "ListDeletionLog" => c.list_deletion_log(req(key, pb::ListDeletionLogRequest::default())).await.map(ok),
        "VerifyDeletionLog" => c.verify_deletion_log(req(key, pb::VerifyDeletionLogRequest::default())).await.map(ok),
        "GetCertificate" => c.get_certificate(req(key, pb::GetCertificateRequest { job_id })).await.map(ok),
        "SearchResiduals" => c
            .search_residuals(req(key, pb::SearchResidualsRequest {
                identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Name as i32, value: "Pat Quinn".into() }],
                limit: 5,
            }))
            .await
            .map(ok),
        "ExportSubject" => c.export_subject(req(key, pb::ExportSubjectRequest { subject_id: "p".into() })).await.map(|_| ()),
        other => panic!("unknown rpc {other}"),
    }
}

fn allowed(kind: &str, rpc: &str) -> bool {
    let write = ["PutSubject", "Ingest", "Track", "DeletePoints"];
    let manage = ["CreateCollection", "SetLegalHold", "Erase"];
    match kind {
        "sk" => true,
        "pk" => write.contains(&rpc),
        "ak" => !write.contains(&rpc) && !manage.contains(&rpc),
        _ => false,
    }
}

#[tokio::test]
async fn every_key_kind_gets_exactly_its_rpcs() {
    let app = spawn_app().await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    for (kind, key) in [("sk", &app.keys.sk), ("pk", &app.keys.pk), ("ak", &app.keys.ak)] {
        for rpc in RPCS {
            let result = call(&app, rpc, key).await;
            let code = result.as_ref().err().map_or(Code::Ok, Status::code);
            if allowed(kind, rpc) {
                assert!(
                    !matches!(code, Code::PermissionDenied | Code::Unauthenticated),
                    "{kind} on {rpc} must be allowed, got {result:?}"
                );
            } else {
                let status = result.expect_err("must be denied");
                assert_eq!(status.code(), Code::PermissionDenied, "{kind} on {rpc}");
                if rpc == &"Erase" {
                    assert_eq!(reason(&status), "requires_secret_key");
                }
            }
        }
    }
}

#[tokio::test]
async fn wrong_missing_and_revoked_keys_are_unauthenticated_everywhere() {
    let app = spawn_app().await;
    let forged = format!("sk_{}", "A".repeat(32));
    // A publishable key relabelled as a secret key is not a key we issued.
    let relabelled = app.keys.pk.replacen("pk_", "sk_", 1);
    lethe::auth::revoke_key(&app.pool, &app.keys.ak).await.unwrap();
    for key in [forged.as_str(), relabelled.as_str(), app.keys.ak.as_str(), ""] {
        for rpc in RPCS {
            let status = call(&app, rpc, key).await.expect_err("must be rejected");
            assert_eq!(status.code(), Code::Unauthenticated, "{rpc} with {key:?}");
            assert_eq!(reason(&status), "invalid_api_key");
        }
    }
    let mut c = app.client.clone();
    let no_header = c.list_collections(tonic::Request::new(pb::ListCollectionsRequest {})).await.unwrap_err();
    assert_eq!(no_header.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn nothing_of_one_tenant_is_visible_to_another() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2)]).await;
    let job = app.erase("ann").await;
    app.wait_for_job(&job.job_id).await;

    let other = new_tenant(&app.pool).await;
    let mut client = app.client.clone();
    let list = client.list_collections(req(&other.sk, pb::ListCollectionsRequest {})).await.unwrap().into_inner();
    assert!(list.collections.is_empty());
    let ingest = client
        .ingest(req(&other.sk, pb::IngestRequest { collection: c.name.clone(), chunks: vec![chunk("x", 0, "t", &["z"])], subjects: vec![] }))
        .await
        .unwrap_err();
    assert_eq!(ingest.code(), Code::NotFound);
    let get = client.get_erasure(req(&other.ak, pb::GetErasureRequest { job_id: job.job_id.clone() })).await.unwrap_err();
    assert_eq!(get.code(), Code::NotFound);
    let cert = client.get_certificate(req(&other.ak, pb::GetCertificateRequest { job_id: job.job_id.clone() })).await.unwrap_err();
    assert_eq!(cert.code(), Code::NotFound);
    let jobs = client.list_erasures(req(&other.ak, pb::ListErasuresRequest::default())).await.unwrap().into_inner();
    assert!(jobs.jobs.is_empty());
    let log = client.list_deletion_log(req(&other.ak, pb::ListDeletionLogRequest::default())).await.unwrap().into_inner();
    assert!(log.entries.is_empty());
    let counts = client.count_subject(req(&other.ak, pb::CountSubjectRequest { subject_id: "ann".into() })).await.unwrap().into_inner();
    assert!(counts.counts.is_empty());
    assert_eq!(counts.subject_state, "unknown");
    // The other tenant may use the same collection name without touching ours.
    let theirs = pb::CreateCollectionRequest { name: c.name.clone(), backend: pb::Backend::Pgvector as i32, dimension: 384, ..Default::default() };
    let created = client.create_collection(req(&other.sk, theirs)).await.unwrap().into_inner();
    assert_ne!(created.backend_name, c.backend_name);
}

#[tokio::test]
async fn a_key_s_use_is_recorded_at_most_once_a_minute_and_never_after_revocation() {
    let app = spawn_app().await;
    let keys = new_tenant(&app.pool).await;
    let last_used = |key: String| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>("SELECT last_used_at FROM api_keys WHERE key_hash = $1")
                .bind(lethe::auth::hash_key(&key).to_vec())
                .fetch_one(&pool)
                .await
                .expect("the key")
        }
    };
    let set_last_used = |key: String, ago: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query(&format!("UPDATE api_keys SET last_used_at = now() - interval '{ago}' WHERE key_hash = $1"))
                .bind(lethe::auth::hash_key(&key).to_vec())
                .execute(&pool)
                .await
                .expect("set");
        }
    };
    let list = |key: String| {
        let mut c = app.client.clone();
        async move { c.list_collections(req(&key, pb::ListCollectionsRequest {})).await.map(|_| ()) }
    };
    lethe::auth::revoke_key(&app.pool, &keys.ak).await.unwrap();
    assert_eq!(list(keys.ak.clone()).await.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(last_used(keys.ak.clone()).await, None, "a revoked key's use is not recorded");

    assert_eq!(last_used(keys.sk.clone()).await, None);
    list(keys.sk.clone()).await.expect("list");
    let first = last_used(keys.sk.clone()).await.expect("recorded");
    // Within the minute: not written again.
    set_last_used(keys.sk.clone(), "10 seconds").await;
    let ten_ago = last_used(keys.sk.clone()).await.unwrap();
    list(keys.sk.clone()).await.expect("list");
    assert_eq!(last_used(keys.sk.clone()).await, Some(ten_ago));
    // An hour ago: recorded again.
    set_last_used(keys.sk.clone(), "1 hour").await;
    list(keys.sk.clone()).await.expect("list");
    assert!(last_used(keys.sk.clone()).await.unwrap() >= first);
}
