"""Security headers on every response; the docs work offline, on assets served by the service."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.support import Account

ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


def csp(response: object) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]  # type: ignore[attr-defined]
    directives = [d.split() for d in policy.split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


@pytest.fixture
def raising_app(app: FastAPI) -> Iterator[TestClient]:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app) as client:
        yield client


def test_every_kind_of_response_carries_the_security_headers(
    raising_app: TestClient, annotator: Account
) -> None:
    client = raising_app
    responses = {
        "ok": client.get("/v1/me", headers=annotator.headers),
        "unauthorized": client.get("/v1/me"),
        "unknown route": client.get("/v1/nothing-here"),
        "method not allowed": client.delete("/healthz"),
        "validation": client.post("/v1/auth/login", json={}),
        "too large": client.post(
            "/v1/auth/login", content=b"x" * (5 * 1024 * 1024), headers={"content-type": "a/b"}
        ),
        "server error": client.get("/boom"),
        "openapi": client.get("/openapi.json"),
        "health": client.get("/healthz"),
    }
    for what, response in responses.items():
        for name, value in ALWAYS.items():
            assert response.headers.get(name) == value, (what, name)
        policy = csp(response)
        assert policy["default-src"] == ["'none'"], what
        assert policy["frame-ancestors"] == ["'none'"], what
        assert response.headers["cache-control"] == "no-store", what


def test_responses_carrying_secrets_are_not_stored(
    client: TestClient, annotator: Account, admin: Account
) -> None:
    body = {"email": "s@example.com", "password": "long enough pw", "display_name": "S"}
    secrets = [
        client.post("/v1/auth/signup", json={**body, "role": "client"}),
        client.post("/v1/auth/login", json={"email": body["email"], "password": body["password"]}),
        client.post("/v1/me/tokens", headers=annotator.headers, json={"name": "script"}),
        client.post("/v1/admin/invites", headers=admin.headers, json={"role": "annotator"}),
    ]
    for response in secrets:
        assert response.status_code in (200, 201), response.text
        assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_only_local_assets_under_their_own_csp(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert "http://" not in html  # no CDN, no web fonts
    assert "https://" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000, asset
        assert served.headers["cache-control"].startswith("public")
    policy = csp(response)
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    for script in re.findall(r"<script>(.*?)</script>", html, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"]
    assert policy["connect-src"] == ["'self'"]  # the OpenAPI document, and "try it out"
