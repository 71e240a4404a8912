//! Unit tests of the Qdrant backend's conversions (the store itself is
//! tested against Qdrant in `tests/contract.rs` and `tests/api`).

use qdrant_client::qdrant::condition::ConditionOneOf;

use super::*;
use super::collections::*;
use super::errors::*;
use super::filters::*;
use super::payload::*;

fn keyword_of(c: &Condition) -> Option<(&str, &MatchValue)> {
    match &c.condition_one_of {
        Some(ConditionOneOf::Field(f)) => f.r#match.as_ref()?.match_value.as_ref().map(|m| (f.key.as_str(), m)),
        _ => None,
    }
}

fn id_count(c: &Condition) -> Option<usize> {
    match &c.condition_one_of {
        Some(ConditionOneOf::HasId(h)) => Some(h.has_id.len()),
        _ => None,
    }
}

#[test]
fn empty_selector_selects_nothing() {
    let s = Selector { tag: None, ids: Vec::new() };
    assert!(selector_filters(&s).is_empty());
}

#[test]
fn tags_with_spaces_are_keyword_matches() {
    let filters = selector_filters(&Selector::by_tag("Tim Belden"));
    assert_eq!(filters.len(), 1);
    let f = &filters[0];
    assert!(f.must.is_empty(), "no tenant condition: the collection is one tenant's");
    assert_eq!(keyword_of(&f.should[0]), Some((FIELD_SUBJECTS, &MatchValue::Keyword("Tim Belden".into()))));
    assert!(f.must_not.is_empty());
}

#[test]
fn ids_are_deduplicated_and_chunked_disjointly() {
    let mut ids: Vec<Uuid> = (0..2_500).map(|_| Uuid::new_v4()).collect();
    ids.push(ids[0]);
    let s = Selector { tag: Some("x".into()), ids };
    let filters = selector_filters(&s);
    assert_eq!(filters.len(), 3);
    assert_eq!(filters[0].should.len(), 2);
    assert_eq!(id_count(&filters[0].should[1]), Some(1_000));
    assert_eq!(id_count(&filters[1].must[0]), Some(1_000));
    assert_eq!(id_count(&filters[2].must[0]), Some(500));
    for f in &filters[1..] {
        assert_eq!(keyword_of(&f.must_not[0]), Some((FIELD_SUBJECTS, &MatchValue::Keyword("x".into()))));
    }
    let only_ids = selector_filters(&Selector::by_ids(vec![Uuid::new_v4(); 3]));
    assert_eq!(only_ids.len(), 1);
    assert!(only_ids[0].should.is_empty());
    assert_eq!(id_count(&only_ids[0].must[0]), Some(1));
}

#[test]
fn payload_round_trips() {
    let p = PointPayload {
        tenant_id: Uuid::new_v4(),
        source_id: "doc-1".into(),
        subjects: vec!["Tim Belden".into(), "Ann".into()],
        text: None,
    };
    let map = payload_to_qdrant(&p);
    assert!(!map.contains_key(FIELD_TEXT));
    assert_eq!(payload_from_qdrant(&map, Uuid::new_v4()).unwrap(), p);
    let with_text = PointPayload { text: Some("hello".into()), ..p };
    assert_eq!(payload_from_qdrant(&payload_to_qdrant(&with_text), Uuid::new_v4()).unwrap(), with_text);
}

#[test]
fn malformed_data_is_an_error_not_a_panic() {
    let mut map = payload_to_qdrant(&PointPayload {
        tenant_id: Uuid::new_v4(),
        source_id: "s".into(),
        subjects: vec![],
        text: None,
    });
    // A pipeline's point without Lethe's fields is the collection owner's.
    let owner = Uuid::new_v4();
    map.insert(FIELD_TENANT.into(), string_value("not-a-uuid"));
    assert_eq!(payload_from_qdrant(&map, owner).unwrap().tenant_id, owner);
    map.remove(FIELD_TENANT);
    map.remove(FIELD_SOURCE);
    let bare = payload_from_qdrant(&map, owner).unwrap();
    assert_eq!((bare.tenant_id, bare.source_id.as_str()), (owner, ""));
    map.insert(FIELD_SOURCE.into(), Value { kind: Some(Kind::BoolValue(true)) });
    assert!(matches!(payload_from_qdrant(&map, owner), Err(VectorStoreError::Backend { .. })));
    assert!(uuid_from_point_id(Some(&PointId::from(7u64))).is_err());
    assert!(uuid_from_point_id(None).is_err());
    assert!(dense_vector(None).is_err());
    assert!(check_completed(None, "x").is_err());
    let wait_timeout = UpdateResult { operation_id: None, status: UpdateStatus::WaitTimeout.into() };
    let err = check_completed(Some(wait_timeout), "delete").unwrap_err();
    assert!(err.to_string().contains("WaitTimeout"), "{err}");
}

#[test]
fn errors_are_classified() {
    let e = |s: tonic::Status| map_error(QdrantError::from(s), "c");
    assert!(matches!(e(tonic::Status::unavailable("down")), VectorStoreError::Unavailable { .. }));
    assert!(matches!(e(tonic::Status::deadline_exceeded("slow")), VectorStoreError::Unavailable { .. }));
    assert!(matches!(e(tonic::Status::cancelled("Timeout expired")), VectorStoreError::Unavailable { .. }));
    assert!(matches!(
        e(tonic::Status::internal("Failed to connect to http://x:6334/: ...")),
        VectorStoreError::Unavailable { .. }
    ));
    assert!(
        matches!(e(tonic::Status::not_found("no collection")), VectorStoreError::CollectionNotFound(n) if n == "c")
    );
    assert!(matches!(e(tonic::Status::invalid_argument("bad")), VectorStoreError::Backend { .. }));
    assert!(matches!(e(tonic::Status::internal("boom")), VectorStoreError::Backend { .. }));
}

#[test]
fn physical_names_are_recognised() {
    assert_eq!(physical_name("docs", FIRST_GENERATION), "docs_g1");
    assert!(is_physical_of("docs_g1", "docs"));
    assert!(is_physical_of("docs_r1a2b3c4d", "docs"));
    assert!(!is_physical_of("docs_", "docs"));
    assert!(!is_physical_of("docs_x_g1", "docs"), "a generation of the alias `docs_x`");
    assert!(!is_physical_of("docs2_g1", "docs"));
    assert!(!is_physical_of("docs", "docs"));
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let err = QdrantStore::connect("http://127.0.0.1:9", None, Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(err, VectorStoreError::Unavailable { .. }), "{err:?}");
}

fn spec(name: &str, tenant_id: Uuid) -> CollectionSpec {
    CollectionSpec {
        collection_id: Uuid::new_v4(),
        tenant_id,
        name: crate::domain::CollectionName::parse("name", "test").unwrap(),
        backend: Backend::Qdrant,
        backend_name: name.to_owned(),
        dimension: 4,
        distance: Distance::Cosine,
        embedding_model: "test".into(),
        store_text: true,
        retention_days: 30,
        screening: crate::domain::Screening::Accept,
        created_at: chrono::Utc::now(),
        mapping: None,
    }
}

fn point(tenant_id: Uuid, subjects: &[&str], vector: [f32; 4], text: Option<&str>) -> VectorPoint {
    VectorPoint {
        id: Uuid::new_v4(),
        vector: vector.to_vec(),
        payload: PointPayload {
            tenant_id,
            source_id: "src-1".into(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            text: text.map(str::to_owned),
        },
    }
}

/// Runs against a live server when `LETHE_QDRANT_TEST_URL` is set
/// (e.g. `http://127.0.0.1:6334`, a Qdrant or the stand-in); skipped otherwise.
#[tokio::test]
#[allow(clippy::too_many_lines)]
async fn live_round_trip() {
    let Ok(url) = std::env::var("LETHE_QDRANT_TEST_URL") else {
        eprintln!("skipped: LETHE_QDRANT_TEST_URL is not set");
        return;
    };
    let store = QdrantStore::connect(&url, None, Duration::from_secs(30)).await.unwrap();
    let t = Uuid::new_v4();
    let other = Uuid::new_v4();
    let name = format!("lethe_test_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let spec = spec(&name, t);

    store.create_collection(&spec).await.unwrap();
    store.create_collection(&spec).await.unwrap(); // idempotent
    assert_eq!(store.resolve_alias(&name).await.unwrap(), Some(format!("{name}_g1")));

    let p1 = point(t, &["Tim Belden"], [1.0, 0.0, 0.0, 0.0], None);
    let p2 = point(t, &["Tim"], [0.0, 1.0, 0.0, 0.0], None);
    let p3 = point(t, &["Tim Belden", "Ann"], [0.9, 0.1, 0.0, 0.0], None);
    let p4 = point(other, &["Tim Belden"], [1.0, 0.0, 0.0, 0.0], None);
    let p5 = point(t, &[], [0.0, 0.0, 2.0, 0.0], Some("some text"));
    store.upsert(&spec, &[p1.clone(), p2.clone(), p3.clone(), p4.clone(), p5.clone()]).await.unwrap();

    let bad = VectorPoint { vector: vec![1.0; 3], ..p1.clone() };
    assert!(matches!(
        store.upsert(&spec, &[bad]).await,
        Err(VectorStoreError::DimensionMismatch { expected: 4, actual: 3 })
    ));

    // Keyword, not full-text: "Tim" does not match "Tim Belden".
    assert_eq!(store.count(&spec, &Selector::by_tag("Tim Belden")).await.unwrap(), 2);
    assert_eq!(store.count(&spec, &Selector::by_tag("Tim")).await.unwrap(), 1);
    assert_eq!(store.count(&spec, &Selector::by_tag("Belden")).await.unwrap(), 0);
    assert_eq!(store.count(&spec, &Selector::by_tag("Tim Belden")).await.unwrap(), 1);
    assert_eq!(store.count(&spec, &Selector::by_ids(vec![p1.id, p2.id, p4.id])).await.unwrap(), 2);
    let tag_or_ids = Selector { tag: Some("Tim Belden".into()), ids: vec![p1.id, p2.id] };
    assert_eq!(store.count(&spec, &tag_or_ids).await.unwrap(), 3);
    // More ids than one chunk: chunks must not double count.
    let mut many: Vec<Uuid> = (0..2_100).map(|_| Uuid::new_v4()).collect();
    many.extend([p1.id, p2.id, p3.id]);
    let big = Selector { tag: Some("Tim Belden".into()), ids: many };
    assert_eq!(store.count(&spec, &big).await.unwrap(), 3);

    let empty = Selector { tag: None, ids: Vec::new() };
    assert_eq!(store.count(&spec, &empty).await.unwrap(), 0);

    // retrieve: missing ids are skipped; cosine collections store normalised vectors.
    let got = store.retrieve(&spec, &[p5.id, Uuid::new_v4(), p1.id], true).await.unwrap();
    assert_eq!(got.len(), 2);
    let got5 = got.iter().find(|p| p.id == p5.id).unwrap();
    assert_eq!(got5.payload, p5.payload);
    assert_eq!(got5.payload.text.as_deref(), Some("some text"));
    let v = got5.vector.as_ref().unwrap();
    assert!((v[2] - 1.0).abs() < 1e-5, "{v:?}");
    let got1 = got.iter().find(|p| p.id == p1.id).unwrap();
    assert_eq!(got1.payload.text, None);
    assert_eq!(got1.payload.subjects, vec!["Tim Belden".to_owned()]);
    assert!(store.retrieve(&spec, &[p1.id], false).await.unwrap()[0].vector.is_none());

    // scroll: pages of 2 in id order over the tenant's 4 points.
    let mut seen = Vec::new();
    let mut offset = None;
    let mut pages = 0;
    loop {
        let (page, next) = store.scroll(&spec, offset, 2, false).await.unwrap();
        assert!(page.len() <= 2);
        pages += 1;
        seen.extend(page.iter().map(|p| p.id));
        match next {
            Some(n) => offset = Some(n),
            None => break,
        }
        assert!(pages < 10);
    }
    let mut expected = vec![p1.id, p2.id, p3.id, p5.id];
    expected.sort();
    assert_eq!(seen, expected, "scroll returns every point of the tenant once, in id order");
    assert_eq!(pages, 2);

    // search_exact: best score per point, its probe, threshold, tenant, limit.
    let probes = vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 0.0, 1.0, 0.0]];
    let hits = store.search_exact(&spec, &probes, 0.9, 10).await.unwrap();
    let ids: Vec<Uuid> = hits.iter().map(|h| h.id).collect();
    assert_eq!(hits.len(), 3, "{hits:?}");
    assert!(ids.contains(&p1.id) && ids.contains(&p3.id) && ids.contains(&p5.id));
    assert!(!ids.contains(&p4.id) && !ids.contains(&p2.id));
    assert_eq!(hits[2].id, p3.id);
    assert!(hits[2].score > 0.9 && hits[2].score < 0.999);
    assert_eq!(hits.iter().find(|h| h.id == p5.id).unwrap().probe, 1);
    assert_eq!(hits.iter().find(|h| h.id == p1.id).unwrap().probe, 0);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(store.search_exact(&spec, &probes, 0.9, 2).await.unwrap().len(), 2);
    assert!(store.search_exact(&spec, &probes, 1.01, 10).await.unwrap().is_empty());

    // Empty selector deletes nothing.
    store.delete(&spec, &empty).await.unwrap();
    assert_eq!(store.count(&spec, &Selector::by_ids(vec![p1.id, p2.id, p3.id, p5.id])).await.unwrap(), 4);

    // Delete by tag OR ids in one call.
    store.delete(&spec, &tag_or_ids).await.unwrap();
    assert_eq!(store.count(&spec, &tag_or_ids).await.unwrap(), 0);
    assert_eq!(store.count(&spec, &Selector::by_ids(vec![p5.id])).await.unwrap(), 1);
    assert_eq!(store.count(&spec, &Selector::by_tag("Tim Belden")).await.unwrap(), 1);

    // Chunked upsert (256) and chunked delete by ids (1,000).
    let bulk: Vec<VectorPoint> =
        (0..300u16).map(|i| point(t, &["bulk"], [1.0, f32::from(i), 0.5, 0.0], None)).collect();
    store.upsert(&spec, &bulk).await.unwrap();
    let mut bulk_ids: Vec<Uuid> = (0..1_900).map(|_| Uuid::new_v4()).collect();
    bulk_ids.extend(bulk.iter().map(|p| p.id));
    assert_eq!(store.count(&spec, &Selector::by_ids(bulk_ids.clone())).await.unwrap(), 300);
    assert_eq!(store.count(&spec, &Selector::by_tag("bulk")).await.unwrap(), 300);
    store.delete(&spec, &Selector::by_ids(bulk_ids.clone())).await.unwrap();
    assert_eq!(store.count(&spec, &Selector::by_ids(bulk_ids)).await.unwrap(), 0);
    assert_eq!(store.count(&spec, &Selector::by_ids(vec![p5.id])).await.unwrap(), 1);

    match store.reclaim(&spec, true).await.unwrap() {
        PhysicalOutcome::Pending(reason) => assert!(reason.contains("re-index"), "{reason}"),
        PhysicalOutcome::Confirmed(c) => panic!("Qdrant cannot confirm: {c}"),
    }

    // The API key reaches both clients (the server may ignore it).
    let keyed = QdrantStore::connect(&url, Some("test-key".into()), Duration::from_secs(30)).await.unwrap();
    assert_eq!(keyed.resolve_alias(&name).await.unwrap(), Some(format!("{name}_g1")));
    keyed.swap_alias(&name, &format!("{name}_g1")).await.unwrap();

    // Re-index hooks, as reindex/stages.rs uses them.
    assert_eq!(store.count_tag_and_ids(&spec, Some("Tim"), &[p5.id, Uuid::new_v4()]).await.unwrap(), [0, 1, 1]);
    assert_eq!(store.count_tag_and_ids(&spec, None, &[]).await.unwrap(), [0, 0, 0]);
    assert_eq!(store.count_all(&spec).await.unwrap(), 1);
    assert_eq!(store.count_all(&spec).await.unwrap(), 1);
    assert!(store.create_staging(&spec, "bad_suffix").await.is_err());
    let staging = store.create_staging(&spec, "r1a2b3c4d").await.unwrap();
    assert_eq!(staging.backend_name, format!("{name}_r1a2b3c4d"));
    assert_eq!(store.create_staging(&spec, "r1a2b3c4d").await.unwrap(), staging, "idempotent");
    let copied = store.retrieve(&spec, &[p5.id], true).await.unwrap();
    let copy: Vec<VectorPoint> = copied
        .into_iter()
        .map(|p| VectorPoint { id: p.id, vector: p.vector.unwrap(), payload: p.payload })
        .collect();
    store.upsert(&staging, &copy).await.unwrap();
    assert_eq!(store.count_all(&staging).await.unwrap(), 1);
    assert_eq!(store.count_all(&staging).await.unwrap(), 0);
    assert!(store.drop_physical(&format!("{name}_g1")).await.is_err(), "the live collection is refused");
    assert!(store.drop_physical(&name).await.is_err(), "an alias is refused");
    let retired = store.promote(&spec, &staging).await.unwrap();
    assert_eq!(retired, format!("{name}_g1"));
    assert_eq!(store.resolve_alias(&name).await.unwrap(), Some(staging.backend_name.clone()));
    assert_eq!(store.count_all(&spec).await.unwrap(), 0, "readers of the alias see the new generation");
    assert_eq!(store.retrieve(&spec, &[p5.id], false).await.unwrap()[0].payload, p5.payload);
    assert!(store.promote(&spec, &staging).await.is_err(), "a repeated promote does not name the live one");
    store.drop_physical(&retired).await.unwrap();
    store.drop_physical(&retired).await.unwrap(); // no-op
    assert!(!store.collection_exists(&retired).await.unwrap());
    assert!(matches!(
        store.swap_alias(&name, "lethe_no_such_collection").await,
        Err(VectorStoreError::CollectionNotFound(_))
    ));
    // A staging left behind by an abandoned re-index goes with the collection.
    let leftover = store.create_staging(&spec, "r99").await.unwrap();

    store.drop_collection(&spec).await.unwrap();
    assert_eq!(store.resolve_alias(&name).await.unwrap(), None);
    assert!(!store.collection_exists(&format!("{name}_g1")).await.unwrap());
    assert!(!store.collection_exists(&staging.backend_name).await.unwrap());
    assert!(!store.collection_exists(&leftover.backend_name).await.unwrap());
    store.drop_collection(&spec).await.unwrap(); // no-op
    assert!(matches!(
        store.count(&spec, &Selector::by_tag("x")).await,
        Err(VectorStoreError::CollectionNotFound(n)) if n == name
    ));
}

/// Euclid scores are distances: lower is better, the threshold is a maximum.
#[tokio::test]
async fn live_euclid_search() {
    let Ok(url) = std::env::var("LETHE_QDRANT_TEST_URL") else {
        eprintln!("skipped: LETHE_QDRANT_TEST_URL is not set");
        return;
    };
    let store = QdrantStore::connect(&url, None, Duration::from_secs(30)).await.unwrap();
    let t = Uuid::new_v4();
    let name = format!("lethe_test_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let spec = CollectionSpec { distance: Distance::Euclid, ..spec(&name, t) };
    store.create_collection(&spec).await.unwrap();
    let near = point(t, &["a"], [0.1, 0.0, 0.0, 0.0], None);
    let nearer = point(t, &["a"], [0.0, 0.0, 0.0, 0.0], None);
    let far = point(t, &["a"], [5.0, 0.0, 0.0, 0.0], None);
    store.upsert(&spec, &[near.clone(), nearer.clone(), far.clone()]).await.unwrap();
    let hits = store.search_exact(&spec, &[vec![0.0; 4]], 0.5, 10).await.unwrap();
    let ids: Vec<Uuid> = hits.iter().map(|h| h.id).collect();
    assert_eq!(ids, vec![nearer.id, near.id], "{hits:?}");
    assert!(hits[0].score.abs() < 1e-6 && (hits[1].score - 0.1).abs() < 1e-4, "{hits:?}");
    store.drop_collection(&spec).await.unwrap();
}

#[test]
fn best_score_depends_on_distance() {
    assert!(Better::for_distance(Distance::Cosine).is_better(0.9, 0.8));
    assert!(Better::for_distance(Distance::Euclid).is_better(0.1, 0.8));
    assert!(!Better::for_distance(Distance::Dot).is_better(0.8, 0.8));
}

#[test]
fn a_batch_is_deleted_through_one_filter_of_any_of_its_tags_or_ids_while_its_ids_fit_one() {
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let selectors = [
        Selector { tag: Some("Ann".into()), ids: vec![ids[0], ids[1]] },
        Selector { tag: Some("Bob".into()), ids: vec![ids[1]] },
        Selector { tag: Some("Ann".into()), ids: vec![] },
        Selector { tag: None, ids: vec![ids[2]] },
    ];
    let filter = any_selector_filter(&selectors).expect("fits one filter").expect("selects something");
    assert!(filter.must.is_empty() && filter.must_not.is_empty());
    assert_eq!(filter.should.len(), 2, "any of the tags, or any of the ids");
    let keywords = ["Ann".to_owned(), "Bob".to_owned()];
    assert!(matches!(keyword_of(&filter.should[0]), Some((FIELD_SUBJECTS, MatchValue::Keywords(k))) if k.strings == keywords));
    assert_eq!(id_count(&filter.should[1]), Some(3), "each id once");
    assert!(matches!(any_selector_filter(&[Selector::by_ids(vec![])]), Some(None)), "nothing selected, no request");
    assert!(any_selector_filter(&[]).is_some_and(|f| f.is_none()));
    let many = Selector::by_ids((0..=ID_CHUNK).map(|_| Uuid::new_v4()).collect());
    assert!(any_selector_filter(&[many]).is_none(), "more ids than one condition holds: selector by selector");
}

#[test]
fn integer_tags_are_matched_in_attached_stores_only() {
    let own = filters::tags_condition(FIELD_SUBJECTS, &["42".to_owned()]);
    assert!(matches!(keyword_of(&own), Some((FIELD_SUBJECTS, MatchValue::Keyword(k))) if k == "42"), "{own:?}");
    let attached = filters::tags_condition("metadata.user_id", &["42".to_owned()]);
    assert!(keyword_of(&attached).is_none(), "keyword or integer: {attached:?}");
    let word = filters::tags_condition("metadata.user_id", &["ann".to_owned()]);
    assert!(matches!(keyword_of(&word), Some((_, MatchValue::Keyword(k))) if k == "ann"));
}
