//! Calls to Lethe shared by the pgvector and Qdrant measurements: track,
//! erase, wait, per-stage times, drain the queue, fresh generations.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use lethe::grpc::pb::{self, lethe_client::LetheClient};
use lethe::vector_store::{Call, CallLog};
use sqlx::PgPool;
use tonic::transport::Channel;

use crate::setup::req;

/// A Lethe instance and the keys of the benchmark's tenant.
pub trait LetheSide {
    fn client(&self) -> &LetheClient<Channel>;
    fn sk(&self) -> &str;
    fn ak(&self) -> &str;
    /// The vector-store calls of the in-process Lethe (`Timed` stores).
    fn calls(&self) -> &CallLog;
}

/// GetErasure polling while one job runs. The job's time is taken from its
/// own events, not from polling: a poll costs Lethe a few queries and, on two
/// cores, polling every few milliseconds slowed the job being measured and
/// added up to a poll's latency (tens of ms) to what was measured.
pub const POLL_MS: u64 = 50;

/// Runs the two sides of a comparison one after the other, `first` first in
/// even runs and second in odd ones, so that neither always runs on a
/// warmer cache; their results in the order given.
pub async fn in_turn<A, B>(
    run: u32,
    first: impl Future<Output = anyhow::Result<A>>,
    second: impl Future<Output = anyhow::Result<B>>,
) -> anyhow::Result<(A, B)> {
    if run.is_multiple_of(2) {
        let a = first.await?;
        Ok((a, second.await?))
    } else {
        let b = second.await?;
        Ok((first.await?, b))
    }
}

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
    Ok(stage_spans(env, job_id).await?.into_iter().map(|s| (s.stage, s.ms)).collect())
}

/// One stage of a job: from the previous event to its own (`clock_timestamp()`s).
pub struct Span {
    pub stage: String,
    pub ms: f64,
    from: SystemTime,
    to: SystemTime,
}

fn system_time(t: &prost_types::Timestamp) -> SystemTime {
    SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(t.seconds).unwrap_or(0))
        + Duration::from_nanos(u64::try_from(t.nanos).unwrap_or(0))
}

/// The job's stages with their wall-clock bounds, from its events.
pub async fn stage_spans(env: &impl LetheSide, job_id: &str) -> anyhow::Result<Vec<Span>> {
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
            out.push(Span { stage, ms, from: system_time(&p), to: system_time(&at) });
        }
        prev = Some(at);
    }
    Ok(out)
}

/// Stages the erase figures leave out (measured separately).
fn counted(stage: &str) -> bool {
    stage != "residual" && stage != "physical"
}

/// Where one job's time went: per stage, its time and the time of the
/// vector-store calls that started in it.
#[derive(Debug, Clone, Default)]
pub struct Split {
    /// Stage → (stage ms, backend ms, backend calls).
    pub stages: BTreeMap<String, (f64, f64, usize)>,
    /// Method → (calls, ms), in the counted stages.
    pub methods: BTreeMap<&'static str, (usize, f64)>,
    /// Backend ms in the counted stages.
    pub backend_ms: f64,
    /// Calls recorded while the job ran that started in no stage of it.
    pub outside: usize,
}

impl Split {
    fn of(spans: &[Span], calls: &[Call]) -> Self {
        let mut split = Self::default();
        for s in spans {
            split.stages.entry(s.stage.clone()).or_default().0 += s.ms;
        }
        for c in calls.iter().filter(|c| c.method != "ping") {
            let ms = c.elapsed.as_secs_f64() * 1e3;
            let Some(s) = spans.iter().find(|s| s.from <= c.started && c.started < s.to) else {
                split.outside += 1;
                continue;
            };
            let e = split.stages.entry(s.stage.clone()).or_default();
            e.1 += ms;
            e.2 += 1;
            if counted(&s.stage) {
                split.backend_ms += ms;
                let m = split.methods.entry(c.method).or_default();
                m.0 += 1;
                m.1 += ms;
            }
        }
        split
    }
}

/// One erasure through Lethe: the Erase call, then the job's stages from its
/// own events (queued → log entry written), without the residual and
/// physical stages (measured separately); the stages and what polling saw
/// come back for the notes, and the split of the job's time between
/// vector-store calls and Lethe's own.
pub async fn lethe_erase(env: &impl LetheSide, tag: &str) -> anyhow::Result<(f64, Vec<(String, f64)>, Split)> {
    // Calls of earlier work (tracking the subject) are not this job's.
    env.calls().take();
    let t = Instant::now();
    let id = submit(env, tag).await?;
    let submitted = t.elapsed().as_secs_f64() * 1e3;
    wait(env, &id, Duration::from_millis(POLL_MS)).await?;
    let seen = t.elapsed().as_secs_f64() * 1e3;
    let spans = stage_spans(env, &id).await?;
    let mut split = Split::of(&spans, &env.calls().take());
    split.stages.insert("(Erase call)".into(), (submitted, 0.0, 0));
    let mut stages: Vec<(String, f64)> = spans.into_iter().map(|s| (s.stage, s.ms)).collect();
    let counted: f64 = stages.iter().filter(|(s, _)| counted(s)).map(|(_, ms)| ms).sum();
    stages.push(("(Erase call)".into(), submitted));
    stages.push((format!("(completion seen by polling every {POLL_MS} ms)"), seen));
    Ok((submitted + counted, stages, split))
}

/// The title of the own-share rows; the same on both backends, so that
/// `main` can set them side by side.
pub const OWN_SHARE: &str = "Lethe's own share of an erasure (job time minus vector-store calls)";

/// The own-share row of one erase figure: Lethe's time minus its calls to
/// the vector store per run, against those calls (in the raw column), and a
/// note with the per-stage split (medians over the runs).
pub fn own_share_row(backend: &str, what: &str, runs: &[(f64, Split)], caveat: &str) -> crate::report::Row {
    use crate::report::{Row, Stats};
    let own: Vec<f64> = runs.iter().map(|(ms, s)| ms - s.backend_ms).collect();
    let backend_ms: Vec<f64> = runs.iter().map(|(_, s)| s.backend_ms).collect();
    let median = |f: &dyn Fn(&Split) -> f64| Stats::of(&runs.iter().map(|(_, s)| f(s)).collect::<Vec<_>>()).median;
    let order = ["(Erase call)", "freeze", "plan", "delete", "verify", "residual", "forget_lineage", "physical", "log"];
    let mut stages = runs.first().map(|(_, s)| s.stages.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    stages.sort_by_key(|s| order.iter().position(|o| o == s).unwrap_or(order.len()));
    let per_stage: Vec<String> = stages
        .iter()
        .filter(|s| counted(s))
        .map(|stage| {
            let get = |s: &Split| s.stages.get(stage).copied().unwrap_or_default();
            let (total, in_store) = (median(&|s| get(s).0), median(&|s| get(s).1));
            format!(
                "{stage} {:.1} (store {:.1} in {} calls, own {:.1})",
                total,
                in_store,
                median(&|s| get(s).2 as f64),
                median(&|s| get(s).0 - get(s).1)
            )
        })
        .collect();
    let methods = runs.first().map(|(_, s)| s.methods.keys().copied().collect::<Vec<_>>()).unwrap_or_default();
    let per_method: Vec<String> = methods
        .iter()
        .map(|m| {
            let get = |s: &Split| s.methods.get(m).copied().unwrap_or_default();
            format!("{m} {}× {:.1}", median(&|s| get(s).0 as f64), median(&|s| get(s).1))
        })
        .collect();
    let outside: usize = runs.iter().map(|(_, s)| s.outside).sum();
    Row::new(backend, &format!("{OWN_SHARE}: {what}"), "ms", &own, Some(&backend_ms)).note(format!(
        "{caveat}Lethe: the erase row's time (Erase call + stages, without residual and physical) minus the vector-store calls \
         that started in those stages (each call through a `Timed` store, placed by the job events' clock_timestamp()s); \
         raw column: those calls, so ratio = own / store. Median ms per stage: {}; calls: {}{}",
        per_stage.join(", "),
        per_method.join(", "),
        if outside > 0 { format!("; {outside} calls while the jobs ran fell in no stage") } else { String::new() }
    ))
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

/// Erase calls the benchmark keeps in flight.
pub const IN_FLIGHT: usize = 64;

/// Subjects erased, untimed, on a freshly started service before its
/// throughput is measured: as many as the calls in flight, so that the
/// pool's connections are open and have prepared the jobs' statements, and
/// PostgreSQL's new backends have mapped their shared buffers, as in a
/// service that has been running. Measured cold, the first run of a service
/// came out about a quarter below the next ones.
pub const WARM_UP: usize = IN_FLIGHT;

/// Tracks `points` and erases `tags` through Lethe without timing them
/// (see [`WARM_UP`]).
pub async fn warm_up(env: &impl LetheSide, points: Vec<pb::TrackedPoint>, tags: &[String]) -> anyhow::Result<()> {
    track(env, env.sk(), "bench", points, 2).await?;
    erase_all(env, tags).await?;
    Ok(())
}

/// Runs `calls` with at most `parallel` in flight (the raw baselines' and
/// the floor's erasures at once); returns calls per second, or the first
/// failure.
pub async fn calls_per_second<T>(
    parallel: usize,
    calls: impl IntoIterator<Item = impl Future<Output = anyhow::Result<T>>>,
) -> anyhow::Result<f64> {
    let t = Instant::now();
    let done: Vec<T> = futures::stream::iter(calls)
        .buffer_unordered(parallel)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    Ok(done.len() as f64 / t.elapsed().as_secs_f64())
}

/// Erases every tag at once through Lethe: all submitted, then the queue
/// drained. Returns jobs per second; then checks, untimed, that every job
/// ended completed.
pub async fn erase_all(env: &impl LetheSide, tags: &[String]) -> anyhow::Result<f64> {
    let t = Instant::now();
    let ids: Vec<String> = futures::stream::iter(tags.iter().map(|tag| submit(env, tag)))
        .buffer_unordered(IN_FLIGHT)
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
