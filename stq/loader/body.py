"""The body ``stq submit`` sends: the document as written, checked as the server will check it.

The server checks and expands the document itself (``load_workflow_document``),
so the body is the file's own document, not the loader's expanded result:
``defaults`` and matrices stay as written, which keeps a 100,000-task body
about the size of its file. Two things are settled here so the server
builds exactly the spec the CLI checked: the ``--param`` values are in it,
and every ``env`` or ``params`` value YAML read as something else than a
string (``3``, ``0x10``, ``1.50``, ``yes``) is sent as the text it was
written as, which JSON would otherwise turn into ``3``, ``16``, ``1.5`` and
``true``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from stq.gc_pause import gc_paused
from stq.loader.locate import Locator
from stq.loader.normalize import env_text
from stq.loader.pipeline import Params, check, parse_text, read_file, within_limit
from stq.model import WorkflowSpec


def submit_body(path: str | os.PathLike[str], params: Params = None) -> tuple[WorkflowSpec, bytes]:
    """The file's spec, as ``load_workflow_file`` gives it, and the JSON body to POST.

    Raises ``WorkflowInvalid`` with the same problems as ``load_workflow_file``,
    or with one at ``FILE:1:1`` when the body would be over the API's limit.
    """
    filename, data = read_file(path)
    with gc_paused():
        where = parse_text(data, filename, params)
        spec = check(where)
        body = json.dumps(
            _as_sent(where), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    within_limit(
        filename,
        len(body),
        f"The workflow as JSON ({len(body)} bytes)",
        " Use fewer aliases, or defaults for what tasks repeat.",
    )
    return spec, body


def _as_sent(where: Locator) -> dict[str, Any]:
    """The document with every ``env`` and ``params`` value as the text the loader used."""
    doc: dict[str, Any] = dict(where.root)
    if "params" in doc:
        doc["params"] = _texts(where, doc["params"], ["params"])
    defaults = doc.get("defaults")
    if defaults and "env" in defaults:
        doc["defaults"] = {**defaults, "env": _texts(where, defaults["env"], ["defaults", "env"])}
    doc["tasks"] = {
        name: (
            {**task, "env": _texts(where, task["env"], ["tasks", name, "env"])}
            if "env" in task
            else task
        )
        for name, task in doc["tasks"].items()
    }
    return doc


def _texts(where: Locator, env: dict[str, Any], path: list[Any]) -> dict[str, str]:
    return {
        key: value if isinstance(value, str) else env_text(value, where.raw_text([*path, key]))
        for key, value in env.items()
    }
