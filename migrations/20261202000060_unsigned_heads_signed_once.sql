-- Verification accepted an unsigned head when the log's last entry had hash
-- version 1 (heads were signed from version 2 on). Whoever could write the
-- database could rewrite a whole log as version 1, relink it, null the
-- head's signature and have it verified as valid. Heads of logs that ended
-- before signing began are now signed once, by the first service to start
-- after this migration (recorded here, so that a head unsigned later by
-- hand is never signed by a restart), and every non-empty log's head must
-- verify. Append-only, like the log.
CREATE TABLE audit_upgrades (
    name    text PRIMARY KEY,
    done_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER audit_upgrades_no_update
    BEFORE UPDATE OR DELETE ON audit_upgrades
    FOR EACH ROW EXECUTE FUNCTION append_only();
