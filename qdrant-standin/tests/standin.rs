//! End-to-end test of the stand-in through the official qdrant-client 1.20 (gRPC).

use std::time::Duration;

use qdrant_client::qdrant::collections_client::CollectionsClient;
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::{
    AliasOperations, ChangeAliases, Condition, CountPointsBuilder, CreateAlias, CreateAliasBuilder,
    CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, DeleteAlias, DeletePointsBuilder,
    Distance, FieldType, Filter, GetPointsBuilder, KeywordIndexParamsBuilder,
    OptimizersConfigDiffBuilder, PayloadIncludeSelector, PointId, PointStruct, PointsIdsList,
    QueryPointsBuilder, ScrollPointsBuilder, SearchParamsBuilder, SearchPointsBuilder,
    UpdateCollectionBuilder, UpdateStatus, UpsertPointsBuilder, VectorParamsBuilder,
    alias_operations::Action,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde_json::json;
use tonic::Code;

const UUIDS: [&str; 3] = [
    "5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
    "936ef29f-2b8e-4d3a-8b35-1b7b5cf1b1a0",
    "b7d3a0d4-0f5e-4c67-9f4d-6a1d3c2e8f11",
];

fn client(url: &str) -> Qdrant {
    Qdrant::from_url(url)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

fn code(e: QdrantError) -> Code {
    match e {
        QdrantError::ResponseError { status } => status.code(),
        other => panic!("unexpected error kind: {other}"),
    }
}

fn kw(key: &str, value: &str) -> Condition {
    // Always an explicit keyword match (From<String> would become a full-text match).
    Condition::matches(key, MatchValue::Keyword(value.to_string()))
}

async fn count(c: &Qdrant, coll: &str, filter: Filter) -> u64 {
    c.count(CountPointsBuilder::new(coll).filter(filter).exact(true))
        .await
        .expect("count")
        .result
        .expect("count result")
        .count
}

fn points() -> Vec<PointStruct> {
    let mut v = Vec::new();
    for i in 1..=5u64 {
        v.push(PointStruct::new(
            i,
            vec![1.0, 0.0, 0.0, 0.0],
            Payload::try_from(
                json!({"subjects": ["Tim Belden", "Tim"], "tenant_id": "t1", "n": i}),
            )
            .unwrap(),
        ));
    }
    for u in UUIDS {
        v.push(PointStruct::new(
            u,
            vec![0.0, 1.0, 0.0, 0.0],
            Payload::try_from(json!({"subjects": ["Tim"], "tenant_id": "t1"})).unwrap(),
        ));
    }
    // Scalar (non-array) payload value and a different tenant.
    v.push(PointStruct::new(
        9u64,
        vec![0.0, 0.0, 1.0, 0.0],
        Payload::try_from(json!({"subjects": "Tim Belden", "tenant_id": "t2"})).unwrap(),
    ));
    v.push(PointStruct::new(
        10u64,
        vec![0.7, 0.7, 0.0, 0.0],
        Payload::try_from(json!({"subjects": ["Jeff Skilling"], "tenant_id": "t2"})).unwrap(),
    ));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_through_qdrant_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = qdrant_standin::start(0, dir.path().to_path_buf())
        .await
        .unwrap();
    assert_ne!(server.port(), 0);
    let c = client(&server.url());

    let health = c.health_check().await.unwrap();
    assert_eq!(health.version, "1.20.0");

    // --- collection + indexes -----------------------------------------------------------
    c.create_collection(
        CreateCollectionBuilder::new("docs_v1")
            .vectors_config(VectorParamsBuilder::new(4, Distance::Cosine))
            .optimizers_config(
                OptimizersConfigDiffBuilder::default()
                    .deleted_threshold(0.0)
                    .vacuum_min_vector_number(100),
            ),
    )
    .await
    .unwrap();
    let dup = c
        .create_collection(
            CreateCollectionBuilder::new("docs_v1")
                .vectors_config(VectorParamsBuilder::new(4, Distance::Cosine)),
        )
        .await
        .unwrap_err();
    assert_eq!(code(dup), Code::InvalidArgument);
    // Qdrant's validation bound on vacuum_min_vector_number is kept.
    let bad = c
        .create_collection(
            CreateCollectionBuilder::new("bad")
                .vectors_config(VectorParamsBuilder::new(4, Distance::Cosine))
                .optimizers_config(
                    OptimizersConfigDiffBuilder::default().vacuum_min_vector_number(1),
                ),
        )
        .await
        .unwrap_err();
    assert_eq!(code(bad), Code::InvalidArgument);
    assert!(c.collection_exists("docs_v1").await.unwrap());
    assert!(!c.collection_exists("nope").await.unwrap());

    for (field, tenant) in [("tenant_id", true), ("subjects", false)] {
        let r = c
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new("docs_v1", field, FieldType::Keyword)
                    .field_index_params(
                        KeywordIndexParamsBuilder::default()
                            .is_tenant(tenant)
                            .build(),
                    )
                    .wait(true),
            )
            .await
            .unwrap();
        assert_eq!(r.result.unwrap().status, UpdateStatus::Completed as i32);
    }

    // --- upsert + exact keyword semantics -------------------------------------------------
    let r = c
        .upsert_points(UpsertPointsBuilder::new("docs_v1", points()).wait(true))
        .await
        .unwrap();
    assert_eq!(r.result.unwrap().status, UpdateStatus::Completed as i32);
    let wrong_dim = c
        .upsert_points(
            UpsertPointsBuilder::new(
                "docs_v1",
                vec![PointStruct::new(99u64, vec![1.0, 0.0], Payload::new())],
            )
            .wait(true),
        )
        .await
        .unwrap_err();
    assert_eq!(code(wrong_dim), Code::InvalidArgument);

    assert_eq!(count(&c, "docs_v1", Filter::default()).await, 10);
    assert_eq!(
        count(&c, "docs_v1", Filter::must([kw("subjects", "Tim Belden")])).await,
        6
    );
    assert_eq!(
        count(&c, "docs_v1", Filter::must([kw("subjects", "Tim")])).await,
        8
    );
    assert_eq!(
        count(
            &c,
            "docs_v1",
            Filter::must([kw("subjects", "Tim Belden Jr")])
        )
        .await,
        0
    );
    let any = Condition::matches(
        "subjects",
        vec!["Jeff Skilling".to_string(), "Tim Belden".to_string()],
    );
    assert_eq!(count(&c, "docs_v1", Filter::must([any])).await, 7);
    let t1_not_belden = Filter {
        must: vec![kw("tenant_id", "t1")],
        must_not: vec![kw("subjects", "Tim Belden")],
        ..Default::default()
    };
    assert_eq!(count(&c, "docs_v1", t1_not_belden).await, 3);
    let range = Filter::must([Condition::range(
        "n",
        qdrant_client::qdrant::Range {
            gte: Some(2.0),
            lt: Some(4.0),
            ..Default::default()
        },
    )]);
    assert_eq!(count(&c, "docs_v1", range).await, 2);
    let has_id = Filter::must([Condition::has_id([
        PointId::from(1u64),
        PointId::from(UUIDS[0]),
    ])]);
    assert_eq!(count(&c, "docs_v1", has_id).await, 2);
    assert_eq!(
        count(&c, "docs_v1", Filter::must([Condition::is_empty("n")])).await,
        5
    );
    // Unsupported conditions are rejected, never ignored.
    let geo = Filter::must([Condition::geo_radius(
        "loc",
        qdrant_client::qdrant::GeoRadius {
            center: Some(qdrant_client::qdrant::GeoPoint { lon: 0.0, lat: 0.0 }),
            radius: 1.0,
        },
    )]);
    let e = c
        .count(CountPointsBuilder::new("docs_v1").filter(geo).exact(true))
        .await
        .unwrap_err();
    assert_eq!(code(e), Code::Unimplemented);
    let e = c
        .count(CountPointsBuilder::new("missing"))
        .await
        .unwrap_err();
    assert_eq!(code(e), Code::NotFound);

    // --- scroll with vectors + payload selection -----------------------------------------
    let mut offset: Option<PointId> = None;
    let mut seen = Vec::new();
    loop {
        let mut req = ScrollPointsBuilder::new("docs_v1")
            .filter(Filter::must([kw("tenant_id", "t1")]))
            .limit(3)
            .with_payload(PayloadIncludeSelector::new(vec!["tenant_id".to_string()]))
            .with_vectors(true);
        if let Some(o) = offset.take() {
            req = req.offset(o);
        }
        let page = c.scroll(req).await.unwrap();
        for p in &page.result {
            assert_eq!(p.payload.len(), 1, "only the included key");
            assert!(p.payload.contains_key("tenant_id"));
            let v = p.vectors.as_ref().unwrap().get_vector().unwrap();
            let qdrant_client::qdrant::vector_output::Vector::Dense(d) = v else {
                panic!("dense vector expected")
            };
            assert_eq!(d.data.len(), 4);
            seen.push(p.id.clone().unwrap());
        }
        match page.next_page_offset {
            Some(o) => offset = Some(o),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    assert!(
        seen.contains(&PointId::from(UUIDS[2])),
        "uuid ids round-trip hyphenated"
    );

    let got = c
        .get_points(
            GetPointsBuilder::new(
                "docs_v1",
                vec![PointId::from(1u64), PointId::from(12345u64)],
            )
            .with_payload(true)
            .with_vectors(true),
        )
        .await
        .unwrap();
    assert_eq!(got.result.len(), 1, "missing ids are skipped");
    let subjects = got.result[0].payload.get("subjects").unwrap().clone();
    let subjects: serde_json::Value = subjects.into_json();
    assert_eq!(subjects, json!(["Tim Belden", "Tim"]));

    // --- query / search with score threshold ---------------------------------------------
    let hits = c
        .query(
            QueryPointsBuilder::new("docs_v1")
                .query(vec![1.0, 0.0, 0.0, 0.0])
                .score_threshold(0.9)
                .limit(50)
                .with_payload(true)
                .params(SearchParamsBuilder::default().exact(true)),
        )
        .await
        .unwrap()
        .result;
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| (h.score - 1.0).abs() < 1e-5));
    let hits = c
        .query(
            QueryPointsBuilder::new("docs_v1")
                .query(vec![1.0, 0.0, 0.0, 0.0])
                .score_threshold(0.5)
                .limit(50)
                .params(SearchParamsBuilder::default().exact(true)),
        )
        .await
        .unwrap()
        .result;
    assert_eq!(hits.len(), 6, "point 10 has cos 0.707");
    let hits = c
        .query(
            QueryPointsBuilder::new("docs_v1")
                .query(vec![1.0, 0.0, 0.0, 0.0])
                .filter(Filter::must([kw("tenant_id", "t2")]))
                .limit(50),
        )
        .await
        .unwrap()
        .result;
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].id, Some(PointId::from(10u64)));
    let found = c
        .search_points(
            SearchPointsBuilder::new("docs_v1", vec![0.0, 1.0, 0.0, 0.0], 10).score_threshold(0.99),
        )
        .await
        .unwrap()
        .result;
    assert_eq!(found.len(), 3);
    let e = c
        .query(QueryPointsBuilder::new("docs_v1").query(vec![1.0, 0.0]))
        .await
        .unwrap_err();
    assert_eq!(code(e), Code::InvalidArgument);

    // --- delete by filter (wait) + exact count ---------------------------------------------
    let erase = Filter::must([kw("tenant_id", "t1"), kw("subjects", "Tim Belden")]);
    let r = c
        .delete_points(
            DeletePointsBuilder::new("docs_v1")
                .points(erase.clone())
                .wait(true),
        )
        .await
        .unwrap();
    assert_eq!(r.result.unwrap().status, UpdateStatus::Completed as i32);
    assert_eq!(count(&c, "docs_v1", erase).await, 0);
    assert_eq!(
        count(&c, "docs_v1", Filter::must([kw("subjects", "Tim Belden")])).await,
        1
    );
    assert_eq!(
        count(&c, "docs_v1", Filter::must([kw("tenant_id", "t1")])).await,
        3
    );

    // --- delete by ids -----------------------------------------------------------------
    c.delete_points(
        DeletePointsBuilder::new("docs_v1")
            .points(PointsIdsList {
                ids: vec![PointId::from(UUIDS[0]), PointId::from(UUIDS[1])],
            })
            .wait(true),
    )
    .await
    .unwrap();
    assert_eq!(
        count(&c, "docs_v1", Filter::must([kw("tenant_id", "t1")])).await,
        1
    );
    assert_eq!(count(&c, "docs_v1", Filter::default()).await, 3);

    // UpdateCollection runs the optimizer synchronously.
    c.update_collection(
        UpdateCollectionBuilder::new("docs_v1")
            .optimizers_config(OptimizersConfigDiffBuilder::default().deleted_threshold(0.0)),
    )
    .await
    .unwrap();
    let info = c.collection_info("docs_v1").await.unwrap().result.unwrap();
    assert_eq!(
        info.status,
        qdrant_client::qdrant::CollectionStatus::Green as i32
    );
    assert!(info.payload_schema.contains_key("subjects"));
    assert_eq!(count(&c, "docs_v1", Filter::default()).await, 3);

    // --- aliases: atomic swap with two actions in one request -----------------------------
    c.create_collection(
        CreateCollectionBuilder::new("docs_v2")
            .vectors_config(VectorParamsBuilder::new(4, Distance::Cosine)),
    )
    .await
    .unwrap();
    c.upsert_points(
        UpsertPointsBuilder::new(
            "docs_v2",
            vec![PointStruct::new(
                1u64,
                vec![1.0, 0.0, 0.0, 0.0],
                Payload::new(),
            )],
        )
        .wait(true),
    )
    .await
    .unwrap();
    c.create_alias(CreateAliasBuilder::new("docs_v1", "docs"))
        .await
        .unwrap();
    assert_eq!(count(&c, "docs", Filter::default()).await, 3);

    let mut raw = CollectionsClient::connect(server.url()).await.unwrap();
    let swap = |target: &str| ChangeAliases {
        timeout: Some(30),
        actions: vec![
            AliasOperations {
                action: Some(Action::DeleteAlias(DeleteAlias {
                    alias_name: "docs".into(),
                })),
            },
            AliasOperations {
                action: Some(Action::CreateAlias(CreateAlias {
                    collection_name: target.into(),
                    alias_name: "docs".into(),
                })),
            },
        ],
    };
    raw.update_aliases(swap("docs_v2")).await.unwrap();
    assert_eq!(count(&c, "docs", Filter::default()).await, 1);
    // A failing request changes nothing (the delete action is not applied alone).
    let e = raw
        .update_aliases(swap("no_such_collection"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let aliases = c.list_aliases().await.unwrap().aliases;
    assert_eq!(aliases.len(), 1);
    assert_eq!(aliases[0].alias_name, "docs");
    assert_eq!(aliases[0].collection_name, "docs_v2");
    assert_eq!(count(&c, "docs", Filter::default()).await, 1);

    // --- restart persistence -----------------------------------------------------------
    drop(c);
    drop(raw);
    server.stop().await;
    let server = qdrant_standin::start(0, dir.path().to_path_buf())
        .await
        .unwrap();
    let c = client(&server.url());
    assert_eq!(count(&c, "docs_v1", Filter::default()).await, 3);
    assert_eq!(
        count(&c, "docs_v1", Filter::must([kw("subjects", "Tim Belden")])).await,
        1
    );
    assert_eq!(
        count(&c, "docs", Filter::default()).await,
        1,
        "alias survives restart"
    );
    let info = c.collection_info("docs_v1").await.unwrap().result.unwrap();
    assert!(
        info.payload_schema.contains_key("tenant_id"),
        "index survives restart"
    );
    let got = c
        .get_points(
            GetPointsBuilder::new("docs_v1", vec![PointId::from(UUIDS[2])]).with_vectors(true),
        )
        .await
        .unwrap();
    assert_eq!(got.result.len(), 1);

    // Deleting a collection removes its aliases and its directory.
    assert!(c.delete_collection("docs_v2").await.unwrap().result);
    assert!(!c.delete_collection("docs_v2").await.unwrap().result);
    assert!(c.list_aliases().await.unwrap().aliases.is_empty());
    assert!(!dir.path().join("collections/docs_v2").exists());
    assert!(dir.path().join("collections/docs_v1/segments").is_dir());
    let names: Vec<_> = c
        .list_collections()
        .await
        .unwrap()
        .collections
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, vec!["docs_v1".to_string()]);
    drop(c);
    server.stop().await;
}

/// The shapes frameworks create: LlamaIndex hybrid (a named dense vector `text-dense` and a
/// sparse `text-sparse-new`), LangChain hybrid (the unnamed dense vector plus a sparse one),
/// UUID and integer ids, tags at nested payload keys as strings and arrays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_and_sparse_vectors_as_frameworks_create_them() {
    use qdrant_client::qdrant::vectors_config::Config;
    use qdrant_client::qdrant::vectors_output::VectorsOptions;
    use qdrant_client::qdrant::{
        NamedVectors, SparseVectorParamsBuilder, SparseVectorsConfigBuilder, Vector,
        VectorsConfigBuilder,
    };

    let dir = tempfile::tempdir().unwrap();
    let server = qdrant_standin::start(0, dir.path().to_path_buf())
        .await
        .unwrap();
    let c = client(&server.url());

    // LlamaIndex hybrid.
    let mut dense = VectorsConfigBuilder::default();
    dense.add_named_vector_params("text-dense", VectorParamsBuilder::new(4, Distance::Dot));
    let mut sparse = SparseVectorsConfigBuilder::default();
    sparse.add_named_vector_params("text-sparse-new", SparseVectorParamsBuilder::default());
    c.create_collection(
        CreateCollectionBuilder::new("llama")
            .vectors_config(dense)
            .sparse_vectors_config(sparse),
    )
    .await
    .unwrap();
    let info = c.collection_info("llama").await.unwrap().result.unwrap();
    let params = info.config.unwrap().params.unwrap();
    match params.vectors_config.and_then(|v| v.config) {
        Some(Config::ParamsMap(m)) => {
            assert_eq!(m.map.len(), 1);
            assert_eq!(m.map["text-dense"].size, 4);
            assert_eq!(m.map["text-dense"].distance, Distance::Dot as i32);
        }
        other => panic!("expected named vectors, got {other:?}"),
    }
    assert!(params.sparse_vectors_config.unwrap().map.contains_key("text-sparse-new"));

    let named = |d: Vec<f32>, with_sparse: bool| {
        let mut v = NamedVectors::default().add_vector("text-dense", Vector::new_dense(d));
        if with_sparse {
            v = v.add_vector("text-sparse-new", Vector::new_sparse(vec![3u32, 7], vec![0.5, 0.25]));
        }
        v
    };
    let pts = vec![
        PointStruct::new(
            UUIDS[0],
            named(vec![1.0, 0.0, 0.0, 0.0], true),
            Payload::try_from(json!({"user_id": "Tim Belden", "_node_content": "{\"text\": \"a\"}"})).unwrap(),
        ),
        // A point without its sparse vector (LlamaIndex writes those when the encoder gave none).
        PointStruct::new(
            UUIDS[1],
            named(vec![0.0, 1.0, 0.0, 0.0], false),
            Payload::try_from(json!({"user_id": ["Tim Belden", "Ann"]})).unwrap(),
        ),
    ];
    let r = c
        .upsert_points(UpsertPointsBuilder::new("llama", pts).wait(true))
        .await
        .unwrap();
    assert_eq!(r.result.unwrap().status, UpdateStatus::Completed as i32);
    // The unnamed vector does not exist here; a wrong size is refused.
    let e = c
        .upsert_points(UpsertPointsBuilder::new(
            "llama",
            vec![PointStruct::new(1u64, vec![1.0, 0.0, 0.0, 0.0], Payload::new())],
        ))
        .await
        .unwrap_err();
    assert_eq!(code(e), Code::InvalidArgument);
    let e = c
        .upsert_points(UpsertPointsBuilder::new(
            "llama",
            vec![PointStruct::new(1u64, named(vec![1.0, 0.0], false), Payload::new())],
        ))
        .await
        .unwrap_err();
    assert_eq!(code(e), Code::InvalidArgument);

    assert_eq!(count(&c, "llama", Filter::must([kw("user_id", "Tim Belden")])).await, 2);
    assert_eq!(count(&c, "llama", Filter::must([kw("user_id", "Ann")])).await, 1);

    // Search the named vector; the unnamed one does not exist.
    let hits = c
        .query(
            QueryPointsBuilder::new("llama")
                .query(vec![0.0, 1.0, 0.0, 0.0])
                .using("text-dense")
                .params(SearchParamsBuilder::default().exact(true))
                .score_threshold(0.5),
        )
        .await
        .unwrap()
        .result;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, Some(PointId::from(UUIDS[1])));
    let e = c
        .query(QueryPointsBuilder::new("llama").query(vec![0.0, 1.0, 0.0, 0.0]))
        .await
        .unwrap_err();
    assert_eq!(code(e), Code::InvalidArgument);

    // Reading one named vector back.
    let got = c
        .get_points(
            GetPointsBuilder::new("llama", vec![PointId::from(UUIDS[0])])
                .with_vectors(qdrant_client::qdrant::VectorsSelector { names: vec!["text-dense".into()] }),
        )
        .await
        .unwrap()
        .result;
    match got[0].vectors.clone().and_then(|v| v.vectors_options) {
        Some(VectorsOptions::Vectors(m)) => {
            assert_eq!(m.vectors.len(), 1);
            assert!(m.vectors.contains_key("text-dense"));
        }
        other => panic!("expected named vectors, got {other:?}"),
    }

    // LangChain hybrid: the unnamed dense vector and a sparse one; integer ids; tag nested.
    let mut sparse = SparseVectorsConfigBuilder::default();
    sparse.add_named_vector_params("langchain-sparse", SparseVectorParamsBuilder::default());
    c.create_collection(
        CreateCollectionBuilder::new("lc")
            .vectors_config(VectorParamsBuilder::new(4, Distance::Cosine))
            .sparse_vectors_config(sparse),
    )
    .await
    .unwrap();
    let info = c.collection_info("lc").await.unwrap().result.unwrap();
    let params = info.config.unwrap().params.unwrap();
    assert!(matches!(params.vectors_config.and_then(|v| v.config), Some(Config::Params(p)) if p.size == 4));
    let pts = vec![
        PointStruct::new(
            7u64,
            NamedVectors::default()
                .add_vector("", Vector::new_dense(vec![1.0, 0.0, 0.0, 0.0]))
                .add_vector("langchain-sparse", Vector::new_sparse(vec![1u32], vec![1.0])),
            Payload::try_from(json!({"page_content": "x", "metadata": {"user_id": "Ann"}})).unwrap(),
        ),
        PointStruct::new(
            UUIDS[2],
            vec![0.0, 1.0, 0.0, 0.0],
            Payload::try_from(json!({"page_content": "y", "metadata": {"user_id": ["Ann", "Bob"]}})).unwrap(),
        ),
    ];
    c.upsert_points(UpsertPointsBuilder::new("lc", pts).wait(true))
        .await
        .unwrap();
    assert_eq!(count(&c, "lc", Filter::must([kw("metadata.user_id", "Ann")])).await, 2);
    assert_eq!(count(&c, "lc", Filter::must([kw("metadata.user_id", "Bob")])).await, 1);
    // Integer ids sort before UUIDs, in scroll order.
    let page = c
        .scroll(ScrollPointsBuilder::new("lc").limit(1))
        .await
        .unwrap();
    assert_eq!(page.result[0].id, Some(PointId::from(7u64)));
    assert_eq!(page.next_page_offset, Some(PointId::from(UUIDS[2])));
    let hits = c
        .query(
            QueryPointsBuilder::new("lc")
                .query(vec![1.0, 0.0, 0.0, 0.0])
                .params(SearchParamsBuilder::default().exact(true))
                .score_threshold(0.9),
        )
        .await
        .unwrap()
        .result;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, Some(PointId::from(7u64)));

    drop(c);
    server.stop().await;
}
