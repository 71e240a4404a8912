-- When a chunk was last written: a re-index copies again what changed while it ran.
ALTER TABLE chunks ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX chunks_updated_idx ON chunks (collection_id, updated_at);

CREATE TABLE reindex_jobs (
    job_id           uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    collection_id    uuid NOT NULL REFERENCES collections ON DELETE CASCADE,
    mode             text NOT NULL CHECK (mode IN ('copy', 'reembed')),
    status           text NOT NULL CHECK (status IN ('queued', 'in_progress', 'completed', 'failed')),
    stage            text NOT NULL,
    -- Physical name of the generation being built, and of the one retired by the switch.
    staging_name     text,
    retired_name     text,
    copy_started_at  timestamptz,
    -- Last chunk id copied (chunks are copied in id order), for resuming.
    copy_cursor      uuid,
    total            bigint NOT NULL DEFAULT 0,
    copied           bigint NOT NULL DEFAULT 0,
    -- Lineage chunks whose vector was missing in the live collection.
    missing          bigint NOT NULL DEFAULT 0,
    -- Points removed from the new generation because they belong to erased subjects.
    excluded         bigint NOT NULL DEFAULT 0,
    final_count      bigint,
    attempts         integer NOT NULL DEFAULT 0,
    error            text,
    lease_owner      uuid,
    lease_expires_at timestamptz,
    received_at      timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz
);
CREATE INDEX reindex_jobs_runnable_idx ON reindex_jobs (received_at) WHERE status IN ('queued', 'in_progress');
CREATE UNIQUE INDEX reindex_jobs_one_active_idx ON reindex_jobs (collection_id) WHERE status IN ('queued', 'in_progress');
