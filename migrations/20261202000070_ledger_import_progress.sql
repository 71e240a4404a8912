-- A ledger import commits in batches (tombstones, then points) and logged
-- what it did at the end. An import cut off half-way (a crash, a dropped
-- connection, the request timeout) and run again found the first batches'
-- work done: its entry undercounted, or was not written at all when nothing
-- was left to do. What each batch did is now added up here, in the batch's
-- own transaction, and the log entry written from the sums, with the import
-- marked logged in the same transaction. Keyed hashes only.
CREATE TABLE ledger_imports (
    import_id          uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL,
    ledger_sha256      text NOT NULL,
    started_at         timestamptz NOT NULL DEFAULT now(),
    tombstones_created bigint NOT NULL DEFAULT 0,
    subjects_re_erased bigint NOT NULL DEFAULT 0,
    points_added       bigint NOT NULL DEFAULT 0,
    -- Keyed hashes (hex) of the subjects made tombstones again.
    re_erased          text[] NOT NULL DEFAULT '{}',
    -- Set when its entry is appended (0: nothing to log).
    log_seq            bigint
);
-- At most one unfinished import of a ledger per tenant.
CREATE UNIQUE INDEX ledger_imports_open_idx ON ledger_imports (tenant_id, ledger_sha256) WHERE log_seq IS NULL;
