-- What the new generation holds of the points its switch left out: a point
-- copied before its person was erased (or deleted since) is deleted from the
-- staging generation at the switch, and a delete leaves its bytes behind
-- (pgvector dead rows, rewritten before the promote; Qdrant soft deletes).
-- Empty when the switch left nothing out.
ALTER TABLE reindex_jobs ADD COLUMN physical_detail text NOT NULL DEFAULT '';
