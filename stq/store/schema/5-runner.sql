-- STQ store schema version 5, for SQLite and PostgreSQL alike.
-- Statements are separated by a semicolon at the end of a line.

-- The runners the servers have heard from. A runner is its name: no
-- registration step, a row is written by its claims (the labels it claims
-- with), while it waits in a long poll, and by its heartbeats. Whether it is
-- busy is read from its running attempt. Rows not seen for ten minutes are
-- deleted lazily.
CREATE TABLE runner (
    name TEXT PRIMARY KEY,
    labels TEXT NOT NULL,
    last_seen double precision NOT NULL
);
