-- Point ids are the tenant's own (issue 12). A chunk's id is the point id in
-- its backend, and every backend object (pgvector table, Qdrant collection)
-- belongs to one collection of one tenant; only lineage made the id global.
-- With `chunk_id` as the whole key, a tenant's Track or Ingest of an id that
-- another tenant used was refused, so any tenant could probe which ids the
-- others hold (ids derived from public names are guessable). Keyed by
-- (tenant, id), an id another tenant holds is invisible: the write succeeds
-- exactly as for an unused id. Within a tenant an id stays unique across its
-- collections (residual search and erasure name chunks by id in the tenant).
-- Every statement on chunks or tags by chunk id also names the tenant
-- (`store::lineage`, `store::reindex`).
ALTER TABLE chunks DROP CONSTRAINT chunks_pkey;
ALTER TABLE chunks ADD PRIMARY KEY (tenant_id, chunk_id);
