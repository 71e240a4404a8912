-- Restore guard (issue 16): what re-applies every past erasure after a
-- backup, snapshot or point-in-time recovery brought erased people back.
--
-- The erasure ledger is the tombstones that already exist (`subjects` in
-- state `erased`, with their `subject_keys` and `subject_identifiers`
-- hashes: the tags a backend stores are the subjects' caller ids, whose
-- keyed hash is the tombstone's `subject_hash`) plus, here, the points each
-- erasure deleted: points that lineage or residual search found without the
-- person's tag (Track without tags, residual deletions) come back from a
-- restore without it, and only their ids find them again.
--
-- No plaintext: a point is named by the first 16 bytes of
-- HMAC-SHA256(tenant key, "lethe-point/1\n" collection id "\n" point key)
-- (`restore::point_hash`). A point key may be the hash of a text id that
-- names the person (`alice@example.com#3`), or a UUIDv5 of the caller's
-- source id: a plain id could be tested against guesses.
CREATE TABLE erased_points (
    tenant_id     uuid NOT NULL,
    collection_id uuid NOT NULL,
    point_hash    bytea NOT NULL CHECK (octet_length(point_hash) = 16),
    -- The tombstone of the person the point was erased for.
    subject_hash  bytea NOT NULL,
    -- The erasure that deleted it (none for a reconcile or an import without one).
    job_id        uuid,
    cause         text NOT NULL CHECK (cause IN ('erasure', 'residual', 'follow_up', 'reconcile', 'import')),
    erased_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, collection_id, point_hash)
);
CREATE INDEX erased_points_subject_idx ON erased_points (tenant_id, subject_hash);

-- A reconcile run: one tenant's collections scanned for points (and
-- lineage) of erased subjects that a restore brought back. Leased like the
-- other jobs (`store::lease`); at most one queued or running per tenant, so
-- replicas that schedule runs at the same time make one.
CREATE TABLE reconcile_runs (
    job_id           uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    trigger          text NOT NULL CHECK (trigger IN ('manual', 'schedule')),
    requested_by     text NOT NULL DEFAULT '',
    status           text NOT NULL CHECK (status IN ('queued', 'in_progress', 'completed', 'failed')),
    lease_owner      uuid,
    lease_epoch      bigint NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    error            text,
    -- Keyed hashes of erased subjects left alone because they are under legal hold.
    held_subjects    bytea[] NOT NULL DEFAULT '{}',
    -- Erased subjects whose restored lineage or identifiers in clear were forgotten again.
    subjects_scrubbed integer NOT NULL DEFAULT 0,
    received_at      timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz
);
CREATE UNIQUE INDEX reconcile_runs_one_active_idx ON reconcile_runs (tenant_id) WHERE status IN ('queued', 'in_progress');
CREATE INDEX reconcile_runs_runnable_idx ON reconcile_runs (received_at) WHERE status IN ('queued', 'in_progress');
CREATE INDEX reconcile_runs_tenant_idx ON reconcile_runs (tenant_id, received_at DESC);

-- What a run did in one collection. Written before the first delete
-- (`before`, and the points to delete: a resumed run deletes and counts the
-- same ones), completed with the counts after and the log entry's sequence
-- number in the transaction that appends the entry.
CREATE TABLE reconcile_collections (
    job_id            uuid NOT NULL REFERENCES reconcile_runs ON DELETE CASCADE,
    collection_id     uuid NOT NULL,
    collection_name   text NOT NULL,
    backend           text NOT NULL,
    scanned           bigint NOT NULL DEFAULT 0,
    by_tag            bigint NOT NULL DEFAULT 0,
    by_lineage        bigint NOT NULL DEFAULT 0,
    by_ledger         bigint NOT NULL DEFAULT 0,
    withheld          bigint NOT NULL DEFAULT 0,
    before            bigint NOT NULL DEFAULT 0,
    after             bigint,
    lineage_forgotten bigint NOT NULL DEFAULT 0,
    log_seq           bigint,
    -- Until the collection is done: the points to delete, with the keyed
    -- hash of the subject each was found for (same order).
    points            uuid[] NOT NULL DEFAULT '{}',
    point_subjects    bytea[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (job_id, collection_id)
);
