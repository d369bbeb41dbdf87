-- How a task's end reaches the tasks that depend on it (dependents.py).

-- name: fail_downstream
-- Every task downstream of one (transitive closure) still waiting, in a workflow
-- without run_if tasks: upstream_failed. (UPDATE first, the CTE inside: see Tx.count.)
UPDATE task SET state = 'failed', reason = 'upstream_failed', finished = ?
 WHERE state = 'todo' AND id IN (
       WITH RECURSIVE downstream (id) AS (
           SELECT task_id FROM dependency WHERE upstream_id = ?
           UNION
           SELECT d.task_id FROM dependency d JOIN downstream ON d.upstream_id = downstream.id
       )
       SELECT id FROM downstream)

-- fragment: waits_on_success
-- Whether the task at the far end of edge d waits and runs only on success.
-- Read through its primary key: a join instead lets PostgreSQL drive the recursion
-- from every waiting task when its statistics predate a big submit (minutes, not ms).
(SELECT t.state = 'todo' AND t.run_if = 'on_success' FROM task t WHERE t.id = d.task_id)

-- name: fail_on_success_downstream
-- The same with run_if tasks: the walk goes through waiting on_success tasks only,
-- and the ids of the tasks it failed are read back for release.
UPDATE task SET state = 'failed', reason = 'upstream_failed', finished = ?
 WHERE state = 'todo' AND id IN (
       WITH RECURSIVE downstream (id) AS (
           SELECT d.task_id FROM dependency d WHERE d.upstream_id = ? AND {waits_on_success}
           UNION
           SELECT d.task_id FROM downstream JOIN dependency d ON d.upstream_id = downstream.id
            WHERE {waits_on_success}
       )
       SELECT id FROM downstream)
RETURNING id

-- name: release_dependents
-- A task completed in a workflow without run_if tasks: each dependent has one
-- pending dependency fewer. The dependents are locked in id order first (PostgreSQL):
-- two results releasing overlapping dependents each locked them in its own scan
-- order, deadlocked, and waited out PostgreSQL's 1 s deadlock_timeout before one
-- was run again.
UPDATE task SET pending_deps = pending_deps - 1
 WHERE id IN (SELECT t.id FROM dependency d JOIN task t ON t.id = d.task_id
               WHERE d.upstream_id = ? ORDER BY t.id {for_update})

-- name: release_one
-- The same for a workflow with run_if tasks, each dependent's counts read back:
-- they decide what it became.
{release_dependents}
RETURNING id, state, run_if, pending_deps, failed_deps

-- fragment: edges_from_ended
-- How many edges each dependent has from the tasks that just ended ({ids}).
(SELECT d.task_id, count(*) AS n FROM dependency d
  WHERE d.upstream_id IN ({ids}) GROUP BY d.task_id) AS e

-- name: release_many_completed
-- The dependents of many tasks that just completed ({ids}: a wave of skips), in one
-- statement: as many pending dependencies fewer as they have edges from those tasks.
-- Nothing here names state: an index on it would tempt PostgreSQL into scanning
-- every waiting task; release looks at the state returned instead.
UPDATE task SET pending_deps = task.pending_deps - e.n
  FROM {edges_from_ended}
 WHERE task.id = e.task_id
RETURNING task.id, task.state, task.run_if, task.pending_deps, task.failed_deps

-- name: release_many_failed
-- The same after failures ({ids}: a failure and the tasks it made upstream_failed):
-- failed dependencies more too, for the tasks that do not run only on success.
UPDATE task SET pending_deps = task.pending_deps - e.n, failed_deps = task.failed_deps + e.n
  FROM {edges_from_ended}
 WHERE task.id = e.task_id AND task.run_if <> 'on_success'
RETURNING task.id, task.state, task.run_if, task.pending_deps, task.failed_deps

-- name: skip_tasks
-- Waiting on_failure tasks ({ids}), which this transaction holds: skipped.
UPDATE task SET state = 'completed', reason = 'skipped', finished = ? WHERE id IN ({ids})

-- name: ready_to_skip
-- on_failure tasks of a workflow just submitted with nothing to wait for.
SELECT id FROM task WHERE workflow_id = ? AND state = 'todo' AND run_if = 'on_failure'
   AND pending_deps = 0 AND failed_deps = 0 ORDER BY id
