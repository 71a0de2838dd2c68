from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import cli
from app.core.settings import Settings

pytestmark = pytest.mark.commits  # the CLI opens a database of its own

runner = CliRunner()


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TESSERA_SECRET_KEY", settings.resolved_secret_key())


@pytest.mark.usefixtures("env")
def test_admin_create_prints_a_working_token(client: TestClient) -> None:
    result = runner.invoke(cli, ["admin", "create", "--email", "Root@Example.com"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "admin"
    assert me.json()["email"] == "Root@example.com"  # as typed (the domain lower-cased)

    again = runner.invoke(cli, ["admin", "create", "--email", "root@example.com"])
    assert again.exit_code == 1
    assert "already exists" in again.output


@pytest.mark.usefixtures("env", "db")
def test_migrate_check_reports_head() -> None:
    result = runner.invoke(cli, ["migrate", "--check"])
    assert result.exit_code == 0, result.output
    assert "head" in result.output


def test_invalid_settings_exit_2_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_DATABASE_URL", "oracle://nope")
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 2
    assert "TESSERA_DATABASE_URL" in result.output
