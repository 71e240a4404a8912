-- The oldest transaction still running when the verify stage counted a
-- collection of a job (`pg_snapshot_xmin` of a snapshot taken just before the
-- count, as a full 64-bit id). Every chunk row written by a transaction older
-- than that had committed before the count, and with it (pgvector) its
-- vector, which the count then found gone: forget lineage deletes such chunks.
-- A chunk row written since (a write of the point, a redaction) is looked up
-- in the backend first: its vector may be back. NULL (a job verified before
-- this column): every chunk is looked up.
ALTER TABLE erasure_counts ADD COLUMN IF NOT EXISTS verified_before bigint;
