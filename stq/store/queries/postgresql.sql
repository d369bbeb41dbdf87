-- PostgreSQL's own statements (postgres.py), and its side of what the dialects write
-- differently: the fragments below, which the shared statements include.
-- Advisory lock keys are "STQ" and a number: 357896880128 (0x5354510000) guards
-- schema set-up, 357896880129 (0x5354510001, postgres.WRITE_LOCK) the writes.

-- name: pg_begin_write
-- Starts a write beside others (row locks), holding the write lock shared: a cancel,
-- retry or delete, which holds it alone, waits for it. One round trip for both.
BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock_shared(357896880129)

-- name: pg_begin_exclusive
-- Starts a write that no other write runs beside (cancel, retry, delete: rare and wide).
BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(357896880129)

-- name: pg_begin_read
-- Starts a read: one snapshot across its statements, no lock taken.
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY

-- fragment: for_update
-- Rows the transaction will change, locked.
FOR UPDATE

-- fragment: skip_locked
-- Rows to take unless another transaction holds them: claims and expiry pass them over.
FOR UPDATE SKIP LOCKED

-- fragment: shard
-- The row of a workflow's counters a transaction adds its moves to, of 64 at most.
-- A connection's server process runs one transaction at a time: by its pid,
-- transactions side by side rarely share a counter row.
pg_backend_pid() % 64

-- fragment: ids
-- A subquery of the ids passed as one parameter (an array): any number, one plan.
SELECT unnest(CAST(? AS bigint[]))

-- fragment: by_claimable_plain
-- No index hint: PostgreSQL plans from its statistics.

-- fragment: by_claimable_labelled
-- No index hint: PostgreSQL plans from its statistics.

-- fragment: by_running_deadline
-- No index hint: PostgreSQL plans from its statistics.

-- fragment: by_running_heartbeat
-- No index hint: PostgreSQL plans from its statistics.

-- name: pg_wake_claims
-- Wake waiting claims in every server (sent with the commit of a write that may
-- have made a task claimable).
NOTIFY stq_claimable

-- name: pg_listen_wakes
-- A process's listening connection hears the wake-ups.
LISTEN stq_claimable

-- name: pg_refresh_statistics
-- After a big submit: the planner's statistics anew, rather than after autovacuum.
ANALYZE task, dependency

-- name: pg_begin_schema
-- Schema set-up, under a lock: the first server creates the tables, the others wait and see.
BEGIN; SELECT pg_advisory_xact_lock(357896880128)

-- name: pg_schema_table
-- Whether the schema exists (NULL: a new database).
SELECT to_regclass('stq_schema')

-- name: pg_schema_version
-- The schema version the database holds.
SELECT max(version) FROM stq_schema

-- name: pg_stamp_schema
-- The database holds this schema version now.
INSERT INTO stq_schema (version) VALUES (?)
