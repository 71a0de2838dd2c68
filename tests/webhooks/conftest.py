from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from tests.webhooks.receiver import Receiver, running_receiver


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    """Receivers on 127.0.0.1 allowed (and nothing else private); short attempt timeouts."""
    return settings.model_copy(
        update={"webhook_allowed_networks": ["127.0.0.1/32"], "webhook_timeout_seconds": 0.5}
    )


@pytest.fixture
def hooks(hook_settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(hook_settings, db)) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
