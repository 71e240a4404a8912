//! What a job holds of the person only while it runs: the probes (their own
//! chunks' texts and vectors, for the semantic residual search) and the
//! identifiers the request gave. Both are deleted by the residual stage.

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
    sqlx::query("DELETE FROM erasure_probes WHERE job_id = $1").bind(job_id).execute(&mut **tx).await?;
    if probes.is_empty() {
        return Ok(());
    }
    // One statement for all probes (up to 256): the vectors travel as one
    // flat array, each probe as its slice.
    let collections: Vec<Uuid> = probes.iter().map(|p| p.collection_id).collect();
    let texts: Vec<Option<&str>> = probes.iter().map(|p| p.text.as_deref()).collect();
    let flat: Vec<f32> = probes.iter().flat_map(|p| p.vector.iter().copied()).collect();
    let (mut starts, mut lens) = (Vec::with_capacity(probes.len()), Vec::with_capacity(probes.len()));
    let mut at = 0i32;
    for p in probes {
        let len = i32::try_from(p.vector.len()).unwrap_or(i32::MAX);
        starts.push(at);
        lens.push(len);
        at = at.saturating_add(len);
    }
    sqlx::query(
        r#"
        INSERT INTO erasure_probes (job_id, ord, collection_id, text, vector)
        SELECT $1, (p.n - 1)::int, p.cid, p.txt, ($5::real[])[p.start + 1 : p.start + p.len]
        FROM UNNEST($2::uuid[], $3::text[], $4::int[], $6::int[]) WITH ORDINALITY AS p(cid, txt, start, len, n)
        "#,
    )
    .bind(job_id)
    .bind(&collections)
    .bind(&texts)
    .bind(&starts)
    .bind(&flat)
    .bind(&lens)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn probes(ex: impl PgExecutor<'_>, job_id: Uuid) -> Result<Vec<ProbeRow>> {
    Ok(sqlx::query_as("SELECT collection_id, text, vector FROM erasure_probes WHERE job_id = $1 ORDER BY ord")
        .bind(job_id)
        .fetch_all(ex)
        .await?)
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

pub async fn request_identifiers(ex: impl PgExecutor<'_>, job_id: Uuid) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as("SELECT kind, value FROM erasure_identifiers WHERE job_id = $1")
        .bind(job_id)
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
