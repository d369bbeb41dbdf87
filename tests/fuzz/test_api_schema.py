"""schemathesis against the server's own ``/api/v1/openapi.json``, in-process.

Every operation of the document, positive and negative cases, with the token
and without it: no 5xx, and every answer (status, content type, body) matches
the document. The app is the real one on a real SQLite file holding a small
workflow, so reads find data. CI runs a bounded number of cases per operation;
``STQ_FULL_FAULTS=1`` runs more.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import schemathesis
from falcon import testing
from schemathesis import GenerationMode, checks

from stq.api.application import create_app
from stq.settings import Settings

TOKEN = "schema-tok-81d2"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 200 if os.environ.get("STQ_FULL_FAULTS") == "1" else 25
PUBLIC = {"/api/v1/health", "/api/v1/openapi.json", "/", "/dashboard/{name}"}


def _app():
    """The real app on a SQLite file that lives as long as the test session."""
    folder = Path(tempfile.mkdtemp(prefix="stq-schemathesis-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    app = create_app(Settings(token=TOKEN, db=str(folder / "stq.db")))
    client = testing.TestClient(app)
    flow = {"name": "seed", "tasks": {"a": {"command": "true"}, "b": {"command": "true",
            "depends_on": ["a"]}}}  # fmt: skip
    assert client.simulate_post("/api/v1/workflows", json=flow, headers=AUTH).status_code == 201
    return app


APP = _app()
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP, headers=AUTH)
# Unknown query parameters are ignored, as HTTP APIs commonly do (a newer client's
# extra filter must not break an older server): negative cases do not add them.
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES,
    allow_extra_parameters=False,
)


#: A workflow can be valid against the schema and still be refused (422) for an unknown
#: dependency or a cycle: rules JSON Schema cannot say. Nothing else may refuse valid data.
SEMANTIC = {"POST /api/v1/workflows"}


def _excluded(case: schemathesis.Case) -> list:
    return [checks.positive_data_acceptance] if case.operation.label in SEMANTIC else []


@schema.parametrize()
def test_every_operation_with_the_token(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=AUTH, excluded_checks=_excluded(case))


@schema.parametrize()
def test_every_operation_without_the_token(case: schemathesis.Case) -> None:
    # Without the token, any method but GET/HEAD gets 401 before routing, even on the
    # public paths (not 405): nothing about the API is told to a caller with no token.
    excluded = [*_excluded(case), checks.unsupported_method]
    response = case.call_and_validate(headers={}, excluded_checks=excluded)
    if case.operation.path not in PUBLIC:
        assert response.status_code == 401, (case.operation.label, response.text[:200])
