//! Restore guard (issue 16): re-applies every past erasure after a backup,
//! snapshot or point-in-time recovery brought erased people back.
//!
//! What it keeps, in Lethe's database (outside what a backend restore brings
//! back) and without plaintext, is the **erasure ledger**:
//!
//! - the tombstones the erase path already leaves (`subjects` in state
//!   `erased`): the keyed hash of the subject's caller id, which is the tag
//!   Lethe writes into the backends and the tag an attached store's mapping
//!   reads, so `HMAC(tenant key, tag)` of a point read back from a backend
//!   equals the tombstone when the point belongs to an erased person. The
//!   tags themselves are never stored: a tag is plaintext (`alice`,
//!   `alice@example.com`), and a stored copy in any reversible form would be
//!   a copy of the person. Reconcile therefore reads the tags back from the
//!   store and hashes them (one HMAC per distinct tag), which needs nothing
//!   from the operator and finds every spelling Lethe ever wrote;
//! - the keyed hashes of the points each erasure deleted (`erased_points`,
//!   [`point_hash`]): points that lineage or residual search found without
//!   the person's tag come back from a restore without it, and only their
//!   ids find them again.
//!
//! [`ledger`] exports and imports it (signed with the service's key) for the
//! case where Lethe's own database is restored from an older backup: the
//! import makes the restored subjects tombstones again and brings the point
//! hashes back. [`reconcile`] then finds every point of an erased subject in
//! every collection (by tag, by lineage, by the ledger), deletes it with
//! counts from the backend, forgets the lineage a restore brought back, and
//! logs a `reconcile` entry per collection. [`worker`] runs the queued runs
//! (the Reconcile rpc's and the schedule's) under leases.
//!
//! This module must not decide anything about erasure itself: a subject
//! that is being erased is left to its job, one under legal hold is left
//! alone (and named, by keyed hash, in the run's result).

pub mod ledger;
mod reconcile;
pub mod worker;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::context::Context;
use crate::error::{LetheError, Result};
use crate::store::ledger::{self as ledger_store, ErasedPoint};
use crate::store::reconcile::{self as runs, CollectionRow, RunRow};

pub use worker::run_worker_until_stopped;

/// Bytes of a point's keyed hash that the ledger keeps (128 bits: a chance
/// collision among a billion points is ~10⁻²¹).
pub const POINT_HASH_LEN: usize = 16;

/// The ledger's name for a point: the first [`POINT_HASH_LEN`] bytes of
/// `HMAC-SHA256(tenant key, "lethe-point/1\n" collection id "\n" point key)`.
/// Keyed, because a point key can be a plain hash of something that names
/// the person (a text id `alice@example.com#3`, a UUIDv5 of the caller's
/// source id); the prefix keeps it apart from the tenant's other keyed hashes.
#[derive(Clone)]
pub struct PointHasher(Hmac<Sha256>);

impl PointHasher {
    pub fn new(tenant_secret: &[u8]) -> Self {
        // HMAC accepts keys of any length.
        Self(<Hmac<Sha256> as Mac>::new_from_slice(tenant_secret).unwrap_or_else(|_| unreachable!()))
    }

    pub fn hash(&self, collection_id: Uuid, point: Uuid) -> Vec<u8> {
        // The same bytes as `format!("lethe-point/1\n{collection_id}\n{point}")`
        // (lower-case hyphenated ids), without an allocation per point.
        let (mut c, mut p) = ([0u8; uuid::fmt::Hyphenated::LENGTH], [0u8; uuid::fmt::Hyphenated::LENGTH]);
        let mut mac = self.0.clone();
        mac.update(b"lethe-point/1\n");
        mac.update(collection_id.hyphenated().encode_lower(&mut c).as_bytes());
        mac.update(b"\n");
        mac.update(point.hyphenated().encode_lower(&mut p).as_bytes());
        mac.finalize().into_bytes()[..POINT_HASH_LEN].to_vec()
    }
}

/// [`PointHasher::hash`] once.
pub fn point_hash(tenant_secret: &[u8], collection_id: Uuid, point: Uuid) -> Vec<u8> {
    PointHasher::new(tenant_secret).hash(collection_id, point)
}

/// Records in the ledger the points erase jobs deleted (`(job, subject,
/// subject hash)`: each job's lineage points that are no longer its
/// subject's, and its deleted residual candidates), in the log stage's
/// transaction, before the plans' point ids are forgotten: one query for
/// every job's points, one statement per tenant to record them. Returns how
/// many were new to their group (`store::ledger`).
///
/// # Errors
/// Database and key failures.
pub async fn record_erasures(
    ctx: &Context,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    jobs: &[(&crate::store::jobs::JobRow, Uuid, &[u8])],
) -> Result<u64> {
    let pairs: Vec<(Uuid, Uuid)> = jobs.iter().map(|(job, subject_id, _)| (job.job_id, *subject_id)).collect();
    let mut points = ledger_store::points_of_erasures(&mut **tx, &pairs).await?;
    let tenants: std::collections::BTreeSet<Uuid> = jobs.iter().map(|(job, ..)| job.tenant_id).collect();
    let mut added = 0;
    for tenant_id in tenants {
        let hasher = PointHasher::new(&ctx.tenant_secret(tenant_id).await?);
        let of: Vec<(Uuid, &[u8], Vec<ledger_store::JobPoint>)> = jobs
            .iter()
            .filter(|(job, ..)| job.tenant_id == tenant_id)
            .map(|(job, _, subject_hash)| {
                let hashed = points
                    .remove(&job.job_id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(collection_id, point, cause)| (collection_id, hasher.hash(collection_id, point), cause))
                    .collect();
                (job.job_id, *subject_hash, hashed)
            })
            .collect();
        added += ledger_store::record_jobs_points(&mut **tx, tenant_id, &of).await?;
    }
    Ok(added)
}

/// Records in the ledger points of `collection_id` deleted for the erased
/// subject `subject_hash` outside an erase job's stages (a follow-up).
///
/// # Errors
/// Database and key failures.
pub async fn record_deleted(
    ctx: &Context,
    ex: impl sqlx::PgExecutor<'_>,
    (tenant_id, collection_id): (Uuid, Uuid),
    points: &[Uuid],
    subject_hash: &[u8],
    (job_id, cause): (Option<Uuid>, &str),
) -> Result<u64> {
    let hasher = PointHasher::new(&ctx.tenant_secret(tenant_id).await?);
    let points: Vec<ErasedPoint> = points
        .iter()
        .map(|p| ErasedPoint {
            collection_id,
            point_hash: hasher.hash(collection_id, *p),
            subject_hash: subject_hash.to_vec(),
            job_id,
            cause: cause.to_owned(),
        })
        .collect();
    Ok(ledger_store::record_points(ex, tenant_id, &points).await?)
}

/// A reconcile run with what it did per collection.
#[derive(Debug, Clone)]
pub struct RunView {
    pub run: RunRow,
    pub collections: Vec<CollectionRow>,
}

/// Queues a reconcile of the tenant (`Reconcile`), or returns the run that
/// is already queued or running; true for a new run.
///
/// # Errors
/// `InvalidArgument` when `requested_by` names an erased person (it is
/// copied into the run and its log entries); database failures.
pub async fn request(ctx: &Context, tenant_id: Uuid, requested_by: &str) -> Result<(RunView, bool)> {
    crate::screening::refuse_texts_naming_the_erased(ctx, tenant_id, &[("requested_by", requested_by)]).await?;
    let (run, new) = runs::request(&ctx.pool, tenant_id, "manual", requested_by).await?;
    if new {
        ctx.wake.reconcile.notify_waiters();
        tracing::info!(run_id = %run.job_id, "reconcile queued");
    }
    Ok((view(ctx, run).await?, new))
}

/// # Errors
/// `NotFound` for a run of another tenant or none.
pub async fn get(ctx: &Context, tenant_id: Uuid, run_id: Uuid) -> Result<RunView> {
    let run = runs::run(&ctx.pool, tenant_id, run_id)
        .await?
        .ok_or_else(|| LetheError::NotFound(format!("reconcile run {run_id}")))?;
    view(ctx, run).await
}

async fn view(ctx: &Context, run: RunRow) -> Result<RunView> {
    let collections = runs::collections(&ctx.pool, run.job_id).await?;
    Ok(RunView { run, collections })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_hashes_are_keyed_per_tenant_and_collection() {
        let (c, d, p) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let h = point_hash(b"tenant-a", c, p);
        assert_eq!(h.len(), POINT_HASH_LEN);
        assert_eq!(h, PointHasher::new(b"tenant-a").hash(c, p));
        assert_ne!(h, point_hash(b"tenant-b", c, p), "keyed by the tenant");
        assert_ne!(h, point_hash(b"tenant-a", d, p), "a point of another collection");
        assert_ne!(h[..], crate::context::keyed_hash(b"tenant-a", &p.to_string())[..POINT_HASH_LEN], "apart from subject hashes");
    }

    #[test]
    fn point_hashes_keep_their_definition() {
        // Ledgers already written and exported name points this way.
        let (c, p) = (Uuid::new_v4(), Uuid::new_v4());
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"tenant-a").unwrap();
        mac.update(format!("lethe-point/1\n{c}\n{p}").as_bytes());
        assert_eq!(point_hash(b"tenant-a", c, p), mac.finalize().into_bytes()[..POINT_HASH_LEN].to_vec());
    }
}
