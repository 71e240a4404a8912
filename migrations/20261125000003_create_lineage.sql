CREATE TABLE collections (
    collection_id   uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    name            text NOT NULL,
    backend         text NOT NULL CHECK (backend IN ('pgvector', 'qdrant')),
    backend_name    text NOT NULL,
    dimension       integer NOT NULL CHECK (dimension BETWEEN 1 AND 4096),
    distance        text NOT NULL CHECK (distance IN ('cosine', 'dot', 'euclid')),
    embedding_model text NOT NULL,
    store_text      boolean NOT NULL DEFAULT true,
    retention_days  integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    UNIQUE (backend, backend_name)
);

CREATE TABLE subjects (
    subject_id        uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    -- The caller's id; NULL once the subject is erased (the tombstone keeps only the hash).
    external_id       text,
    -- HMAC-SHA256(tenant secret, external id).
    subject_hash      bytea NOT NULL,
    state             text NOT NULL DEFAULT 'active'
                      CHECK (state IN ('active', 'pending_erasure', 'erased')),
    legal_hold        boolean NOT NULL DEFAULT false,
    legal_hold_reason text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    erased_at         timestamptz,
    UNIQUE (tenant_id, subject_hash)
);

CREATE TABLE subject_identifiers (
    subject_id uuid NOT NULL REFERENCES subjects ON DELETE CASCADE,
    tenant_id  uuid NOT NULL,
    kind       text NOT NULL,
    -- NULL once the subject is erased.
    value      text,
    -- HMAC-SHA256(tenant secret, normalised value).
    value_hash bytea NOT NULL,
    PRIMARY KEY (subject_id, kind, value_hash)
);
CREATE INDEX subject_identifiers_hash_idx ON subject_identifiers (tenant_id, value_hash);

CREATE TABLE sources (
    source_id     uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    collection_id uuid NOT NULL REFERENCES collections ON DELETE CASCADE,
    external_id   text NOT NULL,
    uri           text NOT NULL DEFAULT '',
    kind          text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (collection_id, external_id)
);

-- One chunk = one vector; chunk_id is the point id in the backend.
CREATE TABLE chunks (
    chunk_id      uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    collection_id uuid NOT NULL REFERENCES collections ON DELETE CASCADE,
    source_id     uuid NOT NULL REFERENCES sources ON DELETE CASCADE,
    ordinal       integer NOT NULL DEFAULT 0,
    text          text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chunks_source_idx ON chunks (source_id);
CREATE INDEX chunks_collection_idx ON chunks (collection_id, created_at);

CREATE TABLE chunk_subjects (
    chunk_id   uuid NOT NULL REFERENCES chunks ON DELETE CASCADE,
    subject_id uuid NOT NULL REFERENCES subjects ON DELETE CASCADE,
    tenant_id  uuid NOT NULL,
    role       text NOT NULL CHECK (role IN ('owner', 'author', 'mentioned')),
    PRIMARY KEY (chunk_id, subject_id)
);
CREATE INDEX chunk_subjects_subject_idx ON chunk_subjects (subject_id);
