-- Access export (ExportSubject) reads the log entries that name one subject.
CREATE INDEX deletion_log_subject_idx ON deletion_log (tenant_id, subject_hash) WHERE subject_hash IS NOT NULL;
