-- Attached collections (issue 13): tables and Qdrant collections that a
-- framework (LangChain, LlamaIndex) or a pipeline wrote, registered with a
-- mapping that says where each point keeps its id, vector, text, source and
-- the person's tag. NULL for the collections Lethe created itself.
ALTER TABLE collections ADD COLUMN mapping jsonb;

-- One backend object is one Lethe collection, except that LangChain's
-- older table holds many logical collections (told apart by `collection_id`):
-- attached collections are unique by object and scope.
ALTER TABLE collections DROP CONSTRAINT collections_backend_backend_name_key;
ALTER TABLE collections ADD COLUMN scope_key text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX collections_backend_object_idx ON collections (backend, backend_name, scope_key);

-- Point ids that are neither UUIDs nor integers (LangChain's older table
-- has varchar ids; hand-made tables text keys): lineage names every point by
-- a UUID key (`domain::point_id`), and this table turns the key of a text
-- id back into the id. A row is deleted with its point (an id may name a
-- person: `alice@example.com#3`).
CREATE TABLE attached_point_ids (
    collection_id uuid NOT NULL,
    point_key     uuid NOT NULL,
    native_id     text NOT NULL,
    PRIMARY KEY (collection_id, point_key)
);

-- The adoption job of an attached collection: a scan of the store that
-- builds lineage (sources, points, subjects) from the mapping, resumable
-- from `cursor` (the last point key written), then repeated as a rescan
-- every `attach.rescan_interval_secs` to learn the framework's new points.
CREATE TABLE attach_jobs (
    job_id           uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    collection_id    uuid NOT NULL REFERENCES collections ON DELETE CASCADE,
    status           text NOT NULL CHECK (status IN ('queued', 'in_progress', 'completed', 'failed')),
    -- Backend scroll offset to resume from (a point key), NULL at the start.
    cursor           uuid,
    lease_epoch      bigint NOT NULL DEFAULT 0,
    total            bigint NOT NULL DEFAULT 0,
    scanned          bigint NOT NULL DEFAULT 0,
    tracked          bigint NOT NULL DEFAULT 0,
    untagged         bigint NOT NULL DEFAULT 0,
    suppressed       bigint NOT NULL DEFAULT 0,
    subjects         bigint NOT NULL DEFAULT 0,
    rescans          integer NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 0,
    error            text,
    lease_owner      uuid,
    lease_expires_at timestamptz,
    received_at      timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz,
    next_scan_at     timestamptz
);
CREATE INDEX attach_jobs_runnable_idx ON attach_jobs (received_at) WHERE status IN ('queued', 'in_progress');
CREATE INDEX attach_jobs_rescan_idx ON attach_jobs (next_scan_at) WHERE status = 'completed';
CREATE UNIQUE INDEX attach_jobs_one_per_collection_idx ON attach_jobs (collection_id);
