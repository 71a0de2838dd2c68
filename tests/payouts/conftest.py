"""Money tests: a fake Stripe on 127.0.0.1 (one server per run, emptied per test) and an app
configured for the `stripe` provider against it, beside the default (manual) one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.core.db import Database
from app.core.settings import PayoutsProvider, Settings
from app.main import create_app
from tests.payouts.fake_stripe import API_KEY, WEBHOOK_SECRET, FakeStripe


@pytest.fixture(scope="session")
def fake_stripe_server() -> Iterator[FakeStripe]:
    server = FakeStripe()
    yield server
    server.close()


@pytest.fixture
def stripe(fake_stripe_server: FakeStripe) -> FakeStripe:
    fake_stripe_server.reset()
    return fake_stripe_server


@pytest.fixture
def stripe_settings(settings: Settings, stripe: FakeStripe) -> Settings:
    return settings.model_copy(
        update={
            "payouts_provider": PayoutsProvider.stripe,
            "stripe_api_key": SecretStr(API_KEY),
            "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "stripe_api_base": stripe.url,
            "stripe_timeout_seconds": 5.0,
        }
    )


@pytest.fixture
def stripe_db(db: Database, stripe_settings: Settings) -> Database:
    """The test database, its sessions carrying the Stripe settings (same engine: not disposed
    here)."""
    return db.with_settings(stripe_settings)


@pytest.fixture
def stripe_client(stripe_settings: Settings, stripe_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(stripe_settings, stripe_db)) as test_client:
        yield test_client
