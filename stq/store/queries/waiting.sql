-- Why a todo task has not started (waiting.py).

-- fragment: wait_columns
-- What tells why a todo task waits, read after its task columns (Waits.of reads the last two).
pending_deps, ready_at

-- name: task_states
-- Every task's name and state in a workflow: which dependencies are still unfinished.
SELECT name, state FROM task WHERE workflow_id = ?
