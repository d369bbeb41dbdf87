"""Fixtures for the dashboard tests: one headless Chromium, live servers, a runner client.

The browser is Debian's ``chromium`` driven by Playwright (no browser downloads).
Every page fails its test if a JavaScript dialog opens or a script error is raised,
so an XSS that fires ``alert`` anywhere is caught by every test, not only the XSS one.
Screenshots land in ``test-artifacts/dashboard/``; the path and the measured figures
are printed at the end of the run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.dashboard.runner import ApiClient
from tests.helpers import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
#: Figures measured by the tests, printed in the terminal summary.
FIGURES: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the browser tests when chromium is missing and `make test` said why.

    `make chromium` leaves its one-line reason (not root, apt failed) in
    ``NO_CHROMIUM``. Without a reason a missing chromium fails the tests instead
    (see ``browser``), so a run that should drive the browser never passes silently.
    """
    why = os.environ.get("NO_CHROMIUM")
    if not why or os.access(CHROMIUM, os.X_OK):
        return
    skip = pytest.mark.skip(reason=f"no chromium: {why}")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ARTIFACTS.exists() and any(ARTIFACTS.iterdir()):
        terminalreporter.write_line(f"dashboard screenshots: {ARTIFACTS}")
    for name, value in FIGURES.items():
        terminalreporter.write_line(f"dashboard {name}: {value}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole run: starting it costs about a second."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("the dashboard tests need Debian's chromium: run `make chromium`")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live gunicorn shared by the dashboard tests; each submits its own workflows."""
    live = LiveServer(db=tmp_path_factory.mktemp("dashboard") / "stq.db", workers=2).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def api(server: LiveServer) -> ApiClient:
    return ApiClient(server.url)


#: The token of the ``guarded`` server.
TOKEN = "s3cret-token"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[LiveServer]:
    """A live server of its own that asks for ``TOKEN`` on every API call."""
    live = LiveServer(db=tmp_path / "stq.db", workers=1, env={"STQ_TOKEN": TOKEN}).start()
    try:
        yield live
    finally:
        live.stop()


class Watched:
    """A page plus what must never happen on it: dialogs and script errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda ex: self.errors.append(str(ex)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def shot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def watched(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Watched]:
    """A fresh tab (own sessionStorage) at 1400x900; screenshot and checks at the end."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    seen = Watched(page)
    try:
        yield seen
        seen.shot(re.sub(r"\W+", "_", request.node.name) + "_end")
        assert seen.dialogs == [], f"a dialog fired: {seen.dialogs}"
        assert seen.errors == [], f"script errors: {seen.errors}"
    finally:
        context.close()


@pytest.fixture
def submit(api: ApiClient) -> Iterator[Callable[[dict[str, Any]], str]]:
    """Submit workflows; cancel those still running afterwards so the next test's
    claims (oldest workflow first) never pick up this test's leftovers."""
    submitted: list[str] = []

    def _submit(document: dict[str, Any]) -> str:
        submitted.append(api.submit(document))
        return submitted[-1]

    yield _submit
    running = {w["id"] for w in api.workflows() if w["state"] == "running"}  # deleted: gone
    for workflow_id in submitted:
        if workflow_id in running:
            api.cancel(workflow_id)
