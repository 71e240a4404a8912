//! The erasure ledger (restore guard, issue 16): the tombstones (`subjects`
//! in state `erased` with their key and identifier hashes) and the keyed
//! hashes of the points each erasure deleted (`erased_point_sets`, one row
//! per collection, subject, job and cause). What the export reads, what an
//! import writes, and what the erase job records.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use super::Result;

/// A point of the ledger: its keyed hash in its collection, the person it
/// was erased for, and how.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ErasedPoint {
    pub collection_id: Uuid,
    pub point_hash: Vec<u8>,
    pub subject_hash: Vec<u8>,
    pub job_id: Option<Uuid>,
    pub cause: String,
}

/// Point hashes by group: (collection, subject hash, job, cause).
type Groups<'a> = BTreeMap<(Uuid, &'a [u8], Option<Uuid>, &'a str), Vec<&'a [u8]>>;

/// Records erased points, each in its group's set (collection, subject,
/// job, cause: one row of `erased_point_sets`); a point already in its
/// group stays as first recorded. Returns how many were new to their group.
pub async fn record_points(ex: impl PgExecutor<'_>, tenant_id: Uuid, points: &[ErasedPoint]) -> Result<u64> {
    let mut groups: Groups<'_> = BTreeMap::new();
    for p in points {
        groups.entry((p.collection_id, &p.subject_hash, p.job_id, &p.cause)).or_default().push(&p.point_hash);
    }
    record_sets(ex, tenant_id, groups).await
}

/// A point an erase job deleted: (collection, point hash, cause).
pub type JobPoint = (Uuid, Vec<u8>, String);

/// Records the points erase jobs of one tenant deleted, each job for its
/// subject (`(job, subject hash, points)`), in one statement; see
/// [`record_points`].
pub async fn record_jobs_points(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    jobs: &[(Uuid, &[u8], Vec<JobPoint>)],
) -> Result<u64> {
    let mut groups: Groups<'_> = BTreeMap::new();
    for (job_id, subject_hash, points) in jobs {
        for (collection_id, hash, cause) in points {
            groups.entry((*collection_id, subject_hash, Some(*job_id), cause)).or_default().push(hash);
        }
    }
    record_sets(ex, tenant_id, groups).await
}

/// One statement for every group: each group's hashes, sorted and distinct,
/// a slice of one flat array; a group already recorded gets the union.
async fn record_sets(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    groups: Groups<'_>,
) -> Result<u64> {
    if groups.is_empty() {
        return Ok(0);
    }
    let n = groups.len();
    let (mut collections, mut subjects, mut jobs, mut causes) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut bounds, mut hashes): (Vec<(i32, i32)>, Vec<&[u8]>) = (Vec::with_capacity(n), Vec::new());
    for ((collection_id, subject_hash, job_id, cause), mut points) in groups {
        points.sort_unstable();
        points.dedup();
        collections.push(collection_id);
        subjects.push(subject_hash);
        jobs.push(job_id);
        causes.push(cause);
        // SQL arrays count from 1; a slice's bounds are inclusive.
        let lo = i32::try_from(hashes.len() + 1).map_err(|_| too_many())?;
        hashes.extend(points);
        bounds.push((lo, i32::try_from(hashes.len()).map_err(|_| too_many())?));
    }
    let (lo, hi): (Vec<i32>, Vec<i32>) = bounds.into_iter().unzip();
    // `old` reads the groups as they were before this statement: the
    // difference is what it added.
    let added: i64 = sqlx::query_scalar(
        r#"
        WITH input AS (
            SELECT g.c, g.s, g.j, g.k, $8::bytea[] AS all_points, g.lo, g.hi
            FROM UNNEST($2::uuid[], $3::bytea[], $4::uuid[], $5::text[], $6::int[], $7::int[]) AS g(c, s, j, k, lo, hi)
        ), old AS (
            SELECT cardinality(e.points) AS n
            FROM erased_point_sets e JOIN input i
              ON e.tenant_id = $1 AND e.collection_id = i.c AND e.subject_hash = i.s
             AND e.job_id IS NOT DISTINCT FROM i.j AND e.cause = i.k
        ), up AS (
            INSERT INTO erased_point_sets AS e (tenant_id, collection_id, subject_hash, job_id, cause, points)
            SELECT $1, c, s, j, k, all_points[lo:hi] FROM input
            ON CONFLICT (tenant_id, collection_id, subject_hash, job_id, cause) DO UPDATE
            SET points = ARRAY(SELECT DISTINCT p FROM unnest(e.points || EXCLUDED.points) AS p ORDER BY p)
            RETURNING cardinality(e.points) AS n
        )
        SELECT (SELECT COALESCE(sum(n), 0) FROM up)::bigint - (SELECT COALESCE(sum(n), 0) FROM old)::bigint
        "#,
    )
    .bind(tenant_id)
    .bind(&collections)
    .bind(&subjects)
    .bind(&jobs)
    .bind(&causes)
    .bind(&lo)
    .bind(&hi)
    .bind(&hashes)
    .fetch_one(ex)
    .await?;
    Ok(u64::try_from(added).unwrap_or(0))
}

/// Over 2^31 hashes in one statement: callers record in batches far below.
fn too_many() -> super::StoreError {
    super::StoreError::Unexpected(sqlx::Error::Protocol("more erased points than one statement can record".into()))
}

/// The points erase jobs deleted (`(job, subject)`), as (collection, point
/// id, cause) by job: each job's planned lineage points that are no longer
/// its subject's (those kept under a legal hold keep their lineage) and the
/// residual candidates it deleted. Read at the log stage, before the plans'
/// point ids are forgotten; one query for every job. A subject that kept
/// no tag at all (the usual case) is not probed point by point: for a
/// subject of 10,000 just-deleted tags the statement took 14 ms with a
/// probe per point, 3.1 ms with the subject's one look (`EXPLAIN ANALYZE`).
pub async fn points_of_erasures(ex: impl PgExecutor<'_>, jobs: &[(Uuid, Uuid)]) -> Result<HashMap<Uuid, Vec<(Uuid, Uuid, String)>>> {
    let (job_ids, subject_ids): (Vec<Uuid>, Vec<Uuid>) = jobs.iter().copied().unzip();
    let rows: Vec<(Uuid, Uuid, Uuid, String)> = sqlx::query_as(
        r#"
        WITH asked AS MATERIALIZED (
            SELECT j.job_id, j.subject_id,
                   EXISTS (SELECT 1 FROM chunk_subjects cs WHERE cs.subject_id = j.subject_id) AS keeps
            FROM UNNEST($1::uuid[], $2::uuid[]) AS j(job_id, subject_id)
        )
        SELECT j.job_id, e.collection_id, p.point_id, 'erasure' AS cause
        FROM asked j
        JOIN erasure_counts e ON e.job_id = j.job_id
        CROSS JOIN LATERAL UNNEST(e.plan_points) AS p(point_id)
        WHERE NOT (j.keeps AND EXISTS (SELECT 1 FROM chunk_subjects cs WHERE cs.chunk_id = p.point_id AND cs.subject_id = j.subject_id))
        UNION ALL
        SELECT j.job_id, (c->>'collection_id')::uuid, (c->>'point_id')::uuid, 'residual'
        FROM erasure_jobs j, jsonb_array_elements(CASE WHEN jsonb_typeof(j.residuals) = 'array' THEN j.residuals ELSE '[]' END) c
        WHERE j.job_id = ANY($1) AND c->>'action' = 'deleted'
        "#,
    )
    .bind(&job_ids)
    .bind(&subject_ids)
    .fetch_all(ex)
    .await?;
    let mut by_job: HashMap<Uuid, Vec<(Uuid, Uuid, String)>> = HashMap::new();
    for (job_id, collection_id, point_id, cause) in rows {
        by_job.entry(job_id).or_default().push((collection_id, point_id, cause));
    }
    Ok(by_job)
}

/// The ledger's points in one collection, one row each: (point hash,
/// subject hash, since) of its latest erasure,
/// `since` the earliest moment the point is known erased: its erasure's
/// request (while the job is on record), the subject's tombstone, the
/// record. A chunk of lineage written after it is not a restore's copy.
pub async fn collection_points(
    ex: impl PgExecutor<'_>,
    tenant_id: Uuid,
    collection_id: Uuid,
) -> Result<Vec<(Vec<u8>, Vec<u8>, DateTime<Utc>)>> {
    Ok(sqlx::query_as(
        r#"
        SELECT DISTINCT ON (point_hash) point_hash, subject_hash, since FROM (
            SELECT p.point_hash, s.subject_hash, min(LEAST(s.erased_at, sub.erased_at, j.received_at)) AS since
            FROM erased_point_sets s
            CROSS JOIN LATERAL unnest(s.points) AS p(point_hash)
            LEFT JOIN subjects sub ON sub.tenant_id = s.tenant_id AND sub.subject_hash = s.subject_hash
            LEFT JOIN erasure_jobs j ON j.job_id = s.job_id
            WHERE s.tenant_id = $1 AND s.collection_id = $2
            GROUP BY p.point_hash, s.subject_hash
        ) per_subject
        -- A point erased for several people: its latest erasure (a chunk
        -- written between two of them is a restore's copy of the later).
        ORDER BY point_hash, since DESC
        "#,
    )
    .bind(tenant_id)
    .bind(collection_id)
    .fetch_all(ex)
    .await?)
}

/// A tombstone as the ledger carries it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Tombstone {
    pub subject_hash: Vec<u8>,
    pub erased_at: Option<DateTime<Utc>>,
    /// The latest erasure of the subject that was not refused.
    pub job_id: Option<Uuid>,
    /// Match keys (`subject_keys`): what suppresses the person's other ids.
    pub keys: Vec<Vec<u8>>,
    /// Identifier kinds and keyed hashes (`subject_identifiers`), same order.
    pub identifier_kinds: Vec<String>,
    pub identifier_hashes: Vec<Vec<u8>>,
}

/// The tenant's tombstones, in hash order, as a stream (an export reads
/// them in one statement).
pub fn tombstones(pool: &sqlx::PgPool, tenant_id: Uuid) -> BoxStream<'_, Result<Tombstone>> {
    sqlx::query_as(
        r#"
        SELECT s.subject_hash, s.erased_at,
               (SELECT j.job_id FROM erasure_jobs j WHERE j.subject_id = s.subject_id AND j.status <> 'refused'
                ORDER BY j.received_at DESC LIMIT 1) AS job_id,
               ARRAY(SELECT k.key_hash FROM subject_keys k WHERE k.subject_id = s.subject_id ORDER BY k.key_hash) AS keys,
               ARRAY(SELECT i.kind FROM subject_identifiers i WHERE i.subject_id = s.subject_id
                     ORDER BY i.kind, i.value_hash) AS identifier_kinds,
               ARRAY(SELECT i.value_hash FROM subject_identifiers i WHERE i.subject_id = s.subject_id
                     ORDER BY i.kind, i.value_hash) AS identifier_hashes
        FROM subjects s
        WHERE s.tenant_id = $1 AND s.state = 'erased'
        ORDER BY s.subject_hash
        "#,
    )
    .bind(tenant_id)
    .fetch(pool)
    .map(|r| r.map_err(super::StoreError::from))
    .boxed()
}

/// The tenant's erased points as a stream, grouped: ordered by collection,
/// subject, job and cause (an export writes one line per group).
pub fn points(pool: &sqlx::PgPool, tenant_id: Uuid) -> BoxStream<'_, Result<ErasedPoint>> {
    sqlx::query_as(
        r#"
        SELECT s.collection_id, p.point_hash, s.subject_hash, s.job_id, s.cause
        FROM erased_point_sets s, unnest(s.points) AS p(point_hash)
        WHERE s.tenant_id = $1
        ORDER BY s.collection_id, s.subject_hash, s.job_id NULLS FIRST, s.cause, p.point_hash
        "#,
    )
    .bind(tenant_id)
    .fetch(pool)
    .map(|r| r.map_err(super::StoreError::from))
    .boxed()
}

/// What importing one tombstone did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// No subject had the hash: a tombstone was made.
    Created,
    /// A subject that a restore brought back (active, frozen or a suppressed
    /// alias) is a tombstone again: its caller id is gone, its lineage waits
    /// for Reconcile. Its identifiers are still in clear, for the caller to
    /// key under the current rules before [`clear_identifier_values`].
    ReErased(Uuid),
    /// The subject was a tombstone already (missing key hashes were added).
    Known,
    /// The subject is under legal hold now: left as it is.
    Held,
}

/// Applies one tombstone of an imported ledger (see [`Imported`]).
///
/// `lock_key` is the subject's advisory-lock key: a subject made a tombstone
/// again waits for the writes tagged with it that are in flight, as the
/// erase job's freeze does.
pub async fn import_tombstone(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    t: &Tombstone,
    lock_key: i64,
) -> Result<Imported> {
    // The advisory lock before the row lock, in the order ingestion takes them.
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM subjects WHERE tenant_id = $1 AND subject_hash = $2")
        .bind(tenant_id)
        .bind(&t.subject_hash)
        .fetch_optional(&mut **tx)
        .await?;
    // A subject unknown here is locked too: a write tagged with it that
    // checked it before this import (nothing to suppress then) would
    // otherwise write its lineage and vectors under the new tombstone.
    if state.is_none_or(|s| s != "erased") {
        super::subjects::lock_subject_exclusive(tx, lock_key).await?;
    }
    let mut existing = subject_for_import(tx, tenant_id, &t.subject_hash).await?;
    if existing.is_none() {
        let id = Uuid::now_v7();
        let created: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO subjects (subject_id, tenant_id, external_id, subject_hash, state, erased_at) \
             VALUES ($1, $2, NULL, $3, 'erased', COALESCE($4, now())) \
             ON CONFLICT (tenant_id, subject_hash) DO NOTHING RETURNING subject_id",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(&t.subject_hash)
        .bind(t.erased_at)
        .fetch_optional(&mut **tx)
        .await?;
        // Written by another transaction since the read: taken as it is now.
        existing = match created {
            Some(_) => None,
            None => subject_for_import(tx, tenant_id, &t.subject_hash).await?,
        };
        if existing.is_none() {
            return finish_import(tx, tenant_id, id, t, Imported::Created).await;
        }
    }
    let (subject_id, outcome) = match existing {
        Some((_, _, true)) => return Ok(Imported::Held),
        Some((id, state, false)) if state == "erased" => (id, Imported::Known),
        Some((id, _, false)) => {
            re_erase(tx, id, t.erased_at).await?;
            (id, Imported::ReErased(id))
        }
        None => unreachable!("read or created above"),
    };
    finish_import(tx, tenant_id, subject_id, t, outcome).await
}

/// The subject with `hash`, locked: (id, state, legal hold).
async fn subject_for_import(tx: &mut Transaction<'_, Postgres>, tenant_id: Uuid, hash: &[u8]) -> Result<Option<(Uuid, String, bool)>> {
    Ok(sqlx::query_as("SELECT subject_id, state, legal_hold FROM subjects WHERE tenant_id = $1 AND subject_hash = $2 FOR UPDATE")
        .bind(tenant_id)
        .bind(hash)
        .fetch_optional(&mut **tx)
        .await?)
}

/// The tombstone's match keys and identifier hashes, added to the subject.
async fn finish_import(
    tx: &mut Transaction<'_, Postgres>,
    tenant_id: Uuid,
    subject_id: Uuid,
    t: &Tombstone,
    outcome: Imported,
) -> Result<Imported> {
    super::subjects::add_keys(&mut **tx, tenant_id, subject_id, &t.keys).await?;
    sqlx::query(
        r#"
        INSERT INTO subject_identifiers (subject_id, tenant_id, kind, value, value_hash)
        SELECT $1, $2, k, NULL, h FROM UNNEST($3::text[], $4::bytea[]) AS i(k, h)
        ON CONFLICT (subject_id, kind, value_hash) DO NOTHING
        "#,
    )
    .bind(subject_id)
    .bind(tenant_id)
    .bind(&t.identifier_kinds)
    .bind(&t.identifier_hashes)
    .execute(&mut **tx)
    .await?;
    Ok(outcome)
}

/// Makes a restored subject a tombstone again: what its erasure's forget
/// stage did to the row and its finished jobs (its identifiers' values go
/// with [`clear_identifier_values`], once keyed).
async fn re_erase(tx: &mut Transaction<'_, Postgres>, subject_id: Uuid, erased_at: Option<DateTime<Utc>>) -> Result<()> {
    sqlx::query(
        r#"
        UPDATE subjects SET external_id = NULL, state = 'erased', erased_at = COALESCE(erased_at, $2, now())
        WHERE subject_id = $1
        "#,
    )
    .bind(subject_id)
    .bind(erased_at)
    .execute(&mut **tx)
    .await?;
    scrub_finished_jobs(&mut **tx, &[subject_id]).await?;
    Ok(())
}

/// Forgets the values of the subjects' identifiers (their keyed hashes stay).
pub async fn clear_identifier_values(ex: impl PgExecutor<'_>, subject_ids: &[Uuid]) -> Result<()> {
    sqlx::query("UPDATE subject_identifiers SET value = NULL WHERE subject_id = ANY($1) AND value IS NOT NULL")
        .bind(subject_ids)
        .execute(ex)
        .await?;
    Ok(())
}

/// Forgets what finished erase jobs of the subjects still hold in clear (a
/// restore of a backup taken while they ran brings it back): the caller's
/// id and the identifiers the request gave. Running jobs keep theirs until
/// their own stages forget them.
pub async fn scrub_finished_jobs(ex: impl PgExecutor<'_>, subject_ids: &[Uuid]) -> Result<()> {
    sqlx::query(
        r#"
        WITH jobs AS (
            UPDATE erasure_jobs SET subject_tag = NULL
            WHERE subject_id = ANY($1) AND status NOT IN ('queued', 'in_progress')
            RETURNING job_id
        )
        DELETE FROM erasure_identifiers WHERE job_id IN (SELECT job_id FROM jobs)
        "#,
    )
    .bind(subject_ids)
    .execute(ex)
    .await?;
    Ok(())
}

/// Erased subjects of the tenant that hold something in clear again (their
/// caller id or an identifier value, or a finished job's tag or request
/// identifiers): restored from a backup without going through an import.
/// Returns (subject id, under legal hold).
pub async fn erased_with_plaintext(ex: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Vec<(Uuid, bool)>> {
    Ok(sqlx::query_as(
        r#"
        SELECT s.subject_id, s.legal_hold FROM subjects s
        WHERE s.tenant_id = $1 AND s.state = 'erased'
          AND (s.external_id IS NOT NULL
               OR EXISTS (SELECT 1 FROM subject_identifiers i WHERE i.subject_id = s.subject_id AND i.value IS NOT NULL)
               OR EXISTS (SELECT 1 FROM erasure_jobs j WHERE j.subject_id = s.subject_id
                          AND j.status NOT IN ('queued', 'in_progress')
                          AND (j.subject_tag IS NOT NULL
                               OR EXISTS (SELECT 1 FROM erasure_identifiers e WHERE e.job_id = j.job_id))))
        "#,
    )
    .bind(tenant_id)
    .fetch_all(ex)
    .await?)
}

/// Clears the caller ids and identifier values of erased subjects.
pub async fn clear_erased_plaintext(ex: impl PgExecutor<'_>, subject_ids: &[Uuid]) -> Result<()> {
    sqlx::query(
        r#"
        WITH cleared AS (UPDATE subject_identifiers SET value = NULL WHERE subject_id = ANY($1) AND value IS NOT NULL)
        UPDATE subjects SET external_id = NULL WHERE subject_id = ANY($1) AND state = 'erased'
        "#,
    )
    .bind(subject_ids)
    .execute(ex)
    .await?;
    Ok(())
}

/// What an import of one ledger has done so far, over all its attempts.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct ImportProgress {
    pub import_id: Uuid,
    pub tombstones_created: i64,
    pub subjects_re_erased: i64,
    pub points_added: i64,
    pub re_erased: Vec<String>,
}

/// The unfinished import of the ledger `sha256` (one cut off before its
/// log entry), or a new one.
pub async fn open_import(ex: impl PgExecutor<'_>, tenant_id: Uuid, sha256: &str) -> Result<ImportProgress> {
    Ok(sqlx::query_as(
        r#"
        INSERT INTO ledger_imports (import_id, tenant_id, ledger_sha256) VALUES ($1, $2, $3)
        ON CONFLICT (tenant_id, ledger_sha256) WHERE log_seq IS NULL DO UPDATE SET started_at = ledger_imports.started_at
        RETURNING import_id, tombstones_created, subjects_re_erased, points_added, re_erased
        "#,
    )
    .bind(Uuid::now_v7())
    .bind(tenant_id)
    .bind(sha256)
    .fetch_one(ex)
    .await?)
}

/// Adds a batch's work to its import, in the batch's transaction; false
/// when the import was logged meanwhile (by another attempt at the ledger).
pub async fn add_import_progress(
    ex: impl PgExecutor<'_>,
    import_id: Uuid,
    (created, re_erased, points_added): (i64, i64, i64),
    re_erased_hashes: &[String],
) -> Result<bool> {
    let done = sqlx::query(
        r#"
        UPDATE ledger_imports SET tombstones_created = tombstones_created + $2, subjects_re_erased = subjects_re_erased + $3,
               points_added = points_added + $4, re_erased = re_erased || $5
        WHERE import_id = $1 AND log_seq IS NULL
        "#,
    )
    .bind(import_id)
    .bind(created)
    .bind(re_erased)
    .bind(points_added)
    .bind(re_erased_hashes)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends an import: its log entry (`0`: nothing to log), and its sums as
/// they are now (another attempt may have added to them).
pub async fn close_import(ex: impl PgExecutor<'_>, import_id: Uuid, log_seq: i64) -> Result<()> {
    sqlx::query("UPDATE ledger_imports SET log_seq = $2 WHERE import_id = $1").bind(import_id).bind(log_seq).execute(ex).await?;
    Ok(())
}

/// An import's sums, locked until the transaction ends (two attempts at once
/// log it once).
pub async fn lock_import(tx: &mut Transaction<'_, Postgres>, import_id: Uuid) -> Result<Option<ImportProgress>> {
    Ok(sqlx::query_as(
        "SELECT import_id, tombstones_created, subjects_re_erased, points_added, re_erased FROM ledger_imports \
         WHERE import_id = $1 AND log_seq IS NULL FOR UPDATE",
    )
    .bind(import_id)
    .fetch_optional(&mut **tx)
    .await?)
}
