-- STQ store schema version 4, for SQLite and PostgreSQL alike.
-- Statements are separated by a semicolon at the end of a line.

-- A submit that carried an Idempotency-Key: the key, the sha256 (hex) of the
-- request body and the workflow it created, in the same transaction as the
-- workflow. A repeat of the key finds this row (or, while the first submit is
-- still being stored, waits for its lock on the key) instead of creating a
-- second workflow. workflow_id is NULL only inside that first transaction:
-- the key is taken before the workflow exists. Rows older than 24 h (by
-- created) count as absent and are deleted lazily by later keyed submits;
-- deleting the workflow deletes its row.
CREATE TABLE submission (
    idempotency_key TEXT PRIMARY KEY,
    body_sha256 TEXT NOT NULL,
    workflow_id bigint REFERENCES workflow (id),
    created double precision NOT NULL
);

CREATE INDEX submission_by_workflow ON submission (workflow_id);

CREATE INDEX submission_by_created ON submission (created);
