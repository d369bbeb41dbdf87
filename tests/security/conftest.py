"""An in-process app with a token set, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from falcon import testing

from stq.api.application import create_app
from stq.settings import Settings

TOKEN = "tok-3c1f9e0a7b"


@pytest.fixture
def secured(tmp_path: Path) -> testing.TestClient:
    """A TestClient for ``create_app`` with ``STQ_TOKEN`` set."""
    return testing.TestClient(create_app(Settings(token=TOKEN, db=str(tmp_path / "stq.db"))))


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}
