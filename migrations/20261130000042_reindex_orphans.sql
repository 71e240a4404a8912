-- A re-index whose switch was cut off after promoting the new generation
-- resumes (issue 11 item 8); its drop stage also drops every generation of
-- the collection that readers do not see (left behind by such a crash or
-- an interrupted job) and counts them here.
ALTER TABLE reindex_jobs ADD COLUMN orphans_dropped bigint NOT NULL DEFAULT 0;
