-- The row version (`xmin`) of each planned chunk, captured by the verify stage
-- just before it counts the backend (aligned with `plan_points`; 0 where the
-- chunk row was gone). Forget lineage deletes a chunk only if its row is still
-- that version: a write of the point that committed after the count (its
-- vector is back in the store) changed the row, and its lineage is looked up
-- in the backend before anything of it is forgotten. NULL (a job verified
-- before this column): every chunk is looked up.
ALTER TABLE erasure_counts ADD COLUMN verified_versions bigint[];
