//! Statements run per request, per scrape or every minute read through an
//! index, not the table: their tables grow with every erasure ever made (a
//! year of a large tenant is a million jobs and log entries). Where the
//! statement asks about a few rows (unfinished jobs, one subject, one
//! tenant) that is a range of the index; where it counts them all
//! (`/metrics`' totals) it is the whole index, read alone, narrow rows
//! instead of the table's (1.8 KB a log entry). On a test's few rows the
//! planner would read a table whole anyway, so each statement runs here
//! with sequential scans discouraged, as a large table discourages them,
//! and the test counts the scans PostgreSQL made of the table and of the
//! index in that transaction (`pg_stat_get_xact_numscans`). It shows that
//! each has its index path, not how many index rows it reads.

use lethe::grpc::pb;
use sqlx::{Postgres, Transaction};

use crate::helpers::*;

/// A transaction in which a sequential scan is the planner's last resort,
/// watching the scans of `table` and of `indexes` made in it from now on
/// (the counters also hold a connection's earlier transactions not yet
/// flushed to the statistics: hence the baseline).
struct Watch {
    tx: Transaction<'static, Postgres>,
    table: &'static str,
    indexes: &'static [&'static str],
    before: (Vec<i64>, i64),
}

async fn watch(app: &TestApp, table: &'static str, indexes: &'static [&'static str]) -> Watch {
    let mut tx = app.pool.begin().await.expect("begin");
    sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await.expect("set");
    let before = scans(&mut tx, table, indexes).await;
    Watch { tx, table, indexes, before }
}

/// Scans counted so far of each of `indexes`, and sequential scans of `table`.
async fn scans(tx: &mut Transaction<'static, Postgres>, table: &str, indexes: &[&str]) -> (Vec<i64>, i64) {
    let count = |relation: String| sqlx::query_scalar::<_, i64>("SELECT pg_stat_get_xact_numscans($1::regclass)").bind(relation);
    let mut used = Vec::new();
    for index in indexes {
        used.push(count((*index).to_owned()).fetch_one(&mut **tx).await.expect("index scans"));
    }
    (used, count(table.to_owned()).fetch_one(&mut **tx).await.expect("table scans"))
}

impl Watch {
    /// Asserts that what ran read the table through each index and never whole.
    async fn assert_through(mut self, what: &str) {
        let (used, seq) = scans(&mut self.tx, self.table, self.indexes).await;
        assert_eq!(seq - self.before.1, 0, "{what}: {} read whole", self.table);
        for ((index, n), before) in self.indexes.iter().zip(used).zip(&self.before.0) {
            assert!(n > *before, "{what}: {index} not used");
        }
        self.tx.rollback().await.expect("rollback");
    }
}

#[tokio::test]
async fn metrics_overdue_listing_export_and_verification_read_through_indexes() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2), ("bob", 2)]).await;
    for person in ["ann", "bob"] {
        let job = app.erase(person).await;
        assert_eq!(app.wait_for_job(&job.job_id).await.status(), pb::JobStatus::Completed);
    }
    let tenant = app.keys.tenant_id;

    // /metrics, at every scrape, by any scraper.
    let mut w = watch(&app, "erasure_jobs", &["erasure_jobs_unfinished_idx"]).await;
    lethe::store::metrics::overdue_jobs(&mut *w.tx).await.expect("overdue");
    w.assert_through("overdue count").await;
    let mut w = watch(&app, "deletion_log", &["deletion_log_kind_idx"]).await;
    let kinds = lethe::store::metrics::log_entries_by_kind(&mut *w.tx).await.expect("by kind");
    assert!(kinds.iter().any(|(k, n)| k == "erasure" && *n >= 2), "{kinds:?}");
    w.assert_through("log entries by kind").await;
    let mut w = watch(&app, "erasure_counts", &["erasure_counts_backend_idx"]).await;
    lethe::store::metrics::residual_found_by_backend(&mut *w.tx).await.expect("found");
    w.assert_through("residual found").await;

    // ListErasures with overdue_only, and the web view's Overdue section.
    let mut w = watch(&app, "erasure_jobs", &["erasure_jobs_unfinished_idx"]).await;
    let overdue = lethe::store::jobs::list_jobs(&mut *w.tx, tenant, true, None, 100).await.expect("overdue jobs");
    assert!(overdue.is_empty(), "both finished in time");
    w.assert_through("overdue listing").await;

    // A subject's export: their entries and the tenant's reconcile entries.
    let hash: Vec<u8> =
        sqlx::query_scalar("SELECT subject_hash FROM deletion_log WHERE tenant_id = $1 AND subject_hash IS NOT NULL LIMIT 1")
            .bind(tenant)
            .fetch_one(&app.pool)
            .await
            .expect("a subject's hash");
    let mut w = watch(&app, "deletion_log", &["deletion_log_subject_idx", "deletion_log_kind_idx"]).await;
    let entries = lethe::store::export::log_entries(&mut *w.tx, tenant, &hash).await.expect("entries");
    assert_eq!(entries.len(), 1, "the subject's own entry");
    w.assert_through("export's log entries").await;

    // Log verification's check of the certified heads: this tenant's
    // certificates only.
    let mut w = watch(&app, "certificates", &["certificates_tenant_idx"]).await;
    let off = lethe::store::log::certificate_off_the_log(&mut *w.tx, tenant).await.expect("certificates");
    assert_eq!(off, None, "both certify entries of the log");
    w.assert_through("certified heads").await;

    // The reconcile scheduler, every minute on every replica.
    let mut w = watch(&app, "subjects", &["subjects_erased_idx"]).await;
    lethe::store::reconcile::queue_due(&mut *w.tx, 86_400.0).await.expect("queue");
    w.assert_through("reconcile scheduler").await;

    // Guaranteed physical erasure's wait for the next rewrite.
    let mut w = watch(&app, "lineage_rewrites", &["lineage_rewrites_started_idx"]).await;
    lethe::store::rewrite::seconds_until_allowed(&mut *w.tx, 60.0).await.expect("wait");
    w.assert_through("next rewrite").await;

    // ListReindexes.
    let mut w = watch(&app, "reindex_jobs", &["reindex_jobs_tenant_idx"]).await;
    lethe::store::reindex::list(&mut *w.tx, tenant, 100).await.expect("re-indexes");
    w.assert_through("re-index listing").await;
}
