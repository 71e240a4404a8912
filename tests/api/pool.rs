//! Lethe's own connection pool under a burst wider than it: a write holds a
//! connection for its subjects' locks while it records lineage and writes
//! vectors, and an erase stage holds its collection's lock while it deletes.
//! As many requests as connections, each holding its first, waited for a
//! second none of them released: 64 concurrent writes on the default 20
//! connections all failed with UNAVAILABLE ("pool timed out") after 10 s,
//! and a pool smaller than the erase workers stalled every job.

use std::time::Duration;

use lethe::grpc::pb;

use crate::helpers::*;

fn small_pool(s: &mut lethe::config::Settings) {
    s.database.max_connections = 3;
    s.erasure.workers = 2;
}

#[tokio::test]
async fn a_burst_of_writes_and_erasures_wider_than_the_pool_completes() {
    for (settings, burst) in [(None, 64), (Some(small_pool as fn(&mut lethe::config::Settings)), 16)] {
        let app = spawn_app_with(Options { settings, ..Default::default() }).await;
        let c = app.create_collection("mail", pb::Backend::Pgvector).await;
        let people: Vec<String> = (0..burst).map(|i| format!("p{i}")).collect();
        let writes = people.iter().map(|who| {
            let (app, name) = (&app, &c.name);
            async move {
                let chunks =
                    (0..3).map(|i| chunk(&format!("{who}-doc-{i}"), 0, &format!("note {i} by {who}"), &[who.as_str()])).collect();
                app.ingest(name, chunks).await
            }
        });
        let written = tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(writes)).await.expect("the burst ends");
        for (who, w) in people.iter().zip(written) {
            assert_eq!(w.unwrap_or_else(|e| panic!("{who} (burst of {burst}): {e:?}")).accepted, 3, "{who}");
        }
        assert_eq!(rows(&app.pool, "chunks").await, 3 * burst);

        let jobs = futures::future::join_all(people.iter().take(16).map(|who| app.erase(who))).await;
        for (who, job) in people.iter().zip(jobs) {
            let done = app.wait_for_job(&job.job_id).await;
            assert_eq!(done.status, pb::JobStatus::Completed as i32, "{who}: {}", done.error);
        }
        let attempts: i32 = sqlx::query_scalar("SELECT max(attempts) FROM erasure_jobs").fetch_one(&app.pool).await.unwrap();
        assert_eq!(attempts, 1, "no stage waited for a connection until it failed and was retried (burst of {burst})");
        assert_eq!(rows(&app.pool, "chunks").await, 3 * (burst - 16));
        app.assert_lineage_consistent().await;
    }
}

/// While every turn is taken, a write waits for one (holding no
/// connection) and a read does not: a status poll is not queued behind
/// long writes.
#[tokio::test]
async fn reads_take_no_turn_and_a_write_waits_for_one() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2)]).await;
    let job = app.erase("ann").await;
    let turns = app.ctx.slots.available_permits() as u32;
    assert_eq!(turns, 20 / lethe::context::CONNECTIONS_PER_SLOT, "max_connections / 3 turns");
    let taken = app.ctx.slots.clone().acquire_many_owned(turns).await.unwrap();

    let read = tokio::time::timeout(Duration::from_secs(5), async {
        (app.count_subject("ann").await, app.job(&job.job_id).await)
    });
    let (counted, polled) = read.await.expect("reads run without a turn");
    assert_eq!(counted.counts.iter().map(|c| c.before_total).sum::<u64>(), 2);
    assert_eq!(polled.status, pb::JobStatus::Queued as i32);
    let write = app.ingest(&c.name, vec![chunk("bob-doc", 0, "note by bob", &["bob"])]);
    tokio::pin!(write);
    assert!(tokio::time::timeout(Duration::from_millis(500), &mut write).await.is_err(), "the write waits for a turn");
    drop(taken);
    let written = tokio::time::timeout(Duration::from_secs(5), write).await.expect("then it runs").expect("ingest");
    assert_eq!(written.accepted, 1);
    assert_eq!(rows(&app.pool, "chunks").await, 3);
}

/// A write takes its turn once its message has arrived: as many ledger
/// imports as there are turns, their uploads stalled, hold none, and a
/// write still runs at once.
#[tokio::test]
async fn uploads_still_arriving_hold_no_turn() {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let turns = app.ctx.slots.available_permits();
    let stalled: Vec<_> = (0..turns)
        .map(|_| {
            let (mut client, sk) = (app.client.clone(), app.keys.sk.clone());
            tokio::spawn(async move { client.import_ledger(req(&sk, futures::stream::pending::<pb::LedgerChunk>())).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.ctx.slots.available_permits(), turns, "the stalled uploads hold no turn");
    let write = app.ingest(&c.name, vec![chunk("ann-doc", 0, "note by ann", &["ann"])]);
    let written = tokio::time::timeout(Duration::from_secs(5), write).await.expect("the write runs at once").expect("ingest");
    assert_eq!(written.accepted, 1);
    for s in stalled {
        assert!(!s.is_finished(), "the uploads were still open");
        s.abort();
    }
}

/// The workers' connections plan as `database.worker_plan_cache_mode`
/// says (generic by default, PostgreSQL's `auto` the way back), and an
/// erasure's stages complete under every mode: no statement of theirs
/// depends on how it is planned.
#[tokio::test]
async fn the_workers_plan_as_configured_and_erase_under_every_mode() {
    use lethe::config::PlanCacheMode;
    for mode in [PlanCacheMode::ForceGenericPlan, PlanCacheMode::Auto, PlanCacheMode::ForceCustomPlan] {
        let app = spawn_app_configured(Options::default(), |s| s.database.worker_plan_cache_mode = mode).await;
        let shown: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&app.workers).await.unwrap();
        assert_eq!(shown, mode.as_str());
        let service: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&app.ctx.pool).await.unwrap();
        assert_eq!(service, "auto", "{mode:?}: the service's pool keeps PostgreSQL's default");
        let durable: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&app.workers).await.unwrap();
        assert_eq!(durable, "off", "{mode:?}: the log stage asks for its own durable commit");

        let c = app.create_collection("mail", pb::Backend::Pgvector).await;
        app.ingest_people(&c.name, &[("ann", 3), ("bob", 2)]).await;
        let job = app.erase("ann").await;
        let done = app.wait_for_job(&job.job_id).await;
        assert_eq!(done.status, pb::JobStatus::Completed as i32, "{mode:?}: {}", done.error);
        assert_eq!(rows(&app.pool, "chunks").await, 2, "{mode:?}: bob's chunks alone remain");
        app.assert_lineage_consistent().await;
    }
}
