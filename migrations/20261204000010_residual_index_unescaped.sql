-- Chunk texts are read unescaped too, and with HTML character references
-- decoded (`identity::text_readings`, used by `residual::index::terms`,
-- `residual::lexical::Matcher::find`, `screening::text_mentions`): a link's
-- `?email=zk%40corp.example` holds the words `zk` and `corp`, and
-- `Jos&#233;` the word `josé`, only once decoded. Texts written before
-- carry the keys of their words as written: those holding an escape or a
-- numeric reference (the readings that make new words) are listed here,
-- and the service re-keys them at startup before it serves
-- (`residual::index::rekey_listed`), then empties the list. Ids only: no
-- text is copied.
CREATE TABLE chunks_rekey (
    tenant_id uuid NOT NULL,
    chunk_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, chunk_id)
);
INSERT INTO chunks_rekey (tenant_id, chunk_id)
SELECT tenant_id, chunk_id FROM chunks WHERE text ~ '%[0-9A-Fa-f]{2}|&#[0-9xX]';
