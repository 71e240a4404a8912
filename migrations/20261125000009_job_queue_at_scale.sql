-- The job tables at thousands of jobs (issue 6, examples/bench).
--
-- ListErasures by status (an auditor's "what is still running?") walked every
-- job of the tenant once none matched: at 20,000 jobs that was ~10 ms of
-- Postgres CPU per call.
CREATE INDEX erasure_jobs_tenant_status_idx ON erasure_jobs (tenant_id, status, received_at DESC);

-- A job row is updated at every stage (stage, lease) and its counts three
-- times: room on each page lets Postgres update in place (HOT) instead of
-- writing a new entry in every index of the table.
ALTER TABLE erasure_jobs SET (fillfactor = 70);
ALTER TABLE erasure_counts SET (fillfactor = 70);
