"""The token guards every route but health and the dashboard's static files (docs/api.md)."""

from __future__ import annotations

import inspect
import re

from falcon import testing

from stq.api import guards
from tests.security.conftest import TOKEN

#: "/": the dashboard page; the OpenAPI document describes the API, it holds no data.
EXEMPT = {("GET", "/api/v1/health"), ("GET", "/"), ("GET", "/api/v1/openapi.json")}
METHODS = ("get", "post", "put", "patch", "delete")


def _operations(secured: testing.TestClient, auth: dict[str, str]) -> list[tuple[str, str]]:
    doc = secured.simulate_get("/api/v1/openapi.json", headers=auth).json
    ops = [
        (method.upper(), re.sub(r"\{[^}]+\}", "x1", path))
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    ]
    assert len(ops) >= 13, ops  # every operation of the API
    return ops


def _exempt(method: str, path: str) -> bool:
    """Health, and the dashboard's static files (HTML, JS, CSS: no data)."""
    return (method, path) in EXEMPT or (method == "GET" and path.startswith("/dashboard/"))


def _router_templates(app) -> set[str]:
    """Every URI template the app routes (walks falcon's compiled router)."""
    found, nodes = set(), list(app._router._roots)
    while nodes:
        node = nodes.pop()
        if node.resource is not None:
            found.add(node.uri_template)
        nodes += node.children or []
    return found


def test_token_compared_in_constant_time() -> None:
    source = inspect.getsource(guards.Guard._check_token)
    assert "hmac.compare_digest(" in source
    assert "== self._token" not in source and "self._token ==" not in source


def test_every_documented_operation_needs_the_token(secured, auth) -> None:
    for method, path in _operations(secured, auth):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            result = secured.simulate_request(method, path, headers=headers, json={})
            if _exempt(method, path):
                assert result.status_code != 401, (method, path)
                continue
            assert result.status_code == 401, (method, path, headers, result.text)
            assert result.headers["content-type"].startswith("application/json")
            assert TOKEN not in result.text
        result = secured.simulate_request(method, path, headers=auth, json={})
        assert result.status_code != 401, (method, path)


def _shape(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", template)


def test_every_routed_path_is_documented_or_static(secured, auth) -> None:
    """So enumerating the OpenAPI document above really covers every route."""
    doc = secured.simulate_get("/api/v1/openapi.json", headers=auth).json
    documented = {_shape(p) for p in doc["paths"]} | {"/dashboard/{}", "/api/v1/openapi.json"}
    routed = {_shape(t) for t in _router_templates(secured.app)}
    assert len(routed) >= 10 and routed <= documented, routed - documented


def test_static_files_hold_no_data_and_need_no_token(secured) -> None:
    for path in ("/", "/dashboard/core.js"):
        result = secured.simulate_get(path)
        assert result.status_code == 200, path
        assert "application/json" not in result.headers["content-type"]
    for method in ("POST", "DELETE"):
        assert secured.simulate_request(method, "/").status_code in (401, 405)
    # a path trick must not reach data through the exempt prefix
    assert secured.simulate_get("/dashboard/../api/v1/workflows").status_code in (401, 404)
