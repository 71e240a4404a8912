//! What a job holds of the person only while it runs: the probes (their own
//! chunks' texts and vectors, for the semantic residual search) and the
//! identifiers the request gave. Both are deleted by the residual stage.

use std::collections::HashMap;

use sqlx::PgExecutor;
use uuid::Uuid;

use super::Result;
use super::jobs::HELD;
use super::lease::Lease;

/// A probe captured by the plan stage: one of the subject's own chunks.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProbeRow {
    pub collection_id: Uuid,
    pub text: Option<String>,
    pub vector: Vec<f32>,
}

/// Replaces the job's probes (idempotent).
pub async fn record_probes(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, job_id: Uuid, probes: &[ProbeRow]) -> Result<()> {
    record_probes_many(tx, &[(job_id, probes)]).await
}

/// Replaces several jobs' probes (idempotent), in two statements: one
/// delete, one insert of every probe, the vectors travelling as one flat
/// array, each probe as its slice.
pub async fn record_probes_many(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, jobs: &[(Uuid, &[ProbeRow])]) -> Result<()> {
    let ids: Vec<Uuid> = jobs.iter().map(|(id, _)| *id).collect();
    sqlx::query("DELETE FROM erasure_probes WHERE job_id = ANY($1)").bind(&ids).execute(&mut **tx).await?;
    let (mut owners, mut ords, mut collections, mut texts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut flat, mut starts, mut lens) = (Vec::new(), Vec::new(), Vec::new());
    for (job_id, probes) in jobs {
        for (ord, p) in (0i32..).zip(probes.iter()) {
            owners.push(*job_id);
            ords.push(ord);
            collections.push(p.collection_id);
            texts.push(p.text.as_deref());
            starts.push(i32::try_from(flat.len()).unwrap_or(i32::MAX));
            lens.push(i32::try_from(p.vector.len()).unwrap_or(i32::MAX));
            flat.extend_from_slice(&p.vector);
        }
    }
    if owners.is_empty() {
        return Ok(());
    }
    sqlx::query(
        r#"
        INSERT INTO erasure_probes (job_id, ord, collection_id, text, vector)
        SELECT p.job_id, p.ord, p.cid, p.txt, ($6::real[])[p.start + 1 : p.start + p.len]
        FROM UNNEST($1::uuid[], $2::int[], $3::uuid[], $4::text[], $5::int[], $7::int[]) AS p(job_id, ord, cid, txt, start, len)
        "#,
    )
    .bind(&owners)
    .bind(&ords)
    .bind(&collections)
    .bind(&texts)
    .bind(&starts)
    .bind(&flat)
    .bind(&lens)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The probes of several jobs in one query, by job id, each job's in
/// order (a job without probes is absent).
pub async fn probes_many(ex: impl PgExecutor<'_>, job_ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<ProbeRow>>> {
    let rows: Vec<(Uuid, Uuid, Option<String>, Vec<f32>)> = sqlx::query_as(
        "SELECT job_id, collection_id, text, vector FROM erasure_probes WHERE job_id = ANY($1) ORDER BY job_id, ord",
    )
    .bind(job_ids)
    .fetch_all(ex)
    .await?;
    let mut by_job: HashMap<Uuid, Vec<ProbeRow>> = HashMap::new();
    for (job_id, collection_id, text, vector) in rows {
        by_job.entry(job_id).or_default().push(ProbeRow { collection_id, text, vector });
    }
    Ok(by_job)
}

/// Forgets the job's probes, unless `lease` no longer holds the job.
pub async fn delete_probes(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease) -> Result<()> {
    sqlx::query(&format!("DELETE FROM erasure_probes WHERE job_id = $1 AND {HELD}"))
        .bind(job_id)
        .bind(lease.owner)
        .bind(lease.epoch)
        .execute(ex)
        .await?;
    Ok(())
}

/// Keeps the identifiers an Erase request gave, for the job's residual
/// stage (an erased subject's own identifiers are hashes only).
pub async fn insert_request_identifiers(
    ex: impl PgExecutor<'_>,
    job_id: Uuid,
    identifiers: &[(String, String)],
) -> Result<()> {
    if identifiers.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = identifiers.iter().map(|(k, _)| k.as_str()).collect();
    let values: Vec<&str> = identifiers.iter().map(|(_, v)| v.as_str()).collect();
    sqlx::query("INSERT INTO erasure_identifiers (job_id, kind, value) SELECT $1, k, v FROM UNNEST($2::text[], $3::text[]) AS i(k, v)")
        .bind(job_id)
        .bind(&kinds)
        .bind(&values)
        .execute(ex)
        .await?;
    Ok(())
}

/// The residual stage's identifiers in one query: the request's
/// (`erasure_identifiers`, in clear until searched) and the subject's own
/// clear ones (none once it is a tombstone), as `(request's, subject's)`.
pub async fn residual_identifiers(ex: impl PgExecutor<'_>, job_id: Uuid, subject_id: Uuid) -> Result<ResidualIdentifiers> {
    Ok(residual_identifiers_many(ex, &[(job_id, subject_id)]).await?.remove(&job_id).unwrap_or_default())
}

/// Identifiers of the request and of the subject (see
/// [`residual_identifiers`]).
pub type ResidualIdentifiers = (Vec<(String, String)>, Vec<(String, String)>);

/// [`residual_identifiers`] of several jobs (`(job, subject)`) in one
/// query, by job id; every job is present.
pub async fn residual_identifiers_many(ex: impl PgExecutor<'_>, jobs: &[(Uuid, Uuid)]) -> Result<HashMap<Uuid, ResidualIdentifiers>> {
    let (job_ids, subject_ids): (Vec<Uuid>, Vec<Uuid>) = jobs.iter().copied().unzip();
    let rows: Vec<(Uuid, String, String, bool)> = sqlx::query_as(
        r#"
        SELECT i.job_id, i.kind, i.value, true FROM erasure_identifiers i WHERE i.job_id = ANY($1)
        UNION ALL
        SELECT j.job_id, s.kind, s.value, false
        FROM UNNEST($1::uuid[], $2::uuid[]) AS j(job_id, subject_id)
        -- Probed per job (`OFFSET 0` keeps the subquery from being joined
        -- as a table): the workers' generic plan otherwise read the whole
        -- table, most of whose values are erased (NULL).
        CROSS JOIN LATERAL (
            SELECT i.kind, i.value FROM subject_identifiers i
            WHERE i.subject_id = j.subject_id AND i.value IS NOT NULL OFFSET 0
        ) s
        "#,
    )
    .bind(&job_ids)
    .bind(&subject_ids)
    .fetch_all(ex)
    .await?;
    let mut by_job: HashMap<Uuid, ResidualIdentifiers> = job_ids.iter().map(|id| (*id, Default::default())).collect();
    for (job_id, kind, value, requested) in rows {
        let (of_request, of_subject) = by_job.entry(job_id).or_default();
        if requested { of_request } else { of_subject }.push((kind, value));
    }
    Ok(by_job)
}

/// What the residual stage no longer needs, in one statement: the job's
/// probes and the request's identifiers (then `erasure_identifiers` joins
/// the tables to rewrite, when `requested`). False, with nothing changed,
/// when `lease` no longer holds the job.
pub async fn forget_residual_inputs(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease, requested: bool) -> Result<bool> {
    Ok(!forget_residual_inputs_many(ex, &[(job_id, lease, requested)]).await?.is_empty())
}

/// [`forget_residual_inputs`] of several jobs (`(job, lease, requested)`)
/// in one statement: the jobs whose lease still holds them (the others keep
/// theirs).
pub async fn forget_residual_inputs_many(ex: impl PgExecutor<'_>, jobs: &[(Uuid, Lease, bool)]) -> Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.0).collect();
    let owners: Vec<Uuid> = jobs.iter().map(|j| j.1.owner).collect();
    let epochs: Vec<i64> = jobs.iter().map(|j| j.1.epoch).collect();
    let requested: Vec<bool> = jobs.iter().map(|j| j.2).collect();
    Ok(sqlx::query_scalar(
        r#"
        WITH held AS MATERIALIZED (
            SELECT h.job_id, r.requested
            FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::bool[]) AS r(job_id, owner, epoch, requested)
            JOIN erasure_jobs h ON h.job_id = r.job_id AND h.lease_owner = r.owner AND h.lease_epoch = r.epoch
                               AND h.status = 'in_progress'
        ),
        probes AS (DELETE FROM erasure_probes WHERE job_id IN (SELECT job_id FROM held)),
        identifiers AS (DELETE FROM erasure_identifiers WHERE job_id IN (SELECT job_id FROM held)),
        tables AS (
            UPDATE erasure_jobs
            SET rewrite_tables = ARRAY(SELECT DISTINCT t FROM unnest(rewrite_tables || '{erasure_identifiers}'::text[]) AS t ORDER BY t)
            WHERE job_id IN (SELECT job_id FROM held WHERE requested)
        )
        SELECT job_id FROM held
        "#,
    )
    .bind(&ids)
    .bind(&owners)
    .bind(&epochs)
    .bind(&requested)
    .fetch_all(ex)
    .await?)
}

/// Once searched, a request's identifiers are not kept in clear (unless
/// `lease` no longer holds the job: its new holder searches them again).
pub async fn delete_request_identifiers(ex: impl PgExecutor<'_>, job_id: Uuid, lease: Lease) -> Result<()> {
    sqlx::query(&format!("DELETE FROM erasure_identifiers WHERE job_id = $1 AND {HELD}"))
        .bind(job_id)
        .bind(lease.owner)
        .bind(lease.epoch)
        .execute(ex)
        .await?;
    Ok(())
}
