-- Residual actions that survive a retry or a crash (issue 11 item 5). The
-- residual stage searches once and stores its candidates with the actions
-- it will take before it changes anything (`residual_searched_at`); then it
-- applies them collection by collection. Before a collection's deletes, the
-- candidate points present in the backend are stored (`residual_targets`),
-- so the number deleted is known even if the stage is cut off half-way;
-- once a collection is done, its counts are recorded with
-- `residual_applied` in one statement, and a retry skips it.
ALTER TABLE erasure_jobs ADD COLUMN residual_searched_at timestamptz;
ALTER TABLE erasure_counts ADD COLUMN residual_targets uuid[];
ALTER TABLE erasure_counts ADD COLUMN residual_applied boolean NOT NULL DEFAULT false;
