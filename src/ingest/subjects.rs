//! Subjects as the write path and `Erase` store them: identifiers, their
//! match keys (see `identity`), suppressed aliases, legal holds.

use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::SubjectInput;
use crate::context::{Context, keyed_hash};
use crate::domain::{ExternalId, Identifier, SubjectState};
use crate::error::{LetheError, Result};
use crate::identity;
use crate::store::{StoreError, lineage};

/// The keyed hash of an identifier as earlier versions stored it (the
/// `subject_identifiers` row's key).
///
/// # Errors
/// Database failures.
pub async fn identifier_hash(ctx: &Context, tenant_id: Uuid, identifier: &Identifier) -> Result<Vec<u8>> {
    ctx.keyed_hash(tenant_id, &identity::legacy_key(identifier)).await
}

/// The keyed hashes of every match key of the identifiers.
///
/// # Errors
/// Database failures.
pub async fn key_hashes(ctx: &Context, tenant_id: Uuid, identifiers: &[Identifier]) -> Result<Vec<Vec<u8>>> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    let mut keys: Vec<Vec<u8>> =
        identifiers.iter().flat_map(identity::match_keys).map(|k| keyed_hash(&secret, &k)).collect();
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// Adds to subjects about to become tombstones the match keys of their
/// identifiers as the rules read them now, while the values are still in
/// clear: a subject registered under older rules (before phones were keyed
/// by subscriber number, names without diacritics, …) is suppressed by
/// every form the current rules know. In the forget stage's transaction,
/// before `tombstone_subjects` clears the values.
///
/// Other subjects of the tenant that share one of those keys that names one
/// person for certain ([`identity::is_strong_key`]: the same person under
/// another id, `xavier-work` with xavier's address; not a namesake) and
/// are not under legal hold become suppressed: their caller id and the
/// values of their identifiers that share such a key are cleared (their
/// keyed hashes stay, and keep suppressing writes tagged with them, as
/// they did). Their chunks are theirs and stay. Returns how many such
/// subjects changed.
///
/// # Errors
/// Database and key failures.
pub async fn rekey_before_tombstone(ctx: &Context, tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, subject_ids: &[Uuid]) -> Result<usize> {
    let rows = lineage::identifier_values_many(&mut **tx, subject_ids).await?;
    let mut by_subject: std::collections::BTreeMap<(Uuid, Uuid), Vec<Identifier>> = std::collections::BTreeMap::new();
    for (subject_id, tenant_id, kind, value) in rows {
        // A kind this version does not know is left as stored.
        let Ok(kind) = kind.parse() else { continue };
        by_subject.entry((tenant_id, subject_id)).or_default().push(Identifier { kind, value });
    }
    let mut keys = Vec::new();
    let mut strong: std::collections::BTreeMap<Uuid, std::collections::HashSet<Vec<u8>>> = std::collections::BTreeMap::new();
    for ((tenant_id, subject_id), identifiers) in by_subject {
        keys.extend(key_hashes(ctx, tenant_id, &identifiers).await?.into_iter().map(|k| (tenant_id, subject_id, k)));
        strong.entry(tenant_id).or_default().extend(strong_key_hashes(ctx, tenant_id, &identifiers).await?);
    }
    // One statement for the batch's subjects (most keys are there already).
    lineage::add_keys_many(&mut **tx, &keys).await?;
    let spellings = suppress_other_spellings(ctx, tx, subject_ids).await?;
    Ok(unname_twins(ctx, tx, subject_ids, strong).await? + spellings)
}

/// The other spellings of the erased subjects' caller ids, as a tag is read
/// ([`identity::id_readings`]: `ｐｓ１` in NFKC is `ps1`, `ps%2D1` is
/// `ps-1`), become suppressed subjects: a later write tagged `ps1` is
/// suppressed once `ｐｓ１` is erased, as one tagged `ｐｓ１` is once `ps1`
/// is (a tag is looked up by its readings too). An existing subject under
/// such a spelling is suppressed as a twin is (its caller id cleared; its
/// chunks are its own and stay). Returns how many existing subjects changed.
async fn suppress_other_spellings(ctx: &Context, tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, subject_ids: &[Uuid]) -> Result<usize> {
    let mut by_tenant: std::collections::BTreeMap<Uuid, Vec<Vec<u8>>> = std::collections::BTreeMap::new();
    for (tenant_id, _, id) in crate::store::subjects::external_ids_many(&mut **tx, subject_ids).await? {
        let readings = identity::id_readings(&id);
        if readings.is_empty() {
            continue;
        }
        let secret = ctx.tenant_secret(tenant_id).await?;
        by_tenant.entry(tenant_id).or_default().extend(readings.iter().map(|r| keyed_hash(&secret, r)));
    }
    let mut changed = 0;
    for (tenant_id, hashes) in by_tenant {
        changed += crate::store::subjects::suppress_hashes(&mut **tx, tenant_id, &hashes).await?;
    }
    Ok(usize::try_from(changed).unwrap_or(usize::MAX))
}

/// The keyed hashes of the identifiers' match keys that name one person for
/// certain ([`identity::is_strong_key`]).
async fn strong_key_hashes(ctx: &Context, tenant_id: Uuid, identifiers: &[Identifier]) -> Result<Vec<Vec<u8>>> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    Ok(identifiers
        .iter()
        .flat_map(identity::strong_match_keys)
        .map(|k| keyed_hash(&secret, &k))
        .collect())
}

/// The twins' part of [`rekey_before_tombstone`]: `by_tenant` holds the
/// erased subjects' strong keys.
async fn unname_twins(
    ctx: &Context,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    erased: &[Uuid],
    by_tenant: std::collections::BTreeMap<Uuid, std::collections::HashSet<Vec<u8>>>,
) -> Result<usize> {
    let mut changed = 0;
    for (tenant_id, theirs) in by_tenant {
        let wanted: Vec<Vec<u8>> = theirs.iter().cloned().collect();
        let twins = crate::store::subjects::lock_twins(&mut **tx, tenant_id, &wanted, erased).await?;
        if twins.is_empty() {
            continue;
        }
        // Per identifier: cleared when one of its keys is theirs.
        let mut cleared = Vec::new();
        for (subject_id, _, kind, value) in lineage::identifier_values_many(&mut **tx, &twins).await? {
            let Ok(kind) = kind.parse() else { continue };
            let id = Identifier { kind, value };
            let keys = strong_key_hashes(ctx, tenant_id, std::slice::from_ref(&id)).await?;
            if keys.iter().any(|k| theirs.contains(k)) {
                cleared.push((subject_id, id.kind.as_str().to_owned(), id.value));
            }
        }
        crate::store::subjects::suppress_twins(&mut **tx, &twins, &cleared).await?;
        changed += twins.len();
    }
    Ok(changed)
}

/// Who is storing a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// The write path (`PutSubject`, `Ingest`, `Track`): identifiers of a
    /// subject that is not active cannot change, and identifiers that name
    /// an erased person make the subject a suppressed alias.
    Write,
    /// `Erase`: always stores (an erased subject's values as hashes only).
    Erase,
}

/// What storing a subject did.
#[derive(Debug, Clone)]
pub enum PutOutcome {
    Stored(lineage::SubjectRow),
    /// Nothing of the request was stored but the subject's keyed hashes:
    /// writes tagged with it are suppressed from now on.
    Suppressed { state: SubjectState },
}

/// Creates or updates a request's subjects and adds their identifiers, in
/// one transaction: one that is refused (`too_many_identifiers`) leaves none
/// of them stored. The outcomes are in the subjects' keyed hashes' order.
///
/// # Errors
/// `FailedPrecondition(too_many_identifiers)`, database failures.
pub async fn put_subjects(ctx: &Context, tenant_id: Uuid, subjects: &[&SubjectInput], mode: PutMode) -> Result<Vec<PutOutcome>> {
    if subjects.is_empty() {
        return Ok(Vec::new());
    }
    // In the keyed hashes' order, as `upsert_subjects` inserts: two requests
    // naming the same new people in another order lock their rows in one
    // order, and cannot deadlock on them.
    let mut ordered = Vec::with_capacity(subjects.len());
    for subject in subjects {
        ordered.push((ctx.keyed_hash(tenant_id, subject.id.as_str()).await?, *subject));
    }
    ordered.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    let mut outcomes = Vec::with_capacity(subjects.len());
    for (_, subject) in ordered {
        outcomes.push(put_subject_in(ctx, &mut tx, tenant_id, subject, mode).await?);
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(outcomes)
}

/// The most identifiers one subject keeps (`too_many_identifiers` beyond).
pub const MAX_STORED_IDENTIFIERS: i64 = 1_000;

/// One subject of [`put_subjects`] in the caller's transaction, which the caller commits.
async fn put_subject_in(
    ctx: &Context,
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    subject: &SubjectInput,
    mode: PutMode,
) -> Result<PutOutcome> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    let hash = keyed_hash(&secret, subject.id.as_str());
    let mut identifiers = Vec::with_capacity(subject.identifiers.len());
    for i in &subject.identifiers {
        identifiers.push((i.kind.as_str().to_owned(), i.value.trim().to_owned(), identifier_hash(ctx, tenant_id, i).await?));
    }
    let keys = key_hashes(ctx, tenant_id, &subject.identifiers).await?;
    let mut rows = lineage::upsert_subjects(tx, tenant_id, &[(subject.id.as_str().to_owned(), hash)]).await?;
    let row = rows.pop().ok_or_else(|| LetheError::Unexpected(anyhow::anyhow!("upsert returned no subject")))?;
    if mode == PutMode::Write {
        if row.state() != SubjectState::Active && !identifiers.is_empty() {
            // The subject's identifiers are frozen: adding one to a subject
            // being erased would widen (or, to an erased one, revive) it. The
            // upsert found the row, so it wrote nothing.
            return Ok(PutOutcome::Suppressed { state: row.state() });
        }
        // The id itself may be an erased person's identifier (a pipeline
        // naming subjects by address: `zora@ex.com`, or by name), read as
        // a tag is (`suppression::blocked_subjects`): such a subject is
        // suppressed as one whose identifiers name them, and its id is not
        // kept in clear.
        if row.state() == SubjectState::Active {
            let wanted: Vec<Vec<u8>> =
                keys.iter().cloned().chain(crate::screening::mention_hashes(&secret, subject.id.as_str())).collect();
            // An id that reads as a suppressed one without its invisible
            // characters (`ps1\u{200B}`) or unescaped (`ps%2D1`), as a tag does.
            let readings: Vec<Vec<u8>> =
                crate::identity::id_readings(subject.id.as_str()).iter().map(|r| keyed_hash(&secret, r)).collect();
            let readings: Vec<&[u8]> = readings.iter().map(Vec::as_slice).collect();
            let reads_as_blocked = !readings.is_empty()
                && lineage::tagged_subjects(&mut **tx, tenant_id, &readings).await?.iter().any(|r| r.2.is_some());
            if reads_as_blocked || lineage::suppressor_by_keys(&mut **tx, tenant_id, &wanted, Some(row.subject_id)).await?.is_some() {
                lineage::suppress_subject(&mut **tx, row.subject_id).await?;
                lineage::add_keys(&mut **tx, tenant_id, row.subject_id, &keys).await?;
                return Ok(PutOutcome::Suppressed { state: SubjectState::Suppressed });
            }
        }
    }
    if row.state() == SubjectState::Active {
        // An id that is an address, a phone or a handle keys the subject
        // as an identifier would (see `record_lineage`).
        let id_keys = crate::screening::id_key_hashes(&secret, subject.id.as_str());
        lineage::add_keys(&mut **tx, tenant_id, row.subject_id, &id_keys).await?;
    }
    // Not on `Erase`: a person asking to be erased by one more identifier
    // is never refused (each `Erase` adds at most 100).
    if mode == PutMode::Write && !identifiers.is_empty() {
        // A bound on what one person's erasure searches for and matches: a
        // client adding identifiers request after request would otherwise
        // make every later erasure of the subject slower without end.
        // Counted without a lock: concurrent writes may pass it by a request's worth.
        let (have, new) = crate::store::subjects::identifier_counts(&mut **tx, row.subject_id, &identifiers).await?;
        if new > 0 && have + new > MAX_STORED_IDENTIFIERS {
            return Err(LetheError::precondition(
                "too_many_identifiers",
                format!("a subject keeps at most {MAX_STORED_IDENTIFIERS} identifiers; it has {have}, and {new} of these are new"),
            ));
        }
    }
    lineage::add_identifiers(&mut **tx, tenant_id, row.subject_id, &identifiers).await?;
    lineage::add_keys(&mut **tx, tenant_id, row.subject_id, &keys).await?;
    Ok(PutOutcome::Stored(row))
}

/// One subject, where a suppressed subject is an error: `PutSubject`.
///
/// # Errors
/// `FailedPrecondition(subject_suppressed)`, database failures.
pub async fn put_subject_or_refuse(ctx: &Context, tenant_id: Uuid, subject: &SubjectInput) -> Result<lineage::SubjectRow> {
    // The subject's lock, shared, as writes take it: an erasure's freeze
    // waits for this request, and this request sees the subject frozen
    // after it (identifiers added after the freeze would widen the
    // erasure, or be left in clear after its forget). Not in `put_subjects`:
    // a write calls it holding the lock on another connection already.
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    let hash = ctx.keyed_hash(tenant_id, subject.id.as_str()).await?;
    lineage::lock_subject_shared(&mut tx, &[crate::context::subject_lock_key(&hash)]).await?;
    let outcome = put_subject_in(ctx, &mut tx, tenant_id, subject, PutMode::Write).await?;
    tx.commit().await.map_err(StoreError::from)?;
    match outcome {
        PutOutcome::Stored(row) => Ok(row),
        PutOutcome::Suppressed { state: SubjectState::Suppressed } => Err(LetheError::precondition(
            "subject_suppressed",
            "this subject's id or one of its identifiers names a person who is being or has been erased: no \
             identifier was stored, and writes tagged with this subject id are suppressed from now on",
        )),
        PutOutcome::Suppressed { state } => Err(LetheError::precondition(
            "subject_suppressed",
            format!("the subject is {}: its identifiers cannot change; nothing was stored", state.as_str()),
        )),
    }
}

/// Stores a subject for `Erase` in the caller's transaction: an Erase that
/// is refused after this (a running erasure, a reused idempotency key)
/// rolls it back and leaves no subject behind.
///
/// # Errors
/// Database failures.
pub async fn put_subject_for_erasure(
    ctx: &Context,
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    subject: &SubjectInput,
) -> Result<lineage::SubjectRow> {
    match put_subject_in(ctx, tx, tenant_id, subject, PutMode::Erase).await? {
        PutOutcome::Stored(row) => Ok(row),
        PutOutcome::Suppressed { .. } => Err(LetheError::Unexpected(anyhow::anyhow!("an erasure's subject was suppressed"))),
    }
}

/// The person a request's free texts must not name: their row, the
/// caller's id for them and the identifiers the request gives.
#[derive(Clone, Copy)]
pub struct Named<'a> {
    pub row: &'a lineage::SubjectRow,
    pub id: &'a str,
    pub given: &'a [Identifier],
}

/// The first of the texts that names the person, if any:
/// - by their id or an identifier given now or on record, as
///   `identity::names_person` reads them;
/// - by one of their match keys: the mentions ingest screening reads in a
///   text (addresses, handles, phones, capitalised names), hashed with the
///   tenant key and looked up among the subject's keys. That is what an
///   erased subject still answers to: its identifiers' values are gone,
///   their keys stay, and a follow-up `Erase` or a hold's reason must not
///   write their address back into the log.
async fn first_naming(
    conn: &mut PgConnection,
    secret: &[u8],
    who: Named<'_>,
    texts: &[&str],
) -> crate::store::Result<Option<usize>> {
    if texts.iter().all(|t| t.is_empty()) {
        return Ok(None);
    }
    let identifiers = known_identifiers(&mut *conn, who.row.subject_id, who.given).await?;
    if let Some(at) = texts.iter().position(|t| identity::names_person(t, who.id, &identifiers)) {
        return Ok(Some(at));
    }
    let by_text: Vec<Vec<Vec<u8>>> = texts.iter().map(|t| crate::screening::mention_hashes(secret, t)).collect();
    let all: Vec<Vec<u8>> = by_text.iter().flatten().cloned().collect();
    let own: std::collections::HashSet<Vec<u8>> =
        crate::store::subjects::own_keys_among(&mut *conn, who.row.subject_id, &all).await?.into_iter().collect();
    Ok(by_text.iter().position(|hs| hs.iter().any(|h| own.contains(h))))
}

/// Refuses free texts of a request that are kept for ever (who asked and
/// why an erasure was made, a hold's reason: the job, the chained log, the
/// certificate) when one names the subject (see [`first_naming`]). `fields`
/// are (field name, text).
///
/// # Errors
/// `InvalidArgument` naming the field (never the text); database failures.
pub async fn refuse_texts_naming(
    conn: &mut PgConnection,
    secret: &[u8],
    who: Named<'_>,
    fields: &[(&str, &str)],
) -> Result<()> {
    let texts: Vec<&str> = fields.iter().map(|(_, t)| *t).collect();
    match first_naming(conn, secret, who, &texts).await? {
        Some(at) => Err(LetheError::invalid(
            fields[at].0,
            "names the subject (their id or one of their identifiers); it is kept after the erasure, so it must not",
        )),
        None => Ok(()),
    }
}

/// The subject's identifiers: those a request gives and those on record.
async fn known_identifiers(
    ex: impl sqlx::PgExecutor<'_>,
    subject_id: uuid::Uuid,
    given: &[Identifier],
) -> crate::store::Result<Vec<Identifier>> {
    let on_record = crate::store::export::identifiers(ex, subject_id).await?;
    Ok(given.iter().cloned().chain(on_record.into_iter().filter_map(Identifier::from_row)).collect())
}

/// A legal hold's reason as a refusal may copy it into the job and the
/// log, which outlive the person's erasure: the reason unless it names the
/// subject (see [`first_naming`]; a hold placed before they were known
/// could not be checked against what is on record now).
///
/// # Errors
/// Database failures.
pub async fn hold_reason_to_keep(
    conn: &mut PgConnection,
    secret: &[u8],
    who: Named<'_>,
    reason: &str,
) -> crate::store::Result<String> {
    Ok(if first_naming(conn, secret, who, &[reason]).await?.is_some() {
        "(the hold's reason names the person: not copied)".to_owned()
    } else {
        reason.to_owned()
    })
}

/// Places or lifts a legal hold. Waits for erasure steps in flight that
/// may destroy data (see `erasure::holds`).
///
/// # Errors
/// Database failures.
pub async fn set_legal_hold(
    ctx: &Context,
    tenant_id: Uuid,
    subject: &ExternalId,
    hold: bool,
    reason: Option<&str>,
) -> Result<lineage::SubjectRow> {
    // Naming someone erased before: checked before the transaction takes a
    // connection of the pool (so is the tenant key read, on a cold cache).
    let texts = [("reason", reason.unwrap_or_default())];
    crate::screening::refuse_texts_naming_the_erased(ctx, tenant_id, &texts).await?;
    let secret = ctx.tenant_secret(tenant_id).await?;
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    // Waits for the destructive steps of erasures in flight: each has read
    // the holds and acts on what it read; the hold applies from the next one.
    crate::store::holds::lock_exclusive(&mut tx, tenant_id).await?;
    let row = put_subject_for_erasure(ctx, &mut tx, tenant_id, &SubjectInput { id: subject.clone(), identifiers: Vec::new() })
        .await?;
    // A hold's reason is copied into the log entry of every erasure it
    // refuses, kept for ever (rolled back when refused).
    let who = Named { row: &row, id: subject.as_str(), given: &[] };
    refuse_texts_naming(&mut tx, &secret, who, &texts).await?;
    lineage::set_legal_hold(&mut *tx, row.subject_id, hold, reason).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(lineage::subject_by_id(&ctx.pool, row.subject_id).await?)
}
