-- Entry hashes cover every column an auditor is shown (version 2; existing
-- entries keep version 1, which covered the predecessor and the body only).
ALTER TABLE deletion_log ADD COLUMN hash_version smallint NOT NULL DEFAULT 1;

-- The head is signed by the service after every append (see audit::head):
-- an auditor who keeps a signed head can show later that the log was
-- shortened or rewritten before it.
ALTER TABLE deletion_log_heads ADD COLUMN signed_at timestamptz;
ALTER TABLE deletion_log_heads ADD COLUMN key_id text;
ALTER TABLE deletion_log_heads ADD COLUMN signature bytea;

-- Certificates name the key that signed them, and are append-only like the log.
ALTER TABLE certificates ADD COLUMN key_id text;

CREATE FUNCTION append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER certificates_no_update
    BEFORE UPDATE OR DELETE ON certificates
    FOR EACH ROW EXECUTE FUNCTION append_only();
