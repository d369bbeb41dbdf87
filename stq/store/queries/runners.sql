-- The runners view: who the servers heard from, and which of them are busy (runners.py).

-- name: runner_seen
-- A runner was heard from now, with these labels.
INSERT INTO runner (name, labels, last_seen) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET labels = excluded.labels, last_seen = excluded.last_seen

-- name: runner_beat
-- A runner's heartbeat: alive now (its labels are known from its claim).
UPDATE runner SET last_seen = ? WHERE name = ?

-- name: runners_forget
-- Runners not heard from for longer than they stay listed.
DELETE FROM runner WHERE last_seen < ?

-- name: runners_listed
-- Runners heard from lately, by name.
SELECT name, labels, last_seen FROM runner WHERE last_seen >= ? ORDER BY name

-- name: runners_running
-- Who runs what: few attempts run at a time, so the status index finds them.
SELECT runner, id, task_id, heartbeat FROM attempt WHERE status = 'running'
