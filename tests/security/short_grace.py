"""A gunicorn config for the body-rate tests: ``-c python:tests.security.short_grace``.

The served app is the real one, built as ``stq.api:app`` builds it, but with
a body grace of ``GRACE`` seconds instead of 10, so a test can see the rule
cut a trickle in seconds. (gunicorn calls ``post_worker_init`` after loading
the app in each worker process; the worker then serves ``worker.wsgi``.)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

GRACE = 1.0
#: What a test passes to gunicorn to serve the app with the short grace.
ARGS = ["-c", f"python:{__name__}"]


def post_worker_init(worker: Any) -> None:
    from stq.api.application import create_app
    from stq.settings import Settings

    worker.wsgi = create_app(replace(Settings.from_env(), body_grace=GRACE))
