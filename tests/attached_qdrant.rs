//! Attached Qdrant collections (issue 13) against Qdrant semantics (the
//! stand-in, or a real Qdrant at QDRANT_URL): collections shaped exactly as
//! LangChain, LlamaIndex and a hand-made pipeline write them, created with
//! the raw client, then read, counted and erased through
//! `AttachedQdrantStore`. Every outcome is checked with the raw client.
//! Run with `scripts/test.sh`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lethe::domain::{
    Backend, CollectionName, CollectionSpec, Distance, Field, FieldKind, IdKind, Mapping, NativeId, Scope,
};
use lethe::vector_store::{
    AttachedQdrantStore, Inspection, Keep, PhysicalOutcome, QdrantStore, Selector, VectorStore, VectorStoreError,
};
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::vectors_config::Config;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, Distance as QDistance,
    FieldType, Filter, NamedVectors, PayloadSchemaType, PointId, PointStruct, SparseVectorParamsBuilder,
    SparseVectorsConfigBuilder, UpsertPointsBuilder, Vector, VectorParams, VectorParamsBuilder, VectorParamsMap,
    VectorsConfig, VectorsConfigBuilder,
};
use qdrant_client::{Payload, Qdrant};
use serde_json::json;
use uuid::Uuid;

fn url() -> String {
    std::env::var("QDRANT_URL").expect("QDRANT_URL (run scripts/test.sh, which starts the stand-in)")
}

async fn clients() -> (Qdrant, Arc<dyn VectorStore>) {
    let raw = Qdrant::from_url(&url())
        .api_key(std::env::var("QDRANT_API_KEY").ok())
        .timeout(Duration::from_secs(60))
        .skip_compatibility_check()
        .build()
        .expect("raw client");
    let store = QdrantStore::connect(&url(), std::env::var("QDRANT_API_KEY").ok(), Duration::from_secs(60))
        .await
        .expect("connect to Qdrant");
    (raw, Arc::new(AttachedQdrantStore::new(store)))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::new_v4().simple())
}

fn keys(p: &[&str]) -> Vec<String> {
    p.iter().map(|k| (*k).to_owned()).collect()
}

fn at(p: &[&str]) -> Field {
    Field { path: keys(p), ..Field::default() }
}

fn spec(name: &str, mapping: Mapping) -> CollectionSpec {
    CollectionSpec {
        collection_id: Uuid::new_v4(),
        tenant_id: Uuid::new_v4(),
        name: CollectionName::parse("name", "attached").unwrap(),
        backend: Backend::Qdrant,
        backend_name: name.to_owned(),
        dimension: 0,
        distance: Distance::Cosine,
        embedding_model: "framework's".into(),
        store_text: true,
        retention_days: 0,
        screening: lethe::domain::Screening::Accept,
        created_at: chrono::Utc::now(),
        mapping: Some(Arc::new(mapping)),
    }
}

/// The spec as Attach records it after inspecting the store.
fn attached(mut s: CollectionSpec, i: &Inspection) -> CollectionSpec {
    s.dimension = i.dimension;
    s.distance = i.distance.expect("a distance Lethe scores");
    s.mapping = Some(Arc::new(i.mapping.clone()));
    s
}

fn unit(dim: usize, i: usize) -> Vec<f32> {
    let mut v = vec![0.0; dim];
    v[i % dim] = 1.0;
    v[(i + 1) % dim] = 0.2;
    let n = (1.0f32 + 0.04).sqrt();
    v.iter().map(|x| x / n).collect()
}

fn kw(key: &str, value: &str) -> Condition {
    Condition::matches(key, MatchValue::Keyword(value.to_owned()))
}

async fn raw_count(raw: &Qdrant, name: &str, filter: Option<Filter>) -> u64 {
    let mut request = CountPointsBuilder::new(name).exact(true);
    if let Some(f) = filter {
        request = request.filter(f);
    }
    raw.count(request).await.expect("raw count").result.expect("count result").count
}

async fn raw_count_tag(raw: &Qdrant, name: &str, key: &str, tag: &str) -> u64 {
    raw_count(raw, name, Some(Filter::must([kw(key, tag)]))).await
}

async fn upsert(raw: &Qdrant, name: &str, points: Vec<PointStruct>) {
    raw.upsert_points(UpsertPointsBuilder::new(name, points).wait(true)).await.expect("upsert");
}

fn payload(v: serde_json::Value) -> Payload {
    Payload::try_from(v).expect("payload object")
}

/// Reads every page, checking that no point comes twice.
async fn scroll_all(store: &Arc<dyn VectorStore>, s: &CollectionSpec, page: usize) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut offset = None;
    loop {
        let (points, next) = store.scroll(s, offset, page, false).await.expect("scroll");
        assert!(points.len() <= page);
        seen.extend(points.into_iter().map(|p| p.id));
        match next {
            Some(n) => offset = Some(n),
            None => break,
        }
    }
    let distinct: BTreeSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "a point came twice");
    seen
}

fn invalid_field(e: VectorStoreError) -> (String, String) {
    match e {
        VectorStoreError::InvalidMapping { field, message } => (field, message),
        other => panic!("expected InvalidMapping, got {other:?}"),
    }
}

/// langchain-qdrant `QdrantVectorStore` (dense mode): the unnamed vector
/// given as `{"": VectorParams}`, ids from `uuid4().hex`, payload
/// `{"page_content", "metadata"}` (metadata `None` when the caller gave none).
#[tokio::test]
async fn a_langchain_collection_is_counted_searched_and_erased_by_its_metadata_tag() {
    let (raw, store) = clients().await;
    let name = unique("attached_langchain");
    raw.create_collection(CreateCollectionBuilder::new(&name).vectors_config(VectorsConfig {
        config: Some(Config::ParamsMap(VectorParamsMap {
            map: [(String::new(), VectorParams::from(VectorParamsBuilder::new(4, QDistance::Cosine)))].into(),
        })),
    }))
    .await
    .expect("create");
    let ids: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
    let tags = [json!("alice"), json!(["alice", "bob"]), json!("bob"), json!("alice smith"), json!(null), json!(null)];
    let points = (0..6)
        .map(|i| {
            let metadata = match i {
                4 => json!({"source": "doc-4"}),
                5 => json!(null),
                _ => json!({"user_id": tags[i], "source": format!("doc-{i}")}),
            };
            PointStruct::new(
                ids[i].simple().to_string(),
                NamedVectors::default().add_vector("", Vector::new_dense(unit(4, i))),
                payload(json!({"page_content": format!("chunk {i}"), "metadata": metadata})),
            )
        })
        .collect();
    upsert(&raw, &name, points).await;

    let mapping = Mapping {
        preset: Some("langchain-qdrant".into()),
        id_column: String::new(),
        id_kind: IdKind::Text,
        vector: String::new(),
        text: Some(at(&["page_content"])),
        source: Some(at(&["metadata", "source"])),
        tags: at(&["metadata", "user_id"]),
        scope: None,
        timestamp: None,
    };
    let s = spec(&name, mapping);
    let i = store.inspect(&s, false).await.expect("inspect");
    assert_eq!((i.dimension, i.distance, i.points), (4, Some(Distance::Cosine), 6));
    assert_eq!(i.mapping.id_kind, IdKind::Uuid);
    assert_eq!(i.mapping.tags.kind, FieldKind::Payload);
    assert_eq!(i.mapping.text.as_ref().map(|f| f.kind), Some(FieldKind::Payload));
    assert_eq!(i.mapping.source.as_ref().map(|f| f.kind), Some(FieldKind::Payload));
    let request = format!(r#"PUT /collections/{name}/index {{"field_name":"metadata.user_id","field_schema":"keyword"}}"#);
    assert!(i.warnings.iter().any(|w| w.contains(&request)), "{:?}", i.warnings);
    assert!(i.created.is_empty());
    assert!(raw.collection_info(&name).await.unwrap().result.unwrap().payload_schema.is_empty(), "nothing created");
    let s = attached(s, &i);

    // Exact keyword counts: a string and an array element both match; no prefix, no full text.
    let count = |tag: &str| {
        let (store, s, tag) = (Arc::clone(&store), s.clone(), tag.to_owned());
        async move { store.count(&s, &Selector::by_tag(&tag)).await.expect("count") }
    };
    assert_eq!(count("alice").await, 2);
    assert_eq!(count("bob").await, 2);
    assert_eq!(count("alice smith").await, 1);
    assert_eq!(count("smith").await, 0);
    assert_eq!(count("ali").await, 0);
    assert_eq!(store.count_all(&s).await.unwrap(), 6);
    assert_eq!(
        store.count_tag_and_ids(&s, Some("alice"), &[ids[1], ids[2], ids[4], Uuid::new_v4()]).await.unwrap(),
        [2, 3, 4]
    );
    assert_eq!(store.count(&s, &Selector::by_ids(vec![])).await.unwrap(), 0, "an empty selector selects nothing");

    // Reads through the mapping.
    let got = store.retrieve(&s, &[ids[1], ids[5]], true).await.expect("retrieve");
    assert_eq!(got.len(), 2);
    let p1 = got.iter().find(|p| p.id == ids[1]).expect("p1");
    assert_eq!(p1.payload.subjects, vec!["alice".to_owned(), "bob".to_owned()]);
    assert_eq!((p1.payload.source_id.as_str(), p1.payload.text.as_deref()), ("doc-1", Some("chunk 1")));
    assert_eq!(p1.payload.tenant_id, s.tenant_id);
    assert_eq!(p1.vector.as_ref().map(Vec::len), Some(4));
    let p5 = got.iter().find(|p| p.id == ids[5]).expect("p5");
    assert!(p5.payload.subjects.is_empty());
    assert_eq!(p5.payload.source_id, ids[5].to_string(), "no source: the point is its own");
    let hits = store.search_exact(&s, &[unit(4, 3)], 0.99, 10).await.expect("search");
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![ids[3]]);
    assert_eq!(hits[0].payload.text.as_deref(), Some("chunk 3"));
    let mut all = scroll_all(&store, &s, 4).await;
    all.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(all, expected);

    // Keep: alice's points except those that also name bob.
    let keep_bob = Keep { tags: vec!["bob".into()], ids: vec![] };
    assert_eq!(store.count_keeping(&s, &Selector::by_tag("alice"), &keep_bob).await.unwrap(), 1);
    store.delete_keeping(&s, &Selector::by_tag("alice"), &keep_bob).await.expect("delete keeping");
    assert_eq!(raw_count_tag(&raw, &name, "metadata.user_id", "alice").await, 1, "the point shared with bob stays");
    assert_eq!(raw_count(&raw, &name, None).await, 5);
    // By tag, then by ids: exactly those go.
    store.delete(&s, &Selector::by_tag("alice")).await.expect("delete by tag");
    assert_eq!(raw_count_tag(&raw, &name, "metadata.user_id", "alice").await, 0);
    assert_eq!(raw_count_tag(&raw, &name, "metadata.user_id", "bob").await, 1);
    assert_eq!(raw_count_tag(&raw, &name, "metadata.user_id", "alice smith").await, 1);
    store.delete(&s, &Selector::by_ids(vec![ids[4], Uuid::new_v4()])).await.expect("delete by ids");
    assert_eq!(raw_count(&raw, &name, None).await, 3);
    assert_eq!(store.count_all(&s).await.unwrap(), 3);

    // Attach with create_indexes: the index the tag filter needs, and only that.
    let i = store.inspect(&s, true).await.expect("inspect creating indexes");
    assert_eq!(i.created.len(), 1, "{:?}", i.created);
    assert!(i.created[0].contains("metadata.user_id"));
    assert!(!i.warnings.iter().any(|w| w.contains("index")), "{:?}", i.warnings);
    let schema = raw.collection_info(&name).await.unwrap().result.unwrap().payload_schema;
    assert_eq!(schema.len(), 1);
    assert_eq!(schema["metadata.user_id"].data_type, PayloadSchemaType::Keyword as i32);
    let again = store.inspect(&s, true).await.expect("inspect again");
    assert!(again.created.is_empty() && again.warnings.is_empty(), "{again:?}");

    // Lethe writes nothing else to a framework's collection.
    assert!(matches!(store.upsert(&s, &[]).await, Err(VectorStoreError::Unsupported(_))));
    assert!(matches!(store.create_collection(&s).await, Err(VectorStoreError::Unsupported(_))));
    assert!(matches!(store.drop_collection(&s).await, Err(VectorStoreError::Unsupported(_))));
    assert!(matches!(store.create_staging(&s, "g2").await, Err(VectorStoreError::Unsupported(_))));
    assert!(matches!(store.reclaim(&s, true).await, Ok(PhysicalOutcome::Pending(_))));
    assert_eq!(raw_count(&raw, &name, None).await, 3);

    raw.delete_collection(&name).await.expect("drop");
}

/// llama-index-vector-stores-qdrant in hybrid mode: the dense vector named
/// `text-dense`, a sparse `text-sparse-new`, the `doc_id` index the store
/// creates, node metadata at the top level, the text only inside
/// `_node_content` (JSON text).
#[tokio::test]
async fn a_llamaindex_hybrid_collection_is_read_through_its_named_vector_and_node_content() {
    let (raw, store) = clients().await;
    let name = unique("attached_llamaindex");
    let mut dense = VectorsConfigBuilder::default();
    dense.add_named_vector_params("text-dense", VectorParamsBuilder::new(4, QDistance::Dot));
    let mut sparse = SparseVectorsConfigBuilder::default();
    sparse.add_named_vector_params("text-sparse-new", SparseVectorParamsBuilder::default());
    raw.create_collection(CreateCollectionBuilder::new(&name).vectors_config(dense).sparse_vectors_config(sparse))
        .await
        .expect("create");
    raw.create_field_index(CreateFieldIndexCollectionBuilder::new(&name, "doc_id", FieldType::Keyword).wait(true))
        .await
        .expect("doc_id index");
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let users = [json!("alice"), json!(["alice", "carol"]), json!("carol"), json!("dave")];
    let points = (0..4)
        .map(|i| {
            let node = json!({
                "id_": ids[i].to_string(), "embedding": null, "metadata": {"user_id": users[i]},
                "text": format!("node text {i}"), "class_name": "TextNode",
            });
            let content = if i == 3 { "{truncated".to_owned() } else { node.to_string() };
            let mut vectors = NamedVectors::default().add_vector("text-dense", Vector::new_dense(unit(4, i)));
            if i != 2 {
                vectors = vectors.add_vector("text-sparse-new", Vector::new_sparse(vec![1u32, 9], vec![0.3, 0.7]));
            }
            PointStruct::new(
                ids[i].to_string(),
                vectors,
                payload(json!({
                    "user_id": users[i], "_node_content": content, "_node_type": "TextNode",
                    "document_id": format!("doc-{}", i / 2), "doc_id": format!("doc-{}", i / 2),
                    "ref_doc_id": format!("doc-{}", i / 2),
                })),
            )
        })
        .collect();
    upsert(&raw, &name, points).await;

    let mapping = |vector: &str| Mapping {
        preset: Some("llamaindex-qdrant".into()),
        id_column: String::new(),
        id_kind: IdKind::Text,
        vector: vector.to_owned(),
        text: Some(Field { path: keys(&["_node_content"]), json_text_path: keys(&["text"]), ..Field::default() }),
        source: Some(at(&["ref_doc_id"])),
        tags: at(&["user_id"]),
        scope: None,
        timestamp: None,
    };
    // The unnamed vector does not exist here, and a sparse one is not what texts were embedded into.
    let (field, message) = invalid_field(store.inspect(&spec(&name, mapping("")), false).await.unwrap_err());
    assert_eq!(field, "vector");
    assert!(message.contains("no unnamed vector") && message.contains("`text-dense`"), "{message}");
    assert!(message.contains("`text-sparse-new` (sparse)"), "{message}");
    let (field, message) = invalid_field(store.inspect(&spec(&name, mapping("text-sparse-new")), false).await.unwrap_err());
    assert_eq!(field, "vector");
    assert!(message.contains("sparse"), "{message}");
    let (field, _) = invalid_field(store.inspect(&spec(&name, mapping("text")), false).await.unwrap_err());
    assert_eq!(field, "vector");

    let s = spec(&name, mapping("text-dense"));
    let i = store.inspect(&s, false).await.expect("inspect");
    assert_eq!((i.dimension, i.distance, i.points, i.mapping.id_kind), (4, Some(Distance::Dot), 4, IdKind::Uuid));
    assert!(
        i.warnings.iter().any(|w| w.contains(r#"{"field_name":"user_id","field_schema":"keyword"}"#)),
        "{:?}",
        i.warnings
    );
    let s = attached(s, &i);

    assert_eq!(store.count(&s, &Selector::by_tag("alice")).await.unwrap(), 2);
    assert_eq!(store.count(&s, &Selector::by_tag("carol")).await.unwrap(), 2);
    let got = store.retrieve(&s, &ids, true).await.expect("retrieve");
    assert_eq!(got.len(), 4);
    for p in &got {
        let n = ids.iter().position(|id| *id == p.id).expect("known id");
        assert_eq!(p.vector.as_deref(), Some(unit(4, n).as_slice()), "the named dense vector");
        assert_eq!(p.payload.source_id, format!("doc-{}", n / 2));
        let text = if n == 3 { None } else { Some(format!("node text {n}")) };
        assert_eq!(p.payload.text, text, "the text inside _node_content; none when it does not parse");
    }
    // Exact search on the named vector, with Dot scores.
    let hits = store.search_exact(&s, &[unit(4, 1), unit(4, 2)], 0.99, 10).await.expect("search");
    let found: BTreeSet<Uuid> = hits.iter().map(|h| h.id).collect();
    assert_eq!(found, BTreeSet::from([ids[1], ids[2]]));
    assert!(hits.iter().all(|h| h.score >= 0.99));
    assert_eq!(hits.iter().find(|h| h.id == ids[2]).map(|h| h.probe), Some(1));

    store.delete(&s, &Selector::by_tag("carol")).await.expect("delete carol");
    assert_eq!(raw_count_tag(&raw, &name, "user_id", "carol").await, 0);
    assert_eq!(raw_count_tag(&raw, &name, "user_id", "alice").await, 1, "alice's own point stays");
    assert_eq!(raw_count(&raw, &name, None).await, 2);
    store.delete(&s, &Selector::by_ids(vec![ids[3]])).await.expect("delete by id");
    assert_eq!(raw_count(&raw, &name, None).await, 1);
    raw.delete_collection(&name).await.expect("drop");
}

/// A hand-made collection: integer ids, the tag as a list under nested keys,
/// a numeric source, and two teams sharing it (the scope): one team's
/// attached collection never counts, reads or erases the other's points.
#[tokio::test]
async fn a_hand_made_collection_with_integer_ids_is_erased_within_its_scope() {
    let (raw, store) = clients().await;
    let name = unique("attached_handmade");
    raw.create_collection(CreateCollectionBuilder::new(&name).vectors_config(VectorParamsBuilder::new(3, QDistance::Euclid)))
        .await
        .expect("create");
    // ids 1..=10: odd ones are red, even ones blue; 1, 2, 3, 4 tag alice.
    let points = (1..=10u64)
        .map(|n| {
            let team = if n % 2 == 1 { "red" } else { "blue" };
            let owners = if n <= 4 { json!(["alice", "zed"]) } else { json!(["bob"]) };
            PointStruct::new(
                n,
                vec![n as f32, 0.0, 0.0],
                payload(json!({"acl": {"owners": owners}, "team": team, "doc": 100 + n, "body text": format!("text {n}")})),
            )
        })
        .collect();
    upsert(&raw, &name, points).await;
    let mapping = Mapping {
        preset: None,
        id_column: String::new(),
        id_kind: IdKind::Uuid,
        vector: String::new(),
        text: Some(at(&["body text"])),
        source: Some(at(&["doc"])),
        tags: at(&["acl", "owners"]),
        scope: Some(Scope { field: at(&["team"]), value: "red".into(), named: None }),
        timestamp: None,
    };
    let s = spec(&name, mapping);
    let collection_id = s.collection_id;
    let key = move |n: u64| NativeId::Int(n as i64).key(collection_id);
    let i = store.inspect(&s, false).await.expect("inspect");
    assert_eq!((i.dimension, i.distance, i.points, i.mapping.id_kind), (3, Some(Distance::Euclid), 5, IdKind::Int));
    assert_eq!(i.mapping.scope.as_ref().map(|s| s.field.kind), Some(FieldKind::Payload));
    assert!(i.warnings.iter().any(|w| w.contains(r#"{"field_name":"acl.owners","field_schema":"keyword"}"#)));
    assert!(i.warnings.iter().any(|w| w.contains(r#"{"field_name":"team","field_schema":"keyword"}"#)));
    let s = attached(s, &i);

    assert_eq!(store.count(&s, &Selector::by_tag("alice")).await.unwrap(), 2, "red 1 and 3, never blue 2 and 4");
    assert_eq!(store.count_all(&s).await.unwrap(), 5);
    assert_eq!(store.count_tag_and_ids(&s, Some("alice"), &[key(2), key(5), key(7)]).await.unwrap(), [2, 2, 4]);
    let got = store.retrieve(&s, &[key(3), key(4)], false).await.expect("retrieve");
    assert_eq!(got.len(), 1, "point 4 is blue's");
    assert_eq!(got[0].id, key(3));
    assert_eq!(got[0].payload.subjects, vec!["alice".to_owned(), "zed".to_owned()]);
    assert_eq!((got[0].payload.source_id.as_str(), got[0].payload.text.as_deref()), ("103", Some("text 3")));
    // Euclid: lower is closer; the threshold is a distance.
    let hits = store.search_exact(&s, &[vec![5.0, 0.0, 0.0]], 2.5, 10).await.expect("search");
    let found: Vec<Uuid> = hits.iter().map(|h| h.id).collect();
    assert_eq!(found, vec![key(5), key(3), key(7)], "red points within 2.5, nearest first");
    let mut all = scroll_all(&store, &s, 2).await;
    all.sort();
    let mut red: Vec<Uuid> = [1, 3, 5, 7, 9].into_iter().map(key).collect();
    red.sort();
    assert_eq!(all, red);

    store.delete(&s, &Selector::by_tag("alice")).await.expect("delete by tag");
    assert_eq!(raw_count_tag(&raw, &name, "acl.owners", "alice").await, 2, "blue's alice points stay");
    store.delete(&s, &Selector::by_ids(vec![key(5), key(6)])).await.expect("delete by ids");
    assert_eq!(raw_count(&raw, &name, Some(Filter::must([Condition::has_id([PointId::from(6u64)])]))).await, 1, "blue's 6 stays");
    assert_eq!(raw_count(&raw, &name, Some(Filter::must([kw("team", "red")]))).await, 2, "red 7 and 9");
    assert_eq!(raw_count(&raw, &name, None).await, 7);
    raw.delete_collection(&name).await.expect("drop");
}

/// What Attach refuses, and what it reports about collections it accepts.
#[tokio::test]
async fn inspect_refuses_a_store_that_does_not_match_its_mapping() {
    let (raw, store) = clients().await;
    let mapping = Mapping {
        preset: None,
        id_column: String::new(),
        id_kind: IdKind::Uuid,
        vector: String::new(),
        text: Some(at(&["page_content"])),
        source: None,
        tags: at(&["metadata", "user_id"]),
        scope: None,
        timestamp: None,
    };
    let missing = unique("attached_missing");
    let (field, message) = invalid_field(store.inspect(&spec(&missing, mapping.clone()), false).await.unwrap_err());
    assert_eq!(field, "target");
    assert!(message.contains(&missing), "{message}");

    let name = unique("attached_refused");
    raw.create_collection(CreateCollectionBuilder::new(&name).vectors_config(VectorParamsBuilder::new(2, QDistance::Cosine)))
        .await
        .expect("create");
    // Empty: nothing to check the tag against yet.
    let i = store.inspect(&spec(&name, mapping.clone()), false).await.expect("empty collection");
    assert_eq!(i.points, 0);

    // No point has the tag path (the person's id is elsewhere).
    let u = [Uuid::new_v4(), Uuid::new_v4()];
    upsert(&raw, &name, vec![
        PointStruct::new(u[0].to_string(), vec![1.0, 0.0], payload(json!({"page_content": "a", "metadata": {"user": "alice"}}))),
        PointStruct::new(u[1].to_string(), vec![0.0, 1.0], payload(json!({"page_content": "b", "metadata": {"user_id": []}}))),
    ])
    .await;
    let (field, message) = invalid_field(store.inspect(&spec(&name, mapping.clone()), false).await.unwrap_err());
    assert_eq!(field, "tags");
    assert_eq!(message, "no point in the collection has `metadata.user_id`");

    // Numbers at the tag path can never match a keyword.
    upsert(&raw, &name, vec![PointStruct::new(7u64, vec![1.0, 1.0], payload(json!({"metadata": {"user_id": 42}})))]).await;
    let (field, message) = invalid_field(store.inspect(&spec(&name, mapping.clone()), false).await.unwrap_err());
    assert_eq!(field, "tags");
    assert!(message.contains("number"), "{message}");

    // Integer and UUID ids side by side: both kinds are read and erased.
    upsert(&raw, &name, vec![PointStruct::new(7u64, vec![1.0, 1.0], payload(json!({"metadata": {"user_id": "alice"}})))]).await;
    let s = spec(&name, mapping);
    let i = store.inspect(&s, false).await.expect("inspect");
    assert!(i.warnings.iter().any(|w| w.contains("both integer and UUID")), "{:?}", i.warnings);
    assert!(i.warnings.iter().all(|w| !w.contains("page_content")), "most points have text: {:?}", i.warnings);
    let s = attached(s, &i);
    let mut all = scroll_all(&store, &s, 1).await;
    all.sort();
    let mut expected = vec![u[0], u[1], NativeId::Int(7).key(s.collection_id)];
    expected.sort();
    assert_eq!(all, expected);
    store.delete(&s, &Selector::by_ids(vec![NativeId::Int(7).key(s.collection_id), u[1]])).await.expect("delete both kinds");
    assert_eq!(raw_count(&raw, &name, None).await, 1);
    raw.delete_collection(&name).await.expect("drop");
}
