"""Client webhooks: endpoints, the events recorded for them, deliveries and their attempts.

An event is written in the transaction of its cause and carries everything needed to send it
(client and job ids, type, payload version and data), so a store writing raw SQL can insert it
without looking anything up. Deliveries (one per event and endpoint) are made by a background job
after the commit; each attempt is kept for the client to inspect.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedAtMixin, IdMixin, str_enum

Json = JSON().with_variant(JSONB(), "postgresql")


class DeliveryStatus(StrEnum):
    pending = "pending"  # waiting for its next attempt (or in one: `locked_until`)
    succeeded = "succeeded"  # the endpoint answered 2xx
    dead = "dead"  # retries ran out (or the endpoint was disabled): replayable


class WebhookEndpoint(IdMixin, CreatedAtMixin, Base):
    """A client's URL and the event types it wants. The signing secret is stored encrypted (we
    must sign with it, so a hash would not do); during a rotation the previous secret stays
    valid, and is signed with too, until `previous_secret_expires_at`."""

    __tablename__ = "webhook_endpoints"

    client_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why it was switched off automatically (410 Gone, or failing for too long); None otherwise.
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[datetime | None]
    # The current run of failures: since when, and the latest (a long quiet gap ends the run).
    failing_since: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    secret_rotated_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]


class WebhookEvent(IdMixin, Base):
    """Something a client may hear about. `public_id` is the `webhook-id` every delivery and
    retry of it carries (the receiver's idempotency key); random, so it is unique across
    installations that share a receiver. Test events name the one endpoint they are for."""

    __tablename__ = "webhook_events"

    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    client_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    job_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("jobs.id"))
    endpoint_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_webhook_events_created_at", "created_at"),)


class WebhookDelivery(IdMixin, CreatedAtMixin, Base):
    """One event on its way to one endpoint.

    Retries run for a window from `window_started_at` (the first attempt, or the latest
    replay), `failures_in_window` drives the backoff; `attempts` counts every attempt ever.
    `locked_until` is set while an attempt is in flight, so a second job for the same delivery
    does nothing, and a crashed attempt is picked up again once it passes."""

    __tablename__ = "webhook_deliveries"

    event_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("webhook_events.id", ondelete="CASCADE")
    )
    endpoint_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, "webhook_delivery_status")
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failures_in_window: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_latency_ms: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    succeeded_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        # The sweep's work list: only deliveries still waiting.
        Index(
            "ix_webhook_deliveries_pending",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )


class WebhookAttempt(IdMixin, Base):
    """One HTTP attempt of a delivery: what came back (or what went wrong) and how long it took."""

    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(1000))
    response_excerpt: Mapped[str | None] = mapped_column(Text)


class WebhookJobProgress(Base):
    """The last `job.progress` event recorded for a job (throttling: every 5 points, at most once
    a minute)."""

    __tablename__ = "webhook_job_progress"

    job_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    percent: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[datetime]
