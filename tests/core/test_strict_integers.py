"""Issue #22 finding 8: integer fields take JSON integers only, everywhere.

pydantic's lax mode read `"amount_micros": true` as 1 micro, `"5400000"` as 5.4 units, and
`rate_micros: "5"`, `overlap.min: true`, `priority: "5"` as numbers. The walk below reads the
OpenAPI request schemas of every route and sends a string, a boolean and a float to each integer
field (one level of nested objects included); the behaviour tests check that nothing changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.db import Database
from app.models import Funding, Job
from tests.jobs.factories import job_body
from tests.support import Account, assert_problem

NOT_INTEGERS: list[Any] = ["5", True, 5.0]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _arms(spec: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(spec, schema)
    arms = schema.get("anyOf") or schema.get("oneOf")
    return [_resolve(spec, arm) for arm in arms] if arms else [schema]


def integer_fields(
    spec: dict[str, Any], schema: dict[str, Any], depth: int = 0
) -> Iterator[tuple[str, ...]]:
    """The paths of the integer properties of a request schema (nested objects one level)."""
    for name, prop in _resolve(spec, schema).get("properties", {}).items():
        for arm in _arms(spec, prop):
            if arm.get("type") == "integer":
                yield (name,)
            elif arm.get("type") == "object" and depth == 0:
                yield from ((name, *inner) for inner in integer_fields(spec, arm, depth + 1))


def json_body_routes(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                yield (
                    method,
                    path.replace("{", "").replace("}", ""),
                    content["application/json"]["schema"],
                )


def body_at(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body: Any = value
    for name in reversed(path):
        body = {name: body}
    assert isinstance(body, dict)
    return body


def refuses(response: Any, path: tuple[str, ...]) -> bool:
    if response.status_code != 422:
        return False
    pointer = "#/" + "/".join(path)
    return any(
        e.get("pointer") == pointer and e.get("code") == "int_type"
        for e in response.json().get("errors", [])
    )


def test_finding_8_every_integer_field_of_every_request_body_takes_json_integers_only(
    app: FastAPI, admin: Account, client_account: Account, annotator: Account
) -> None:
    callers = [admin, client_account, annotator]
    with TestClient(app) as http:
        spec = http.get("/openapi.json").json()
        checked: list[str] = []
        missed: list[str] = []
        for method, url, schema in json_body_routes(spec):
            url = "/".join("1" if part.endswith("_id") else part for part in url.split("/"))
            for path in integer_fields(spec, schema):
                for value in NOT_INTEGERS:
                    label = f"{method.upper()} {url} {'.'.join(path)}={value!r}"
                    if any(
                        refuses(
                            http.request(method, url, json=body_at(path, value), headers=c.headers),
                            path,
                        )
                        for c in callers
                    ):
                        checked.append(label)
                    else:
                        missed.append(label)
    assert missed == []
    # the walk reached the fields the finding named, and many more
    for expected in ("amount_micros", "rate_micros", "min", "priority"):
        assert any(f" {expected}=" in label or f".{expected}=" in label for label in checked)
    assert len(checked) > 60


@pytest.mark.parametrize("amount", [True, "5400000", 5400000.0, False])
def test_finding_8_a_credit_in_anything_but_a_json_integer_is_a_422_and_credits_nothing(
    client: TestClient, admin: Account, client_account: Account, db: Database, amount: Any
) -> None:
    before = client.get("/v1/balance", headers=client_account.headers).json()
    with db.session() as session:
        fundings = session.scalar(select(func.count()).select_from(Funding))
    response = client.post(
        f"/v1/admin/clients/{client_account.id}/credits",
        json={"amount_micros": amount, "reason": "goodwill"},
        headers=admin.headers,
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["pointer"] == "#/amount_micros"
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Funding)) == fundings
    assert client.get("/v1/balance", headers=client_account.headers).json() == before


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        ({"pricing": {"mode": "per_task", "rate_micros": "5"}}, "#/pricing/rate_micros"),
        ({"overlap": {"min": True}}, "#/overlap/min"),
        ({"priority": "5"}, "#/priority"),
        ({"items_per_task": 1.0}, "#/items_per_task"),
    ],
)
def test_finding_8_a_job_with_a_number_that_is_not_a_json_integer_is_a_422_and_not_created(
    client: TestClient, client_account: Account, db: Database, overrides: Any, pointer: str
) -> None:
    with db.session() as session:
        jobs = session.scalar(select(func.count()).select_from(Job))
    response = client.post("/v1/jobs", json=job_body(**overrides), headers=client_account.headers)
    problem = assert_problem(response, 422)
    assert pointer in [e.get("pointer") for e in problem["errors"]]
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == jobs


def test_finding_8_json_integers_still_go_through(
    client: TestClient, client_account: Account
) -> None:
    response = client.post(
        "/v1/jobs", json=job_body(priority=5, overlap={"min": 2}), headers=client_account.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["priority"] == 5
