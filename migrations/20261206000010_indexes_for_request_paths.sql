-- Indexes for statements that read a table whole per call, where the call
-- itself is small: costs that grew with every erasure ever made (a million
-- jobs and log entries is a year of a large tenant). Each is named by the
-- statement it serves.

-- Unfinished erasure jobs (a few, while finished ones pile up): the
-- overdue listing (`ListErasures` with `overdue_only`, the web view's
-- "Overdue"), newest first, and `/metrics`' overdue count.
CREATE INDEX erasure_jobs_unfinished_idx ON erasure_jobs (tenant_id, received_at DESC)
    WHERE status NOT IN ('completed', 'refused');

-- Log entries by kind: `/metrics`' count by kind from the index alone, and
-- a subject's export reads the tenant's `reconcile` entries (which list
-- several people each) without reading every other entry.
CREATE INDEX deletion_log_kind_idx ON deletion_log (kind, tenant_id, seq);

-- A tenant's certificates in order: log verification checks that each
-- certified head is still in the chain (was: every tenant's certificates).
CREATE INDEX certificates_tenant_idx ON certificates (tenant_id, created_at);

-- `/metrics`' residual candidates found, by backend, from the index alone.
CREATE INDEX erasure_counts_backend_idx ON erasure_counts (backend) INCLUDE (residual_found);

-- A tenant's erased subjects: the reconcile scheduler asks every minute
-- whether a tenant has any and since when; reconcile, re-index and the
-- ledger export read them.
CREATE INDEX subjects_erased_idx ON subjects (tenant_id, erased_at) WHERE state = 'erased';

-- The last rewrite's start, and rewrites since a job's (guaranteed
-- physical erasure): one row a minute at most, but kept.
CREATE INDEX lineage_rewrites_started_idx ON lineage_rewrites (started_at);

-- A tenant's re-indexes, newest first (`ListReindexes`).
CREATE INDEX reindex_jobs_tenant_idx ON reindex_jobs (tenant_id, received_at DESC);
