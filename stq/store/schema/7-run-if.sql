-- STQ store schema version 7, for SQLite and PostgreSQL alike.
-- Statements are separated by a semicolon at the end of a line.

-- When a task runs, told by how its dependencies ended: on_success (every
-- one completed), on_failure (every one terminal, one failed; completed with
-- reason 'skipped' when all completed) or always (every one terminal).
-- pending_deps now counts dependencies not yet terminal (for an on_success
-- task the same as not yet completed: it fails as soon as one fails) and
-- failed_deps those that failed, so a todo task with pending_deps = 0 stays
-- exactly the claimable one and the claim indexes are unchanged.
ALTER TABLE task ADD COLUMN run_if TEXT NOT NULL DEFAULT 'on_success';

ALTER TABLE task ADD COLUMN failed_deps INTEGER NOT NULL DEFAULT 0;

-- Free text for people; for an expansion of a matrix task, its values as
-- rendered text (a JSON object, in key order) and the matrix task's name.
ALTER TABLE task ADD COLUMN description TEXT;

ALTER TABLE task ADD COLUMN matrix TEXT;

ALTER TABLE task ADD COLUMN matrix_of TEXT;

-- The workflow's params, final values (a JSON object; NULL for none), and
-- whether any of its tasks is on_failure or always (1): workflows without
-- such tasks, most of them, keep the plain paths of completions and failures.
ALTER TABLE workflow ADD COLUMN params TEXT;

ALTER TABLE workflow ADD COLUMN has_run_if INTEGER NOT NULL DEFAULT 0;
