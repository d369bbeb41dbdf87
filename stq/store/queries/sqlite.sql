-- SQLite's own statements (sqlite.py), and its side of what the dialects write
-- differently: the fragments below, which the shared statements include.

-- name: sqlite_begin_immediate
-- Starts a write: the database's one write lock is taken at once, so two writes never
-- both read a task as claimable (also for cancel, retry and delete, and schema set-up).
BEGIN IMMEDIATE

-- name: sqlite_begin_deferred
-- Starts a read: one snapshot across its statements.
BEGIN DEFERRED

-- fragment: for_update
-- Rows a write will change need no lock of their own: a write holds the whole database.

-- fragment: skip_locked
-- Rows to take unless another transaction holds them: none can, writes run one at a time.

-- fragment: shard
-- The row of a workflow's counters a write adds its moves to: one, writes run one at a time.
0

-- fragment: ids
-- A subquery of the ids passed as one parameter (a JSON list): any number, one plan.
SELECT value FROM json_each(?)

-- Index hints: without statistics SQLite prefers an equality on state over a partial index.

-- fragment: by_claimable_plain
-- Read unlabelled claimable tasks through their own partial index.
INDEXED BY task_claimable_plain

-- fragment: by_claimable_labelled
-- Read labelled claimable tasks through their own partial index.
INDEXED BY task_claimable_labelled

-- fragment: by_running_deadline
-- Read running attempts with a deadline through their own partial index.
INDEXED BY attempt_running_deadline

-- fragment: by_running_heartbeat
-- Read running attempts by heartbeat through their own partial index.
INDEXED BY attempt_running_heartbeat

-- name: sqlite_data_version
-- The change marker: it moves when another connection commits.
PRAGMA data_version

-- name: sqlite_user_version
-- The schema version the file holds (0: a new file).
PRAGMA user_version

-- name: sqlite_stamp_schema
-- The file holds schema version 7 now (dialect.SCHEMA_VERSION: a test keeps them equal).
PRAGMA user_version = 7

-- name: sqlite_wait_long
-- Wait up to 30 s (sqlite.BUSY_TIMEOUT) for another connection's lock before 'database is locked'.
PRAGMA busy_timeout = 30000

-- name: sqlite_wait_briefly
-- Wait at most 5 ms for the current writer and readers: a checkpoint that cannot rewind
-- the WAL gives up rather than hold every writer back.
PRAGMA busy_timeout = 5

-- name: sqlite_journal_wal
-- WAL: readers run while one writer commits.
PRAGMA journal_mode = WAL

-- name: sqlite_synchronous_normal
-- In WAL, a commit is in the WAL file before COMMIT returns: a killed process loses nothing.
PRAGMA synchronous = NORMAL

-- name: sqlite_autocheckpoint
-- SQLite checkpoints on its own at 10,000 WAL pages: after a large write, or if ours keep failing.
PRAGMA wal_autocheckpoint = 10000

-- name: sqlite_foreign_keys
-- Foreign keys checked, so a bug can never leave an attempt without its task.
PRAGMA foreign_keys = ON

-- name: sqlite_checkpoint_passive
-- Copy the WAL back into the database without stopping anyone.
PRAGMA wal_checkpoint(PASSIVE)

-- name: sqlite_checkpoint_restart
-- Copy the pages written meanwhile, writers held back, and rewind the WAL; first column: busy.
PRAGMA wal_checkpoint(RESTART)
