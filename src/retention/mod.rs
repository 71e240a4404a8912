//! Retention (issue 16): rules per collection (`retention_days`, and
//! optionally per source kind) after which a source is erased, the sweep
//! that finds the sources past them and queues them as erase jobs of kind
//! `retention` (run by the erase workers: counts before, deleted and after,
//! a `retention` log entry and a certificate), a preview of what the next
//! sweep would erase, and the [`scheduler`] that sweeps every collection on
//! its interval.
//!
//! A source's age is the time lineage recorded it (its first Ingest or
//! Track; a later write to the same source id does not renew it). A source
//! one of whose chunks is tagged with a subject under legal hold is withheld:
//! counted and reported, never deleted. Attached collections need a
//! timestamp in their mapping (adoption then dates each source by its oldest
//! point); without one they are refused: lineage learns their points when it
//! adopts them, not when the framework wrote them.

pub mod cli;
pub mod scheduler;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::context::Context;
use crate::domain::{CollectionName, CollectionSpec};
use crate::error::{LetheError, Result};
use crate::store::retention::{self as store, DueCounts, KindRule, NewRetentionJob, Rules};
use crate::store::{StoreError, holds, lineage, subjects};

/// At most this many days (100 years), as for `CreateCollection.retention_days`.
pub const MAX_DAYS: u32 = 36_500;

/// Source-kind rules per collection: a retention job's `reason` names each
/// (kept for ever in its log entry and certificate).
pub const MAX_KIND_RULES: i64 = 100;

/// A validated `SetRetention` request.
#[derive(Debug, Clone)]
pub struct SetRule {
    pub collection: CollectionName,
    /// None: remove the source kind's rule (its sources follow the collection's again).
    pub days: Option<u32>,
    /// None: the collection's own rule.
    pub source_kind: Option<String>,
}

/// A collection's retention as `ListRetention` shows it.
#[derive(Debug, Clone)]
pub struct CollectionRetention {
    pub spec: CollectionSpec,
    pub kind_rules: Vec<KindRule>,
    /// False for an attached collection (no timestamp to measure age by).
    pub supported: bool,
    pub last_swept_at: Option<DateTime<Utc>>,
    /// When the scheduler sweeps it next; None without a rule or scheduler.
    pub next_sweep_at: Option<DateTime<Utc>>,
}

impl CollectionRetention {
    /// Whether any rule erases anything.
    pub fn active(&self) -> bool {
        has_rule(&self.spec, &self.kind_rules)
    }
}

fn has_rule(spec: &CollectionSpec, kind_rules: &[KindRule]) -> bool {
    spec.retention_days > 0 || kind_rules.iter().any(|r| r.collection_id == spec.collection_id && r.days > 0)
}

/// Whether lineage knows when the collection's sources were written: a
/// collection Lethe writes, or an attached one whose mapping has a timestamp.
pub fn supported(spec: &CollectionSpec) -> bool {
    spec.mapping.as_deref().is_none_or(|m| m.timestamp.is_some())
}

fn unsupported(spec: &CollectionSpec) -> LetheError {
    LetheError::precondition(
        "retention_needs_timestamp",
        format!(
            "collection `{}` is attached without a timestamp in its mapping: lineage records when Lethe adopted its \
             points, not when they were written, so retention cannot tell their age (attach with mapping.timestamp)",
            spec.name
        ),
    )
}

/// What one collection's sweep found and queued (or, for a preview, would).
#[derive(Debug, Clone)]
pub struct CollectionSweep {
    pub collection: String,
    pub due: DueCounts,
    /// Sources past the rule beyond this sweep's limit: the next sweep takes them.
    pub deferred_sources: i64,
    /// The retention jobs queued (none for a preview).
    pub job_ids: Vec<Uuid>,
}

/// Sets a collection's rule, or a source kind's.
///
/// # Errors
/// `NotFound` for an unknown collection; `FailedPrecondition`
/// `retention_needs_timestamp` for a rule of more than 0 days on an attached
/// collection, `too_many_rules` for a new kind past [`MAX_KIND_RULES`];
/// `InvalidArgument` for a source kind naming an erased person.
pub async fn set(ctx: &Context, tenant_id: Uuid, rule: SetRule) -> Result<CollectionRetention> {
    let spec = crate::catalog::collection(ctx, tenant_id, &rule.collection).await?;
    if !supported(&spec) && rule.days.is_some_and(|d| d > 0) {
        return Err(unsupported(&spec));
    }
    let days = rule.days.map(|d| i32::try_from(d.min(MAX_DAYS)).unwrap_or(0));
    match &rule.source_kind {
        None => store::set_collection_days(&ctx.pool, tenant_id, spec.collection_id, days.unwrap_or(0)).await?,
        Some(kind) => {
            // Copied into every retention job's reason, kept for ever. Clearing
            // a rule made before the person was erased takes the name out.
            if days.is_some() {
                crate::screening::refuse_texts_naming_the_erased(ctx, tenant_id, &[("source_kind", kind)]).await?;
                // Also as a sweep reads it (an erased person's caller id as a
                // token): the sweep would drop the rule.
                let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
                if !kinds_naming_the_erased(ctx, &mut tx, tenant_id, &[kind.as_str()]).await?.is_empty() {
                    return Err(LetheError::invalid(
                        "source_kind",
                        "names a person who is being or has been erased; it is kept for ever, so it must not",
                    ));
                }
            }
            if !store::set_kind_rule(&ctx.pool, tenant_id, spec.collection_id, kind, days, MAX_KIND_RULES).await? {
                return Err(LetheError::precondition(
                    "too_many_rules",
                    format!("a collection has at most {MAX_KIND_RULES} source-kind rules: clear one first"),
                ));
            }
        }
    }
    // Not the kind: a rule cleared may be one that names someone erased.
    tracing::info!(collection = %spec.name, days = ?rule.days, kind_rule = rule.source_kind.is_some(), "retention rule set");
    let list = list(ctx, tenant_id).await?;
    list.into_iter()
        .find(|c| c.spec.collection_id == spec.collection_id)
        .ok_or_else(|| LetheError::NotFound(format!("collection `{}`", rule.collection)))
}

/// Every collection of the tenant with its rules and sweep times.
///
/// # Errors
/// Database failures.
pub async fn list(ctx: &Context, tenant_id: Uuid) -> Result<Vec<CollectionRetention>> {
    let specs = lineage::list_collections(&ctx.pool, tenant_id).await?;
    let rules = store::kind_rules(&ctx.pool, tenant_id).await?;
    let sweeps = store::sweeps(&ctx.pool, tenant_id).await?;
    let scheduled = ctx.settings.retention.enabled;
    Ok(specs
        .into_iter()
        .map(|spec| {
            let kind_rules: Vec<KindRule> = rules.iter().filter(|r| r.collection_id == spec.collection_id).cloned().collect();
            let sweep = sweeps.iter().find(|s| s.collection_id == spec.collection_id);
            let active = has_rule(&spec, &kind_rules) && supported(&spec);
            // Due now when never swept or overdue: the next tick takes it.
            let next = (scheduled && active)
                .then(|| sweep.and_then(|s| s.next_sweep_at).map_or_else(Utc::now, |t| t.max(Utc::now())));
            CollectionRetention {
                supported: supported(&spec),
                last_swept_at: sweep.and_then(|s| s.last_swept_at),
                next_sweep_at: next,
                kind_rules,
                spec,
            }
        })
        .collect())
}

/// The collections a preview or sweep covers: the one named (which must
/// have a rule), or every collection with a rule.
async fn covered(ctx: &Context, tenant_id: Uuid, collection: Option<&CollectionName>) -> Result<Vec<CollectionRetention>> {
    let all = list(ctx, tenant_id).await?;
    let Some(name) = collection else {
        return Ok(all.into_iter().filter(|c| c.active() && c.supported).collect());
    };
    let one = all
        .into_iter()
        .find(|c| c.spec.name == *name)
        .ok_or_else(|| LetheError::NotFound(format!("collection `{name}`")))?;
    if !one.supported {
        return Err(unsupported(&one.spec));
    }
    if !one.active() {
        return Err(LetheError::precondition(
            "no_retention_rule",
            format!("collection `{name}` has no retention rule (SetRetention sets one)"),
        ));
    }
    Ok(vec![one])
}

/// What the next sweep would erase, per collection; nothing is changed.
///
/// # Errors
/// `NotFound`, `FailedPrecondition` (`no_retention_rule`,
/// `retention_needs_timestamp`) for a named collection; database failures.
pub async fn preview(ctx: &Context, tenant_id: Uuid, collection: Option<&CollectionName>) -> Result<Vec<CollectionSweep>> {
    let mut out = Vec::new();
    for c in covered(ctx, tenant_id, collection).await? {
        let due = store::due_counts(&ctx.pool, tenant_id, c.spec.collection_id, rules(ctx, &c.spec, &c.kind_rules), true).await?;
        let deferred = (due.sources - (max_sources(ctx) - due.in_flight_sources).max(0)).max(0);
        out.push(CollectionSweep { collection: c.spec.name.to_string(), due, deferred_sources: deferred, job_ids: Vec::new() });
    }
    Ok(out)
}

/// Sweeps now: queues the sources past their rules as retention jobs.
///
/// # Errors
/// As [`preview`].
pub async fn sweep(ctx: &Context, tenant_id: Uuid, collection: Option<&CollectionName>) -> Result<Vec<CollectionSweep>> {
    let mut out = Vec::new();
    let interval = ctx.settings.retention.interval_secs as f64;
    for c in covered(ctx, tenant_id, collection).await? {
        out.push(sweep_collection(ctx, &c.spec, "retention sweep (SweepRetention)").await?);
        store::record_swept(&ctx.pool, tenant_id, c.spec.collection_id, interval).await?;
    }
    Ok(out)
}

fn rules(ctx: &Context, spec: &CollectionSpec, kind_rules: &[KindRule]) -> Rules {
    let days = i32::try_from(spec.retention_days).unwrap_or(0);
    let min_days = std::iter::once(days)
        .chain(kind_rules.iter().filter(|k| k.collection_id == spec.collection_id).map(|k| k.days))
        .filter(|d| *d > 0)
        .min()
        .unwrap_or(0);
    // Seconds in configuration: far below f64's exact integers.
    #[allow(clippy::cast_precision_loss)]
    let retry_failed_secs = ctx.settings.retention.retry_failed_after_secs as f64;
    Rules { days, min_days, retry_failed_secs }
}

fn max_sources(ctx: &Context) -> i64 {
    let r = &ctx.settings.retention;
    i64::try_from(r.sources_per_job.saturating_mul(r.max_jobs_per_sweep)).unwrap_or(i64::MAX)
}

/// Queues the collection's sources past their rules as retention jobs of
/// at most `retention.sources_per_job` sources each, so that at most
/// `retention.max_jobs_per_sweep` jobs' worth of sources are queued or
/// running for the collection at once (a backlog drains sweep after sweep
/// at the workers' pace). Under the collection's sweep lock,
/// so that concurrent sweeps (replicas, a scheduled one and a requested
/// one) give every source to one job: the second finds the first's jobs and
/// leaves their sources out. Held sources are counted, not queued.
///
/// # Errors
/// Database failures.
pub async fn sweep_collection(ctx: &Context, spec: &CollectionSpec, requested_by: &str) -> Result<CollectionSweep> {
    let r = &ctx.settings.retention;
    // Its reason names every kind: none that names someone erased.
    drop_rules_naming_the_erased(ctx, spec.tenant_id).await?;
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    store::lock_sweep(&mut tx, spec.collection_id).await?;
    // Read under a share lock: an erasure that drops one of them meanwhile
    // waits, then rewrites this sweep's reasons with the others.
    let kind_rules = store::kind_rules_for_share(&mut *tx, spec.collection_id).await?;
    let reason = rule_text(spec, &kind_rules);
    let rules = rules(ctx, spec, &kind_rules);
    let due = store::due_counts(&mut *tx, spec.tenant_id, spec.collection_id, rules, false).await?;
    let room = (max_sources(ctx) - due.in_flight_sources).max(0);
    let sources = store::due_sources(&mut tx, spec.tenant_id, spec.collection_id, rules, room).await?;
    let deadline_days = i32::try_from(ctx.settings.erasure.default_deadline_days).unwrap_or(i32::MAX);
    let mut job_ids = Vec::new();
    for batch in sources.chunks(r.sources_per_job.max(1)) {
        let new = NewRetentionJob {
            tenant_id: spec.tenant_id,
            collection_id: spec.collection_id,
            requested_by,
            reason: &reason,
            guarantee_physical: r.guarantee_physical,
            deadline_days,
            sources: batch,
        };
        let job = store::insert_job(&mut tx, &new).await?;
        let message = format!("queued: {} sources past retention in `{}`", batch.len(), spec.name);
        crate::store::jobs::insert_event(&mut *tx, job.job_id, "freeze", "queued", &message).await?;
        job_ids.push(job.job_id);
    }
    let queued_chunks = store::chunk_count(&mut *tx, &sources).await?;
    tx.commit().await.map_err(StoreError::from)?;
    if !job_ids.is_empty() {
        ctx.wake.erasure.notify_waiters();
    }
    let queued = i64::try_from(sources.len()).unwrap_or(i64::MAX);
    tracing::info!(
        collection = %spec.name,
        jobs = job_ids.len(),
        sources = queued,
        withheld = due.withheld_sources,
        "retention sweep"
    );
    // What this sweep queued; the held and in-flight counts as it found them.
    let deferred_sources = due.sources - queued;
    let due = DueCounts { sources: queued, chunks: queued_chunks, oldest: if queued > 0 { due.oldest } else { None }, ..due };
    Ok(CollectionSweep { collection: spec.name.to_string(), due, deferred_sources, job_ids })
}

/// Drops the source-kind rules among `rules` (tenant, collection, kind)
/// whose kind `names` someone erased, in the erasure's own transaction:
/// every later retention job's reason would name the kind again, in its
/// log entry and certificate (kept for ever), and the rule itself would keep
/// it in clear. The sources of that kind had it cleared by the same
/// erasure (or by the next reconcile), so the rule no longer matches them;
/// other sources of the kind follow the collection's rule, as they would once
/// a reconcile cleared their kind. Returns how many rules were dropped.
///
/// # Errors
/// Database failures.
pub async fn drop_rules_naming(
    tx: &mut sqlx::PgConnection,
    rules: &[(Uuid, Uuid, String)],
    names: impl Fn(&str, Uuid) -> bool,
) -> Result<u64> {
    let naming: Vec<(Uuid, Uuid, String)> = rules.iter().filter(|(tenant, _, kind)| names(kind, *tenant)).cloned().collect();
    let dropped = store::drop_kind_rules(tx, &naming).await?;
    if dropped > 0 {
        // Never the kind itself: it names the person.
        tracing::info!(rules = dropped, "retention rules dropped: their source kind named an erased person");
    }
    Ok(dropped)
}

/// [`drop_rules_naming`] for every rule of the tenant, by the keys of the
/// people erased (not under legal hold) as screening reads a text
/// ([`crate::screening::name_hashes`]): for a sweep (before it writes a
/// reason), a reconcile and a ledger import (a restore may bring back rules
/// an erasure dropped). One key lookup for the tenant's rules.
///
/// # Errors
/// Database and key failures.
pub async fn drop_rules_naming_the_erased(ctx: &Context, tenant_id: Uuid) -> Result<u64> {
    let rules = store::kind_rules_of_tenants(&ctx.pool, &[tenant_id]).await?;
    if rules.is_empty() {
        return Ok(0);
    }
    let kinds: Vec<&str> = rules.iter().map(|r| r.2.as_str()).collect();
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    let naming = kinds_naming_the_erased(ctx, &mut tx, tenant_id, &kinds).await?;
    let dropped = drop_rules_naming(&mut tx, &rules, |kind, _| naming.contains(kind)).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(dropped)
}

/// Of `kinds`, those that name someone erased, not under legal hold, by
/// their keys as screening reads a text or their caller id as a token
/// ([`crate::screening::name_hashes`], as sources' kinds are read). Takes
/// the tenant's hold lock shared in `tx`.
async fn kinds_naming_the_erased<'k>(
    ctx: &Context,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tenant_id: Uuid,
    kinds: &[&'k str],
) -> Result<HashSet<&'k str>> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    let keys: Vec<(&str, Vec<Vec<u8>>)> = kinds.iter().map(|k| (*k, crate::screening::name_hashes(&secret, k))).collect();
    let mut all: Vec<Vec<u8>> = keys.iter().flat_map(|(_, k)| k.iter().cloned()).collect();
    all.sort_unstable();
    all.dedup();
    if all.is_empty() {
        return Ok(HashSet::new());
    }
    holds::lock_shared(tx, tenant_id).await?;
    let erased: HashSet<Vec<u8>> = subjects::erased_keys_not_held(&mut **tx, tenant_id, &all).await?.into_iter().collect();
    Ok(keys.into_iter().filter(|(_, k)| k.iter().any(|h| erased.contains(h))).map(|(kind, _)| kind).collect())
}

/// The rule a job applied, for its `reason` (in the log entry and certificate).
fn rule_text(spec: &CollectionSpec, kind_rules: &[KindRule]) -> String {
    let mut s = format!("retention: sources of `{}` recorded more than ", spec.name);
    if spec.retention_days > 0 {
        s.push_str(&format!("{} days ago", spec.retention_days));
    } else {
        s.push_str("their kind's days ago (the collection keeps other kinds)");
    }
    let kinds: Vec<String> = kind_rules
        .iter()
        .map(|k| if k.days > 0 { format!("kind `{}`: {} days", k.source_kind, k.days) } else { format!("kind `{}`: kept", k.source_kind) })
        .collect();
    if !kinds.is_empty() {
        s.push_str(&format!(" ({})", kinds.join(", ")));
    }
    s
}
