-- Chunk texts are also read with HTML's named references of letters decoded
-- (`Jos&eacute;` is `josé`) and JSON's `\u` escapes read (`Zo\u00eb` is `zoë`:
-- what Python's `json.dumps` writes for every letter outside ASCII), and
-- JavaScript's `escape()` (`Zo%u00EB`), by
-- `identity::deobfuscated`. Texts written before carry the keys of their
-- words as written: those that hold either are listed for the startup re-key
-- of migration `20261204000010` (`residual::index::rekey_listed`). Ids only.
-- The references decoded to no letter are everywhere and change no key: not
-- listed (a read of every text: 10 s at 2.2M chunks).
INSERT INTO chunks_rekey (tenant_id, chunk_id)
SELECT tenant_id, chunk_id FROM chunks
WHERE text ~ '&(?!(amp|lt|gt|quot|apos|nbsp);)[A-Za-z][A-Za-z0-9]{1,31};|(\\|%)[uU][0-9A-Fa-f]{4}'
ON CONFLICT DO NOTHING;
