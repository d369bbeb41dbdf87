"""The token never reaches a log, a command's output, or a host it was not meant for."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.acceptance.support import Runner, stq, write
from tests.helpers import LiveServer, free_port

TOKEN = "leak-canary-5f2b7d91c0"
FLOW = """\
name: leaky
tasks:
  dump-env:
    command: env; echo "argv $*"
  fails:
    command: echo about to fail; exit 3
  print-token-var:
    command: echo "token=[$STQ_TOKEN]"
"""


def test_token_in_no_log_and_no_output(tmp_path: Path) -> None:
    server = LiveServer(
        db=tmp_path / "stq.db",
        workers=2,
        env={"STQ_TOKEN": TOKEN, "STQ_ACCESS_LOG": "1"},
        extra_args=["--access-logfile", "-", "--log-level", "debug"],
    ).start()
    env = {"STQ_TOKEN": TOKEN, "STQ_SERVER": server.url}
    runners = []
    try:
        wf_id = _submit(server.url, write(tmp_path / "wf.yaml", FLOW), env)
        runner = Runner(server.url, tmp_path, ["-v", "--exit-when-idle", "1"], env).start()
        runners.append(runner)
        assert runner.wait(60) == 0, runner.log
        wrong = Runner(server.url, tmp_path, ["--exit-when-idle", "1"], {"STQ_TOKEN": "x"})
        runners.append(wrong.start())
        wrong.wait(60)
        outputs = _outputs(server, wf_id)
        texts = [runner.log, wrong.log, *outputs.values()]
        for args in (["status"], ["status", wf_id], *[["logs", t] for t in outputs]):
            result = stq(*args, env=env)
            texts += [result.stdout, result.stderr]
        texts.append(stq("status", env={**env, "STQ_TOKEN": TOKEN + "x"}).stderr)
    finally:
        for r in runners:
            r.stop()
        server.stop()
    texts.append(server.log_text())
    assert "GET /api/v1/" in texts[-1]  # the server did log every request
    leaks = [t for t in texts if TOKEN in t]
    assert not leaks, leaks


def _submit(url: str, path: Path, env: dict[str, str]) -> str:
    result = stq("submit", str(path), "--server", url, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _outputs(server: LiveServer, wf_id: str) -> dict[str, str]:
    """Each task's id -> its last attempt's captured output."""
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def get(path: str) -> requests.Response:
        return requests.get(server.url + path, headers=headers, timeout=10)

    found = {}
    for task in get(f"/api/v1/workflows/{wf_id}").json()["tasks"]:
        attempt = get(f"/api/v1/tasks/{task['id']}").json()["attempts"][-1]
        found[task["id"]] = get(f"/api/v1/attempts/{attempt['id']}/output").text
    assert any("STQ_TASK_ID=" in text for text in found.values())  # env was printed
    return found


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with a redirect (``target``) or records its headers."""

    target: str | None = None
    seen: list[dict[str, str]] = []

    def _answer(self) -> None:
        self.seen.append(dict(self.headers))
        if self.target:
            self.send_response(307)
            self.send_header("Location", self.target + self.path)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def redirect_pair() -> Iterator[tuple[str, list[dict[str, str]], list[dict[str, str]]]]:
    """A server that redirects everything to another host that records what it gets."""
    servers = []
    for target in (None, "x"):
        handler = type("H", (_Recorder,), {"seen": [], "target": target})
        servers.append(http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler))
    sink, redirector = servers
    # "localhost" vs "127.0.0.1": another host name, as a redirect to a foreign host is
    redirector.RequestHandlerClass.target = f"http://localhost:{sink.server_address[1]}"
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{redirector.server_address[1]}"
    yield url, redirector.RequestHandlerClass.seen, sink.RequestHandlerClass.seen
    for s in servers:
        s.shutdown()
        s.server_close()


def test_runner_and_cli_never_follow_a_redirect_with_the_token(tmp_path: Path, redirect_pair):
    url, redirected, sink = redirect_pair
    env = {"STQ_TOKEN": TOKEN}
    runner = Runner(url, tmp_path, ["--exit-when-idle", "1.5"], env).start()
    try:
        assert runner.wait(30) == 0, runner.log
    finally:
        runner.stop()
    result = stq("status", env={**env, "STQ_SERVER": url})
    assert result.returncode == 2 and "redirect" in result.stderr, result.stderr
    assert redirected, "the runner never reached the redirecting server"
    assert redirected[0].get("Authorization") == f"Bearer {TOKEN}"  # sent to its own server
    assert sink == [], sink  # and nothing, token or not, to the host it was redirected to
    assert TOKEN not in runner.log + result.stderr
