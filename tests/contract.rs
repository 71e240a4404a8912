//! One contract for every vector backend, written once against the
//! `VectorStore` trait and run against pgvector and Qdrant (the stand-in, or
//! a real Qdrant at QDRANT_URL). Run with `scripts/test.sh`.

use std::sync::Arc;
use std::time::Duration;

use lethe::domain::{Backend, CollectionName, CollectionSpec, Distance};
use lethe::vector_store::{Keep, PgVectorStore, PointPayload, QdrantStore, Selector, VectorPoint, VectorStore};
use uuid::Uuid;

fn spec(backend: Backend, dimension: usize) -> CollectionSpec {
    let id = Uuid::new_v4();
    CollectionSpec {
        collection_id: id,
        tenant_id: Uuid::new_v4(),
        name: CollectionName::parse("name", "contract").unwrap(),
        backend,
        backend_name: match backend {
            Backend::Pgvector => format!("lv_{}", id.simple()),
            Backend::Qdrant => format!("contract_{}", id.simple()),
        },
        dimension,
        distance: Distance::Cosine,
        embedding_model: "test".into(),
        store_text: true,
        retention_days: 0,
        screening: lethe::domain::Screening::Accept,
        created_at: chrono::Utc::now(),
        mapping: None,
    }
}

/// A unit vector along axis `i` (mod dimension), slightly tilted by `j`.
fn axis(dim: usize, i: usize, j: f32) -> Vec<f32> {
    let mut v = vec![0.0; dim];
    v[i % dim] = 1.0;
    v[(i + 1) % dim] = j;
    let n = (1.0 + j * j).sqrt();
    v.iter().map(|x| x / n).collect()
}

fn point(s: &CollectionSpec, i: usize, subjects: &[&str]) -> VectorPoint {
    VectorPoint {
        id: Uuid::new_v4(),
        vector: axis(s.dimension, i, 0.1),
        payload: PointPayload {
            tenant_id: s.tenant_id,
            source_id: format!("src-{i}"),
            subjects: subjects.iter().map(|x| (*x).to_owned()).collect(),
            text: Some(format!("chunk {i}")),
        },
    }
}

async fn contract(store: Arc<dyn VectorStore>, backend: Backend) {
    let s = spec(backend, 8);
    store.create_collection(&s).await.expect("create");
    store.create_collection(&s).await.expect("create is idempotent");
    let points = vec![
        point(&s, 0, &["Tim Belden"]),
        point(&s, 1, &["Tim Belden", "Ann"]),
        point(&s, 2, &["Tim"]),
        point(&s, 3, &["Tim Belden Jr"]),
        point(&s, 4, &["Ann", "Bob", "Cyd", "Dee"]),
        point(&s, 5, &[]),
    ];
    store.upsert(&s, &points).await.expect("upsert");
    let count = |sel: Selector| {
        let store = Arc::clone(&store);
        let s = s.clone();
        async move { store.count(&s, &sel).await.expect("count") }
    };

    // Exact keyword matches: a value with spaces, prefixes, several subjects per point.
    assert_eq!(count(Selector::by_tag("Tim Belden")).await, 2);
    assert_eq!(count(Selector::by_tag("Tim")).await, 1);
    assert_eq!(count(Selector::by_tag("Tim Belden Jr")).await, 1);
    assert_eq!(count(Selector::by_tag("Belden")).await, 0);
    assert_eq!(count(Selector::by_tag("Dee")).await, 1);
    assert_eq!(count(Selector::by_ids(vec![points[2].id, points[5].id, Uuid::new_v4()])).await, 2);
    let union = Selector { tag: Some("Ann".into()), ids: vec![points[1].id, points[5].id] };
    assert_eq!(count(union.clone()).await, 3, "tag OR ids, each point once");
    // By tag, by ids and both in one call: ids the tag covers, an untagged id, an unknown id.
    let ids = vec![points[1].id, points[4].id, points[5].id, Uuid::new_v4()];
    assert_eq!(store.count_tag_and_ids(&s, Some("Ann"), &ids).await.expect("count three"), [2, 3, 3]);
    assert_eq!(store.count_tag_and_ids(&s, None, &ids).await.expect("count ids"), [0, 3, 3]);
    assert_eq!(store.count_tag_and_ids(&s, Some("Ann"), &[]).await.expect("count tag"), [2, 0, 2]);
    // Several subjects at once give each one's counts, in their order: a point
    // two of them share counts for both, an id given twice once.
    let twice = vec![points[2].id, points[2].id, points[0].id];
    let subjects: Vec<(Option<&str>, &[Uuid])> =
        vec![(Some("Ann"), &ids), (None, &ids), (Some("Ann"), &[]), (Some("Bob"), &twice), (Some("Nobody"), &[])];
    let many = store.count_tag_and_ids_many(&s, &subjects).await.expect("count many");
    assert_eq!(many, [[2, 3, 3], [0, 3, 3], [2, 0, 2], [1, 2, 3], [0, 0, 0]]);
    assert_eq!(store.count_tag_and_ids_many(&s, &subjects[..1]).await.expect("count one"), [[2, 3, 3]]);
    assert!(store.count_tag_and_ids_many(&s, &[]).await.expect("count none").is_empty());
    // An empty selector selects nothing, never everything.
    assert_eq!(count(Selector::by_ids(vec![])).await, 0);
    store.delete(&s, &Selector::by_ids(vec![])).await.expect("empty delete");

    // Exact search finds the nearest and honours the threshold.
    let hits = store.search_exact(&s, &[axis(8, 3, 0.1)], 0.99, 10).await.expect("search");
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![points[3].id]);
    let two = store.search_exact(&s, &[axis(8, 0, 0.1), axis(8, 4, 0.1)], 0.99, 10).await.expect("search");
    assert_eq!(two.len(), 2);
    assert!(two.iter().any(|h| h.id == points[4].id && h.probe == 1));

    // Retrieve and scroll give the payload back.
    let got = store.retrieve(&s, &[points[4].id], true).await.expect("retrieve");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, points[4].payload);
    assert_eq!(got[0].vector.as_ref().map(Vec::len), Some(8));
    // Without vectors: the payloads of the points there, none for an id that is not.
    let got = store.retrieve(&s, &[points[4].id, Uuid::new_v4(), points[1].id], false).await.expect("retrieve without vectors");
    let mut ids: Vec<Uuid> = got.iter().map(|p| p.id).collect();
    ids.sort();
    let mut want = vec![points[4].id, points[1].id];
    want.sort();
    assert_eq!(ids, want);
    assert!(got.iter().all(|p| p.vector.is_none()));
    assert_eq!(got.iter().find(|p| p.id == points[4].id).map(|p| &p.payload), Some(&points[4].payload));
    let mut seen = Vec::new();
    let mut offset = None;
    loop {
        let (page, next) = store.scroll(&s, offset, 4, false).await.expect("scroll");
        seen.extend(page.into_iter().map(|p| p.id));
        match next {
            Some(n) => offset = Some(n),
            None => break,
        }
    }
    seen.sort();
    let mut all: Vec<Uuid> = points.iter().map(|p| p.id).collect();
    all.sort();
    assert_eq!(seen, all);

    // Keeping points (shared with a subject on legal hold): by exact tag
    // (spaces too, no prefixes) or by id, in counts and in deletes.
    let keep = |tags: &[&str], ids: Vec<Uuid>| Keep { tags: tags.iter().map(|t| (*t).to_owned()).collect(), ids };
    let kept = |sel: Selector, k: Keep| {
        let store = Arc::clone(&store);
        let s = s.clone();
        async move { store.count_keeping(&s, &sel, &k).await.expect("count keeping") }
    };
    assert_eq!(kept(Selector::by_tag("Tim Belden"), keep(&["Ann"], vec![points[0].id])).await, 0);
    let tag_or_ids = Selector { tag: Some("Tim Belden".into()), ids: vec![points[2].id, points[5].id] };
    assert_eq!(kept(tag_or_ids, keep(&["Ann"], vec![points[2].id])).await, 2);
    assert_eq!(kept(Selector::by_ids(points.iter().map(|p| p.id).collect()), keep(&["Tim Belden"], vec![])).await, 4);
    assert_eq!(kept(Selector::by_tag("Ann"), Keep::default()).await, 2, "nothing kept: a plain count");
    let ann_or_5 = Selector { tag: Some("Ann".into()), ids: vec![points[5].id] };
    store.delete_keeping(&s, &ann_or_5, &keep(&["Bob"], vec![])).await.expect("delete keeping");
    assert_eq!(count(Selector::by_ids(vec![points[1].id, points[5].id])).await, 0);
    assert_eq!(count(Selector::by_tag("Ann")).await, 1, "the point that also names Bob is kept");

    // Delete by tag (with spaces), then by ids: exactly those go.
    store.delete(&s, &Selector::by_tag("Tim Belden")).await.expect("delete by tag");
    assert_eq!(count(Selector::by_tag("Tim Belden")).await, 0);
    assert_eq!(count(Selector::by_tag("Tim")).await, 1);
    assert_eq!(count(Selector::by_tag("Tim Belden Jr")).await, 1);
    assert_eq!(count(Selector::by_tag("Ann")).await, 1, "the shared point went with Tim Belden");
    store.delete(&s, &Selector::by_ids(vec![points[4].id, points[5].id])).await.expect("delete by ids");
    assert_eq!(count(Selector::by_ids(all.clone())).await, 2);
    // Tag and ids in one delete: a point both tagged and listed, an untagged listed one, an unknown id.
    let both = Selector { tag: Some("Tim".into()), ids: vec![points[2].id, points[3].id, Uuid::new_v4()] };
    store.delete(&s, &both).await.expect("delete by tag and ids");
    assert_eq!(count(Selector::by_ids(all.clone())).await, 0);

    // A point whose payload names another tenant (a pipeline's mistake) is
    // still this collection's: counted, found and deleted by tag and by id,
    // so that no payload can hide a point from an erasure's plan and verify.
    let mut stray = point(&s, 6, &["Zed"]);
    stray.payload.tenant_id = Uuid::new_v4();
    store.upsert(&s, std::slice::from_ref(&stray)).await.expect("upsert stray");
    assert_eq!(store.count_tag_and_ids(&s, Some("Zed"), &[stray.id]).await.expect("count stray"), [1, 1, 1]);
    let found = store.search_exact(&s, &[axis(8, 6, 0.1)], 0.99, 10).await.expect("search stray");
    assert_eq!(found.iter().map(|h| h.id).collect::<Vec<_>>(), vec![stray.id]);
    assert_eq!(store.scroll(&s, None, 10, false).await.expect("scroll stray").0.len(), 1);
    assert_eq!(store.count_all(&s).await.expect("count all"), 1);
    store.delete(&s, &Selector::by_ids(vec![stray.id])).await.expect("delete stray");
    assert_eq!(store.count_tag_and_ids(&s, Some("Zed"), &[stray.id]).await.expect("count stray"), [0, 0, 0]);

    // A collection of another dimension lives beside it; wrong dimensions are refused.
    let wide = spec(backend, 16);
    store.create_collection(&wide).await.expect("create wide");
    store.upsert(&wide, &[point(&wide, 0, &["Ann"])]).await.expect("upsert wide");
    assert!(store.upsert(&wide, &[point(&s, 0, &["Ann"])]).await.is_err(), "8-d vector into a 16-d collection");
    assert_eq!(store.count(&wide, &Selector::by_tag("Ann")).await.unwrap(), 1);

    // Several subjects deleted at once: each one's tag and ids, nobody else's.
    let m = spec(backend, 8);
    store.create_collection(&m).await.expect("create m");
    let ps = vec![
        point(&m, 0, &["Ann"]),
        point(&m, 1, &["Ann", "Bob"]),
        point(&m, 2, &["Bob"]),
        point(&m, 3, &[]),
        point(&m, 4, &["Cyd"]),
        point(&m, 5, &["Dee", "Cyd"]),
        point(&m, 6, &[]),
    ];
    store.upsert(&m, &ps).await.expect("upsert m");
    let selectors = vec![
        Selector { tag: Some("Ann".into()), ids: vec![ps[3].id] },
        Selector { tag: Some("Bob".into()), ids: vec![] },
        Selector { tag: None, ids: vec![ps[4].id, Uuid::new_v4()] },
    ];
    store.delete_many(&m, &selectors).await.expect("delete many");
    let left: Vec<Uuid> = store.scroll(&m, None, 10, false).await.expect("scroll m").0.into_iter().map(|p| p.id).collect();
    let mut expected = vec![ps[5].id, ps[6].id];
    let mut left_sorted = left.clone();
    left_sorted.sort();
    expected.sort();
    assert_eq!(left_sorted, expected, "Dee's point (also Cyd's, not selected by tag) and the untagged one stay");
    store.delete_many(&m, &[]).await.expect("delete nothing");
    store.delete_many(&m, &[Selector::by_ids(vec![])]).await.expect("an empty selector deletes nothing");
    assert_eq!(store.count_all(&m).await.expect("count m"), 2);
    store.drop_collection(&m).await.expect("drop m");

    store.drop_collection(&s).await.expect("drop");
    store.drop_collection(&wide).await.expect("drop wide");
    store.drop_collection(&wide).await.expect("drop is idempotent");
}

#[tokio::test]
async fn pgvector_meets_the_vector_store_contract() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL (run scripts/test.sh)");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    contract(Arc::new(PgVectorStore::new(pool)), Backend::Pgvector).await;
}

/// pgvector writes in its caller's transaction (`upsert_in`, the write
/// path's lineage transaction): nothing is visible before the commit,
/// nothing after a rollback.
#[tokio::test]
async fn pgvector_writes_in_the_callers_transaction() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL (run scripts/test.sh)");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let store = PgVectorStore::new(pool.clone());
    let s = spec(Backend::Pgvector, 8);
    store.create_collection(&s).await.expect("create");
    let points = vec![point(&s, 0, &["Ann"]), point(&s, 1, &["Ann", "Bob"])];
    let by_ann = Selector::by_tag("Ann");
    let ann = || store.count(&s, &by_ann);

    let mut tx = pool.begin().await.expect("begin");
    assert!(store.upsert_in(&mut tx, &s, &points).await.expect("write in the transaction"));
    assert_eq!(ann().await.expect("count"), 0, "not visible before the commit");
    tx.rollback().await.expect("rollback");
    assert_eq!(ann().await.expect("count"), 0, "nothing after a rollback");

    let mut tx = pool.begin().await.expect("begin");
    assert!(store.upsert_in(&mut tx, &s, &points).await.expect("write in the transaction"));
    tx.commit().await.expect("commit");
    assert_eq!(ann().await.expect("count"), 2, "both after the commit");
    store.drop_collection(&s).await.expect("drop");
}

#[tokio::test]
async fn qdrant_meets_the_vector_store_contract() {
    let url = std::env::var("QDRANT_URL").expect("QDRANT_URL (run scripts/test.sh, which starts the stand-in)");
    let store = QdrantStore::connect(&url, std::env::var("QDRANT_API_KEY").ok(), Duration::from_secs(60))
        .await
        .expect("connect to Qdrant");
    contract(Arc::new(store), Backend::Qdrant).await;
}
