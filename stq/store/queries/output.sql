-- An attempt's captured output, the last MiB kept (output.py).

-- name: output_kept
-- What is kept of an attempt's output, and where it sits in all it printed.
SELECT text, start_byte, end_byte FROM output WHERE attempt_id = ?

-- name: output_insert
-- An attempt's first output.
INSERT INTO output (attempt_id, text, start_byte, end_byte) VALUES (?, ?, ?, ?)

-- name: output_update
-- An attempt's output, more of it (and its start moved on past what fell off).
UPDATE output SET text = ?, start_byte = ?, end_byte = ? WHERE attempt_id = ?
