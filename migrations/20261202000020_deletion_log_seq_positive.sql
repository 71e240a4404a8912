-- A log entry's sequence number starts at 1 (the chain's first entry follows
-- 32 zero bytes): a row at 0 or below would sit outside the chain that
-- verification walks (entries after 0), yet be shown by the subject export,
-- the auditor's view and the metrics. The service role may insert into the
-- log, so the table itself refuses such a row.
ALTER TABLE deletion_log ADD CONSTRAINT deletion_log_seq_positive CHECK (seq > 0);
