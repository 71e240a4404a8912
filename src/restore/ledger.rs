//! The erasure ledger's export and import: for the case where Lethe's own
//! database is restored from a backup older than some erasures (its
//! tombstones then no longer know them).
//!
//! Format (JSON lines, `lethe-erasure-ledger/1`): a `header` line (tenant,
//! time, the id of the signing key, and `key_check`, a keyed hash of a
//! constant that tells whether two ledgers were made under the same tenant
//! HMAC key without showing it), one `subject` line per tombstone (its keyed
//! hash, match keys and identifier hashes), `points` lines (keyed hashes of
//! erased points, grouped by collection, subject, job and cause), and an
//! `end` line with the SHA-256 of every byte before it and an Ed25519
//! signature, by the service's signing key, over the format, the tenant, that
//! digest and the counts. Nothing in it is plaintext of a person.
//!
//! An import checks everything before it writes anything: the digest and
//! the signature (a changed, added or removed byte fails: INVALID_ARGUMENT),
//! a key this service signs with or signed with before (else
//! FAILED_PRECONDITION `ledger_signed_by_another_key`), the tenant
//! (`ledger_of_another_tenant`) and its HMAC key
//! (`ledger_of_another_tenant_key`: the hashes would match nobody). It is
//! idempotent: what the database already knows is left as it is, and an
//! import that changes nothing appends no log entry.

use base64::Engine;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::POINT_HASH_LEN;
use crate::audit::Signer;
use crate::context::{Context, keyed_hash, subject_lock_key};
use crate::error::{LetheError, Result};
use crate::store::ledger::{self, ErasedPoint, Imported, Tombstone};
use crate::store::{StoreError, jobs};

pub const FORMAT: &str = "lethe-erasure-ledger/1";
/// Bytes per chunk of an export stream.
const CHUNK: usize = 256 * 1024;
/// Point hashes per `points` line.
const POINTS_PER_LINE: usize = 1000;
/// Tombstones and points per import transaction (each re-erased subject
/// holds an advisory lock until its transaction ends).
const IMPORT_BATCH: usize = 500;
const CAUSES: [&str; 5] = ["erasure", "residual", "follow_up", "reconcile", "import"];

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Line {
    Header { format: String, tenant_id: Uuid, exported_at: DateTime<Utc>, key_check: String, signing_key_id: String },
    Subject {
        subject_hash: String,
        erased_at: Option<DateTime<Utc>>,
        job_id: Option<Uuid>,
        keys: Vec<String>,
        /// (kind, keyed hash of the normalised value).
        identifiers: Vec<(String, String)>,
    },
    Points { collection_id: Uuid, subject_hash: String, job_id: Option<Uuid>, cause: String, points: Vec<String> },
    End { subjects: u64, points: u64, sha256: String, key_id: String, signature: String },
}

/// Tells ledgers made under the tenant's HMAC key from others: a keyed
/// hash of a constant (it shows nothing of the key or of anyone).
pub fn key_check(tenant_secret: &[u8]) -> String {
    hex::encode(&keyed_hash(tenant_secret, "lethe-erasure-ledger/key-check")[..16])
}

/// What the end line's signature covers.
fn statement(tenant_id: Uuid, sha256: &str, subjects: u64, points: u64) -> String {
    format!("{FORMAT}\n{tenant_id}\n{sha256}\n{subjects}\n{points}")
}

/// Writes lines into chunks for `out`, hashing every byte.
struct Writer {
    out: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    digest: Sha256,
}

impl Writer {
    /// False when the receiver went away.
    async fn line(&mut self, line: &Line) -> Result<bool> {
        let mut bytes = serde_json::to_vec(line).map_err(|e| LetheError::Unexpected(e.into()))?;
        bytes.push(b'\n');
        self.digest.update(&bytes);
        self.buf.extend_from_slice(&bytes);
        if self.buf.len() < CHUNK {
            return Ok(true);
        }
        Ok(self.out.send(std::mem::take(&mut self.buf)).await.is_ok())
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
    let _ = w.out.send(std::mem::take(&mut w.buf)).await;
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

/// A verified ledger, ready to apply.
#[derive(Debug)]
pub struct Verified {
    pub tenant_id: Uuid,
    pub exported_at: DateTime<Utc>,
    pub signing_key_id: String,
    pub sha256: String,
    pub tombstones: Vec<Tombstone>,
    pub points: Vec<ErasedPoint>,
}

fn invalid(message: impl Into<String>) -> LetheError {
    LetheError::invalid("ledger", message)
}

/// Checks a ledger for `tenant_id` (see the module docs) and parses it.
///
/// # Errors
/// `InvalidArgument` (`ledger`) for anything that is not an intact ledger;
/// `FailedPrecondition` for one of another service key, tenant or tenant key.
pub fn verify(bytes: &[u8], signer: &Signer, tenant_id: Uuid, own_key_check: &str) -> Result<Verified> {
    let text = std::str::from_utf8(bytes).map_err(|_| invalid("is not an erasure ledger (not UTF-8 text)"))?;
    let trimmed = text.strip_suffix('\n').unwrap_or(text);
    let (body, last) = match trimmed.rfind('\n') {
        Some(i) => (&text[..=i], &trimmed[i + 1..]),
        None => return Err(invalid("is not an erasure ledger (`lethe ledger export` writes one)")),
    };
    let header = body.lines().next().unwrap_or_default();
    let Ok(Line::Header { format, tenant_id: owner, exported_at, key_check, signing_key_id }) = serde_json::from_str(header) else {
        return Err(invalid("is not an erasure ledger: its first line is not a ledger header"));
    };
    if format != FORMAT {
        return Err(invalid(format!("has the format `{}`; this service reads `{FORMAT}`", clip(&format))));
    }
    let Ok(Line::End { subjects, points, sha256, key_id, signature }) = serde_json::from_str(last) else {
        return Err(invalid("is incomplete: its signed end line is missing (truncated?)"));
    };
    if hex::encode(Sha256::digest(body.as_bytes())) != sha256 {
        return Err(invalid("was altered: its content does not match its signed digest"));
    }
    if !signer.knows(&key_id) {
        return Err(LetheError::precondition(
            "ledger_signed_by_another_key",
            format!("the ledger is signed by key {}, which is not this service's signing key (current or retired)", clip(&key_id)),
        ));
    }
    let sig = base64::engine::general_purpose::STANDARD.decode(signature.as_bytes()).unwrap_or_default();
    if key_id != signing_key_id || !signer.verify(&key_id, &statement(owner, &sha256, subjects, points), &sig) {
        return Err(invalid("was altered: its signature does not verify"));
    }
    if owner != tenant_id {
        return Err(LetheError::precondition(
            "ledger_of_another_tenant",
            format!("the ledger is tenant {owner}'s, the key is tenant {tenant_id}'s: import it with that tenant's secret key"),
        ));
    }
    if key_check != own_key_check {
        return Err(LetheError::precondition(
            "ledger_of_another_tenant_key",
            "the ledger was made under another HMAC key of this tenant (another master key file?): its hashes would match \
             nobody; start the service with the master keys of the database the ledger came from",
        ));
    }
    let (tombstones, erased) = parse_body(body, subjects, points)?;
    Ok(Verified { tenant_id, exported_at, signing_key_id, sha256, tombstones, points: erased })
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

fn hash(s: &str, len: usize, what: &str) -> Result<Vec<u8>> {
    hex::decode(s).ok().filter(|b| b.len() == len).ok_or_else(|| invalid(format!("holds a malformed {what}")))
}

/// The subject and points lines (signed: malformed ones are a bug of the
/// exporter, still refused before anything is written).
fn parse_body(body: &str, subjects: u64, points: u64) -> Result<(Vec<Tombstone>, Vec<ErasedPoint>)> {
    let (mut tombstones, mut erased) = (Vec::new(), Vec::new());
    for line in body.lines().skip(1) {
        match serde_json::from_str(line).map_err(|_| invalid("holds a line that is not a ledger line"))? {
            Line::Subject { subject_hash, erased_at, job_id, keys, identifiers } => {
                let kinds_ok = identifiers.iter().all(|(k, _)| !k.is_empty() && k.len() <= 32 && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
                if !kinds_ok {
                    return Err(invalid("holds a malformed identifier kind"));
                }
                tombstones.push(Tombstone {
                    subject_hash: hash(&subject_hash, 32, "subject hash")?,
                    erased_at,
                    job_id,
                    keys: keys.iter().map(|k| hash(k, 32, "key hash")).collect::<Result<_>>()?,
                    identifier_hashes: identifiers.iter().map(|(_, h)| hash(h, 32, "identifier hash")).collect::<Result<_>>()?,
                    identifier_kinds: identifiers.into_iter().map(|(k, _)| k).collect(),
                });
            }
            Line::Points { collection_id, subject_hash, job_id, cause, points } => {
                if !CAUSES.contains(&cause.as_str()) {
                    return Err(invalid("holds a malformed cause"));
                }
                let subject_hash = hash(&subject_hash, 32, "subject hash")?;
                for p in points {
                    let point_hash = hash(&p, POINT_HASH_LEN, "point hash")?;
                    erased.push(ErasedPoint { collection_id, point_hash, subject_hash: subject_hash.clone(), job_id, cause: cause.clone() });
                }
            }
            Line::Header { .. } | Line::End { .. } => return Err(invalid("holds a header or end line in its body")),
        }
    }
    if tombstones.len() as u64 != subjects || erased.len() as u64 != points {
        return Err(invalid("does not hold the number of subjects and points its end line signs"));
    }
    Ok((tombstones, erased))
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportOutcome {
    pub subjects: u64,
    /// Tombstones made for subjects the database did not know.
    pub tombstones_created: u64,
    /// Subjects a restore had brought back, tombstones again.
    pub subjects_re_erased: u64,
    pub subjects_known: u64,
    /// Subjects under legal hold now, left as they are (keyed hashes, hex).
    pub subjects_held: Vec<String>,
    pub points: u64,
    pub points_added: u64,
    /// The `ledger_import` log entry (None when nothing changed).
    pub log_seq: Option<i64>,
}

/// Verifies and applies a ledger for `tenant_id`: tombstones first, then
/// the points, in batches (an import cut off half-way is completed by
/// importing the same ledger again), then the log entry.
///
/// # Errors
/// See [`verify`]; database failures.
pub async fn import(ctx: &Context, tenant_id: Uuid, bytes: &[u8]) -> Result<ImportOutcome> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    let v = verify(bytes, &ctx.signer, tenant_id, &key_check(&secret))?;
    let mut out = ImportOutcome { subjects: v.tombstones.len() as u64, points: v.points.len() as u64, ..Default::default() };
    let mut re_erased = Vec::new();
    for batch in v.tombstones.chunks(IMPORT_BATCH) {
        let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
        for t in batch {
            match ledger::import_tombstone(&mut tx, tenant_id, t, subject_lock_key(&t.subject_hash)).await? {
                Imported::Created => out.tombstones_created += 1,
                Imported::ReErased => {
                    out.subjects_re_erased += 1;
                    re_erased.push(hex::encode(&t.subject_hash));
                }
                Imported::Known => out.subjects_known += 1,
                Imported::Held => out.subjects_held.push(hex::encode(&t.subject_hash)),
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
    }
    for batch in v.points.chunks(IMPORT_BATCH * 10) {
        out.points_added += ledger::record_points(&ctx.pool, tenant_id, batch).await?;
    }
    if out.tombstones_created + out.subjects_re_erased + out.points_added > 0 {
        out.log_seq = Some(log_import(ctx, &v, &out, &re_erased).await?);
    }
    tracing::info!(%tenant_id, created = out.tombstones_created, re_erased = out.subjects_re_erased, points_added = out.points_added, "ledger imported");
    Ok(out)
}

/// The `ledger_import` log entry.
#[derive(Serialize)]
struct ImportBody<'a> {
    kind: &'static str,
    tenant_id: String,
    exported_at: String,
    signing_key_id: &'a str,
    ledger_sha256: &'a str,
    #[serde(flatten)]
    outcome: &'a ImportOutcome,
    /// Keyed hashes of the subjects made tombstones again.
    re_erased: &'a [String],
    next: &'static str,
    logged_at: String,
}

async fn log_import(ctx: &Context, v: &Verified, out: &ImportOutcome, re_erased: &[String]) -> Result<i64> {
    let body = ImportBody {
        kind: "ledger_import",
        tenant_id: v.tenant_id.to_string(),
        exported_at: v.exported_at.to_rfc3339(),
        signing_key_id: &v.signing_key_id,
        ledger_sha256: &v.sha256,
        outcome: out,
        re_erased,
        next: "Reconcile deletes the points and forgets the lineage of these subjects that the restore brought back",
        logged_at: Utc::now().to_rfc3339(),
    };
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    jobs::require_durable_commit(&mut tx).await?;
    let (entry, _) = crate::audit::append(&mut tx, &ctx.signer, v.tenant_id, "ledger_import", None, None, &body).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(entry.seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(dir: &std::path::Path, name: &str) -> Signer {
        Signer::load(&dir.join(name), true, &[]).expect("signing key")
    }

    /// A ledger as `export` writes it, from lines.
    fn ledger(signer: &Signer, tenant: Uuid, key: &str, lines: &[Line]) -> Vec<u8> {
        let header = Line::Header {
            format: FORMAT.into(),
            tenant_id: tenant,
            exported_at: Utc::now(),
            key_check: key.into(),
            signing_key_id: signer.key_id(),
        };
        let mut body = Vec::new();
        for l in std::iter::once(&header).chain(lines) {
            body.extend(serde_json::to_vec(l).expect("json"));
            body.push(b'\n');
        }
        let subjects = lines.iter().filter(|l| matches!(l, Line::Subject { .. })).count() as u64;
        let points: u64 = lines.iter().map(|l| if let Line::Points { points, .. } = l { points.len() as u64 } else { 0 }).sum();
        let sha256 = hex::encode(Sha256::digest(&body));
        let signature = base64::engine::general_purpose::STANDARD.encode(signer.sign(&statement(tenant, &sha256, subjects, points)));
        let end = Line::End { subjects, points, sha256, key_id: signer.key_id(), signature };
        body.extend(serde_json::to_vec(&end).expect("json"));
        body.push(b'\n');
        body
    }

    fn lines() -> Vec<Line> {
        vec![
            Line::Subject { subject_hash: "ab".repeat(32), erased_at: None, job_id: None, keys: vec!["cd".repeat(32)], identifiers: vec![("email".into(), "ef".repeat(32))] },
            Line::Points { collection_id: Uuid::nil(), subject_hash: "ab".repeat(32), job_id: None, cause: "erasure".into(), points: vec!["01".repeat(16), "02".repeat(16)] },
        ]
    }

    fn reason(e: &LetheError) -> String {
        match e {
            LetheError::FailedPrecondition { reason, .. } => (*reason).to_owned(),
            LetheError::InvalidArgument(i) => format!("invalid:{}", i.field),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn an_intact_ledger_verifies_and_parses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = signer(dir.path(), "k.pem");
        let tenant = Uuid::new_v4();
        let v = verify(&ledger(&s, tenant, "kc", &lines()), &s, tenant, "kc").expect("verifies");
        assert_eq!((v.tombstones.len(), v.points.len()), (1, 2));
        assert_eq!(v.tombstones[0].identifier_kinds, vec!["email".to_owned()]);
        assert_eq!(v.points[1].point_hash, vec![2u8; 16]);
    }

    #[test]
    fn every_kind_of_tampering_is_refused_with_its_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = signer(dir.path(), "k.pem");
        let tenant = Uuid::new_v4();
        let good = ledger(&s, tenant, "kc", &lines());
        let text = String::from_utf8(good.clone()).expect("utf8");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (text.replacen("0101", "0303", 1).into_bytes(), "invalid:ledger"),
            (text.lines().filter(|l| !l.contains("\"points\"")).map(|l| format!("{l}\n")).collect::<String>().into_bytes(), "invalid:ledger"),
            (good[..good.len() - 20].to_vec(), "invalid:ledger"),
            (b"not a ledger".to_vec(), "invalid:ledger"),
            (vec![0xff, 0xfe, b'\n', b'x'], "invalid:ledger"),
        ];
        for (bytes, want) in cases {
            let err = verify(&bytes, &s, tenant, "kc").expect_err("refused");
            assert_eq!(reason(&err), want, "{err}");
        }
        let other = signer(dir.path(), "other.pem");
        let foreign = ledger(&other, tenant, "kc", &lines());
        assert_eq!(reason(&verify(&foreign, &s, tenant, "kc").expect_err("another key")), "ledger_signed_by_another_key");
        assert_eq!(reason(&verify(&good, &s, Uuid::new_v4(), "kc").expect_err("another tenant")), "ledger_of_another_tenant");
        assert_eq!(reason(&verify(&good, &s, tenant, "other").expect_err("another key")), "ledger_of_another_tenant_key");
    }

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
