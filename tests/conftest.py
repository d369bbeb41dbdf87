"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import LiveServer
from tests.pg import pg_empty_url, pg_template, pg_url  # noqa: F401  (reads STQ_TEST_PG first)

# STQ_FULL_* only choose the sizes of the fault/load/fuzz suites: they stay.
for _name in [k for k in os.environ if k.startswith("STQ_") and not k.startswith("STQ_FULL_")]:
    del os.environ[_name]  # a developer's shell must not leak into the tests

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "workflows" / "examples"


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """``gunicorn stq.api:app -w 4 -k gthread`` on a fresh SQLite file; stopped afterwards."""
    server = LiveServer(db=tmp_path / "stq.db").start()
    try:
        yield server
    finally:
        server.stop()
