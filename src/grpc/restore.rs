//! The restore guard on the wire: Reconcile and the ledger's export and
//! import (conversions and the streams' plumbing; the work is `restore`).

use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use uuid::Uuid;

use super::convert::{job_status, timestamp};
use super::pb;
use crate::context::Context;
use crate::domain::{Backend, InvalidInput, optional_text};
use crate::error::{LetheError, Result};
use crate::restore::{self, RunView};

/// `Reconcile.requested_by`.
pub const MAX_REQUESTED_BY: usize = 256;

/// The validated `requested_by` of a Reconcile request.
///
/// # Errors
/// `InvalidInput` naming `requested_by`.
pub fn requested_by(r: &pb::ReconcileRequest) -> Result<String, InvalidInput> {
    Ok(optional_text("requested_by", &r.requested_by, MAX_REQUESTED_BY)?.trim().to_owned())
}

fn u(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub fn run(v: &RunView, already_running: bool) -> pb::ReconcileRun {
    let collections: Vec<pb::ReconcileCollection> = v
        .collections
        .iter()
        .map(|c| pb::ReconcileCollection {
            collection: c.collection_name.clone(),
            backend: c.backend.parse::<Backend>().map_or(pb::Backend::Unspecified, |b| match b {
                Backend::Pgvector => pb::Backend::Pgvector,
                Backend::Qdrant => pb::Backend::Qdrant,
            }) as i32,
            scanned: u(c.scanned),
            found_by_tag: u(c.by_tag),
            found_by_lineage: u(c.by_lineage),
            found_by_ledger: u(c.by_ledger),
            before: u(c.before),
            deleted: if c.log_seq.is_some() { u(c.before - c.after.unwrap_or(0)) } else { 0 },
            after: u(c.after.unwrap_or(0)),
            lineage_forgotten: u(c.lineage_forgotten),
            withheld: u(c.withheld),
            log_seq: u(c.log_seq.unwrap_or(0)),
            done: c.log_seq.is_some(),
        })
        .collect();
    let r = &v.run;
    pb::ReconcileRun {
        run_id: r.job_id.to_string(),
        status: job_status(&r.status) as i32,
        trigger: r.trigger.clone(),
        requested_by: r.requested_by.clone(),
        came_back: collections.iter().map(|c| c.deleted).sum(),
        lineage_forgotten: collections.iter().map(|c| c.lineage_forgotten).sum(),
        collections,
        held_subject_hashes: r.held_subjects.iter().map(hex::encode).collect(),
        subjects_scrubbed: u32::try_from(r.subjects_scrubbed).unwrap_or(0),
        error: r.error.clone().unwrap_or_default(),
        attempts: u32::try_from(r.attempts).unwrap_or(0),
        received_at: Some(timestamp(r.received_at)),
        started_at: r.started_at.map(timestamp),
        completed_at: r.completed_at.map(timestamp),
        already_running,
    }
}

pub fn import_response(o: &restore::ledger::ImportOutcome) -> pb::ImportLedgerResponse {
    pb::ImportLedgerResponse {
        subjects: o.subjects,
        tombstones_created: o.tombstones_created,
        subjects_re_erased: o.subjects_re_erased,
        subjects_known: o.subjects_known,
        held_subject_hashes: o.subjects_held.clone(),
        points: o.points,
        points_added: o.points_added,
        log_seq: o.log_seq.map_or(0, u),
    }
}

/// The export as a stream of chunks, fed by a spawned task; an error ends
/// it with the error's status (and without the signed end line).
pub fn export_stream(ctx: Context, tenant_id: Uuid) -> mpsc::Receiver<Result<pb::LedgerChunk, Status>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let stall = restore::ledger::STALL;
        let (bytes_tx, mut bytes_rx) = mpsc::channel::<Vec<u8>>(4);
        let forward = {
            let tx = tx.clone();
            async move {
                while let Some(data) = bytes_rx.recv().await {
                    // A reader that takes nothing for `stall` is left: the
                    // export then fails its own next send.
                    if !matches!(tokio::time::timeout(stall, tx.send(Ok(pb::LedgerChunk { data }))).await, Ok(Ok(()))) {
                        return;
                    }
                }
            }
        };
        let closed = tx.clone();
        let export = async move {
            // The turn is the export's, which holds a connection of the pool
            // while it reads; released when the export ends, whatever the
            // forwarding of its last chunks does.
            let _turn = EXPORTS.acquire().await.map_err(|_| LetheError::Unavailable(anyhow::anyhow!("shutting down")))?;
            if closed.is_closed() {
                return Ok(restore::ledger::Exported::default());
            }
            restore::ledger::export(&ctx, tenant_id, bytes_tx).await
        };
        let (exported, ()) = tokio::join!(export, forward);
        match exported {
            Ok(n) => tracing::info!(%tenant_id, subjects = n.subjects, points = n.points, "ledger export ended"),
            Err(e) => {
                let _ = tokio::time::timeout(stall, tx.send(Err(Status::from(e)))).await;
            }
        }
    });
    rx
}

/// At most two ledger exports at a time per process: each reads the ledger
/// in one statement and holds a connection of the request pool until its
/// reader has taken the last chunk (or stopped reading for 30 s), so a key
/// that opened many and read none would otherwise hold the pool. The
/// others wait for a turn before they read anything.
static EXPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// One ledger import at a time per process: each holds up to
/// `max_ledger_bytes` (256 MiB) in memory, and a key could open many
/// streams at once. The others wait (their uploads held back by HTTP/2's
/// flow control) until it ends.
static IMPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The chunks of an ImportLedger request, at most `max` bytes in all, with
/// the process's import turn (kept until the import ends).
///
/// # Errors
/// `InvalidArgument` (`ledger`) beyond `max`; the stream's own errors.
pub async fn read_ledger(
    mut chunks: Streaming<pb::LedgerChunk>,
    max: usize,
) -> Result<(Vec<u8>, tokio::sync::SemaphorePermit<'static>), Status> {
    let turn = IMPORTS.acquire().await.map_err(|_| Status::unavailable("shutting down"))?;
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.message().await? {
        if bytes.len() + chunk.data.len() > max {
            let message = format!("must be at most {max} bytes (restore_guard.max_ledger_bytes)");
            return Err(Status::from(LetheError::invalid("ledger", message)));
        }
        bytes.extend_from_slice(&chunk.data);
    }
    Ok((bytes, turn))
}
