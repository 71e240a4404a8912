-- A tenant's HMAC key names people in tombstones and the log; with it, a
-- dump can be searched for guesses of who was erased. The database now holds
-- it only wrapped (AES-256-GCM) under a master key kept outside (keys.*):
-- hmac_key_wrapped = nonce || ciphertext || tag, under master key version
-- hmac_key_version. hmac_secret, the plaintext of earlier versions, is
-- wrapped and cleared by the first server that starts with a master key.
ALTER TABLE tenants ALTER COLUMN hmac_secret DROP NOT NULL;
ALTER TABLE tenants ADD COLUMN hmac_key_wrapped bytea;
ALTER TABLE tenants ADD COLUMN hmac_key_version integer;
ALTER TABLE tenants ADD CONSTRAINT tenants_hmac_key_wrapped_has_version
    CHECK ((hmac_key_wrapped IS NULL) = (hmac_key_version IS NULL));
