"""The OpenAPI document tells the truth about errors, and 405 names every allowed method."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.errors import PROBLEM_JSON
from tests.core.test_every_route_needs_a_token import PUBLIC, walk
from tests.support import assert_problem

PROBLEM_REF = "#/components/schemas/Problem"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def operations(document: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(section, path, method, operation) of every operation, webhooks included."""
    return [
        (section, path, method, operation)
        for section in ("paths", "webhooks")
        for path, item in document.get(section, {}).items()
        for method, operation in item.items()
    ]


def test_every_4xx_response_is_problem_json_with_the_problem_schema(
    openapi_document: dict[str, Any],
) -> None:
    document = openapi_document
    checked = 0
    for section, path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith("4"):
                continue
            where = f"{section} {method.upper()} {path} {status}"
            assert list(response.get("content", {})) == [PROBLEM_JSON], where
            assert response["content"][PROBLEM_JSON]["schema"] == {"$ref": PROBLEM_REF}, where
            assert response["description"], where
            checked += 1
    assert checked > 300  # every route has some: the walk really covered the document
    schemas = document["components"]["schemas"]
    assert schemas["Problem"]["required"] == ["type", "title", "status"]
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 shape, which we never send


def test_each_route_documents_the_problems_its_shape_implies(
    openapi_document: dict[str, Any],
) -> None:
    document = openapi_document
    for section, path, method, operation in operations(document):
        if section == "webhooks":  # requests Tessera sends: the receiver's answers are not ours
            continue
        responses = operation["responses"]
        if "{" in path:
            assert "404" in responses, (method, path)
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in responses, (method, path)
        if "application/json" in operation.get("requestBody", {}).get("content", {}):
            assert "413" in responses, (method, path)


def test_every_route_that_answers_401_without_a_token_documents_it(app: FastAPI) -> None:
    document = app.openapi()
    checked = 0
    with TestClient(app) as client:
        for template, methods in walk(app.routes):
            if template in PUBLIC or template not in document["paths"]:
                continue
            path = re.sub(r"\{[^}]+\}", "1", template)
            for method in methods & set(HTTP_METHODS):
                response = client.request(method, path, json={})
                assert response.status_code == 401
                documented = document["paths"][template][method.lower()]["responses"]
                assert "401" in documented, f"{method} {template}"
                checked += 1
    assert checked > 50


def _answered_elsewhere(
    by_path: dict[str, set[str]], template: str, path: str, method: str
) -> bool:
    for other, methods in by_path.items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(other)) + "$"
        if other != template and method in methods and re.match(pattern, path):
            return True
    return False


def test_405_lists_every_method_of_the_path_in_allow(app: FastAPI) -> None:
    """Before: Starlette named only the methods of the first route matching the path (DELETE
    /v1/jobs answered `Allow: POST`, though GET is there too)."""
    by_path: dict[str, set[str]] = defaultdict(set)
    for template, methods in walk(app.routes):
        by_path[template] |= methods
    checked = 0
    with TestClient(app) as client:
        for template, methods in by_path.items():
            if template == "/docs/assets":
                continue
            path = re.sub(r"\{[^}]+\}", "1", template)
            # A method another route answers on this path is allowed too (`GET
            # /v1/assignments/next` is a GET of the assignment named "next": 422, not 405).
            answered = methods | {
                m for m in HTTP_METHODS if _answered_elsewhere(by_path, template, path, m)
            }
            missing = [m for m in HTTP_METHODS if m not in answered]
            if not missing:
                continue
            response = client.request(missing[0], path)
            assert_problem(response, 405, "method-not-allowed")
            allowed = {m.strip() for m in response.headers["allow"].split(",")}
            assert allowed == answered, template
            checked += 1
    assert checked > 50
    assert set(client.delete("/v1/jobs").headers["allow"].split(", ")) == {"GET", "POST"}
