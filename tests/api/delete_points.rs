//! DeletePoints: a pipeline removes points it no longer wants (LangChain's
//! `index()` cleaning up, LlamaIndex's `delete_ref_doc`) and lineage follows.
//! Collections Lethe created, on both backends: the points leave the backend
//! and lineage, by id and by source; a legal hold keeps them; a repeat does
//! nothing. An attached store: Lethe forgets only what the framework deleted.

use lethe::grpc::pb;
use tonic::Code;

use crate::attach::{attach, hand_made_request, hand_made_table, wait_for_adoption};
use crate::helpers::*;

async fn delete_points(
    app: &TestApp,
    key: &str,
    collection: &str,
    point_ids: &[&str],
    source_ids: &[&str],
) -> Result<pb::DeletePointsResponse, tonic::Status> {
    app.client
        .clone()
        .delete_points(req(key, pb::DeletePointsRequest {
            collection: collection.into(),
            point_ids: point_ids.iter().map(|s| (*s).to_owned()).collect(),
            source_ids: source_ids.iter().map(|s| (*s).to_owned()).collect(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

fn outcome(r: &pb::DeletePointsResponse) -> (u64, u64, u64, u64) {
    (r.deleted, r.forgotten, r.kept, r.held)
}

async fn total_of(app: &TestApp, subject: &str) -> u64 {
    app.count_subject(subject).await.counts.iter().map(|c| c.before_total).sum()
}

async fn lineage_chunks(app: &TestApp, collection: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM chunks c JOIN collections k USING (collection_id) WHERE k.name = $1")
        .bind(collection)
        .fetch_one(&app.pool)
        .await
        .expect("count chunks")
}

#[tokio::test]
async fn points_of_lethes_own_collections_leave_the_backend_and_lineage_by_id_and_by_source() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    let app = spawn_app().await;
    for (name, backend) in [("dp_pg", pb::Backend::Pgvector), ("dp_qd", pb::Backend::Qdrant)] {
        app.create_collection(name, backend).await;
        let written = app
            .ingest(name, vec![
                chunk("doc-a", 0, "alice on the harbour budget", &["alice"]),
                chunk("doc-a", 1, "alice on the ferry contract", &["alice"]),
                chunk("doc-ab", 0, "alice and bob at the garden committee", &["alice", "bob"]),
                chunk("doc-b", 0, "bob repairs bicycles", &["bob"]),
                chunk("doc-b", 1, "bob counts the orchard harvest", &["bob"]),
                chunk("doc-c", 0, "carol sings in the choir", &["carol"]),
            ])
            .await
            .expect("ingest");
        let ids = written.point_ids.clone();
        assert_eq!(ids.len(), 6);

        // By point id, with the pipeline's publishable key.
        let r = delete_points(&app, &app.keys.pk, name, &[&ids[0]], &[]).await.expect("delete by id");
        assert_eq!(outcome(&r), (1, 1, 0, 0), "{name}");
        assert_eq!(lineage_chunks(&app, name).await, 5, "{name}");
        // Again: nothing left to do.
        let r = delete_points(&app, &app.keys.pk, name, &[&ids[0]], &[]).await.expect("delete again");
        assert_eq!(outcome(&r), (0, 0, 0, 0), "{name}");

        // By source: every chunk of doc-b.
        let r = delete_points(&app, &app.keys.sk, name, &[], &["doc-b"]).await.expect("delete by source");
        assert_eq!(outcome(&r), (2, 2, 0, 0), "{name}");
        assert_eq!(lineage_chunks(&app, name).await, 3, "{name}");
        app.assert_lineage_consistent().await;
    }
    // Live counts in both backends: alice keeps doc-a#1 and doc-ab, bob doc-ab.
    assert_eq!(total_of(&app, "alice").await, 4);
    assert_eq!(total_of(&app, "bob").await, 2);

    // A subject on legal hold: neither deleted nor forgotten.
    let hold = pb::SetLegalHoldRequest { subject_id: "carol".into(), hold: true, reason: "case 7".into() };
    app.client.clone().set_legal_hold(req(&app.keys.sk, hold)).await.expect("hold");
    for name in ["dp_pg", "dp_qd"] {
        let r = delete_points(&app, &app.keys.pk, name, &[], &["doc-c"]).await.expect("delete held");
        assert_eq!(outcome(&r), (0, 0, 0, 1), "{name}");
    }
    assert_eq!(total_of(&app, "carol").await, 2);
    assert_eq!(lineage_chunks(&app, "dp_pg").await + lineage_chunks(&app, "dp_qd").await, 6);

    // The erasure that follows counts only what is left.
    let job = app.erase("alice").await;
    let job = app.wait_for_job(&job.job_id).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{job:?}");
    let before: u64 = job.counts.iter().map(|c| c.before_total).sum();
    let after: u64 = job.counts.iter().map(|c| c.after_total).sum();
    assert_eq!((before, after), (4, 0), "{job:?}");
    app.assert_lineage_consistent().await;
}

#[tokio::test]
async fn ids_of_another_collections_points_are_not_forgotten_through_this_one() {
    // A chunk id is unique in its tenant; a DeletePoints that names
    // collection B with an id of A's point deleted nothing in B but forgot
    // A's lineage, leaving A's vector untracked (an erasure by lineage ids
    // would then miss it).
    let app = spawn_app().await;
    for name in ["dp_a", "dp_b"] {
        app.create_collection(name, pb::Backend::Pgvector).await;
    }
    let a = app
        .ingest("dp_a", vec![chunk("doc-a", 0, "alice on the harbour budget", &["alice"]), chunk("doc-d", 0, "dora at the market", &["dora"])])
        .await
        .expect("ingest a");
    app.ingest("dp_b", vec![chunk("doc-b", 0, "bob repairs bicycles", &["bob"])]).await.expect("ingest b");
    let tags = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM chunk_subjects cs JOIN collections k USING (collection_id) WHERE k.name = 'dp_a'")
            .fetch_one(&app.pool)
            .await
            .expect("count tags")
    };

    let r = delete_points(&app, &app.keys.pk, "dp_b", &[&a.point_ids[0]], &[]).await.expect("delete");
    assert_eq!(outcome(&r), (0, 0, 0, 0));
    assert_eq!((lineage_chunks(&app, "dp_a").await, tags().await, lineage_chunks(&app, "dp_b").await), (2, 2, 1));
    assert_eq!(total_of(&app, "alice").await, 1, "A's point is still in its backend");

    // A hold in A is not counted as held in B (nothing of B's is held).
    let hold = pb::SetLegalHoldRequest { subject_id: "dora".into(), hold: true, reason: "case 9".into() };
    app.client.clone().set_legal_hold(req(&app.keys.sk, hold)).await.expect("hold");
    let r = delete_points(&app, &app.keys.sk, "dp_b", &[&a.point_ids[1]], &[]).await.expect("delete held id");
    assert_eq!(outcome(&r), (0, 0, 0, 0));
    assert_eq!((lineage_chunks(&app, "dp_a").await, tags().await), (2, 2));

    // Alice's erasure still finds her point by lineage and by tag.
    let job = app.erase("alice").await;
    let job = app.wait_for_job(&job.job_id).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{job:?}");
    let c = job.counts.iter().find(|c| c.collection == "dp_a").expect("counts of dp_a");
    assert_eq!((c.before_by_ids, c.before_total, c.after_total), (1, 1, 0), "{job:?}");
    app.assert_lineage_consistent().await;
}

#[tokio::test]
async fn bad_delete_requests_are_refused_naming_the_field() {
    let app = spawn_app().await;
    app.create_collection("dp_bad", pb::Backend::Pgvector).await;
    let cases: [(&[&str], &[&str], &str); 4] = [
        (&[], &[], "point_ids"),
        (&["not-a-uuid"], &[], "point_ids[0]"),
        (&["7b7a4b9e-3f1c-4c55-9f0e-52b3c3a4d001", "7b7a4b9e-3f1c-4c55-9f0e-52b3c3a4d001"], &[], "point_ids[1]"),
        (&[], &[""], "source_ids[0]"),
    ];
    for (points, sources, field) in cases {
        let e = delete_points(&app, &app.keys.sk, "dp_bad", points, sources).await.expect_err(field);
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        let d = tonic_types::StatusExt::get_details_bad_request(&e).expect("field violations");
        assert_eq!(d.field_violations[0].field, field, "{e:?}");
    }
    let many: Vec<String> = (0..1001).map(|i| format!("src-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = delete_points(&app, &app.keys.sk, "dp_bad", &[], &many).await.expect_err("too many");
    assert_eq!(e.code(), Code::InvalidArgument);

    let e = delete_points(&app, &app.keys.ak, "dp_bad", &[], &["doc"]).await.expect_err("auditor");
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = delete_points(&app, &app.keys.sk, "no_such", &[], &["doc"]).await.expect_err("unknown collection");
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn an_attached_store_loses_lineage_only_of_what_its_framework_deleted() {
    let app = spawn_app().await;
    hand_made_table(&app, "dp_notes").await;
    attach(&app, hand_made_request("dp_crm", "dp_notes")).await.expect("attach");
    let job = wait_for_adoption(&app, "dp_crm").await;
    assert_eq!(job.status, "completed", "{job:?}");
    assert_eq!(lineage_chunks(&app, "dp_crm").await, 8);

    // The framework deletes b-4; Lethe is told about b-4 and b-5 (still there).
    sqlx::query("DELETE FROM dp_notes WHERE doc_key = 'b-4'").execute(&app.pool).await.expect("delete");
    let r = delete_points(&app, &app.keys.pk, "dp_crm", &["b-4", "b-5"], &[]).await.expect("delete by id");
    assert_eq!(outcome(&r), (0, 1, 1, 0));
    assert_eq!(lineage_chunks(&app, "dp_crm").await, 7);
    assert_eq!(crate::attach::rows(&app, "SELECT count(*) FROM dp_notes").await, 7, "Lethe deleted nothing");

    // By source (the mapping's `origin`): doc-0 holds the row whose id names
    // alice (deleted by the framework) and b-5 (kept).
    sqlx::query("DELETE FROM dp_notes WHERE doc_key = 'alice@example.com#1'").execute(&app.pool).await.expect("delete");
    let r = delete_points(&app, &app.keys.pk, "dp_crm", &[], &["doc-0"]).await.expect("delete by source");
    assert_eq!(outcome(&r), (0, 1, 1, 0));
    assert_eq!(lineage_chunks(&app, "dp_crm").await, 6);
    assert_eq!(crate::attach::rows(&app, "SELECT count(*) FROM attached_point_ids WHERE native_id LIKE 'alice%'").await, 0);
    assert_eq!(total_of(&app, "bob").await, 2, "b-5 and ab-3 are still bob's");
    app.assert_lineage_consistent().await;

    // An id of the wrong type for the store (its ids are text: any string is
    // one) and one that names no point are answered without effect.
    let r = delete_points(&app, &app.keys.pk, "dp_crm", &["no-such-row"], &[]).await.expect("unknown id");
    assert_eq!(outcome(&r), (0, 0, 0, 0));
}

#[tokio::test]
async fn a_source_of_more_chunks_than_a_batch_is_deleted_whole() {
    let app = spawn_app().await;
    app.create_collection("dp_big", pb::Backend::Pgvector).await;
    for part in 0..2u32 {
        let chunks = (0..600u32).map(|i| chunk("big-doc", part * 600 + i, &format!("paragraph {i} of part {part}"), &["dana"])).collect();
        app.ingest("dp_big", chunks).await.expect("ingest");
    }
    assert_eq!(lineage_chunks(&app, "dp_big").await, 1200);
    let r = delete_points(&app, &app.keys.pk, "dp_big", &[], &["big-doc"]).await.expect("delete the source");
    assert_eq!(outcome(&r), (1200, 1200, 0, 0));
    assert_eq!(lineage_chunks(&app, "dp_big").await, 0);
    assert_eq!(total_of(&app, "dana").await, 0);
    app.assert_lineage_consistent().await;
}

/// Text ids may name a person: a Track or DeletePoints that needed a lookup
/// row to reach a point keeps it only while lineage stands behind it, also
/// when the store fails in the middle of the call.
#[tokio::test]
async fn text_ids_keep_no_lookup_row_without_lineage_even_when_the_store_fails() {
    let app = spawn_app().await;
    hand_made_table(&app, "dp_fail").await;
    attach(&app, hand_made_request("dp_fail_c", "dp_fail")).await.expect("attach");
    assert_eq!(wait_for_adoption(&app, "dp_fail_c").await.status, "completed");
    let all = "SELECT count(*) FROM attached_point_ids";
    let before = crate::attach::rows(&app, all).await;
    assert!(before > 0, "the table's text ids have lookup rows");

    // A point the pipeline wrote but never tracked, its id naming erin: a
    // DeletePoints that finds it there keeps it and its lineage (none).
    sqlx::query(&format!(
        "INSERT INTO dp_fail VALUES ('erin@example.com#1', ARRAY['erin'], 'notes', 'doc-9', '{}')",
        crate::attach::vector_literal(1)
    ))
    .execute(&app.pool)
    .await
    .expect("insert");
    let r = delete_points(&app, &app.keys.pk, "dp_fail_c", &["erin@example.com#1"], &[]).await.expect("delete");
    assert_eq!(outcome(&r), (0, 0, 1, 0));
    let erin = "SELECT count(*) FROM attached_point_ids WHERE native_id LIKE 'erin%'";
    assert_eq!(crate::attach::rows(&app, erin).await, 0, "no lineage, no lookup row");

    // The store fails under Lethe (its id column renamed by hand): both
    // calls fail, and neither leaves a row naming frank.
    sqlx::raw_sql("ALTER TABLE dp_fail RENAME COLUMN doc_key TO doc_key_moved").execute(&app.pool).await.expect("rename");
    let e = delete_points(&app, &app.keys.pk, "dp_fail_c", &["frank@example.com#2"], &[]).await.expect_err("store fails");
    assert_ne!(e.code(), Code::Ok);
    let e = app
        .client
        .clone()
        .track(req(&app.keys.pk, pb::TrackRequest {
            collection: "dp_fail_c".into(),
            points: vec![pb::TrackedPoint { point_id: "frank@example.com#3".into(), ..Default::default() }],
            ..Default::default()
        }))
        .await
        .expect_err("store fails");
    assert_ne!(e.code(), Code::Ok);
    let frank = "SELECT count(*) FROM attached_point_ids WHERE native_id LIKE 'frank%'";
    assert_eq!(crate::attach::rows(&app, frank).await, 0, "the failed calls left no lookup row");
    assert_eq!(crate::attach::rows(&app, all).await, before, "the tracked points' rows are all kept");
    sqlx::raw_sql("ALTER TABLE dp_fail RENAME COLUMN doc_key_moved TO doc_key").execute(&app.pool).await.expect("rename back");

    // A Track that succeeds keeps the row of the point it recorded.
    let t = app
        .client
        .clone()
        .track(req(&app.keys.pk, pb::TrackRequest {
            collection: "dp_fail_c".into(),
            points: vec![pb::TrackedPoint { point_id: "erin@example.com#1".into(), ..Default::default() }],
            ..Default::default()
        }))
        .await
        .expect("track")
        .into_inner();
    assert_eq!(t.accepted, 1);
    assert_eq!(crate::attach::rows(&app, erin).await, 1, "lineage stands behind it now");
    app.assert_lineage_consistent().await;
}

/// DeletePoints at the same time as Tracks of the same points, on both
/// backends: whichever comes last wins, and each point ends either in the
/// backend with its lineage or in neither. Before, a DeletePoints could
/// forget the lineage a Track had just committed while the Track's vector
/// stayed (pgvector: the Track wrote in between the backend delete and the
/// lineage delete; Qdrant: the Track's upsert came after both), leaving a
/// vector that no erasure by lineage would find.
#[tokio::test]
async fn deletes_and_tracks_of_the_same_points_at_once_leave_no_vector_without_lineage() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    let app = spawn_app().await;
    let dim = app.settings.embedding.dimension;
    for (name, backend) in [("race_pg", pb::Backend::Pgvector), ("race_qd", pb::Backend::Qdrant)] {
        app.create_collection(name, backend).await;
        let ids: Vec<String> = (0..30).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        let track = |round: usize| {
            let points = ids
                .iter()
                .enumerate()
                .map(|(i, id)| pb::TrackedPoint {
                    point_id: id.clone(),
                    source_id: format!("doc-{}", i % 5),
                    text: format!("minutes {i} of round {round}"),
                    tags: vec![pb::SubjectTag { subject_id: format!("member-{}", i % 7), role: pb::TagRole::Owner as i32 }],
                    vector: vec![0.25; dim],
                    ..Default::default()
                })
                .collect();
            let app = &app;
            async move {
                app.client
                    .clone()
                    .track(req(&app.keys.pk, pb::TrackRequest { collection: name.into(), points, ..Default::default() }))
                    .await
                    .map(|_| ())
            }
        };
        let delete = |round: usize| {
            // Every other delete names the points by source.
            let (points, sources): (Vec<&str>, Vec<&str>) = if round.is_multiple_of(2) {
                (ids.iter().map(String::as_str).collect(), vec![])
            } else {
                (vec![], vec!["doc-0", "doc-1", "doc-2", "doc-3", "doc-4"])
            };
            let app = &app;
            async move { delete_points(app, &app.keys.pk, name, &points, &sources).await.map(|_| ()) }
        };
        for round in 0..6 {
            let calls: Vec<futures::future::LocalBoxFuture<'_, Result<(), tonic::Status>>> = (0..8usize)
                .map(|i| if i.is_multiple_of(2) { Box::pin(track(round * 8 + i)) as _ } else { Box::pin(delete(round * 8 + i)) as _ })
                .collect();
            let ended = tokio::time::timeout(std::time::Duration::from_secs(60), futures::future::join_all(calls)).await.expect("every call ends");
            for (i, r) in ended.into_iter().enumerate() {
                r.unwrap_or_else(|e| panic!("{name}, round {round}, call {i}: {e:?}"));
            }
            let spec = lethe::store::lineage::collection_by_name(&app.pool, app.keys.tenant_id, name).await.unwrap().unwrap();
            let keys: Vec<uuid::Uuid> = ids.iter().map(|s| s.parse().unwrap()).collect();
            let stored: std::collections::BTreeSet<uuid::Uuid> =
                app.ctx.stores.get(&spec).unwrap().retrieve(&spec, &keys, false).await.unwrap().into_iter().map(|p| p.id).collect();
            let tracked: std::collections::BTreeSet<uuid::Uuid> =
                sqlx::query_scalar("SELECT chunk_id FROM chunks WHERE tenant_id = $1 AND collection_id = $2")
                    .bind(app.keys.tenant_id)
                    .bind(spec.collection_id)
                    .fetch_all(&app.pool)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect();
            let untracked = stored.difference(&tracked).count();
            assert_eq!(untracked, 0, "{name}, round {round}: points in the backend without lineage");
            // Every call ended: nothing is half done either way.
            assert_eq!(tracked.difference(&stored).count(), 0, "{name}, round {round}: lineage without a point");
            app.assert_lineage_consistent().await;
        }
    }
}

/// A DeletePoints behind a write that does not end (a transaction of the
/// test's holds the collection's lock as a write does) waits at most its
/// bound and answers UNAVAILABLE having deleted nothing; the writes queued
/// behind it go on once it has given up, and the same call succeeds once
/// the write has ended.
#[tokio::test]
async fn a_delete_behind_a_write_that_does_not_end_gives_up_and_deletes_nothing() {
    let app = spawn_app().await;
    app.create_collection("dp_wait", pb::Backend::Pgvector).await;
    let written = app.ingest("dp_wait", vec![chunk("doc-w", 0, "wren keeps the minutes", &["wren"])]).await.expect("ingest");
    let id = written.point_ids[0].clone();
    let write = app.write_in_flight("dp_wait").await;

    let e = tokio::time::timeout(std::time::Duration::from_secs(30), delete_points(&app, &app.keys.pk, "dp_wait", &[&id], &[]))
        .await
        .expect("the wait is bounded")
        .expect_err("gives up");
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(lineage_chunks(&app, "dp_wait").await, 1, "nothing forgotten");
    assert_eq!(total_of(&app, "wren").await, 1, "nothing deleted");
    // Writes are not held back by the request that gave up.
    app.ingest("dp_wait", vec![chunk("doc-w", 1, "wren again", &["wren"])]).await.expect("a write after it");

    write.commit().await.unwrap();
    let r = delete_points(&app, &app.keys.pk, "dp_wait", &[&id], &[]).await.expect("delete");
    assert_eq!(outcome(&r), (1, 1, 0, 0));
}
