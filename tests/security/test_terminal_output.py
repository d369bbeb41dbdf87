"""A task's output (and a workflow's description) cannot drive the user's terminal.

``stq logs`` and ``stq status`` run on a real pseudo-terminal: escape sequences
the task printed arrive as visible ``\\x1b`` text, never as raw ESC bytes.
Piped, ``stq logs`` still gives the output exactly as captured.
"""

from __future__ import annotations

import os
import pty
import subprocess

import requests

from tests.acceptance.support import STQ
from tests.helpers import LiveServer, scrubbed_env

EVIL = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b1m\rover\x08\n"


def _on_pty(*args: str, env: dict[str, str]) -> bytes:
    """Run ``stq ARGS`` with stdout on a pty; everything it wrote there."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [STQ, *args], env=scrubbed_env(env), stdout=slave, stderr=subprocess.PIPE
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        return b"".join(chunks)
    finally:
        os.close(master)


def _prepare(url: str) -> tuple[str, str]:
    """A workflow with an evil description whose one task reported evil output."""
    flow = {"name": "evil", "description": EVIL, "tasks": {"t": {"command": "true"}}}
    wf = requests.post(f"{url}/api/v1/workflows", json=flow, timeout=10).json()
    claim = requests.post(
        f"{url}/api/v1/attempts/claim", json={"runner": "r", "labels": []}, timeout=10
    ).json()
    body = {"status": "failed", "exit_code": 1, "output": EVIL * 3, "message": EVIL}
    resp = requests.post(
        f"{url}/api/v1/attempts/{claim['attempt_id']}/result", json=body, timeout=10
    )
    assert resp.status_code == 200, resp.text
    return wf["id"], claim["task_id"]


def test_escape_sequences_are_not_replayed_on_a_terminal(live_server: LiveServer) -> None:
    wf_id, task_id = _prepare(live_server.url)
    env = {"STQ_SERVER": live_server.url}
    logs = _on_pty("logs", task_id, env=env)
    assert b"red" in logs and b"\\x1b" in logs, logs
    for args in (["logs", task_id], ["status"], ["status", wf_id]):
        shown = logs if args[0] == "logs" else _on_pty(*args, env=env)
        assert b"\x1b" not in shown and b"\x07" not in shown and b"\xc2\x9b" not in shown, (
            args,
            shown,
        )
        assert b"\x08" not in shown, (args, shown)
    piped = subprocess.run([STQ, "logs", task_id], env=scrubbed_env(env), capture_output=True)
    assert piped.returncode == 0
    assert piped.stdout == (EVIL * 3).encode()  # a pipe gets the output exactly as captured
