//! A service killed (SIGKILL) in the middle of an erase job, or of a batch
//! of them, resumes them on restart and finishes with the right counts. One
//! stopped gracefully (SIGTERM) releases the leases its workers held (erase,
//! re-index, adoption and reconcile jobs).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lethe::grpc::pb::{self, lethe_client::LetheClient};

use crate::helpers::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_service(db_url: &str, port: u16, dir: &std::path::Path) -> Child {
    start_service_with(db_url, port, dir, &[])
}

fn start_service_with(db_url: &str, port: u16, dir: &std::path::Path, env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lethe"))
        .arg("serve")
        .env("LETHE_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/configuration"))
        .env("LETHE_DATABASE__URL", db_url)
        .env("LETHE_APPLICATION__PORT", port.to_string())
        // Two of these tests run at once: the web view must not want one fixed port.
        .env("LETHE_WEB__PORT", "0")
        .env("LETHE_EMBEDDING__PROVIDER", "hashing")
        .env("LETHE_QDRANT__URL", "")
        .env("LETHE_ERASURE__STAGE_PAUSE_MS", "600")
        .env("LETHE_ERASURE__LEASE_SECS", "2")
        .env("LETHE_ERASURE__POLL_INTERVAL_MS", "100")
        .env("LETHE_AUDIT__SIGNING_KEY_FILE", dir.join("key.pem"))
        .env("LETHE_KEYS__MASTER_KEY_FILE", dir.join("master_keys.json"))
        .envs(env.iter().copied())
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

#[tokio::test]
async fn a_killed_service_resumes_the_job_after_restart_with_correct_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    lethe::store::migrate(&pool).await.unwrap();
    let keys = new_tenant(&pool).await;

    let port = free_port();
    let mut first = start_service(&db_url, port, dir.path());
    let mut client = connect(port).await;
    let coll = pb::CreateCollectionRequest { name: "mail".into(), backend: 1, dimension: 384, ..Default::default() };
    let c = client.create_collection(req(&keys.sk, coll)).await.unwrap().into_inner();
    let chunks = (0..6).map(|i| chunk(&format!("d{i}"), 0, &format!("text {i}"), &[if i < 4 { "ann" } else { "bob" }])).collect();
    client.ingest(req(&keys.sk, pb::IngestRequest { collection: "mail".into(), chunks, subjects: vec![] })).await.unwrap();
    let job = client
        .erase(req(&keys.sk, pb::EraseRequest { subject: Some(person("ann")), requested_by: "t".into(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();

    // Kill it once the plan is recorded and the deletion is under way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let j = client.get_erasure(req(&keys.ak, pb::GetErasureRequest { job_id: job.job_id.clone() })).await.unwrap().into_inner();
        if j.stage >= pb::Stage::Delete as i32 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "job never reached the delete stage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let stuck: String = sqlx::query_scalar("SELECT status FROM erasure_jobs").fetch_one(&pool).await.unwrap();
    assert_eq!(stuck, "in_progress", "the job was cut off mid-way");

    let port = free_port();
    let mut second = start_service(&db_url, port, dir.path());
    let client = connect(port).await;
    let done = wait_for_job(&client, &keys.ak, &job.job_id).await;
    second.kill().ok();
    second.wait().ok();

    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert!(done.attempts >= 2, "the job ran in two processes");
    let counts = &done.counts[0];
    assert_eq!((counts.before_total, counts.deleted, counts.after_total), (4, 4, 0));
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\"", c.backend_name)).fetch_one(&pool).await.unwrap();
    assert_eq!(rows, 2, "bob's two vectors remain");
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM deletion_log").fetch_one(&pool).await.unwrap();
    assert_eq!(entries, 1, "exactly one log entry");
}

#[tokio::test]
async fn a_service_killed_mid_batch_resumes_every_job_of_the_batch_and_logs_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    // Everything is queued first, by a Lethe without workers sharing the
    // service's keys, so that the service's one worker claims the four jobs
    // as one batch (batches of four).
    let (key, master) = (dir.path().join("key.pem"), dir.path().join("master_keys.json"));
    let queue = spawn_app_on(&db_url, Options { no_workers: true, ..Default::default() }, |s| {
        s.audit.signing_key_file = key;
        s.keys.master_key_file = master;
    })
    .await;
    let c = queue.create_collection("mail", pb::Backend::Pgvector).await;
    let people = [("ann", 1u64), ("bob", 2), ("cyd", 3), ("dan", 4)];
    let spread: Vec<(&str, u32)> = people.iter().map(|(who, n)| (*who, u32::try_from(*n).unwrap())).collect();
    queue.ingest_people(&c.name, &spread).await;
    queue.ingest_people(&c.name, &[("zoe", 1)]).await;
    let mut jobs = Vec::new();
    for (who, _) in people {
        jobs.push(queue.erase(who).await.job_id);
    }
    let keys = queue.keys.clone();
    drop(queue);

    let one_batch = [("LETHE_ERASURE__WORKERS", "1"), ("LETHE_ERASURE__BATCH_SIZE", "4")];
    let port = free_port();
    let mut first = start_service_with(&db_url, port, dir.path(), &one_batch);
    connect(port).await;

    // Kill it once the batch's deletes are under way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stages: Vec<String> = sqlx::query_scalar("SELECT stage FROM erasure_jobs").fetch_all(&pool).await.unwrap();
        if stages.iter().any(|s| s == "verify") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the batch never reached the verify stage: {stages:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let cut: Vec<(String, String)> =
        sqlx::query_as("SELECT status, stage FROM erasure_jobs ORDER BY received_at").fetch_all(&pool).await.unwrap();
    assert!(cut.iter().all(|(status, _)| status == "in_progress"), "all four were cut off mid-way, as one batch: {cut:?}");
    let claims: i64 = sqlx::query_scalar("SELECT count(DISTINCT lease_owner) FROM erasure_jobs").fetch_one(&pool).await.unwrap();
    assert_eq!(claims, 1, "one worker held them all");

    let port = free_port();
    let mut second = start_service_with(&db_url, port, dir.path(), &one_batch);
    let client = connect(port).await;
    let mut done = Vec::new();
    for job_id in &jobs {
        done.push(wait_for_job(&client, &keys.ak, job_id).await);
    }
    second.kill().ok();
    second.wait().ok();

    for ((who, n), job) in people.iter().zip(&done) {
        assert_eq!(job.status, pb::JobStatus::Completed as i32, "{who}: {}", job.error);
        assert!(job.attempts >= 2, "{who}'s job ran in two processes");
        let counts = &job.counts[0];
        assert_eq!((counts.before_total, counts.deleted, counts.after_total), (*n, *n, 0), "{who}");
    }
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\"", c.backend_name)).fetch_one(&pool).await.unwrap();
    assert_eq!(rows, 1, "zoe's vector remains");
    let logged: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT job_id FROM deletion_log ORDER BY seq").fetch_all(&pool).await.unwrap();
    let expected: Vec<uuid::Uuid> = jobs.iter().map(|j| j.parse().unwrap()).collect();
    assert_eq!(logged, expected, "exactly one log entry per job, in the order received");
    let certificates: i64 = sqlx::query_scalar("SELECT count(*) FROM certificates").fetch_one(&pool).await.unwrap();
    assert_eq!(certificates, 4);
}

/// A client watching a job keeps its stream open; SIGTERM must still stop
/// the service: the workers stop at once, the streams get a grace period
/// (`startup::SHUTDOWN_GRACE`), then are cut (before, the service waited for
/// the watcher for ever, and further signals did nothing). The job resumes
/// on the next start.
#[tokio::test]
async fn sigterm_stops_the_service_while_a_client_watches_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    lethe::store::migrate(&pool).await.unwrap();
    let keys = new_tenant(&pool).await;
    let port = free_port();
    // Stages a minute apart: the job is still running when the signal comes.
    // A lease that would outlast the test: released at the stop, or not.
    let env = [("LETHE_ERASURE__STAGE_PAUSE_MS", "60000"), ("LETHE_ERASURE__LEASE_SECS", "600")];
    let mut service = start_service_with(&db_url, port, dir.path(), &env);
    let mut client = connect(port).await;
    let job = client
        .erase(req(&keys.sk, pb::EraseRequest { subject: Some(person("ann")), requested_by: "t".into(), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    let mut stream = client.watch_erasure(req(&keys.ak, pb::GetErasureRequest { job_id: job.job_id.clone() })).await.unwrap().into_inner();
    stream.message().await.unwrap().expect("the first event");
    let sent = Command::new("kill").args(["-TERM", &service.id().to_string()]).status().expect("kill");
    assert!(sent.success());
    let t0 = std::time::Instant::now();
    let exited = loop {
        if let Some(status) = service.try_wait().unwrap() {
            break Some(status);
        }
        if t0.elapsed() > lethe::startup::SHUTDOWN_GRACE + Duration::from_secs(15) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if exited.is_none() {
        service.kill().ok();
        panic!("the service was still running {} s after SIGTERM with a watcher", t0.elapsed().as_secs());
    }
    drop(stream);
    let (status, free): (String, bool) =
        sqlx::query_as("SELECT status, lease_expires_at <= now() FROM erasure_jobs").fetch_one(&pool).await.unwrap();
    assert_ne!(status, "completed", "it stopped mid-job: the next start resumes it");
    assert!(free, "its lease was released at the stop, not left to run out");
}

/// A Lethe without workers that shares the service's database and key files:
/// what it queues waits for the service's workers.
async fn queue_for_service(db_url: &str, dir: &std::path::Path) -> TestApp {
    let (key, master) = (dir.join("key.pem"), dir.join("master_keys.json"));
    spawn_app_on(db_url, Options { no_workers: true, ..Default::default() }, |s| {
        s.audit.signing_key_file = key;
        s.keys.master_key_file = master;
    })
    .await
}

/// Holds the collection's lock exclusively (as a re-index's switch does):
/// a re-index's prepare stage, an adoption page and a reconcile of the
/// collection wait for it until the transaction ends.
async fn hold_collection(pool: &sqlx::PgPool, tenant_id: uuid::Uuid, name: &str) -> (sqlx::Transaction<'static, sqlx::Postgres>, i64) {
    let spec = lethe::store::lineage::collection_by_name(pool, tenant_id, name).await.unwrap().expect("collection exists");
    let key = lethe::context::collection_lock_key(spec.collection_id);
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut *tx).await.unwrap();
    (tx, key)
}

/// Waits until the one job of `table` runs under a live lease while its
/// worker waits for the lock `key`: the job is mid-run, and stays so.
async fn wait_until_held_and_waiting(pool: &sqlx::PgPool, table: &str, key: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, held): (String, Option<bool>) =
            sqlx::query_as(&format!("SELECT status, lease_expires_at > now() FROM {table}")).fetch_one(pool).await.unwrap();
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 \
             AND classid::bigint = ($1 >> 32) & 4294967295 AND objid::bigint = $1 & 4294967295 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
        )
        .bind(key)
        .fetch_one(pool)
        .await
        .unwrap();
        if status == "in_progress" && held == Some(true) && waiting {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{table}: never held and waiting ({status}, lease live: {held:?}, waiting: {waiting})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM, then waits for the service to exit.
async fn stop_gracefully(mut service: Child) {
    let sent = Command::new("kill").args(["-TERM", &service.id().to_string()]).status().expect("kill");
    assert!(sent.success());
    let t0 = std::time::Instant::now();
    while service.try_wait().unwrap().is_none() {
        if t0.elapsed() > lethe::startup::SHUTDOWN_GRACE + Duration::from_secs(15) {
            service.kill().ok();
            panic!("the service was still running {} s after SIGTERM", t0.elapsed().as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The one job of `table` was cut off mid-run and its lease released at
/// the stop: the next start resumes it at once, not when the lease runs out.
async fn assert_released_mid_run(pool: &sqlx::PgPool, table: &str) {
    let (status, free): (String, Option<bool>) =
        sqlx::query_as(&format!("SELECT status, lease_expires_at <= now() FROM {table}")).fetch_one(pool).await.unwrap();
    assert_eq!(status, "in_progress", "{table}: cut off mid-run");
    assert_eq!(free, Some(true), "{table}: its lease was released at the stop, not left to run out");
}

/// Holds `collection`'s lock so that the job queued in `table` waits for it
/// mid-run, starts the service (with a lease that would outlast the test:
/// released at the stop, or not), stops it gracefully once the job is held
/// and waiting, and checks that its lease was released.
async fn stop_mid_run_and_check_release(db_url: &str, dir: &std::path::Path, queue: &TestApp, collection: &str, table: &str) {
    let pool = sqlx::PgPool::connect(db_url).await.unwrap();
    let (lock, key) = hold_collection(&pool, queue.keys.tenant_id, collection).await;
    let port = free_port();
    let service = start_service_with(db_url, port, dir, &[("LETHE_ERASURE__LEASE_SECS", "600")]);
    connect(port).await;
    wait_until_held_and_waiting(&pool, table, key).await;
    stop_gracefully(service).await;
    assert_released_mid_run(&pool, table).await;
    lock.rollback().await.unwrap();
}

/// As the erase workers, the re-index worker releases the lease of the job it
/// runs when the service stops gracefully.
#[tokio::test]
async fn sigterm_releases_the_lease_of_a_running_reindex() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database().await;
    let queue = queue_for_service(&db_url, dir.path()).await;
    queue.create_collection("mail", pb::Backend::Pgvector).await;
    queue.ingest_people("mail", &[("ann", 2), ("bob", 1)]).await;
    let r = pb::ReindexRequest { collection: "mail".into(), ..Default::default() };
    queue.client.clone().reindex(req(&queue.keys.sk, r)).await.expect("reindex queued");
    // The prepare stage waits for the collection's lock: the job runs at the stop.
    stop_mid_run_and_check_release(&db_url, dir.path(), &queue, "mail", "reindex_jobs").await;
}

/// As the erase workers, the adoption worker releases the lease of the scan
/// it runs when the service stops gracefully.
#[tokio::test]
async fn sigterm_releases_the_lease_of_a_running_adoption_scan() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database().await;
    let queue = queue_for_service(&db_url, dir.path()).await;
    crate::attach::hand_made_table(&queue, "notes_t").await;
    crate::attach::attach(&queue, crate::attach::hand_made_request("notes", "notes_t")).await.expect("attach");
    // The first page's write waits for the collection's lock: the scan runs at the stop.
    stop_mid_run_and_check_release(&db_url, dir.path(), &queue, "notes", "attach_jobs").await;
}

/// As the erase workers, the reconcile worker releases the lease of the run
/// it runs when the service stops gracefully.
#[tokio::test]
async fn sigterm_releases_the_lease_of_a_running_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database().await;
    let queue = queue_for_service(&db_url, dir.path()).await;
    queue.create_collection("mail", pb::Backend::Pgvector).await;
    queue.ingest_people("mail", &[("ann", 2)]).await;
    let r = pb::ReconcileRequest { requested_by: "t".into() };
    queue.client.clone().reconcile(req(&queue.keys.sk, r)).await.expect("reconcile queued");
    // The run's collection waits for the collection's lock: the run runs at the stop.
    stop_mid_run_and_check_release(&db_url, dir.path(), &queue, "mail", "reconcile_runs").await;
}
