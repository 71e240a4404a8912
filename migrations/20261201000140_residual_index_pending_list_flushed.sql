-- With `fastupdate` off (migration 130) no key enters GIN's pending list any
-- more, but the keys already there stay until a vacuum: every residual query
-- would keep scanning them. Merge them into the index now.
SELECT gin_clean_pending_list('chunks_terms_idx');
