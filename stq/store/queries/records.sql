-- Column lists of the records read back: records.py reads their values in this order.

-- fragment: task_columns
-- The columns of a Task record, in the order records.task_from_row reads them.
id, workflow_id, name, state, reason, depends_on, attempts_used, command, duration,
max_attempts, labels, priority, created, started, finished, runner,
description, run_if, matrix, matrix_of, attempts_used - budget_base

-- fragment: count_columns
-- A workflow's count of tasks in each state (TaskState order), selected FROM workflow.
-- Its counts at submit plus the sum of its counter shards (workflow_count).
n_todo + coalesce((SELECT sum(c.n_todo) FROM workflow_count c WHERE c.workflow_id = workflow.id), 0),
n_in_process + coalesce((SELECT sum(c.n_in_process) FROM workflow_count c WHERE c.workflow_id = workflow.id), 0),
n_completed + coalesce((SELECT sum(c.n_completed) FROM workflow_count c WHERE c.workflow_id = workflow.id), 0),
n_failed + coalesce((SELECT sum(c.n_failed) FROM workflow_count c WHERE c.workflow_id = workflow.id), 0)

-- fragment: workflow_columns
-- The columns of a Workflow record, in the order records.workflow_from_row reads them.
id, name, description, state, created, finished, {count_columns}, params

-- fragment: attempt_columns
-- The columns of an Attempt record, in the order records.attempt_from_row reads them.
id, task_id, number, status, runner, started, finished, exit_code, reason
