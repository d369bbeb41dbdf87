"""The runner's heartbeat moves to another server when the current one is gone."""

from __future__ import annotations

import pytest

from stq.errors import ServerUnreachable
from stq.worker.client import Client
from stq.worker.loop import Runner, RunnerConfig

DEAD, LIVE = "http://127.0.0.1:9", "http://127.0.0.1:10"


def test_a_heartbeat_tries_the_other_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def heartbeat(self: Client, attempt_id: str, wait: float = 0.0) -> bool:
        asked.append(self.url)
        if self.url == DEAD:
            raise ServerUnreachable("gone")
        return True

    monkeypatch.setattr(Client, "heartbeat", heartbeat)
    runner = Runner(RunnerConfig(urls=(DEAD, LIVE), token=None, name="r"))
    try:
        assert runner._heartbeat("a1", 10.0) is True  # the live server's answer: cancel
        assert asked == [DEAD, LIVE]
        monkeypatch.setattr(Client, "heartbeat", _nobody_answers)
        with pytest.raises(ServerUnreachable):  # none answers: the beater logs and goes on
            runner._heartbeat("a1", 10.0)
    finally:
        runner.out.close()


def _nobody_answers(self: Client, attempt_id: str, wait: float = 0.0) -> bool:
    raise ServerUnreachable("all gone")
