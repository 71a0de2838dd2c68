"""Helpers for webhook tests: register endpoints, read what was recorded (the webhooks'
background jobs run by hand through `tests.outbox.run_due_jobs`)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.db import Database
from app.models import OutboxJob, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.support import Account


def register(
    client: TestClient, owner: Account, url: str, event_types: list[str], **extra: Any
) -> dict[str, Any]:
    response = client.post(
        "/v1/webhooks/endpoints",
        json={"url": url, "event_types": event_types, **extra},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def deliveries(db: Database) -> list[WebhookDelivery]:
    with db.read_session() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def events(db: Database) -> list[WebhookEvent]:
    with db.read_session() as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def attempts_of(db: Database, delivery_id: int) -> list[WebhookAttempt]:
    with db.read_session() as session:
        return list(
            session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery_id)
                .order_by(WebhookAttempt.id)
            )
        )


def endpoint_row(db: Database, endpoint_id: int) -> WebhookEndpoint:
    with db.read_session() as session:
        return session.get_one(WebhookEndpoint, endpoint_id)


def pending_jobs(db: Database, name: str) -> list[OutboxJob]:
    with db.read_session() as session:
        return list(
            session.scalars(
                select(OutboxJob)
                .where(OutboxJob.name == name, OutboxJob.sent_at.is_(None))
                .order_by(OutboxJob.id)
            )
        )
