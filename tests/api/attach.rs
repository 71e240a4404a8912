//! Attach (issue 13), over gRPC against real Postgres and Qdrant semantics:
//! hand-made stores erased as they are, the guards around attaching, and
//! what is refused on attached collections. The framework-written stores
//! (LangChain, LlamaIndex) are tested with the frameworks' own packages in
//! `tests/frameworks/`.

use std::time::Duration;

use lethe::grpc::pb;
use tonic::Code;

use crate::helpers::*;

const DIM: usize = 8;

pub(crate) fn vector_literal(seed: u32) -> String {
    let v: Vec<String> = (0..DIM).map(|i| format!("{:.3}", ((seed * 7 + i as u32 * 13) % 17) as f32 / 17.0 + 0.01)).collect();
    format!("[{}]", v.join(","))
}

/// A hand-made table: text ids (some not UUIDs, one naming a person), tags
/// in a text[] column, text and source columns.
pub(crate) async fn hand_made_table(app: &TestApp, table: &str) {
    sqlx::raw_sql(&format!(
        "CREATE TABLE {table} (doc_key text PRIMARY KEY, people text[], body text, origin text, emb vector({DIM}));
         CREATE INDEX {table}_people ON {table} USING gin (people);"
    ))
    .execute(&app.pool)
    .await
    .expect("create table");
    let rows: [(&str, &[&str], &str); 8] = [
        ("alice@example.com#1", &["alice"], "alice's notes on the budget"),
        ("a-2", &["alice"], "alice wrote the second memo"),
        ("ab-3", &["alice", "bob"], "alice and bob met"),
        ("b-4", &["bob"], "bob's travel plan"),
        ("b-5", &["bob"], "bob on the quarterly figures"),
        ("c-6", &["carol"], "carol's recipe"),
        ("n-7", &[], "a note about nobody"),
        ("8c0a3d0e-5a4f-4b65-9a70-0d4b2f7f0a11", &["carol"], "carol again"),
    ];
    for (i, (id, people, body)) in rows.iter().enumerate() {
        sqlx::query(&format!("INSERT INTO {table} VALUES ($1, $2, $3, $4, '{}')", vector_literal(i as u32)))
            .bind(id)
            .bind(people.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .bind(body)
            .bind(format!("doc-{}", i % 4))
            .execute(&app.pool)
            .await
            .expect("insert row");
    }
}

pub(crate) fn hand_made_request(name: &str, table: &str) -> pb::AttachRequest {
    pb::AttachRequest {
        name: name.into(),
        backend: pb::Backend::Pgvector as i32,
        target: table.into(),
        mapping: Some(pb::AttachMapping {
            id: "doc_key".into(),
            vector: "emb".into(),
            text: Some(pb::FieldPath { column: "body".into(), ..Default::default() }),
            source: Some(pb::FieldPath { column: "origin".into(), ..Default::default() }),
            tags: Some(pb::FieldPath { column: "people".into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) async fn attach(app: &TestApp, r: pb::AttachRequest) -> Result<pb::AttachResponse, tonic::Status> {
    app.client.clone().attach(req(&app.keys.sk, r)).await.map(tonic::Response::into_inner)
}

pub(crate) async fn wait_for_adoption(app: &TestApp, name: &str) -> pb::AttachJob {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let job = app
            .client
            .clone()
            .get_attach(req(&app.keys.ak, pb::GetAttachRequest { collection: name.into() }))
            .await
            .expect("get attach")
            .into_inner();
        if job.status == "completed" || job.status == "failed" {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "adoption did not end: {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn rows(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.expect("count")
}

#[tokio::test]
async fn a_hand_made_table_is_adopted_and_a_person_erased_from_it_with_verified_counts() {
    let app = spawn_app().await;
    let table = "crm_notes";
    hand_made_table(&app, table).await;

    let done = attach(&app, hand_made_request("crm", table)).await.expect("attach");
    let collection = done.collection.expect("collection");
    assert_eq!(collection.dimension, DIM as u32);
    assert!(!collection.mapping_json.is_empty());
    let job = wait_for_adoption(&app, "crm").await;
    assert_eq!(job.status, "completed", "{job:?}");
    assert_eq!((job.total, job.scanned, job.tracked, job.untagged, job.subjects), (8, 8, 7, 1, 3), "{job:?}");
    app.assert_lineage_consistent().await;

    // Attaching again with the same mapping is a no-op.
    let again = attach(&app, hand_made_request("crm", table)).await.expect("attach again");
    assert!(again.already_attached);

    let before = app.count_subject("alice").await;
    assert_eq!(before.counts[0].before_total, 3, "{before:?}");

    let erased = app.erase("alice").await;
    let erased = app.wait_for_job(&erased.job_id).await;
    assert_eq!(erased.status, pb::JobStatus::Completed as i32, "{erased:?}");
    let c = &erased.counts[0];
    assert_eq!((c.before_total, c.deleted, c.after_total), (3, 3, 0), "{c:?}");
    // The store itself: alice's rows are gone (shared row with bob too), the rest is there.
    assert_eq!(rows(&app, "SELECT count(*) FROM crm_notes WHERE people @> ARRAY['alice']").await, 0);
    assert_eq!(rows(&app, "SELECT count(*) FROM crm_notes").await, 5);
    assert_eq!(rows(&app, "SELECT count(*) FROM crm_notes WHERE doc_key = 'n-7'").await, 1, "untagged rows stay");
    // The id that named alice is not kept anywhere by Lethe.
    assert_eq!(rows(&app, "SELECT count(*) FROM attached_point_ids WHERE native_id LIKE 'alice%'").await, 0);
    app.assert_lineage_consistent().await;

    // The pipeline keeps writing with its own code; Track with ids only teaches Lethe.
    sqlx::query(&format!("INSERT INTO crm_notes VALUES ('b-9', ARRAY['bob'], 'bob again', 'doc-9', '{}')", vector_literal(9)))
        .execute(&app.pool)
        .await
        .expect("insert");
    let tracked = app
        .client
        .clone()
        .track(req(&app.keys.pk, pb::TrackRequest {
            collection: "crm".into(),
            points: vec![pb::TrackedPoint { point_id: "b-9".into(), ..Default::default() }],
            ..Default::default()
        }))
        .await
        .expect("track ids only")
        .into_inner();
    assert_eq!((tracked.accepted, tracked.point_ids.clone()), (1, vec!["b-9".to_owned()]));
    // A point that is not in the store is refused and nothing is kept of it.
    let missing = app
        .client
        .clone()
        .track(req(&app.keys.pk, pb::TrackRequest {
            collection: "crm".into(),
            points: vec![pb::TrackedPoint { point_id: "dave@example.com".into(), ..Default::default() }],
            ..Default::default()
        }))
        .await
        .expect_err("missing point");
    assert_eq!(missing.code(), Code::FailedPrecondition);
    assert_eq!(rows(&app, "SELECT count(*) FROM attached_point_ids WHERE native_id LIKE 'dave%'").await, 0);

    // A row the pipeline writes for alice after her erasure is found by the
    // rescan (here: Track) and deleted as a follow-up of her erasure.
    sqlx::query(&format!("INSERT INTO crm_notes VALUES ('a-10', ARRAY['alice'], 'alice is back', 'doc-10', '{}')", vector_literal(10)))
        .execute(&app.pool)
        .await
        .expect("insert");
    let suppressed = app
        .client
        .clone()
        .track(req(&app.keys.pk, pb::TrackRequest {
            collection: "crm".into(),
            points: vec![pb::TrackedPoint { point_id: "a-10".into(), ..Default::default() }],
            ..Default::default()
        }))
        .await
        .expect("track suppressed")
        .into_inner();
    assert_eq!((suppressed.suppressed, suppressed.suppressed_deleted), (1, 1));
    assert_eq!(rows(&app, "SELECT count(*) FROM crm_notes WHERE people @> ARRAY['alice']").await, 0);
}

/// On the smallest pool (one turn per pool: `Context::slot`), adoption and
/// erasure still complete: the adoption worker's writes take their own
/// turns, and nothing that holds a turn waits for another.
#[tokio::test]
async fn a_table_is_adopted_and_a_person_erased_from_it_on_a_pool_of_one_turn() {
    let app = spawn_app_configured(Options::default(), |s| {
        s.database.max_connections = 3;
        s.erasure.workers = 2;
    })
    .await;
    hand_made_table(&app, "crm_small").await;
    attach(&app, hand_made_request("crm", "crm_small")).await.expect("attach");
    let job = tokio::time::timeout(std::time::Duration::from_secs(60), wait_for_adoption(&app, "crm")).await.expect("adopted");
    assert_eq!((job.status.as_str(), job.tracked), ("completed", 7), "{job:?}");
    let erased = app.erase("alice").await;
    let erased = app.wait_for_job(&erased.job_id).await;
    assert_eq!(erased.status, pb::JobStatus::Completed as i32, "{erased:?}");
    assert_eq!(rows(&app, "SELECT count(*) FROM crm_small WHERE people @> ARRAY['alice']").await, 0);
    app.assert_lineage_consistent().await;
}

#[tokio::test]
async fn wrong_mappings_are_invalid_arguments_and_register_nothing() {
    let app = spawn_app().await;
    hand_made_table(&app, "notes_w").await;
    type Edit = Box<dyn Fn(&mut pb::AttachRequest)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("mapping.id", Box::new(|r| r.mapping.as_mut().unwrap().id = "no_such_column".into())),
        ("mapping.vector", Box::new(|r| r.mapping.as_mut().unwrap().vector = "body".into())),
        ("mapping.tags", Box::new(|r| r.mapping.as_mut().unwrap().tags = Some(pb::FieldPath { column: "people".into(), path: vec!["x".into()], ..Default::default() }))),
        ("mapping.tags", Box::new(|r| r.mapping.as_mut().unwrap().tags = None)),
        ("target", Box::new(|r| r.target = "no_such_table".into())),
        ("preset", Box::new(|r| r.preset = "langchain-mongo".into())),
    ];
    for (field, change) in cases {
        let mut r = hand_made_request("wrong", "notes_w");
        change(&mut r);
        let e = attach(&app, r).await.expect_err(field);
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        let d = tonic_types::StatusExt::get_details_bad_request(&e).expect("field violations");
        assert!(d.field_violations.iter().any(|v| v.field.starts_with(field)), "{field}: {d:?}");
    }
    let listed = app
        .client
        .clone()
        .list_collections(req(&app.keys.sk, pb::ListCollectionsRequest {}))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.collections.is_empty(), "nothing registered: {listed:?}");
    assert_eq!(rows(&app, "SELECT count(*) FROM attach_jobs").await, 0);
}

#[tokio::test]
async fn lethes_own_tables_and_unlisted_stores_cannot_be_attached() {
    let app = spawn_app_configured(Options::default(), |s| s.attach.allowed = vec!["pgvector:public.team_*".into()]).await;
    for table in ["subjects", "deletion_log", "public.chunks", "attach_jobs"] {
        let mut r = hand_made_request("own", table);
        r.mapping.as_mut().unwrap().tags = Some(pb::FieldPath { column: "external_id".into(), ..Default::default() });
        let e = attach(&app, r).await.expect_err(table);
        assert_eq!(e.code(), Code::FailedPrecondition, "{table}: {e:?}");
        assert_eq!(reason(&e), "attach_not_allowed", "{table}");
    }
    hand_made_table(&app, "other_notes").await;
    let e = attach(&app, hand_made_request("other", "other_notes")).await.expect_err("not listed");
    assert_eq!(reason(&e), "attach_not_allowed");
    hand_made_table(&app, "team_notes").await;
    attach(&app, hand_made_request("team", "team_notes")).await.expect("listed");
    // One store, one collection: another name for the same table is refused.
    let e = attach(&app, hand_made_request("team2", "team_notes")).await.expect_err("twice");
    assert_eq!(e.code(), Code::AlreadyExists);

    // Even an allowlist of everything does not open the system catalogs.
    let app = spawn_app_configured(Options::default(), |s| s.attach.allowed = vec!["*".into()]).await;
    for table in ["pg_catalog.pg_class", "information_schema.tables", "pg_toast.pg_toast_2619", "pg_authid", "PG_CATALOG.pg_proc"] {
        let e = attach(&app, hand_made_request("sys", table)).await.expect_err(table);
        assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "attach_not_allowed"), "{table}: {e:?}");
    }
    assert_eq!(rows(&app, "SELECT count(*) FROM collections").await, 0, "nothing registered");
}

#[tokio::test]
async fn attached_collections_refuse_ingest_vectors_and_reindex() {
    let app = spawn_app().await;
    hand_made_table(&app, "notes_r").await;
    attach(&app, hand_made_request("notes", "notes_r")).await.expect("attach");
    wait_for_adoption(&app, "notes").await;
    let e = app.ingest("notes", vec![chunk("s", 0, "text", &["alice"])]).await.expect_err("ingest");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "attached_collection"));
    let e = app
        .client
        .clone()
        .track(req(&app.keys.pk, pb::TrackRequest {
            collection: "notes".into(),
            points: vec![pb::TrackedPoint { point_id: "x".into(), source_id: "s".into(), ..Default::default() }],
            ..Default::default()
        }))
        .await
        .expect_err("track with fields");
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = app
        .client
        .clone()
        .reindex(req(&app.keys.sk, pb::ReindexRequest { collection: "notes".into(), ..Default::default() }))
        .await
        .expect_err("reindex");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "attached_collection"));
    assert_eq!(rows(&app, "SELECT count(*) FROM notes_r").await, 8, "nothing written to the store");
}

/// A hand-made Qdrant collection: integer ids, an unnamed vector, the tag at
/// a nested payload path (a string in some points, a list in others).
async fn hand_made_qdrant(client: &qdrant_client::Qdrant, name: &str) {
    use qdrant_client::qdrant::{CreateCollectionBuilder, Distance, PointStruct, UpsertPointsBuilder, VectorParamsBuilder};
    client
        .create_collection(CreateCollectionBuilder::new(name).vectors_config(VectorParamsBuilder::new(DIM as u64, Distance::Cosine)))
        .await
        .expect("create collection");
    let owners: [serde_json::Value; 7] = [
        serde_json::json!("alice"),
        serde_json::json!(["alice"]),
        serde_json::json!(["alice", "bob"]),
        serde_json::json!("bob"),
        serde_json::json!(["carol"]),
        serde_json::Value::Null,
        serde_json::json!("carol"),
    ];
    let points: Vec<PointStruct> = owners
        .iter()
        .enumerate()
        .map(|(i, owner)| {
            // One text holds a NUL, which PostgreSQL's text cannot: its
            // adoption must not fail the page for good.
            let body = if i == 4 { "note 4 by Carol\u{0}Ng".to_owned() } else { format!("note {i}") };
            let mut payload = serde_json::json!({ "body": body, "doc": { "file": format!("f{}", i % 3) } });
            if !owner.is_null() {
                payload["doc"]["owner"] = owner.clone();
            }
            let vector: Vec<f32> = (0..DIM).map(|d| ((i * 7 + d * 13) % 17) as f32 / 17.0 + 0.01).collect();
            PointStruct::new(100 + i as u64, vector, qdrant_client::Payload::try_from(payload).expect("payload"))
        })
        .collect();
    client.upsert_points(UpsertPointsBuilder::new(name, points).wait(true)).await.expect("upsert");
}

/// Attach of [`hand_made_qdrant`]'s collection (or an alias of it) as `name`.
fn hand_made_qdrant_request(name: &str, target: &str) -> pb::AttachRequest {
    pb::AttachRequest {
        name: name.into(),
        backend: pb::Backend::Qdrant as i32,
        target: target.into(),
        mapping: Some(pb::AttachMapping {
            text: Some(pb::FieldPath { path: vec!["body".into()], ..Default::default() }),
            source: Some(pb::FieldPath { path: vec!["doc".into(), "file".into()], ..Default::default() }),
            tags: Some(pb::FieldPath { path: vec!["doc".into(), "owner".into()], ..Default::default() }),
            ..Default::default()
        }),
        create_indexes: true,
        ..Default::default()
    }
}

/// A Qdrant alias is its collection: attached under both names by two
/// tenants, each tenant's erasures would delete the other's points; an
/// alias of one of Lethe's own collections is Lethe's own.
#[tokio::test]
async fn a_qdrant_collection_and_its_aliases_are_one_store_to_attach() {
    use qdrant_client::qdrant::{CreateAliasBuilder, CreateCollectionBuilder, Distance, VectorParamsBuilder};
    let Some(url) = qdrant_url() else {
        panic!("QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    };
    let app = spawn_app().await;
    let client = qdrant_client::Qdrant::from_url(&url).build().expect("client");
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let (name, alias, alias2) = (format!("kb_{suffix}"), format!("kb_{suffix}_live"), format!("kb_{suffix}_old"));
    hand_made_qdrant(&client, &name).await;
    client.create_alias(CreateAliasBuilder::new(&name, &alias)).await.expect("alias");
    attach(&app, hand_made_qdrant_request("by_alias", &alias)).await.expect("attach through the alias");
    let other = new_tenant(&app.pool).await;
    // Created after the first Attach: still the same collection.
    client.create_alias(CreateAliasBuilder::new(&name, &alias2)).await.expect("alias");
    for target in [&name, &alias2] {
        let mut c = app.client.clone();
        let e = c.attach(req(&other.sk, hand_made_qdrant_request("mine", target))).await.expect_err(target);
        assert_eq!(e.code(), Code::AlreadyExists, "{target}: {e:?}");
    }
    assert_eq!(rows(&app, "SELECT count(*) FROM collections").await, 1);

    let own = format!("{}{suffix}", app.settings.qdrant.collection_prefix);
    client
        .create_collection(CreateCollectionBuilder::new(&own).vectors_config(VectorParamsBuilder::new(DIM as u64, Distance::Cosine)))
        .await
        .expect("create");
    let innocent = format!("innocent_{suffix}");
    client.create_alias(CreateAliasBuilder::new(&own, &innocent)).await.expect("alias");
    let e = attach(&app, hand_made_qdrant_request("own", &innocent)).await.expect_err("an alias of Lethe's own");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "attach_not_allowed"), "{e:?}");
    assert_eq!(rows(&app, "SELECT count(*) FROM collections").await, 1);
    for n in [&name, &own] {
        let _ = client.delete_collection(n.as_str()).await;
    }
}

async fn qdrant_count(client: &qdrant_client::Qdrant, name: &str, owner: Option<&str>) -> u64 {
    use qdrant_client::qdrant::{Condition, CountPointsBuilder, Filter};
    let mut count = CountPointsBuilder::new(name).exact(true);
    if let Some(o) = owner {
        count = count.filter(Filter::must([Condition::matches("doc.owner", o.to_owned())]));
    }
    client.count(count).await.expect("count").result.expect("result").count
}

#[tokio::test]
async fn a_hand_made_qdrant_collection_with_integer_ids_is_erased_as_it_is() {
    let Some(url) = qdrant_url() else {
        panic!("QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    };
    let app = spawn_app().await;
    let client = qdrant_client::Qdrant::from_url(&url).build().expect("client");
    let name = format!("handmade_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    hand_made_qdrant(&client, &name).await;
    let done = attach(&app, hand_made_qdrant_request("kb", &name)).await.expect("attach");
    assert_eq!(done.collection.expect("collection").dimension, DIM as u32);
    let job = wait_for_adoption(&app, "kb").await;
    assert_eq!((job.status.as_str(), job.scanned, job.tracked, job.untagged, job.subjects), ("completed", 7, 6, 1, 3), "{job:?}");
    let nul = rows(&app, "SELECT count(*) FROM chunks WHERE text = 'note 4 by Carol' || chr(65533) || 'Ng'").await;
    assert_eq!(nul, 1, "the NUL is stored as U+FFFD");

    assert_eq!(qdrant_count(&client, &name, Some("alice")).await, 3);
    let erased = app.wait_for_job(&app.erase("alice").await.job_id).await;
    assert_eq!(erased.status, pb::JobStatus::Completed as i32, "{erased:?}");
    let c = &erased.counts[0];
    assert_eq!((c.before_total, c.deleted, c.after_total), (3, 3, 0), "{c:?}");
    assert_eq!(qdrant_count(&client, &name, Some("alice")).await, 0);
    assert_eq!(qdrant_count(&client, &name, Some("bob")).await, 1, "bob's own point stays");
    assert_eq!(qdrant_count(&client, &name, None).await, 4, "carol's two, bob's one and the untagged one");

    // The pipeline writes tags as integers later (`{"owner": 42}`): the
    // person whose id is "42" is found and erased by them too.
    use qdrant_client::qdrant::{PointStruct, UpsertPointsBuilder};
    let late: Vec<PointStruct> = [serde_json::json!(42), serde_json::json!([42, "carol"])]
        .iter()
        .enumerate()
        .map(|(i, owner)| {
            let payload = serde_json::json!({ "body": format!("late {i}"), "doc": { "file": "f9", "owner": owner } });
            let vector: Vec<f32> = (0..DIM).map(|d| ((i * 5 + d * 11) % 13) as f32 / 13.0 + 0.01).collect();
            PointStruct::new(200 + i as u64, vector, qdrant_client::Payload::try_from(payload).expect("payload"))
        })
        .collect();
    client.upsert_points(UpsertPointsBuilder::new(&name, late).wait(true)).await.expect("upsert");
    let erased = app.wait_for_job(&app.erase("42").await.job_id).await;
    assert_eq!(erased.status, pb::JobStatus::Completed as i32, "{erased:?}");
    let c = &erased.counts[0];
    assert_eq!((c.before_by_tag, c.before_total, c.after_total), (2, 2, 0), "{c:?}");
    assert_eq!(qdrant_count(&client, &name, None).await, 4, "both of 42's points are gone");
    let _ = client.delete_collection(name.as_str()).await;
}

#[tokio::test]
async fn a_store_its_framework_deleted_holds_nothing_and_blocks_no_erasure() {
    let app = spawn_app().await;
    hand_made_table(&app, "gone_notes").await;
    attach(&app, hand_made_request("gone", "gone_notes")).await.expect("attach");
    assert_eq!(wait_for_adoption(&app, "gone").await.status, "completed");
    app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people("mail", &[("bob", 2)]).await;
    sqlx::raw_sql("DROP TABLE gone_notes").execute(&app.pool).await.expect("drop");

    let live = app.count_subject("bob").await;
    let gone = live.counts.iter().find(|c| c.collection == "gone").expect("listed");
    assert_eq!(gone.before_total, 0, "{live:?}");
    let done = app.wait_for_job(&app.erase("bob").await.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{done:?}");
    let by = |name: &str| done.counts.iter().find(|c| c.collection == name).cloned().expect("counted");
    assert_eq!((by("gone").before_by_ids, by("gone").before_total, by("gone").after_total), (0, 0, 0));
    assert_eq!((by("mail").before_total, by("mail").after_total), (2, 0));
    app.assert_lineage_consistent().await;
}

/// The hand-made table attached as `crm` and adopted, with rescans every
/// `rescan_secs` (0: off): the lookup rows lineage stands behind.
async fn adopted_crm(rescan_secs: u64) -> (TestApp, i64) {
    let app = spawn_app_configured(Options::default(), |s| s.attach.rescan_interval_secs = rescan_secs).await;
    hand_made_table(&app, "crm_notes").await;
    attach(&app, hand_made_request("crm", "crm_notes")).await.expect("attach");
    assert_eq!(wait_for_adoption(&app, "crm").await.status, "completed");
    let linked = rows(&app, "SELECT count(*) FROM attached_point_ids").await;
    assert!(linked > 0);
    (app, linked)
}

/// A lookup row of `crm` for `id` without lineage, written `age` ago (an
/// interval): what a Track cut off by a crash left, or a Track running now.
async fn unlinked_row(app: &TestApp, id: &str, age: &str) {
    sqlx::query(&format!(
        "INSERT INTO attached_point_ids (collection_id, point_key, native_id, recorded_at) \
         SELECT collection_id, gen_random_uuid(), $2, now() - interval '{age}' \
         FROM collections WHERE tenant_id = $1 AND name = 'crm'"
    ))
    .bind(app.keys.tenant_id)
    .bind(id)
    .execute(&app.pool)
    .await
    .expect("insert a lookup row");
}

/// Waits until no lookup row's id starts with `prefix` (`why` if it never happens).
async fn until_forgotten(app: &TestApp, prefix: &str, why: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rows(app, &format!("SELECT count(*) FROM attached_point_ids WHERE native_id LIKE '{prefix}%'")).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "{why}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn lookup_rows_a_crash_left_without_lineage_are_forgotten_by_the_next_adoption_scan() {
    let (app, linked) = adopted_crm(1).await;
    // Its text id names someone.
    unlinked_row(&app, "zoe@example.com#9", "2 hours").await;
    unlinked_row(&app, "yan@example.com#8", "0 seconds").await;
    until_forgotten(&app, "zoe", "the rescans never forgot the row left without lineage").await;
    assert_eq!(rows(&app, "SELECT count(*) FROM attached_point_ids WHERE native_id LIKE 'yan%'").await, 1, "a running call's row stays");
    assert_eq!(rows(&app, "SELECT count(*) FROM attached_point_ids WHERE native_id NOT LIKE 'yan%'").await, linked, "linked rows stay");
    app.assert_lineage_consistent().await;
}

#[tokio::test]
async fn with_rescans_off_a_start_forgets_lookup_rows_a_crash_left_without_lineage() {
    use secrecy::ExposeSecret;
    let (app, linked) = adopted_crm(0).await;
    unlinked_row(&app, "zoe@example.com#9", "2 hours").await;
    // Another replica starts (or this one restarts): its adoption worker
    // sweeps every attached collection at once, rescans or not.
    let (signing, master) = (app.settings.audit.signing_key_file.clone(), app.settings.keys.master_key_file.clone());
    let url = app.settings.database.url.expose_secret().to_owned();
    let _replica = spawn_app_on(&url, Options::default(), move |s| {
        s.attach.rescan_interval_secs = 0;
        s.audit.signing_key_file = signing;
        s.keys.master_key_file = master;
    })
    .await;
    until_forgotten(&app, "zoe", "the start never forgot the row left without lineage").await;
    assert_eq!(rows(&app, "SELECT count(*) FROM attached_point_ids").await, linked, "linked rows stay");
}

#[tokio::test]
async fn a_text_id_given_twice_in_one_call_is_refused_naming_it_and_changes_nothing() {
    let (app, _) = adopted_crm(0).await;
    sqlx::query(&format!("INSERT INTO crm_notes VALUES ('b-11', ARRAY['bob'], 'bob once more', 'doc-11', '{}')", vector_literal(11)))
        .execute(&app.pool)
        .await
        .expect("insert");
    let point = |id: &str| pb::TrackedPoint { point_id: id.into(), ..Default::default() };
    // The lookup rows are upserted (an upsert may not touch a row twice):
    // a repeated id must be refused before, never reach them as INTERNAL.
    let e = app
        .client
        .clone()
        .track(req(&app.keys.pk, pb::TrackRequest {
            collection: "crm".into(),
            points: vec![point("b-11"), point("b-11")],
            ..Default::default()
        }))
        .await
        .expect_err("a repeated id");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("points[1].point_id"), "{e:?}");
    assert_eq!(rows(&app, "SELECT count(*) FROM attached_point_ids WHERE native_id = 'b-11'").await, 0);
    // DeletePoints names it twice: refused, naming the field, nothing touched.
    let e = app
        .client
        .clone()
        .delete_points(req(&app.keys.pk, pb::DeletePointsRequest {
            collection: "crm".into(),
            point_ids: vec!["b-4".into(), "b-4".into()],
            ..Default::default()
        }))
        .await
        .expect_err("a repeated id");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("point_ids[1]"), "{e:?}");
    assert_eq!(rows(&app, "SELECT count(*) FROM attached_point_ids WHERE native_id = 'b-4'").await, 1);
    // A text id the store does not hold is named by its place, not its value
    // (it may hold someone's address).
    let e = app
        .client
        .clone()
        .track(req(&app.keys.pk, pb::TrackRequest {
            collection: "crm".into(),
            points: vec![point("b-11"), point("zed@example.com#12")],
            ..Default::default()
        }))
        .await
        .expect_err("not in the store");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "point_not_found"), "{e:?}");
    assert!(e.message().contains("points[1]") && !e.message().contains("zed"), "{e:?}");
    assert_eq!(rows(&app, "SELECT count(*) FROM attached_point_ids WHERE native_id LIKE 'zed%'").await, 0);
    app.assert_lineage_consistent().await;
}

/// One store attached twice must not share a point (each tenant's
/// erasures would delete the other's points, each adoption copy the other's
/// texts): attachments of one store are scoped to different values of one
/// field, and an unscoped one takes it whole.
#[tokio::test]
async fn overlapping_attachments_of_one_store_are_refused_across_tenants() {
    let app = spawn_app().await;
    hand_made_table(&app, "shared_notes").await;
    let scoped = |name: &str, column: &str, value: &str| {
        let mut r = hand_made_request(name, "shared_notes");
        let m = r.mapping.as_mut().expect("mapping");
        m.scope = Some(pb::FieldPath { column: column.into(), ..Default::default() });
        m.scope_value = value.into();
        r
    };
    attach(&app, scoped("docs0", "origin", "doc-0")).await.expect("scoped attach");
    let other = new_tenant(&app.pool).await;
    let attach_as = |keys: &Keys, r: pb::AttachRequest| {
        let mut client = app.client.clone();
        let r = req(&keys.sk, r);
        async move { client.attach(r).await.map(tonic::Response::into_inner) }
    };
    for (who, r) in [
        ("another tenant, unscoped", hand_made_request("all", "shared_notes")),
        ("another tenant, another field", scoped("by_body", "body", "carol's recipe")),
        // The same table spelled otherwise.
        ("another tenant, schema-qualified", hand_made_request("all", "public.shared_notes")),
        ("another tenant, quoted", hand_made_request("all", "\"public\".\"shared_notes\"")),
        // The same scope, the table spelled otherwise: the same rows.
        ("another tenant, the same scope, qualified", {
            let mut r = scoped("docs0b", "origin", "doc-0");
            r.target = "public.shared_notes".into();
            r
        }),
    ] {
        let e = attach_as(&other, r).await.expect_err(who);
        assert_eq!(e.code(), Code::AlreadyExists, "{who}: {e:?}");
    }
    let e = attach(&app, hand_made_request("all", "shared_notes")).await.expect_err("the same tenant, unscoped");
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    // Another value of the same field is disjoint.
    let ok = attach_as(&other, scoped("docs1", "origin", "doc-1")).await.expect("disjoint scope");
    assert_eq!(ok.collection.expect("collection").name, "docs1");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM collections WHERE backend_name = 'shared_notes'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

/// A scope value is compared as its column's type compares it: `07` and
/// `+7` are 7 in an integer column, and a uuid is one uuid in upper case,
/// braces or without hyphens. Another tenant that spells an attached scope
/// so is refused (before, it passed as disjoint and each tenant's erasures
/// and adoption reached the other's rows), and the scope is stored in one
/// spelling.
#[tokio::test]
async fn a_scope_value_spelled_otherwise_is_the_same_scope() {
    let app = spawn_app().await;
    let folder = uuid::Uuid::new_v4();
    sqlx::raw_sql(&format!(
        "CREATE TABLE team_notes (doc_key text PRIMARY KEY, people text[], body text, origin text, team int, emb vector({DIM}));
         INSERT INTO team_notes VALUES ('t-1', '{{ann}}', 'ann on the budget', 'doc-1', 7, '{v}');
         CREATE TABLE folder_notes (doc_key text PRIMARY KEY, people text[], body text, origin text, folder uuid, emb vector({DIM}));
         INSERT INTO folder_notes VALUES ('f-1', '{{ann}}', 'ann on the budget', 'doc-1', '{folder}', '{v}');",
        v = vector_literal(1)
    ))
    .execute(&app.pool)
    .await
    .expect("create table");
    let scoped = |name: &str, column: &str, value: &str| {
        let table = if column == "team" { "team_notes" } else { "folder_notes" };
        let mut r = hand_made_request(name, table);
        let m = r.mapping.as_mut().expect("mapping");
        m.scope = Some(pb::FieldPath { column: column.into(), ..Default::default() });
        m.scope_value = value.into();
        r
    };
    let other = new_tenant(&app.pool).await;
    let attach_as = |keys: &Keys, r: pb::AttachRequest| {
        let mut client = app.client.clone();
        let r = req(&keys.sk, r);
        async move { client.attach(r).await.map(tonic::Response::into_inner) }
    };
    attach(&app, scoped("team7", "team", "+7")).await.expect("scoped by team");
    // The same Attach again, in either spelling, is the same attachment.
    for spelling in ["+7", "7", "07"] {
        let again = attach(&app, scoped("team7", "team", spelling)).await.expect(spelling);
        assert!(again.already_attached, "{spelling}: {again:?}");
    }
    for spelling in ["7", "07", "+07"] {
        let e = attach_as(&other, scoped("mine", "team", spelling)).await.expect_err(spelling);
        assert_eq!(e.code(), Code::AlreadyExists, "{spelling}: {e:?}");
    }
    let upper = folder.to_string().to_uppercase();
    let simple = folder.simple().to_string();
    attach(&app, scoped("folder", "folder", &format!("{{{upper}}}"))).await.expect("scoped by folder");
    for spelling in [folder.to_string(), upper, simple, format!("urn:uuid:{folder}")] {
        let e = attach_as(&other, scoped("mine", "folder", &spelling)).await.expect_err(&spelling);
        assert_eq!(e.code(), Code::AlreadyExists, "{spelling}: {e:?}");
    }
    let e = attach_as(&other, scoped("mine", "team", "seven")).await.expect_err("not an integer");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let keys: Vec<String> = sqlx::query_scalar("SELECT scope_key FROM collections WHERE backend_name LIKE '%_notes' ORDER BY 1")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(keys, [format!("folder={folder}"), "team=7".to_owned()], "stored in one spelling, and nothing else attached");
    // Another value is another scope.
    attach_as(&other, scoped("team8", "team", "8")).await.expect("disjoint scope");
}

/// An integer id above `i64::MAX` names no row of a pgvector `bigint`
/// column (Qdrant's ids are unsigned; pgvector's are not): refused, where it
/// once wrapped to the id of row -1 (Track would record lineage for that
/// row, DeletePoints forget it).
#[tokio::test]
async fn a_bigint_id_out_of_range_is_refused_not_wrapped() {
    let app = spawn_app().await;
    sqlx::raw_sql(&format!(
        "CREATE TABLE int_notes (id bigint PRIMARY KEY, people text[], body text, origin text, emb vector({DIM}));
         INSERT INTO int_notes VALUES (-1, '{{ann}}', 'ann on the budget', 'doc-1', '{v}'), (1, '{{bob}}', 'bob', 'doc-2', '{v}');",
        v = vector_literal(1)
    ))
    .execute(&app.pool)
    .await
    .expect("create table");
    let mut r = hand_made_request("ints", "int_notes");
    r.mapping.as_mut().expect("mapping").id = "id".into();
    attach(&app, r).await.expect("attach");
    wait_for_adoption(&app, "ints").await;
    let lineage = || rows(&app, "SELECT count(*) FROM chunks");
    let before = lineage().await;
    let big = "18446744073709551615".to_owned();
    let r = pb::DeletePointsRequest { collection: "ints".into(), point_ids: vec![big.clone()], ..Default::default() };
    let e = app.client.clone().delete_points(req(&app.keys.pk, r)).await.expect_err("out of range");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let points = vec![pb::TrackedPoint { point_id: big, ..Default::default() }];
    let r = pb::TrackRequest { collection: "ints".into(), points, ..Default::default() };
    let e = app.client.clone().track(req(&app.keys.pk, r)).await.expect_err("out of range");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(lineage().await, before, "nothing recorded or forgotten");
    // Row -1 by its own id: still in the store, so its lineage is kept.
    let r = pb::DeletePointsRequest { collection: "ints".into(), point_ids: vec!["-1".into()], ..Default::default() };
    let out = app.client.clone().delete_points(req(&app.keys.pk, r)).await.expect("row -1").into_inner();
    assert_eq!((out.kept, out.forgotten), (1, 0));
}

/// Without a preset, a pgvector target is checked as a preset's is: a part
/// longer than Postgres's 63 bytes was truncated by Postgres into another
/// table than the one the allowlist matched.
#[tokio::test]
async fn a_target_postgres_would_truncate_is_refused_without_a_preset_too() {
    let app = spawn_app().await;
    // The table Postgres would find: the name cut at 63 bytes.
    sqlx::raw_sql(&format!(
        "CREATE TABLE {} (doc_key text PRIMARY KEY, people text[], body text, origin text, emb vector({DIM}))",
        "t".repeat(63)
    ))
    .execute(&app.pool)
    .await
    .expect("create table");
    let long = format!("public.{}_docs", "t".repeat(63));
    let err = attach(&app, hand_made_request("crm", &long)).await.expect_err("too long");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let d = tonic_types::StatusExt::get_details_bad_request(&err).expect("field");
    assert_eq!(d.field_violations[0].field, "target");
    let dotted = attach(&app, hand_made_request("crm", "a.b.c")).await.expect_err("three parts");
    assert_eq!(dotted.code(), tonic::Code::InvalidArgument, "{dotted:?}");
}

/// Residual search reads an attached store whose adoption has not
/// completed from the store itself: its lineage holds part of it, or
/// nothing, and a mention there was not searched at all.
#[tokio::test]
async fn residual_search_reads_an_attached_store_not_yet_adopted() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    hand_made_table(&app, "crm_pending").await;
    sqlx::query(&format!("INSERT INTO crm_pending VALUES ('m-9', '{{bob}}', 'Bob asked Carol Danvers for the slides', 'doc-9', '{}')", vector_literal(9)))
        .execute(&app.pool)
        .await
        .unwrap();
    attach(&app, hand_made_request("crm", "crm_pending")).await.expect("attach");
    assert_eq!(rows(&app, "SELECT count(*) FROM attach_jobs WHERE status = 'queued'").await, 1, "not adopted: no workers");
    let r = pb::SearchResidualsRequest {
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Name as i32, value: "Carol Danvers".into() }],
        limit: 100,
    };
    let found = app.client.clone().search_residuals(req(&app.keys.ak, r)).await.expect("search").into_inner().candidates;
    let sources: Vec<&str> = found.iter().map(|c| c.source_id.as_str()).collect();
    assert_eq!(sources, ["doc-9"], "{found:?}");
}
