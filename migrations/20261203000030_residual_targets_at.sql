-- When a collection's residual targets were stored. A residual deletion
-- is credited to its job (`erasure_point_credits`, as contested plan points
-- are) unless another job was credited with the point since then: that job
-- deleted the point this one saw, and two certificates must not claim one
-- deletion (a job whose first attempt stored its targets and failed, retried
-- after another erasure deleted a shared candidate). NULL for targets
-- stored before this column: any credit since counts against them.
ALTER TABLE erasure_counts ADD COLUMN residual_targets_at timestamptz;
-- Cleared when the job is logged: the pruning of credits looks for the
-- oldest of a job still running, through this index of the few set.
CREATE INDEX erasure_counts_residual_targets_idx ON erasure_counts (residual_targets_at) WHERE residual_targets_at IS NOT NULL;
