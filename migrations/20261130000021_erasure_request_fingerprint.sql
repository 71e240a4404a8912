-- An idempotency key is bound to the request it first came with (issue 11):
-- SHA-256 over the request's canonical fields (subject id, identifiers,
-- requested_by, reason, residual policy, deadline, physical guarantee). A
-- different request under a used key is refused instead of being answered
-- with another request's job. NULL for jobs submitted before this column;
-- a replay of those is compared with what the row still records.
ALTER TABLE erasure_jobs ADD COLUMN request_fingerprint bytea;
