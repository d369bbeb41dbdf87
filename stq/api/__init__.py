"""The HTTP API. ``gunicorn stq.api:app`` imports ``app`` from here.

Building the app reads the environment once and opens nothing: the store is
opened on the first request in each (forked) worker process.
"""

from __future__ import annotations

from stq.api.app import create_app
from stq.settings import Settings

app = create_app(Settings.from_env())

__all__ = ["app", "create_app"]
