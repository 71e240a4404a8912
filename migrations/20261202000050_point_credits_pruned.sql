-- Credits are needed only while a plan that counted the same points is still
-- to be logged (its `planned_at` before the credit). They were kept forever:
-- plain point ids of erased people's shared chunks (UUIDv5 of a source id
-- and an ordinal, which can be tested against guesses), and a table growing
-- with every contested deletion. The log stage now deletes the credits older
-- than the oldest plan still holding contested points, less an hour (a plan
-- being written while it prunes has a `planned_at` of its transaction's
-- start). These indexes keep that a lookup, not a scan of every job.
CREATE INDEX erasure_counts_contested_idx ON erasure_counts (planned_at) WHERE cardinality(contested_points) > 0;
CREATE INDEX erasure_point_credits_credited_idx ON erasure_point_credits (credited_at);
