"""Every byte a command printed is kept, in every order of output, result and the attempt's end.

A streaming runner sends its command's output in pieces (``A``, then ``B``)
and then its result carrying the rest (``C``); it may also be killed before it
sends some of them. Meanwhile the server may end the attempt itself: a cancel,
the task's ``duration`` passing, or the heartbeat timeout. Each case puts the
server's end at every place among the runner's posts and checks what
``GET .../output`` gives back: every byte sent, in order, whatever was
refused. Through the API, on a real SQLite file, with a fake clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from tests.integration import test_api_support as support
from tests.integration.test_api_output import post_output, read
from tests.integration.test_api_support import Api, workflow

make_api = support.make_api

#: What the command printed, in the pieces the runner sends (multi-byte on purpose).
A, B, C = "é one\n", "two ü\n", "end ✓\n"
DURATION = 30
HEARTBEAT_TIMEOUT = 10

#: The server's ways to end a running attempt, and the attempt status each leaves.
ENDS: dict[str, tuple[Callable[[Api, str], None], str]] = {
    "cancel": (lambda api, wid: _ok(api.post(f"/api/v1/workflows/{wid}/cancel")), "failed"),
    "duration": (lambda api, _: _advance(api, DURATION + 1), "timed_out"),
    "heartbeat": (lambda api, _: _advance(api, HEARTBEAT_TIMEOUT + 1), "failed"),
}


def _ok(answer) -> None:
    assert answer.status_code == 200, answer.text


def _advance(api: Api, seconds: float) -> None:
    """Move time on; any request lets the server expire what is due."""
    api.clock.advance(seconds)
    _ok(api.get("/api/v1/health"))


def _runner_steps(api: Api, aid: str, sent: int) -> list[Callable[[], object]]:
    """The runner's posts in order: A, B (from their offsets), the result with C.

    Only the first ``sent`` of the three are made: a runner killed after them.
    """
    steps = [
        lambda: post_output(api, aid, A, 0),
        lambda: post_output(api, aid, B, len(A.encode())),
        lambda: api.post(
            f"/api/v1/attempts/{aid}/result",
            {"status": "completed", "exit_code": 0, "output": C,
             "output_offset": len((A + B).encode())},
        ),
    ]  # fmt: skip
    return steps[:sent]


def _expected_status(end: str, sent: int, position: int) -> str:
    """How the attempt is recorded at the end of a case.

    A result is taken while the attempt runs, and also after an expiry (a late
    success: docs/semantics.md), but not after a cancel; without one, the server's
    end stands.
    """
    if sent == 3 and (position == 3 or end != "cancel"):
        return "completed"
    return ENDS[end][1]


CASES = [
    (end, sent, position)
    for end, sent in itertools.product(ENDS, (1, 2, 3))
    for position in range(sent + 1)
]


@pytest.mark.parametrize(
    ("end", "sent", "position"),
    CASES,
    ids=[f"{end}-{sent}sent-end-at-{position}" for end, sent, position in CASES],
)
def test_every_byte_sent_is_kept(
    make_api: support.MakeApi, end: str, sent: int, position: int
) -> None:
    api = make_api(hb_timeout=HEARTBEAT_TIMEOUT)
    wid = api.submit(workflow(a={"duration": DURATION}))["id"]
    claim = api.claim()
    assert claim is not None
    aid = claim["attempt_id"]
    ending = ENDS[end][0]
    steps = _runner_steps(api, aid, sent)
    answers = []
    for step in steps[:position]:
        answers.append(step())
    ending(api, wid)
    for step in steps[position:]:
        answers.append(step())

    assert all(a.status_code in (200, 409) for a in answers), [a.text for a in answers]
    expected_status = _expected_status(end, sent, position)
    if sent == 3:  # a result after a cancel is refused (its output kept); any other is taken
        assert answers[-1].status_code == (409 if expected_status == "failed" else 200)
    text, headers = read(api, aid)
    assert text == "".join((A, B, C)[:sent])
    assert headers["stq-attempt-finished"] == "true"
    assert headers["stq-output-end"] == str(len(text.encode()))
    (attempt,) = api.task(claim["task_id"])["attempts"]
    assert attempt["status"] == expected_status


def test_a_repeated_piece_after_the_end_adds_nothing(make_api: support.MakeApi) -> None:
    """A runner that lost the answer to a post sends the same bytes again, after a cancel."""
    api = make_api(hb_timeout=HEARTBEAT_TIMEOUT)
    wid = api.submit(workflow(a={"duration": DURATION}))["id"]
    claim = api.claim()
    assert claim is not None
    aid = claim["attempt_id"]
    post_output(api, aid, A + B, 0)
    _ok(api.post(f"/api/v1/workflows/{wid}/cancel"))
    assert post_output(api, aid, B, len(A.encode())).json == {"cancel": True}
    assert read(api, aid)[0] == A + B
