//! Safe production defaults (issue 12 item 8): watches end with their
//! client, the server's limits, TLS off loopback, reflection.

use std::time::Duration;

use lethe::grpc::pb;

use crate::helpers::*;

/// Polls `f` until it is true or `within` has passed.
async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

#[tokio::test]
async fn a_watch_stops_polling_when_its_client_goes_away() {
    // 5 s between stages: the job's next event, which would also end a
    // watch that only notices a gone client when it sends, comes too late.
    let app = spawn_app_with(Options { stage_pause_ms: 5000, ..Default::default() }).await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people("mail", &[("ann", 2)]).await;
    let job = app.erase("ann").await;
    let mut stream = app
        .client
        .clone()
        .watch_erasure(req(&app.keys.ak, pb::GetErasureRequest { job_id: job.job_id.clone() }))
        .await
        .expect("watch")
        .into_inner();
    stream.message().await.expect("first event").expect("an event");
    assert_eq!(app.ctx.watches.count(), 1, "the watch is open while its client reads");

    drop(stream);
    let watches = app.ctx.watches.clone();
    assert!(
        eventually(Duration::from_secs(2), || watches.count() == 0).await,
        "the watch kept polling after its client went away"
    );
    let j = app.job(&job.job_id).await;
    let running = [pb::JobStatus::Queued as i32, pb::JobStatus::InProgress as i32];
    assert!(running.contains(&j.status), "the job was still running, so the client's leaving ended the watch: {j:?}");
}
