//! The attached pgvector store against tables made with the exact DDL of
//! LangChain (older `PGVector`'s shared table, `PGVectorStore`), LlamaIndex
//! and hand-made pipelines, in a fresh database: exact counts by tag (string
//! and array rows alike, never another scope's), deletes by tag and by ids
//! of every id kind, keep, scroll, search, and Attach's inspection. Outcomes
//! are checked by SQL on the tables themselves.

use std::collections::HashSet;
use std::sync::Arc;

use lethe::domain::{
    Backend, CollectionName, CollectionSpec, Distance, Field, FieldKind, IdKind, Mapping, NativeId, Scope,
};
use lethe::vector_store::{
    AttachedPgStore, Inspection, Keep, Selector, VectorStore, VectorStoreError, langchain_collection_uuid, table_exists,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::fresh_database;

async fn database() -> PgPool {
    let url = fresh_database().await;
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(5).connect(&url).await.expect("connect");
    lethe::store::migrate(&pool).await.expect("migrate");
    pool
}

async fn exec(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sql).execute(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn rows(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn mapping(id: &str, tags: Field) -> Mapping {
    Mapping {
        preset: None,
        id_column: id.into(),
        id_kind: IdKind::Uuid,
        vector: "embedding".into(),
        text: None,
        source: None,
        tags,
        scope: None,
        timestamp: None,
    }
}

fn spec(table: &str, mapping: Mapping) -> CollectionSpec {
    CollectionSpec {
        collection_id: Uuid::new_v4(),
        tenant_id: Uuid::new_v4(),
        name: CollectionName::parse("name", "attached").expect("name"),
        backend: Backend::Pgvector,
        backend_name: table.into(),
        dimension: 0,
        distance: Distance::Cosine,
        embedding_model: "test".into(),
        store_text: true,
        retention_days: 0,
        screening: lethe::domain::Screening::Accept,
        created_at: chrono::Utc::now(),
        mapping: Some(Arc::new(mapping)),
    }
}

/// Inspects as Attach does and returns the spec with the checked mapping.
async fn attach(store: &AttachedPgStore, spec: CollectionSpec, create_indexes: bool) -> (CollectionSpec, Inspection) {
    let ins = store.inspect(&spec, create_indexes).await.expect("inspect");
    let spec = CollectionSpec { mapping: Some(Arc::new(ins.mapping.clone())), dimension: ins.dimension, ..spec };
    (spec, ins)
}

fn key(s: &CollectionSpec, id: NativeId) -> Uuid {
    id.key(s.collection_id)
}

fn text_key(s: &CollectionSpec, id: &str) -> Uuid {
    key(s, NativeId::Text(id.into()))
}

/// The ids in `attached_point_ids` for the collection, in byte order.
async fn lookups(pool: &PgPool, spec: &CollectionSpec) -> Vec<String> {
    let mut ids: Vec<String> = sqlx::query_scalar("SELECT native_id FROM attached_point_ids WHERE collection_id = $1")
        .bind(spec.collection_id)
        .fetch_all(pool)
        .await
        .expect("lookups");
    ids.sort();
    ids
}

/// Every point, page by page; asserts no key comes twice.
async fn scroll_all(
    store: &AttachedPgStore,
    spec: &CollectionSpec,
    page: usize,
) -> Vec<lethe::vector_store::StoredPoint> {
    let (mut all, mut offset, mut seen) = (Vec::new(), None, HashSet::new());
    loop {
        let (points, next) = store.scroll(spec, offset, page, false).await.expect("scroll");
        assert!(points.len() <= page);
        for p in points {
            assert!(seen.insert(p.id), "point {} returned twice", p.id);
            all.push(p);
        }
        match next {
            Some(n) => offset = Some(n),
            None => return all,
        }
    }
}

fn invalid_field(err: VectorStoreError) -> (String, String) {
    match err {
        VectorStoreError::InvalidMapping { field, message } => (field, message),
        other => panic!("expected InvalidMapping, got {other:?}"),
    }
}

const LANGCHAIN_DDL: &str = r#"
CREATE TABLE langchain_pg_collection (uuid uuid PRIMARY KEY, name varchar, cmetadata json);
CREATE TABLE langchain_pg_embedding (
    id varchar PRIMARY KEY,
    collection_id uuid REFERENCES langchain_pg_collection (uuid) ON DELETE CASCADE,
    embedding vector,
    document varchar,
    cmetadata jsonb
);
CREATE INDEX ix_cmetadata_gin ON langchain_pg_embedding USING gin (cmetadata jsonb_path_ops);
"#;

#[tokio::test]
async fn langchain_shared_table_is_counted_and_erased_within_its_collection_only() {
    let pool = database().await;
    assert!(!table_exists(&pool, "langchain_pg_embedding").await.expect("exists"));
    assert_eq!(langchain_collection_uuid(&pool, "docs").await.expect("no table yet"), None);
    exec(&pool, LANGCHAIN_DDL).await;
    let (docs, other) = (Uuid::new_v4(), Uuid::new_v4());
    exec(
        &pool,
        &format!(
            r#"
        INSERT INTO langchain_pg_collection VALUES ('{docs}', 'docs', '{{}}'), ('{other}', 'other', '{{}}');
        INSERT INTO langchain_pg_embedding VALUES
          ('{a1}', '{docs}', '[1,0,0]', 'Alice one', '{{"user_id": "alice", "source": "a.pdf"}}'),
          ('{a2}', '{docs}', '[0,1,0]', 'Alice and Bob', '{{"user_id": ["alice", "bob"], "source": "b.pdf"}}'),
          ('alice@example.com#3', '{docs}', '[0,0,1]', 'Alice three', '{{"user_id": "alice"}}'),
          ('{b1}', '{docs}', '[1,1,0]', 'Bob', '{{"user_id": "bob", "source": 42}}'),
          ('{u1}', '{docs}', '[1,0,1]', 'Nobody', '{{"source": "c.pdf"}}'),
          ('{o1}', '{other}', '[1,0,0]', 'Alice elsewhere', '{{"user_id": "alice"}}'),
          ('{o2}', '{other}', '[0,1,0,1]', 'Alice elsewhere, 4 dims', '{{"user_id": ["alice"]}}');
        "#,
            a1 = Uuid::new_v4(),
            a2 = Uuid::new_v4(),
            b1 = Uuid::new_v4(),
            u1 = Uuid::new_v4(),
            o1 = Uuid::new_v4(),
            o2 = Uuid::new_v4(),
        ),
    )
    .await;
    assert!(table_exists(&pool, "langchain_pg_embedding").await.expect("exists"));
    assert!(table_exists(&pool, "public.langchain_pg_embedding").await.expect("exists"));
    assert_eq!(langchain_collection_uuid(&pool, "docs").await.expect("lookup"), Some(docs));
    assert_eq!(langchain_collection_uuid(&pool, "missing").await.expect("lookup"), None);

    let store = AttachedPgStore::new(pool.clone());
    let m = Mapping {
        text: Some(Field::column("document")),
        source: Some(Field::at("cmetadata", &["source"])),
        scope: Some(Scope { field: Field::column("collection_id"), value: docs.to_string(), named: None }),
        timestamp: None,
        ..mapping("id", Field::at("cmetadata", &["user_id"]))
    };
    let (s, ins) = attach(&store, spec("langchain_pg_embedding", m), false).await;
    assert_eq!(ins.mapping.id_kind, IdKind::Text);
    assert_eq!(ins.mapping.tags.kind, FieldKind::Jsonb);
    assert_eq!(ins.mapping.scope.as_ref().map(|s| s.field.kind), Some(FieldKind::Uuid));
    assert_eq!((ins.dimension, ins.distance, ins.points), (3, None, 5));
    assert_eq!(ins.warnings.len(), 1, "the GIN index serves the tags, nothing serves the scope: {:?}", ins.warnings);
    assert!(ins.warnings[0].contains(
        r#"CREATE INDEX CONCURRENTLY IF NOT EXISTS "langchain_pg_embedding_collection_id_lethe_idx" ON "langchain_pg_embedding" ("collection_id")"#
    ));

    assert_eq!(store.count_all(&s).await.expect("count all"), 5);
    assert_eq!(
        store.count(&s, &Selector::by_tag("alice")).await.expect("count"),
        3,
        "string and array rows, this collection only"
    );
    assert_eq!(store.count(&s, &Selector::by_tag("bob")).await.expect("count"), 2);
    assert_eq!(store.count(&s, &Selector { tag: None, ids: vec![] }).await.expect("count"), 0);

    let all = scroll_all(&store, &s, 2).await;
    assert_eq!(all.len(), 5);
    let email = all.iter().find(|p| p.id == text_key(&s, "alice@example.com#3")).expect("the e-mail id is scrolled");
    assert_eq!(email.payload.source_id, "alice@example.com#3", "no source: the point is its own");
    assert_eq!(email.payload.text.as_deref(), Some("Alice three"));
    assert_eq!(email.payload.tenant_id, s.tenant_id);
    let shared = all.iter().find(|p| p.payload.text.as_deref() == Some("Alice and Bob")).expect("shared");
    assert_eq!(shared.payload.subjects, vec!["alice", "bob"]);
    let bob = all.iter().find(|p| p.payload.text.as_deref() == Some("Bob")).expect("bob");
    assert_eq!(bob.payload.source_id, "42", "numbers are stringified");
    assert_eq!(lookups(&pool, &s).await, vec!["alice@example.com#3"]);

    let got =
        store.retrieve(&s, &[text_key(&s, "alice@example.com#3"), bob.id, Uuid::new_v4()], true).await.expect("retrieve");
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|p| p.vector.as_ref().is_some_and(|v| v.len() == 3)));

    let counts = store.count_tag_and_ids(&s, Some("alice"), &[bob.id, shared.id]).await.expect("counts");
    assert_eq!(counts, [3, 2, 4]);

    let hits = store.search_exact(&s, &[vec![0.0, 0.0, 1.0]], 0.99, 10).await.expect("search");
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![text_key(&s, "alice@example.com#3")]);

    store.delete(&s, &Selector::by_tag("alice")).await.expect("delete");
    let docs_left =
        rows(&pool, &format!("SELECT count(*) FROM langchain_pg_embedding WHERE collection_id = '{docs}'")).await;
    assert_eq!(docs_left, 2);
    let others =
        rows(&pool, &format!("SELECT count(*) FROM langchain_pg_embedding WHERE collection_id = '{other}'")).await;
    assert_eq!(others, 2, "another collection's points of the same person are not this collection's");
    assert!(lookups(&pool, &s).await.is_empty(), "the e-mail id is gone with its point");
    assert_eq!(store.count(&s, &Selector::by_tag("alice")).await.expect("count"), 0);

    store.delete(&s, &Selector::by_ids(vec![bob.id])).await.expect("delete by id");
    assert_eq!(store.count_all(&s).await.expect("count all"), 1);
    assert!(matches!(
        store.reclaim(&s, false).await.expect("vacuum"),
        lethe::vector_store::PhysicalOutcome::Pending(_)
    ));
}

/// A pipeline deletes its LangChain collection and creates it again under
/// the same name (`pre_delete_collection=True`): a new uuid. The attachment
/// follows the name; pinned to the old uuid, it counted 0 and certified
/// 0 remain while the person's new rows sat in the table.
#[tokio::test]
async fn a_langchain_collection_created_again_under_its_name_is_still_the_attached_one() {
    let pool = database().await;
    exec(&pool, LANGCHAIN_DDL).await;
    let (first, other) = (Uuid::new_v4(), Uuid::new_v4());
    exec(
        &pool,
        &format!(
            r#"
        INSERT INTO langchain_pg_collection VALUES ('{first}', 'docs', '{{}}'), ('{other}', 'other', '{{}}');
        INSERT INTO langchain_pg_embedding VALUES
          ('a1', '{first}', '[1,0,0]', 'Alice one', '{{"user_id": "alice"}}'),
          ('o1', '{other}', '[1,0,0]', 'Alice elsewhere', '{{"user_id": "alice"}}');
        "#
        ),
    )
    .await;
    let store = AttachedPgStore::new(pool.clone());
    let scope = Scope { field: Field::column("collection_id"), value: first.to_string(), named: Some("docs".into()) };
    let m = Mapping { text: Some(Field::column("document")), scope: Some(scope), timestamp: None, ..mapping("id", Field::at("cmetadata", &["user_id"])) };
    let (s, _) = attach(&store, spec("langchain_pg_embedding", m), false).await;
    assert_eq!(store.count(&s, &Selector::by_tag("alice")).await.expect("count"), 1);

    let again = Uuid::new_v4();
    exec(
        &pool,
        &format!(
            r#"
        DELETE FROM langchain_pg_collection WHERE name = 'docs';
        INSERT INTO langchain_pg_collection VALUES ('{again}', 'docs', '{{}}');
        INSERT INTO langchain_pg_embedding VALUES
          ('a2', '{again}', '[0,1,0]', 'Alice again', '{{"user_id": "alice"}}'),
          ('a3', '{again}', '[0,0,1]', 'Alice and more', '{{"user_id": ["alice", "bob"]}}');
        "#
        ),
    )
    .await;
    assert_eq!(store.count(&s, &Selector::by_tag("alice")).await.expect("count"), 2, "the collection named docs now");
    store.delete(&s, &Selector::by_tag("alice")).await.expect("delete");
    assert_eq!(store.count(&s, &Selector::by_tag("alice")).await.expect("count"), 0);
    assert_eq!(rows(&pool, &format!("SELECT count(*) FROM langchain_pg_embedding WHERE collection_id = '{again}'")).await, 0);
    assert_eq!(rows(&pool, &format!("SELECT count(*) FROM langchain_pg_embedding WHERE collection_id = '{other}'")).await, 1);
    // Deleted and not created again: the attachment holds nothing.
    exec(&pool, "DELETE FROM langchain_pg_collection WHERE name = 'docs'").await;
    assert_eq!(store.count_all(&s).await.expect("count all"), 0);
}

#[tokio::test]
async fn langchain_pgvector_store_table_gets_its_index_and_keeps_held_points() {
    let pool = database().await;
    exec(
        &pool,
        r#"
        CREATE TABLE lc_store (
            langchain_id uuid PRIMARY KEY,
            content text NOT NULL,
            embedding vector(3) NOT NULL,
            langchain_metadata json
        );
        CREATE INDEX lc_store_hnsw ON lc_store USING hnsw (embedding vector_l2_ops);
    "#,
    )
    .await;
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    exec(
        &pool,
        &format!(
            r#"
        INSERT INTO lc_store VALUES
          ('{}', 'one', '[1,0,0]', '{{"user_id": "alice"}}'),
          ('{}', 'two', '[0,1,0]', '{{"user_id": ["alice", "bob"]}}'),
          ('{}', 'three', '[0,0,1]', '{{"user_id": "bob"}}'),
          ('{}', 'four', '[1,1,1]', NULL);
        "#,
            ids[0], ids[1], ids[2], ids[3]
        ),
    )
    .await;
    let store = AttachedPgStore::new(pool.clone());
    let m = Mapping {
        text: Some(Field::column("content")),
        ..mapping("langchain_id", Field::at("langchain_metadata", &["user_id"]))
    };
    let (_, ins) = attach(&store, spec("lc_store", m.clone()), false).await;
    assert_eq!((ins.mapping.id_kind, ins.mapping.tags.kind), (IdKind::Uuid, FieldKind::Json));
    assert_eq!((ins.dimension, ins.distance, ins.points), (3, Some(Distance::Euclid), 4));
    let statement = r#"CREATE INDEX CONCURRENTLY IF NOT EXISTS "lc_store_langchain_metadata_lethe_idx" ON "lc_store" USING gin (("langchain_metadata"::jsonb) jsonb_path_ops)"#;
    assert_eq!(ins.warnings.len(), 1);
    assert!(ins.warnings[0].contains(statement), "{}", ins.warnings[0]);
    assert!(ins.created.is_empty());

    let (s, ins) = attach(&store, spec("lc_store", m.clone()), true).await;
    assert_eq!(ins.created, vec![statement.to_owned()]);
    assert!(ins.warnings.is_empty(), "{:?}", ins.warnings);
    let idx =
        rows(&pool, "SELECT count(*) FROM pg_indexes WHERE indexname = 'lc_store_langchain_metadata_lethe_idx'").await;
    assert_eq!(idx, 1);
    let (_, again) = attach(&store, spec("lc_store", m), true).await;
    assert!(again.created.is_empty() && again.warnings.is_empty(), "the index serves the filter now");

    assert_eq!(store.count(&s, &Selector::by_tag("alice")).await.expect("count"), 2);
    let keep = Keep { tags: vec!["bob".into()], ids: vec![] };
    assert_eq!(store.count_keeping(&s, &Selector::by_tag("alice"), &keep).await.expect("count"), 1);
    let untagged_kept = Keep { tags: vec!["bob".into()], ids: vec![ids[0]] };
    let sel = Selector { tag: Some("alice".into()), ids: vec![ids[3]] };
    assert_eq!(store.count_keeping(&s, &sel, &untagged_kept).await.expect("count"), 1, "the untagged id, not kept");
    store.delete_keeping(&s, &Selector::by_tag("alice"), &keep).await.expect("delete keeping");
    assert_eq!(rows(&pool, &format!("SELECT count(*) FROM lc_store WHERE langchain_id = '{}'", ids[0])).await, 0);
    assert_eq!(
        rows(&pool, &format!("SELECT count(*) FROM lc_store WHERE langchain_id = '{}'", ids[1])).await,
        1,
        "held with bob"
    );

    store.delete(&s, &Selector::by_ids(vec![ids[2], ids[3]])).await.expect("delete by ids");
    assert_eq!(rows(&pool, "SELECT count(*) FROM lc_store").await, 1);

    // Euclid: scores are distances, the threshold a maximum.
    let s = CollectionSpec { distance: Distance::Euclid, ..s };
    let hits = store.search_exact(&s, &[vec![0.0, 1.0, 0.0]], 0.1, 10).await.expect("search");
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].id, hits[0].score), (ids[1], 0.0));
    assert!(matches!(store.upsert(&s, &[]).await, Err(VectorStoreError::Unsupported(_))));
    assert!(matches!(store.drop_physical("lc_store").await, Err(VectorStoreError::Unsupported(_))));
}

#[tokio::test]
async fn llamaindex_table_with_bigint_ids_reads_text_inside_node_content() {
    let pool = database().await;
    exec(
        &pool,
        r#"
        CREATE TABLE data_docs (
            id bigserial PRIMARY KEY,
            text varchar NOT NULL,
            metadata_ json,
            node_id varchar,
            embedding vector(3)
        );
    "#,
    )
    .await;
    let node = |text: &str| serde_json::json!({"id_": "n", "text": text, "metadata": {}}).to_string();
    for (i, (user, content, doc)) in [
        (serde_json::json!("alice"), node("Alice's note"), "d1"),
        (serde_json::json!(["alice"]), "{not json".to_owned(), "d1"),
        (serde_json::json!("bob"), node("Bob's note"), "d2"),
    ]
    .into_iter()
    .enumerate()
    {
        let meta = serde_json::json!({"user_id": user, "ref_doc_id": doc, "_node_content": content});
        sqlx::query(
            "INSERT INTO data_docs (text, metadata_, node_id, embedding) VALUES ($1, $2::json, $3, $4::vector)",
        )
        .bind(format!("chunk {i}"))
        .bind(meta.to_string())
        .bind(format!("node-{i}"))
        .bind(["[1,0,0]", "[0,1,0]", "[0,0,1]"][i])
        .execute(&pool)
        .await
        .expect("insert");
    }
    let store = AttachedPgStore::new(pool.clone());
    let m = Mapping {
        text: Some(Field { json_text_path: vec!["text".into()], ..Field::at("metadata_", &["_node_content"]) }),
        source: Some(Field::at("metadata_", &["ref_doc_id"])),
        ..mapping("id", Field::at("metadata_", &["user_id"]))
    };
    let (s, ins) = attach(&store, spec("data_docs", m), false).await;
    assert_eq!((ins.mapping.id_kind, ins.mapping.tags.kind), (IdKind::Int, FieldKind::Json));
    assert_eq!(ins.mapping.text.as_ref().map(|f| f.kind), Some(FieldKind::Json));
    assert_eq!((ins.dimension, ins.points), (3, 3));

    let all = scroll_all(&store, &s, 1).await;
    assert_eq!(
        all.iter().map(|p| p.id).collect::<Vec<_>>(),
        (1..=3).map(|n| key(&s, NativeId::Int(n))).collect::<Vec<_>>()
    );
    assert_eq!(all[0].payload.text.as_deref(), Some("Alice's note"));
    assert_eq!(all[1].payload.text, None, "JSON text that does not parse has no text");
    assert_eq!(all[1].payload.subjects, vec!["alice"]);
    assert_eq!(all[0].payload.source_id, "d1");
    assert!(lookups(&pool, &s).await.is_empty(), "integer ids need no lookup");

    assert_eq!(store.count(&s, &Selector::by_tag("alice")).await.expect("count"), 2);
    let hits = store.search_exact(&s, &[vec![0.0, 0.0, 1.0], vec![1.0, 0.1, 0.0]], 0.9, 10).await.expect("search");
    assert_eq!(
        hits.iter().map(|h| (h.id, h.probe)).collect::<Vec<_>>(),
        vec![(key(&s, NativeId::Int(3)), 0), (key(&s, NativeId::Int(1)), 1)]
    );
    store
        .delete(&s, &Selector::by_ids(vec![key(&s, NativeId::Int(2)), key(&s, NativeId::Uuid(Uuid::new_v4()))]))
        .await
        .expect("delete");
    assert_eq!(rows(&pool, "SELECT count(*) FROM data_docs WHERE id = 2").await, 0);
    assert_eq!(rows(&pool, "SELECT count(*) FROM data_docs").await, 2);
    store.delete(&s, &Selector::by_tag("alice")).await.expect("delete");
    assert_eq!(rows(&pool, "SELECT count(*) FROM data_docs").await, 1);
}

/// `json` keeps a `\u0000` escape that neither jsonb nor any json operator
/// can read: one such row (a file name, a hostile document's metadata) made
/// every count, delete and read on the table fail, everyone's erasures
/// included, and a failed index build left an index that would refuse the
/// framework's next such row.
#[tokio::test]
async fn a_json_row_holding_a_nul_escape_stops_no_count_delete_read_or_index() {
    let pool = database().await;
    exec(
        &pool,
        r#"
        CREATE TABLE data_docs (
            id bigserial PRIMARY KEY,
            text varchar NOT NULL,
            metadata_ json,
            embedding vector(3)
        );
    "#,
    )
    .await;
    let node = |text: &str| serde_json::json!({"id_": "n", "text": text}).to_string();
    // As written by a framework: `\u0000` in a file name, in a tag, in the
    // node's own text, and an escaped backslash before the letters `u0000`.
    let rows_json = [
        format!(r#"{{"user_id": "alice", "file_name": "a\u0000b", "_node_content": {}}}"#, serde_json::json!(node("Alice's note"))),
        format!(r#"{{"user_id": "bob", "path": "x\u0000\u0000y", "_node_content": {}}}"#, serde_json::json!(node("Bob\u{0}Stone wrote"))),
        r#"{"user_id": "al\u0000ice"}"#.to_owned(),
        r#"{"user_id": ["carol", "alice"], "path": "C:\\u0000"}"#.to_owned(),
    ];
    for (i, meta) in rows_json.iter().enumerate() {
        sqlx::query("INSERT INTO data_docs (text, metadata_, embedding) VALUES ($1, $2::json, $3::vector)")
            .bind(format!("chunk {i}"))
            .bind(meta)
            .bind(["[1,0,0]", "[0,1,0]", "[0,0,1]", "[1,1,0]"][i])
            .execute(&pool)
            .await
            .expect("insert");
    }
    assert!(
        sqlx::query("SELECT metadata_::jsonb FROM data_docs").fetch_all(&pool).await.is_err(),
        "the rows must hold what jsonb refuses, or this test checks nothing"
    );
    let store = AttachedPgStore::new(pool.clone());
    let m = Mapping {
        text: Some(Field { json_text_path: vec!["text".into()], ..Field::at("metadata_", &["_node_content"]) }),
        source: Some(Field::at("metadata_", &["path"])),
        ..mapping("id", Field::at("metadata_", &["user_id"]))
    };
    let (s, ins) = attach(&store, spec("data_docs", m), true).await;
    assert_eq!(ins.points, 4);
    assert!(ins.created.is_empty(), "{:?}", ins.created);
    assert!(ins.warnings.iter().any(|w| w.contains("\\u0000")), "{:?}", ins.warnings);
    let invalid: i64 = rows(&pool, "SELECT count(*) FROM pg_index WHERE indrelid = 'data_docs'::regclass AND NOT indisvalid").await;
    assert_eq!(invalid, 0, "the failed build's index is dropped");
    exec(&pool, r#"INSERT INTO data_docs (text, metadata_, embedding) VALUES ('later', '{"user_id": "dan\u0000"}', '[0,1,1]')"#).await;

    assert_eq!(store.count(&s, &Selector::by_tag("alice")).await.expect("count"), 2);
    let ids = vec![key(&s, NativeId::Int(2)), key(&s, NativeId::Int(3))];
    assert_eq!(store.count_tag_and_ids(&s, Some("alice"), &ids).await.expect("split"), [2, 2, 4]);
    assert_eq!(store.count_all(&s).await.expect("all"), 5);
    let all = scroll_all(&store, &s, 2).await;
    assert_eq!(all.len(), 5);
    assert_eq!(all[1].payload.text.as_deref(), Some("Bob\u{0}Stone wrote"), "the node's own text is read");
    assert_eq!(all[2].payload.subjects, vec!["al\u{FFFD}ice"], "a tag's NUL reads as U+FFFD, never as `alice`");
    assert_eq!(all[3].payload.subjects, vec!["carol", "alice"]);
    assert_eq!(all[1].payload.source_id, "x\u{FFFD}\u{FFFD}y", "two escapes in a row are both read as U+FFFD");
    assert_eq!(all[3].payload.source_id, "C:\\u0000", "an escaped backslash before `u0000` is text, kept as it is");
    let hits = store.search_exact(&s, &[vec![0.0, 1.0, 0.0]], 0.99, 10).await.expect("search");
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![key(&s, NativeId::Int(2))]);

    store.delete(&s, &Selector::by_tag("alice")).await.expect("delete");
    assert_eq!(rows(&pool, "SELECT count(*) FROM data_docs WHERE id IN (1, 4)").await, 0);
    let keep = Keep { tags: vec!["carol".into()], ids: Vec::new() };
    store.delete_keeping(&s, &Selector::by_tag("bob"), &keep).await.expect("delete bob");
    assert_eq!(rows(&pool, "SELECT count(*) FROM data_docs").await, 2, "the NUL tag's row and the later row stay");
}

#[tokio::test]
async fn hand_made_tables_with_text_ids_and_array_or_text_tags() {
    let pool = database().await;
    exec(
        &pool,
        r#"
        CREATE SCHEMA rag;
        CREATE TABLE rag."Chunks" (
            chunk_key text PRIMARY KEY,
            tenant int NOT NULL,
            people varchar[] NOT NULL DEFAULT '{}',
            body text,
            vec vector(3)
        );
        CREATE INDEX chunks_people ON rag."Chunks" USING gin (people);
        INSERT INTO rag."Chunks" VALUES
          ('alice@example.com#3', 7, '{alice}', 'a', '[1,0,0]'),
          ('doc-1', 7, '{alice,bob}', 'b', '[0,1,0]'),
          ('DOC-2', 7, '{}', 'c', '[0,0,1]'),
          ('other-tenant', 8, '{alice}', 'd', '[1,0,0]');
        CREATE TABLE owners (pk bigint PRIMARY KEY, owner text, vec vector(3));
        INSERT INTO owners VALUES (1, 'alice', '[1,0,0]'), (2, NULL, '[0,1,0]'), (3, 'bob', '[0,0,1]');
    "#,
    )
    .await;
    let store = AttachedPgStore::new(pool.clone());
    let m = Mapping {
        vector: "vec".into(),
        text: Some(Field::column("body")),
        scope: Some(Scope { field: Field::column("tenant"), value: "7".into(), named: None }),
        timestamp: None,
        ..mapping("chunk_key", Field::column("people"))
    };
    let (s, ins) = attach(&store, spec(r#"rag."Chunks""#, m), false).await;
    assert_eq!((ins.mapping.id_kind, ins.mapping.tags.kind, ins.points), (IdKind::Text, FieldKind::TextArray, 3));
    assert_eq!(ins.warnings.len(), 1, "the scope has no index: {:?}", ins.warnings);
    assert!(ins.warnings[0].contains(r#"ON "rag"."Chunks" ("tenant")"#));

    assert_eq!(store.count(&s, &Selector::by_tag("alice")).await.expect("count"), 2);
    let wanted = vec![text_key(&s, "alice@example.com#3"), text_key(&s, "DOC-2"), text_key(&s, "other-tenant")];
    // Keys of text ids are found again once the store handed them out.
    assert_eq!(store.count(&s, &Selector::by_ids(wanted.clone())).await.expect("count"), 0);
    assert_eq!(scroll_all(&store, &s, 2).await.len(), 3);
    assert_eq!(lookups(&pool, &s).await, vec!["DOC-2", "alice@example.com#3", "doc-1"]);
    assert_eq!(store.count(&s, &Selector::by_ids(wanted.clone())).await.expect("count"), 2, "never another scope's");
    assert_eq!(store.count_tag_and_ids(&s, Some("bob"), &wanted).await.expect("counts"), [1, 2, 3]);

    store.delete(&s, &Selector::by_ids(wanted)).await.expect("delete");
    let left: Vec<String> = sqlx::query_scalar(r#"SELECT chunk_key FROM rag."Chunks" ORDER BY chunk_key"#)
        .fetch_all(&pool)
        .await
        .expect("left");
    assert_eq!(left, vec!["doc-1", "other-tenant"]);
    assert_eq!(lookups(&pool, &s).await, vec!["doc-1"], "deleted ids' lookup rows are gone");

    let m = Mapping { vector: "vec".into(), ..mapping("pk", Field::column("owner")) };
    let (o, ins) = attach(&store, spec("owners", m), true).await;
    assert_eq!((ins.mapping.id_kind, ins.mapping.tags.kind), (IdKind::Int, FieldKind::Text));
    assert_eq!(
        ins.created,
        vec![r#"CREATE INDEX CONCURRENTLY IF NOT EXISTS "owners_owner_lethe_idx" ON "owners" ("owner")"#]
    );
    let keep = Keep { tags: vec!["bob".into()], ids: vec![] };
    let sel = Selector { tag: Some("alice".into()), ids: vec![key(&s, NativeId::Int(2))] };
    assert_eq!(store.count_keeping(&o, &sel, &keep).await.expect("count"), 2, "a NULL tag is not kept");
    store.delete_keeping(&o, &sel, &keep).await.expect("delete");
    assert_eq!(rows(&pool, "SELECT count(*) FROM owners").await, 1);
}

#[tokio::test]
async fn inspect_rejects_mappings_the_table_does_not_match() {
    let pool = database().await;
    exec(
        &pool,
        r#"
        CREATE TABLE t_bad (
            id uuid PRIMARY KEY,
            n bigint,
            f float8,
            body text,
            meta jsonb,
            embedding vector,
            words text
        );
        INSERT INTO t_bad VALUES (gen_random_uuid(), 1, 1.0, 'x', '{"user": {"id": "alice"}}', '[1,2]', 'w');
        CREATE TABLE t_empty (id uuid PRIMARY KEY, meta jsonb, embedding vector);
        CREATE TABLE t_nokey (id uuid, meta jsonb, embedding vector(2));
    "#,
    )
    .await;
    let store = AttachedPgStore::new(pool.clone());
    let tags = Field::at("meta", &["user", "id"]);
    let check = |m: Mapping, table: &'static str| {
        let store = store.clone();
        async move { invalid_field(store.inspect(&spec(table, m), false).await.expect_err("invalid")) }
    };
    let ok = store.inspect(&spec("t_bad", mapping("id", tags.clone())), false).await.expect("valid mapping");
    assert_eq!((ok.dimension, ok.points), (2, 1));

    let (field, message) = check(mapping("id", Field::at("nope", &["x"])), "t_bad").await;
    assert_eq!((field.as_str(), message.as_str()), ("tags", "table `t_bad` has no column `nope`"));
    let (field, _) = check(mapping("id", Field::column("n")), "t_bad").await;
    assert_eq!(field, "tags", "a bigint cannot hold tags");
    let (field, _) = check(Mapping { vector: "body".into(), ..mapping("id", tags.clone()) }, "t_bad").await;
    assert_eq!(field, "vector");
    let (field, _) = check(mapping("f", tags.clone()), "t_bad").await;
    assert_eq!(field, "id");
    let (field, message) = check(mapping("id", Field::at("meta", &["user_id"])), "t_bad").await;
    assert_eq!((field.as_str(), message.as_str()), ("tags", "no point in the table has `meta.user_id`"));
    let (field, _) = check(mapping("id", Field::at("words", &["x"])), "t_bad").await;
    assert_eq!(field, "tags", "a path on a text column");
    let (field, _) = check(mapping("id", Field::column("meta")), "t_bad").await;
    assert_eq!(field, "tags", "an object is not a tag");
    let (field, _) =
        check(Mapping { text: Some(Field::at("meta", &["content"])), ..mapping("id", tags.clone()) }, "t_bad").await;
    assert_eq!(field, "text");
    let scope = Some(Scope { field: Field::column("id"), value: "not-a-uuid".into(), named: None });
    let (field, _) = check(Mapping { scope, ..mapping("id", tags.clone()) }, "t_bad").await;
    assert_eq!(field, "scope");
    let (field, _) = check(mapping("id", tags.clone()), "missing_table").await;
    assert_eq!(field, "target");
    let (field, message) = check(mapping("id", tags.clone()), "t_empty").await;
    assert_eq!(field, "vector", "no dimension and no row to read it from: {message}");
    let (field, _) = check(mapping("id", tags), "t_nokey").await;
    assert_eq!(field, "id", "an id that is not unique");
}
