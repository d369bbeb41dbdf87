-- What the store's reads ask (reads.py): workflows, tasks, attempts, output, metrics.

-- fragment: read_columns
-- Tasks as reads answer them: their columns, then what tells why a todo one waits.
{task_columns}, {wait_columns}

-- name: workflow
-- One workflow's record.
SELECT {workflow_columns} FROM workflow WHERE id = ?

-- name: workflow_tasks
-- A workflow's tasks, in file order.
SELECT {read_columns} FROM task WHERE workflow_id = ? ORDER BY position

-- name: task
-- One task.
SELECT {read_columns} FROM task WHERE id = ?

-- name: task_attempts
-- A task's attempts, first first.
SELECT {attempt_columns} FROM attempt WHERE task_id = ? ORDER BY number

-- name: workflows
-- The newest workflows.
SELECT {workflow_columns} FROM workflow ORDER BY id DESC LIMIT ?

-- name: workflows_before
-- The newest workflows older than a given one (the next page).
SELECT {workflow_columns} FROM workflow WHERE id < ? ORDER BY id DESC LIMIT ?

-- name: workflows_in_state
-- The newest workflows in one state.
SELECT {workflow_columns} FROM workflow WHERE state = ? ORDER BY id DESC LIMIT ?

-- name: workflows_in_state_before
-- The newest workflows in one state older than a given one (the next page).
SELECT {workflow_columns} FROM workflow WHERE id < ? AND state = ? ORDER BY id DESC LIMIT ?

-- name: tasks
-- Every task, by workflow and file order.
SELECT {read_columns} FROM task ORDER BY workflow_id, position

-- name: tasks_in_state
-- Every task in one state, by workflow and file order.
SELECT {read_columns} FROM task WHERE state = ? ORDER BY workflow_id, position

-- name: tasks_of_workflow
-- A workflow's tasks, in file order (as a task listing answers them).
SELECT {read_columns} FROM task WHERE workflow_id = ? ORDER BY workflow_id, position

-- name: tasks_in_state_of_workflow
-- A workflow's tasks in one state, in file order.
SELECT {read_columns} FROM task WHERE state = ? AND workflow_id = ? ORDER BY workflow_id, position

-- name: attempts_cancel_facts
-- Of many attempts ({ids}): which must stop their command, and which ended.
SELECT a.id, a.status, a.reason, t.state FROM attempt a
  JOIN task t ON t.id = a.task_id WHERE a.id IN ({ids})

-- name: attempt_status
-- Whether an attempt exists, and is still running.
SELECT status FROM attempt WHERE id = ?

-- name: attempt_output
-- An attempt's output as kept (NULL: the attempt printed nothing; no row: no attempt).
SELECT o.text FROM attempt a LEFT JOIN output o ON o.attempt_id = a.id WHERE a.id = ?

-- name: task_counts
-- How many tasks are in each state, over every workflow and its counter shards.
SELECT sum(n_todo), sum(n_in_process), sum(n_completed), sum(n_failed)
  FROM (SELECT n_todo, n_in_process, n_completed, n_failed FROM workflow
        UNION ALL SELECT n_todo, n_in_process, n_completed, n_failed
        FROM workflow_count) AS counts

-- name: attempt_counts
-- How many attempts have each status.
SELECT status, count(*) FROM attempt GROUP BY status
