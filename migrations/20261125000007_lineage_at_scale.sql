-- Lineage at a million vectors (issue 6, measured in examples/bench).
--
-- 1. No foreign keys on the two hot lineage tables. Postgres checks and
--    cascades foreign keys with one trigger call per row: a Track of 1,000
--    points made ~4,000 key checks, and forgetting a subject of 10,000 chunks
--    ~20,000 cascaded deletes (about a second). `store::lineage` is the only
--    writer of these tables; it inserts tags only for chunks and subjects it
--    has just written or read in the same transaction, and deletes a chunk's
--    tags with the chunk (`delete_chunks`). Collections and tenants are never
--    deleted by Lethe. `sources` keeps its key to `collections` (one row per
--    document, not per chunk).
ALTER TABLE chunk_subjects
    DROP CONSTRAINT chunk_subjects_chunk_id_fkey,
    DROP CONSTRAINT chunk_subjects_subject_id_fkey;
ALTER TABLE chunks
    DROP CONSTRAINT chunks_source_id_fkey,
    DROP CONSTRAINT chunks_collection_id_fkey;

-- 2. The collection on each tag: a subject's chunks per collection are one
--    index-only scan, without a join over every chunk of the tenant.
ALTER TABLE chunk_subjects ADD COLUMN collection_id uuid;
UPDATE chunk_subjects cs SET collection_id = c.collection_id FROM chunks c WHERE c.chunk_id = cs.chunk_id;
DELETE FROM chunk_subjects WHERE collection_id IS NULL;
ALTER TABLE chunk_subjects ALTER COLUMN collection_id SET NOT NULL;
DROP INDEX chunk_subjects_subject_idx;
CREATE INDEX chunk_subjects_subject_idx ON chunk_subjects (subject_id, collection_id, chunk_id);

-- 3. Unused: re-index reads chunks by (collection_id, updated_at) and by id.
DROP INDEX chunks_collection_idx;

-- 4. The plan's point ids as one array per job and collection instead of a
--    row per point: one row written for a subject of 10,000 vectors.
ALTER TABLE erasure_counts ADD COLUMN plan_points uuid[] NOT NULL DEFAULT '{}';
UPDATE erasure_counts c SET plan_points = p.ids
FROM (SELECT job_id, collection_id, array_agg(point_id ORDER BY point_id) AS ids
      FROM erasure_plan_points GROUP BY job_id, collection_id) p
WHERE p.job_id = c.job_id AND p.collection_id = c.collection_id;
DROP TABLE erasure_plan_points;
