-- Append-only, hash-chained per tenant.
CREATE TABLE deletion_log (
    tenant_id    uuid NOT NULL REFERENCES tenants ON DELETE CASCADE,
    seq          bigint NOT NULL,
    kind         text NOT NULL,
    job_id       uuid,
    subject_hash bytea,
    body         text NOT NULL,
    prev_hash    bytea NOT NULL,
    entry_hash   bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq)
);

-- The chain head per tenant, updated in the same transaction as each append:
-- removing the last entries is detected against it.
CREATE TABLE deletion_log_heads (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants ON DELETE CASCADE,
    seq        bigint NOT NULL,
    entry_hash bytea NOT NULL
);

CREATE TABLE certificates (
    job_id     uuid PRIMARY KEY REFERENCES erasure_jobs ON DELETE CASCADE,
    tenant_id  uuid NOT NULL,
    body       text NOT NULL,
    signature  bytea NOT NULL,
    public_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The log is append-only: refuse UPDATE and DELETE at the database level.
CREATE FUNCTION deletion_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'deletion_log is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER deletion_log_no_update
    BEFORE UPDATE OR DELETE ON deletion_log
    FOR EACH ROW EXECUTE FUNCTION deletion_log_append_only();
