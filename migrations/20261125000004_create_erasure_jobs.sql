CREATE TABLE erasure_jobs (
    job_id             uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    subject_id         uuid NOT NULL REFERENCES subjects,
    -- The caller's subject id (the tag in the backends), kept only while the
    -- job runs; cleared when the job is logged.
    subject_tag        text,
    requested_by       text NOT NULL,
    reason             text NOT NULL,
    idempotency_key    text,
    residual_policy    text NOT NULL CHECK (residual_policy IN ('report', 'delete', 'redact')),
    guarantee_physical boolean NOT NULL DEFAULT false,
    status             text NOT NULL
                       CHECK (status IN ('queued', 'in_progress', 'completed', 'failed', 'refused')),
    stage              text NOT NULL,
    attempts           integer NOT NULL DEFAULT 0,
    error              text,
    lease_owner        uuid,
    lease_expires_at   timestamptz,
    received_at        timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    completed_at       timestamptz,
    deadline           timestamptz NOT NULL,
    -- Residual candidates found by the residual stage (policy report), as JSON.
    residuals          jsonb NOT NULL DEFAULT '[]',
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX erasure_jobs_runnable_idx ON erasure_jobs (received_at)
    WHERE status IN ('queued', 'in_progress');
CREATE INDEX erasure_jobs_tenant_idx ON erasure_jobs (tenant_id, received_at DESC);

-- Per collection counts, written by the plan, verify, residual and physical stages.
CREATE TABLE erasure_counts (
    job_id            uuid NOT NULL REFERENCES erasure_jobs ON DELETE CASCADE,
    collection_id     uuid NOT NULL,
    collection_name   text NOT NULL,
    backend           text NOT NULL,
    before_by_tag     bigint NOT NULL DEFAULT 0,
    before_by_ids     bigint NOT NULL DEFAULT 0,
    before_total      bigint NOT NULL DEFAULT 0,
    after_by_tag      bigint,
    after_by_ids      bigint,
    after_total       bigint,
    residual_found    bigint NOT NULL DEFAULT 0,
    residual_deleted  bigint NOT NULL DEFAULT 0,
    residual_redacted bigint NOT NULL DEFAULT 0,
    physical_status   text NOT NULL DEFAULT 'not_requested',
    physical_detail   text NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, collection_id)
);

-- The lineage point ids captured by the plan stage: after lineage is
-- forgotten, a resumed job still knows what to delete and verify.
CREATE TABLE erasure_plan_points (
    job_id        uuid NOT NULL REFERENCES erasure_jobs ON DELETE CASCADE,
    collection_id uuid NOT NULL,
    point_id      uuid NOT NULL,
    PRIMARY KEY (job_id, collection_id, point_id)
);

-- Embeddings of the subject's own chunks, captured by the plan stage before
-- deletion for the semantic residual search; deleted when the job is logged.
CREATE TABLE erasure_probes (
    job_id        uuid NOT NULL REFERENCES erasure_jobs ON DELETE CASCADE,
    ord           integer NOT NULL,
    collection_id uuid NOT NULL,
    text          text,
    vector        real[] NOT NULL,
    PRIMARY KEY (job_id, ord)
);

CREATE TABLE erasure_events (
    event_id bigserial PRIMARY KEY,
    job_id   uuid NOT NULL REFERENCES erasure_jobs ON DELETE CASCADE,
    stage    text NOT NULL,
    status   text NOT NULL,
    message  text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX erasure_events_job_idx ON erasure_events (job_id, event_id);
