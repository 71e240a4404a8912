//! Points read back from an attached table: by id, page by page in native
//! id order, and by exhaustive similarity search. Every point handed out
//! whose text id needs a lookup gets its `attached_point_ids` row first.

use pgvector::Vector;
use sqlx::Row;
use uuid::Uuid;

use super::rows::{self, RowPoint};
use super::sql::{Binds, Target};
use super::{AttachedPgStore, backend_error, classify, encode_error, inconsistent};
use crate::domain::{CollectionSpec, Distance, NativeId};
use crate::vector_store::{Result, ScoredPoint, StoredPoint, VectorStores};

/// How a search scores under a distance: the score Qdrant would give
/// (cosine and dot similarity: higher is closer; Euclid: the distance,
/// lower is closer), the threshold test and the best-first order.
fn scoring(distance: Distance, vector: &str) -> (String, &'static str, &'static str) {
    match distance {
        Distance::Cosine => (format!("1 - ({vector} <=> p.probe)"), ">=", "DESC"),
        Distance::Dot => (format!("-({vector} <#> p.probe)"), ">=", "DESC"),
        Distance::Euclid => (format!("{vector} <-> p.probe"), "<=", "ASC"),
    }
}

impl AttachedPgStore {
    /// Rows of a statement selecting [`Target::columns`], remembered.
    async fn fetch_points(&self, t: &Target<'_>, sql: &str, b: Binds, with_vectors: bool) -> Result<Vec<RowPoint>> {
        let spec = t.spec;
        let found = sqlx::query_with(sql, b.into_args().map_err(encode_error)?)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| classify(spec, e))?;
        let points = found
            .iter()
            .map(|r| rows::decode(t, r, with_vectors))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| classify(spec, e))?;
        rows::remember(&self.pool, spec.collection_id, &points).await.map_err(|e| classify(spec, e))?;
        Ok(points)
    }

    pub(super) async fn retrieve_points(
        &self,
        spec: &CollectionSpec,
        ids: &[Uuid],
        with_vectors: bool,
    ) -> Result<Vec<StoredPoint>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let t = self.target(spec).await?;
        let mut b = Binds::default();
        let scope = t.scope(&mut b).map_err(inconsistent)?;
        let cols = t.columns(&mut b, with_vectors).map_err(inconsistent)?;
        let ids = t.ids(&mut b, ids);
        let sql = format!("SELECT {cols} FROM {} t WHERE {scope} AND {ids}", t.table);
        let points = self.fetch_points(&t, &sql, b, with_vectors).await?;
        Ok(points.into_iter().map(|p| p.point).collect())
    }

    /// Keyset pagination in native id order: `offset` is the key of the
    /// first point of the page, the returned key that of the next page's.
    pub(super) async fn scroll_points(
        &self,
        spec: &CollectionSpec,
        offset: Option<Uuid>,
        limit: usize,
        with_vectors: bool,
    ) -> Result<(Vec<StoredPoint>, Option<Uuid>)> {
        let t = self.target(spec).await?;
        let mut b = Binds::default();
        let scope = t.scope(&mut b).map_err(inconsistent)?;
        let cols = t.columns(&mut b, with_vectors).map_err(inconsistent)?;
        let from = match offset {
            None => "TRUE".to_owned(),
            Some(key) => {
                let native = rows::native_of_key(&self.pool, t.mapping.id_kind, spec.collection_id, key)
                    .await
                    .map_err(|e| classify(spec, e))?
                    .ok_or_else(|| backend_error(format!("scroll offset {key} names no point of this table"), None))?;
                let at = match native {
                    NativeId::Uuid(u) => b.bind(u),
                    NativeId::Int(n) => b.bind(n),
                    NativeId::Text(s) => b.bind(s),
                };
                format!("{} >= {at}::{}", t.id(), t.id_type())
            }
        };
        let lim = b.bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX));
        let (table, id) = (&t.table, t.id());
        let sql = format!("SELECT {cols} FROM {table} t WHERE {scope} AND {from} ORDER BY {id} LIMIT {lim}");
        let mut points: Vec<StoredPoint> =
            self.fetch_points(&t, &sql, b, with_vectors).await?.into_iter().map(|p| p.point).collect();
        let next = if points.len() > limit { points.pop().map(|p| p.id) } else { None };
        Ok((points, next))
    }

    /// Every point in scope at least as similar as `threshold` to a probe,
    /// best first; computed row by row (never through an approximate index).
    pub(super) async fn search_points(
        &self,
        spec: &CollectionSpec,
        probes: &[Vec<f32>],
        threshold: f32,
        limit: usize,
    ) -> Result<Vec<ScoredPoint>> {
        if probes.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        for p in probes {
            VectorStores::check_dimension(spec, p)?;
        }
        let t = self.target(spec).await?;
        let mut b = Binds::default();
        let scope = t.scope(&mut b).map_err(inconsistent)?;
        let cols = t.columns(&mut b, false).map_err(inconsistent)?;
        let vector = t.col(&t.mapping.vector);
        let (score, test, order) = scoring(spec.distance, &vector);
        let probes_arg = b.bind(probes.iter().map(|p| Vector::from(p.clone())).collect::<Vec<_>>());
        let dim = b.bind(i32::try_from(spec.dimension).unwrap_or(i32::MAX));
        let thr = b.bind(f64::from(threshold));
        let lim = b.bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let (table, id) = (&t.table, t.id());
        // The CASE keeps the distance operator off vectors of another
        // dimension (a shared table may hold several), whatever order the
        // planner tests conditions in; NaN (a zero vector under cosine)
        // compares above every number in Postgres, so it is excluded.
        let sql = format!(
            r#"
            WITH scored AS (
                SELECT {id} AS sid, p.idx,
                       CASE WHEN vector_dims({vector}) = {dim} THEN {score} END AS score
                FROM {table} t
                CROSS JOIN UNNEST({probes_arg}::vector[]) WITH ORDINALITY AS p(probe, idx)
                WHERE {scope} AND {vector} IS NOT NULL
            ),
            best AS (
                SELECT DISTINCT ON (sid) sid, idx, score
                FROM scored
                WHERE score {test} {thr} AND score <> 'NaN'::float8
                ORDER BY sid, score {order}, idx
            )
            SELECT {cols}, s.score::real AS lethe_score, s.idx AS lethe_probe
            FROM best s
            JOIN {table} t ON {id} = s.sid
            ORDER BY s.score {order}, s.sid
            LIMIT {lim}
            "#
        );
        let found = sqlx::query_with(&sql, b.into_args().map_err(encode_error)?)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| classify(spec, e))?;
        let mut points = Vec::with_capacity(found.len());
        let mut scores = Vec::with_capacity(found.len());
        for row in &found {
            points.push(rows::decode(&t, row, false).map_err(|e| classify(spec, e))?);
            let score: f32 = row.try_get("lethe_score").map_err(|e| classify(spec, e))?;
            let idx: i64 = row.try_get("lethe_probe").map_err(|e| classify(spec, e))?;
            scores.push((score, usize::try_from(idx - 1).unwrap_or(0)));
        }
        rows::remember(&self.pool, spec.collection_id, &points).await.map_err(|e| classify(spec, e))?;
        Ok(points
            .into_iter()
            .zip(scores)
            .map(|(p, (score, probe))| ScoredPoint { id: p.point.id, score, probe, payload: p.point.payload })
            .collect())
    }
}
