-- Chunks whose source a concurrent delete removed while a write added them
-- (before writes locked the sources they write into): each such source comes
-- back under a placeholder caller id, `lethe:lost-source:<source id>`, as old
-- as its oldest chunk, so that retention by age and DeletePoints by source
-- reach its chunks again. (To write such a point under its real source again,
-- delete it, by id or by the placeholder source, then Track it.) Chunks of a
-- collection that no longer exists are left alone: no source can name it.
INSERT INTO sources (source_id, tenant_id, collection_id, external_id, uri, kind, created_at)
SELECT DISTINCT ON (c.source_id)
       c.source_id, c.tenant_id, c.collection_id, 'lethe:lost-source:' || c.source_id::text, '', 'lost',
       min(c.created_at) OVER (PARTITION BY c.source_id)
FROM chunks c
WHERE NOT EXISTS (SELECT 1 FROM sources s WHERE s.source_id = c.source_id)
  AND EXISTS (SELECT 1 FROM collections k WHERE k.collection_id = c.collection_id)
ORDER BY c.source_id
ON CONFLICT DO NOTHING;
