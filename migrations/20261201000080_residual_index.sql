-- Residual search from an index (issue 15). The residual stage read every
-- chunk text of the tenant per erasure (24 s at a million chunks). Each
-- chunk now carries `terms`: 32-bit keys of its words and of its word
-- 5-grams (tokens and shingles exactly as `residual::semantic` reads text,
-- keyed with the tenant), computed by Lethe in the statement that writes
-- the text (`store::lineage`), under a GIN index. A person's query asks for
-- the chunks holding one of their surnames / local parts or one of their own
-- 5-grams; the exact matchers then decide, as before. Why this and not
-- PostgreSQL's full-text search or pg_trgm: see `residual::index`.
--
-- The keys live in the chunk's own row, so they are written, rewritten
-- (redaction) and deleted (forget lineage, delete, retention) with the text
-- in the same statement, recovered by the same WAL, and rewritten by the
-- same `VACUUM FULL` of `chunks` that physical erasure runs.
ALTER TABLE chunks ADD COLUMN terms integer[];
CREATE INDEX chunks_terms_idx ON chunks USING gin (terms);

-- Every text written from now on carries its keys. Rows written before
-- this migration have none; residual search reads them the old way
-- (through this partial index: none once they are re-written or backfilled).
ALTER TABLE chunks ADD CONSTRAINT chunks_text_has_terms CHECK (text IS NULL OR terms IS NOT NULL) NOT VALID;
CREATE INDEX chunks_unindexed_idx ON chunks (tenant_id, chunk_id) WHERE text IS NOT NULL AND terms IS NULL;

-- Which collections hold chunks without lineage text, without reading
-- every chunk of the tenant.
CREATE INDEX chunks_textless_idx ON chunks (collection_id) WHERE text IS NULL;
