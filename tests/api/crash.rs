//! A service killed (SIGKILL) in the middle of an erase job resumes it on
//! restart and finishes with the right counts.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lethe::grpc::pb::{self, lethe_client::LetheClient};

use crate::helpers::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_service(db_url: &str, port: u16, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lethe"))
        .arg("serve")
        .env("LETHE_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/configuration"))
        .env("LETHE_DATABASE__URL", db_url)
        .env("LETHE_APPLICATION__PORT", port.to_string())
        .env("LETHE_EMBEDDING__PROVIDER", "hashing")
        .env("LETHE_QDRANT__URL", "")
        .env("LETHE_ERASURE__STAGE_PAUSE_MS", "600")
        .env("LETHE_ERASURE__LEASE_SECS", "2")
        .env("LETHE_ERASURE__POLL_INTERVAL_MS", "100")
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
