"""Idempotency keys: a submit that carries one creates its workflow at most once.

The key is taken *before* the workflow is inserted, in the same write
transaction, so whoever takes it first is the only one that creates. On
SQLite every write holds the database's one write lock (``BEGIN
IMMEDIATE``), so a repeat simply runs after the first and finds its row. On
PostgreSQL writes run side by side: the key's primary key decides, as
``INSERT ... ON CONFLICT DO NOTHING`` waits for another transaction that
inserted the same key to end. If that one commits, the insert does nothing
and the next statement (a new snapshot under ``READ COMMITTED``) reads its
row; if it rolls back, the insert goes ahead. So a repeat that arrives while
the first is being stored waits for it, on any number of servers.

A key counts for ``IDEMPOTENCY_WINDOW`` by the store's clock. An expired row
for the key being submitted is deleted first (taking its lock, so two late
repeats of an old key still create one workflow), and each keyed submit
deletes a bounded batch of other expired rows, skipping rows another server
is deleting: old keys go lazily, with no background job.
"""

from __future__ import annotations

from stq.errors import Conflict
from stq.store import records
from stq.store.base import IDEMPOTENCY_WINDOW, Idempotency
from stq.store.statements import named
from stq.store.tx import Tx

#: Expired keys (other than the one submitted) deleted by one keyed submit.
CLEANUP_BATCH = 100

FORGET_EXPIRED_KEY = named("forget_expired_key")
FORGET_EXPIRED_KEYS = named("forget_expired_keys")
TAKE_KEY = named("take_key")
FIND_KEY = named("find_key")
BIND_KEY = named("bind_key")
#: Run by ``delete_workflow`` before the workflow row goes (the foreign key).
FORGET_WORKFLOW_KEYS = named("forget_workflow_keys")


def take(tx: Tx, once: Idempotency) -> int | None:
    """Take ``once.key`` for a workflow this transaction will create (None), or the first one's id.

    ``Conflict`` when the key's first submit had another body. Tried twice: a
    row found taken may be deleted before it is read, when it expired for
    another server's clock meanwhile; the key is then free again.
    """
    cutoff = tx.now - IDEMPOTENCY_WINDOW
    tx.run(FORGET_EXPIRED_KEY, (once.key, cutoff))
    tx.run(FORGET_EXPIRED_KEYS, (cutoff, CLEANUP_BATCH))
    for _ in range(2):
        if tx.one(TAKE_KEY, (once.key, once.body_sha256, tx.now)) is not None:
            return None
        row = tx.one(FIND_KEY, (once.key,))
        if row is None:
            continue
        body_sha256, workflow_id = row
        if body_sha256 != once.body_sha256:
            raise Conflict(
                f"Idempotency-Key {once.key!r} was used in the last 24 h for another request "
                f"body (workflow {records.make_id('w', workflow_id)}): send a new key for a "
                "new workflow"
            )
        return int(workflow_id)
    raise Conflict(f"Idempotency-Key {once.key!r} expired while in use: send the request again")


def bind(tx: Tx, once: Idempotency, workflow_id: int) -> None:
    """Record the workflow the key's submit created (in the transaction that took the key)."""
    tx.run(BIND_KEY, (workflow_id, once.key))
