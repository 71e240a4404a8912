-- Whether a chunk may carry tags of more than one subject. Forgetting a
--    subject deletes its own tags through the subject index (one range
--    scan) and probes the tag table by chunk only for shared chunks. Unknown
--    for chunks written before this migration: assumed shared.
ALTER TABLE chunks ADD COLUMN shared boolean NOT NULL DEFAULT true;
