//! Nothing one tenant holds is observable by another: a point id that
//! tenant A uses is, for tenant B, as free as an id nobody uses, and B's
//! writes and erasures under that id never touch A's chunk.

use lethe::grpc::pb;
use uuid::Uuid;

use crate::helpers::*;

async fn collection_id(app: &TestApp, tenant_id: Uuid, name: &str) -> Uuid {
    sqlx::query_scalar("SELECT collection_id FROM collections WHERE tenant_id = $1 AND name = $2")
        .bind(tenant_id)
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .expect("collection")
}

/// (collection, text) of the tenant's chunk `id`, if lineage has it.
async fn lineage_chunk(app: &TestApp, tenant_id: Uuid, id: Uuid) -> Option<(Uuid, Option<String>)> {
    sqlx::query_as("SELECT collection_id, text FROM chunks WHERE tenant_id = $1 AND chunk_id = $2")
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&app.pool)
        .await
        .expect("chunk")
}

async fn counts(app: &TestApp, ak: &str, subject: &str) -> (u64, u64) {
    let r = app
        .client
        .clone()
        .count_subject(req(ak, pb::CountSubjectRequest { subject_id: subject.into() }))
        .await
        .expect("count")
        .into_inner();
    (r.counts.iter().map(|c| c.before_by_tag).sum(), r.counts.iter().map(|c| c.before_by_ids).sum())
}

async fn erase_and_wait(app: &TestApp, keys: &Keys, subject: &str) -> pb::ErasureJob {
    let r = pb::EraseRequest { subject: Some(person(subject)), requested_by: "dpo".into(), ..Default::default() };
    let job = app.client.clone().erase(req(&keys.sk, r)).await.expect("erase").into_inner();
    let done = wait_for_job(&app.client, &keys.ak, &job.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    done
}

async fn point_ids_are_the_tenants_own(backend: pb::Backend) {
    let app = spawn_app().await;
    let (a, b) = (app.keys.clone(), new_tenant(&app.pool).await);
    let dim = u32::try_from(app.settings.embedding.dimension).expect("small");
    let create = |keys: &Keys, name: &str| {
        let r = pb::CreateCollectionRequest {
            name: name.into(),
            backend: backend as i32,
            dimension: dim,
            ..Default::default()
        };
        let mut client = app.client.clone();
        let sk = keys.sk.clone();
        async move { client.create_collection(req(&sk, r)).await.expect("create collection").into_inner() }
    };
    create(&a, "mail").await;
    create(&b, "mail").await;
    let (a_mail, b_mail) = (collection_id(&app, a.tenant_id, "mail").await, collection_id(&app, b.tenant_id, "mail").await);

    // A's chunk under point id X.
    let x = Uuid::new_v4();
    let mut a_chunk = chunk("a-letter", 0, "Alice's letter about the merger", &["alice"]);
    a_chunk.point_id = x.to_string();
    app.ingest("mail", vec![a_chunk]).await.expect("A ingests X");

    // B tracks X, which A uses, and Y, which nobody uses: the same answer.
    let track = |id: Uuid, source: &str| pb::TrackRequest {
        collection: "mail".into(),
        points: vec![pb::TrackedPoint {
            point_id: id.to_string(),
            source_id: source.into(),
            text: "Bob's own note".into(),
            tags: vec![pb::SubjectTag { subject_id: "bob".into(), role: pb::TagRole::Owner as i32 }],
            vector: vec![0.25; dim as usize],
            ..Default::default()
        }],
        ..Default::default()
    };
    let y = Uuid::new_v4();
    let mut client = app.client.clone();
    let on_x = client.track(req(&b.sk, track(x, "b-x"))).await.map(tonic::Response::into_inner);
    let on_y = client.track(req(&b.sk, track(y, "b-y"))).await.map(tonic::Response::into_inner);
    let on_x = on_x.expect("an id another tenant uses is free for B");
    let on_y = on_y.expect("an unused id");
    assert_eq!(on_x.point_ids, [x.to_string()]);
    assert_eq!(on_y.point_ids, [y.to_string()]);
    assert_eq!(
        pb::WriteResponse { point_ids: vec![], ..on_x.clone() },
        pb::WriteResponse { point_ids: vec![], ..on_y.clone() }
    );
    // Ingest under an id A uses: the same.
    let mut b_chunk = chunk("b-ingest", 0, "Bob's second note", &["bob"]);
    b_chunk.point_id = x.to_string();
    let w = client
        .ingest(req(&b.sk, pb::IngestRequest { collection: "mail".into(), chunks: vec![b_chunk], subjects: vec![] }))
        .await;
    // Its own id, from another of B's sources: B's own conflict, named as such.
    assert_eq!(w.expect_err("X is B's chunk of source b-x").code(), tonic::Code::InvalidArgument);

    // A's chunk is untouched, in lineage and in the backend.
    assert_eq!(lineage_chunk(&app, a.tenant_id, x).await, Some((a_mail, Some("Alice's letter about the merger".into()))));
    assert_eq!(lineage_chunk(&app, b.tenant_id, x).await, Some((b_mail, Some("Bob's own note".into()))));
    assert_eq!(counts(&app, &a.ak, "alice").await, (1, 1));
    assert_eq!(counts(&app, &b.ak, "bob").await, (2, 2));

    // B's erasure deletes B's X, not A's; A's erasure then deletes A's X only.
    let done = erase_and_wait(&app, &b, "bob").await;
    assert_eq!((done.counts[0].before_total, done.counts[0].after_total), (2, 0));
    assert_eq!(counts(&app, &a.ak, "alice").await, (1, 1));
    assert_eq!(lineage_chunk(&app, a.tenant_id, x).await, Some((a_mail, Some("Alice's letter about the merger".into()))));
    assert_eq!(lineage_chunk(&app, b.tenant_id, x).await, None);
    let done = erase_and_wait(&app, &a, "alice").await;
    assert_eq!((done.counts[0].before_total, done.counts[0].after_total), (1, 0));
    assert_eq!(lineage_chunk(&app, a.tenant_id, x).await, None);
    app.assert_lineage_consistent().await;
}

#[tokio::test]
async fn point_ids_are_the_tenants_own_on_pgvector() {
    point_ids_are_the_tenants_own(pb::Backend::Pgvector).await;
}

#[tokio::test]
async fn point_ids_are_the_tenants_own_on_qdrant() {
    if qdrant_url().is_some() {
        point_ids_are_the_tenants_own(pb::Backend::Qdrant).await;
    }
}
