"""The HTTP API. ``gunicorn stq.api:app`` takes ``app`` from here.

``app`` is built on first use, reading the environment once; building it opens
nothing (the store is opened on the first request in each forked worker
process). Importing the package builds nothing, so the command line can
import ``stq.api.launch`` without loading Falcon.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``app``: the WSGI app, built once, when gunicorn (or anyone) first asks for it."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from stq.api.application import create_app
    from stq.settings import Settings

    app = create_app(Settings.from_env())
    globals()["app"] = app
    return app
