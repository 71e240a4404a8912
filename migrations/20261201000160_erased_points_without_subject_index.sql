-- The erasure ledger's second index, (tenant_id, subject_hash), is read by no
-- query: an export reads a tenant's points in collection order and Reconcile
-- a collection's, both through the primary key. Every erased point paid for
-- it in the erase job's log stage (a third of the WAL records of recording a
-- 10,000-point erasure).
DROP INDEX IF EXISTS erased_points_subject_idx;
