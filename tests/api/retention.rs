//! Retention (issue 16), over gRPC against real Postgres+pgvector and the
//! Qdrant stand-in: sources that lineage recorded more than a rule's days
//! ago are previewed exactly, erased as `retention` jobs (counts from the
//! backend, lineage forgotten, a log entry and a verifying certificate
//! each), sources of subjects under legal hold withheld, young sources
//! untouched; concurrent sweeps (two services on one database) erase each
//! source once; a service killed mid-job resumes it; bad input gets the
//! right codes.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lethe::grpc::pb::{self, lethe_client::LetheClient};
use tonic::Code;
use uuid::Uuid;

use crate::helpers::*;

/// Settings for tests that sweep on request: the scheduler off.
fn manual(s: &mut lethe::config::Settings) {
    s.retention.enabled = false;
}

fn ok<T>(r: Result<tonic::Response<T>, tonic::Status>) -> T {
    r.expect("rpc").into_inner()
}

async fn set_retention(app: &TestApp, collection: &str, days: i32, source_kind: &str) -> pb::CollectionRetention {
    let r = pb::SetRetentionRequest { collection: collection.into(), days, source_kind: source_kind.into(), clear: false };
    ok(app.client.clone().set_retention(req(&app.keys.sk, r)).await)
}

async fn preview(app: &TestApp, collection: &str) -> pb::RetentionSweep {
    let r = pb::PreviewRetentionRequest { collection: collection.into() };
    let mut found = ok(app.client.clone().preview_retention(req(&app.keys.ak, r)).await).collections;
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

async fn sweep(app: &TestApp, collection: &str) -> pb::RetentionSweep {
    let r = pb::SweepRetentionRequest { collection: collection.into() };
    let mut done = ok(app.client.clone().sweep_retention(req(&app.keys.sk, r)).await).collections;
    assert_eq!(done.len(), 1, "{done:?}");
    done.remove(0)
}

async fn hold(app: &TestApp, subject: &str) {
    let r = pb::SetLegalHoldRequest { subject_id: subject.into(), hold: true, reason: "case 2026-7".into() };
    ok(app.client.clone().set_legal_hold(req(&app.keys.sk, r)).await);
}

/// Moves the time lineage recorded these sources (and their chunks) `days` back.
async fn backdate(pool: &sqlx::PgPool, tenant_id: Uuid, collection: &str, sources: &[&str], days: i32) {
    let moved = sqlx::query(
        r#"
        UPDATE sources SET created_at = now() - make_interval(days => $3)
        WHERE collection_id = (SELECT collection_id FROM collections WHERE tenant_id = $1 AND name = $2)
          AND external_id = ANY($4)
        "#,
    )
    .bind(tenant_id)
    .bind(collection)
    .bind(days)
    .bind(sources)
    .execute(pool)
    .await
    .expect("backdate sources");
    assert_eq!(moved.rows_affected(), sources.len() as u64, "every source to backdate exists");
    sqlx::query(
        "UPDATE chunks SET created_at = now() - make_interval(days => $1) \
         WHERE source_id IN (SELECT source_id FROM sources WHERE external_id = ANY($2))",
    )
    .bind(days)
    .bind(sources)
    .execute(pool)
    .await
    .expect("backdate chunks");
}

/// Lineage chunk ids of these sources of the collection.
async fn chunk_ids(app: &TestApp, collection: &str, sources: &[&str]) -> Vec<Uuid> {
    sqlx::query_scalar(
        r#"
        SELECT c.chunk_id FROM chunks c JOIN sources s USING (source_id) JOIN collections k ON k.collection_id = s.collection_id
        WHERE k.tenant_id = $1 AND k.name = $2 AND s.external_id = ANY($3) ORDER BY 1
        "#,
    )
    .bind(app.keys.tenant_id)
    .bind(collection)
    .bind(sources)
    .fetch_all(&app.pool)
    .await
    .expect("chunk ids")
}

async fn spec(app: &TestApp, collection: &str) -> lethe::domain::CollectionSpec {
    lethe::store::lineage::collection_by_name(&app.pool, app.keys.tenant_id, collection)
        .await
        .expect("read collection")
        .expect("collection exists")
}

/// Points in the backend: all of them, and those of `ids` still there.
async fn backend_points(app: &TestApp, collection: &str, ids: &[Uuid]) -> (u64, usize) {
    let spec = spec(app, collection).await;
    let store = app.ctx.stores.get(&spec).expect("backend configured");
    let all = store.count_all(&spec).await.expect("count the backend");
    let present = store.retrieve(&spec, ids, false).await.expect("retrieve").len();
    (all, present)
}

/// Sources lineage still has, by the caller's id.
async fn lineage_sources(app: &TestApp, collection: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT s.external_id FROM sources s JOIN collections k USING (collection_id) \
         WHERE k.tenant_id = $1 AND k.name = $2 ORDER BY 1",
    )
    .bind(app.keys.tenant_id)
    .bind(collection)
    .fetch_all(&app.pool)
    .await
    .expect("sources")
}

/// The tenant's log entries of kind `retention`.
async fn retention_entries(app: &TestApp) -> Vec<pb::LogEntry> {
    let r = pb::ListDeletionLogRequest { after_seq: 0, limit: 1000 };
    ok(app.client.clone().list_deletion_log(req(&app.keys.ak, r)).await).entries.into_iter().filter(|e| e.kind == "retention").collect()
}

/// Every (table, column) of the schema that can hold text (as `no_plaintext`).
async fn text_columns(pool: &sqlx::PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        r#"
        SELECT table_name::text, column_name::text FROM information_schema.columns
        WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'ARRAY')
        ORDER BY 1, 2
        "#,
    )
    .fetch_all(pool)
    .await
    .expect("catalog")
}

async fn tables_holding(pool: &sqlx::PgPool, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for (table, column) in text_columns(pool).await {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\" WHERE strpos(\"{column}\"::text, $1) > 0"))
            .bind(needle)
            .fetch_one(pool)
            .await
            .expect("search a column");
        if n > 0 {
            hits.push(format!("{table}.{column}"));
        }
    }
    hits
}

const OLD_TEXT: &str = "Quarterly supplier audit of the Rotterdam warehouse, draft seven";

/// Old and young sources, one old source held through a subject on legal
/// hold; preview shows exactly the old ones; the sweep erases them.
async fn old_sources_are_erased_and_young_ones_kept(backend: pb::Backend) {
    let app = spawn_app_configured(Options::default(), manual).await;
    let c = app.create_collection("docs", backend).await;
    let chunks = vec![
        chunk("old-1", 0, OLD_TEXT, &["ann"]),
        chunk("old-1", 1, "second page of the old audit", &["ann"]),
        chunk("old-2", 0, "an old memo by bob", &["bob"]),
        chunk("old-held", 0, "carol's old contract under dispute", &["carol"]),
        chunk("old-held", 1, "an untagged page of the disputed contract", &[]),
        chunk("new-1", 0, "ann's fresh note", &["ann"]),
        chunk("new-1", 1, "ann's fresh note, page two", &["ann"]),
        chunk("new-2", 0, "bob's fresh memo", &["bob"]),
    ];
    app.ingest(&c.name, chunks).await.expect("ingest");
    hold(&app, "carol").await;
    backdate(&app.pool, app.keys.tenant_id, "docs", &["old-1", "old-2", "old-held"], 40).await;
    let old = chunk_ids(&app, "docs", &["old-1", "old-2"]).await;
    let held = chunk_ids(&app, "docs", &["old-held"]).await;
    let young = chunk_ids(&app, "docs", &["new-1", "new-2"]).await;
    assert_eq!((old.len(), held.len(), young.len()), (3, 2, 3));

    let set = set_retention(&app, "docs", 30, "").await;
    assert_eq!((set.days, set.supported), (30, true));
    let p = preview(&app, "docs").await;
    assert_eq!((p.sources, p.chunks, p.withheld_sources, p.withheld_chunks, p.in_flight_sources), (2, 3, 1, 2, 0), "{p:?}");
    assert!(p.job_ids.is_empty());
    assert_eq!(backend_points(&app, "docs", &old).await, (8, 3), "a preview deletes nothing");
    assert!(retention_entries(&app).await.is_empty());

    let s = sweep(&app, "docs").await;
    assert_eq!((s.sources, s.chunks, s.withheld_sources, s.withheld_chunks), (2, 3, 1, 2), "{s:?}");
    assert_eq!(s.job_ids.len(), 1);
    let job = app.wait_for_job(&s.job_ids[0]).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    assert_eq!((job.kind.as_str(), job.subject_id.as_str(), job.subject_hash.as_str()), ("retention", "", ""));
    let target = job.retention.clone().expect("a retention job names its target");
    assert_eq!((target.collection.as_str(), target.sources, target.withheld_sources), ("docs", 2, 0));
    assert_eq!(job.counts.len(), 1, "one collection");
    let n = &job.counts[0];
    assert_eq!((n.before_by_ids, n.before_total, n.deleted, n.after_total, n.withheld), (3, 3, 3, 0, 0), "{n:?}");

    // The backend: the old points are gone, the held and young ones stay.
    assert_eq!(backend_points(&app, "docs", &old).await, (5, 0));
    assert_eq!(backend_points(&app, "docs", &held).await.1, 2);
    assert_eq!(backend_points(&app, "docs", &young).await.1, 3);
    // Lineage: the old sources and their chunks are forgotten.
    assert_eq!(lineage_sources(&app, "docs").await, ["new-1", "new-2", "old-held"]);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks WHERE tenant_id = $1 AND chunk_id = ANY($2)")
        .bind(app.keys.tenant_id)
        .bind(&old)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "no chunk row (text, residual keys) of the old sources");
    assert!(tables_holding(&app.pool, OLD_TEXT).await.is_empty(), "no table holds the old text");
    app.assert_lineage_consistent().await;
    assert_eq!(app.count_subject("ann").await.counts[0].before_by_ids, 2, "ann's young chunks stay hers");

    // The log: one `retention` entry with the counts, and a certificate that verifies.
    let entries = retention_entries(&app).await;
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].job_id.as_str(), entries[0].subject_hash.as_str()), (job.job_id.as_str(), ""));
    let (cert, body) = app.certified(&job.job_id).await;
    for doc in [&cert, &body] {
        assert_eq!(doc["retention"]["collection"], "docs", "{doc}");
        assert_eq!(doc["retention"]["sources"], 2);
        assert_eq!(doc["collections"][0]["before_total"], 3);
        assert_eq!(doc["collections"][0]["deleted"], 3);
        assert_eq!(doc["collections"][0]["after_total"], 0);
        assert!(doc.get("subject_hash").is_none(), "no subject: {doc}");
    }
    assert_eq!((body["kind"].as_str(), cert["kind"].as_str()), (Some("retention"), Some("retention")));
    assert_eq!(cert["log_seq"].as_u64(), Some(entries[0].seq));
    let v = ok(app.client.clone().verify_deletion_log(req(&app.keys.ak, pb::VerifyDeletionLogRequest::default())).await);
    assert!(v.valid, "{}", v.problem);

    // Nothing more is due but the held source.
    let p = preview(&app, "docs").await;
    assert_eq!((p.sources, p.chunks, p.withheld_sources), (0, 0, 1));
    let again = sweep(&app, "docs").await;
    assert!(again.job_ids.is_empty(), "nothing to queue: {again:?}");
    assert_eq!(retention_entries(&app).await.len(), 1, "no empty entry for a sweep that found nothing");
    let list = ok(app.client.clone().list_retention(req(&app.keys.ak, pb::ListRetentionRequest {})).await);
    assert!(!list.scheduler_enabled);
    let docs = list.collections.iter().find(|c| c.collection == "docs").expect("listed");
    assert!(docs.last_swept_at.is_some() && docs.next_sweep_at.is_none(), "{docs:?}");
    let jobs = ok(app.client.clone().list_erasures(req(&app.keys.ak, pb::ListErasuresRequest::default())).await).jobs;
    assert_eq!(jobs.iter().filter(|j| j.kind == "retention").count(), 1);
}

#[tokio::test]
async fn on_pgvector_old_sources_are_erased_and_young_ones_kept() {
    old_sources_are_erased_and_young_ones_kept(pb::Backend::Pgvector).await;
}

#[tokio::test]
async fn on_qdrant_old_sources_are_erased_and_young_ones_kept() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    old_sources_are_erased_and_young_ones_kept(pb::Backend::Qdrant).await;
}

/// A hold placed after the sweep queued the job, before it deletes: the
/// held subject's source is kept whole (its untagged chunk too), counted as
/// withheld in the job, its log entry and certificate.
async fn a_hold_after_the_sweep_withholds_the_source(backend: pb::Backend) {
    let app = spawn_app_configured(Options { no_workers: true, ..Options::default() }, manual).await;
    let c = app.create_collection("mail", backend).await;
    let chunks = vec![
        chunk("m-1", 0, "dave's old thread", &["dave"]),
        chunk("m-1", 1, "a reply nobody is tagged in", &[]),
        chunk("m-2", 0, "erin's old thread", &["erin"]),
    ];
    app.ingest(&c.name, chunks).await.expect("ingest");
    backdate(&app.pool, app.keys.tenant_id, "mail", &["m-1", "m-2"], 10).await;
    set_retention(&app, "mail", 7, "").await;
    let s = sweep(&app, "mail").await;
    assert_eq!((s.sources, s.chunks, s.job_ids.len()), (2, 3, 1));
    hold(&app, "dave").await;

    let owner = Uuid::new_v4();
    while lethe::erasure::try_execute_job(&app.ctx, owner).await.expect("queue") == lethe::erasure::ExecutionOutcome::JobRan {}
    let job = app.job(&s.job_ids[0]).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    let n = &job.counts[0];
    assert_eq!((n.before_total, n.deleted, n.after_total, n.withheld), (3, 1, 2, 2), "{n:?}");
    assert_eq!(job.retention.as_ref().map(|r| (r.sources, r.withheld_sources)), Some((2, 1)));
    assert!(job.notes.iter().any(|n| n.code == "legal_hold_withheld"), "{:?}", job.notes);
    let m1 = chunk_ids(&app, "mail", &["m-1"]).await;
    assert_eq!(m1.len(), 2, "the held source keeps its lineage");
    assert_eq!(backend_points(&app, "mail", &m1).await, (2, 2), "and its points, the untagged one too");
    assert_eq!(lineage_sources(&app, "mail").await, ["m-1"]);
    let (cert, body) = app.certified(&job.job_id).await;
    assert_eq!((cert["retention"]["withheld_sources"].as_i64(), body["collections"][0]["withheld"].as_i64()), (Some(1), Some(2)));
    let p = preview(&app, "mail").await;
    assert_eq!((p.sources, p.withheld_sources, p.withheld_chunks), (0, 1, 2));
}

#[tokio::test]
async fn on_pgvector_a_hold_after_the_sweep_withholds_the_source() {
    a_hold_after_the_sweep_withholds_the_source(pb::Backend::Pgvector).await;
}

#[tokio::test]
async fn on_qdrant_a_hold_after_the_sweep_withholds_the_source() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    a_hold_after_the_sweep_withholds_the_source(pb::Backend::Qdrant).await;
}

#[tokio::test]
async fn rules_per_source_kind_override_the_collections() {
    let app = spawn_app_configured(Options { no_workers: true, ..Options::default() }, manual).await;
    let c = app.create_collection("inbox", pb::Backend::Pgvector).await;
    let kinded = |source: &str, kind: &str| pb::IngestChunk { source_kind: kind.into(), ..chunk(source, 0, &format!("{source} text"), &["x"]) };
    let chunks = vec![
        kinded("chat-10d", "chat"),
        kinded("note-10d", "note"),
        kinded("note-40d", "note"),
        kinded("contract-40d", "contract"),
    ];
    app.ingest(&c.name, chunks).await.expect("ingest");
    backdate(&app.pool, app.keys.tenant_id, "inbox", &["chat-10d", "note-10d"], 10).await;
    backdate(&app.pool, app.keys.tenant_id, "inbox", &["note-40d", "contract-40d"], 40).await;

    // Only a kind's rule: the collection keeps the rest.
    let r = set_retention(&app, "inbox", 7, "chat").await;
    assert_eq!(r.days, 0);
    assert_eq!(r.source_kinds.iter().map(|k| (k.source_kind.as_str(), k.days)).collect::<Vec<_>>(), [("chat", 7)]);
    assert_eq!(preview(&app, "inbox").await.sources, 1, "chat-10d");
    set_retention(&app, "inbox", 30, "").await;
    set_retention(&app, "inbox", 0, "contract").await;
    assert_eq!(preview(&app, "inbox").await.sources, 2, "chat-10d, note-40d; the contract is kept");
    let clear = pb::SetRetentionRequest { collection: "inbox".into(), days: 0, source_kind: "chat".into(), clear: true };
    let r = ok(app.client.clone().set_retention(req(&app.keys.sk, clear)).await);
    assert_eq!(r.source_kinds.len(), 1, "chat follows the collection again: {r:?}");
    let p = preview(&app, "inbox").await;
    assert_eq!((p.sources, p.chunks), (1, 1), "note-40d only");
    let s = sweep(&app, "inbox").await;
    assert_eq!(s.job_ids.len(), 1);
    let targets: Vec<String> = sqlx::query_scalar(
        "SELECT s.external_id FROM retention_targets t JOIN sources s USING (source_id) WHERE t.job_id = $1",
    )
    .bind(Uuid::parse_str(&s.job_ids[0]).unwrap())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(targets, ["note-40d"]);
}

/// Settings of a second replica of `app`: its master keys and signing key
/// (replicas share them), then `more`.
fn replica_of(app: &TestApp, more: fn(&mut lethe::config::Settings)) -> impl FnOnce(&mut lethe::config::Settings) {
    let (master, signing) = (app.settings.keys.master_key_file.clone(), app.settings.audit.signing_key_file.clone());
    move |s| {
        s.keys.master_key_file = master;
        s.audit.signing_key_file = signing;
        more(s);
    }
}

/// A backlog larger than `sources_per_job × max_jobs_per_sweep` drains
/// sweep after sweep: never more than that many sources in flight.
#[tokio::test]
async fn a_backlog_is_queued_a_bounded_batch_at_a_time() {
    fn small(s: &mut lethe::config::Settings) {
        s.retention.enabled = false;
        s.retention.sources_per_job = 2;
        s.retention.max_jobs_per_sweep = 2;
    }
    let app = spawn_app_configured(Options { no_workers: true, ..Options::default() }, small).await;
    let c = app.create_collection("pile", pb::Backend::Pgvector).await;
    let names: Vec<String> = (0..7).map(|i| format!("p{i}")).collect();
    app.ingest(&c.name, names.iter().map(|n| chunk(n, 0, "old", &["w"])).collect()).await.expect("ingest");
    backdate(&app.pool, app.keys.tenant_id, "pile", &names.iter().map(String::as_str).collect::<Vec<_>>(), 9).await;
    set_retention(&app, "pile", 8, "").await;
    let first = sweep(&app, "pile").await;
    assert_eq!((first.sources, first.job_ids.len(), first.deferred_sources), (4, 2, 3), "{first:?}");
    let second = sweep(&app, "pile").await;
    assert_eq!((second.sources, second.in_flight_sources, second.deferred_sources), (0, 4, 3), "{second:?}");
    let p = preview(&app, "pile").await;
    assert_eq!((p.sources, p.in_flight_sources, p.deferred_sources), (3, 4, 3), "{p:?}");
    let owner = Uuid::new_v4();
    while lethe::erasure::try_execute_job(&app.ctx, owner).await.expect("queue") == lethe::erasure::ExecutionOutcome::JobRan {}
    let third = sweep(&app, "pile").await;
    assert_eq!((third.sources, third.job_ids.len(), third.deferred_sources), (3, 2, 0), "{third:?}");
    while lethe::erasure::try_execute_job(&app.ctx, owner).await.expect("queue") == lethe::erasure::ExecutionOutcome::JobRan {}
    assert!(lineage_sources(&app, "pile").await.is_empty());
    assert_eq!(retention_entries(&app).await.len(), 4);
}

/// Two services on one database, both running the scheduler, and a
/// SweepRetention on each at the same moment: every old source is in
/// exactly one job, each job has one log entry, and the counts add up.
#[tokio::test]
async fn two_services_sweeping_at_once_erase_each_source_once() {
    fn fast(s: &mut lethe::config::Settings) {
        s.retention.enabled = true;
        s.retention.interval_secs = 1;
        s.retention.sources_per_job = 4;
    }
    let db = fresh_database().await;
    let a = spawn_app_at_configured(&db, qdrant_url().as_deref(), Options::default(), fast).await;
    let b = spawn_app_at_configured(&db, qdrant_url().as_deref(), Options::default(), replica_of(&a, fast)).await;
    let keys = a.keys.clone();
    let c = a.create_collection("logs", pb::Backend::Pgvector).await;
    let old: Vec<String> = (0..30).map(|i| format!("old-{i}")).collect();
    let mut chunks: Vec<pb::IngestChunk> = old.iter().map(|s| chunk(s, 0, &format!("{s} entry"), &["ops"])).collect();
    chunks.extend((0..5).map(|i| chunk(&format!("young-{i}"), 0, "fresh entry", &["ops"])));
    a.ingest(&c.name, chunks).await.expect("ingest");
    let old_refs: Vec<&str> = old.iter().map(String::as_str).collect();
    backdate(&a.pool, keys.tenant_id, "logs", &old_refs, 100).await;

    let rule = pb::SetRetentionRequest { collection: "logs".into(), days: 90, ..Default::default() };
    ok(a.client.clone().set_retention(req(&keys.sk, rule)).await);
    let sweep_on = |client: LetheClient<tonic::transport::Channel>| {
        let key = keys.sk.clone();
        async move { client.clone().sweep_retention(req(&key, pb::SweepRetentionRequest { collection: "logs".into() })).await }
    };
    let (ra, rb) = tokio::join!(sweep_on(a.client.clone()), sweep_on(b.client.clone()));
    let queued: u64 = [ra, rb].into_iter().map(|r| r.expect("sweep").into_inner().collections[0].sources).sum();
    assert!(queued <= 30, "the two sweeps queued {queued} sources between them");

    // The schedulers and the sweeps together: every source in one job.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (done, busy): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status IN ('queued', 'in_progress')) \
             FROM erasure_jobs WHERE kind = 'retention'",
        )
        .fetch_one(&a.pool)
        .await
        .unwrap();
        let left = lineage_sources(&a, "logs").await.iter().filter(|s| s.starts_with("old-")).count();
        if busy == 0 && left == 0 && done > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "retention did not finish: {done} done, {busy} busy, {left} old sources left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let twice: i64 = sqlx::query_scalar("SELECT count(*) FROM (SELECT source_id FROM retention_targets GROUP BY 1 HAVING count(*) > 1) d")
        .fetch_one(&a.pool)
        .await
        .unwrap();
    assert_eq!(twice, 0, "no source was given to two jobs");
    let jobs: Vec<(Uuid, String)> = sqlx::query_as("SELECT job_id, status FROM erasure_jobs WHERE kind = 'retention'").fetch_all(&a.pool).await.unwrap();
    assert!(jobs.iter().all(|(_, s)| s == "completed"), "{jobs:?}");
    assert!(jobs.len() >= 8, "30 sources in jobs of at most 4: {}", jobs.len());
    let entries = retention_entries(&a).await;
    assert_eq!(entries.len(), jobs.len(), "one log entry per job");
    let logged: HashSet<&str> = entries.iter().map(|e| e.job_id.as_str()).collect();
    assert_eq!(logged.len(), jobs.len(), "no job logged twice");
    let mut deleted = 0;
    for (id, _) in &jobs {
        let job = a.job(&id.to_string()).await;
        deleted += job.counts.iter().map(|c| c.deleted).sum::<u64>();
    }
    assert_eq!(deleted, 30, "each old vector deleted and counted once");
    assert_eq!(backend_points(&a, "logs", &[]).await.0, 5, "the young entries stay");
    let v = ok(b.client.clone().verify_deletion_log(req(&keys.ak, pb::VerifyDeletionLogRequest::default())).await);
    assert!(v.valid, "{}", v.problem);
    drop(b);
}

/// Two replicas' schedulers ticking at the same moment: one of them claims
/// the collection's sweep.
#[tokio::test]
async fn a_due_collection_is_claimed_by_one_scheduler() {
    let db = fresh_database().await;
    let a = spawn_app_at_configured(&db, None, Options { no_workers: true, ..Options::default() }, manual).await;
    let b = spawn_app_at_configured(&db, None, Options { no_workers: true, ..Options::default() }, replica_of(&a, manual)).await;
    let c = a.create_collection("tick", pb::Backend::Pgvector).await;
    a.ingest(&c.name, vec![chunk("t-1", 0, "old", &["z"]), chunk("t-2", 0, "old too", &["z"])]).await.expect("ingest");
    backdate(&a.pool, a.keys.tenant_id, "tick", &["t-1", "t-2"], 5).await;
    set_retention(&a, "tick", 1, "").await;
    let (ta, tb) = tokio::join!(lethe::retention::scheduler::tick(&a.ctx), lethe::retention::scheduler::tick(&b.ctx));
    assert_eq!(ta.expect("tick") + tb.expect("tick"), 1, "one scheduler swept the collection");
    let (jobs, targets): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM erasure_jobs WHERE kind = 'retention'), (SELECT count(*) FROM retention_targets)",
    )
    .fetch_one(&a.pool)
    .await
    .unwrap();
    assert_eq!((jobs, targets), (1, 2));
    // Not due again before its interval.
    assert_eq!(lethe::retention::scheduler::tick(&a.ctx).await.expect("tick"), 0);
    let list = ok(a.client.clone().list_retention(req(&a.keys.ak, pb::ListRetentionRequest {})).await);
    let tick = list.collections.iter().find(|c| c.collection == "tick").expect("listed");
    assert!(tick.last_swept_at.is_some(), "{tick:?}");
}

#[tokio::test]
async fn the_scheduler_sweeps_on_its_own() {
    fn every_second(s: &mut lethe::config::Settings) {
        s.retention.enabled = true;
        s.retention.interval_secs = 1;
    }
    let app = spawn_app_configured(Options::default(), every_second).await;
    let c = app.create_collection("auto", pb::Backend::Pgvector).await;
    app.ingest(&c.name, vec![chunk("a-old", 0, "an old one", &["q"]), chunk("a-new", 0, "a new one", &["q"])]).await.expect("ingest");
    backdate(&app.pool, app.keys.tenant_id, "auto", &["a-old"], 3).await;
    let r = set_retention(&app, "auto", 2, "").await;
    assert!(r.next_sweep_at.is_some(), "a rule with the scheduler on has a next sweep: {r:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while lineage_sources(&app, "auto").await != ["a-new"] {
        assert!(tokio::time::Instant::now() < deadline, "the scheduler did not erase the old source");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let jobs = ok(app.client.clone().list_erasures(req(&app.keys.ak, pb::ListErasuresRequest::default())).await).jobs;
    let job = jobs.iter().find(|j| j.kind == "retention").expect("a retention job");
    let job = app.wait_for_job(&job.job_id).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    assert_eq!(job.requested_by, "retention sweep (scheduled)");
    assert_eq!((job.counts[0].before_total, job.counts[0].deleted), (1, 1));
    assert_eq!(retention_entries(&app).await.len(), 1);
}

#[tokio::test]
async fn bad_retention_requests_get_the_right_codes() {
    let app = spawn_app_configured(Options { no_workers: true, ..Options::default() }, manual).await;
    app.create_collection("plain", pb::Backend::Pgvector).await;
    let mut client = app.client.clone();
    let set = |collection: &str, days: i32, kind: &str, clear: bool| pb::SetRetentionRequest {
        collection: collection.into(),
        days,
        source_kind: kind.into(),
        clear,
    };
    let cases = [
        (set("plain", -1, "", false), Code::InvalidArgument, "days"),
        (set("plain", 36_501, "", false), Code::InvalidArgument, "days"),
        (set("plain", i32::MAX, "", false), Code::InvalidArgument, "days"),
        (set("", 5, "", false), Code::InvalidArgument, "collection"),
        (set("no such/name", 5, "", false), Code::InvalidArgument, "collection"),
        (set("plain", 5, &"k".repeat(129), false), Code::InvalidArgument, "source_kind"),
        (set("plain", 0, "", true), Code::InvalidArgument, "clear"),
        (set("plain", 3, "chat", true), Code::InvalidArgument, "days"),
        (set("missing", 5, "", false), Code::NotFound, ""),
    ];
    for (r, code, field) in cases {
        let e = client.set_retention(req(&app.keys.sk, r.clone())).await.expect_err("refused");
        assert_eq!(e.code(), code, "{r:?}: {e:?}");
        if code == Code::InvalidArgument {
            use tonic_types::StatusExt;
            let named = e.get_error_details().bad_request().map(|b| b.field_violations[0].field.clone());
            assert_eq!(named.as_deref(), Some(field), "{r:?}: {e:?}");
        }
    }
    assert_eq!(set_retention(&app, "plain", 36_500, "").await.days, 36_500, "the bound itself is allowed");

    // Keys of the wrong kind.
    for key in [&app.keys.pk, &app.keys.ak] {
        let e = client.set_retention(req(key, set("plain", 5, "", false))).await.expect_err("sk only");
        assert_eq!((e.code(), reason(&e).as_str()), (Code::PermissionDenied, "requires_secret_key"));
        let e = client.sweep_retention(req(key, pb::SweepRetentionRequest::default())).await.expect_err("sk only");
        assert_eq!(e.code(), Code::PermissionDenied);
    }
    let e = client.list_retention(req(&app.keys.pk, pb::ListRetentionRequest {})).await.expect_err("pk cannot read");
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = client.preview_retention(req(&app.keys.pk, pb::PreviewRetentionRequest::default())).await.expect_err("pk cannot read");
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = client.list_retention(req("sk_nonsense", pb::ListRetentionRequest {})).await.expect_err("bad key");
    assert_eq!(e.code(), Code::Unauthenticated);
    ok(client.list_retention(req(&app.keys.ak, pb::ListRetentionRequest {})).await);

    // Preview and sweep of a collection: unknown, without a rule, or a bad name.
    app.create_collection("norule", pb::Backend::Pgvector).await;
    let e = client.sweep_retention(req(&app.keys.sk, pb::SweepRetentionRequest { collection: "missing".into() })).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = client.sweep_retention(req(&app.keys.sk, pb::SweepRetentionRequest { collection: "norule".into() })).await.unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "no_retention_rule"));
    let e = client.preview_retention(req(&app.keys.ak, pb::PreviewRetentionRequest { collection: "bad name!".into() })).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // All collections: only those with a rule.
    let all = ok(client.preview_retention(req(&app.keys.ak, pb::PreviewRetentionRequest::default())).await).collections;
    assert_eq!(all.iter().map(|c| c.collection.as_str()).collect::<Vec<_>>(), ["plain"]);

    // Attached collections have no timestamp: refused, and nothing changes.
    sqlx::raw_sql(
        "CREATE TABLE ret_attached (id uuid PRIMARY KEY, who text, emb vector(3));
         INSERT INTO ret_attached VALUES (gen_random_uuid(), 'amy', '[1,2,3]');",
    )
    .execute(&app.pool)
    .await
    .expect("a hand-made table");
    let attach = pb::AttachRequest {
        name: "ext".into(),
        backend: pb::Backend::Pgvector as i32,
        target: "ret_attached".into(),
        mapping: Some(pb::AttachMapping {
            id: "id".into(),
            vector: "emb".into(),
            tags: Some(pb::FieldPath { column: "who".into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    ok(client.attach(req(&app.keys.sk, attach)).await);
    let e = client.set_retention(req(&app.keys.sk, set("ext", 30, "", false))).await.unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::FailedPrecondition, "retention_needs_timestamp"));
    ok(client.set_retention(req(&app.keys.sk, set("ext", 0, "", false))).await);
    let list = ok(client.list_retention(req(&app.keys.ak, pb::ListRetentionRequest {})).await);
    let ext = list.collections.iter().find(|c| c.collection == "ext").expect("listed");
    assert_eq!((ext.supported, ext.days), (false, 0));
    assert_eq!(rows(&app.pool, "retention_rules").await, 0);
}

async fn wait_for_adoption(app: &TestApp, name: &str) -> pb::AttachJob {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let job = ok(app.client.clone().get_attach(req(&app.keys.ak, pb::GetAttachRequest { collection: name.into() })).await);
        if job.status == "completed" || job.status == "failed" {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "adoption did not end: {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An attached table whose mapping names when each row was written: the
/// sources are dated by their oldest row, and the old ones are deleted from
/// the table itself.
#[tokio::test]
async fn an_attached_table_with_a_timestamp_keeps_its_rows_for_the_rules_days() {
    let app = spawn_app_configured(Options::default(), manual).await;
    sqlx::raw_sql(
        "CREATE TABLE ret_dated (id text PRIMARY KEY, who text, doc text, body text, written timestamptz, emb vector(3));
         INSERT INTO ret_dated VALUES
           ('r1', 'amy', 'contract-a', 'the 2019 contract', now() - interval '400 days', '[1,0,0]'),
           ('r2', 'amy', 'contract-a', 'its annex, added later', now() - interval '2 days', '[0,1,0]'),
           ('r3', 'ben', 'memo-b', 'a memo from last year', now() - interval '100 days', '[0,0,1]'),
           ('r4', 'ben', 'memo-c', 'a memo from this week', now() - interval '3 days', '[1,1,0]'),
           ('r5', 'cal', 'memo-d', 'a memo without a date', NULL, '[1,0,1]');",
    )
    .execute(&app.pool)
    .await
    .expect("a hand-made table");
    let mapping = |timestamp: Option<pb::FieldPath>| pb::AttachMapping {
        id: "id".into(),
        vector: "emb".into(),
        text: Some(pb::FieldPath { column: "body".into(), ..Default::default() }),
        source: Some(pb::FieldPath { column: "doc".into(), ..Default::default() }),
        tags: Some(pb::FieldPath { column: "who".into(), ..Default::default() }),
        timestamp,
        ..Default::default()
    };
    let attach = |timestamp| pb::AttachRequest {
        name: "dated".into(),
        backend: pb::Backend::Pgvector as i32,
        target: "ret_dated".into(),
        mapping: Some(mapping(timestamp)),
        ..Default::default()
    };
    // A timestamp column that does not exist, or of a type that holds no time.
    for (column, why) in [("missing", "has no column"), ("emb", "timestamptz")] {
        let e = app.client.clone().attach(req(&app.keys.sk, attach(Some(pb::FieldPath { column: column.into(), ..Default::default() })))).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(why), "{}", e.message());
    }
    ok(app.client.clone().attach(req(&app.keys.sk, attach(Some(pb::FieldPath { column: "written".into(), ..Default::default() })))).await);
    let job = wait_for_adoption(&app, "dated").await;
    assert_eq!((job.status.as_str(), job.scanned), ("completed", 5), "{job:?}");

    assert!(set_retention(&app, "dated", 30, "").await.supported);
    let p = preview(&app, "dated").await;
    assert_eq!((p.sources, p.chunks), (2, 3), "contract-a (by its oldest row) and memo-b: {p:?}");
    let s = sweep(&app, "dated").await;
    let done = app.wait_for_job(&s.job_ids[0]).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let n = &done.counts[0];
    assert_eq!((n.before_total, n.deleted, n.after_total), (3, 3, 0), "{n:?}");
    let left: Vec<String> = sqlx::query_scalar("SELECT id FROM ret_dated ORDER BY id").fetch_all(&app.pool).await.unwrap();
    assert_eq!(left, ["r4", "r5"], "the week-old row and the undated one (dated by its adoption) stay");
    assert_eq!(lineage_sources(&app, "dated").await, ["memo-c", "memo-d"]);
    let (cert, _) = app.certified(&done.job_id).await;
    assert_eq!(cert["retention"]["collection"], "dated");
}

/// The same on a Qdrant collection a pipeline wrote, with the time as RFC
/// 3339 text in some points and seconds since the epoch in others.
#[tokio::test]
async fn an_attached_qdrant_collection_with_a_timestamp_keeps_its_points_for_the_rules_days() {
    use qdrant_client::qdrant::{CountPointsBuilder, CreateCollectionBuilder, Distance, PointStruct, UpsertPointsBuilder, VectorParamsBuilder};
    let Some(url) = qdrant_url() else {
        panic!("QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    };
    let app = spawn_app_configured(Options::default(), manual).await;
    let client = qdrant_client::Qdrant::from_url(&url).build().expect("client");
    let name = format!("dated_{}", &Uuid::new_v4().simple().to_string()[..8]);
    client
        .create_collection(CreateCollectionBuilder::new(&name).vectors_config(VectorParamsBuilder::new(3, Distance::Cosine)))
        .await
        .expect("create collection");
    let day = 86_400;
    let now = chrono::Utc::now();
    let points: Vec<PointStruct> = [
        (1u64, "old-doc", serde_json::json!((now - chrono::Duration::days(200)).to_rfc3339())),
        (2, "old-doc", serde_json::json!((now - chrono::Duration::days(1)).to_rfc3339())),
        (3, "epoch-doc", serde_json::json!(now.timestamp() - 90 * day)),
        (4, "new-doc", serde_json::json!(now.timestamp() - day)),
    ]
    .into_iter()
    .map(|(id, doc, at)| {
        let payload = serde_json::json!({ "owner": "dee", "doc": doc, "meta": { "created": at } });
        PointStruct::new(id, vec![1.0, id as f32, 0.5], qdrant_client::Payload::try_from(payload).expect("payload"))
    })
    .collect();
    client.upsert_points(UpsertPointsBuilder::new(&name, points).wait(true)).await.expect("upsert");
    let r = pb::AttachRequest {
        name: "qdated".into(),
        backend: pb::Backend::Qdrant as i32,
        target: name.clone(),
        mapping: Some(pb::AttachMapping {
            source: Some(pb::FieldPath { path: vec!["doc".into()], ..Default::default() }),
            tags: Some(pb::FieldPath { path: vec!["owner".into()], ..Default::default() }),
            timestamp: Some(pb::FieldPath { path: vec!["meta".into(), "created".into()], ..Default::default() }),
            ..Default::default()
        }),
        create_indexes: true,
        ..Default::default()
    };
    ok(app.client.clone().attach(req(&app.keys.sk, r)).await);
    assert_eq!(wait_for_adoption(&app, "qdated").await.status, "completed");
    set_retention(&app, "qdated", 30, "").await;
    let p = preview(&app, "qdated").await;
    assert_eq!((p.sources, p.chunks), (2, 3), "{p:?}");
    let s = sweep(&app, "qdated").await;
    let done = app.wait_for_job(&s.job_ids[0]).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!((done.counts[0].before_total, done.counts[0].deleted), (3, 3));
    let left = client.count(CountPointsBuilder::new(&name).exact(true)).await.expect("count").result.expect("result").count;
    assert_eq!(left, 1, "new-doc stays");
    let _ = client.delete_collection(name.as_str()).await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_service(db_url: &str, port: u16, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lethe"))
        .arg("serve")
        .env("LETHE_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/configuration"))
        .env("LETHE_DATABASE__URL", db_url)
        .env("LETHE_APPLICATION__PORT", port.to_string())
        .env("LETHE_WEB__ENABLED", "false")
        .env("LETHE_EMBEDDING__PROVIDER", "hashing")
        .env("LETHE_QDRANT__URL", "")
        .env("LETHE_ERASURE__STAGE_PAUSE_MS", "600")
        .env("LETHE_ERASURE__LEASE_SECS", "2")
        .env("LETHE_ERASURE__POLL_INTERVAL_MS", "100")
        .env("LETHE_RETENTION__ENABLED", "true")
        .env("LETHE_RETENTION__INTERVAL_SECS", "1")
        .env("LETHE_AUDIT__SIGNING_KEY_FILE", dir.join("key.pem"))
        .env("LETHE_KEYS__MASTER_KEY_FILE", dir.join("master_keys.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lethe")
}

async fn connect(port: u16) -> LetheClient<tonic::transport::Channel> {
    for _ in 0..200 {
        if let Ok(c) = LetheClient::connect(format!("http://127.0.0.1:{port}")).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("lethe did not start on {port}");
}

/// The scheduler of a service killed (SIGKILL) in the middle of a
/// retention job: the restarted service resumes the job, with the right
/// counts, one log entry, and no second job for the same sources.
#[tokio::test]
async fn a_killed_service_resumes_the_retention_job() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    lethe::store::migrate(&pool).await.unwrap();
    let keys = new_tenant(&pool).await;

    let port = free_port();
    let mut first = start_service(&db_url, port, dir.path());
    let mut client = connect(port).await;
    let coll = pb::CreateCollectionRequest { name: "arch".into(), backend: 1, dimension: 384, ..Default::default() };
    let c = client.create_collection(req(&keys.sk, coll)).await.unwrap().into_inner();
    let chunks = (0..6).map(|i| chunk(&format!("d{i}"), 0, &format!("archived text {i}"), &["ops"])).collect();
    client.ingest(req(&keys.sk, pb::IngestRequest { collection: "arch".into(), chunks, subjects: vec![] })).await.unwrap();
    backdate(&pool, keys.tenant_id, "arch", &["d0", "d1", "d2", "d3"], 50).await;
    let rule = pb::SetRetentionRequest { collection: "arch".into(), days: 30, ..Default::default() };
    client.set_retention(req(&keys.sk, rule)).await.unwrap();

    // Kill it once the scheduler's job is deleting.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let job_id: Uuid = loop {
        let row: Option<(Uuid, String)> =
            sqlx::query_as("SELECT job_id, stage FROM erasure_jobs WHERE kind = 'retention'").fetch_optional(&pool).await.unwrap();
        if let Some((id, stage)) = row
            && ["delete", "verify", "residual"].contains(&stage.as_str())
        {
            break id;
        }
        assert!(tokio::time::Instant::now() < deadline, "the retention job never reached the delete stage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let stuck: String = sqlx::query_scalar("SELECT status FROM erasure_jobs WHERE job_id = $1").bind(job_id).fetch_one(&pool).await.unwrap();
    assert_eq!(stuck, "in_progress", "the job was cut off mid-way");

    let port = free_port();
    let mut second = start_service(&db_url, port, dir.path());
    let client = connect(port).await;
    let done = wait_for_job(&client, &keys.ak, &job_id.to_string()).await;
    // A sweep after the restart finds nothing more to queue.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    second.kill().ok();
    second.wait().ok();

    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert!(done.attempts >= 2, "the job ran in two processes");
    let n = &done.counts[0];
    assert_eq!((n.before_total, n.deleted, n.after_total), (4, 4, 0));
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\"", c.backend_name)).fetch_one(&pool).await.unwrap();
    assert_eq!(rows, 2, "the two young vectors remain");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM erasure_jobs WHERE kind = 'retention'").fetch_one(&pool).await.unwrap();
    assert_eq!(jobs, 1, "one job for the four sources");
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM deletion_log WHERE kind = 'retention'").fetch_one(&pool).await.unwrap();
    assert_eq!(entries, 1, "exactly one log entry");
    let sources: Vec<String> = sqlx::query_scalar("SELECT external_id FROM sources ORDER BY 1").fetch_all(&pool).await.unwrap();
    assert_eq!(sources, ["d4", "d5"]);
}

/// A retention job that failed is not queued again at every sweep (it would
/// fail again every interval): its sources wait `retry_failed_after_secs`,
/// counted apart in the preview, then are swept again.
#[tokio::test]
async fn the_sources_of_a_failed_retention_job_wait_before_they_are_swept_again() {
    let app = spawn_app_configured(Options { no_workers: true, ..Options::default() }, manual).await;
    let c = app.create_collection("shaky", pb::Backend::Pgvector).await;
    app.ingest(&c.name, vec![chunk("s1", 0, "old", &["w"]), chunk("s2", 0, "old", &["w"])]).await.expect("ingest");
    backdate(&app.pool, app.keys.tenant_id, "shaky", &["s1", "s2"], 9).await;
    set_retention(&app, "shaky", 8, "").await;
    let first = sweep(&app, "shaky").await;
    assert_eq!((first.sources, first.job_ids.len()), (2, 1), "{first:?}");
    // The job fails for good (as after its last attempt).
    let job: Uuid = first.job_ids[0].parse().expect("job id");
    sqlx::query("UPDATE erasure_jobs SET status = 'failed', error = 'delete: backend down', completed_at = now() WHERE job_id = $1")
        .bind(job)
        .execute(&app.pool)
        .await
        .expect("fail the job");
    let p = preview(&app, "shaky").await;
    assert_eq!((p.sources, p.in_flight_sources, p.failed_sources), (0, 0, 2), "{p:?}");
    let again = sweep(&app, "shaky").await;
    assert_eq!((again.sources, again.job_ids.len(), again.failed_sources), (0, 0, 2), "{again:?}");
    // Once the window has passed, the sources are swept again and erased.
    sqlx::query("UPDATE erasure_jobs SET completed_at = now() - interval '2 days' WHERE job_id = $1")
        .bind(job)
        .execute(&app.pool)
        .await
        .expect("age the failure");
    let later = sweep(&app, "shaky").await;
    assert_eq!((later.sources, later.job_ids.len(), later.failed_sources), (2, 1, 0), "{later:?}");
    let owner = Uuid::new_v4();
    while lethe::erasure::try_execute_job(&app.ctx, owner).await.expect("queue") == lethe::erasure::ExecutionOutcome::JobRan {}
    assert!(lineage_sources(&app, "shaky").await.is_empty());
}

/// A re-index that switches after a retention job deleted its sources'
/// points, but before the job forgot their lineage (retention freezes no
/// subject, so that lineage still counts as live), does not bring the old
/// copies back: the switch promotes only what the live generation holds.
#[tokio::test]
async fn a_reindex_switch_does_not_bring_back_what_retention_deleted() {
    let opts = Options { no_workers: true, stage_pause_ms: 1500, ..Options::default() };
    let app = spawn_app_configured(opts, manual).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest(&c.name, vec![chunk("old", 0, "dave's old thread", &["dave"]), chunk("new", 0, "erin's new thread", &["erin"])])
        .await
        .expect("ingest");
    backdate(&app.pool, app.keys.tenant_id, "mail", &["old"], 10).await;
    set_retention(&app, "mail", 7, "").await;
    let r = pb::ReindexRequest { collection: "mail".into(), mode: pb::ReindexMode::Copy as i32 };
    let reindex: Uuid = ok(app.client.clone().reindex(req(&app.keys.sk, r)).await).job_id.parse().unwrap();
    let step = || async { lethe::reindex::step(&app.ctx, app.keys.tenant_id, reindex).await.expect("stage").stage };
    assert_eq!(step().await, "copy");
    assert_eq!(step().await, "switch", "the staging generation holds both threads");

    let s = sweep(&app, "mail").await;
    let job_id = s.job_ids[0].clone();
    let ctx = app.ctx.clone();
    let worker = tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await });
    // Deleted and verified in the live generation; lineage not forgotten yet.
    crate::residual_progress::reach_stage(&app, &job_id, pb::Stage::ForgetLineage).await;
    assert_eq!(app.pg_rows_tagged(&c, "dave").await, 0);
    assert_eq!(step().await, "drop");
    worker.await.expect("worker").expect("queue");
    let job = app.job(&job_id).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    assert_eq!(step().await, "done");
    assert_eq!(app.pg_rows_tagged(&c, "dave").await, 0, "not promoted from the copy");
    assert_eq!(app.pg_rows_tagged(&c, "erin").await, 1);
    assert!(chunk_ids(&app, "mail", &["old"]).await.is_empty());
    app.assert_lineage_consistent().await;
}

/// A person's chunk of an expired source is counted by the retention job
/// of its source and by the person's erasure, running at the same time: one
/// of them deletes it, and both certificates said they did. Now the first
/// logged is credited and the other reports it as deleted by another job,
/// whichever planned first (the earlier one cannot know of the later one:
/// the retention job marks its tagged points, the erasure its points of
/// sources old enough for the collection's rules).
#[tokio::test]
async fn a_point_a_retention_job_and_an_erasure_both_counted_is_certified_deleted_once() {
    for retention_first in [true, false] {
        let app = spawn_app_configured(Options { no_workers: true, stage_pause_ms: 200, ..Options::default() }, manual).await;
        let c = app.create_collection("mail", pb::Backend::Pgvector).await;
        let chunks = vec![
            chunk("old", 0, "ann's note from the archive", &["ann"]),
            chunk("old", 1, "the archive's index page", &[]),
            chunk("new", 0, "ann's recent note", &["ann"]),
        ];
        app.ingest(&c.name, chunks).await.expect("ingest");
        backdate(&app.pool, app.keys.tenant_id, "mail", &["old"], 40).await;
        set_retention(&app, "mail", 30, "").await;
        let (retention, erasure) = if retention_first {
            let s = sweep(&app, "mail").await;
            (s.job_ids[0].clone(), app.erase("ann").await.job_id)
        } else {
            let e = app.erase("ann").await.job_id;
            (sweep(&app, "mail").await.job_ids[0].clone(), e)
        };
        // Each worker runs one job stage by stage, 200 ms apart; the second
        // plans before the first deletes.
        let run = || {
            let ctx = app.ctx.clone();
            tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await })
        };
        let first = run();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = run();
        for w in [first, second] {
            assert_eq!(w.await.expect("worker").expect("run"), lethe::erasure::ExecutionOutcome::JobRan);
        }
        let mut deleted = 0;
        for (id, before) in [(&retention, 2), (&erasure, 2)] {
            let job = app.job(id).await;
            assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
            let n = &job.counts[0];
            assert_eq!((n.before_total, n.after_total), (before, 0), "retention first: {retention_first}, {n:?}");
            let (_, body) = app.certified(id).await;
            let k = &body["collections"][0];
            let other = k["deleted_by_other_erasures"].as_i64().unwrap_or(0);
            assert_eq!(k["deleted"].as_i64(), Some(n.deleted as i64));
            assert_eq!(k["before_total"].as_i64(), Some(n.deleted as i64 + other), "adds up: {k}");
            if other > 0 {
                assert!(job.notes.iter().any(|n| n.code == "deleted_by_another_erasure"), "{:?}", job.notes);
            }
            deleted += n.deleted;
        }
        assert_eq!(deleted, 3, "retention first: {retention_first}: three points left the store, each certified once");
        assert_eq!(backend_points(&app, "mail", &[]).await.0, 0);
    }
}

/// A point of an old source written again after the retention job's verify
/// stage counted it gone, before lineage is forgotten: its vector is back,
/// so it keeps its lineage (its source stays, with it); the source's other
/// point, gone, is forgotten with its text. Before, forget lineage deleted
/// both chunks and left the written point's vector without lineage.
#[tokio::test]
async fn a_point_written_again_between_verify_and_forget_keeps_its_lineage() {
    let app = spawn_app_configured(Options { no_workers: true, ..Options::default() }, manual).await;
    let c = app.create_collection("docs", pb::Backend::Pgvector).await;
    let chunks = vec![chunk("old-1", 0, "an old note", &[]), chunk("old-1", 1, "another old note", &[])];
    app.ingest(&c.name, chunks).await.expect("ingest");
    backdate(&app.pool, app.keys.tenant_id, "docs", &["old-1"], 40).await;
    set_retention(&app, "docs", 30, "").await;
    let ids = chunk_ids(&app, "docs", &["old-1"]).await;
    let (again, gone) = {
        // The point of ordinal 0 is written again below.
        let first: Uuid = sqlx::query_scalar("SELECT chunk_id FROM chunks WHERE tenant_id = $1 AND ordinal = 0")
            .bind(app.keys.tenant_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        (first, *ids.iter().find(|id| **id != first).unwrap())
    };
    let held = crate::track_lineage::HeldAtForget::hold(&app, &c, gone, async {
        let s = sweep(&app, "docs").await;
        assert_eq!((s.sources, s.chunks, s.job_ids.len()), (1, 2, 1));
        let ctx = app.ctx.clone();
        tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await.expect("queue") });
        s.job_ids[0].clone()
    })
    .await;
    let written = app.ingest(&c.name, vec![chunk("old-1", 0, "a newer note", &[])]).await.expect("written again");
    assert_eq!(written.accepted, 1);
    let job = held.release(&app).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    assert_eq!(job.counts[0].deleted, 2, "both old points were deleted and verified gone");

    assert_eq!(backend_points(&app, "docs", &ids).await.0, 1, "the point written again is in the store");
    assert_eq!(chunk_ids(&app, "docs", &["old-1"]).await, vec![again], "and keeps its lineage, under its source");
    let texts: Vec<String> = sqlx::query_scalar("SELECT text FROM chunks WHERE tenant_id = $1").bind(app.keys.tenant_id).fetch_all(&app.pool).await.unwrap();
    assert_eq!(texts, ["a newer note"], "the other old point's text is forgotten");
    app.assert_lineage_consistent().await;
}

/// A collection holds at most 100 source-kind rules (each is named in every
/// retention job's reason, kept for ever): the 101st kind is refused and
/// nothing is stored; an existing kind's days still change. A kind naming
/// an erased person is refused too.
#[tokio::test]
async fn source_kind_rules_are_bounded_and_name_no_erased_person() {
    let app = spawn_app().await;
    app.create_collection("docs", pb::Backend::Pgvector).await;
    // Made before zed is erased: it may be cleared after.
    set_retention(&app, "docs", 30, "chat:zed.quill@corp.example").await;
    for i in 1..100 {
        set_retention(&app, "docs", 30, &format!("kind-{i}")).await;
    }
    let set = |kind: &str, days: i32| {
        let r = pb::SetRetentionRequest { collection: "docs".into(), days, source_kind: kind.into(), clear: false };
        let mut client = app.client.clone();
        let r = req(&app.keys.sk, r);
        async move { client.set_retention(r).await }
    };
    let e = set("kind-100", 30).await.expect_err("the 101st kind");
    assert_eq!((e.code(), reason(&e).as_str()), (tonic::Code::FailedPrecondition, "too_many_rules"), "{e:?}");
    set("kind-7", 60).await.expect("an existing kind changes");
    let rules: i64 = sqlx::query_scalar("SELECT count(*) FROM retention_rules").fetch_one(&app.pool).await.unwrap();
    assert_eq!(rules, 100);

    let zed = pb::SubjectRef {
        id: "zed".into(),
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: "zed.quill@corp.example".into() }],
    };
    let job = app.erase_with(pb::EraseRequest { subject: Some(zed), ..Default::default() }).await.unwrap();
    assert_eq!(app.wait_for_job(&job.job_id).await.status, pb::JobStatus::Completed as i32);
    let e = set("chat:zed.quill@corp.example", 60).await.expect_err("a rule naming zed cannot change");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    let clear = pb::SetRetentionRequest { collection: "docs".into(), days: 0, source_kind: "chat:zed.quill@corp.example".into(), clear: true };
    app.client.clone().set_retention(req(&app.keys.sk, clear)).await.expect("a rule naming zed can be cleared, which takes the name out");
    let e = set("chat:zed.quill@corp.example", 30).await.expect_err("names zed");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("source_kind") && !e.message().contains("zed"), "{e:?}");
    let named: i64 = sqlx::query_scalar("SELECT count(*) FROM retention_rules WHERE source_kind LIKE '%zed%'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(named, 0);
}

/// The reason of job `job_id` as stored.
async fn job_reason(pool: &sqlx::PgPool, job_id: Uuid) -> String {
    sqlx::query_scalar("SELECT reason FROM erasure_jobs WHERE job_id = $1").bind(job_id).fetch_one(pool).await.unwrap()
}

async fn kind_rules(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT source_kind FROM retention_rules ORDER BY source_kind").fetch_all(pool).await.unwrap()
}

/// A source-kind rule whose kind names a person (their address, their caller
/// id as a token) is dropped by their erasure, in its forget transaction
/// (alone and in a batch): every later retention job's reason, log entry and
/// certificate would name them again. A retention job queued before the
/// erasure and logged after it names such a kind by a fixed text. A rule a
/// restore brings back is dropped by the next sweep before it writes a
/// reason, and `SetRetention` refuses the kind.
async fn a_kind_rule_naming_a_person_is_dropped_by_their_erasure(batch: bool) {
    let app = spawn_app_configured(Options { no_workers: true, ..Options::default() }, manual).await;
    let c = app.create_collection("inbox", pb::Backend::Pgvector).await;
    let (address_kind, id_kind) = ("chat:zed.quill@corp.example", "tickets-zed-k");
    let kinded = |source: &str, kind: &str, who: &str| pb::IngestChunk {
        source_kind: kind.into(),
        ..chunk(source, 0, &format!("{source} text"), &[who])
    };
    let chunks = vec![kinded("zed-note", "note", "zed-k"), kinded("old-chat", address_kind, "amy"), kinded("yan-note", "note", "yan")];
    app.ingest(&c.name, chunks).await.expect("ingest");
    for kind in [address_kind, id_kind, "note"] {
        set_retention(&app, "inbox", 5, kind).await;
    }
    backdate(&app.pool, app.keys.tenant_id, "inbox", &["old-chat"], 10).await;
    let zed = pb::SubjectRef {
        id: "zed-k".into(),
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: "zed.quill@corp.example".into() }],
    };
    let mut erasures = vec![app.erase_with(pb::EraseRequest { subject: Some(zed), ..Default::default() }).await.unwrap().job_id];
    if batch {
        erasures.push(app.erase("yan").await.job_id);
    }
    // Swept before the erasure ran: its reason names both kinds.
    let s = sweep(&app, "inbox").await;
    assert_eq!(s.job_ids.len(), 1, "{s:?}");
    let queued = Uuid::parse_str(&s.job_ids[0]).unwrap();
    let reason = job_reason(&app.pool, queued).await;
    assert!(reason.contains(address_kind) && reason.contains(id_kind), "{reason}");
    // Another replica holds the retention job while the erasures run.
    let lease = |secs: i32| {
        sqlx::query("UPDATE erasure_jobs SET lease_expires_at = now() + make_interval(secs => $2) WHERE job_id = $1")
            .bind(queued)
            .bind(f64::from(secs))
            .execute(&app.pool)
    };
    lease(3600).await.unwrap();
    let ran = if batch {
        lethe::erasure::try_execute_batch(&app.ctx, Uuid::new_v4()).await
    } else {
        lethe::erasure::try_execute_job(&app.ctx, Uuid::new_v4()).await
    };
    assert_eq!(ran.unwrap(), lethe::erasure::ExecutionOutcome::JobRan);
    for job_id in &erasures {
        let job = app.job(job_id).await;
        assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    }
    assert_eq!(kind_rules(&app.pool).await, ["note"], "the rules naming zed are gone, the other kept");
    let reason = job_reason(&app.pool, queued).await;
    assert!(!reason.contains("zed") && reason.contains(lethe::store::retention::ERASED_KIND), "{reason}");
    let tables: Vec<String> = sqlx::query_scalar("SELECT rewrite_tables FROM erasure_jobs WHERE job_id = $1::uuid")
        .bind(&erasures[0])
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(tables.iter().any(|t| t == "retention_rules"), "a guaranteed rewrite covers the rule's old row: {tables:?}");

    // The retention job runs after the erasure: nothing it logs names zed.
    lease(-1).await.unwrap();
    assert_eq!(lethe::erasure::try_execute_job(&app.ctx, Uuid::new_v4()).await.unwrap(), lethe::erasure::ExecutionOutcome::JobRan);
    let job = app.job(&queued.to_string()).await;
    assert_eq!(job.status, pb::JobStatus::Completed as i32, "{}", job.error);
    let entries = retention_entries(&app).await;
    assert_eq!(entries.len(), 1);
    assert!(!format!("{entries:?}").contains("zed"), "{entries:?}");
    let cert = ok(app.client.clone().get_certificate(req(&app.keys.ak, pb::GetCertificateRequest { job_id: queued.to_string() })).await);
    assert!(!format!("{cert:?}").contains("zed"), "{cert:?}");

    // A restore brings a rule back: the next sweep drops it before it
    // writes a reason.
    sqlx::query("INSERT INTO retention_rules (collection_id, tenant_id, source_kind, days) SELECT collection_id, tenant_id, $1, 5 FROM collections")
        .bind(id_kind)
        .execute(&app.pool)
        .await
        .unwrap();
    app.ingest(&c.name, vec![kinded("old-note", "note", "amy")]).await.expect("ingest");
    backdate(&app.pool, app.keys.tenant_id, "inbox", &["old-note"], 10).await;
    let s = sweep(&app, "inbox").await;
    assert_eq!(s.job_ids.len(), 1, "{s:?}");
    let reason = job_reason(&app.pool, Uuid::parse_str(&s.job_ids[0]).unwrap()).await;
    assert!(!reason.contains("zed") && reason.contains("kind `note`"), "{reason}");
    assert_eq!(kind_rules(&app.pool).await, ["note"]);
    // Refused as the sweep would read it: zed's caller id as a token.
    let r = pb::SetRetentionRequest { collection: "inbox".into(), days: 5, source_kind: id_kind.into(), clear: false };
    let e = app.client.clone().set_retention(req(&app.keys.sk, r)).await.expect_err("names zed by caller id");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(!e.message().contains("zed"), "{e:?}");
    assert_eq!(kind_rules(&app.pool).await, ["note"]);
}

#[tokio::test]
async fn a_kind_rule_naming_a_person_is_dropped_by_their_erasure_alone() {
    a_kind_rule_naming_a_person_is_dropped_by_their_erasure(false).await;
}

#[tokio::test]
async fn a_kind_rule_naming_a_person_is_dropped_by_their_erasure_in_a_batch() {
    a_kind_rule_naming_a_person_is_dropped_by_their_erasure(true).await;
}

/// A retention job that a worker claimed before an erasure dropped a rule
/// naming its person logs the reason as stored when it ends, not as it read
/// it at its claim: the erasure rewrote it meanwhile (another replica,
/// without pauses, runs the erasure while this one pauses between stages).
#[tokio::test]
async fn a_retention_job_claimed_before_the_erasure_logs_the_rewritten_reason() {
    let db = fresh_database().await;
    let slow = |s: &mut lethe::config::Settings| {
        s.retention.enabled = false;
        s.erasure.stage_pause_ms = 1500;
    };
    let a = spawn_app_at_configured(&db, None, Options { no_workers: true, ..Options::default() }, slow).await;
    let b = spawn_app_at_configured(&db, None, Options { no_workers: true, ..Options::default() }, replica_of(&a, manual)).await;
    let c = a.create_collection("inbox", pb::Backend::Pgvector).await;
    let kind = "chat:zed.quill@corp.example";
    let kinded = |source: &str, kind: &str, who: &str| pb::IngestChunk {
        source_kind: kind.into(),
        ..chunk(source, 0, &format!("{source} text"), &[who])
    };
    a.ingest(&c.name, vec![kinded("zed-note", "note", "zed-k"), kinded("old-chat", kind, "amy")]).await.expect("ingest");
    set_retention(&a, "inbox", 5, kind).await;
    backdate(&a.pool, a.keys.tenant_id, "inbox", &["old-chat"], 10).await;
    let s = sweep(&a, "inbox").await;
    let queued = Uuid::parse_str(&s.job_ids[0]).unwrap();
    assert!(job_reason(&a.pool, queued).await.contains(kind));
    let zed = pb::SubjectRef {
        id: "zed-k".into(),
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: "zed.quill@corp.example".into() }],
    };
    let erasure = a.erase_with(pb::EraseRequest { subject: Some(zed), ..Default::default() }).await.unwrap().job_id;
    // Replica a claims the retention job (the oldest) and pauses before each stage.
    let ctx = a.ctx.clone();
    let running = tokio::spawn(async move { lethe::erasure::try_execute_job(&ctx, Uuid::new_v4()).await });
    let stage = || async { sqlx::query_scalar::<_, String>("SELECT stage FROM erasure_jobs WHERE job_id = $1").bind(queued).fetch_one(&a.pool).await.unwrap() };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stage().await != "physical" {
        assert!(tokio::time::Instant::now() < deadline, "the retention job reaches its physical stage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Replica b runs the erasure meanwhile.
    assert_eq!(lethe::erasure::try_execute_job(&b.ctx, Uuid::new_v4()).await.unwrap(), lethe::erasure::ExecutionOutcome::JobRan);
    assert_eq!(a.job(&erasure).await.status, pb::JobStatus::Completed as i32);
    assert_eq!(stage().await, "physical", "the retention job has not logged yet");
    running.await.unwrap().unwrap();
    assert_eq!(a.job(&queued.to_string()).await.status, pb::JobStatus::Completed as i32);
    let entries = retention_entries(&a).await;
    assert_eq!(entries.len(), 1);
    assert!(entries[0].body.contains(lethe::store::retention::ERASED_KIND) && !entries[0].body.contains("zed"), "{}", entries[0].body);
    let cert = ok(a.client.clone().get_certificate(req(&a.keys.ak, pb::GetCertificateRequest { job_id: queued.to_string() })).await);
    assert!(!format!("{cert:?}").contains("zed"), "{}", cert.body);
}
