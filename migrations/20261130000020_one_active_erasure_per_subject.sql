-- At most one queued or in-progress erasure per subject (issue 11). Two jobs
-- of one subject running at once both counted, deleted and certified the
-- same vectors: two log entries and two certificates for one deletion.
--
-- Jobs that already overlap keep the oldest; the others fail, with the
-- reason in their row and event stream, so that the index can be built.
WITH superseded AS (
    UPDATE erasure_jobs j
    SET status = 'failed', completed_at = now(), lease_owner = NULL, lease_expires_at = NULL, subject_tag = NULL,
        error = 'superseded: an older erasure of the subject was already queued or running'
    WHERE j.status IN ('queued', 'in_progress')
      AND EXISTS (
          SELECT 1 FROM erasure_jobs o
          WHERE o.subject_id = j.subject_id
            AND o.status IN ('queued', 'in_progress')
            AND (o.received_at, o.job_id) < (j.received_at, j.job_id))
    RETURNING j.job_id, j.error
)
INSERT INTO erasure_events (job_id, stage, status, message)
SELECT job_id, 'done', 'failed', error FROM superseded;

CREATE UNIQUE INDEX erasure_jobs_one_active_per_subject ON erasure_jobs (subject_id)
    WHERE status IN ('queued', 'in_progress');
