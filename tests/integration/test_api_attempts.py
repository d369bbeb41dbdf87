"""Claims, heartbeats, results and output through the API, with a fake clock for every
time rule (duration, heartbeat loss, retry_delay) so nothing waits."""

from __future__ import annotations

import threading
import time

from tests.integration import test_api_support as support
from tests.integration.test_api_support import Api, workflow

api = support.api
make_api = support.make_api

CLAIM_FIELDS = {
    "attempt_id", "task_id", "workflow_id", "task_name", "attempt_number", "command", "env",
    "cwd", "duration", "heartbeat_interval",
}  # fmt: skip


def test_claim_is_204_with_nothing_to_do(api: Api) -> None:
    result = api.post("/api/v1/attempts/claim", {"runner": "r1", "labels": [], "wait": 0})
    assert result.status_code == 204
    assert result.content == b""


def test_claim_answers_every_field_and_the_heartbeat_interval(make_api: support.MakeApi) -> None:
    api = make_api(hb_timeout=30)
    doc = workflow(a={"command": ["echo", "hi"], "duration": "1m", "env": {"K": "v"}, "cwd": "w"})
    wid = api.submit(doc)["id"]
    claim = api.claim()
    assert set(claim) == CLAIM_FIELDS
    assert claim["workflow_id"] == wid and claim["task_name"] == "a"
    assert claim["command"] == ["echo", "hi"] and claim["env"] == {"K": "v"}
    assert claim["cwd"] == "w" and claim["duration"] == 60 and claim["attempt_number"] == 1
    assert claim["heartbeat_interval"] == 5.0  # a sixth of 30 s
    task = api.task(claim["task_id"])
    assert task["state"] == "in_process"
    assert task["attempts"][0]["status"] == "running" and task["attempts"][0]["runner"] == "r1"


def test_dependencies_priority_and_labels_decide_what_is_claimed(api: Api) -> None:
    api.submit(
        workflow(
            a={},
            b={"depends_on": ["a"], "priority": 5},
            gpu={"labels": ["gpu"]},
            c={"priority": 1},
        )
    )
    assert api.claim()["task_name"] == "c"  # highest priority among claimable tasks
    first = api.claim()
    assert first["task_name"] == "a"
    assert api.claim() is None  # b waits for a; gpu needs a runner with that label
    assert api.claim(labels=["gpu", "big"])["task_name"] == "gpu"
    api.report(first["attempt_id"])
    assert api.claim()["task_name"] == "b"


def test_result_is_idempotent_and_completes_the_workflow(api: Api) -> None:
    wid = api.submit(workflow(a={}))["id"]
    claim = api.claim()
    body = {"status": "completed", "exit_code": 0, "output": "hello\n", "message": None}
    path = f"/api/v1/attempts/{claim['attempt_id']}/result"
    first, second = api.post(path, body), api.post(path, body)
    assert first.status_code == second.status_code == 200
    assert first.json == second.json == {"attempt_status": "completed", "task_state": "completed"}
    assert api.get(f"/api/v1/workflows/{wid}").json["state"] == "completed"
    output = api.get(f"/api/v1/attempts/{claim['attempt_id']}/output")
    assert output.status_code == 200 and output.text == "hello\n"
    assert output.headers["content-type"] == "text/plain; charset=utf-8"


def test_output_keeps_the_last_mebibyte(api: Api) -> None:
    api.submit(workflow(a={}))
    claim = api.claim()
    api.report(claim["attempt_id"], output="x" * 100 + "y" * (1024 * 1024))
    text = api.get(f"/api/v1/attempts/{claim['attempt_id']}/output").text
    assert len(text) == 1024 * 1024 and set(text) == {"y"}


def test_retry_delay_holds_the_next_attempt_back(api: Api) -> None:
    api.submit(workflow(a={"max_attempts": 2, "retry_delay": "30s"}))
    claim = api.claim()
    assert api.report(claim["attempt_id"], "failed")["task_state"] == "todo"
    assert api.claim() is None
    api.clock.advance(29)
    assert api.claim() is None
    api.clock.advance(2)
    assert api.claim()["attempt_number"] == 2


def test_duration_passing_times_the_attempt_out(api: Api) -> None:
    api.submit(workflow(a={"duration": 10, "max_attempts": 2}))
    claim = api.claim()
    api.clock.advance(11)
    task = api.task(claim["task_id"])
    assert task["attempts"][0]["status"] == "timed_out"
    assert api.claim()["attempt_number"] == 2
    # a late success of the timed-out attempt still completes the task
    late = api.report(claim["attempt_id"])
    assert late["task_state"] == "completed"


def test_heartbeat_loss_fails_the_attempt_and_heartbeats_keep_it(api: Api) -> None:
    api.submit(workflow(a={"max_attempts": 2}, b={}))
    kept, lost = api.claim(), api.claim()
    for _ in range(3):
        api.clock.advance(40)
        beat = api.post(f"/api/v1/attempts/{kept['attempt_id']}/heartbeat")  # no body is fine
        assert beat.status_code == 200 and beat.json == {"cancel": False}
    assert api.task(kept["task_id"])["attempts"][0]["status"] == "running"
    lost_task = api.task(lost["task_id"])
    assert lost_task["attempts"][0]["status"] in ("failed", "timed_out")
    assert lost_task["state"] == "failed"


def test_unknown_fields_and_bad_types_are_400_with_details(api: Api) -> None:
    api.submit(workflow(a={}))
    claim = api.claim()
    aid = claim["attempt_id"]
    cases = [
        ("/api/v1/attempts/claim", {"runner": "r", "colour": "red"}, "/"),
        ("/api/v1/attempts/claim", {"runner": "r", "wait": -1}, "/wait"),
        ("/api/v1/attempts/claim", {"labels": []}, "/"),
        (f"/api/v1/attempts/{aid}/result", {"status": "done"}, "/status"),
        (f"/api/v1/attempts/{aid}/result", {"status": "failed", "extra": 1}, "/"),
        (f"/api/v1/attempts/{aid}/heartbeat", {"alive": True}, "/"),
        (f"/api/v1/attempts/{aid}/heartbeat", [1], "/"),
    ]
    for path, body, where in cases:
        result = api.post(path, body)
        assert result.status_code == 400, (path, body)
        details = result.json["error"]["details"]
        assert details and details[0]["path"] in (where, ""), details
        assert details[0]["message"]
    assert api.task(claim["task_id"])["state"] == "in_process"  # nothing was recorded


def test_unknown_attempt_is_404_for_heartbeat_and_result(api: Api) -> None:
    for tail, body in (("heartbeat", {}), ("result", {"status": "completed"})):
        result = api.post(f"/api/v1/attempts/nope/{tail}", body)
        assert result.status_code == 404 and result.json["error"]["code"] == "not_found"


def test_next_extension_claims_the_following_attempt(api: Api) -> None:
    api.submit(workflow(a={}, b={"depends_on": ["a"]}))
    first = api.claim()
    answer = api.report(first["attempt_id"], next={"runner": "r1", "labels": []})
    assert answer["task_state"] == "completed"
    assert answer["next"]["task_name"] == "b" and set(answer["next"]) == CLAIM_FIELDS
    last = api.report(answer["next"]["attempt_id"], next={"runner": "r1"})
    assert last["next"] is None


def test_long_poll_waits_then_answers_204(api: Api) -> None:
    started = time.monotonic()
    result = api.post("/api/v1/attempts/claim", {"runner": "r", "wait": 0.3})
    elapsed = time.monotonic() - started
    assert result.status_code == 204
    assert 0.29 <= elapsed < 2.0


def test_long_poll_wakes_on_a_submit_in_the_same_process(api: Api) -> None:
    answers: list[tuple[float, int]] = []

    def claim() -> None:
        result = api.post("/api/v1/attempts/claim", {"runner": "r", "wait": 5})
        answers.append((time.monotonic(), result.status_code))

    thread = threading.Thread(target=claim)
    thread.start()
    time.sleep(0.1)  # let the claim start waiting (nothing observable to poll for)
    api.submit(workflow(a={}))
    submitted = time.monotonic()
    thread.join(10)
    woke_at, status = answers[0]
    assert status == 200
    assert woke_at - submitted < 0.3  # woken by the change, not by the 0.5 s re-try


def test_long_poll_retries_for_time_based_readiness(api: Api) -> None:
    api.submit(workflow(a={"max_attempts": 2, "retry_delay": 30}))
    api.report(api.claim()["attempt_id"], "failed")
    answers: list[int] = []
    thread = threading.Thread(
        target=lambda: answers.append(
            api.post("/api/v1/attempts/claim", {"runner": "r", "wait": 5}).status_code
        )
    )
    started = time.monotonic()
    thread.start()
    api.clock.advance(31)  # no commit happens: only the periodic re-try can notice
    thread.join(10)
    assert answers == [200]
    assert time.monotonic() - started < 1.5


def test_a_wait_over_30_is_accepted(api: Api) -> None:
    api.submit(workflow(a={}))
    result = api.post("/api/v1/attempts/claim", {"runner": "r", "wait": 1000})
    assert result.status_code == 200 and result.json["task_name"] == "a"


def test_a_server_without_threads_caps_the_long_poll_at_a_second(api: Api) -> None:
    started = time.monotonic()
    result = api.post(
        "/api/v1/attempts/claim",
        {"runner": "r", "wait": 20},
        extras={"wsgi.multithread": False},
    )
    assert result.status_code == 204
    assert time.monotonic() - started < 3.0
