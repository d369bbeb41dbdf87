"""A running attempt's output on its task page: live, following the end, bounded, as text.

Most tests play the runner: they claim the attempt and post output with byte
offsets (``POST /api/v1/attempts/{id}/output?offset=N``) as ``stq worker`` does
every second, and watch the open page follow without a reload; the last one
runs a real ``stq worker``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Locator, Page, expect

from tests.dashboard.conftest import Watched
from tests.dashboard.pages import SEEN_WITHIN_MS, open_view, stats
from tests.dashboard.runner import ApiClient
from tests.helpers import BIN, SHUTDOWN_TIMEOUT, LiveServer, scrubbed_env

pytestmark = pytest.mark.browser
#: "Within a couple of seconds": the page reads a running attempt's output every second.
LIVE_WITHIN_MS = 2_500
MIB = 1024 * 1024
XSS = "<img src=x onerror=alert(1)>"


class Printing:
    """A claimed attempt whose output the test posts in pieces, as a runner would."""

    def __init__(self, server: LiveServer, api: ApiClient, submit: Any, name: str):
        submit({"name": name, "tasks": {"talk": {"command": "./talk.sh"}}})
        self.claim = api.claim()
        self.api = api
        self.url = f"{server.url}/api/v1/attempts/{self.claim['attempt_id']}/output"
        self.sent = 0

    def prints(self, text: str) -> None:
        """Post ``text`` from the byte after the last one sent."""
        body = text.encode()
        resp = requests.post(
            self.url,
            params={"offset": self.sent},
            data=body,
            headers={"Content-Type": "text/plain; charset=utf-8"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        self.sent += len(body)

    def open(self, page: Page, server: LiveServer) -> Locator:
        """Open the task's page; its (only) output block."""
        open_view(page, server.url, f"/tasks/{self.claim['task_id']}")
        page.evaluate("window.__sameDocument = true")
        return page.locator("section.output pre")


def lines(first: int, count: int) -> str:
    return "".join(f"line {i}\n" for i in range(first, first + count))


def distance_to_end(pre: Locator) -> float:
    return pre.evaluate("p => p.scrollHeight - p.scrollTop - p.clientHeight")


def wait_at_end(page: Page) -> None:
    """Poll until the output block is scrolled to its end."""
    page.wait_for_function(
        "() => { const p = document.querySelector('section.output pre');"
        " return p.scrollHeight - p.scrollTop - p.clientHeight < 4; }"
    )


def wait_until_shown_last(page: Page, text: str) -> None:
    """Poll the page (no reload) until its output block ends with ``text``."""
    page.wait_for_function(
        "text => document.querySelector('section.output pre').textContent.endsWith(text)",
        arg=text,
        timeout=LIVE_WITHIN_MS,
    )


def test_output_appears_piece_by_piece_without_a_reload(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    reads: list[str] = []
    page.on("request", lambda r: reads.append(r.url) if "/output" in r.url else None)
    attempt = Printing(server, api, submit, "live-pieces")
    pre = attempt.open(page, server)
    expect(pre).to_have_class("live empty", timeout=SEEN_WITHIN_MS)  # "(no output yet)"

    attempt.prints(f"compiling é\n{XSS}\n")
    expect(pre).to_have_text(f"compiling é\n{XSS}\n", timeout=LIVE_WITHIN_MS)
    first = attempt.sent
    attempt.prints("linking\n")
    expect(pre).to_have_text(f"compiling é\n{XSS}\nlinking\n", timeout=LIVE_WITHIN_MS)
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    assert any(url.endswith(f"?offset={first}") for url in reads), "not read from an offset"

    api.report(attempt.claim, 0, "done\n")
    row = page.locator("table.list tbody tr").first
    expect(row).to_contain_text("Completed", timeout=LIVE_WITHIN_MS)
    expect(pre).to_have_text(f"compiling é\n{XSS}\nlinking\ndone\n")
    after_end = len(reads)
    page.wait_for_function(
        "n => window.stqStats.refreshes >= n", arg=stats(page)["refreshes"] + 2, timeout=10_000
    )
    assert len(reads) == after_end, f"the finished attempt is still read: {reads[after_end:]}"
    watched.shot("live_output_finished")


def test_scrolling_up_stops_following_and_scrolling_down_follows_again(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    attempt = Printing(server, api, submit, "live-scroll")
    attempt.prints(lines(0, 200))
    pre = attempt.open(page, server)
    expect(pre).to_contain_text("line 199", timeout=LIVE_WITHIN_MS)
    wait_at_end(page)

    pre.hover()
    page.mouse.wheel(0, -100_000)  # the user scrolls up to read
    page.wait_for_function("() => document.querySelector('section.output pre').scrollTop === 0")
    attempt.prints(lines(200, 50))
    expect(pre).to_contain_text("line 249", timeout=LIVE_WITHIN_MS)
    assert pre.evaluate("p => p.scrollTop") == 0, "new output scrolled the view away"

    page.mouse.wheel(0, 1_000_000)  # back to the end: following again
    wait_at_end(page)
    attempt.prints(lines(250, 50))
    expect(pre).to_contain_text("line 299", timeout=LIVE_WITHIN_MS)
    assert distance_to_end(pre) < 4, "new output did not bring the view to the end"
    watched.shot("live_output_following")


def test_output_past_the_servers_mebibyte_is_marked_and_the_page_keeps_it_bounded(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any
) -> None:
    page = watched.page
    attempt = Printing(server, api, submit, "live-flood")
    pre = attempt.open(page, server)
    dropped = page.locator("section.output p.dropped")
    attempt.prints("the first line\n")
    expect(pre).to_have_text("the first line\n", timeout=LIVE_WITHIN_MS)
    expect(dropped).to_be_hidden()

    row = "x" * 1023 + "\n"  # 1 KiB a line
    attempt.prints(row * 1200 + "end of the flood\n")  # the server keeps the last MiB
    expect(dropped).to_be_visible(timeout=LIVE_WITHIN_MS)
    expect(dropped).to_have_text("… earlier output not kept")
    wait_until_shown_last(page, "end of the flood\n")
    shown = pre.evaluate("p => p.textContent")
    assert not shown.startswith("the first line"), "bytes the server dropped were bridged over"
    assert len(shown) <= MIB

    attempt.prints(row * 600 + "still going\n")  # more than the page keeps, in all
    wait_until_shown_last(page, "still going\n")
    assert pre.evaluate("p => p.textContent.length") <= MIB
    assert "end of the flood\n" in pre.evaluate("p => p.textContent")


def test_a_real_runners_command_shows_its_output_while_it_runs(
    watched: Watched, server: LiveServer, api: ApiClient, submit: Any, tmp_path: Path
) -> None:
    page = watched.page
    command = "echo first; sleep 2; echo second; sleep 60"
    workflow_id = submit({"name": "live-real", "tasks": {"slow": {"command": command}}})
    task_id = api.tasks(workflow_id)["slow"]["id"]
    open_view(page, server.url, f"/tasks/{task_id}")
    worker = subprocess.Popen(
        [str(BIN / "stq"), "worker", server.url, "--name", "live-runner"],
        cwd=tmp_path,
        env=scrubbed_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pre = page.locator("section.output pre")
        expect(pre).to_contain_text("first", timeout=SEEN_WITHIN_MS)
        expect(pre).to_have_text("first\nsecond\n", timeout=SEEN_WITHIN_MS)
        assert api.tasks(workflow_id)["slow"]["state"] == "in_process"  # still sleeping
        expect(page.locator("table.list tbody tr").first).to_contain_text("Running")
        api.cancel(workflow_id)
        expect(page.locator("table.list tbody tr").first).to_contain_text(
            "cancelled", timeout=SEEN_WITHIN_MS
        )
    finally:
        worker.terminate()
        worker.wait(SHUTDOWN_TIMEOUT)
