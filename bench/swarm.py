"""Many protocol-level runners in one asyncio loop: claim, report, claim again.

Each runner holds its own keep-alive TCP connection and speaks the runner
protocol directly (no command is run: every attempt is reported completed at
once, with ``next`` to take the following one in the same request), so a few
thousand of them cost the benchmark process little and the server sees as many
connected runners. Requests are serialised here; answers are read by
``httptools.HttpResponseParser`` (``llhttp``), as ``stq.worker.http_lite`` does.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httptools

#: Long poll asked of the server, as the real runner does.
CLAIM_WAIT = 25
CLAIM = "/api/v1/attempts/claim"
#: Connections being opened at once: a burst of thousands would overflow the listen backlog.
CONNECTING = 64
#: Pause after a failed exchange before trying again (the server refused or dropped us).
RETRY_PAUSE = 0.2


class _Answer:
    """``llhttp``'s callbacks for one answer on a connection."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.start()

    def start(self) -> None:
        self.status = 0
        self.parts: list[bytes] = []
        self.done = False
        self.keep_alive = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, data: bytes) -> None:
        self.parts.append(data)

    def on_message_complete(self) -> None:
        if self.status >= 200:  # an interim 1xx answer is followed by the final one
            self.done = True
            self.keep_alive = self.parser.should_keep_alive()


class Link:
    """One runner's connection; reopened whenever the server closed it."""

    def __init__(self, name: str, host: str, port: int, gate: asyncio.Semaphore, stats: Stats):
        self.name, self.host, self.port, self.gate, self.stats = name, host, port, gate, stats
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.answer = _Answer()

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """One exchange: (status, decoded JSON body or None)."""
        data = json.dumps(body).encode()
        wire = (
            b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s"
        ) % (path.encode("ascii"), self.host.encode("ascii"), self.port, len(data), data)
        if self.writer is None:
            await self._connect()
        assert self.reader is not None and self.writer is not None
        answer = self.answer
        answer.start()
        try:
            self.writer.write(wire)
            await self.writer.drain()
            if path == CLAIM:
                self.stats.polling.add(self.name)  # its long poll is on the wire
            while not answer.done:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionResetError("the server closed the connection")
                answer.parser.feed_data(chunk)
        except (OSError, httptools.HttpParserError):
            self.close()
            raise
        if not answer.keep_alive:
            self.close()
        content = b"".join(answer.parts)
        return answer.status, json.loads(content) if content else None

    async def _connect(self) -> None:
        async with self.gate:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.answer = _Answer()  # a new connection, a new parser
        self.stats.connections += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Stats:
    """What the runners saw, shared by all of them (one loop, no locks needed)."""

    polling: set[str] = field(default_factory=set)  # runners whose first claim went out
    connections: int = 0
    reported: int = 0
    failures: int = 0  # exchanges that failed (reset, refused, broken answer)
    refusals: int = 0  # answers other than 200 / 204

    @property
    def errors(self) -> int:
        return self.failures + self.refusals


async def runner(name: str, labels: list[str], link: Link, stats: Stats) -> None:
    """claim (long poll) -> report completed with ``next`` -> use ``next`` or claim again."""
    claim: dict[str, Any] | None = None
    while True:
        try:
            if claim is None:
                body = {"runner": name, "labels": labels, "wait": CLAIM_WAIT}
                status, answer = await link.post(CLAIM, body)
                if status == 200:
                    claim = answer
                elif status != 204:
                    stats.refusals += 1
                    await asyncio.sleep(RETRY_PAUSE)
                continue
            path = f"/api/v1/attempts/{claim['attempt_id']}/result"
            report = {"status": "completed", "exit_code": 0, "output": "",
                      "next": {"runner": name, "labels": labels}}  # fmt: skip
            status, answer = await link.post(path, report)
            if status == 200:
                stats.reported += 1
                claim = answer.get("next")
            else:
                stats.refusals += 1
                claim = None
        except (OSError, httptools.HttpParserError):
            stats.failures += 1
            await asyncio.sleep(RETRY_PAUSE)


def start(
    host: str, port: int, groups: list[tuple[int, list[str]]], stats: Stats, prefix: str = "bench"
) -> tuple[list[asyncio.Task], list[Link]]:
    """``count`` runners per (count, labels) group: their asyncio tasks and connections.

    Runner ``i`` of group ``g`` is named ``{prefix}-{g}-{i}``.
    """
    gate = asyncio.Semaphore(CONNECTING)
    tasks, links = [], []
    for g, (count, labels) in enumerate(groups):
        for i in range(count):
            name = f"{prefix}-{g}-{i}"
            link = Link(name, host, port, gate, stats)
            links.append(link)
            tasks.append(asyncio.create_task(runner(name, labels, link, stats)))
    return tasks, links
