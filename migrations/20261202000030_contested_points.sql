-- Two erasures whose plans both counted a point they share (a chunk linked
-- to both subjects, erased in one batch or at the same time) both certified
-- its deletion: `deleted` was before - after for each. A plan now records,
-- of its points in chunks shared between subjects, those in the backend
-- (`contested_points`, forgotten when the job is logged); the log stage
-- credits each such point that is gone to the first job logged since it was
-- counted (`erasure_point_credits`), and the others count it as deleted by
-- another erasure (`deleted_elsewhere`). Point ids only: nothing personal.
ALTER TABLE erasure_counts
    ADD COLUMN contested_points uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN planned_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN deleted_elsewhere bigint NOT NULL DEFAULT 0 CHECK (deleted_elsewhere >= 0);

CREATE TABLE erasure_point_credits (
    collection_id uuid NOT NULL,
    point_id      uuid NOT NULL,
    tenant_id     uuid NOT NULL,
    job_id        uuid NOT NULL,
    credited_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection_id, point_id)
);
