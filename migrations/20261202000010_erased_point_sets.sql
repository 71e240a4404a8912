-- The erasure ledger's points as sets (issue 15: a large subject's log stage).
--
-- One row per point, keyed by (tenant, collection, point hash), made every
-- erasure pay for all the erasures before it: the hashes are random, so
-- recording 10,000 points touched as many leaf pages of the key's index,
-- and after each checkpoint wrote each of them whole into the WAL (42 MB
-- for one 10,000-point erasure at 900,000 points recorded; 180-250 ms).
-- A ledger of a hundred million points would read those pages from disk.
--
-- Now one row per group: a collection, the person (tombstone hash), the
-- erasure (none for a reconcile or an import without one) and the cause,
-- with the group's point hashes sorted and distinct. Recording an erasure
-- writes one row per collection and cause (4 ms for 10,000 points, 170 kB
-- of WAL, whatever the ledger holds). A point is recorded once per group:
-- a point deleted again by a later erasure or a reconcile is recorded in
-- that group too (it was erased twice); before, only its first record
-- was kept.
CREATE TABLE erased_point_sets (
    tenant_id     uuid NOT NULL,
    collection_id uuid NOT NULL,
    subject_hash  bytea NOT NULL,
    job_id        uuid,
    cause         text NOT NULL CHECK (cause IN ('erasure', 'residual', 'follow_up', 'reconcile', 'import')),
    -- First 16 bytes of HMAC-SHA256(tenant key, "lethe-point/1\n" collection id "\n" point key)
    -- (`restore::point_hash`): sorted, distinct.
    points        bytea[] NOT NULL,
    erased_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX erased_point_sets_group_idx
    ON erased_point_sets (tenant_id, collection_id, subject_hash, job_id, cause) NULLS NOT DISTINCT;

INSERT INTO erased_point_sets (tenant_id, collection_id, subject_hash, job_id, cause, points, erased_at)
SELECT tenant_id, collection_id, subject_hash, job_id, cause, array_agg(point_hash ORDER BY point_hash), min(erased_at)
FROM erased_points
GROUP BY tenant_id, collection_id, subject_hash, job_id, cause;

DROP TABLE erased_points;

-- The points one per row, as before, for reading (operators, tests).
CREATE VIEW erased_points AS
SELECT s.tenant_id, s.collection_id, p.point_hash, s.subject_hash, s.job_id, s.cause, s.erased_at
FROM erased_point_sets s, unnest(s.points) AS p(point_hash);
