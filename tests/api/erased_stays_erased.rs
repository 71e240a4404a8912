//! Erased stays erased: no way around the tombstone (another id, kind or
//! spelling of the same person), no pipeline-written point left alive behind
//! a "0 remain" certificate, no payload that hides a point from an erasure,
//! and follow-up erasures that search what they are given. Every outcome is
//! checked outside Lethe too: in the backend, in Lethe's tables, on the wire.

use lethe::grpc::pb;
use lethe::vector_store::{PointPayload, QdrantStore, Selector, VectorPoint, VectorStore};
use tonic::Code;
use uuid::Uuid;

use crate::helpers::*;
use crate::reindex::random_vectors;

fn ident(kind: pb::IdentifierKind, value: &str) -> pb::Identifier {
    pb::Identifier { kind: kind as i32, value: value.into() }
}

fn subject(id: &str, identifiers: Vec<pb::Identifier>) -> pb::SubjectRef {
    pb::SubjectRef { id: id.into(), identifiers }
}

fn xavier() -> pb::SubjectRef {
    subject("xavier", vec![
        ident(pb::IdentifierKind::Email, "xavier@ex.com"),
        ident(pb::IdentifierKind::Name, "Xavier Xu"),
    ])
}

fn tracked(app: &TestApp, who: &str, seed: u64, with_vector: bool) -> pb::TrackedPoint {
    pb::TrackedPoint {
        point_id: Uuid::new_v4().to_string(),
        source_id: format!("{who}-{seed}"),
        text: format!("a chunk about {who}"),
        tags: vec![pb::SubjectTag { subject_id: who.into(), role: pb::TagRole::Owner as i32 }],
        vector: if with_vector { random_vectors(app, 1, seed).remove(0) } else { Vec::new() },
        ..Default::default()
    }
}

async fn erase_xavier(app: &TestApp, collection: &str) -> pb::ErasureJob {
    app.client.clone().put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(xavier()) })).await.unwrap();
    app.ingest(collection, vec![chunk("x-1", 0, "xavier's notes", &["xavier"])]).await.unwrap();
    let job = app.erase_with(pb::EraseRequest { subject: Some(person("xavier")), ..Default::default() }).await.unwrap();
    let done = app.wait_for_job(&job.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    done
}

async fn clear_rows_like(app: &TestApp, pattern: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM subjects WHERE external_id ILIKE $1)
              + (SELECT count(*) FROM subject_identifiers WHERE value ILIKE $1)",
    )
    .bind(pattern)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// `PutSubject` of the id `alias-{i}` with one identifier of an erased
/// person is refused, and a chunk tagged with that id alone is suppressed;
/// the alias id.
async fn assert_alias_suppressed(app: &TestApp, c: &pb::Collection, i: usize, kind: pb::IdentifierKind, value: &str) -> String {
    let id = format!("alias-{i}");
    let err = app
        .client
        .clone()
        .put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(subject(&id, vec![ident(kind, value)])) }))
        .await
        .expect_err(&format!("PutSubject {kind:?} {value} must be refused"));
    assert_eq!((err.code(), reason(&err)), (Code::FailedPrecondition, "subject_suppressed".into()), "{kind:?} {value}");
    let w = app.ingest(&c.name, vec![chunk(&format!("a-{i}"), 0, "hello again", &[&id])]).await.unwrap();
    assert_eq!((w.accepted, w.suppressed), (0, 1), "Ingest tagged {id} ({kind:?} {value})");
    id
}

#[tokio::test]
async fn the_tombstone_holds_under_another_id_kind_and_spelling() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    erase_xavier(&app, &c.name).await;
    let mut client = app.client.clone();

    use pb::IdentifierKind::{AnonymousId, Email, Handle, Name, Other, Phone};
    let aliases = [
        (Email, "xavier@ex.com"),
        // Punctuation around the address, another kind, a +tag, a title or a note.
        (Email, "(xavier@ex.com),"),
        (Other, "email:xavier@ex.com"),
        (AnonymousId, "xavier@ex.com"),
        (Email, "xavier+news@ex.com"),
        (Name, "Mx Xavier Xu"),
        (Name, "Xavier Xu (Acme)"),
        (Other, "xavier@ex.com"),
        (Handle, "XAVIER@ex.com"),
        (Email, "mailto:xavier@ex.com"),
        (Other, "<Xavier@Ex.Com>"),
        (Name, "Xu, Xavier"),
        (Name, "Xavier Q. Xu"),
        (Other, "Dr. Xavier Xu"),
        (Email, "xavier@other.example"),
        (Other, "Xavier Q. <XAVIER@ex.com>"),
        (Handle, "+1 (212) 555-0123 or mailto:xavier@ex.com"),
    ];
    for (i, (kind, value)) in aliases.iter().enumerate() {
        // Tagged only with the alias id, without identifiers: suppressed, by Ingest and by Track.
        let id = assert_alias_suppressed(&app, &c, i, *kind, value).await;
        let points = vec![tracked(&app, &id, i as u64, true)];
        let w = client
            .track(req(&app.keys.pk, pb::TrackRequest { collection: c.name.clone(), points, ..Default::default() }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((w.accepted, w.suppressed), (0, 1), "Track tagged {id}");
        assert_eq!(app.pg_rows_tagged(&c, &id).await, 0);
    }
    // Identifiers given inside the write itself, under yet another id and kind.
    let w = client
        .ingest(req(&app.keys.pk, pb::IngestRequest {
            collection: c.name.clone(),
            chunks: vec![chunk("inline", 0, "hi", &["inline-alias"])],
            subjects: vec![subject("inline-alias", vec![ident(Handle, "mailto:XAVIER@EX.COM")])],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((w.accepted, w.suppressed), (0, 1));
    // The erased subject's own identifiers are frozen.
    let err = client
        .put_subject(req(&app.keys.pk, pb::PutSubjectRequest {
            subject: Some(subject("xavier", vec![ident(Other, "x.xu.private")])),
        }))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "subject_suppressed");

    // Nothing of any alias was written in clear; no vector of theirs exists.
    assert_eq!(clear_rows_like(&app, "%xavier%").await, 0);
    assert_eq!(clear_rows_like(&app, "alias-%").await, 0);
    assert_eq!(app.lineage_chunks_of("alias-0").await, 0);
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\"", c.backend_name))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "the collection holds nothing of xavier");

    // Namesakes and other people are not caught.
    for (i, (kind, value)) in [(Name, "Xavier Yu"), (Email, "ann@ex.com"), (Phone, "+1 713 555 0100"), (Name, "Xu, Yan")]
        .iter()
        .enumerate()
    {
        let id = format!("other-{i}");
        client
            .put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(subject(&id, vec![ident(*kind, value)])) }))
            .await
            .unwrap_or_else(|e| panic!("{kind:?} {value} is someone else: {e:?}"));
        let w = app.ingest(&c.name, vec![chunk(&format!("o-{i}"), 0, "hello", &[&id])]).await.unwrap();
        assert_eq!((w.accepted, w.suppressed), (1, 0));
    }
}

/// The same number, address or name in another of the forms people write
/// it: national or international, an IDN domain in ASCII, without accents.
#[tokio::test]
async fn the_tombstone_holds_for_national_phones_idn_domains_and_names_without_accents() {
    use pb::IdentifierKind::{Email, Name, Other, Phone};
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let mut client = app.client.clone();
    let jose = subject("jose", vec![
        ident(Name, "José Núñez"),
        ident(Phone, "+44 20 7946 0958"),
        ident(Email, "jn@bücher.de"),
    ]);
    client.put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(jose) })).await.unwrap();
    app.ingest(&c.name, vec![chunk("j-1", 0, "josé's notes", &["jose"])]).await.unwrap();
    let job = app.erase_with(pb::EraseRequest { subject: Some(person("jose")), ..Default::default() }).await.unwrap();
    assert_eq!(app.wait_for_job(&job.job_id).await.status, pb::JobStatus::Completed as i32);

    let aliases = [
        (Phone, "020 7946 0958"),
        (Other, "+44 (0)20 7946 0958"),
        (Phone, "0044 20-7946-0958"),
        (Email, "JN@xn--bcher-kva.de"),
        (Name, "Jose Nunez"),
        (Name, "NUNEZ, Jose"),
    ];
    for (i, (kind, value)) in aliases.iter().enumerate() {
        assert_alias_suppressed(&app, &c, i, *kind, value).await;
    }
    // A text naming the person in those forms is screened (default `report`).
    let w = app.ingest(&c.name, vec![chunk("s-1", 0, "call Jose Nunez on 020 7946 0958", &["bob"])]).await.unwrap();
    assert_eq!((w.accepted, w.screened), (1, 1));
    // Other numbers and names are not caught.
    for (i, (kind, value)) in [(Phone, "020 7946 0959"), (Phone, "+44 20 7946 9580"), (Name, "Jose Nunes")].iter().enumerate() {
        let id = format!("other-{i}");
        client
            .put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(subject(&id, vec![ident(*kind, value)])) }))
            .await
            .unwrap_or_else(|e| panic!("{kind:?} {value} is someone else: {e:?}"));
    }
    for pattern in ["%ñez%", "%nunez%", "%0958%", "%bcher%", "%bücher%"] {
        assert_eq!(clear_rows_like(&app, pattern).await, 0, "{pattern}");
    }
}

/// A subject registered under older rules has only the keys those rules
/// gave; its erasure keys its identifiers again as the rules read them now,
/// before their values are cleared.
#[tokio::test]
async fn a_subject_registered_under_older_rules_is_keyed_by_the_current_ones_when_erased() {
    use pb::IdentifierKind::{Name, Phone};
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let mut client = app.client.clone();
    let jose = subject("jose", vec![ident(Name, "José Núñez"), ident(Phone, "+44 20 7946 0958")]);
    client.put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(jose) })).await.unwrap();
    // As an earlier version stored them: without the subscriber number's
    // key and the name's without diacritics.
    let mut older = Vec::new();
    for key in ["subscriber:2079460958", "name:jose nunez"] {
        older.push(app.ctx.keyed_hash(app.keys.tenant_id, key).await.unwrap());
    }
    let removed = sqlx::query("DELETE FROM subject_keys WHERE key_hash = ANY($1)").bind(&older).execute(&app.pool).await.unwrap();
    assert_eq!(removed.rows_affected(), 2);
    app.ingest(&c.name, vec![chunk("j-1", 0, "notes", &["jose"])]).await.unwrap();
    let job = app.erase_with(pb::EraseRequest { subject: Some(person("jose")), ..Default::default() }).await.unwrap();
    assert_eq!(app.wait_for_job(&job.job_id).await.status, pb::JobStatus::Completed as i32);
    for (i, (kind, value)) in [(Phone, "020 7946 0958"), (Name, "Jose Nunez")].iter().enumerate() {
        let alias = subject(&format!("alias-{i}"), vec![ident(*kind, value)]);
        let err = client.put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(alias) })).await.unwrap_err();
        assert_eq!(reason(&err), "subject_suppressed", "{kind:?} {value}");
    }
}

/// Another id of the person that existed before the erasure (with
/// xavier's address) is suppressed by it: writes tagged with it are, and
/// its caller id and the identifier it shares with him are cleared at
/// forget, its other identifiers kept; one under legal hold is left as it is.
#[tokio::test]
async fn an_active_subject_is_suppressed_once_its_person_is_erased() {
    // With a hold in the tenant the forget stage runs alone, else in a batch.
    for with_hold in [true, false] {
        twin_suppressed_at_forget(with_hold).await;
    }
}

async fn twin_suppressed_at_forget(with_hold: bool) {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let badge = ident(pb::IdentifierKind::Other, "badge 4411-corp");
    let twin = subject("xavier-work", vec![ident(pb::IdentifierKind::Other, "Xavier@ex.com"), badge.clone()]);
    let held = subject("xavier-home", vec![ident(pb::IdentifierKind::Email, "xavier@ex.com")]);
    // A namesake: the same name, another address. Not the same person.
    let namesake = subject("xu-2", vec![ident(pb::IdentifierKind::Name, "Xavier Xu"), ident(pb::IdentifierKind::Email, "x.xu@other.org")]);
    for s in [twin, held, namesake] {
        app.client.clone().put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(s) })).await.unwrap();
    }
    app.ingest(&c.name, vec![chunk("wk", 0, "a note from work", &["xavier-work"])]).await.unwrap();
    let hold = pb::SetLegalHoldRequest { subject_id: "xavier-home".into(), hold: with_hold, reason: "case 12".into() };
    if with_hold {
        app.client.clone().set_legal_hold(req(&app.keys.sk, hold)).await.unwrap();
    }
    erase_xavier(&app, &c.name).await;
    let w = app.ingest(&c.name, vec![chunk("w", 0, "hi", &["xavier-work"])]).await.unwrap();
    assert_eq!((w.accepted, w.suppressed), (0, 1));

    let namesake: (Option<String>, String, i64) = sqlx::query_as(
        "SELECT s.external_id, s.state, count(i.value) FROM subjects s JOIN subject_identifiers i USING (subject_id) \
         WHERE s.external_id = 'xu-2' GROUP BY 1, 2",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(namesake, (Some("xu-2".into()), "active".into(), 2), "a namesake keeps his id and values");
    let subjects: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT external_id, state FROM subjects WHERE state <> 'erased' AND external_id IS DISTINCT FROM 'xu-2' \
         AND subject_id IN (SELECT subject_id FROM subject_identifiers) ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let values: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT value FROM subject_identifiers WHERE value IS NOT NULL \
         AND subject_id NOT IN (SELECT subject_id FROM subjects WHERE external_id = 'xu-2') ORDER BY value",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    if with_hold {
        assert_eq!(subjects, [(Some("xavier-home".into()), "active".into()), (None, "suppressed".into())], "the twin's id cleared");
        assert_eq!(values, [Some(badge.value.clone()), Some("xavier@ex.com".into())], "the shared address cleared, the badge and the held one kept");
    } else {
        assert_eq!(subjects, [(None, "suppressed".into()), (None, "suppressed".into())], "both twins' ids cleared");
        assert_eq!(values, [Some(badge.value.clone())], "the shared addresses cleared, the badge kept");
    }
    let clear: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM subjects WHERE external_id ILIKE '%xavier%' AND NOT legal_hold)
              + (SELECT count(*) FROM subject_identifiers i JOIN subjects s USING (subject_id)
                 WHERE i.value ILIKE '%xavier%' AND NOT s.legal_hold AND s.external_id IS DISTINCT FROM 'xu-2')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(clear, 0);
    assert_eq!(app.lineage_chunks_of("xavier-work").await, 1, "the twin's own chunk stays");
    // Until the twin is erased in its turn.
    let job = app.erase("xavier-work").await;
    assert_eq!(app.wait_for_job(&job.job_id).await.status, pb::JobStatus::Completed as i32);
    assert_eq!(app.lineage_chunks_of("xavier-work").await, 0);
}

/// A pipeline writes a point tagged with an erased person straight into the
/// backend, then calls Track for it.
async fn tracked_points_of_an_erased_person_are_deleted(backend: pb::Backend) {
    let app = spawn_app().await;
    let c = app.create_collection("mail", backend).await;
    let job = erase_xavier(&app, &c.name).await;
    let spec = lethe::store::lineage::collection_by_name(&app.pool, app.keys.tenant_id, &c.name).await.unwrap().unwrap();
    let store: Box<dyn VectorStore> = match backend {
        pb::Backend::Qdrant => Box::new(
            QdrantStore::connect(&qdrant_url().expect("QDRANT_URL"), None, std::time::Duration::from_secs(30))
                .await
                .unwrap(),
        ),
        _ => Box::new(lethe::vector_store::PgVectorStore::new(app.pool.clone())),
    };
    let late: Vec<pb::TrackedPoint> = (0..3).map(|i| tracked(&app, if i == 2 { "bob" } else { "xavier" }, 100 + i, false)).collect();
    let ids: Vec<Uuid> = late.iter().map(|p| p.point_id.parse().unwrap()).collect();
    let points: Vec<VectorPoint> = late
        .iter()
        .zip(&ids)
        .zip(random_vectors(&app, 3, 7))
        .map(|((p, id), vector)| VectorPoint {
            id: *id,
            vector,
            payload: PointPayload {
                tenant_id: app.keys.tenant_id,
                source_id: p.source_id.clone(),
                subjects: vec![p.tags[0].subject_id.clone()],
                text: None,
            },
        })
        .collect();
    store.upsert(&spec, &points).await.unwrap();
    assert_eq!(store.count(&spec, &Selector::by_tag("xavier")).await.unwrap(), 2);

    let w = app
        .client
        .clone()
        .track(req(&app.keys.pk, pb::TrackRequest { collection: c.name.clone(), points: late, verify_points: true, ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((w.accepted, w.suppressed, w.suppressed_deleted), (1, 2, 2));
    // Counted outside Lethe: xavier's late points are gone, bob's stays.
    assert_eq!(store.count(&spec, &Selector::by_ids(ids[..2].to_vec())).await.unwrap(), 0);
    assert_eq!(store.count(&spec, &Selector::by_tag("xavier")).await.unwrap(), 0);
    assert_eq!(store.count(&spec, &Selector::by_ids(vec![ids[2]])).await.unwrap(), 1);
    assert_eq!(app.lineage_chunks_of("xavier").await, 0);

    // The deletion is a follow-up of xavier's erasure in the chained log.
    let mut client = app.client.clone();
    let log = client.list_deletion_log(req(&app.keys.ak, pb::ListDeletionLogRequest::default())).await.unwrap().into_inner();
    let follow = log.entries.iter().find(|e| e.kind == "follow_up").expect("a follow_up entry");
    assert_eq!(follow.job_id, job.job_id);
    let body: serde_json::Value = serde_json::from_str(&follow.body).unwrap();
    assert_eq!((body["before"].as_u64(), body["deleted"].as_u64(), body["after"].as_u64()), (Some(2), Some(2), Some(0)));
    assert!(!follow.body.contains("xavier"), "the log names people by keyed hash only: {}", follow.body);
    let verified =
        client.verify_deletion_log(req(&app.keys.ak, pb::VerifyDeletionLogRequest::default())).await.unwrap().into_inner();
    assert!(verified.valid);
}

#[tokio::test]
async fn tracked_points_of_an_erased_person_are_deleted_on_pgvector() {
    tracked_points_of_an_erased_person_are_deleted(pb::Backend::Pgvector).await;
}

#[tokio::test]
async fn tracked_points_of_an_erased_person_are_deleted_on_qdrant() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    tracked_points_of_an_erased_person_are_deleted(pb::Backend::Qdrant).await;
}

/// A Track refused for its input records nothing: not the subjects it
/// names, not the deletion of an erased person's late point. Each refusal
/// used to come after both (a vector of the wrong size, a point missing
/// under `verify_points`, a point id another collection holds).
#[tokio::test]
async fn a_refused_track_records_nothing() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let other = app.create_collection("notes", pb::Backend::Pgvector).await;
    erase_xavier(&app, &c.name).await;
    let spec = lethe::store::lineage::collection_by_name(&app.pool, app.keys.tenant_id, &c.name).await.unwrap().unwrap();
    let store = lethe::vector_store::PgVectorStore::new(app.pool.clone());
    // Xavier's late point, written by the pipeline straight into the backend.
    let late = tracked(&app, "xavier", 200, false);
    let late_id: Uuid = late.point_id.parse().unwrap();
    let payload = PointPayload { tenant_id: app.keys.tenant_id, source_id: late.source_id.clone(), subjects: vec!["xavier".into()], text: None };
    store.upsert(&spec, &[VectorPoint { id: late_id, vector: random_vectors(&app, 1, 9).remove(0), payload }]).await.unwrap();
    let taken = app.ingest(&other.name, vec![chunk("n-1", 0, "a note", &["bob"])]).await.unwrap().point_ids[0].clone();
    let state = || async {
        let rows: (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM subjects WHERE tenant_id = $1),
                    (SELECT count(*) FROM deletion_log WHERE tenant_id = $1),
                    (SELECT count(*) FROM chunks WHERE tenant_id = $1)",
        )
        .bind(app.keys.tenant_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (rows, store.count(&spec, &Selector::by_ids(vec![late_id])).await.unwrap())
    };
    let before = state().await;
    assert_eq!(before.1, 1);
    let yve = subject("yve", vec![ident(pb::IdentifierKind::Email, "yve@example.com")]);
    let missing = pb::TrackedPoint { point_id: Uuid::new_v4().to_string(), ..tracked(&app, "yve", 201, false) };
    let reused = pb::TrackedPoint { point_id: taken, ..tracked(&app, "yve", 202, false) };
    let short = pb::TrackedPoint { vector: vec![0.5; 3], ..tracked(&app, "yve", 203, true) };
    let mut untagged = late.clone();
    untagged.tags.push(pb::SubjectTag { subject_id: "yve".into(), role: pb::TagRole::Mentioned as i32 });
    let cases = [
        (vec![untagged], true, Code::FailedPrecondition, "point_tag_missing"),
        (vec![tracked(&app, "xavier", 204, true), short], false, Code::InvalidArgument, "points[1].vector"),
        (vec![tracked(&app, "xavier", 205, true), tracked(&app, "yve", 206, false)], false, Code::InvalidArgument, "points"),
        (vec![late.clone(), missing], true, Code::FailedPrecondition, "point_not_found"),
        (vec![late.clone(), reused], false, Code::InvalidArgument, "points[1].point_id"),
    ];
    for (points, verify_points, code, what) in cases {
        let request = pb::TrackRequest { collection: c.name.clone(), points, subjects: vec![yve.clone()], verify_points };
        let e = app.client.clone().track(req(&app.keys.pk, request)).await.expect_err(what);
        assert_eq!(e.code(), code, "{what}: {e:?}");
        let said = match code {
            Code::InvalidArgument => tonic_types::StatusExt::get_details_bad_request(&e).expect("field").field_violations[0].field.clone(),
            _ => reason(&e),
        };
        assert_eq!(said, what, "{e:?}");
        assert!(!e.message().contains("yve"), "the error names no subject id: {e:?}");
        assert_eq!(state().await, before, "{what}: nothing recorded, nothing deleted");
    }
    // The same request without its fault goes through: the late point is deleted.
    let request = pb::TrackRequest { collection: c.name.clone(), points: vec![late], subjects: vec![yve], verify_points: true };
    let w = app.client.clone().track(req(&app.keys.pk, request)).await.unwrap().into_inner();
    assert_eq!((w.suppressed, w.suppressed_deleted), (1, 1));
    assert_eq!(state().await.1, 0);
}

/// Points tracked without Lethe's `tenant_id` field (or with another
/// tenant's) are in lineage; the erasure must count, delete and verify them.
async fn points_with_a_foreign_or_missing_tenant_field_are_erased(backend: pb::Backend) {
    let app = spawn_app().await;
    let c = app.create_collection("ext", backend).await;
    let spec = lethe::store::lineage::collection_by_name(&app.pool, app.keys.tenant_id, &c.name).await.unwrap().unwrap();
    let points: Vec<pb::TrackedPoint> = (0..3).map(|i| tracked(&app, "dee", i, true)).collect();
    let ids: Vec<Uuid> = points.iter().map(|p| p.point_id.parse().unwrap()).collect();
    let w = app
        .client
        .clone()
        .track(req(&app.keys.pk, pb::TrackRequest { collection: c.name.clone(), points, ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.accepted, 3);
    // The pipeline rewrites the points' tenant field: another tenant's id,
    // the owner's in upper case, and none at all; the last also loses its tag.
    match backend {
        pb::Backend::Qdrant => {
            use qdrant_client::qdrant::{DeletePayloadPointsBuilder, PointsIdsList, SetPayloadPointsBuilder};
            let client = qdrant_client::Qdrant::from_url(&qdrant_url().unwrap()).build().unwrap();
            let set = |id: Uuid, tenant: String| {
                let payload: qdrant_client::Payload = serde_json::json!({ "tenant_id": tenant }).try_into().unwrap();
                SetPayloadPointsBuilder::new(spec.backend_name.clone(), payload)
                    .points_selector(PointsIdsList { ids: vec![id.to_string().into()] })
                    .wait(true)
            };
            client.set_payload(set(ids[0], Uuid::new_v4().to_string())).await.unwrap();
            client.set_payload(set(ids[1], app.keys.tenant_id.to_string().to_uppercase())).await.unwrap();
            client
                .delete_payload(
                    DeletePayloadPointsBuilder::new(spec.backend_name.clone(), vec!["tenant_id".into(), "subjects".into()])
                        .points_selector(PointsIdsList { ids: vec![ids[2].to_string().into()] })
                        .wait(true),
                )
                .await
                .unwrap();
        }
        _ => {
            sqlx::query(&format!(
                "UPDATE \"{}\" SET tenant_id = $2, subjects = CASE WHEN point_id = $3 THEN '{{}}' ELSE subjects END \
                 WHERE point_id = ANY($1)",
                spec.backend_name
            ))
            .bind(&ids)
            .bind(Uuid::new_v4())
            .bind(ids[2])
            .execute(&app.pool)
            .await
            .unwrap();
        }
    }
    let done = app.wait_for_job(&app.erase("dee").await.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let counts = &done.counts[0];
    assert_eq!((counts.before_by_ids, counts.before_total, counts.deleted, counts.after_total), (3, 3, 3, 0));
    let store: Box<dyn VectorStore> = match backend {
        pb::Backend::Qdrant => Box::new(
            QdrantStore::connect(&qdrant_url().unwrap(), None, std::time::Duration::from_secs(30)).await.unwrap(),
        ),
        _ => Box::new(lethe::vector_store::PgVectorStore::new(app.pool.clone())),
    };
    assert_eq!(store.retrieve(&spec, &ids, false).await.unwrap().len(), 0, "counted outside Lethe's plan");
}

#[tokio::test]
async fn points_with_a_foreign_or_missing_tenant_field_are_erased_on_pgvector() {
    points_with_a_foreign_or_missing_tenant_field_are_erased(pb::Backend::Pgvector).await;
}

#[tokio::test]
async fn points_with_a_foreign_or_missing_tenant_field_are_erased_on_qdrant() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    points_with_a_foreign_or_missing_tenant_field_are_erased(pb::Backend::Qdrant).await;
}

#[tokio::test]
async fn track_with_verification_refuses_a_point_of_another_tenant() {
    let app = spawn_app().await;
    let c = app.create_collection("ext", pb::Backend::Pgvector).await;
    let p = tracked(&app, "dee", 1, true);
    let mut client = app.client.clone();
    let points = vec![p.clone()];
    client.track(req(&app.keys.pk, pb::TrackRequest { collection: c.name.clone(), points, ..Default::default() })).await.unwrap();
    sqlx::query(&format!("UPDATE \"{}\" SET tenant_id = $1", c.backend_name))
        .bind(Uuid::new_v4())
        .execute(&app.pool)
        .await
        .unwrap();
    let again = pb::TrackedPoint { vector: Vec::new(), ..p };
    let err = client
        .track(req(&app.keys.pk, pb::TrackRequest { collection: c.name.clone(), points: vec![again], verify_points: true, ..Default::default() }))
        .await
        .unwrap_err();
    assert_eq!((err.code(), reason(&err)), (Code::FailedPrecondition, "point_tenant_mismatch".into()));
}

#[tokio::test]
async fn a_follow_up_erasure_searches_the_identifiers_it_is_given() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    // Erased once by id only; later a straggler names him in someone else's mail.
    app.ingest(&c.name, vec![chunk("x-1", 0, "xavier's notes", &["xavier"])]).await.unwrap();
    let first = app.wait_for_job(&app.erase("xavier").await.job_id).await;
    assert_eq!(first.status, pb::JobStatus::Completed as i32, "{}", first.error);
    app.ingest(&c.name, vec![chunk("bob-1", 0, "forwarded from Xavier Xu <xavier.xu@ex.com> yesterday", &["bob"])])
        .await
        .unwrap();
    let again = pb::EraseRequest {
        subject: Some(subject("xavier", vec![
            ident(pb::IdentifierKind::Email, "xavier.xu@ex.com"),
            ident(pb::IdentifierKind::Name, "Xavier Xu"),
        ])),
        ..Default::default()
    };
    let job = app.erase_with(again).await.unwrap();
    let done = app.wait_for_job(&job.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.residuals.iter().map(|r| r.source_id.as_str()).collect::<Vec<_>>(), ["bob-1"]);
    assert_eq!(done.counts[0].residual_found, 1);
    // The request's identifiers were searched, then not kept in clear.
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM erasure_identifiers").fetch_one(&app.pool).await.unwrap();
    assert_eq!(kept, 0);
    assert_eq!(clear_rows_like(&app, "%xavier%").await, 0);
}

#[tokio::test]
async fn handles_and_international_phones_are_found_by_residual_search() {
    let app = spawn_app().await;
    let c = app.create_collection("chat", pb::Backend::Pgvector).await;
    let texts = [
        ("h-1", "ping @ann_b about the deck"),
        ("h-2", "(cc @ann_b)"),
        ("p-1", "call her on +44 20 7946 0958 after six"),
        ("p-2", "her desk: 020 7946 0958"),
        ("e-1", "mail ann.b@bücher.de"),
        ("n-1", "write to x@ann_b.example or @ann_bee, or call +44 20 7946 0959 or 020 7946 0959"),
    ];
    let chunks = texts.iter().map(|(s, t)| chunk(s, 0, t, &["bob"])).collect();
    app.ingest(&c.name, chunks).await.unwrap();
    let r = pb::SearchResidualsRequest {
        identifiers: vec![
            ident(pb::IdentifierKind::Handle, "@ann_b"),
            ident(pb::IdentifierKind::Phone, "+44 20 7946 0958"),
            ident(pb::IdentifierKind::Email, "ann.b@xn--bcher-kva.de"),
        ],
        limit: 100,
    };
    let found = app.client.clone().search_residuals(req(&app.keys.ak, r)).await.unwrap().into_inner().candidates;
    let mut sources: Vec<&str> = found.iter().map(|c| c.source_id.as_str()).collect();
    sources.sort_unstable();
    assert_eq!(sources, ["e-1", "h-1", "h-2", "p-1", "p-2"]);
}

/// A link carries the person escaped (`?email=zk%40corp.example`, an
/// unsubscribe link; `?q=Zora+Kellerman`), a page writes her address so
/// that scrapers miss it (`zk [at] corp [dot] example`, `zk&#64;corp…`):
/// residual search finds each through the index, and once she is erased,
/// ingest screening finds them too and redacts them where they are written.
#[tokio::test]
async fn escaped_and_spelled_out_mentions_are_found_and_screened() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let texts = [
        ("link-1", "Manage your lists: https://lists.example/u?email=zk%40corp.example&list=desk"),
        ("link-2", "Open mailto%3Azk%40corp.example in the browser"),
        ("link-3", "Profile: https://people.example/find?q=Zora+Kellerman"),
        ("link-4", "Profile: https://people.example/find?q=Zora%20Kellerman&x=1"),
        ("spelled-1", "Contact: zk [at] corp [dot] example"),
        ("spelled-2", "Write to zk at corp dot example for the minutes"),
        ("entity", "<p>Zora&nbsp;Kellerman &lt;zk&#64;corp&#46;example&gt;</p>"),
        ("other-domain", "https://lists.example/u?email=zk%40corp.example.org"),
        ("other-local", "mailto%3Azkk%40corp.example and 100%25 of Zora+Kay; zkk [at] corp [dot] example"),
        ("prose", "zk met us at corp events; dot the i"),
    ];
    let chunks = texts.iter().map(|(s, t)| chunk(s, 0, t, &["bob"])).collect();
    app.ingest(&c.name, chunks).await.unwrap();
    let r = pb::SearchResidualsRequest {
        identifiers: vec![ident(pb::IdentifierKind::Email, "zk@corp.example"), ident(pb::IdentifierKind::Name, "Zora Kellerman")],
        limit: 100,
    };
    let found = app.client.clone().search_residuals(req(&app.keys.ak, r)).await.unwrap().into_inner().candidates;
    let mut sources: Vec<&str> = found.iter().map(|c| c.source_id.as_str()).collect();
    sources.sort_unstable();
    assert_eq!(sources, ["entity", "link-1", "link-2", "link-3", "link-4", "spelled-1", "spelled-2"]);

    let redact = collection_with(&app, "redact", pb::Screening::Redact).await;
    erase_xavier(&app, &redact.name).await;
    let batch = vec![
        chunk("fwd-1", 0, "Stop mail to https://lists.example/u?e=xavier%40ex.com now", &["bob"]),
        chunk("fwd-2", 0, "See https://people.example/find?q=Xavier+Xu", &["bob"]),
        chunk("fwd-3", 0, "Reach xavier [at] ex [dot] com or Xavier&nbsp;Xu", &["bob"]),
        chunk("plain", 0, "https://lists.example/u?e=xavierr%40ex.com", &["bob"]),
    ];
    let w = app.ingest(&redact.name, batch).await.unwrap();
    assert_eq!((w.accepted, w.screened), (4, 3));
    assert_eq!(texts_in(&app, &redact).await, [
        "Reach [redacted] or [redacted]",
        "See https://people.example/find?q=[redacted]",
        "Stop mail to https://lists.example/u?e=[redacted] now",
        "https://lists.example/u?e=xavierr%40ex.com",
    ]);
}

/// A name outside ASCII as HTML mail writes it (`Jos&eacute;`, named
/// references), as Python's `json.dumps` does (`Jos\u00e9`) and as a raw
/// mail body does (quoted-printable, a soft line break inside): residual
/// search finds both through the index, in any case, and once the person is
/// erased, ingest screening redacts them where they are written. A name
/// one letter off (`Nu&ntilde;o`) is neither.
#[tokio::test]
async fn a_name_written_as_html_json_or_quoted_printable_write_it_is_found_and_screened() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let texts = [
        ("html", "<p>Thanks, Jos&eacute; N&uacute;&ntilde;ez</p>"),
        ("json", r#"{"from": "Jos\u00e9 N\u00fa\u00f1ez", "body": "see you"}"#),
        ("capitals", "JOS&Eacute; N&Uacute;&Ntilde;EZ signed"),
        ("quoted-printable", "Regards,\r\nJos=C3=A9 N=C3=BA=\r\n=C3=B1ez, Houston"),
        ("other", r"Jos&eacute; Nu&ntilde;o wrote; &amp; so did Jos\u00e9 Nu\u00f1o"),
    ];
    let chunks = texts.iter().map(|(s, t)| chunk(s, 0, t, &["bob"])).collect();
    app.ingest(&c.name, chunks).await.unwrap();
    let jose = || vec![ident(pb::IdentifierKind::Name, "José Núñez"), ident(pb::IdentifierKind::Email, "jnunez@ex.com")];
    let r = pb::SearchResidualsRequest { identifiers: jose(), limit: 100 };
    let found = app.client.clone().search_residuals(req(&app.keys.ak, r)).await.unwrap().into_inner().candidates;
    let mut sources: Vec<&str> = found.iter().map(|c| c.source_id.as_str()).collect();
    sources.sort_unstable();
    assert_eq!(sources, ["capitals", "html", "json", "quoted-printable"]);

    let redact = collection_with(&app, "redact", pb::Screening::Redact).await;
    let who = subject("jose", jose());
    app.client.clone().put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(who) })).await.unwrap();
    app.ingest(&redact.name, vec![chunk("j-1", 0, "josé's notes", &["jose"])]).await.unwrap();
    let job = app.erase_with(pb::EraseRequest { subject: Some(person("jose")), ..Default::default() }).await.unwrap();
    let done = app.wait_for_job(&job.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let batch = vec![
        chunk("fwd-1", 0, "Signed: Jos&eacute; N&uacute;&ntilde;ez", &["bob"]),
        chunk("fwd-2", 0, r#"{"author": "Jose N\u00fa\u00f1ez"}"#, &["bob"]),
        chunk("fwd-3", 0, r#"{"cc": "Jos\u00e9 N\u00fa\u00f1ez\u2019s desk"}"#, &["bob"]),
        // The name ends in an escaped letter right before escaped quotes.
        chunk("fwd-4", 0, r#"{"to": "\u201cN\u00fa\u00f1ez, Jos\u00e9\u201d"}"#, &["bob"]),
        chunk("fwd-5", 0, "Cc: Jose Nu=\n=C3=B1ez", &["bob"]),
        chunk("plain", 0, "Jos&eacute; Nu&ntilde;o", &["bob"]),
    ];
    let w = app.ingest(&redact.name, batch).await.unwrap();
    assert_eq!((w.accepted, w.screened), (6, 5));
    assert_eq!(texts_in(&app, &redact).await, [
        "Cc: [redacted]",
        "Jos&eacute; Nu&ntilde;o",
        "Signed: [redacted]",
        r#"{"author": "[redacted]"}"#,
        r#"{"cc": "[redacted] desk"}"#, // to the last escape of the possessive, `\u2019s` included
        r#"{"to": "\u201c[redacted]\u201d"}"#,
    ]);
}

async fn collection_with(app: &TestApp, name: &str, screening: pb::Screening) -> pb::Collection {
    app.client
        .clone()
        .create_collection(req(&app.keys.sk, pb::CreateCollectionRequest {
            name: name.into(),
            backend: pb::Backend::Pgvector as i32,
            dimension: u32::try_from(app.settings.embedding.dimension).unwrap(),
            screening: screening as i32,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
}

async fn texts_in(app: &TestApp, c: &pb::Collection) -> Vec<String> {
    sqlx::query_scalar(&format!("SELECT text FROM \"{}\" ORDER BY text", c.backend_name))
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn ingest_time_screening_applies_the_collections_policy() {
    let app = spawn_app().await;
    let default = app.create_collection("default", pb::Backend::Pgvector).await;
    assert_eq!(default.screening, pb::Screening::Report as i32, "the server default (ingest.screening)");
    let accept = collection_with(&app, "accept", pb::Screening::Accept).await;
    let report = collection_with(&app, "report", pb::Screening::Report).await;
    let redact = collection_with(&app, "redact", pb::Screening::Redact).await;
    let reject = collection_with(&app, "reject", pb::Screening::Reject).await;
    let job = erase_xavier(&app, &accept.name).await;

    let batch = || {
        vec![
            chunk("lunch", 0, "Lunch with Xavier Q. Xu on Friday, cc <XAVIER@ex.com>", &["bob"]),
            chunk("plain", 0, "plain note from bob", &["bob"]),
        ]
    };
    let w = app.ingest(&accept.name, batch()).await.unwrap();
    assert_eq!((w.accepted, w.screened), (2, 0));
    assert!(texts_in(&app, &accept).await.iter().any(|t| t.contains("Xavier Q. Xu")));

    let w = app.ingest(&report.name, batch()).await.unwrap();
    assert_eq!((w.accepted, w.screened), (2, 1));
    let listed = app.job(&job.job_id).await.residuals;
    let lunch = listed.iter().find(|r| r.action == "reported_at_ingest").expect("listed as a residual of the erasure");
    assert_eq!((lunch.collection.as_str(), lunch.source_id.as_str()), ("report", "lunch"));
    // Written again (a nightly pipeline): listed once.
    app.ingest(&report.name, batch()).await.unwrap();
    let listed = app.job(&job.job_id).await.residuals;
    assert_eq!(listed.iter().filter(|r| r.action == "reported_at_ingest").count(), 1, "{listed:?}");

    let w = app.ingest(&redact.name, batch()).await.unwrap();
    assert_eq!((w.accepted, w.screened), (2, 1));
    assert_eq!(texts_in(&app, &redact).await, ["Lunch with [redacted] on Friday, cc <[redacted]>", "plain note from bob"]);
    let lineage: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks WHERE text ILIKE '%xavier%' AND collection_id <> ALL(
        SELECT collection_id FROM collections WHERE name IN ('accept', 'report'))")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(lineage, 0, "the redacted text is what lineage keeps");
    // So is the vector: the redacted text's embedding, not the one of the
    // text as given (embedded before screening, it named him).
    let redacted = "Lunch with [redacted] on Friday, cc <[redacted]>";
    app.ingest(&accept.name, vec![chunk("as-redacted", 0, redacted, &["bob"])]).await.unwrap();
    let vector_of = |c: &pb::Collection, source: &str| {
        let (pool, table, source) = (app.pool.clone(), c.backend_name.clone(), source.to_owned());
        async move {
            sqlx::query_scalar::<_, String>(&format!("SELECT embedding::text FROM \"{table}\" WHERE source_id = $1"))
                .bind(source)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let stored = vector_of(&redact, "lunch").await;
    assert_eq!(stored, vector_of(&accept, "as-redacted").await, "embedded from the redacted text");
    assert_ne!(stored, vector_of(&accept, "lunch").await);

    let w = app.ingest(&reject.name, batch()).await.unwrap();
    assert_eq!((w.accepted, w.screened), (1, 1));
    assert_eq!(texts_in(&app, &reject).await, ["plain note from bob"]);

    // Track of a point the pipeline already wrote, whose text names him: the point goes.
    let id = Uuid::new_v4();
    let vector = pgvector::Vector::from(random_vectors(&app, 1, 3).remove(0));
    sqlx::query(&format!(
        "INSERT INTO \"{}\" (point_id, tenant_id, source_id, subjects, text, embedding) VALUES ($1, $2, 'fwd', '{{bob}}', 'fwd', $3)",
        reject.backend_name
    ))
    .bind(id)
    .bind(app.keys.tenant_id)
    .bind(vector)
    .execute(&app.pool)
    .await
    .unwrap();
    let point = pb::TrackedPoint {
        point_id: id.to_string(),
        source_id: "fwd".into(),
        text: "Fwd: from Xu, Xavier".into(),
        tags: vec![pb::SubjectTag { subject_id: "bob".into(), role: pb::TagRole::Mentioned as i32 }],
        ..Default::default()
    };
    let w = app
        .client
        .clone()
        .track(req(&app.keys.pk, pb::TrackRequest { collection: reject.name.clone(), points: vec![point], ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((w.accepted, w.screened, w.suppressed_deleted), (0, 1, 1));
    assert_eq!(texts_in(&app, &reject).await, ["plain note from bob"]);
}

#[tokio::test]
async fn another_tenants_hold_on_the_same_point_id_withholds_nothing() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let w = app.ingest(&c.name, vec![chunk("a-1", 0, "ann's notes", &["ann"])]).await.unwrap();
    let a_point = w.point_ids[0].clone();
    // Tenant B uses the same point id for a chunk of its own subject, and holds that subject.
    let b = new_tenant(&app.pool).await;
    let mut client = app.client.clone();
    let create = pb::CreateCollectionRequest {
        name: "b-mail".into(),
        backend: pb::Backend::Pgvector as i32,
        dimension: u32::try_from(app.settings.embedding.dimension).unwrap(),
        ..Default::default()
    };
    client.create_collection(req(&b.sk, create)).await.unwrap();
    let mut p = tracked(&app, "held-one", 5, true);
    p.point_id = a_point.clone();
    p.tags.push(pb::SubjectTag { subject_id: "ann".into(), role: pb::TagRole::Mentioned as i32 });
    client.track(req(&b.sk, pb::TrackRequest { collection: "b-mail".into(), points: vec![p], ..Default::default() })).await.unwrap();
    let hold = pb::SetLegalHoldRequest { subject_id: "held-one".into(), hold: true, reason: "B's case".into() };
    client.set_legal_hold(req(&b.sk, hold)).await.unwrap();

    let done = app.wait_for_job(&app.erase("ann").await.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let mine = done.counts.iter().find(|k| k.collection == "mail").unwrap();
    assert_eq!((mine.before_total, mine.deleted, mine.after_total, mine.withheld), (1, 1, 0, 0));
    assert_eq!(app.pg_rows_tagged(&c, "ann").await, 0);
}

#[tokio::test]
async fn a_tracked_point_of_an_erased_person_that_names_a_held_subject_is_kept() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    erase_xavier(&app, &c.name).await;
    let mut client = app.client.clone();
    let hold = pb::SetLegalHoldRequest { subject_id: "hal".into(), hold: true, reason: "case 9".into() };
    client.set_legal_hold(req(&app.keys.sk, hold)).await.unwrap();
    // The pipeline wrote a point tagged with both, then tracks it.
    let id = Uuid::new_v4();
    sqlx::query(&format!(
        "INSERT INTO \"{}\" (point_id, tenant_id, source_id, subjects, text, embedding) VALUES ($1, $2, 's', '{{xavier,hal}}', 't', $3)",
        c.backend_name
    ))
    .bind(id)
    .bind(app.keys.tenant_id)
    .bind(pgvector::Vector::from(random_vectors(&app, 1, 9).remove(0)))
    .execute(&app.pool)
    .await
    .unwrap();
    let mut p = tracked(&app, "xavier", 9, false);
    p.point_id = id.to_string();
    p.tags.push(pb::SubjectTag { subject_id: "hal".into(), role: pb::TagRole::Mentioned as i32 });
    let w = client
        .track(req(&app.keys.pk, pb::TrackRequest { collection: c.name.clone(), points: vec![p], ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((w.accepted, w.suppressed, w.suppressed_deleted), (0, 1, 0), "suppressed, but a held subject's point is not destroyed");
    assert_eq!(app.pg_rows_tagged(&c, "hal").await, 1);
}

/// A write that names an erased person (a tag, or a text a `reject`
/// collection refuses) at the id of another person's point deletes nothing
/// Lethe wrote: on `Ingest` and on `Track` with vectors Lethe writes the
/// vectors and wrote none of these, so the point there is the earlier
/// chunk's. Only a point the pipeline wrote itself (`Track` without a
/// vector) is deleted, the earlier chunk's lineage forgotten with it; and
/// not when that lineage tags a subject on hold. Nothing is logged as
/// xavier's that was not his.
#[tokio::test]
async fn a_refused_write_at_another_persons_point_deletes_only_what_the_pipeline_wrote() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let reject = collection_with(&app, "rejecting", pb::Screening::Reject).await;
    let earlier = || vec![chunk("doc", 0, "hal's notes", &["hal"]), chunk("doc", 1, "bob's notes", &["bob"])];
    let ids = app.ingest(&c.name, earlier()).await.unwrap().point_ids;
    app.ingest(&reject.name, earlier()).await.unwrap();
    erase_xavier(&app, &c.name).await;
    let hold = pb::SetLegalHoldRequest { subject_id: "hal".into(), hold: true, reason: "case 9".into() };
    app.client.clone().set_legal_hold(req(&app.keys.sk, hold)).await.unwrap();
    let follow_ups = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM deletion_log WHERE kind = 'follow_up'").fetch_one(&app.pool).await.unwrap()
    };
    let in_lineage = |c: &pb::Collection| {
        let (pool, name) = (app.pool.clone(), c.name.clone());
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM chunks c JOIN collections k USING (collection_id) WHERE k.name = $1")
                .bind(name)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let state = || async {
        let mut s = Vec::new();
        for c in [&c, &reject] {
            s.push((in_lineage(c).await, app.pg_rows_tagged(c, "hal").await, app.pg_rows_tagged(c, "bob").await));
        }
        (s, follow_ups().await)
    };
    let untouched = (vec![(2, 1, 1), (2, 1, 1)], 0);
    assert_eq!(state().await, untouched);

    // Ingest of doc#0 and doc#1 tagged xavier: suppressed, nothing deleted.
    let w = app.ingest(&c.name, vec![chunk("doc", 0, "new", &["xavier"]), chunk("doc", 1, "new", &["xavier"])]).await.unwrap();
    assert_eq!((w.suppressed, w.suppressed_deleted), (2, 0), "{w:?}");
    // Refused by screening (tagged ann), at the same ids of the other collection.
    let named = |o: u32| chunk("doc", o, "Fwd: from Xu, Xavier", &["ann"]);
    let w = app.ingest(&reject.name, vec![named(0), named(1)]).await.unwrap();
    assert_eq!((w.screened, w.suppressed_deleted), (2, 0), "{w:?}");
    // Track with vectors, tagged xavier, at hal's and bob's point ids.
    let at = |id: &str, seed: u64, with_vector: bool| pb::TrackedPoint {
        point_id: id.to_owned(),
        source_id: "doc".into(),
        ..tracked(&app, "xavier", seed, with_vector)
    };
    let track = |points: Vec<pb::TrackedPoint>| pb::TrackRequest { collection: c.name.clone(), points, ..Default::default() };
    let w = app.client.clone().track(req(&app.keys.pk, track(vec![at(&ids[0], 1, true), at(&ids[1], 2, true)]))).await.unwrap().into_inner();
    assert_eq!((w.suppressed, w.suppressed_deleted), (2, 0), "{w:?}");
    assert_eq!(state().await, untouched, "the earlier chunks and their points are all there, nothing logged");

    // The pipeline writes its own points over both, tagged xavier, and
    // tracks them without vectors: bob's replaced point is deleted and his
    // earlier chunk forgotten; hal's, under hold, is kept.
    sqlx::query(&format!("UPDATE \"{}\" SET subjects = '{{xavier}}' WHERE point_id::text = ANY($1)", c.backend_name))
        .bind(&ids)
        .execute(&app.pool)
        .await
        .unwrap();
    let w = app.client.clone().track(req(&app.keys.pk, track(vec![at(&ids[0], 1, false), at(&ids[1], 2, false)]))).await.unwrap().into_inner();
    assert_eq!((w.suppressed, w.suppressed_deleted), (2, 1), "{w:?}");
    let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT point_id::text FROM \"{}\" WHERE point_id::text = ANY($1)", c.backend_name))
        .bind(&ids)
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, [ids[0].clone()], "hal's point kept (held), bob's replaced one deleted");
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT c.chunk_id::text FROM chunks c JOIN collections k USING (collection_id) WHERE k.name = $1",
    )
    .bind(&c.name)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(left, [ids[0].clone()], "bob's earlier chunk is forgotten with its point");
    assert_eq!(follow_ups().await, 1);
}

/// A pipeline that tags chunks by address or by name tags them with an
/// erased person's identifier as its subject id: suppressed like their id,
/// in any spelling their keys read; a tag that only contains a word of it
/// is someone else.
#[tokio::test]
async fn a_tag_that_is_an_erased_persons_identifier_is_suppressed() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    erase_xavier(&app, &c.name).await;
    for tag in ["xavier@ex.com", "Xavier@EX.com", "mailto:xavier@ex.com", "Xavier Xu", "Xu, Xavier"] {
        let w = app.ingest(&c.name, vec![chunk("t", 0, "a note", &[tag])]).await.unwrap();
        assert_eq!((w.accepted, w.suppressed), (0, 1), "{tag}");
    }
    let w = app.ingest(&c.name, vec![chunk("t", 0, "a note", &["xavier-fan-club"])]).await.unwrap();
    assert_eq!((w.accepted, w.suppressed), (1, 0), "another id");
    let clear: i64 = sqlx::query_scalar("SELECT count(*) FROM subjects WHERE external_id ILIKE '%xavier%' AND external_id <> 'xavier-fan-club'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(clear, 0, "no subject was created under her address or name");
    // The same id given as a subject: by PutSubject, with or without
    // identifiers, and in an Ingest's `subjects`.
    for (id, identifiers) in [("xavier@ex.com", vec![]), ("Xu, Xavier", vec![ident(pb::IdentifierKind::Phone, "+1 555 0100 777")])] {
        let err = app
            .client
            .clone()
            .put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(subject(id, identifiers)) }))
            .await
            .expect_err(id);
        assert_eq!((err.code(), reason(&err)), (Code::FailedPrecondition, "subject_suppressed".into()), "{id}");
    }
    // In an Ingest's `subjects`, with identifiers, beside a chunk tagged
    // with someone else: the subject is suppressed, the chunk written.
    let w = app
        .client
        .clone()
        .ingest(req(&app.keys.sk, pb::IngestRequest {
            collection: c.name.clone(),
            chunks: vec![chunk("t2", 0, "a note", &["someone-else"])],
            subjects: vec![subject("mailto:xavier@ex.com", vec![ident(pb::IdentifierKind::Phone, "+1 555 0100 778")])],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((w.accepted, w.suppressed), (1, 0), "Ingest's subjects");
    let suppressed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM subjects WHERE state = 'suppressed' AND external_id IS NULL").fetch_one(&app.pool).await.unwrap();
    assert_eq!(suppressed, 3, "the three ids given as subjects are suppressed, their ids not kept");
    let ok = app
        .client
        .clone()
        .put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(subject("xavier-fan-club", vec![])) }))
        .await;
    assert!(ok.is_ok(), "an id that only contains her first name is someone else: {ok:?}");
    let clear: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM subjects WHERE (external_id ILIKE '%xavier%' AND external_id <> 'xavier-fan-club')
            OR (external_id IS NULL AND state = 'active')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(clear, 0, "no subject kept her address or name as its id");
    let phone: i64 = sqlx::query_scalar("SELECT count(*) FROM subject_identifiers WHERE value LIKE '%0100%'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(phone, 0, "the refused subject's identifiers were not stored");
}

/// A subject whose id is an address (a pipeline naming its subjects by
/// address), made before the person with that address is erased, by a tag
/// or by `PutSubject`: the erasure finds it as a twin and clears its id.
/// One named by a name only (`Xu, Xavier`) may be a namesake and stays.
#[tokio::test]
async fn a_subject_named_by_the_erased_persons_address_is_cleared_by_the_erasure() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest(&c.name, vec![chunk("by-tag", 0, "a note", &["Xavier@EX.com"])]).await.unwrap();
    app.client
        .clone()
        .put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(subject("mailto:xavier@ex.com", vec![])) }))
        .await
        .unwrap();
    app.ingest(&c.name, vec![chunk("by-name", 0, "a note", &["Xu, Xavier"])]).await.unwrap();
    erase_xavier(&app, &c.name).await;
    let rows: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT external_id, state FROM subjects WHERE state <> 'erased' ORDER BY state, external_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [(Some("Xu, Xavier".to_owned()), "active".to_owned()), (None, "suppressed".to_owned()), (None, "suppressed".to_owned())],
        "the ids that are her address are cleared; the namesake stays"
    );
    assert_eq!(clear_rows_like(&app, "%xavier@%").await, 0, "no row keeps her address");
    // Their chunks are theirs and stay, but no write under those ids passes.
    let w = app.ingest(&c.name, vec![chunk("by-tag-2", 0, "a note", &["Xavier@EX.com"])]).await.unwrap();
    assert_eq!((w.accepted, w.suppressed), (0, 1));
}

/// An erased subject's id is keyed only when it is an identifier as a
/// whole: the id `s0000042` (digits a phone reading would take) suppresses
/// neither `s0000042~g1` nor a tag holding the same digits, and the id
/// `zora@ex.com` suppresses a subject that gives that address.
#[tokio::test]
async fn an_erased_subjects_id_suppresses_others_only_when_it_is_an_identifier() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    for id in ["s0000042", "zora@ex.com"] {
        app.ingest(&c.name, vec![chunk(id, 0, "a note", &[id])]).await.unwrap();
        let done = app.wait_for_job(&app.erase(id).await.job_id).await;
        assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    }
    for tag in ["s0000042~g1", "ticket-0000042"] {
        let w = app.ingest(&c.name, vec![chunk(tag, 0, "a note", &[tag])]).await.unwrap();
        assert_eq!((w.accepted, w.suppressed), (1, 0), "{tag} is someone else");
    }
    let err = app
        .client
        .clone()
        .put_subject(req(&app.keys.pk, pb::PutSubjectRequest {
            subject: Some(subject("zora-work", vec![ident(pb::IdentifierKind::Email, "Zora@EX.com")])),
        }))
        .await
        .expect_err("her address, erased as an id");
    assert_eq!(reason(&err), "subject_suppressed");
}
