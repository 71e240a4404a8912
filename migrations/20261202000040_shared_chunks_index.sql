-- The plan asks, for every chunk of the subjects it plans, whether it is
-- shared (migration 30): through this index of the shared chunks only (a
-- probe of a small index), not the chunks' rows (a join on them cost 60 ms
-- for a subject of 10,000 chunks). Holds only chunks with several tags or
-- rewritten (`chunks.shared`, conservative).
CREATE INDEX chunks_shared_idx ON chunks (tenant_id, chunk_id) WHERE shared;
