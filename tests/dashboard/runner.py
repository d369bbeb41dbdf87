"""A tiny client of the public HTTP API, runner endpoints included.

The dashboard tests use it to submit workflows and to play the runner protocol
step by step (claim one attempt, report its result), so a test decides exactly
when a task turns blue, green or red and can watch the page follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class ApiClient:
    """``requests`` against one live server, with an optional bearer token."""

    url: str
    token: str | None = None
    session: requests.Session = field(default_factory=requests.Session)

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.session.request(
            method, f"{self.url}/api/v1{path}", headers=headers, timeout=30, **kwargs
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        resp = self._send(method, path, **kwargs)
        assert resp.status_code < 400, f"{method} {path}: {resp.status_code} {resp.text[:500]}"
        return resp

    def status(self, method: str, path: str) -> int:
        """The status a call answers, whatever it is (the other calls fail on any error)."""
        return self._send(method, path).status_code

    def submit(self, document: dict[str, Any]) -> str:
        """POST a workflow document; its id."""
        return self._call("POST", "/workflows", json=document).json()["id"]

    def workflows(self) -> list[dict[str, Any]]:
        return self._call("GET", "/workflows", params={"limit": 1000}).json()["workflows"]

    def delete(self, workflow_id: str) -> None:
        self._call("DELETE", f"/workflows/{workflow_id}")

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        return self._call("GET", f"/workflows/{workflow_id}").json()

    def tasks(self, workflow_id: str) -> dict[str, dict[str, Any]]:
        """The workflow's tasks by name."""
        return {t["name"]: t for t in self.workflow(workflow_id)["tasks"]}

    def cancel(self, workflow_id: str) -> None:
        self._call("POST", f"/workflows/{workflow_id}/cancel")

    def ask(self, runner: str, labels: Sequence[str] = ()) -> requests.Response:
        """Ask for an attempt without waiting, as a runner with ``labels`` (204: none)."""
        body = {"runner": runner, "labels": list(labels), "wait": 0}
        return self._call("POST", "/attempts/claim", json=body)

    def claim(self, runner: str = "test-runner") -> dict[str, Any]:
        """Claim one attempt now; fails the test when nothing is claimable."""
        resp = self.ask(runner)
        assert resp.status_code == 200, "nothing was claimable"
        return resp.json()

    def runners(self) -> dict[str, dict[str, Any]]:
        """The runners the server lists, by name."""
        return {r["name"]: r for r in self._call("GET", "/runners").json()["runners"]}

    def retry(self, workflow_id: str) -> None:
        self._call("POST", f"/workflows/{workflow_id}/retry")

    def report(
        self, claim: dict[str, Any], exit_code: int, output: str = "", message: str | None = None
    ) -> dict[str, Any]:
        """Report a claimed attempt's result as a runner would (``message``: why it failed)."""
        body = {
            "status": "completed" if exit_code == 0 else "failed",
            "exit_code": exit_code,
            "output": output,
            "message": message or ("" if exit_code == 0 else f"exit code {exit_code}"),
        }
        return self._call("POST", f"/attempts/{claim['attempt_id']}/result", json=body).json()

    def run_next(self, exit_code: int = 0, output: str = "") -> dict[str, Any]:
        """Claim the next attempt and report it at once; the claim."""
        claim = self.claim()
        self.report(claim, exit_code, output)
        return claim
