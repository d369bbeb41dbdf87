-- What the store's own writes run (writes.py): submit, heartbeat, delete.

-- name: insert_workflow
-- A submitted workflow, every task still to do; its id.
INSERT INTO workflow (name, description, state, created, n_todo, params, has_run_if)
VALUES (?, ?, 'running', ?, ?, ?, ?) RETURNING id

-- name: insert_task
-- One submitted task (run with many rows at once).
INSERT INTO task (workflow_id, position, name, state, command, env, cwd, duration,
                  max_attempts, labels, priority, retry_delay, depends_on, pending_deps, created,
                  run_if, description, matrix, matrix_of)
VALUES (?, ?, ?, 'todo', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: insert_dependency
-- One edge of a submitted workflow: a task waits on its upstream.
INSERT INTO dependency (upstream_id, task_id) VALUES (?, ?)

-- name: submitted_task_ids
-- The ids the tasks of a workflow just inserted were given, by name.
SELECT name, id FROM task WHERE workflow_id = ?

-- name: attempt_cancel_facts
-- What tells whether an attempt's runner must stop its command, and who that runner is.
SELECT a.status, a.reason, t.state, a.runner FROM attempt a
  JOIN task t ON t.id = a.task_id WHERE a.id = ?

-- name: beat_attempt
-- A heartbeat of a running attempt.
UPDATE attempt SET heartbeat = ? WHERE id = ? AND status = 'running'

-- name: workflow_state
-- Whether a workflow exists, and its state (before cancel, retry or delete).
SELECT state FROM workflow WHERE id = ?

-- Deleting a workflow: children first, so foreign keys hold at every step
-- (its idempotency keys go first: submission.sql, forget_workflow_keys).

-- name: delete_workflow_counts
-- Delete a workflow: its counter shards.
DELETE FROM workflow_count WHERE workflow_id = ?

-- name: delete_workflow_output
-- Delete a workflow: its attempts' output.
DELETE FROM output WHERE attempt_id IN (SELECT a.id FROM attempt a
       JOIN task t ON t.id = a.task_id WHERE t.workflow_id = ?)

-- name: delete_workflow_attempts
-- Delete a workflow: its attempts.
DELETE FROM attempt WHERE task_id IN (SELECT id FROM task WHERE workflow_id = ?)

-- name: delete_workflow_dependencies
-- Delete a workflow: its edges.
DELETE FROM dependency WHERE task_id IN (SELECT id FROM task WHERE workflow_id = ?)

-- name: delete_workflow_tasks
-- Delete a workflow: its tasks.
DELETE FROM task WHERE workflow_id = ?

-- name: delete_workflow
-- Delete a workflow: the workflow itself, last.
DELETE FROM workflow WHERE id = ?
