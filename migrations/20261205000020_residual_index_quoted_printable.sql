-- Chunk texts with soft line breaks are also read as quoted-printable
-- (`identity::quoted_printable`): a raw mail body breaks lines at 76
-- characters inside names and addresses (`Jeff Dasov=` / `ich`), whose
-- words the index kept as two. Texts written before are listed for the
-- startup re-key of migration `20261204000010` (`residual::index::rekey_listed`).
-- Ids only.
INSERT INTO chunks_rekey (tenant_id, chunk_id)
SELECT tenant_id, chunk_id FROM chunks
WHERE strpos(text, E'=\n') > 0 OR strpos(text, E'=\r\n') > 0
ON CONFLICT DO NOTHING;
