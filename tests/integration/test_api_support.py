"""Fixtures and helpers for the API tests: a real SQLite file, a fake clock, TestClient.

(Named ``test_api_support`` so it sits with the files it serves; it holds no tests.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from stq.api.application import create_app
from stq.settings import Settings

T0 = 1_800_000_000.0


class FakeClock:
    """A clock the test moves by hand: timeouts without waiting."""

    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Api:
    """A TestClient plus the few calls most tests repeat."""

    client: testing.TestClient
    clock: FakeClock
    headers: dict[str, str]
    store: Any

    def call(self, method: str, path: str, **kwargs: Any) -> testing.Result:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        # These tests run requests in threads, as a threaded server does (long polls).
        extras = {"wsgi.multithread": True, **kwargs.pop("extras", {})}
        return self.client.simulate_request(method, path, headers=headers, extras=extras, **kwargs)

    def get(self, path: str, **kwargs: Any) -> testing.Result:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> testing.Result:
        if body is not None:
            kwargs["json"] = body
        return self.call("POST", path, **kwargs)

    def submit(self, doc: dict[str, Any]) -> dict[str, Any]:
        result = self.post("/api/v1/workflows", doc)
        assert result.status_code == 201, result.text
        return result.json

    def claim(self, runner: str = "r1", labels: list[str] | None = None) -> dict | None:
        result = self.post("/api/v1/attempts/claim", {"runner": runner, "labels": labels or []})
        assert result.status_code in (200, 204), result.text
        return result.json if result.status_code == 200 else None

    def report(self, attempt_id: str, status: str = "completed", **extra: Any) -> dict:
        body = {"status": status, "exit_code": 0 if status == "completed" else 1, **extra}
        result = self.post(f"/api/v1/attempts/{attempt_id}/result", body)
        assert result.status_code == 200, result.text
        return result.json

    def task(self, task_id: str) -> dict[str, Any]:
        result = self.get(f"/api/v1/tasks/{task_id}")
        assert result.status_code == 200, result.text
        return result.json


def workflow(name: str = "wf", **tasks: dict[str, Any]) -> dict[str, Any]:
    """A workflow document; each task defaults to command 'true'."""
    return {"name": name, "tasks": {k: {"command": "true", **v} for k, v in tasks.items()}}


MakeApi = Callable[..., Api]


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[MakeApi]:
    """Build APIs over one real SQLite file and one fake clock (stores closed afterwards)."""
    from stq.store import open_store

    clock = FakeClock()
    stores: list[Any] = []

    def build(token: str | None = None, send: str | None = None, hb_timeout: float = 60) -> Api:
        store = open_store(str(tmp_path / "stq.db"), clock=clock, heartbeat_timeout=hb_timeout)
        stores.append(store)
        settings = Settings(db=str(tmp_path / "stq.db"), token=token, heartbeat_timeout=hb_timeout)
        app = create_app(settings, store=store, clock=clock)
        headers = {"Authorization": f"Bearer {send}"} if send else {}
        return Api(testing.TestClient(app), clock, headers, store)

    yield build
    for store in stores:
        store.close()


@pytest.fixture
def api(make_api: MakeApi) -> Api:
    return make_api()
