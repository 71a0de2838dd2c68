"""Walk every route of the app: only health, docs, signup and login may answer without a token."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from fastapi import FastAPI
from fastapi.testclient import TestClient


def walk(routes: Iterable[object]) -> Iterator[tuple[str, set[str]]]:
    """(path template, methods) of every HTTP route, looking inside included routers."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # FastAPI keeps included routers as one entry
            yield from walk(contexts() if callable(contexts) else contexts)
        elif isinstance(getattr(route, "path", None), str):
            yield route.path, set(getattr(route, "methods", None) or {"GET"})  # type: ignore[attr-defined]


PUBLIC = {
    "/healthz",
    "/readyz",
    "/docs",
    "/docs/assets",  # the docs pages' scripts and styles (tests/core/test_security_headers.py)
    "/redoc",
    "/openapi.json",
    "/v1/auth/signup",
    "/v1/auth/login",
    "/v1/stripe/webhook",  # authenticated by Stripe's signature (tests/payouts)
}


def test_every_non_public_route_answers_401_without_a_token(app: FastAPI) -> None:
    checked = 0
    with TestClient(app) as client:
        for template, methods in walk(app.routes):
            if template in PUBLIC:
                continue
            path = re.sub(r"\{[^}]+\}", "1", template)
            for method in methods:
                if method in {"HEAD", "OPTIONS"}:
                    continue
                response = client.request(method, path, json={})
                assert response.status_code == 401, (
                    f"{method} {template} answered {response.status_code} without a token"
                )
                assert response.headers["content-type"].startswith("application/problem+json")
                checked += 1
    assert checked >= 10  # the walk really covered the API


def test_public_routes_exist(app: FastAPI) -> None:
    paths = {template for template, _ in walk(app.routes)}
    assert {"/healthz", "/readyz", "/v1/auth/signup", "/v1/auth/login", "/docs"} <= paths
