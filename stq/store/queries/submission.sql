-- Idempotency keys: a keyed submit creates its workflow at most once (submission.py).

-- name: forget_expired_key
-- The submitted key's own row, if it expired (its lock taken: two late repeats create one).
DELETE FROM submission WHERE idempotency_key = ? AND created <= ?

-- name: forget_expired_keys
-- A bounded batch of other expired keys, skipping rows another server is deleting.
DELETE FROM submission WHERE idempotency_key IN (
       SELECT idempotency_key FROM submission WHERE created <= ?
        ORDER BY created LIMIT ? {skip_locked})

-- name: take_key
-- Take a key: returns a row only when this transaction took it.
INSERT INTO submission (idempotency_key, body_sha256, created) VALUES (?, ?, ?)
ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key

-- name: find_key
-- A key taken already: the body it came with and the workflow it made.
SELECT body_sha256, workflow_id FROM submission WHERE idempotency_key = ?

-- name: bind_key
-- The workflow a key's submit created.
UPDATE submission SET workflow_id = ? WHERE idempotency_key = ?

-- name: forget_workflow_keys
-- Delete a workflow: its keys first (the foreign key).
DELETE FROM submission WHERE workflow_id = ?
