-- State changes inside a write transaction (transitions.py): expiry, counters,
-- a workflow's state, failures, completions, cancel and retry.

-- name: due_attempts
-- Running attempts past their task's duration or their heartbeat timeout, locked.
-- (PostgreSQL: rows another server is expiring right now are skipped, not waited for.)
SELECT id, task_id, deadline, heartbeat FROM attempt
 WHERE status = 'running' AND id IN (
       SELECT id FROM attempt {by_running_deadline}
        WHERE status = 'running' AND deadline IS NOT NULL AND deadline <= ?
       UNION
       SELECT id FROM attempt {by_running_heartbeat} WHERE status = 'running' AND heartbeat <= ?)
 ORDER BY id {skip_locked}

-- name: any_due
-- Cheap, read-only: is there anything to expire? (two small partial indexes)
SELECT EXISTS (SELECT 1 FROM attempt {by_running_deadline}
                WHERE status = 'running' AND deadline IS NOT NULL AND deadline <= ?)
    OR EXISTS (SELECT 1 FROM attempt {by_running_heartbeat}
                WHERE status = 'running' AND heartbeat <= ?)

-- name: expire_attempt
-- An attempt past its deadline or heartbeat ends (timed out or lost) at that moment.
UPDATE attempt SET status = ?, reason = ?, finished = ? WHERE id = ?

-- name: add_counts
-- Add a transaction's counter moves (TaskState order) to its shard of a workflow's counters.
INSERT INTO workflow_count (workflow_id, shard, n_todo, n_in_process, n_completed, n_failed)
VALUES (?, {shard}, ?, ?, ?, ?)
ON CONFLICT (workflow_id, shard) DO UPDATE SET
       n_todo = workflow_count.n_todo + excluded.n_todo,
       n_in_process = workflow_count.n_in_process + excluded.n_in_process,
       n_completed = workflow_count.n_completed + excluded.n_completed,
       n_failed = workflow_count.n_failed + excluded.n_failed

-- name: state_and_counts
-- A workflow's state, counts and id: whether its counts say it must settle.
SELECT state, {count_columns}, id FROM workflow WHERE id = ?

-- name: state_and_counts_locked
-- The same, the workflow row locked: settling it now.
{state_and_counts} {for_update}

-- name: running_states_and_counts
-- The same for every running workflow (before a listing filtered by state).
SELECT state, {count_columns}, id FROM workflow WHERE state = 'running'

-- name: settle_workflow
-- A workflow takes the state its counts imply, unless another transaction changed it first.
UPDATE workflow SET state = ?, finished = ? WHERE id = ? AND state = ?

-- name: task_for_failure
-- A failed attempt's task, locked; and whether its workflow has run_if tasks.
-- (Read in a subquery, so the workflow row is not locked with it.)
SELECT workflow_id, state, max_attempts, attempts_used, budget_base, retry_delay,
       (SELECT w.has_run_if FROM workflow w WHERE w.id = task.workflow_id)
  FROM task WHERE id = ? {for_update}

-- name: task_to_retry
-- A failed attempt's task goes back to todo, claimable after its retry delay.
UPDATE task SET state = 'todo', ready_at = ? WHERE id = ?

-- name: task_failed
-- A task's last allowed attempt failed: the task failed.
UPDATE task SET state = 'failed', reason = NULL, finished = ? WHERE id = ?

-- name: task_completed
-- A task's attempt completed: the task completed.
UPDATE task SET state = 'completed', reason = NULL, finished = ? WHERE id = ?

-- name: cancel_attempts
-- Cancel: every running attempt of the workflow's running tasks fails, reason cancelled.
UPDATE attempt SET status = ?, reason = ?, finished = ? WHERE status = 'running'
   AND task_id IN (SELECT id FROM task WHERE state = 'in_process' AND workflow_id = ?)

-- name: cancel_tasks
-- Cancel: every task of the workflow in one state fails, reason cancelled; how many.
UPDATE task SET state = 'failed', reason = ?, finished = ? WHERE workflow_id = ? AND state = ?

-- name: workflow_has_run_if
-- Whether a workflow has on_failure or always tasks (how a retry must go).
SELECT has_run_if FROM workflow WHERE id = ?

-- name: retry_failed
-- Failed tasks back to todo with a fresh budget; their unfinished-dependency count anew.
-- Failed and todo upstreams both count as unfinished, so the order in which rows
-- are updated does not matter.
UPDATE task SET state = 'todo', reason = NULL, finished = NULL, ready_at = 0,
       budget_base = attempts_used,
       pending_deps = (SELECT count(*) FROM dependency d JOIN task u ON u.id = d.upstream_id
                        WHERE d.task_id = task.id AND u.state <> 'completed')
 WHERE workflow_id = ? AND state = 'failed'

-- name: retry_failed_returning
-- The same, with the ids of the tasks retried read back (a workflow with run_if tasks).
{retry_failed}
RETURNING id

-- name: retry_downstream
-- Before retry_failed_returning, with run_if tasks: every completed task downstream of
-- a failed one (through any task) back to todo with a fresh budget too, so on_failure
-- and always tasks (and what followed them) run or are skipped as the new outcome decides.
UPDATE task SET state = 'todo', reason = NULL, finished = NULL, ready_at = 0,
       budget_base = attempts_used
 WHERE state = 'completed' AND id IN (
       WITH RECURSIVE downstream (id) AS (
           SELECT d.task_id FROM task f JOIN dependency d ON d.upstream_id = f.id
            WHERE f.workflow_id = ? AND f.state = 'failed'
           UNION
           SELECT d.task_id FROM dependency d JOIN downstream ON d.upstream_id = downstream.id
       )
       SELECT id FROM downstream)
RETURNING id

-- name: recount
-- After a retry with run_if tasks: the dependency counts of the tasks retried ({ids},
-- given twice) and of their dependents, from their dependencies' states.
-- Only their dependencies changed; no task of the workflow is failed any more.
UPDATE task SET failed_deps = 0,
       pending_deps = (SELECT count(*) FROM dependency d JOIN task u ON u.id = d.upstream_id
                        WHERE d.task_id = task.id AND u.state <> 'completed')
 WHERE id IN ({ids} UNION SELECT d.task_id FROM dependency d WHERE d.upstream_id IN ({ids}))
RETURNING id, state, run_if, pending_deps, failed_deps
