"""The runner's loop: claim, run, report; idle exit; graceful stop; fail-over.

A busy runner needs one request per task: the result carries ``next`` and the
answer holds the next claim (the API's compatible extension); an older server
that ignores it just makes the runner long-poll as before. A finished result is
never dropped: it is retried with capped, jittered backoff (moving between
server URLs) until a server takes it.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from stq.errors import Conflict, NotFound, StqError
from stq.worker import process
from stq.worker.client import RETRYABLE, Client
from stq.worker.heartbeat import CANCELLED, Beater, Supervisor, Watch

log = logging.getLogger("stq.worker")
T = TypeVar("T")

#: Long-poll length asked of the server (it caps at 30 s).
CLAIM_WAIT = 25.0
#: Pause after a claim the server answered empty long before the wait asked: a
#: server that cannot hold long polls (one sync gunicorn worker) caps them at 1 s,
#: and claiming again at once would keep its only worker busy with claims.
SHORT_POLL_PAUSE = 1.0
BACKOFF_START = 0.1
BACKOFF_CAP = 15.0


class _Interrupted(Exception):
    """Raised from the signal handler to leave a long poll at once."""


@dataclass(frozen=True)
class RunnerConfig:
    urls: tuple[str, ...]
    token: str | None
    name: str
    labels: tuple[str, ...] = ()
    exit_when_idle: float | None = None
    workdir: Path = Path(".")


class Runner:
    """One runner: one attempt at a time, one supervisor thread, one output file."""

    def __init__(self, config: RunnerConfig, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.clients = [Client(url, config.token) for url in config.urls]
        self.current = 0
        self.sleep = sleep
        self.stopping = False
        self.hard_stop = False
        self.idle = False
        self._idle_since = time.monotonic()
        self.supervisor = Supervisor(self._post_output)
        self.beater = Beater(self._heartbeat, lambda job: self.supervisor.kill(CANCELLED, job))
        self.out = tempfile.TemporaryFile(prefix="stq-output-")
        # The runner's token is its own credential: a command that prints its environment
        # must not put it into captured output (a task that needs one sets it in its env).
        self.base_env = {k: v for k, v in os.environ.items() if k != "STQ_TOKEN"}
        self._beat_clients: dict[tuple[int, int], Client] = {}

    # --- signals --------------------------------------------------------------

    def stop(self) -> None:
        """First signal: finish the current attempt, claim nothing more."""
        self.stopping = True
        log.info("stopping: finishing the current attempt, claiming no more (again: kill it)")
        if self.idle:
            raise _Interrupted

    def stop_now(self) -> None:
        """Second signal: kill the current command; it is reported failed."""
        self.stopping = True
        self.hard_stop = True
        self.supervisor.kill("runner stopped: the command was killed")
        if self.idle:
            raise _Interrupted

    # --- the loop -------------------------------------------------------------

    def run(self) -> int:
        self.supervisor.start()
        self.beater.start()
        log.info("runner %s serving %s", self.config.name, ", ".join(self.config.urls))
        claim: dict[str, Any] | None = None
        idle_since = time.monotonic()
        try:
            while claim is not None or not self.stopping:
                if claim is None:
                    claim = self._claim(idle_since)
                    if claim is None:
                        if self._idle_expired(idle_since):
                            log.info("idle for %ss: exiting", self.config.exit_when_idle)
                            break
                        continue
                report = self._attempt(claim)
                claim = self._deliver(claim["attempt_id"], report)
                idle_since = time.monotonic()
        except _Interrupted:
            pass
        finally:
            self.out.close()
            for client in (*self.clients, *self._beat_clients.values()):
                client.close()
        log.info("runner %s stopped", self.config.name)
        return 0

    def _idle_expired(self, since: float) -> bool:
        limit = self.config.exit_when_idle
        return limit is not None and time.monotonic() - since >= limit

    def _claim(self, idle_since: float) -> dict[str, Any] | None:
        wait = CLAIM_WAIT
        if self.config.exit_when_idle is not None:
            left = self.config.exit_when_idle - (time.monotonic() - idle_since)
            wait = max(0.0, min(wait, left))
        labels = list(self.config.labels)
        self._idle_since = idle_since
        self.idle = True
        try:
            if self.stopping:
                raise _Interrupted
            asked = time.monotonic()
            claim = self._with_retry(lambda c: c.claim(self.config.name, labels, wait), True)
            if claim is None and time.monotonic() - asked < wait / 2:
                self.sleep(SHORT_POLL_PAUSE)
            return claim
        finally:
            self.idle = False

    # --- one attempt ----------------------------------------------------------

    def _attempt(self, claim: dict[str, Any]) -> dict[str, Any]:
        name, number = claim.get("task_name"), claim.get("attempt_number")
        log.info("claimed %s attempt %s (%s)", name, number, claim["attempt_id"])
        started = time.monotonic()
        report = self._execute(claim)
        log.info(
            "finished %s attempt %s: %s, exit code %s, %.2fs%s",
            name,
            number,
            report["status"],
            report["exit_code"],
            time.monotonic() - started,
            f" ({report['message']})" if report.get("message") else "",
        )
        return report

    def _execute(self, claim: dict[str, Any]) -> dict[str, Any]:
        self.out.seek(0)
        self.out.truncate()
        cwd = process.resolve_cwd(claim.get("cwd"), self.config.workdir)
        try:
            proc = process.start(claim["command"], self._env(claim), cwd, self.out)
        except process.CannotStart as ex:
            return {"status": "failed", "exit_code": None, "output": "", "message": str(ex)}
        duration = claim.get("duration")
        watch = Watch(
            attempt_id=claim["attempt_id"],
            pgid=proc.pid,
            deadline=None if duration is None else time.monotonic() + float(duration),
            interval=float(claim.get("heartbeat_interval") or 10.0),
            out_fd=self.out.fileno(),
        )
        self.supervisor.watch(watch)
        self.beater.watch(watch)
        returncode = _wait(proc)
        self.beater.release(watch)
        self.supervisor.release(watch)
        process.signal_group(proc.pid, 9)  # nothing the command started outlives it
        exit_code, message = process.describe_exit(returncode)
        message = self._why_stopped(claim, watch.kill_reason) or message
        status = "completed" if returncode == 0 and watch.kill_reason is None else "failed"
        return {"status": status, "exit_code": exit_code, "message": message, **self._rest(watch)}

    def _why_stopped(self, claim: dict[str, Any], kill_reason: str | None) -> str | None:
        """Why the command was killed; for a server's stop, what the task had become.

        The server asks a command to stop when its workflow was cancelled, but
        also when an earlier attempt, presumed lost, completed the task after
        all: "cancelled" would then mislead whoever reads the attempt.
        """
        if kill_reason != CANCELLED:
            return kill_reason
        try:
            task = self.clients[self.current].task(claim["task_id"])
        except StqError:
            return kill_reason
        if task.get("state") == "completed":
            return "stopped: an earlier attempt completed the task"
        if task.get("state") == "failed" and task.get("reason") != "cancelled":
            return "stopped: the task had already failed"
        return kill_reason

    def _rest(self, watch: Watch) -> dict[str, Any]:
        """The output the server has not taken yet, for the result (the last MiB of it).

        ``output_offset`` says where it starts once some output was streamed (a
        server that took output posts knows the field); before that, the output
        is all there is and starts at byte 0 or is its last MiB.
        """
        with watch.stream_lock:
            sent = watch.sent
        text, offset = process.read_from(self.out, sent)
        if sent == 0:
            return {"output": text}
        return {"output": text, "output_offset": offset}

    def _env(self, claim: dict[str, Any]) -> dict[str, str]:
        env = dict(self.base_env)
        env.update({str(k): str(v) for k, v in (claim.get("env") or {}).items()})
        env["STQ_WORKFLOW_ID"] = str(claim.get("workflow_id", ""))
        env["STQ_TASK_ID"] = str(claim.get("task_id", ""))
        env["STQ_TASK_NAME"] = str(claim.get("task_name", ""))
        env["STQ_ATTEMPT_ID"] = str(claim["attempt_id"])
        env["STQ_ATTEMPT_NUMBER"] = str(claim.get("attempt_number", ""))
        return env

    # --- talking to the servers -----------------------------------------------

    def _deliver(self, attempt_id: str, report: dict[str, Any]) -> dict[str, Any] | None:
        """Report until a server takes it; return the next claim it offered, if any."""
        body = dict(report)
        if not self.stopping:
            body["next"] = {"runner": self.config.name, "labels": list(self.config.labels)}
        try:
            answer = self._with_retry(lambda c: c.result(attempt_id, body), False)
        except (NotFound, Conflict) as ex:
            log.warning("result for attempt %s refused: %s", attempt_id, ex.message)
            return None
        nxt = answer.get("next") if isinstance(answer, dict) else None
        # Signalled while the result was on its way: the claim that came back with it is
        # the current attempt now and runs (failing it unrun would burn one of its
        # attempts), unless a second signal asked to stop at once.
        if nxt is not None and self.hard_stop:
            self._deliver(nxt["attempt_id"], _not_run())
            return None
        return nxt

    def _with_retry(self, call: Callable[[Client], T], interruptible: bool) -> T:
        """``call`` against the current server, failing over and backing off while unreachable."""
        delay = BACKOFF_START
        failures = 0
        while True:
            client = self.clients[self.current]
            try:
                result = call(client)
            except RETRYABLE as ex:
                if failures == 0:
                    log.warning("%s; retrying", ex.message)
                failures += 1
                self.current = (self.current + 1) % len(self.clients)
                if failures % len(self.clients) == 0:
                    if interruptible and self.stopping:
                        raise _Interrupted from ex
                    if interruptible and self._idle_expired(self._idle_since):
                        return None  # type: ignore[return-value]  # idle, if unreachable
                    self.sleep(random.uniform(delay / 2, delay))
                    delay = min(BACKOFF_CAP, delay * 2)
                continue
            if failures:
                log.info("reached %s again", client.url)
            return result

    def _heartbeat(self, attempt_id: str, wait: float) -> bool:
        """Runs on the beater thread (held up to ``wait`` s by the server)."""
        return self._on_any_server(lambda client: client.heartbeat(attempt_id, wait))

    def _post_output(self, attempt_id: str, text: str, offset: int) -> bool:
        """Runs on the supervisor thread, while the command prints."""
        return self._on_any_server(lambda client: client.post_output(attempt_id, text, offset))

    def _on_any_server(self, call: Callable[[Client], T]) -> T:
        """``call`` with this thread's own sessions, the current server first.

        A long command makes no other request, so a dead server would only be
        noticed here: each other server is tried in turn (they share the store),
        or the attempt would be presumed lost while another server was up.
        """
        count = len(self.config.urls)
        for step in range(count - 1):
            try:
                return call(self._thread_client((self.current + step) % count))
            except RETRYABLE:
                continue
        return call(self._thread_client((self.current + count - 1) % count))

    def _thread_client(self, index: int) -> Client:
        """This background thread's own session with server ``index``, opened on first use."""
        key = (threading.get_ident(), index)
        client = self._beat_clients.get(key)
        if client is None:
            client = Client(self.config.urls[index], self.config.token)
            self._beat_clients[key] = client
        return client


def _not_run() -> dict[str, Any]:
    return {
        "status": "failed",
        "exit_code": None,
        "output": "",
        "message": "runner stopping: the attempt was not run",
    }


def _wait(proc: Any) -> int:
    """Block until the child exits; signals run their handlers and the wait resumes."""
    while True:
        try:
            return proc.wait()
        except _Interrupted:
            continue
