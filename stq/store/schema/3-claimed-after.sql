-- STQ store schema version 3, for SQLite and PostgreSQL alike.
-- Statements are separated by a semicolon at the end of a line.

-- The attempt whose result claimed this one (a result sent with "next"), or
-- NULL for a plain claim. A repeat of that result (its answer was lost on the
-- way) is answered with this attempt again instead of claiming a second one
-- that the runner would never run.
ALTER TABLE attempt ADD COLUMN claimed_after bigint;
