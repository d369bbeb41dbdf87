-- Statements every dialect runs the same way around its transactions.

-- name: commit
-- Ends a transaction, keeping what it wrote.
COMMIT

-- name: rollback
-- Ends a transaction, undoing what it wrote (after an error).
ROLLBACK

-- name: check
-- The least a store can answer: it is there and readable (SqlStore.check).
SELECT 1
