"""The OpenAPI document: structurally valid 3.1, every route described, every $ref
resolvable, every schema a valid JSON Schema, request bodies the enforced schemas."""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator

from stq.api import bodies
from tests.integration import test_api_support as support
from tests.integration.test_api_support import Api

api = support.api
make_api = support.make_api

METHODS = {"get", "post", "put", "delete", "patch"}
ROUTES = {
    ("post", "/api/v1/workflows"), ("get", "/api/v1/workflows"),
    ("get", "/api/v1/workflows/{workflow_id}"), ("delete", "/api/v1/workflows/{workflow_id}"),
    ("post", "/api/v1/workflows/{workflow_id}/cancel"),
    ("post", "/api/v1/workflows/{workflow_id}/retry"),
    ("get", "/api/v1/tasks"), ("get", "/api/v1/tasks/{task_id}"),
    ("get", "/api/v1/attempts/{attempt_id}/output"), ("post", "/api/v1/attempts/claim"),
    ("post", "/api/v1/attempts/{attempt_id}/heartbeat"),
    ("post", "/api/v1/attempts/{attempt_id}/result"),
    ("get", "/api/v1/health"), ("get", "/metrics"), ("get", "/"),
}  # fmt: skip


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_document_is_openapi_31_and_covers_every_route(api: Api) -> None:
    result = api.get("/api/v1/openapi.json")
    assert result.status_code == 200
    doc = result.json
    assert doc["openapi"].startswith("3.1") and doc["info"]["title"] and doc["info"]["version"]
    described = {(m, p) for p, ops in doc["paths"].items() for m in ops if m in METHODS}
    assert ROUTES <= described
    for path, ops in doc["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, op in ops.items():
            assert op["responses"], (method, path)
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == names, (method, path)
            for code, answer in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", code) and answer["description"]


def test_every_ref_resolves_and_every_schema_is_valid(api: Api) -> None:
    doc = api.get("/api/v1/openapi.json").json
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)  # raises on an invalid schema
        assert schema, name


def test_bodies_are_the_enforced_schemas_and_errors_are_described(api: Api) -> None:
    doc = api.get("/api/v1/openapi.json").json
    paths = doc["paths"]
    body = paths["/api/v1/attempts/claim"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == bodies.CLAIM
    result = paths["/api/v1/attempts/{attempt_id}/result"]["post"]
    assert result["requestBody"]["content"]["application/json"]["schema"] == bodies.RESULT
    assert result["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    submit = paths["/api/v1/workflows"]["post"]
    assert "422" in submit["responses"] and "413" in submit["responses"]
    workflow_schema = doc["components"]["schemas"]["WorkflowDocument"]
    assert "tasks" in workflow_schema["properties"]
    error = doc["components"]["schemas"]["Error"]["properties"]["error"]
    assert set(error["required"]) == {"code", "message", "details"}
