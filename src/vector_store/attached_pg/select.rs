//! Counts and deletes of selected points (by tag and ids, minus what a
//! [`Keep`] keeps), and the physical reclaim after deletes.

use sqlx::Row;
use uuid::Uuid;

use super::sql::{Binds, Target};
use super::{AttachedPgStore, classify, count_of, encode_error, inconsistent, rows};
use crate::domain::{CollectionSpec, IdKind};
use crate::vector_store::{Keep, PhysicalOutcome, Result, Selector};

/// Fragments shared by the statements below.
struct Parts {
    scope: String,
    tag: String,
}

fn parts(t: &Target<'_>, b: &mut Binds, tag: Option<&str>) -> Result<Parts> {
    let scope = t.scope(b).map_err(inconsistent)?;
    let tags: Vec<String> = tag.map(str::to_owned).into_iter().collect();
    let tag = t.tags(b, &tags).map_err(inconsistent)?;
    Ok(Parts { scope, tag })
}

/// `NOT (keeps)`; NULL tags count as not kept.
fn except(t: &Target<'_>, b: &mut Binds, keep: &Keep) -> Result<String> {
    let tags = t.tags(b, &keep.tags).map_err(inconsistent)?;
    let ids = t.ids(b, &keep.ids);
    Ok(format!("NOT COALESCE(({tags}) OR ({ids}), FALSE)"))
}

impl AttachedPgStore {
    /// Exact count of what `selector` selects in scope, minus `keep`'s.
    pub(super) async fn count_selected(
        &self,
        spec: &CollectionSpec,
        selector: &Selector,
        keep: Option<&Keep>,
    ) -> Result<u64> {
        if selector.is_empty() {
            return Ok(0);
        }
        let t = self.target(spec).await?;
        let mut b = Binds::default();
        let Parts { scope, tag } = parts(&t, &mut b, selector.tag.as_deref())?;
        let ids = t.ids(&mut b, &selector.ids);
        let except = match keep {
            Some(k) if !k.is_empty() => except(&t, &mut b, k)?,
            _ => "TRUE".into(),
        };
        let table = &t.table;
        let sql = format!("SELECT count(*) FROM {table} t WHERE {scope} AND ({tag} OR {ids}) AND {except}");
        let n: i64 = sqlx::query_scalar_with(&sql, b.into_args().map_err(encode_error)?)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| classify(spec, e))?;
        Ok(count_of(n))
    }

    /// Exact number of points in scope.
    pub(super) async fn count_scope(&self, spec: &CollectionSpec) -> Result<u64> {
        let t = self.target(spec).await?;
        let mut b = Binds::default();
        let scope = t.scope(&mut b).map_err(inconsistent)?;
        let sql = format!("SELECT count(*) FROM {} t WHERE {scope}", t.table);
        let n: i64 = sqlx::query_scalar_with(&sql, b.into_args().map_err(encode_error)?)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| classify(spec, e))?;
        Ok(count_of(n))
    }

    /// `[by tag, by ids, by tag or ids]` in one round trip (see pgvector's):
    /// the tag through its index, the ids only where the tag did not reach.
    pub(super) async fn count_split(&self, spec: &CollectionSpec, tag: Option<&str>, ids: &[Uuid]) -> Result<[u64; 3]> {
        if tag.is_none() && ids.is_empty() {
            return Ok([0, 0, 0]);
        }
        let t = self.target(spec).await?;
        let mut b = Binds::default();
        let Parts { scope, tag } = parts(&t, &mut b, tag)?;
        let wanted = t.id_array(&mut b, ids);
        let (table, id) = (&t.table, t.id());
        let sql = format!(
            r#"
            WITH tagged AS MATERIALIZED (
                SELECT {id} AS id FROM {table} t WHERE {scope} AND {tag}
            ),
            wanted AS MATERIALIZED (SELECT DISTINCT u.id FROM UNNEST({wanted}) AS u(id)),
            untagged AS MATERIALIZED (
                SELECT {id} AS id
                FROM {table} t
                JOIN (SELECT w.id FROM wanted w
                      WHERE NOT EXISTS (SELECT 1 FROM tagged g WHERE g.id = w.id)) r ON {id} = r.id
                WHERE {scope}
            )
            SELECT (SELECT count(*) FROM tagged),
                   (SELECT count(*) FROM wanted w WHERE EXISTS (SELECT 1 FROM tagged g WHERE g.id = w.id))
                     + (SELECT count(*) FROM untagged),
                   (SELECT count(*) FROM untagged)
            "#
        );
        let (by_tag, by_ids, untagged): (i64, i64, i64) =
            sqlx::query_as_with(&sql, b.into_args().map_err(encode_error)?)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| classify(spec, e))?;
        Ok([count_of(by_tag), count_of(by_ids), count_of(by_tag) + count_of(untagged)])
    }

    /// Deletes everything tagged, then the ids the tag did not reach.
    pub(super) async fn delete_split(&self, spec: &CollectionSpec, selector: &Selector) -> Result<()> {
        if selector.is_empty() {
            return Ok(());
        }
        let t = self.target(spec).await?;
        let mut b = Binds::default();
        let Parts { scope, tag } = parts(&t, &mut b, selector.tag.as_deref())?;
        let wanted = t.id_array(&mut b, &selector.ids);
        let (table, id) = (&t.table, t.id());
        let sql = format!(
            r#"
            WITH by_tag AS (
                DELETE FROM {table} t WHERE {scope} AND {tag} RETURNING {id} AS id
            ),
            by_ids AS (
                DELETE FROM {table} t
                USING (SELECT DISTINCT u.id FROM UNNEST({wanted}) AS u(id)
                       WHERE NOT EXISTS (SELECT 1 FROM by_tag g WHERE g.id = u.id)) r
                WHERE {id} = r.id AND {scope}
                RETURNING {id} AS id
            )
            SELECT id::text FROM by_tag UNION ALL SELECT id::text FROM by_ids
            "#
        );
        self.delete_returning(&t, &sql, b).await
    }

    /// Deletes what `selector` selects except what `keep` keeps.
    pub(super) async fn delete_except(&self, spec: &CollectionSpec, selector: &Selector, keep: &Keep) -> Result<()> {
        if selector.is_empty() {
            return Ok(());
        }
        let t = self.target(spec).await?;
        let mut b = Binds::default();
        let Parts { scope, tag } = parts(&t, &mut b, selector.tag.as_deref())?;
        let ids = t.ids(&mut b, &selector.ids);
        let except = except(&t, &mut b, keep)?;
        let (table, id) = (&t.table, t.id());
        let sql = format!("DELETE FROM {table} t WHERE {scope} AND ({tag} OR {ids}) AND {except} RETURNING {id}::text");
        self.delete_returning(&t, &sql, b).await
    }

    /// Runs a delete that returns the deleted ids as text and, for text ids,
    /// deletes their `attached_point_ids` rows in the same transaction.
    async fn delete_returning(&self, t: &Target<'_>, sql: &str, b: Binds) -> Result<()> {
        let spec = t.spec;
        let args = b.into_args().map_err(encode_error)?;
        if t.mapping.id_kind != IdKind::Text {
            sqlx::query_with(sql, args).execute(&self.pool).await.map_err(|e| classify(spec, e))?;
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(|e| classify(spec, e))?;
        let deleted = sqlx::query_with(sql, args).fetch_all(&mut *tx).await.map_err(|e| classify(spec, e))?;
        let ids = deleted.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<Vec<_>, _>>();
        let ids = ids.map_err(|e| classify(spec, e))?;
        rows::forget(&mut *tx, spec.collection_id, ids).await.map_err(|e| classify(spec, e))?;
        tx.commit().await.map_err(|e| classify(spec, e))
    }

    /// VACUUM; VACUUM FULL with `guarantee`, which rewrites the whole table
    /// (all of a shared table's collections).
    pub(super) async fn vacuum(&self, spec: &CollectionSpec, guarantee: bool) -> Result<PhysicalOutcome> {
        let t = self.target(spec).await?;
        if !super::catalog::can_vacuum(&self.pool, &t.table).await.map_err(|e| classify(spec, e))? {
            // VACUUM by a role that does not own the table only warns and skips it.
            return Ok(PhysicalOutcome::Pending(format!(
                "Lethe's database role does not own `{}`, so VACUUM would skip it: deleted rows stay in its \
                 files until its owner vacuums it",
                spec.backend_name
            )));
        }
        if !guarantee {
            sqlx::raw_sql(&format!("VACUUM (ANALYZE) {}", t.table))
                .execute(&self.pool)
                .await
                .map_err(|e| classify(spec, e))?;
            return Ok(PhysicalOutcome::Pending(
                "VACUUM pruned dead tuples of the attached table and repaired its indexes; freed heap space keeps \
                 old bytes until reused (ask for guaranteed physical erasure to rewrite the table)"
                    .into(),
            ));
        }
        let waited = crate::store::wait_for_older_snapshots(&self.pool, std::time::Duration::from_secs(60))
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Unavailable(e) | crate::store::StoreError::Unexpected(e) => classify(spec, e),
            })?;
        crate::store::vacuum_bounded(&self.pool, &format!("VACUUM (FULL, ANALYZE) {}", t.table))
            .await
            .map_err(|e| classify(spec, e))?;
        let whole = format!(
            "VACUUM FULL rewrote the whole table `{}` (with every other collection its framework keeps there) and \
             its indexes into new files",
            spec.backend_name
        );
        Ok(match waited {
            Some(pid) => PhysicalOutcome::Pending(format!(
                "{whole}, but session {pid} held a snapshot older than the deletion, so deleted rows may have \
                 been copied"
            )),
            None => {
                PhysicalOutcome::Confirmed(format!("{whole}; WAL, base backups and replicas are outside Lethe's reach"))
            }
        })
    }
}
