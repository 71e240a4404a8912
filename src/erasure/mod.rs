//! Erasure: submitting jobs, reading them, and the worker that runs their
//! stages (freeze → plan → delete → verify → residual → forget lineage →
//! physical → log). Each stage is idempotent and the current stage is
//! persisted, so a job survives a crash and resumes where it stopped.
//!
//! `stages` has freeze, plan and log; `delete` the destructive stages on
//! the person's own data, `bulk` delete and verify for a batch's small jobs
//! together; `residual` and `physical` their stages; `holds`
//! what legal holds protect at each destructive step; `report` what the log
//! entry and the certificate say.

mod bulk;
mod delete;
mod holds;
mod physical;
mod report;
mod residual;
mod retention;
mod stages;
mod worker;

use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use report::b64;
pub use worker::{ExecutionOutcome, run_worker_until_stopped, try_execute_batch, try_execute_job};

use crate::context::Context;
use crate::domain::{ExternalId, JobStatus, ResidualPolicy, Stage};
use crate::error::{LetheError, Result};
use crate::ingest::{self, SubjectInput};
use crate::store::jobs::{self, CountRow, EventRow, Inserted, JobRow, JobTarget, NewJob};
use crate::store::{StoreError, lineage};

/// A validated `Erase` request.
#[derive(Debug, Clone)]
pub struct EraseInput {
    pub subject: SubjectInput,
    pub requested_by: String,
    pub reason: String,
    pub residual_policy: ResidualPolicy,
    pub idempotency_key: Option<String>,
    pub deadline_days: Option<u32>,
    pub guarantee_physical: bool,
}

impl EraseInput {
    /// The keyed hash (HMAC-SHA256 with the tenant's key) of the request's
    /// canonical fields, all but the idempotency key: what the key is bound
    /// to. Keyed, because it is kept for ever beside the job and covers the
    /// person's id and identifiers: a plain hash could be tested against
    /// guesses from a dump. Identifiers count as a set (order and repeats do
    /// not matter); the deadline counts as given, not as resolved from
    /// configuration, so a replay after a configuration change still matches.
    pub fn fingerprint(&self, tenant_secret: &[u8]) -> Vec<u8> {
        crate::context::keyed_hash(tenant_secret, &self.canonical(2))
    }

    /// Version 1, a plain SHA-256, as jobs made before keyed fingerprints
    /// stored it (compared only, never stored again).
    pub fn legacy_fingerprint(&self) -> Vec<u8> {
        Sha256::digest(self.canonical(1).as_bytes()).to_vec()
    }

    fn canonical(&self, version: u32) -> String {
        #[derive(Serialize)]
        struct Canonical<'a> {
            version: u32,
            subject: &'a str,
            identifiers: Vec<(&'a str, &'a str)>,
            requested_by: &'a str,
            reason: &'a str,
            residual_policy: &'a str,
            deadline_days: Option<u32>,
            guarantee_physical: bool,
        }
        let mut identifiers: Vec<(&str, &str)> =
            self.subject.identifiers.iter().map(|i| (i.kind.as_str(), i.value.trim())).collect();
        identifiers.sort_unstable();
        identifiers.dedup();
        let canonical = Canonical {
            version,
            subject: self.subject.id.as_str(),
            identifiers,
            requested_by: &self.requested_by,
            reason: &self.reason,
            residual_policy: self.residual_policy.as_str(),
            deadline_days: self.deadline_days,
            guarantee_physical: self.guarantee_physical,
        };
        // Serialising strings, numbers and booleans cannot fail.
        serde_json::to_string(&canonical).unwrap_or_default()
    }
}

/// A job with its per-collection counts.
#[derive(Debug, Clone)]
pub struct JobView {
    pub job: JobRow,
    /// The caller's subject id; None once the subject is erased, and for
    /// retention jobs (which have no subject).
    pub subject_external_id: Option<String>,
    /// Empty for retention jobs.
    pub subject_hash: Vec<u8>,
    pub counts: Vec<CountRow>,
    /// A retention job's collection and sources.
    pub retention: Option<RetentionTarget>,
}

/// What a retention job erases: sources of one collection.
#[derive(Debug, Clone)]
pub struct RetentionTarget {
    pub collection: String,
    /// Sources the sweep gave the job, and those kept under legal hold.
    pub sources: u64,
    pub withheld_sources: u64,
}

/// Submits an erasure. Under legal hold the job is recorded as refused, the
/// refusal logged, and `FailedPrecondition(legal_hold)` returned. A replayed
/// idempotency key returns its job if the request is the same (same
/// [`EraseInput::fingerprint`]), else `FailedPrecondition(idempotency_key_reused)`.
/// A subject with a queued or in-progress job gets `ErasureInProgress` naming
/// it, whatever the key: two jobs of one subject would count and certify the
/// same deletions. The subject, the job, its event and the refusal are
/// written in one transaction, so a request that is turned away writes nothing.
///
/// # Errors
/// `FailedPrecondition` (legal hold, idempotency key reused), `ErasureInProgress`,
/// database failures.
pub async fn submit(ctx: &Context, tenant_id: Uuid, input: EraseInput) -> Result<JobView> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    let fingerprint = input.fingerprint(&secret);
    // Kept as a keyed hash: the key is only ever compared, and a client may
    // build it from the person's id or address ("erase-alice@example.com").
    let key = input.idempotency_key.as_deref().map(|k| stored_idempotency_key(&secret, k));
    // Before any write: a key reused for another request writes nothing.
    if let (Some(given), Some(key)) = (&input.idempotency_key, &key)
        && let Some(job) = jobs::job_by_key(&ctx.pool, tenant_id, key, given).await?
    {
        return replay(ctx, job, &input, &fingerprint).await;
    }
    // Naming someone erased before (any subject of the tenant): checked
    // before the transaction takes a connection of the pool.
    let texts = [("requested_by", input.requested_by.as_str()), ("reason", input.reason.as_str())];
    crate::screening::refuse_texts_naming_the_erased(ctx, tenant_id, &texts).await?;
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    let subject = ingest::put_subject_for_erasure(ctx, &mut tx, tenant_id, &input.subject).await?;
    // Naming this subject: refused before the job is written (the transaction rolls back).
    let who = ingest::Named { row: &subject, id: input.subject.id.as_str(), given: &input.subject.identifiers };
    ingest::refuse_texts_naming(&mut tx, &secret, who, &texts).await?;
    let refused = subject.legal_hold;
    let refusal = if refused {
        let reason = subject.legal_hold_reason.as_deref().unwrap_or_default();
        let kept = ingest::hold_reason_to_keep(&mut tx, &secret, who, reason).await?;
        Some(format!("legal_hold: {kept}"))
    } else {
        None
    };
    let deadline_days = input.deadline_days.unwrap_or(ctx.settings.erasure.default_deadline_days);
    let new = NewJob {
        tenant_id,
        subject_id: subject.subject_id,
        subject_tag: input.subject.id.as_str(),
        requested_by: &input.requested_by,
        reason: &input.reason,
        idempotency_key: key.as_deref(),
        request_fingerprint: &fingerprint,
        residual_policy: input.residual_policy.as_str(),
        guarantee_physical: input.guarantee_physical,
        status: if refused { JobStatus::Refused.as_str() } else { JobStatus::Queued.as_str() },
        stage: if refused { Stage::Done.as_str() } else { Stage::Freeze.as_str() },
        error: refusal.as_deref(),
        deadline_days: i32::try_from(deadline_days).unwrap_or(i32::MAX),
    };
    let job = match jobs::insert_job(&mut tx, &new).await? {
        Inserted::Created(job) => job,
        Inserted::KeyTaken(job) => {
            // A concurrent request with the same key committed first.
            tx.rollback().await.map_err(StoreError::from)?;
            return replay(ctx, job, &input, &fingerprint).await;
        }
        Inserted::SubjectBusy => {
            tx.rollback().await.map_err(StoreError::from)?;
            return Err(in_progress(ctx, subject.subject_id).await);
        }
    };
    let head = record_new_job(ctx, &mut tx, &job, &input, &subject.subject_hash, refused).await?;
    tx.commit().await.map_err(StoreError::from)?;
    if refused {
        return Err(LetheError::LegalHold { job_id: job.job_id, head: head.map(Box::new) });
    }
    // One job: one idle worker (the others keep sleeping).
    ctx.wake.erasure.notify_one();
    tracing::info!(job_id = %job.job_id, "erasure submitted");
    // A new job has no counts yet, and its subject was just read.
    Ok(JobView {
        job,
        subject_external_id: subject.external_id,
        subject_hash: subject.subject_hash,
        counts: Vec::new(),
        retention: None,
    })
}

/// An idempotency key as the job row keeps it: the hex of its keyed hash
/// (a domain of its own: never equal to a subject's or identifier's hash).
fn stored_idempotency_key(secret: &[u8], key: &str) -> String {
    format!("hmac:{}", hex::encode(crate::context::keyed_hash(secret, &format!("idempotency-key\0{key}"))))
}

/// What goes with a new job in its transaction: the identifiers the request
/// gave (for the residual stage), its first event, and a refusal's log entry
/// (whose signed head is returned, for the requester to keep).
async fn record_new_job(
    ctx: &Context,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    job: &JobRow,
    input: &EraseInput,
    subject_hash: &[u8],
    refused: bool,
) -> Result<Option<crate::audit::SignedHead>> {
    if !refused {
        let given: Vec<(String, String)> =
            input.subject.identifiers.iter().map(|i| (i.kind.as_str().to_owned(), i.value.clone())).collect();
        jobs::insert_request_identifiers(&mut **tx, job.job_id, &given).await?;
    }
    let message = if refused { "refused: legal hold" } else { "queued" };
    jobs::insert_event(&mut **tx, job.job_id, &job.stage, &job.status, message).await?;
    if !refused {
        return Ok(None);
    }
    let body = report::refusal_body(job, subject_hash);
    let (_, head) =
        crate::audit::append(tx, &ctx.signer, job.tenant_id, "refusal", Some(job.job_id), Some(subject_hash), &body).await?;
    Ok(Some(head))
}

/// The answer to a request whose idempotency key names `job`.
async fn replay(ctx: &Context, job: JobRow, input: &EraseInput, fingerprint: &[u8]) -> Result<JobView> {
    if !same_request(ctx, &job, input, fingerprint).await? {
        return Err(LetheError::precondition(
            "idempotency_key_reused",
            format!(
                "the idempotency key was first used for another request (job {}); nothing was done: \
                 use a new key for a new request",
                job.job_id
            ),
        ));
    }
    if job.status == JobStatus::Refused.as_str() {
        // The log only grows: its current head covers the refusal.
        let head = crate::audit::current_head(&ctx.pool, job.tenant_id).await?;
        return Err(LetheError::LegalHold { job_id: job.job_id, head: head.map(Box::new) });
    }
    view(ctx, job).await
}

/// Whether `input` is the request that created `job`. Jobs from before
/// fingerprints are compared on what their row still records.
async fn same_request(ctx: &Context, job: &JobRow, input: &EraseInput, fingerprint: &[u8]) -> Result<bool> {
    if let Some(stored) = &job.request_fingerprint {
        return Ok(stored.as_slice() == fingerprint || *stored == input.legacy_fingerprint());
    }
    let hash = ctx.keyed_hash(job.tenant_id, input.subject.id.as_str()).await?;
    let subject = lineage::subject_by_hash(&ctx.pool, job.tenant_id, &hash).await?;
    Ok(subject.is_some_and(|s| Some(s.subject_id) == job.subject_id)
        && job.requested_by == input.requested_by
        && job.reason == input.reason
        && job.residual_policy == input.residual_policy.as_str()
        && job.guarantee_physical == input.guarantee_physical)
}

/// `ErasureInProgress` for the subject's active job. The insert that found it
/// busy was rolled back; should that job have ended since, the caller may
/// simply submit again.
async fn in_progress(ctx: &Context, subject_id: Uuid) -> LetheError {
    match jobs::active_job_for_subject(&ctx.pool, subject_id).await {
        Ok(Some(job)) => LetheError::ErasureInProgress { job_id: job.job_id },
        Ok(None) => LetheError::Unavailable(anyhow::anyhow!("the subject's running erasure ended meanwhile; retry")),
        Err(e) => e.into(),
    }
}

async fn view(ctx: &Context, job: JobRow) -> Result<JobView> {
    let counts = jobs::counts(&ctx.pool, job.job_id).await?;
    match job.target() {
        JobTarget::Subject(subject_id) => {
            let subject = lineage::subject_by_id(&ctx.pool, subject_id).await?;
            Ok(JobView { job, subject_external_id: subject.external_id, subject_hash: subject.subject_hash, counts, retention: None })
        }
        JobTarget::Retention { collection_id } => {
            let (sources, withheld) = crate::store::retention::target_counts(&ctx.pool, job.job_id).await?;
            let collection = lineage::collection_by_id(&ctx.pool, job.tenant_id, collection_id).await?;
            let retention = RetentionTarget {
                collection: collection.map(|c| c.name.to_string()).unwrap_or_default(),
                sources: u64::try_from(sources).unwrap_or(0),
                withheld_sources: u64::try_from(withheld).unwrap_or(0),
            };
            Ok(JobView { job, subject_external_id: None, subject_hash: Vec::new(), counts, retention: Some(retention) })
        }
    }
}

/// # Errors
/// `NotFound` for a job of another tenant or none.
pub async fn get(ctx: &Context, tenant_id: Uuid, job_id: Uuid) -> Result<JobView> {
    let job = jobs::job(&ctx.pool, tenant_id, job_id)
        .await?
        .ok_or_else(|| LetheError::NotFound(format!("erasure job {job_id}")))?;
    view(ctx, job).await
}

/// # Errors
/// Database failures.
pub async fn list(
    ctx: &Context,
    tenant_id: Uuid,
    overdue_only: bool,
    status: Option<JobStatus>,
    limit: u32,
) -> Result<Vec<JobView>> {
    let rows = jobs::list_jobs(&ctx.pool, tenant_id, overdue_only, status.map(JobStatus::as_str), i64::from(limit)).await?;
    let mut views = Vec::with_capacity(rows.len());
    for job in rows {
        views.push(view(ctx, job).await?);
    }
    Ok(views)
}

/// Events of a job after `after` (event id).
///
/// # Errors
/// Database failures.
pub async fn events_after(ctx: &Context, job_id: Uuid, after: i64) -> Result<Vec<EventRow>> {
    Ok(jobs::events_after(&ctx.pool, job_id, after).await?)
}

/// Live counts of one collection for a subject.
#[derive(Debug, Clone, Serialize)]
pub struct LiveCount {
    pub collection: String,
    pub backend: String,
    pub by_tag: u64,
    pub by_ids: u64,
    pub total: u64,
}

/// Counts a subject's vectors now, in every collection, by tag and by
/// lineage ids, from the backends themselves. Works for unknown and erased
/// subjects too (the tag is the id the auditor gives).
///
/// # Errors
/// Backend and database failures.
pub async fn count_subject(ctx: &Context, tenant_id: Uuid, subject: &ExternalId) -> Result<(String, Vec<LiveCount>)> {
    let hash = ctx.keyed_hash(tenant_id, subject.as_str()).await?;
    let row = lineage::subject_by_hash(&ctx.pool, tenant_id, &hash).await?;
    let chunks = match &row {
        Some(r) => lineage::subject_chunks(&ctx.pool, r.subject_id).await?,
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for spec in lineage::list_collections(&ctx.pool, tenant_id).await? {
        let ids: Vec<Uuid> = chunks.iter().filter(|(c, _)| *c == spec.collection_id).map(|(_, p)| *p).collect();
        let [by_tag, by_ids, total] = stages::count_three(ctx, &spec, subject.as_str(), &ids).await?;
        out.push(LiveCount {
            collection: spec.name.to_string(),
            backend: spec.backend.to_string(),
            by_tag,
            by_ids,
            total,
        });
    }
    let state = row.map_or("unknown", |r| r.state().as_str()).to_owned();
    Ok((state, out))
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Identifier, IdentifierKind};

    fn input(subject: &str, identifiers: &[(IdentifierKind, &str)]) -> EraseInput {
        EraseInput {
            subject: SubjectInput {
                id: ExternalId::parse("subject.id", subject).unwrap(),
                identifiers: identifiers.iter().map(|(kind, v)| Identifier { kind: *kind, value: (*v).into() }).collect(),
            },
            requested_by: "dpo@acme.example".into(),
            reason: "Art. 17 #12".into(),
            residual_policy: ResidualPolicy::Report,
            idempotency_key: Some("K".into()),
            deadline_days: None,
            guarantee_physical: false,
        }
    }

    #[test]
    fn the_fingerprint_ignores_the_key_and_the_order_of_identifiers() {
        let a = input("ann", &[(IdentifierKind::Email, "ann@x.example"), (IdentifierKind::Name, "Ann Lee")]);
        let mut b = input("ann", &[(IdentifierKind::Name, "Ann Lee "), (IdentifierKind::Email, "ann@x.example")]);
        b.idempotency_key = Some("other".into());
        assert_eq!(a.fingerprint(b"k"), b.fingerprint(b"k"));
        assert_ne!(a.fingerprint(b"k"), a.fingerprint(b"another tenant"), "keyed by the tenant");
    }

    #[test]
    fn every_field_of_the_request_changes_the_fingerprint() {
        let base = input("ann", &[(IdentifierKind::Email, "ann@x.example")]);
        let changes: Vec<EraseInput> = vec![
            input("bob", &[(IdentifierKind::Email, "ann@x.example")]),
            input("ann", &[(IdentifierKind::Email, "ann@y.example")]),
            input("ann", &[(IdentifierKind::Handle, "ann@x.example")]),
            input("ann", &[]),
            EraseInput { requested_by: "someone else".into(), ..base.clone() },
            EraseInput { reason: "another ticket".into(), ..base.clone() },
            EraseInput { residual_policy: ResidualPolicy::Delete, ..base.clone() },
            EraseInput { deadline_days: Some(30), ..base.clone() },
            EraseInput { guarantee_physical: true, ..base.clone() },
        ];
        for changed in changes {
            assert_ne!(changed.fingerprint(b"k"), base.fingerprint(b"k"), "{changed:?}");
        }
    }
}
