//! Writing a ledger: the tenant's tombstones and erased points as signed
//! JSON lines, streamed in chunks.

use base64::Engine;
use chrono::Utc;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{FORMAT, Line, POINTS_PER_LINE, key_check, statement};
use crate::context::Context;
use crate::error::{LetheError, Result};
use crate::store::ledger::{self, ErasedPoint, Tombstone};

/// Bytes per chunk of an export stream.
const CHUNK: usize = 256 * 1024;

/// Writes lines into chunks for `out`, hashing every byte.
struct Writer {
    out: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    digest: Sha256,
}

/// How long an export waits for its reader to take the next chunk: the
/// export reads the ledger in one statement, on a connection of the pool,
/// which a client that stops reading must not keep.
pub const STALL: std::time::Duration = std::time::Duration::from_secs(30);

impl Writer {
    /// False when the receiver went away.
    ///
    /// # Errors
    /// `DeadlineExceeded` when the reader took no chunk for [`STALL`]: the
    /// export ends with that status, without its signed end line.
    async fn line(&mut self, line: &Line) -> Result<bool> {
        let mut bytes = serde_json::to_vec(line).map_err(|e| LetheError::Unexpected(e.into()))?;
        bytes.push(b'\n');
        self.digest.update(&bytes);
        self.buf.extend_from_slice(&bytes);
        if self.buf.len() < CHUNK {
            return Ok(true);
        }
        self.flush().await
    }

    async fn flush(&mut self) -> Result<bool> {
        match tokio::time::timeout(STALL, self.out.send(std::mem::take(&mut self.buf))).await {
            Ok(sent) => Ok(sent.is_ok()),
            Err(_) => {
                tracing::warn!(stalled_secs = STALL.as_secs(), "ledger export abandoned: its reader stopped reading");
                Err(LetheError::DeadlineExceeded {
                    message: format!("the reader took no part of the ledger for {} s: export abandoned", STALL.as_secs()),
                })
            }
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exported {
    pub subjects: u64,
    pub points: u64,
}

/// Streams the tenant's ledger into `out` in chunks (see the module docs).
///
/// # Errors
/// Database and key failures (the stream then ends without its signed end
/// line: an import refuses it).
pub async fn export(ctx: &Context, tenant_id: Uuid, out: mpsc::Sender<Vec<u8>>) -> Result<Exported> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    let mut w = Writer { out, buf: Vec::with_capacity(CHUNK + 4096), digest: Sha256::new() };
    let header = Line::Header {
        format: FORMAT.into(),
        tenant_id,
        exported_at: Utc::now(),
        key_check: key_check(&secret),
        signing_key_id: ctx.signer.key_id(),
    };
    let mut n = Exported::default();
    if !w.line(&header).await? {
        return Ok(n);
    }
    let mut tombstones = ledger::tombstones(&ctx.pool, tenant_id);
    while let Some(t) = tombstones.next().await {
        n.subjects += 1;
        if !w.line(&subject_line(t?)).await? {
            return Ok(n);
        }
    }
    drop(tombstones);
    let mut points = ledger::points(&ctx.pool, tenant_id);
    let mut group: Option<Line> = None;
    while let Some(p) = points.next().await {
        let p = p?;
        n.points += 1;
        if let Some(full) = add_point(&mut group, p)
            && !w.line(&full).await?
        {
            return Ok(n);
        }
    }
    if let Some(last) = group
        && !w.line(&last).await?
    {
        return Ok(n);
    }
    let sha256 = hex::encode(std::mem::take(&mut w.digest).finalize());
    let signature = base64::engine::general_purpose::STANDARD.encode(ctx.signer.sign(&statement(tenant_id, &sha256, n.subjects, n.points)));
    let end = Line::End { subjects: n.subjects, points: n.points, sha256, key_id: ctx.signer.key_id(), signature };
    let mut bytes = serde_json::to_vec(&end).map_err(|e| LetheError::Unexpected(e.into()))?;
    bytes.push(b'\n');
    w.buf.extend_from_slice(&bytes);
    w.flush().await?;
    Ok(n)
}

fn subject_line(t: Tombstone) -> Line {
    Line::Subject {
        subject_hash: hex::encode(&t.subject_hash),
        erased_at: t.erased_at,
        job_id: t.job_id,
        keys: t.keys.iter().map(hex::encode).collect(),
        identifiers: t.identifier_kinds.into_iter().zip(t.identifier_hashes.iter().map(hex::encode)).collect(),
    }
}

/// Adds a point to the current group; returns the previous group when the
/// point starts a new one (or the group is full).
fn add_point(group: &mut Option<Line>, p: ErasedPoint) -> Option<Line> {
    let subject = hex::encode(&p.subject_hash);
    if let Some(Line::Points { collection_id, subject_hash, job_id, cause, points }) = group
        && *collection_id == p.collection_id
        && *subject_hash == subject
        && *job_id == p.job_id
        && *cause == p.cause
        && points.len() < POINTS_PER_LINE
    {
        points.push(hex::encode(&p.point_hash));
        return None;
    }
    let next = Line::Points {
        collection_id: p.collection_id,
        subject_hash: subject,
        job_id: p.job_id,
        cause: p.cause,
        points: vec![hex::encode(&p.point_hash)],
    };
    group.replace(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_grouped_by_collection_subject_job_and_cause() {
        let p = |c: u128, s: u8, h: u8| ErasedPoint {
            collection_id: Uuid::from_u128(c),
            point_hash: vec![h; 16],
            subject_hash: vec![s; 32],
            job_id: None,
            cause: "erasure".into(),
        };
        let mut group = None;
        let mut lines = Vec::new();
        for point in [p(1, 1, 1), p(1, 1, 2), p(1, 2, 3), p(2, 2, 4)] {
            lines.extend(add_point(&mut group, point));
        }
        lines.extend(group);
        let sizes: Vec<usize> = lines.iter().map(|l| if let Line::Points { points, .. } = l { points.len() } else { 0 }).collect();
        assert_eq!(sizes, vec![2, 1, 1]);
    }
}
