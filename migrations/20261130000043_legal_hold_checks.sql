-- Legal holds checked at every destructive step (issue 11 item 4).
-- Destructive steps read the tenant's held subjects: few, found by index.
CREATE INDEX subjects_held_idx ON subjects (tenant_id) WHERE legal_hold;
-- Points of the erased subject left in place because they are shared with
-- a subject on legal hold, and residual candidates not acted on for that
-- reason, per collection.
ALTER TABLE erasure_counts ADD COLUMN withheld bigint NOT NULL DEFAULT 0;
ALTER TABLE erasure_counts ADD COLUMN residual_withheld bigint NOT NULL DEFAULT 0;
-- When the delete stage first changed a backend: a hold on the subject
-- before this refuses the job (nothing deleted); after it, the deletion
-- cannot be undone and the job withholds only what is left.
ALTER TABLE erasure_jobs ADD COLUMN deleting_started_at timestamptz;
