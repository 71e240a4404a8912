-- Chunks whose source a concurrent delete removed while a write added them
-- (before writes locked the sources they write into): each such source comes
-- back under a placeholder caller id, `lethe:lost-source:<source id>`, as old
-- as its oldest chunk, so that retention by age and DeletePoints by source
-- reach its chunks again. A Track of such a point into a source of its own
-- takes the chunk over as well.
INSERT INTO sources (source_id, tenant_id, collection_id, external_id, uri, kind, created_at)
SELECT DISTINCT ON (c.source_id)
       c.source_id, c.tenant_id, c.collection_id, 'lethe:lost-source:' || c.source_id::text, '', 'lost',
       min(c.created_at) OVER (PARTITION BY c.source_id)
FROM chunks c
WHERE NOT EXISTS (SELECT 1 FROM sources s WHERE s.source_id = c.source_id)
ORDER BY c.source_id
ON CONFLICT DO NOTHING;
