//! Calls to Lethe shared by the pgvector and Qdrant measurements: track,
//! erase, wait, per-stage times, drain the queue, fresh generations.

use std::time::{Duration, Instant};

use futures::StreamExt;
use lethe::grpc::pb::{self, lethe_client::LetheClient};
use sqlx::PgPool;
use tonic::transport::Channel;

use crate::setup::req;

/// A Lethe instance and the keys of the benchmark's tenant.
pub trait LetheSide {
    fn client(&self) -> &LetheClient<Channel>;
    fn sk(&self) -> &str;
    fn ak(&self) -> &str;
}

/// GetErasure polling while one job runs. The job's time is taken from its
/// own events, not from polling: a poll costs Lethe a few queries and, on two
/// cores, polling every few milliseconds slowed the job being measured and
/// added up to a poll's latency (tens of ms) to what was measured.
pub const POLL_MS: u64 = 50;

/// Generations not used before in this database: an erased subject's tag is
/// a tombstone, so every re-creation uses a fresh tag and fresh point ids.
pub async fn generations(pool: &PgPool, count: u32) -> anyhow::Result<u32> {
    let end: i64 = sqlx::query_scalar(
        r#"
        INSERT INTO bench_meta (key, value) VALUES ('generation', to_jsonb($1::bigint + 1))
        ON CONFLICT (key) DO UPDATE SET value = to_jsonb((bench_meta.value)::bigint + $1)
        RETURNING (value)::bigint
        "#,
    )
    .bind(i64::from(count))
    .fetch_one(pool)
    .await?;
    Ok(u32::try_from(end)? - count)
}

/// Tracks points through Lethe in requests of 1,000, `parallel` in flight.
pub async fn track(
    env: &impl LetheSide,
    sk: &str,
    collection: &str,
    points: Vec<pb::TrackedPoint>,
    parallel: usize,
) -> anyhow::Result<()> {
    let batches: Vec<Vec<pb::TrackedPoint>> = points.chunks(1000).map(<[_]>::to_vec).collect();
    let mut stream = futures::stream::iter(batches)
        .map(|points| {
            let mut c = env.client().clone();
            let r = req(sk, pb::TrackRequest { collection: collection.into(), points, ..Default::default() });
            async move { c.track(r).await }
        })
        .buffer_unordered(parallel);
    while let Some(r) = stream.next().await {
        let w = r?.into_inner();
        anyhow::ensure!(w.suppressed == 0, "{} points suppressed", w.suppressed);
    }
    Ok(())
}

pub fn terminal(status: i32) -> bool {
    [pb::JobStatus::Completed, pb::JobStatus::Failed, pb::JobStatus::Refused].iter().any(|s| *s as i32 == status)
}

pub async fn submit(env: &impl LetheSide, tag: &str) -> anyhow::Result<String> {
    let job = env
        .client()
        .clone()
        .erase(req(
            env.sk(),
            pb::EraseRequest {
                subject: Some(pb::SubjectRef { id: tag.into(), identifiers: vec![] }),
                requested_by: "bench".into(),
                reason: "benchmark".into(),
                residual_policy: pb::ResidualPolicy::Report as i32,
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    Ok(job.job_id)
}

pub async fn wait(env: &impl LetheSide, job_id: &str, poll: Duration) -> anyhow::Result<pb::ErasureJob> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let j = env
            .client()
            .clone()
            .get_erasure(req(env.ak(), pb::GetErasureRequest { job_id: job_id.into() }))
            .await?
            .into_inner();
        if terminal(j.status) {
            anyhow::ensure!(j.status == pb::JobStatus::Completed as i32, "job {job_id} ended: {}", j.error);
            return Ok(j);
        }
        anyhow::ensure!(Instant::now() < deadline, "job {job_id} did not finish");
        tokio::time::sleep(poll).await;
    }
}

/// Milliseconds per stage, from the job's event timestamps (each event is
/// written when its stage ends; the first stage includes queueing and claim).
pub async fn stage_times(env: &impl LetheSide, job_id: &str) -> anyhow::Result<Vec<(String, f64)>> {
    let mut stream = env
        .client()
        .clone()
        .watch_erasure(req(env.ak(), pb::GetErasureRequest { job_id: job_id.into() }))
        .await?
        .into_inner();
    let mut out = Vec::new();
    let mut prev: Option<prost_types::Timestamp> = None;
    while let Some(e) = stream.next().await {
        let e = e?;
        let at = e.at.unwrap_or_default();
        if let Some(p) = prev {
            let ms = (at.seconds - p.seconds) as f64 * 1e3 + f64::from(at.nanos - p.nanos) / 1e6;
            let stage = pb::Stage::try_from(e.stage)
                .map_or("?".into(), |s| s.as_str_name().trim_start_matches("STAGE_").to_lowercase());
            out.push((stage, ms));
        }
        prev = Some(at);
    }
    Ok(out)
}

/// One erasure through Lethe: the Erase call, then the job's stages from its
/// own events (queued → log entry written), without the residual and
/// physical stages (measured separately); the stages and what polling saw
/// come back for the notes.
pub async fn lethe_erase(env: &impl LetheSide, tag: &str) -> anyhow::Result<(f64, Vec<(String, f64)>)> {
    let t = Instant::now();
    let id = submit(env, tag).await?;
    let submitted = t.elapsed().as_secs_f64() * 1e3;
    wait(env, &id, Duration::from_millis(POLL_MS)).await?;
    let seen = t.elapsed().as_secs_f64() * 1e3;
    let mut stages = stage_times(env, &id).await?;
    let counted: f64 = stages.iter().filter(|(s, _)| s != "residual" && s != "physical").map(|(_, ms)| ms).sum();
    stages.push(("(Erase call)".into(), submitted));
    stages.push((format!("(completion seen by polling every {POLL_MS} ms)"), seen));
    Ok((submitted + counted, stages))
}

/// Waits until no job is queued or running: two `ListErasures` calls every
/// 50 ms (polling each of 1,000 jobs would load the server being measured).
pub async fn drain(env: &impl LetheSide) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let mut open = 0;
        for status in [pb::JobStatus::Queued, pb::JobStatus::InProgress] {
            open += env
                .client()
                .clone()
                .list_erasures(req(
                    env.ak(),
                    pb::ListErasuresRequest { limit: 1, status: status as i32, ..Default::default() },
                ))
                .await?
                .into_inner()
                .jobs
                .len();
        }
        if open == 0 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "jobs did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Erases every tag at once through Lethe: all submitted, then the queue
/// drained. Returns jobs per second; then checks, untimed, that every job
/// ended completed.
pub async fn erase_all(env: &impl LetheSide, tags: &[String]) -> anyhow::Result<f64> {
    let t = Instant::now();
    let ids: Vec<String> = futures::stream::iter(tags.iter().map(|tag| submit(env, tag)))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    drain(env).await?;
    let rate = tags.len() as f64 / t.elapsed().as_secs_f64();
    for id in &ids {
        wait(env, id, Duration::from_millis(5)).await?;
    }
    Ok(rate)
}
