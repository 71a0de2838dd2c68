"""Helpers for webhook tests: run the webhooks' background jobs by hand (as the relay and a
worker would, on the controlled clock), register endpoints, read what was recorded."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.models import OutboxJob, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.support import Account
from workers.runner import JobRunner


def run_due_jobs(db: Database, settings: Settings, *, prefix: str = "webhooks.") -> list[str]:
    """Run every due, unsent outbox job whose name starts with `prefix`, until none is due (jobs
    they enqueue for now run too); return the names run, in order."""
    runner = JobRunner(settings, db)
    ran: list[str] = []
    while True:
        with db.transaction() as session:
            rows = session.execute(
                select(OutboxJob.id, OutboxJob.name, OutboxJob.args)
                .where(
                    OutboxJob.sent_at.is_(None),
                    OutboxJob.available_at <= utcnow(),
                    OutboxJob.name.startswith(prefix),
                )
                .order_by(OutboxJob.id)
            ).all()
            if rows:
                session.execute(
                    update(OutboxJob)
                    .where(OutboxJob.id.in_([r.id for r in rows]))
                    .values(sent_at=utcnow())
                )
        if not rows:
            return ran
        for row in rows:
            runner.run(row.name, tuple(row.args), outbox_id=row.id)
            ran.append(row.name)


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
