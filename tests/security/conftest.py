"""Fixtures of the security battery. Its worlds live for a whole module, inside a transaction of
the module's own; each test runs in a savepoint rolled back when it ends, so every test starts
from the world as it was built, whatever the previous test's calls changed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from tests.harness import rolled_back
from tests.security.world import world_settings


@pytest.fixture(scope="module")
def module_db(settings: Settings, engine: Engine) -> Iterator[Database]:
    with rolled_back(engine, settings) as database:
        yield database


@pytest.fixture(autouse=True)
def _each_test_rolled_back(request: pytest.FixtureRequest) -> Iterator[None]:
    """What a test changes in the module's world is undone when it ends."""
    if "module_db" not in request.fixturenames:
        yield
        return
    database: Database = request.getfixturevalue("module_db")
    assert database.connection is not None
    savepoint = database.connection.begin_nested()
    yield
    savepoint.rollback()


@pytest.fixture(scope="module")
def http(settings: Settings, module_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(world_settings(settings), module_db)) as client:
        yield client
