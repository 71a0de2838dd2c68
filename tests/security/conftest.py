"""Fixtures of the security battery. Its worlds live for a whole module in a Database of the
module's own (the suite empties the tables after each test that uses `db`, which would throw a
world away after every route); the module empties them when it ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.core import caches
from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from migrations.schema import upgrade_to_head
from tests.security.world import world_settings
from tests.support import empty_tables


@pytest.fixture(scope="module")
def module_db(settings: Settings) -> Iterator[Database]:
    database = Database(settings)
    upgrade_to_head(database.engine)
    yield database
    empty_tables(database)
    database.dispose()


@pytest.fixture(scope="module")
def http(settings: Settings, module_db: Database) -> Iterator[TestClient]:
    caches.clear_all()  # the listeners' cache outlives tables emptied behind its back
    with TestClient(create_app(world_settings(settings), module_db)) as client:
        yield client
    caches.clear_all()
