-- Fenced job writes (issue 11). Every claim of a job bumps its lease epoch,
-- and every write of a running job is conditional on the (owner, epoch) of
-- the claim it runs under: a worker that stalled past its lease, whose job
-- another worker has claimed since, writes nothing more, even if it claims
-- again under the same owner id.
ALTER TABLE erasure_jobs ADD COLUMN lease_epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE reindex_jobs ADD COLUMN lease_epoch bigint NOT NULL DEFAULT 0;
