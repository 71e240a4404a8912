-- A subject's jobs: Erase looks for a running one on every call, and the key
-- from erasure_jobs to subjects is checked against it. Without this index
-- both scanned every job (48,000 in the benchmark's database).
CREATE INDEX erasure_jobs_subject_idx ON erasure_jobs (subject_id);
