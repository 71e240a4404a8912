//! Reading a ledger: everything is checked before anything is written,
//! then tombstones and points are applied in batches (an import cut off
//! half-way is completed by importing the same ledger again).

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{CAUSES, FORMAT, Line, key_check, statement};
use crate::audit::Signer;
use crate::context::{Context, subject_lock_key};
use crate::error::{LetheError, Result};
use crate::restore::POINT_HASH_LEN;
use crate::store::ledger::{self, ErasedPoint, Imported, Tombstone};
use crate::store::{StoreError, jobs};

/// Tombstones and points per import transaction (each re-erased subject
/// holds an advisory lock until its transaction ends).
const IMPORT_BATCH: usize = 500;

/// Points of one group (collection, subject, erasure, cause) written by
/// one statement at most: a group is one row of the ledger, and a group
/// split over statements is rewritten whole by each of them.
const MAX_POINTS_PER_STATEMENT: usize = 1_000_000;

/// The points in batches of about `soft` (a ledger lists a group's points
/// together): a batch ends at a group's end once it holds `soft`, and
/// within a group only at `hard`, so that a large group is not rewritten
/// once per few thousand of its points.
fn point_batches(points: &[ErasedPoint], soft: usize, hard: usize) -> Vec<&[ErasedPoint]> {
    let same_group = |a: &ErasedPoint, b: &ErasedPoint| {
        (a.collection_id, &a.subject_hash, a.job_id, &a.cause) == (b.collection_id, &b.subject_hash, b.job_id, &b.cause)
    };
    let mut batches = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        let len = i - start;
        let group_ends = i == points.len() || !same_group(&points[i - 1], &points[i]);
        if (len >= soft && group_ends) || len >= hard || i == points.len() {
            batches.push(&points[start..i]);
            start = i;
        }
    }
    batches
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

/// What an import of a ledger did, over all its attempts (one cut off
/// half-way is completed by importing the same ledger again).
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
    // What earlier attempts at this ledger did before they were cut off
    // counts in its entry: each batch adds its work to the import's sums.
    let progress = ledger::open_import(&ctx.pool, tenant_id, &v.sha256).await?;
    for batch in v.tombstones.chunks(IMPORT_BATCH) {
        let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
        // The batch's subject locks are taken in ascending key order, the
        // order writes and a batch's freeze take theirs: in the ledger's order
        // (by hash), an import holding one subject's lock could wait for a
        // write that waits for it (PostgreSQL would abort one of them).
        let mut order: Vec<(i64, usize)> = batch.iter().enumerate().map(|(i, t)| (subject_lock_key(&t.subject_hash), i)).collect();
        order.sort_unstable();
        let mut imported = vec![Imported::Known; batch.len()];
        for (key, i) in order {
            imported[i] = ledger::import_tombstone(&mut tx, tenant_id, &batch[i], key).await?;
        }
        // Subjects a restore brought back are keyed under the current rules
        // while their identifiers are in clear (the ledger's keys are those of
        // the rules of its erasure), as an erasure's forget stage does.
        let again: Vec<Uuid> =
            imported.iter().filter_map(|i| if let Imported::ReErased(id) = i { Some(*id) } else { None }).collect();
        if !again.is_empty() {
            crate::ingest::rekey_before_tombstone(ctx, &mut tx, &again).await?;
            ledger::clear_identifier_values(&mut *tx, &again).await?;
        }
        // What it did, in the ledger's order.
        let (mut created, mut re_erased) = (0, Vec::new());
        for (t, imported) in batch.iter().zip(imported) {
            match imported {
                Imported::Created => created += 1,
                Imported::ReErased(_) => re_erased.push(hex::encode(&t.subject_hash)),
                Imported::Known => out.subjects_known += 1,
                Imported::Held => out.subjects_held.push(hex::encode(&t.subject_hash)),
            }
        }
        if !ledger::add_import_progress(&mut *tx, progress.import_id, (created, re_erased.len() as i64, 0), &re_erased).await? {
            return Err(logged_meanwhile());
        }
        tx.commit().await.map_err(StoreError::from)?;
    }
    for batch in point_batches(&v.points, IMPORT_BATCH * 10, MAX_POINTS_PER_STATEMENT) {
        let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
        let added = ledger::record_points(&mut *tx, tenant_id, batch).await?;
        if !ledger::add_import_progress(&mut *tx, progress.import_id, (0, 0, i64::try_from(added).unwrap_or(i64::MAX)), &[]).await? {
            return Err(logged_meanwhile());
        }
        tx.commit().await.map_err(StoreError::from)?;
    }
    // Documents named after the people it erased again had aliases before
    // the restore: aliases again (also when a retry finds nothing left to import).
    crate::ingest::unname_sources_naming_the_erased(ctx, tenant_id).await?;
    crate::ingest::unname_listed_sources(ctx, tenant_id).await?;
    let logged = log_import(ctx, &v, progress.import_id, &mut out).await?;
    out.log_seq = logged;
    tracing::info!(%tenant_id, created = out.tombstones_created, re_erased = out.subjects_re_erased, points_added = out.points_added, "ledger imported");
    Ok(out)
}

/// Another attempt at the same ledger logged the import while this one ran:
/// this one's batch is rolled back (its work would be in no entry).
fn logged_meanwhile() -> LetheError {
    LetheError::precondition(
        "ledger_import_concurrent",
        "another import of this ledger finished while this one ran: import it again to apply and log the rest",
    )
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

/// Appends the import's entry from its sums over every attempt (none when
/// nothing changed) and closes it, in one transaction; `out` gets the sums.
async fn log_import(ctx: &Context, v: &Verified, import_id: Uuid, out: &mut ImportOutcome) -> Result<Option<i64>> {
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    jobs::require_durable_commit(&mut tx).await?;
    // Another attempt at the same ledger logged it meanwhile: nothing more.
    let Some(sums) = ledger::lock_import(&mut tx, import_id).await? else { return Ok(None) };
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    out.tombstones_created = count(sums.tombstones_created);
    out.subjects_re_erased = count(sums.subjects_re_erased);
    out.points_added = count(sums.points_added);
    // Of the import as a whole: a subject an earlier attempt made a tombstone
    // is not "known" to it.
    out.subjects_known = out.subjects.saturating_sub(out.tombstones_created + out.subjects_re_erased + out.subjects_held.len() as u64);
    if out.tombstones_created + out.subjects_re_erased + out.points_added == 0 {
        ledger::close_import(&mut *tx, import_id, 0).await?;
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(None);
    }
    let body = ImportBody {
        kind: "ledger_import",
        tenant_id: v.tenant_id.to_string(),
        exported_at: v.exported_at.to_rfc3339(),
        signing_key_id: &v.signing_key_id,
        ledger_sha256: &v.sha256,
        outcome: out,
        re_erased: &sums.re_erased,
        next: "Reconcile deletes the points and forgets the lineage of these subjects that the restore brought back",
        logged_at: Utc::now().to_rfc3339(),
    };
    let (entry, _) = crate::audit::append(&mut tx, &ctx.signer, v.tenant_id, "ledger_import", None, None, &body).await?;
    ledger::close_import(&mut *tx, import_id, entry.seq).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Some(entry.seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_written_in_batches_that_end_where_a_group_ends() {
        let p = |c: u128, n: u8| ErasedPoint {
            collection_id: Uuid::from_u128(c),
            point_hash: vec![n; 16],
            subject_hash: vec![1; 32],
            job_id: None,
            cause: "erasure".into(),
        };
        // Groups of 3, 1, 4 and 2 points.
        let points: Vec<ErasedPoint> = [(1, 3), (2, 1), (3, 4), (4, 2)]
            .iter()
            .flat_map(|&(c, n)| (0..n).map(move |i| p(c, i)))
            .collect();
        let sizes = |soft, hard| point_batches(&points, soft, hard).iter().map(|b| b.len()).collect::<Vec<_>>();
        assert_eq!(sizes(2, 100), [3, 5, 2], "a batch of at least 2 ends with its group");
        assert_eq!(sizes(4, 100), [4, 4, 2]);
        assert_eq!(sizes(2, 3), [3, 3, 2, 2], "a batch is cut at the hard limit, inside a group if it must");
        assert_eq!(sizes(100, 100), [10]);
        assert!(point_batches(&[], 2, 3).is_empty());
    }

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
}
