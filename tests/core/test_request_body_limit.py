"""Every request body is capped (TESSERA_MAX_REQUEST_BYTES) by its declared length and by what
actually streams in; dataset uploads keep their own larger limit (TESSERA_MAX_UPLOAD_BYTES)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from app.models import AuthLimit, Item, Role
from tests.jobs.factories import create_job
from tests.support import Account, assert_problem

MiB = 1024 * 1024


def call_asgi(
    app: FastAPI, path: str, chunks: list[bytes], headers: dict[str, str]
) -> tuple[int, dict[str, Any], int]:
    """POST `chunks` to `app` as a server would hand them over, one `receive` each; return the
    status, the JSON body and how many chunks the app pulled."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= len(chunks):
            return {"type": "http.disconnect"}
        pulled += 1
        return {
            "type": "http.request",
            "body": chunks[pulled - 1],
            "more_body": pulled < len(chunks),
        }

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("192.0.2.1", 1234),
        "server": ("testserver", 80),
    }
    anyio.run(app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read(
    app: FastAPI, settings: Settings, db: Database
) -> None:
    """Before: a 100 MB login body was read in full."""
    declared = str(100 * MiB)
    status, body, pulled = call_asgi(
        app,
        "/v1/auth/login",
        [b"{" + b" " * MiB] * 100,
        {"content-type": "application/json", "content-length": declared},
    )
    assert status == 413
    assert body["type"] == "/problems/payload-too-large"
    assert str(settings.max_request_bytes) in body["detail"]
    assert pulled == 0
    with db.read_session() as session:  # the login never ran: not even its attempt counted
        assert session.scalar(select(func.count()).select_from(AuthLimit)) == 0


def test_a_streamed_body_is_refused_once_it_passes_the_limit(
    settings: Settings, db: Database
) -> None:
    """A chunked body declares no length: it is counted as it arrives and reading stops."""
    app = create_app(settings.model_copy(update={"max_request_bytes": MiB}), db)
    chunk = b" " * (64 * 1024)
    status, body, pulled = call_asgi(
        app, "/v1/auth/login", [b"{"] + [chunk] * 200, {"content-type": "application/json"}
    )
    assert status == 413
    assert body["type"] == "/problems/payload-too-large"
    assert pulled == 1 + MiB // len(chunk)  # "{" and 16 chunks: one byte past the limit
    small = call_asgi(
        app,
        "/v1/auth/login",
        [b'{"email": "a@example.com", ', b'"password": "x"}'],
        {"content-type": "application/json"},
    )
    assert small[0] == 401


def test_every_endpoint_but_uploads_has_the_request_limit(
    settings: Settings, db: Database, make_account: Callable[..., Account]
) -> None:
    owner = make_account(Role.client)
    limits = {"max_request_bytes": 4096, "max_upload_bytes": 64 * 1024}
    with TestClient(create_app(settings.model_copy(update=limits), db)) as client:
        job_id = create_job(client, owner)
        long = {"instructions": "x" * 5000}  # fine by the job's rules (up to 100,000)
        refused = client.patch(f"/v1/jobs/{job_id}", json=long, headers=owner.headers)
        assert_problem(refused, 413, "payload-too-large")
        job = client.get(f"/v1/jobs/{job_id}", headers=owner.headers).json()
        assert job["instructions"] == "Pick the sentiment."

        rows = "text\n" + "".join(f"row number {n}\n" for n in range(2000))  # ~30 KB
        imported = client.post(
            f"/v1/jobs/{job_id}/items",
            content=rows.encode(),
            headers={**owner.headers, "content-type": "text/csv"},
        )
        assert imported.status_code == 201, imported.text
        too_big = client.post(
            f"/v1/jobs/{job_id}/items",
            content=(rows * 3).encode(),
            headers={**owner.headers, "content-type": "text/csv"},
        )
        assert_problem(too_big, 413, "payload-too-large")
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 2000
