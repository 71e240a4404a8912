-- Physical erasure of Lethe's own tables (issue 11 item 6, issue 12 item 5).
-- `VACUUM FULL` rewrites a table under an exclusive lock, and these tables
-- are shared by every tenant: they are rewritten only where an erasure left
-- dead rows of the person, and one rewrite serves every job that waits for
-- it (a job waits for the first rewrite that starts after its
-- forget-lineage stage), at most one per `erasure.lineage_rewrite_interval_secs`.
CREATE TABLE lineage_rewrites (
    rewrite_id  bigserial PRIMARY KEY,
    tables      text[] NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    -- A session that still held a snapshot older than the rewrite when it
    -- ran: the deleted rows may have been copied into the new files.
    blocker_pid integer
);

-- Which of Lethe's tables held rows of the job's person that the job deleted
-- or changed, when its forget-lineage stage was done, which rewrite served
-- it, and what that means.
ALTER TABLE erasure_jobs ADD COLUMN rewrite_tables text[] NOT NULL DEFAULT '{}';
ALTER TABLE erasure_jobs ADD COLUMN forgotten_at timestamptz;
ALTER TABLE erasure_jobs ADD COLUMN rewrite_id bigint;
ALTER TABLE erasure_jobs ADD COLUMN lineage_physical_status text NOT NULL DEFAULT 'not_requested';
ALTER TABLE erasure_jobs ADD COLUMN lineage_physical_detail text NOT NULL DEFAULT '';
