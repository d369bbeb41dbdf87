-- STQ store schema for PostgreSQL, version 1 (stq_schema.version).
-- The same tables and indexes as sqlite.sql, in PostgreSQL types: identity
-- columns for AUTOINCREMENT (never reused), double precision for REAL, bigint
-- ids. Applied once, under pg_advisory_xact_lock, by the first server that
-- finds no stq_schema row; later changes add migrations keyed by version.
-- Statements are separated by a semicolon at the end of a line.

-- One submitted workflow. n_* are maintained per-state task counters so
-- reading a workflow's counts never scans its tasks.
CREATE TABLE workflow (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    state TEXT NOT NULL,
    created double precision NOT NULL,
    finished double precision,
    n_todo INTEGER NOT NULL DEFAULT 0,
    n_in_process INTEGER NOT NULL DEFAULT 0,
    n_completed INTEGER NOT NULL DEFAULT 0,
    n_failed INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX workflow_by_state ON workflow (state, id);

-- One task. position is its file order; pending_deps counts dependencies not
-- yet completed; budget_base is attempts_used at the last retry (attempts
-- left = max_attempts - (attempts_used - budget_base)); ready_at is the
-- earliest time it may be claimed (retry_delay after a failure).
-- labels is a JSON list, NULL when the task has none (the common, fast case).
CREATE TABLE task (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id bigint NOT NULL REFERENCES workflow (id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    command TEXT NOT NULL,
    env TEXT NOT NULL,
    cwd TEXT,
    duration double precision,
    max_attempts INTEGER NOT NULL,
    labels TEXT COLLATE "C",
    priority INTEGER NOT NULL,
    retry_delay double precision NOT NULL,
    depends_on TEXT NOT NULL,
    pending_deps INTEGER NOT NULL,
    attempts_used INTEGER NOT NULL DEFAULT 0,
    budget_base INTEGER NOT NULL DEFAULT 0,
    ready_at double precision NOT NULL DEFAULT 0,
    created double precision NOT NULL,
    started double precision,
    finished double precision,
    runner TEXT,
    UNIQUE (workflow_id, position)
);

-- Claim order over claimable tasks: the claim reads the first row.
CREATE INDEX task_claimable_plain ON task (priority DESC, workflow_id, position)
    WHERE state = 'todo' AND pending_deps = 0 AND labels IS NULL;

-- Labelled claimable tasks grouped by label set, each group in claim order: a
-- claim visits the few distinct label sets, then one entry per matching set.
CREATE INDEX task_claimable_labelled ON task (labels, priority DESC, workflow_id, position)
    WHERE state = 'todo' AND pending_deps = 0 AND labels IS NOT NULL;

CREATE INDEX task_by_state ON task (state, workflow_id, position);

-- Edges of the DAG: task_id depends on upstream_id.
CREATE TABLE dependency (
    upstream_id bigint NOT NULL REFERENCES task (id),
    task_id bigint NOT NULL REFERENCES task (id),
    PRIMARY KEY (upstream_id, task_id)
);

CREATE INDEX dependency_by_task ON dependency (task_id);

-- One run of a task. deadline = started + duration (NULL: no duration);
-- ack_* hold the answer given to the first result so a repeat gets the same.
CREATE TABLE attempt (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id bigint NOT NULL REFERENCES task (id),
    number INTEGER NOT NULL,
    status TEXT NOT NULL,
    runner TEXT NOT NULL,
    started double precision NOT NULL,
    heartbeat double precision NOT NULL,
    deadline double precision,
    finished double precision,
    exit_code INTEGER,
    reason TEXT,
    ack_attempt TEXT,
    ack_task TEXT
);

CREATE INDEX attempt_by_task ON attempt (task_id, number);

CREATE INDEX attempt_by_status ON attempt (status);

-- Expiry checks read only running attempts, through these two small indexes.
CREATE INDEX attempt_running_deadline ON attempt (deadline)
    WHERE status = 'running' AND deadline IS NOT NULL;

CREATE INDEX attempt_running_heartbeat ON attempt (heartbeat) WHERE status = 'running';

-- Captured output (the last MiB), apart from the attempt rows so lists stay small.
CREATE TABLE output (
    attempt_id bigint PRIMARY KEY REFERENCES attempt (id),
    text TEXT NOT NULL
);

-- Which schema version this database holds (one row).
CREATE TABLE stq_schema (
    version INTEGER NOT NULL
);

-- (Databases created by earlier builds of version 1 also hold an unused
-- one-row table stq_change: long polls now wake through LISTEN/NOTIFY.)
