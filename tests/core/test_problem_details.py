from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.errors import Conflict, NotFound, add_problem_schema, problem_responses
from tests.support import Account, assert_problem


def test_unknown_route_is_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/no-such-thing"), 404)
    assert body["instance"] == "/v1/no-such-thing"


def test_wrong_method_is_405_problem(client: TestClient) -> None:
    assert_problem(client.delete("/healthz"), 405)


def test_malformed_json_is_422_pointing_at_the_body(client: TestClient) -> None:
    response = client.post(
        "/v1/auth/login", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["pointer"] == "#"
    assert body["errors"][0]["code"] == "json_invalid"


def test_missing_fields_are_422_with_a_pointer_each(client: TestClient) -> None:
    body = assert_problem(client.post("/v1/auth/signup", json={"email": "not-an-email"}), 422)
    pointers = {e["pointer"] for e in body["errors"]}
    assert pointers == {"#/email", "#/password", "#/display_name", "#/role"}


def test_bad_query_parameter_names_the_parameter(client: TestClient, admin: Account) -> None:
    body = assert_problem(client.get("/v1/admin/users?limit=0", headers=admin.headers), 422)
    assert body["errors"] == [
        {
            "in": "query",
            "parameter": "limit",
            "code": "greater_than_equal",
            "detail": body["errors"][0]["detail"],
        }
    ]


def test_unhandled_error_is_500_without_stack_trace_and_logged_with_request_id(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app) as client, caplog.at_level(logging.ERROR, "tessera.http"):
        response = client.get("/boom", headers={"X-Request-ID": "trace-me-123"})
    body = assert_problem(response, 500)
    assert response.headers["x-request-id"] == "trace-me-123"
    assert body["request_id"] == "trace-me-123"
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    logged = [r for r in caplog.records if r.exc_info]
    assert logged
    assert "secret internals" in str(logged[0].exc_info[1])  # type: ignore[index]


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    first, second = client.get("/healthz"), client.get("/healthz")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    # An unreasonable incoming id is replaced, not echoed.
    assert (
        client.get("/healthz", headers={"X-Request-ID": "<script>"}).headers["x-request-id"]
        != "<script>"
    )


def test_problem_responses_document_each_type_as_problem_json() -> None:
    class SlotGone(Conflict):
        slug, title = "slot-gone", "The slot is gone"

    app = FastAPI()

    @app.post("/x", responses=problem_responses(NotFound, Conflict, SlotGone))
    def x() -> dict[str, str]:
        return {}

    document = add_problem_schema(app.openapi())
    responses = document["paths"]["/x"]["post"]["responses"]
    assert set(responses) == {"200", "404", "409"}
    assert "`slot-gone`" in responses["409"]["description"]
    assert "`conflict`" in responses["409"]["description"]
    assert list(responses["409"]["content"]) == ["application/problem+json"]
    assert document["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status"]
