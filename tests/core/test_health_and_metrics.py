from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from tests.support import Account, assert_problem

METRICS_TOKEN = "m" * 40
METRICS = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def test_healthz_and_readyz(client: TestClient, admin: Account) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz", headers=admin.headers)
    assert ready.status_code == 200
    assert ready.json()["checks"]["schema"]["current"] == ready.json()["checks"]["schema"]["head"]


def test_readyz_tells_anyone_else_only_whether_it_is_ready(
    client: TestClient, annotator: Account
) -> None:
    for headers in ({}, annotator.headers, {"Authorization": "Bearer not-a-token"}):
        ready = client.get("/readyz", headers=headers)
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready"}


def test_readyz_is_503_on_an_unmigrated_database_with_details_for_the_metrics_token(
    tmp_path: Path,
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'empty.db'}",
        metrics_token=SecretStr(METRICS_TOKEN),
        _env_file=None,
    )  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as client:
        anonymous = assert_problem(client.get("/readyz"), 503, "service-unavailable")
        body = assert_problem(client.get("/readyz", headers=METRICS), 503)
    assert set(anonymous) == {"type", "title", "status", "detail", "instance"}
    assert "migrat" not in anonymous["detail"]
    assert body["checks"]["schema"]["current"] is None
    assert "tessera migrate" in body["detail"]


def test_metrics_need_admin_or_metrics_token(
    client: TestClient, admin: Account, annotator: Account, settings: Settings, db: Database
) -> None:
    assert_problem(client.get("/metrics"), 401)
    assert_problem(client.get("/metrics", headers=annotator.headers), 403)
    client.get("/healthz")
    scraped = client.get("/metrics", headers=admin.headers)
    assert scraped.status_code == 200
    assert 'tessera_http_requests_total{method="GET",route="/healthz",status="200"}' in scraped.text

    with_token = settings.model_copy(update={"metrics_token": SecretStr("m" * 40)})
    with TestClient(create_app(with_token, db)) as other:
        assert (
            other.get("/metrics", headers={"Authorization": "Bearer " + "m" * 40}).status_code
            == 200
        )
