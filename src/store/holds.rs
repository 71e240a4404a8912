//! Legal holds as destructive steps see them. A step reads the holds under
//! the tenant's hold lock, held shared until the step's transaction ends;
//! `SetLegalHold` takes it exclusively. So a hold is either seen by a step
//! or placed after the step is done, never in the middle of it.

use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use super::Result;

/// The advisory-lock class of legal holds (a two-key advisory lock: its
/// keys never collide with the one-key locks on subjects and collections).
const HOLD_LOCK_CLASS: i32 = 0x4C48_4F4C;

fn tenant_key(tenant_id: Uuid) -> i32 {
    let b = tenant_id.as_bytes();
    i32::from_le_bytes([b[12], b[13], b[14], b[15]])
}

/// Holds the tenant's hold lock shared until the transaction ends.
pub async fn lock_shared(tx: &mut Transaction<'_, Postgres>, tenant_id: Uuid) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1, $2)")
        .bind(HOLD_LOCK_CLASS)
        .bind(tenant_key(tenant_id))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// [`lock_shared`] for several tenants, in one statement and key order (the
/// same order for every caller). Returns the tenants of which some subject
/// is on hold, read after the locks were granted.
pub async fn lock_shared_many(tx: &mut Transaction<'_, Postgres>, tenant_ids: &[Uuid]) -> Result<Vec<Uuid>> {
    let mut keys: Vec<i32> = tenant_ids.iter().map(|t| tenant_key(*t)).collect();
    keys.sort_unstable();
    keys.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1, k) FROM UNNEST($2::int[]) AS k")
        .bind(HOLD_LOCK_CLASS)
        .bind(&keys)
        .execute(&mut **tx)
        .await?;
    // A statement of its own: its snapshot is taken after the locks were
    // granted, so it sees every hold placed before them.
    Ok(sqlx::query_scalar("SELECT DISTINCT tenant_id FROM subjects WHERE tenant_id = ANY($1) AND legal_hold")
        .bind(tenant_ids)
        .fetch_all(&mut **tx)
        .await?)
}

/// Takes the tenant's hold lock exclusively until the transaction ends:
/// waits for the destructive steps in flight.
pub async fn lock_exclusive(tx: &mut Transaction<'_, Postgres>, tenant_id: Uuid) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(HOLD_LOCK_CLASS)
        .bind(tenant_key(tenant_id))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The subject's hold reason ("" when none was given), if it is on hold.
pub async fn own_hold(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<Option<String>> {
    Ok(own_holds(ex, &[subject_id]).await?.remove(&subject_id))
}

/// [`own_hold`] of several subjects in one query: the reasons of those on
/// hold, by subject.
pub async fn own_holds(ex: impl PgExecutor<'_>, subject_ids: &[Uuid]) -> Result<std::collections::HashMap<Uuid, String>> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT subject_id, COALESCE(legal_hold_reason, '') FROM subjects WHERE subject_id = ANY($1) AND legal_hold",
    )
    .bind(subject_ids)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The legal holds one destructive step of a job reads, in one statement
/// (after the hold lock, in a statement of its own: a statement's snapshot
/// is taken before it waits for a lock).
#[derive(Debug, Default)]
pub struct HoldState {
    /// The subject's own hold reason ("" when none was given), if it is on hold.
    pub own: Option<String>,
    /// Caller ids (the tags in the backends) of the tenant's other subjects on hold.
    pub other_tags: Vec<String>,
    /// Whether any other subject of the tenant is on hold (also one without
    /// a caller id): when none is, no chunk can be held by another subject.
    pub others: bool,
}

/// [`HoldState`] of `subject_id` (the nil id: every held subject is "other")
/// through the tenant's partial index of held subjects.
pub async fn hold_state(ex: impl PgExecutor<'_>, tenant_id: Uuid, subject_id: Uuid) -> Result<HoldState> {
    let rows: Vec<(Uuid, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT subject_id, legal_hold_reason, external_id FROM subjects WHERE tenant_id = $1 AND legal_hold",
    )
    .bind(tenant_id)
    .fetch_all(ex)
    .await?;
    let mut state = HoldState::default();
    for (id, reason, external_id) in rows {
        if id == subject_id {
            state.own = Some(reason.unwrap_or_default());
        } else {
            state.others = true;
            state.other_tags.extend(external_id);
        }
    }
    Ok(state)
}

/// Of the given keyed hashes, those of the tenant's subjects on hold (through
/// the subjects' hash index: the write path asks this).
pub async fn held_among(ex: impl PgExecutor<'_>, tenant_id: Uuid, hashes: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar("SELECT subject_hash FROM subjects WHERE tenant_id = $1 AND subject_hash = ANY($2) AND legal_hold")
        .bind(tenant_id)
        .bind(hashes)
        .fetch_all(ex)
        .await?)
}

/// Keyed hashes of the tenant's subjects on hold.
pub async fn held_hashes(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Vec<Vec<u8>>> {
    Ok(sqlx::query_scalar("SELECT subject_hash FROM subjects WHERE tenant_id = $1 AND legal_hold")
        .bind(tenant_id)
        .fetch_all(ex)
        .await?)
}

/// Of the tenant's `chunk_ids`, those lineage tags with a subject on hold
/// other than `except` (chunk ids are the tenant's own: another tenant's
/// hold on the same id is none of this tenant's business).
pub async fn held_chunks(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    collection_id: Option<Uuid>,
    chunk_ids: &[Uuid],
    except: Uuid,
) -> Result<Vec<Uuid>> {
    if chunk_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(
        r#"
        SELECT DISTINCT cs.chunk_id
        FROM chunk_subjects cs JOIN subjects s USING (subject_id)
        WHERE cs.tenant_id = $3 AND cs.chunk_id = ANY($1) AND s.legal_hold AND s.subject_id <> $2
          AND ($4::uuid IS NULL OR cs.collection_id = $4)
        "#,
    )
    .bind(chunk_ids)
    .bind(except)
    .bind(tenant_id)
    .bind(collection_id)
    .fetch_all(ex)
    .await?)
}

/// The collection's chunks that lineage tags with a subject on hold.
pub async fn held_chunks_in_collection(ex: impl PgExecutor<'_>, tenant_id: Uuid, collection_id: Uuid) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        r#"
        SELECT DISTINCT cs.chunk_id
        FROM subjects s JOIN chunk_subjects cs USING (subject_id)
        WHERE s.tenant_id = $1 AND s.legal_hold AND cs.collection_id = $2
        "#,
    )
    .bind(tenant_id)
    .bind(collection_id)
    .fetch_all(ex)
    .await?)
}

/// Lifts the freeze of a subject whose erasure was refused under legal
/// hold: its data stays, and so may its writes.
pub async fn unfreeze_subject(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<()> {
    sqlx::query("UPDATE subjects SET state = 'active' WHERE subject_id = $1 AND state = 'pending_erasure'")
        .bind(subject_id)
        .execute(ex)
        .await?;
    Ok(())
}
