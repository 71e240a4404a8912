-- How many candidates a residual redaction wrote back in a collection,
-- counted redacted or not: a point rewritten and then erased by its owner
-- before the read-back is not counted redacted, but its old row (the
-- person's name in it) is a dead row (pgvector) or soft-deleted (Qdrant)
-- all the same, which the physical guarantee must reclaim. 0 for counts
-- recorded before this column: `residual_redacted` stands for them.
ALTER TABLE erasure_counts ADD COLUMN residual_rewritten bigint NOT NULL DEFAULT 0;
