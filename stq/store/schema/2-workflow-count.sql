-- STQ store schema version 2, for SQLite and PostgreSQL alike (on top of
-- version 1 of sqlite.sql or postgres.sql).
-- Statements are separated by a semicolon at the end of a line.

-- Per-workflow task counters in shards. A workflow's count of tasks in a
-- state is workflow.n_<state> (its counts at submit) plus the sum of its rows
-- here. Each write transaction adds its moves to the row of its shard
-- (SQLite: always 0; PostgreSQL: by server connection), created on first use,
-- so writes running side by side on PostgreSQL do not all queue for one row
-- until their commits are flushed.
CREATE TABLE workflow_count (
    workflow_id bigint NOT NULL REFERENCES workflow (id),
    shard INTEGER NOT NULL,
    n_todo INTEGER NOT NULL DEFAULT 0,
    n_in_process INTEGER NOT NULL DEFAULT 0,
    n_completed INTEGER NOT NULL DEFAULT 0,
    n_failed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workflow_id, shard)
);
