-- When a lookup row of a text id was last written. A Track or DeletePoints
-- writes its rows before it reads the store and forgets those that no
-- lineage stands behind at its end; a crash in between leaves rows without
-- lineage (and a text id may name a person). The adoption scan of the
-- collection sweeps rows that have had no lineage behind them for a while
-- (`store::attach::sweep_unlinked_point_ids`); writing lineage refreshes
-- the time, so a row a call is using is never swept under it. Existing rows
-- take the time of this migration (a constant default: no table rewrite).
ALTER TABLE attached_point_ids ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();
