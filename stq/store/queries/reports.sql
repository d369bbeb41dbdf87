-- A runner's result for one attempt (reports.py).

-- name: attempt_for_report
-- Everything a result needs, attempt and task locked; whether the task has dependents
-- and whether its workflow has run_if tasks are read in subqueries (the workflow row
-- is not locked: results of one workflow never queue for it).
SELECT a.status, a.reason, a.ack_attempt, a.ack_task, a.task_id, t.workflow_id, t.state, t.reason,
       EXISTS (SELECT 1 FROM dependency d WHERE d.upstream_id = a.task_id),
       (SELECT w.has_run_if FROM workflow w WHERE w.id = t.workflow_id)
  FROM attempt a JOIN task t ON t.id = a.task_id WHERE a.id = ? {for_update}

-- name: attempt_completed
-- A success: the attempt completed, whatever was presumed, with the answer given.
UPDATE attempt SET status = 'completed', reason = NULL, exit_code = ?, finished = ?,
       ack_attempt = ?, ack_task = ? WHERE id = ?

-- name: attempt_failed
-- A failure of a running attempt, with the answer given.
UPDATE attempt SET status = 'failed', reason = ?, exit_code = ?, finished = ?,
       ack_attempt = ?, ack_task = ? WHERE id = ?

-- name: attempt_failed_late
-- A failure after the attempt was presumed timed out or lost: that verdict stays.
UPDATE attempt SET exit_code = coalesce(exit_code, ?), ack_attempt = ?, ack_task = ? WHERE id = ?
