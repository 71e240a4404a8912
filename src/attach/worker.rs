//! Adoption: the scan of an attached store that builds lineage from its
//! mapping (sources, points, subjects), page by page, resumable from the
//! last page recorded; repeated as a rescan every
//! `attach.rescan_interval_secs` to learn the points the framework wrote
//! since.
//!
//! Each page goes through the write path as a `Track` of points that are
//! already in the store (`ingest::write`), so adoption applies what every
//! write does: subjects are recorded by keyed hash, a point tagged with a
//! person who is being or has been erased is deleted from the store (and
//! logged as a follow-up of that erasure), and screening reports mentions.

use std::future::Future;

use uuid::Uuid;

use crate::context::Context;
use crate::domain::{CollectionSpec, ExternalId, Role};
use crate::error::{LetheError, Result};
use crate::ingest::{self, ChunkInput, WriteMode};
use crate::store::attach::{self as jobs, AttachRow, PageCounts};
use crate::store::lease::Lease;
use crate::store::lineage;
use crate::vector_store::StoredPoint;

const MAX_ATTEMPTS: i32 = 10;

/// One adoption worker until `shutdown` resolves.
pub async fn run_worker_until_stopped(ctx: Context, shutdown: impl Future<Output = ()> + Send) {
    let owner = Uuid::new_v4();
    let swept = std::sync::Mutex::new(None);
    let work = || async {
        sweep_if_due(&ctx, &swept).await?;
        step(&ctx, owner).await
    };
    crate::queue::run_until_stopped(&ctx, "adoption", &ctx.wake.adoption, work, shutdown).await;
    // As the erase workers do: the scan this worker held resumes at its last
    // recorded page on the next claim, at once rather than when its lease
    // runs out. The scan was dropped with the loop, and a new claim fences it.
    match jobs::release_leases_of(&ctx.pool, &[owner]).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "stopping: the running adoption scan's lease is released"),
        Err(e) => tracing::warn!(error.cause_chain = ?e, "stopping: cannot release the running adoption scan's lease; it expires"),
    }
}

/// How often each worker sweeps lookup rows without lineage over every
/// attached collection (also when rescans are off, `attach.rescan_interval_secs: 0`):
/// at its start, then at this interval.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(900);

async fn sweep_if_due(ctx: &Context, last: &std::sync::Mutex<Option<std::time::Instant>>) -> Result<()> {
    {
        let mut last = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < SWEEP_EVERY) {
            return Ok(());
        }
        *last = Some(std::time::Instant::now());
    }
    let swept = jobs::sweep_unlinked_point_ids(&ctx.pool, None, UNLINKED_AFTER_SECS).await?;
    if swept > 0 {
        tracing::info!(rows = swept, "lookup rows of text ids without lineage forgotten");
    }
    Ok(())
}

/// Queues due rescans, then claims and runs one job; false when there was none.
///
/// # Errors
/// When the queue cannot be read.
pub async fn step(ctx: &Context, owner: Uuid) -> Result<bool> {
    // No turn at the pool here: the scan holds no transaction, and each
    // batch it tracks takes its turn in `ingest::write` (turns do not nest).
    jobs::queue_due_rescans(&ctx.pool).await?;
    let Some(job) = jobs::claim(&ctx.pool, owner, lease_secs(ctx)).await? else { return Ok(false) };
    let lease = Lease { owner, epoch: job.lease_epoch };
    if let Err(e) = scan(ctx, &job, lease).await {
        // The job record (and this log line) outlive the points: a value the
        // store's error quoted (a text point id, a source, a tag) may name a
        // person who is erased later, so neither keeps quoted values.
        let message = without_values(&e.to_string());
        tracing::warn!(job_id = %job.job_id, error = %message, "adoption scan stopped");
        let transient = matches!(e, LetheError::Unavailable(_) | LetheError::Unexpected(_));
        if transient && job.attempts < MAX_ATTEMPTS {
            let backoff = f64::from(job.attempts.clamp(1, 6)).exp2();
            jobs::release(&ctx.pool, job.job_id, lease, &message, backoff).await?;
        } else {
            jobs::fail(&ctx.pool, job.job_id, lease, &message).await?;
        }
    }
    Ok(true)
}

fn lease_secs(ctx: &Context) -> f64 {
    ctx.settings.erasure.lease_secs as f64
}

/// A lookup row of a text id with no lineage behind it, not written or read
/// for this long, was left by a call cut off by a crash (a call writes
/// lineage, or forgets its rows, within its request's time; a read marks the
/// rows it uses): each scan's end, and each worker every `SWEEP_EVERY`,
/// forgets such rows.
const UNLINKED_AFTER_SECS: f64 = 3600.0;

/// Reads the store from the job's cursor to its end, recording each page,
/// then forgets lookup rows left without lineage (see `UNLINKED_AFTER_SECS`).
async fn scan(ctx: &Context, job: &AttachRow, lease: Lease) -> Result<()> {
    let spec = lineage::collection_by_id(&ctx.pool, job.tenant_id, job.collection_id)
        .await?
        .ok_or_else(|| LetheError::NotFound("attached collection".into()))?;
    let store = ctx.stores.get(&spec)?.clone();
    if job.cursor.is_none() && job.scanned == 0 {
        let total = i64::try_from(store.count_all(&spec).await?).unwrap_or(i64::MAX);
        if !jobs::started(&ctx.pool, job.job_id, lease, total).await? {
            return Ok(());
        }
    }
    let page_size = ctx.settings.attach.page_size.max(1);
    let mut cursor = job.cursor;
    loop {
        let (points, next) = store.scroll(&spec, cursor, page_size, false).await?;
        let counts = record_page(ctx, &spec, &points).await?;
        if !jobs::advance(&ctx.pool, job.job_id, lease, next, counts).await? {
            return Ok(()); // another claim runs the job now
        }
        if next.is_none() || points.is_empty() {
            break;
        }
        cursor = next;
        if !jobs::renew(&ctx.pool, job.job_id, lease, lease_secs(ctx)).await? {
            return Ok(());
        }
    }
    let swept = jobs::sweep_unlinked_point_ids(&ctx.pool, Some(spec.collection_id), UNLINKED_AFTER_SECS).await?;
    if swept > 0 {
        tracing::info!(collection = %spec.name, rows = swept, "lookup rows of text ids without lineage forgotten");
    }
    let subjects = jobs::subjects_in(&ctx.pool, spec.collection_id).await?;
    let every = ctx.settings.attach.rescan_interval_secs;
    let next_scan = (every > 0).then(|| chrono::Utc::now() + chrono::Duration::seconds(i64::try_from(every).unwrap_or(i64::MAX)));
    jobs::complete(&ctx.pool, job.job_id, lease, subjects, next_scan).await?;
    tracing::info!(collection = %spec.name, subjects, "adoption scan completed");
    Ok(())
}

/// Records one page of points as a Track of points already in the store.
async fn record_page(ctx: &Context, spec: &CollectionSpec, points: &[StoredPoint]) -> Result<PageCounts> {
    let chunks: Vec<ChunkInput> = points.iter().map(|p| chunk_of(spec, p)).collect();
    let untagged = chunks.iter().filter(|c| c.tags.is_empty()).count();
    let outcome = if chunks.is_empty() {
        ingest::WriteOutcome::default()
    } else {
        ingest::write(ctx, spec, chunks, &[], WriteMode::Track { verify_points: false }).await?
    };
    let n = |x: usize| i64::try_from(x).unwrap_or(i64::MAX);
    Ok(PageCounts {
        scanned: n(points.len()),
        tracked: i64::from(outcome.accepted) - n(untagged).min(i64::from(outcome.accepted)),
        untagged: n(untagged),
        suppressed: i64::from(outcome.suppressed),
    })
}

/// A stored point as the write path takes it. Tags that are not valid
/// subject ids (blank, longer than 256 bytes) are not subjects Lethe can be
/// asked to erase; the point is recorded without them.
pub fn chunk_of(spec: &CollectionSpec, p: &StoredPoint) -> ChunkInput {
    let source = ExternalId::parse("source_id", &p.payload.source_id)
        .or_else(|_| ExternalId::parse("source_id", &p.id.to_string()))
        .expect("a UUID is a valid source id");
    let mut tags: Vec<(ExternalId, Role)> = Vec::new();
    for t in &p.payload.subjects {
        if let Ok(id) = ExternalId::parse("tag", t)
            && !tags.iter().any(|(s, _)| s == &id)
        {
            tags.push((id, Role::Owner));
        }
    }
    ChunkInput {
        source_id: source,
        source_uri: String::new(),
        source_kind: spec.mapping.as_ref().and_then(|m| m.preset.clone()).unwrap_or_default(),
        // PostgreSQL's text cannot hold NUL, which a Qdrant payload can: the
        // page would fail for good. U+FFFD keeps the words on either side
        // apart for residual search.
        text: if spec.store_text { p.payload.text.as_deref().map(|t| t.replace('\0', "\u{FFFD}")) } else { None },
        tags,
        point_id: Some(p.id),
        ordinal: 0,
        vector: None,
        written_at: p.written_at,
        native_id: None,
    }
}

/// `message` with every quoted value (between backticks, single or double
/// quotes) and every `(key)=(value)` detail of PostgreSQL replaced by `…`:
/// what failed stays readable, what it failed on does not outlive it.
pub fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        let close = match c {
            '`' | '"' => Some(c),
            // An apostrophe inside a word (`don't`) is not a quote.
            '\'' if !out.chars().last().is_some_and(char::is_alphanumeric) => Some(c),
            '=' if chars.peek() == Some(&'(') => Some(')'),
            _ => None,
        };
        let Some(close) = close else {
            out.push(c);
            continue;
        };
        if c == '=' {
            out.push('=');
            chars.next();
            out.push('(');
        } else {
            out.push(c);
        }
        let mut closed = false;
        for d in chars.by_ref() {
            if d == close {
                closed = true;
                break;
            }
        }
        out.push('…');
        if closed {
            out.push(close);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn quoted_values_do_not_outlive_the_error() {
        assert_eq!(
            without_values("point `alice@example.com#1` is bad: invalid input syntax for type uuid: \"bob\""),
            "point `…` is bad: invalid input syntax for type uuid: \"…\""
        );
        assert_eq!(
            without_values("duplicate key value violates unique constraint: Key (id)=(carol@example.com) already exists"),
            "duplicate key value violates unique constraint: Key (id)=(…) already exists"
        );
        assert_eq!(without_values("don't stop at 'dave'"), "don't stop at '…'");
        assert_eq!(without_values("unclosed `eve"), "unclosed `…");
        assert_eq!(without_values("a backend is unavailable"), "a backend is unavailable");
    }
}
