-- An erasure looks up its tenant's source-kind rules (a rule whose kind
-- names the person is dropped with the person: every retention job's
-- reason would otherwise name them again, in the log and the certificate).
CREATE INDEX retention_rules_tenant_idx ON retention_rules (tenant_id);
