-- STQ store schema version 6, for SQLite and PostgreSQL alike.
-- Statements are separated by a semicolon at the end of a line.

-- Output arrives in pieces while a command runs. Each attempt's kept text is
-- addressed by absolute byte offsets into everything the command printed:
-- start_byte is the first byte still kept (earlier ones fell to the 1 MiB tail
-- rule), end_byte the byte after the last one received. NULL in rows written
-- before this version: the text is then all of it, from byte 0.
ALTER TABLE output ADD COLUMN start_byte bigint;

ALTER TABLE output ADD COLUMN end_byte bigint;
