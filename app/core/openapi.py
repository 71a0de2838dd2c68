"""The OpenAPI document tells the truth about errors.

Every error this API sends is RFC 9457 problem+json (`app.core.errors`), so every 4xx response
in the document is `application/problem+json` with the `Problem` schema. FastAPI's own default
(422 as `application/json` `HTTPValidationError`) is replaced, and responses an endpoint listed
without content (`{404: {"description": ...}}`) get the problem content.

Endpoints list the problems particular to them in their `responses` (`problem_responses`); the
ones that follow from a route's shape are filled in here, in one place, so no route has to repeat
them and none can forget them:
- the problems its dependencies declare (`errors.raises`): 401 and 403 from the token and role
  checks of `app.core.security`;
- 404 for a route with path parameters (no such resource, or not the caller's);
- 422 for a route with any parameter or a body;
- 413 for a route with a body (`app.core.body_limit`).

The `webhooks` section describes requests Tessera sends; what a receiver answers is not ours
to document beyond the 2xx that counts as delivered, so FastAPI's 422 is dropped there.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from app.core.errors import (
    PROBLEM_JSON,
    PROBLEM_SCHEMA_REF,
    NotFound,
    PayloadTooLarge,
    ProblemEntry,
    ValidationFailed,
    add_problem_schema,
    declared_problems,
    problem_responses,
)

FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def document_problems(app: FastAPI, openapi: dict[str, Any]) -> dict[str, Any]:
    """`openapi` (as FastAPI generated it for `app`) with every 4xx response as problem+json and
    each route's default problems filled in."""
    add_problem_schema(openapi)
    routes: dict[tuple[str, str], Any] = {}
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.path_format:
            for method in context.methods or ():
                routes[(context.path_format, method.lower())] = context
    for path, operations in openapi.get("paths", {}).items():
        for method, operation in operations.items():
            route = routes.get((path, method))
            defaults = default_problems(route) if route is not None else []
            operation["responses"] = _merge(operation.get("responses", {}), defaults)
    for operations in openapi.get("webhooks", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            operation["responses"] = {s: r for s, r in responses.items() if not _client_error(s)}
    _drop_unused_schemas(openapi)
    return openapi


def default_problems(route: Any) -> list[ProblemEntry]:
    """The problems a route may answer with because of its shape (see the module docstring)."""
    dependants = _dependants(route.dependant)
    problems: list[ProblemEntry] = []
    for dependant in dependants[1:]:
        problems.extend(declared_problems(dependant.call))
    if any(d.path_params for d in dependants):
        problems.append((NotFound, "no such resource, or not yours"))
    has_body = route.body_field is not None
    if has_body or any(
        d.path_params or d.query_params or d.header_params or d.cookie_params for d in dependants
    ):
        problems.append((ValidationFailed, "a parameter or the body is not what this expects"))
    if has_body:
        problems.append((PayloadTooLarge, "body larger than TESSERA_MAX_REQUEST_BYTES"))
    return problems


def _dependants(dependant: Dependant) -> list[Dependant]:
    """`dependant` and every dependency below it."""
    found = [dependant]
    for dependency in dependant.dependencies:
        found.extend(_dependants(dependency))
    return found


def _client_error(status: str) -> bool:
    return status.startswith("4")


def _merge(responses: dict[str, Any], defaults: list[ProblemEntry]) -> dict[str, Any]:
    """The endpoint's own responses, each 4xx as problem+json, plus the default problems it
    does not list (added to the response of their status when the endpoint has one)."""
    merged = {
        status: _as_problem(response) if _client_error(status) else response
        for status, response in responses.items()
        if not _fastapi_validation_error(response)
    }
    for entry in defaults:
        status, response = next(iter(problem_responses(entry).items()))
        existing = merged.setdefault(str(status), response)
        if existing is response:
            continue
        examples = existing["content"][PROBLEM_JSON].setdefault("examples", {})
        for slug, example in response["content"][PROBLEM_JSON]["examples"].items():
            if slug not in examples:
                examples[slug] = example
                existing["description"] = "; ".join(
                    part for part in (existing["description"], response["description"]) if part
                )
    return dict(sorted(merged.items()))


def _as_problem(response: dict[str, Any]) -> dict[str, Any]:
    content = response.get("content", {}).get(PROBLEM_JSON)
    if content is not None and content.get("schema") == {"$ref": PROBLEM_SCHEMA_REF}:
        return response
    return {
        "description": response.get("description", ""),
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }


def _fastapi_validation_error(response: dict[str, Any]) -> bool:
    """FastAPI's own 422 (a route with parameters or a body always gets ours instead)."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def _drop_unused_schemas(openapi: dict[str, Any]) -> None:
    """Remove FastAPI's validation error schemas once nothing refers to them."""
    schemas = openapi.get("components", {}).get("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        if name not in schemas:
            continue
        others = {k: v for k, v in openapi.items() if k != "components"}
        others["schemas"] = {
            k: v for k, v in schemas.items() if k not in FASTAPI_VALIDATION_SCHEMAS
        }
        if f'"#/components/schemas/{name}"' not in json.dumps(others):
            del schemas[name]
