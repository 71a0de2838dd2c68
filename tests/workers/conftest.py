from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.core.db import Database
from app.core.settings import Settings
from tests.workers import jobs  # noqa: F401  (registers the test jobs)
from tests.workers.background import Background, background_harness


@pytest.fixture(params=["in-process", "redis"])
def background(
    request: pytest.FixtureRequest, settings: Settings, db: Database
) -> Iterator[Background]:
    """Background work, built but not started (`start()` it): jobs in-process, or a Dramatiq
    worker on the real Redis, in a namespace of its own that is deleted afterwards."""
    yield from background_harness(request.param, settings, db)
