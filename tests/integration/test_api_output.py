"""Output while a command runs, kept whatever ends the attempt; heartbeats held open.

Through the API with a real SQLite file and a fake clock (see test_api_support).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from stq.settings import MAX_OUTPUT_BYTES
from tests.integration import test_api_support as support
from tests.integration.test_api_support import Api, workflow

api = support.api
make_api = support.make_api


def post_output(api: Api, attempt_id: str, text: str, offset: int | None = None) -> Any:
    params = {} if offset is None else {"offset": offset}
    return api.call(
        "POST",
        f"/api/v1/attempts/{attempt_id}/output",
        body=text.encode(),
        params=params,
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )


def read(api: Api, attempt_id: str, offset: int | None = None) -> tuple[str, dict[str, str]]:
    params = {} if offset is None else {"offset": offset}
    got = api.get(f"/api/v1/attempts/{attempt_id}/output", params=params)
    assert got.status_code == 200, got.text
    names = ("stq-attempt-finished", "stq-output-start", "stq-output-end")
    return got.text, {name: got.headers[name] for name in names}


def running(api: Api) -> str:
    api.submit(workflow(a={"max_attempts": 2}))
    claim = api.claim()
    assert claim is not None
    return claim["attempt_id"]


def test_output_arrives_in_pieces_and_is_read_from_an_offset(api: Api) -> None:
    aid = running(api)
    assert post_output(api, aid, "one\n", 0).json == {"cancel": False}
    assert post_output(api, aid, "two é\n", 4).status_code == 200
    assert read(api, aid) == (
        "one\ntwo é\n",
        {"stq-attempt-finished": "false", "stq-output-start": "0", "stq-output-end": "11"},
    )
    # the start header is the first byte still kept, whatever offset was asked for
    kept = {"stq-attempt-finished": "false", "stq-output-start": "0", "stq-output-end": "11"}
    assert read(api, aid, offset=4) == ("two é\n", kept)
    # an offset inside 'é' (bytes 8-9) starts at the next whole character
    assert read(api, aid, offset=9) == ("\n", kept)
    assert read(api, aid, offset=11) == ("", kept)


def test_a_repeated_post_is_harmless_and_a_gap_is_refused(api: Api) -> None:
    aid = running(api)
    post_output(api, aid, "abc", 0)
    assert post_output(api, aid, "abcdef", 0).status_code == 200  # 'abc' again, then 'def'
    assert read(api, aid)[0] == "abcdef"
    gap = post_output(api, aid, "xyz", 10)
    assert gap.status_code == 409 and "gap" in gap.json["error"]["message"]
    assert read(api, aid)[0] == "abcdef"  # nothing changed
    assert post_output(api, aid, "ghi").status_code == 200  # no offset: appended
    assert read(api, aid)[0] == "abcdefghi"


def test_only_the_last_mebibyte_is_kept_and_offsets_stay_absolute(api: Api) -> None:
    aid = running(api)
    chunk = "x" * (512 * 1024)
    for n in range(3):
        assert post_output(api, aid, chunk, n * len(chunk)).status_code == 200
    text, headers = read(api, aid)
    assert len(text) == MAX_OUTPUT_BYTES
    assert headers["stq-output-start"] == str(3 * len(chunk) - MAX_OUTPUT_BYTES)
    assert headers["stq-output-end"] == str(3 * len(chunk))
    assert read(api, aid, offset=0)[1]["stq-output-start"] == headers["stq-output-start"]
    # past the kept start, the text begins at the offset and the header still says what is kept
    text, later = read(api, aid, offset=3 * len(chunk) - 10)
    assert text == "x" * 10 and later == headers


def test_the_result_adds_only_what_was_not_sent(api: Api) -> None:
    aid = running(api)
    post_output(api, aid, "streamed\n", 0)
    api.report(aid, output="streamed\nlast\n"[9:], output_offset=9)
    text, headers = read(api, aid)
    assert text == "streamed\nlast\n" and headers["stq-attempt-finished"] == "true"
    # a result whose output overlaps what the server has (an answer lost on the way)
    aid2 = running(api)
    post_output(api, aid2, "abc", 0)
    api.report(aid2, output="bcd", output_offset=1)
    assert read(api, aid2)[0] == "abcd"


@pytest.mark.parametrize("order", ["output-then-cancel", "cancel-then-output"])
def test_output_of_a_cancelled_attempt_is_kept(api: Api, order: str) -> None:
    aid = running(api)
    wid = _workflow_of(api, aid)
    if order == "output-then-cancel":
        post_output(api, aid, "before\n", 0)
        api.post(f"/api/v1/workflows/{wid}/cancel")
        assert post_output(api, aid, "after\n", 7).json == {"cancel": True}
    else:
        api.post(f"/api/v1/workflows/{wid}/cancel")
        assert post_output(api, aid, "before\nafter\n", 0).json == {"cancel": True}
    refused = api.post(
        f"/api/v1/attempts/{aid}/result",
        {"status": "failed", "exit_code": -15, "output": "end\n", "output_offset": 13},
    )
    assert refused.status_code == 409  # the result is refused...
    assert read(api, aid)[0] == "before\nafter\nend\n"  # ...but not what the command printed


def test_output_of_an_attempt_presumed_lost_is_kept(make_api: support.MakeApi) -> None:
    api = make_api(hb_timeout=10)
    aid = running(api)
    api.clock.advance(11)  # past the heartbeat timeout: the attempt is presumed lost
    assert api.get("/api/v1/health").status_code == 200
    assert post_output(api, aid, "still here\n", 0).status_code == 200
    api.report(aid, status="failed", output="bye\n", output_offset=11)
    text, headers = read(api, aid)
    assert text == "still here\nbye\n" and headers["stq-attempt-finished"] == "true"


def held_heartbeat(api: Api, aid: str, then: Callable[[], object]) -> tuple[Any, float]:
    """A heartbeat held up to 10 s, ``then()`` done while it is held: its answer, and after
    how many seconds it came."""
    answers: list[tuple[Any, float]] = []

    def beat() -> None:
        started = time.monotonic()
        got = api.post(f"/api/v1/attempts/{aid}/heartbeat", {"wait": 10})
        answers.append((got.json, time.monotonic() - started))

    holder = threading.Thread(target=beat)
    holder.start()
    time.sleep(0.3)  # the heartbeat is being held (nothing to poll for from here)
    assert not answers
    then()
    holder.join(5)
    assert answers, "no answer within 5 s"
    return answers[0]


def test_a_held_heartbeat_answers_at_once_on_cancel(make_api: support.MakeApi) -> None:
    api = make_api(hb_timeout=60)  # a heartbeat interval of 10 s
    aid = running(api)
    wid = _workflow_of(api, aid)
    answer, after = held_heartbeat(api, aid, lambda: api.post(f"/api/v1/workflows/{wid}/cancel"))
    assert answer == {"cancel": True} and after < 2.0


def test_a_held_heartbeat_ends_when_its_attempt_does(api: Api) -> None:
    aid = running(api)
    answer, after = held_heartbeat(api, aid, lambda: api.report(aid))
    assert answer == {"cancel": False} and after < 2.0


def _task_of(api: Api, attempt_id: str) -> str:
    tasks = api.get("/api/v1/tasks").json["tasks"]
    for task in tasks:
        for attempt in api.task(task["id"])["attempts"]:
            if attempt["id"] == attempt_id:
                return task["id"]
    raise AssertionError(f"no task has attempt {attempt_id}")


def _workflow_of(api: Api, attempt_id: str) -> str:
    return api.task(_task_of(api, attempt_id))["workflow_id"]
