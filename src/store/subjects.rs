//! Subjects (people): their keyed hashes, identifiers and match keys, the
//! states of their erasure (frozen, tombstone, suppressed alias), legal
//! holds, and the advisory locks that order writes and erasure.

use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use super::Result;
use super::lease::Lease;
use crate::domain::SubjectState;

/// A subject as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubjectRow {
    pub subject_id: Uuid,
    pub external_id: Option<String>,
    pub subject_hash: Vec<u8>,
    pub state: String,
    pub legal_hold: bool,
    pub legal_hold_reason: Option<String>,
}

impl SubjectRow {
    pub fn state(&self) -> SubjectState {
        // The CHECK constraint admits only known states.
        self.state.parse().unwrap_or(SubjectState::Erased)
    }
}

const SUBJECT_COLUMNS: &str = "subject_id, external_id, subject_hash, state, legal_hold, legal_hold_reason";

/// Finds or creates subjects by keyed hash. An erased subject keeps its
/// tombstone: its external id is not written back. Existing subjects are read,
/// not rewritten (an upsert would write a new row version for every tagged
/// subject of every batch).
pub async fn upsert_subjects(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    subjects: &[(String, Vec<u8>)],
) -> Result<Vec<SubjectRow>> {
    // Time-ordered ids: new subjects append to the key's btree instead of
    // landing on random pages of a large index (see `record_chunks`).
    let ids: Vec<Uuid> = subjects.iter().map(|_| Uuid::now_v7()).collect();
    let externals: Vec<&str> = subjects.iter().map(|(e, _)| e.as_str()).collect();
    let hashes: Vec<&[u8]> = subjects.iter().map(|(_, h)| h.as_slice()).collect();
    // Inserted in the keyed hashes' order: two writes naming the same new
    // people insert them in one order, and cannot deadlock on them (the
    // anti-join's hash table handed rows out in its own order, which
    // differs between sets: concurrent loads of mail deadlocked here).
    // The rows inserted here and the rows that existed when the statement
    // began; a subject inserted by a concurrent write after that is neither
    // (its insert conflicts), so it is read again by a second statement.
    let mut rows: Vec<SubjectRow> = sqlx::query_as(&format!(
        r#"
        WITH inserted AS (
            INSERT INTO subjects (subject_id, tenant_id, external_id, subject_hash)
            SELECT s.id, $1, s.ext, s.h FROM UNNEST($2::uuid[], $3::text[], $4::bytea[]) AS s(id, ext, h)
            WHERE NOT EXISTS (SELECT 1 FROM subjects x WHERE x.tenant_id = $1 AND x.subject_hash = s.h)
            ORDER BY s.h
            ON CONFLICT (tenant_id, subject_hash) DO NOTHING
            RETURNING {SUBJECT_COLUMNS}
        )
        SELECT {SUBJECT_COLUMNS} FROM inserted
        UNION ALL
        SELECT {SUBJECT_COLUMNS} FROM subjects WHERE tenant_id = $1 AND subject_hash = ANY($4)
        "#
    ))
    .bind(tenant_id)
    .bind(&ids)
    .bind(&externals)
    .bind(&hashes)
    .fetch_all(&mut **tx)
    .await?;
    if rows.len() < subjects.len() {
        let found: std::collections::HashSet<&[u8]> = rows.iter().map(|r| r.subject_hash.as_slice()).collect();
        let missing: Vec<&[u8]> = hashes.iter().copied().filter(|h| !found.contains(h)).collect();
        if !missing.is_empty() {
            let more = subjects_by_hashes(&mut **tx, tenant_id, &missing).await?;
            rows.extend(more);
        }
    }
    Ok(rows)
}

pub async fn subject_by_hash(ex: impl PgExecutor<'_>, tenant_id: Uuid, hash: &[u8]) -> Result<Option<SubjectRow>> {
    Ok(sqlx::query_as(&format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE tenant_id = $1 AND subject_hash = $2"))
        .bind(tenant_id)
        .bind(hash)
        .fetch_optional(ex)
        .await?)
}

/// Subjects by keyed hash in one query; hashes without a subject are skipped.
pub async fn subjects_by_hashes(ex: impl PgExecutor<'_>, tenant_id: Uuid, hashes: &[&[u8]]) -> Result<Vec<SubjectRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SUBJECT_COLUMNS} FROM subjects WHERE tenant_id = $1 AND subject_hash = ANY($2)"
    ))
    .bind(tenant_id)
    .bind(hashes)
    .fetch_all(ex)
    .await?)
}

pub async fn subject_by_id(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<SubjectRow> {
    Ok(sqlx::query_as(&format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE subject_id = $1"))
        .bind(subject_id)
        .fetch_one(ex)
        .await?)
}

/// [`subject_by_id`] of several subjects in one query, by id.
pub async fn subjects_by_ids(ex: impl PgExecutor<'_>, subject_ids: &[Uuid]) -> Result<std::collections::HashMap<Uuid, SubjectRow>> {
    let rows: Vec<SubjectRow> = sqlx::query_as(&format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE subject_id = ANY($1)"))
        .bind(subject_ids)
        .fetch_all(ex)
        .await?;
    Ok(rows.into_iter().map(|r| (r.subject_id, r)).collect())
}

/// How many identifiers the subject has, and how many of these (kind,
/// keyed hash) it does not have yet.
pub async fn identifier_counts(ex: impl PgExecutor<'_>, subject_id: Uuid, identifiers: &[(String, String, Vec<u8>)]) -> Result<(i64, i64)> {
    let kinds: Vec<&str> = identifiers.iter().map(|(k, _, _)| k.as_str()).collect();
    let hashes: Vec<&[u8]> = identifiers.iter().map(|(_, _, h)| h.as_slice()).collect();
    Ok(sqlx::query_as(
        r#"
        SELECT (SELECT count(*) FROM subject_identifiers WHERE subject_id = $1),
               (SELECT count(DISTINCT (k, h)) FROM UNNEST($2::text[], $3::bytea[]) AS i(k, h)
                WHERE NOT EXISTS (SELECT 1 FROM subject_identifiers x WHERE x.subject_id = $1 AND x.kind = i.k AND x.value_hash = i.h))
        "#,
    )
    .bind(subject_id)
    .bind(&kinds)
    .bind(&hashes)
    .fetch_one(ex)
    .await?)
}

/// Adds identifiers (kind, clear value, keyed hash of the normalised value).
/// Values of an erased subject are not stored, only their hashes.
pub async fn add_identifiers(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    subject_id: Uuid,
    identifiers: &[(String, String, Vec<u8>)],
) -> Result<()> {
    if identifiers.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = identifiers.iter().map(|(k, _, _)| k.as_str()).collect();
    let values: Vec<&str> = identifiers.iter().map(|(_, v, _)| v.as_str()).collect();
    let hashes: Vec<&[u8]> = identifiers.iter().map(|(_, _, h)| h.as_slice()).collect();
    sqlx::query(
        r#"
        INSERT INTO subject_identifiers (subject_id, tenant_id, kind, value, value_hash)
        SELECT $1, $2, k, CASE WHEN s.state = 'erased' THEN NULL ELSE v END, h
        FROM UNNEST($3::text[], $4::text[], $5::bytea[]) AS i(k, v, h)
        JOIN subjects s ON s.subject_id = $1
        ON CONFLICT (subject_id, kind, value_hash) DO NOTHING
        "#,
    )
    .bind(subject_id)
    .bind(tenant_id)
    .bind(&kinds)
    .bind(&values)
    .bind(&hashes)
    .execute(ex)
    .await?;
    Ok(())
}

/// Whether the subject still holds plaintext in its own rows: (clear
/// identifiers, the caller's id), in one statement.
pub async fn holds_plaintext(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<(bool, bool)> {
    Ok(holds_plaintext_many(ex, &[subject_id]).await?.remove(&subject_id).unwrap_or((false, false)))
}

/// [`holds_plaintext`] of several subjects in one statement, by subject.
pub async fn holds_plaintext_many(ex: impl PgExecutor<'_>, subject_ids: &[Uuid]) -> Result<std::collections::HashMap<Uuid, (bool, bool)>> {
    let rows: Vec<(Uuid, bool, bool)> = sqlx::query_as(
        r#"
        SELECT s.subject_id, x.clear IS NOT NULL, s.external_id IS NOT NULL
        FROM subjects s
        -- Probed per subject: as an `EXISTS` the workers' generic plan
        -- hashed the whole table once per call (most values erased, NULL).
        LEFT JOIN LATERAL (
            SELECT true AS clear FROM subject_identifiers i
            WHERE i.subject_id = s.subject_id AND i.value IS NOT NULL LIMIT 1
        ) x ON true
        WHERE s.subject_id = ANY($1)
        "#,
    )
    .bind(subject_ids)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|(id, identifiers, external_id)| (id, (identifiers, external_id))).collect())
}

pub async fn count_identifiers(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM subject_identifiers WHERE subject_id = $1")
        .bind(subject_id)
        .fetch_one(ex)
        .await?)
}

/// Adds a subject's match keys (keyed hashes of `identity::match_keys`).
pub async fn add_keys(ex: impl PgExecutor<'_>, tenant_id: Uuid, subject_id: Uuid, keys: &[Vec<u8>]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        r#"
        INSERT INTO subject_keys (tenant_id, key_hash, subject_id)
        SELECT $1, k, $2 FROM UNNEST($3::bytea[]) AS k
        ON CONFLICT DO NOTHING
        "#,
    )
    .bind(tenant_id)
    .bind(subject_id)
    .bind(keys)
    .execute(ex)
    .await?;
    Ok(())
}

/// Which of these key hashes are the subject's own match keys: what a
/// tombstone still answers once its identifiers' values are gone.
pub async fn own_keys_among(ex: impl PgExecutor<'_>, subject_id: Uuid, keys: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar("SELECT key_hash FROM subject_keys WHERE subject_id = $1 AND key_hash = ANY($2)")
        .bind(subject_id)
        .bind(keys)
        .fetch_all(ex)
        .await?)
}

/// The identifiers still held in clear of several subjects: (subject,
/// tenant, kind, value).
pub async fn identifier_values_many(ex: impl PgExecutor<'_>, subject_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT subject_id, tenant_id, kind, value FROM subject_identifiers WHERE subject_id = ANY($1) AND value IS NOT NULL",
    )
    .bind(subject_ids)
    .fetch_all(ex)
    .await?)
}

/// Of these keys, those of erased subjects of which none holding the key is
/// under legal hold: what a change that cannot be undone (a source's alias)
/// may act on. Read it under the tenant's hold lock.
pub async fn erased_keys_not_held(ex: impl PgExecutor<'_>, tenant_id: Uuid, keys: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    // Each key probes the indexes (a lateral subquery per key). Joined as
    // sets, the planner's custom plan for 334 keys read both tables whole
    // (5-7 ms against 11,655 stored keys, growing with the tenant; once per
    // residual batch with candidates, the busiest path), where this takes
    // 1.5-2 ms whatever the plan.
    Ok(sqlx::query_scalar(
        r#"
        SELECT h.key_hash
        FROM UNNEST($2::bytea[]) AS h(key_hash)
        CROSS JOIN LATERAL (
            -- A key another subject holds who is on hold (the same person under another id) is theirs too.
            SELECT bool_or(s.state = 'erased' AND NOT s.legal_hold) AS erased, bool_or(s.legal_hold) AS held
            FROM subject_keys k JOIN subjects s ON s.subject_id = k.subject_id
            WHERE k.tenant_id = $1 AND k.key_hash = h.key_hash
        ) x
        WHERE x.erased AND NOT x.held
        UNION
        -- An erased person's caller id, by its keyed hash (`identity::id_forms`).
        SELECT h.key_hash
        FROM UNNEST($2::bytea[]) AS h(key_hash)
        CROSS JOIN LATERAL (
            SELECT 1 FROM subjects s
            WHERE s.tenant_id = $1 AND s.subject_hash = h.key_hash AND s.state = 'erased' AND NOT s.legal_hold
            LIMIT 1
        ) x
        "#,
    )
    .bind(tenant_id)
    .bind(keys)
    .fetch_all(ex)
    .await?)
}

/// Of these hashes, those that are the caller id of a subject being or
/// having been erased (`subject_hash`).
pub async fn erased_id_hashes(ex: impl PgExecutor<'_>, tenant_id: Uuid, hashes: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    Ok(sqlx::query_scalar(
        "SELECT h.id_hash FROM UNNEST($2::bytea[]) AS h(id_hash) \
         JOIN subjects s ON s.tenant_id = $1 AND s.subject_hash = h.id_hash AND s.state IN ('pending_erasure', 'erased')",
    )
    .bind(tenant_id)
    .bind(hashes)
    .fetch_all(ex)
    .await?)
}

/// The caller ids the subjects still hold (in clear): (subject, id).
pub async fn external_ids(ex: impl PgExecutor<'_>, subject_ids: &[Uuid]) -> Result<Vec<(Uuid, String)>> {
    Ok(sqlx::query_as("SELECT subject_id, external_id FROM subjects WHERE subject_id = ANY($1) AND external_id IS NOT NULL")
        .bind(subject_ids)
        .fetch_all(ex)
        .await?)
}

/// [`add_keys`] of several subjects in one statement: `(tenant, subject, key hash)`.
pub async fn add_keys_many(ex: impl PgExecutor<'_>, keys: &[(Uuid, Uuid, Vec<u8>)]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let tenants: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
    let subjects: Vec<Uuid> = keys.iter().map(|k| k.1).collect();
    let hashes: Vec<&[u8]> = keys.iter().map(|k| k.2.as_slice()).collect();
    sqlx::query(
        r#"
        INSERT INTO subject_keys (tenant_id, key_hash, subject_id)
        SELECT t, k, s FROM UNNEST($1::uuid[], $2::bytea[], $3::uuid[]) AS u(t, k, s)
        ON CONFLICT DO NOTHING
        "#,
    )
    .bind(&tenants)
    .bind(&hashes)
    .bind(&subjects)
    .execute(ex)
    .await?;
    Ok(())
}

/// A subject other than `except` that is being or has been erased and
/// shares one of the match keys.
pub async fn suppressor_by_keys(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    keys: &[Vec<u8>],
    except: Option<Uuid>,
) -> Result<Option<Uuid>> {
    if keys.is_empty() {
        return Ok(None);
    }
    Ok(sqlx::query_scalar(
        r#"
        SELECT s.subject_id
        FROM subject_keys k JOIN subjects s USING (subject_id)
        WHERE k.tenant_id = $1 AND k.key_hash = ANY($2) AND s.state IN ('pending_erasure', 'erased')
          AND s.subject_id IS DISTINCT FROM $3
        LIMIT 1
        "#,
    )
    .bind(tenant_id)
    .bind(keys)
    .bind(except)
    .fetch_optional(ex)
    .await?)
}

/// The subjects with these hashes (hash, id), each with the subject that
/// suppresses its writes, if any: itself when it is being or has been
/// erased, else such a subject that shares one of its match keys (the same
/// person under another id; for a suppressed alias, the person it names),
/// else a suppressed alias itself. Only erasures suppress: an alias's keys
/// do not spread further. One query per batch; hashes without a subject are
/// skipped (the write path creates those, and only those, afterwards).
pub async fn tagged_subjects(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    hashes: &[&[u8]],
) -> Result<Vec<(Vec<u8>, Uuid, Option<Uuid>)>> {
    Ok(sqlx::query_as(
        r#"
        SELECT s.subject_hash, s.subject_id,
               CASE WHEN s.state IN ('pending_erasure', 'erased') THEN s.subject_id ELSE COALESCE((
                   SELECT o.subject_id
                   FROM subject_keys mine
                   JOIN subject_keys other
                     ON other.tenant_id = mine.tenant_id AND other.key_hash = mine.key_hash
                    AND other.subject_id <> mine.subject_id
                   JOIN subjects o
                     ON o.subject_id = other.subject_id AND o.state IN ('pending_erasure', 'erased')
                   WHERE mine.subject_id = s.subject_id
                   LIMIT 1),
                   CASE WHEN s.state = 'suppressed' THEN s.subject_id END)
               END AS blocker
        FROM subjects s
        WHERE s.tenant_id = $1 AND s.subject_hash = ANY($2)
        "#,
    )
    .bind(tenant_id)
    .bind(hashes)
    .fetch_all(ex)
    .await?)
}

/// Subjects being or having been erased that have any of the keys, by key
/// (ingest-time screening). The keys are joined as a set: a request of 1,000
/// mail chunks brings ~20,000 of them, and `key_hash = ANY($2)` cost ~20 ms
/// to plan (an estimate per element) or, planned once, to run (no hashing of
/// a parameter's elements).
pub async fn erased_subjects_by_keys(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    keys: &[Vec<u8>],
) -> Result<Vec<(Vec<u8>, Uuid)>> {
    Ok(sqlx::query_as(
        r#"
        SELECT k.key_hash, k.subject_id
        FROM UNNEST($2::bytea[]) AS h(key_hash)
        JOIN subject_keys k ON k.tenant_id = $1 AND k.key_hash = h.key_hash
        JOIN subjects s ON s.subject_id = k.subject_id AND s.state IN ('pending_erasure', 'erased')
        "#,
    )
    .bind(tenant_id)
    .bind(keys)
    .fetch_all(ex)
    .await?)
}

/// The tenant's subjects other than `except`, not erased and not under
/// legal hold, that hold one of `keys`, locked in id order.
pub async fn lock_twins(ex: impl PgExecutor<'_>, tenant_id: Uuid, keys: &[Vec<u8>], except: &[Uuid]) -> Result<Vec<Uuid>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(
        r#"
        SELECT s.subject_id FROM subjects s
        WHERE s.subject_id IN (SELECT k.subject_id FROM subject_keys k WHERE k.tenant_id = $1 AND k.key_hash = ANY($2))
          AND s.state IN ('active', 'suppressed') AND NOT s.legal_hold AND s.subject_id <> ALL($3)
        ORDER BY s.subject_id
        FOR NO KEY UPDATE
        "#,
    )
    .bind(tenant_id)
    .bind(keys)
    .bind(except)
    .fetch_all(ex)
    .await?)
}

/// The caller ids of these subjects still held in clear: (tenant, subject, id).
pub async fn external_ids_many(ex: impl PgExecutor<'_>, subject_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid, String)>> {
    Ok(sqlx::query_as("SELECT tenant_id, subject_id, external_id FROM subjects WHERE subject_id = ANY($1) AND external_id IS NOT NULL")
        .bind(subject_ids)
        .fetch_all(ex)
        .await?)
}

/// Suppresses the tenant's subjects under these hashes (other spellings of
/// an erased id): one that is active and not under legal hold becomes
/// suppressed (its caller id cleared; its chunks stay), and a hash without
/// a subject gets a suppressed one, which only its hash names. Returns how
/// many active subjects were suppressed.
pub async fn suppress_hashes(ex: impl PgExecutor<'_>, tenant_id: Uuid, hashes: &[Vec<u8>]) -> Result<u64> {
    if hashes.is_empty() {
        return Ok(0);
    }
    let n: i64 = sqlx::query_scalar(
        r#"
        WITH r AS (SELECT DISTINCT h FROM UNNEST($2::bytea[]) AS r(h)),
        suppressed AS (
            UPDATE subjects s SET state = 'suppressed', external_id = NULL
            FROM r WHERE s.tenant_id = $1 AND s.subject_hash = r.h AND s.state = 'active' AND NOT s.legal_hold
            RETURNING s.subject_id
        ),
        made AS (
            INSERT INTO subjects (subject_id, tenant_id, subject_hash, state)
            SELECT gen_random_uuid(), $1, r.h, 'suppressed' FROM r
            WHERE NOT EXISTS (SELECT 1 FROM subjects x WHERE x.tenant_id = $1 AND x.subject_hash = r.h)
            ON CONFLICT (tenant_id, subject_hash) DO NOTHING
        )
        SELECT count(*) FROM suppressed
        "#,
    )
    .bind(tenant_id)
    .bind(hashes)
    .fetch_one(ex)
    .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Makes the twins suppressed (their caller id cleared) and clears the
/// values of the identifiers listed (subject, kind, value).
pub async fn suppress_twins(ex: impl PgExecutor<'_>, twins: &[Uuid], identifiers: &[(Uuid, String, String)]) -> Result<()> {
    let subjects: Vec<Uuid> = identifiers.iter().map(|i| i.0).collect();
    let kinds: Vec<&str> = identifiers.iter().map(|i| i.1.as_str()).collect();
    let values: Vec<&str> = identifiers.iter().map(|i| i.2.as_str()).collect();
    sqlx::query(
        r#"
        WITH cleared AS (
            UPDATE subject_identifiers i SET value = NULL
            FROM UNNEST($2::uuid[], $3::text[], $4::text[]) AS c(subject_id, kind, value)
            WHERE i.subject_id = c.subject_id AND i.kind = c.kind AND i.value = c.value
        )
        UPDATE subjects SET state = 'suppressed', external_id = NULL WHERE subject_id = ANY($1)
        "#,
    )
    .bind(twins)
    .bind(&subjects)
    .bind(&kinds)
    .bind(&values)
    .execute(ex)
    .await?;
    Ok(())
}

/// Marks an active subject suppressed: it names a person who is being or
/// has been erased. Its caller id goes (only the keyed hash stays).
pub async fn suppress_subject(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<()> {
    sqlx::query("UPDATE subjects SET state = 'suppressed', external_id = NULL WHERE subject_id = $1 AND state = 'active'")
        .bind(subject_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// The latest erasure job of a subject that was not refused (a follow-up
/// deletion is attributed to it).
pub async fn latest_erasure(ex: impl PgExecutor<'_>, subject_id: Uuid) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT job_id FROM erasure_jobs WHERE subject_id = $1 AND status <> 'refused' ORDER BY received_at DESC LIMIT 1",
    )
    .bind(subject_id)
    .fetch_optional(ex)
    .await?)
}

pub async fn set_legal_hold(ex: impl PgExecutor<'_>, subject_id: Uuid, hold: bool, reason: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE subjects SET legal_hold = $2, legal_hold_reason = $3 WHERE subject_id = $1")
        .bind(subject_id)
        .bind(hold)
        .bind(reason)
        .execute(ex)
        .await?;
    Ok(())
}

/// Serialises ingestion and erasure of one subject: ingest holds the shared
/// lock from its state check until its vectors are written; the erase job's
/// freeze takes it exclusively, so it waits for in-flight writes.
pub async fn lock_subject_shared(tx: &mut Transaction<'_, Postgres>, keys: &[i64]) -> Result<()> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock_shared(k) FROM UNNEST($1::bigint[]) AS k")
        .bind(&keys)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn lock_subject_exclusive(tx: &mut Transaction<'_, Postgres>, key: i64) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut **tx).await?;
    Ok(())
}

/// [`lock_subject_exclusive`], waiting at most `wait` (then 55P03, lock not
/// available: UNAVAILABLE). While an exclusive request waits, every later
/// shared request of the key waits behind it: the bound is how long it may
/// hold them up. The transaction's later statements wait as before (the
/// setting it had is put back).
pub async fn lock_exclusive_within(tx: &mut Transaction<'_, Postgres>, key: i64, wait: std::time::Duration) -> Result<()> {
    let before: String = sqlx::query_scalar("SELECT current_setting('lock_timeout')").fetch_one(&mut **tx).await?;
    sqlx::query("SELECT set_config('lock_timeout', $1, true)")
        .bind(format!("{}ms", wait.as_millis()))
        .execute(&mut **tx)
        .await?;
    lock_subject_exclusive(tx, key).await?;
    sqlx::query("SELECT set_config('lock_timeout', $1, true)").bind(before).execute(&mut **tx).await?;
    Ok(())
}

/// Freezes subjects (`(subject, lock key)`) for erasure in one statement
/// (its own transaction): takes each subject's lock exclusively, which waits
/// for every in-flight write that holds it shared, then marks the subjects
/// pending erasure. Writes that take a lock after this commits see the new
/// state and are suppressed. A subject on legal hold is not frozen (the row
/// lock orders this against `SetLegalHold`: the hold either came first, or
/// finds the subject frozen). The locks are taken in ascending key order,
/// the order writes take theirs ([`lock_subject_shared`]): this statement
/// and a write may wait for each other's locks, never in a cycle.
///
/// Each subject is `(subject, lock key, job, lease)`: it is frozen only
/// while `lease` holds its job, so a worker whose claim was superseded
/// (and whose job the new claim may have refused and unfrozen since)
/// freezes nothing.
pub async fn freeze_subjects(ex: impl PgExecutor<'_>, subjects: &[(Uuid, i64, Uuid, Lease)]) -> Result<()> {
    let ids: Vec<Uuid> = subjects.iter().map(|s| s.0).collect();
    let mut keys: Vec<i64> = subjects.iter().map(|s| s.1).collect();
    keys.sort_unstable();
    keys.dedup();
    let jobs: Vec<Uuid> = subjects.iter().map(|s| s.2).collect();
    let owners: Vec<Uuid> = subjects.iter().map(|s| s.3.owner).collect();
    let epochs: Vec<i64> = subjects.iter().map(|s| s.3.epoch).collect();
    sqlx::query(
        r#"
        WITH locked AS MATERIALIZED (SELECT count(pg_advisory_xact_lock(k)) FROM UNNEST($2::bigint[]) AS k)
        UPDATE subjects s SET state = 'pending_erasure'
        FROM locked, UNNEST($1::uuid[], $3::uuid[], $4::uuid[], $5::bigint[]) AS f(subject_id, job_id, owner, epoch)
        WHERE s.subject_id = f.subject_id AND s.state <> 'erased' AND NOT s.legal_hold
          AND EXISTS (SELECT 1 FROM erasure_jobs j
                      WHERE j.job_id = f.job_id AND j.lease_owner = f.owner AND j.lease_epoch = f.epoch
                        AND j.status = 'in_progress')
        "#,
    )
    .bind(&ids)
    .bind(&keys)
    .bind(&jobs)
    .bind(&owners)
    .bind(&epochs)
    .execute(ex)
    .await?;
    Ok(())
}

/// Turns the subject into a tombstone: external id and identifier values
/// removed, hashes kept, state erased.
pub async fn tombstone_subject(tx: &mut Transaction<'_, Postgres>, subject_id: Uuid) -> Result<()> {
    tombstone_subjects(tx, &[subject_id]).await
}

/// [`tombstone_subject`] of several subjects in one statement.
pub async fn tombstone_subjects(tx: &mut Transaction<'_, Postgres>, subject_ids: &[Uuid]) -> Result<()> {
    sqlx::query(
        r#"
        WITH cleared AS (UPDATE subject_identifiers SET value = NULL WHERE subject_id = ANY($1))
        UPDATE subjects SET external_id = NULL, state = 'erased', erased_at = COALESCE(erased_at, now())
        WHERE subject_id = ANY($1)
        "#,
    )
    .bind(subject_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
