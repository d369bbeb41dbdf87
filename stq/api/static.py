"""The dashboard's static files: ``GET /`` and ``GET /dashboard/{name}``.

Only plain file names that exist directly in ``stq/api/dashboard/`` are
served (no subdirectories, no dot files, so no path traversal), with a
content type from a short allow-list of suffixes.
"""

from __future__ import annotations

import re
from pathlib import Path

import falcon

from stq.errors import NotFound

DASHBOARD = Path(__file__).resolve().parent / "dashboard"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def serve(resp: falcon.Response, name: str) -> None:
    """Answer with one dashboard file, or 404 for anything else."""
    path = DASHBOARD / name
    kind = TYPES.get(path.suffix)
    if not (_SAFE_NAME.fullmatch(name) and kind and path.is_file()):
        raise NotFound(f"No dashboard file {name!r}.")
    resp.content_type = kind
    resp.cache_control = ["no-cache"]
    resp.data = path.read_bytes()


class IndexResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        serve(resp, "index.html")


class FileResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        serve(resp, name)


def routes() -> list[tuple[str, object]]:
    return [("/", IndexResource()), ("/dashboard/{name}", FileResource())]
