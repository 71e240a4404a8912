-- What a job's certificate must say beyond its counts (issue 11): residual
-- candidates capped, identifiers too common to act on, legal holds, physical
-- erasure that is pending. One JSON object per note: {code, stage, message};
-- never plaintext of the person.
ALTER TABLE erasure_jobs ADD COLUMN notes jsonb NOT NULL DEFAULT '[]';
