CREATE TABLE tenants (
    tenant_id   uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    -- Key of the HMAC that names subjects in tombstones and in the log.
    hmac_secret bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_id       uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('secret', 'publishable', 'auditor')),
    -- SHA-256 of the whole key; keys carry 192 random bits, so a fast hash is enough.
    key_hash     bytea NOT NULL UNIQUE,
    -- The first characters of the key, to recognise it in listings.
    key_prefix   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);
