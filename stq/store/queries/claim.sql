-- Claiming: the first claimable task in claim order, and its attempt (claim.py).
-- Two partial indexes hold exactly the claimable rows in claim order: one for
-- unlabelled tasks, one for labelled tasks keyed by label set first.

-- fragment: claim_order
-- Claim order: higher priority first, then older workflow, then file order.
ORDER BY priority DESC, workflow_id, position

-- fragment: claimable
-- A task is claimable: todo, no dependency still to end, its retry delay passed.
state = 'todo' AND pending_deps = 0 AND ready_at <= ?

-- fragment: candidate_columns
-- A candidate's claim order, then what starting an attempt of it needs (one round trip).
priority, workflow_id, position, id, name, command, env, cwd, duration, attempts_used

-- fragment: waiting_labelled
-- A labelled task with no dependency still to end (ready or in its retry delay).
state = 'todo' AND pending_deps = 0 AND labels IS NOT NULL

-- name: claim_first_plain
-- The best unlabelled claimable task (the first entry of task_claimable_plain), unlocked.
SELECT {candidate_columns} FROM task {by_claimable_plain}
 WHERE {claimable} AND labels IS NULL {claim_order} LIMIT 1

-- name: claim_take_plain
-- The same, locked unless another transaction is taking it (then passed over).
{claim_first_plain} {skip_locked}

-- name: claim_label_sets
-- The distinct label sets of claimable tasks: a loose scan, one index probe per set.
WITH RECURSIVE label_sets (labels) AS (
    SELECT min(labels) FROM task {by_claimable_labelled} WHERE {waiting_labelled}
    UNION ALL
    SELECT (SELECT min(labels) FROM task {by_claimable_labelled}
             WHERE {waiting_labelled} AND labels > label_sets.labels)
      FROM label_sets WHERE label_sets.labels IS NOT NULL
)
SELECT labels FROM label_sets WHERE labels IS NOT NULL

-- name: claim_first_labelled
-- The best claimable task with exactly this label set, unlocked.
SELECT {candidate_columns} FROM task {by_claimable_labelled}
 WHERE {claimable} AND labels IS NOT NULL AND labels = ? {claim_order} LIMIT 1

-- name: claim_take_labelled
-- The same, locked unless another transaction is taking it (then passed over).
{claim_first_labelled} {skip_locked}

-- name: start_attempt
-- A claimed task's new attempt, running for its runner; its id.
INSERT INTO attempt (task_id, number, status, runner, started, heartbeat, deadline, claimed_after)
VALUES (?, ?, 'running', ?, ?, ?, ?, ?) RETURNING id

-- name: mark_in_process
-- A claimed task is in process, its attempt counted.
UPDATE task SET state = 'in_process', attempts_used = ?, started = ?, runner = ? WHERE id = ?

-- name: claimed_after
-- The attempt a result's first copy claimed, while it still runs for the same runner.
-- Few attempts are running at a time, so the status index finds it.
SELECT a.id, a.number, t.workflow_id, t.id, t.name, t.command, t.env, t.cwd, t.duration
  FROM attempt a JOIN task t ON t.id = a.task_id
 WHERE a.status = 'running' AND a.claimed_after = ? AND a.runner = ?
