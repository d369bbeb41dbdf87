"""Claiming: find the first claimable task in claim order and start an attempt.

A task is claimable when it is ``todo`` with no dependency still to end
(``pending_deps = 0``, maintained as dependencies end: see ``dependents``) and its
``ready_at`` (retry_delay after a failure) has passed. Two partial indexes hold
exactly those rows in claim order (priority desc, workflow age, file order):
one for unlabelled tasks, the common case, answered by reading one index
entry; one for labelled tasks, keyed by label set first. For a runner with
labels, a loose index scan lists the distinct label sets waiting (few in
practice), and the first entry of each set the runner has every label of is
read; the best of those and the best unlabelled task wins.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from stq.model import Claim, Offer, TaskState
from stq.store import records, rules, runners
from stq.store.statements import Name, named
from stq.store.tx import Tx, shift

#: The best claimable task, unlabelled or with one label set: read-only, or taken
#: (PostgreSQL: locked, passed over if another transaction is taking it).
FIRST_PLAIN = named("claim_first_plain")
TAKE_PLAIN = named("claim_take_plain")
FIRST_LABELLED = named("claim_first_labelled")
TAKE_LABELLED = named("claim_take_labelled")
LABEL_SETS = named("claim_label_sets")
START_ATTEMPT = named("start_attempt")
MARK_IN_PROCESS = named("mark_in_process")
CLAIMED_AFTER = named("claimed_after")


def take(
    tx: Tx,
    runner: str,
    labels: Collection[str],
    after: int | None = None,
    note: bool = True,
) -> Claim | None:
    """Claim the first claimable task the runner may take (inside a write transaction).

    ``after``: the attempt whose result asked for this claim (see ``claimed_after``);
    ``note``: also note the runner as heard from (the runners view).
    """
    if note:
        runners.seen(tx, [(runner, labels)])
    candidate = find_candidate(tx, labels)
    return None if candidate is None else start_attempt(tx, candidate, runner, after)


def take_many(
    tx: Tx, names: Sequence[str], labels: Collection[str], note: Callable[[str], bool]
) -> list[Claim]:
    """``take`` for each named runner in turn (all with ``labels``), until nothing is left;
    ``note(name)``: whether to note that runner as heard from."""
    claims = []
    for runner in names:
        taken = take(tx, runner, labels, note=note(runner))
        if taken is None:
            break
        claims.append(taken)
    return claims


def claimed_after(tx: Tx, attempt_id: int, runner: str) -> Claim | None:
    """The claim that ``attempt_id``'s result already made for ``runner``, if it still runs.

    A runner that lost the answer to its result sends the result again; it
    must get the same next attempt, not a second one nobody would ever run
    (it would hold its task until the heartbeat timeout and use up an attempt).
    """
    row = tx.one(CLAIMED_AFTER, (attempt_id, runner))
    return None if row is None else _claim(row[0], row[1], tuple(row[2:]))


def find_candidate(tx: Tx, labels: Collection[str], lock: bool = True) -> tuple | None:
    """The first claimable task the runner may take (a candidate row), or None.

    ``lock`` takes the dialect's row lock (PostgreSQL: ``FOR UPDATE SKIP
    LOCKED``: a task another server is claiming right now is passed over, not
    waited for); the read-only look before a SQLite write transaction goes without.
    """
    best = tx.one(TAKE_PLAIN if lock else FIRST_PLAIN, (tx.now,))
    if labels:
        labelled = _first_labelled(tx, labels, TAKE_LABELLED if lock else FIRST_LABELLED)
        if labelled is not None and (best is None or _key(labelled) < _key(best)):
            best = labelled
    return None if best is None else tuple(best)


def offer(tx: Tx) -> Offer:
    """Which label sets have a task claimable now: one index probe, then one per set."""
    plain = tx.one(FIRST_PLAIN, (tx.now,))
    sets = tuple(
        frozenset(records.load_labels(label_set))
        for (label_set,) in tx.all(LABEL_SETS)
        if tx.one(FIRST_LABELLED, (tx.now, label_set)) is not None
    )
    return Offer(plain=plain is not None, label_sets=sets)


def _key(row: tuple) -> tuple:
    return (-row[0], row[1], row[2])


def _first_labelled(tx: Tx, labels: Collection[str], first: Name) -> tuple | None:
    """The best candidate of the label sets ``labels`` covers, by the statement ``first``."""
    sets = [row[0] for row in tx.all(LABEL_SETS)]
    best = None
    for label_set in sets:
        if rules.labels_match(records.load_labels(label_set), labels):
            row = tx.one(first, (tx.now, label_set))
            if row is not None and (best is None or _key(row) < _key(best)):
                best = tuple(row)
    return best


def start_attempt(tx: Tx, candidate: tuple, runner: str, after: int | None = None) -> Claim:
    """Create the attempt of a candidate found (and locked) in this transaction.

    Nobody else can take it meanwhile: SQLite writes run one at a time, and
    on PostgreSQL the candidate row is locked ``FOR UPDATE``.
    """
    _, workflow_id, _, task_id, name, command, env, cwd, duration, used = candidate
    number = used + 1
    deadline = None if duration is None else tx.now + duration
    attempt_id = tx.one(START_ATTEMPT, (task_id, number, runner, tx.now, tx.now, deadline, after))[
        0
    ]
    tx.run(MARK_IN_PROCESS, (number, tx.now, runner, task_id))
    shift(tx, workflow_id, TaskState.TODO, TaskState.IN_PROCESS)
    return _claim(attempt_id, number, (workflow_id, task_id, name, command, env, cwd, duration))


def _claim(attempt_id: int, number: int, task: tuple) -> Claim:
    """The claim answer for a started attempt.

    ``task``: its task's stored (workflow_id, id, name, command, env, cwd, duration).
    """
    workflow_id, task_id, name, command, env, cwd, duration = task
    return Claim(
        attempt_id=records.make_id("a", attempt_id),
        task_id=records.make_id("t", task_id),
        workflow_id=records.make_id("w", workflow_id),
        task_name=name,
        attempt_number=number,
        command=records.load_command(command),
        env=records.env_from_text(env),
        cwd=cwd,
        duration=duration,
    )
