-- Every way of writing a subject's identifiers that residual search takes
-- for the person on its own (identity::match_keys: the address, a specific
-- local part at any domain, `first last` with nicknames, the national phone
-- number, the handle), as keyed hashes. The write path looks a tagged
-- subject's keys up among subjects that are being or have been erased, so
-- that a person cannot come back under another id, kind or spelling.
CREATE TABLE subject_keys (
    tenant_id  uuid NOT NULL,
    key_hash   bytea NOT NULL,
    subject_id uuid NOT NULL REFERENCES subjects ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, key_hash, subject_id)
);
CREATE INDEX subject_keys_subject_idx ON subject_keys (subject_id);

-- Earlier tombstones keep working: their identifier hashes are keys (the
-- legacy key `kind:normalised` is one of every identifier's keys).
INSERT INTO subject_keys (tenant_id, key_hash, subject_id)
SELECT tenant_id, value_hash, subject_id FROM subject_identifiers
ON CONFLICT DO NOTHING;

-- `suppressed`: a subject whose identifiers name a person who is being or
-- has been erased. Nothing tagged with it is written; it keeps only hashes.
ALTER TABLE subjects DROP CONSTRAINT subjects_state_check;
ALTER TABLE subjects ADD CONSTRAINT subjects_state_check
    CHECK (state IN ('active', 'pending_erasure', 'erased', 'suppressed'));

-- The identifiers an Erase request gave, in clear only until the job's
-- residual stage has searched for them (an erased subject's own identifiers
-- are hashes only, so a follow-up erasure brings them again).
CREATE TABLE erasure_identifiers (
    job_id uuid NOT NULL REFERENCES erasure_jobs ON DELETE CASCADE,
    kind   text NOT NULL,
    value  text NOT NULL
);
CREATE INDEX erasure_identifiers_job_idx ON erasure_identifiers (job_id);
