-- Retention (issue 16). A collection's rule (`collections.retention_days`,
-- and optionally one per source kind) erases the sources that lineage
-- recorded more than that many days ago, as ordinary erase jobs of kind
-- `retention`: the same stages, leases, counts, log entries and
-- certificates as a subject's erasure, with "these sources of this
-- collection" as the target instead of "this subject".

-- A job's target: a subject (every erasure so far) or the sources of one
-- collection listed in `retention_targets`.
ALTER TABLE erasure_jobs ADD COLUMN kind text NOT NULL DEFAULT 'subject'
    CHECK (kind IN ('subject', 'retention'));
ALTER TABLE erasure_jobs ALTER COLUMN subject_id DROP NOT NULL;
ALTER TABLE erasure_jobs ADD COLUMN collection_id uuid REFERENCES collections ON DELETE CASCADE;
ALTER TABLE erasure_jobs ADD CONSTRAINT erasure_jobs_target_check CHECK (
    (kind = 'subject' AND subject_id IS NOT NULL)
    OR (kind = 'retention' AND subject_id IS NULL AND collection_id IS NOT NULL));

-- The sources a retention job erases, fixed when the sweep creates it (ids
-- only: a source's own id may name a person). A source is in at most one
-- queued or in-progress job: the sweep leaves out the sources of running
-- jobs, under the collection's sweep lock. `withheld`: kept because a chunk
-- of it is tagged with a subject under legal hold (set by forget-lineage).
CREATE TABLE retention_targets (
    job_id    uuid NOT NULL REFERENCES erasure_jobs ON DELETE CASCADE,
    source_id uuid NOT NULL,
    withheld  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (job_id, source_id)
);
CREATE INDEX retention_targets_source_idx ON retention_targets (source_id);

-- Rules per source kind (`sources.kind`), overriding the collection's: 0
-- keeps the sources of that kind for ever.
CREATE TABLE retention_rules (
    collection_id uuid NOT NULL REFERENCES collections ON DELETE CASCADE,
    tenant_id     uuid NOT NULL,
    source_kind   text NOT NULL CHECK (source_kind <> ''),
    days          integer NOT NULL CHECK (days BETWEEN 0 AND 36500),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, source_kind)
);

-- When each collection was swept last and is due next: replicas claim a
-- due collection by moving `next_sweep_at` (one of them wins the row).
CREATE TABLE retention_sweeps (
    collection_id uuid PRIMARY KEY REFERENCES collections ON DELETE CASCADE,
    tenant_id     uuid NOT NULL,
    last_swept_at timestamptz,
    next_sweep_at timestamptz
);

-- Sources of a collection by the time lineage recorded them: the sweep's scan.
CREATE INDEX sources_collection_created_idx ON sources (collection_id, created_at);
