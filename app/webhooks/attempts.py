"""Delivery attempts: the `webhooks.deliver` job (one attempt of one delivery) and
`webhooks.dispatch` (sends an endpoint's due deliveries, a batch at a time: bulk replays).

An attempt is two short transactions around the HTTP call, never one transaction spanning it.
This is a deliberate exception to "the runner commits once": held across a call that may take
the whole timeout, the runner's transaction would keep SQLite's only write lock (stalling every
annotator's submit) or a PostgreSQL connection idle in transaction. So the handler commits once
itself, between the two steps:

1. Lock the delivery. Leave it alone unless it is pending, due and not in flight: a second job
   for the same delivery (a replay racing a retry, a sweep after a crash, a duplicate message)
   does nothing. A delivery to an endpoint that was switched off is dead. A delivery of a
   suspended client is held (no attempt made or counted): nothing is sent while the client is
   suspended; the periodic sweep looks at it again (`SWEEP_GRACE`, 10 minutes), so its
   deliveries go out within that time once the client is reactivated. Otherwise mark it in
   flight (`locked_until`), build and sign the body, and commit (with the runner's claim of the
   outbox row).
2. POST it, with no transaction open.
3. Lock the delivery again and record the attempt: succeeded; or failed with the next attempt
   scheduled as an outbox job with a delay; or dead when the retry window is over. The
   endpoint's run of failures is updated, and the endpoint switched off once it has failed for
   TESSERA_WEBHOOK_DISABLE_AFTER_HOURS (or at once on 410 Gone).

If the process dies during step 2, the delivery stays pending and in flight until
`locked_until` passes; the periodic sweep (`webhooks.background`) then sends it again. The
receiver may so see an event twice: it carries the same `webhook-id` every time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import orjson
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.core.background import JobContext, background_job, enqueue
from app.core.clock import utcnow
from app.core.settings import Settings
from app.models.accounts import User, UserStatus
from app.models.webhooks import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from app.webhooks import catalog, delivery, listeners, rules
from app.webhooks.signing import SecretBox, signature_headers

DELIVER_JOB: Final = "webhooks.deliver"
DISPATCH_JOB: Final = "webhooks.dispatch"
QUEUE: Final = "webhooks"
IN_FLIGHT_MARGIN: Final = timedelta(seconds=60)
DISPATCH_BATCH: Final = 500


@dataclass(frozen=True)
class Prepared:
    """A signed request ready to go (or the reason it cannot be made, as a failed attempt)."""

    url: str
    body: bytes
    headers: dict[str, str]
    sent_at: datetime
    error: str | None = None


@background_job(DELIVER_JOB, queue=QUEUE, time_limit=timedelta(minutes=5))
def deliver(ctx: JobContext, delivery_id: int) -> None:
    """Make one attempt of a delivery, if it is due (see the module docstring)."""
    prepared = prepare_attempt(ctx.session, ctx.settings, delivery_id)
    if prepared is None:
        return
    ctx.session.commit()  # step 1 ends here: no transaction is open during the HTTP call
    if prepared.error is not None:
        result = delivery.AttemptResult(None, 0, prepared.error)
    else:
        result = delivery.post(
            prepared.url,
            prepared.body,
            prepared.headers,
            policy=address_policy(ctx.settings),
            timeout=ctx.settings.webhook_timeout_seconds,
            max_response_bytes=ctx.settings.webhook_max_response_bytes,
        )
    record_attempt(ctx.session, ctx.settings, delivery_id, prepared.sent_at, result)


def address_policy(settings: Settings) -> delivery.AddressPolicy:
    return delivery.AddressPolicy.of(settings.webhook_allowed_networks)


def prepare_attempt(session: Session, settings: Settings, delivery_id: int) -> Prepared | None:
    """Step 1: lock the delivery and, when an attempt is due, mark it in flight and return the
    signed request; None when there is nothing to do. Flushes, never commits."""
    row = session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
    )
    now = utcnow()
    if (
        row is None
        or row.status is not DeliveryStatus.pending
        or row.next_attempt_at > now
        or (row.locked_until is not None and row.locked_until > now)
    ):
        return None
    endpoint = session.get_one(WebhookEndpoint, row.endpoint_id)
    event = session.get_one(WebhookEvent, row.event_id)
    if not endpoint.active:
        _dead(row, now, "the endpoint is disabled; enable it and replay the delivery")
        session.flush()
        return None
    if _suspended(session, endpoint.client_id):
        row.next_attempt_at = now  # held: the sweep looks again later
        session.flush()
        return None
    row.locked_until = now + timedelta(seconds=settings.webhook_timeout_seconds) + IN_FLIGHT_MARGIN
    session.flush()
    body = orjson.dumps(
        catalog.envelope(event.public_id, event.type, event.version, event.created_at, event.data)
    )
    timestamp = int(now.timestamp())
    try:
        in_force = secrets_in_force(endpoint, SecretBox(settings.resolved_secret_key()), now)
    except ValueError as exc:
        return Prepared(endpoint.url, body, {}, now, error=str(exc))
    return Prepared(
        endpoint.url, body, signature_headers(in_force, event.public_id, timestamp, body), now
    )


def _suspended(session: Session, client_id: int) -> bool:
    status = session.scalar(select(User.status).where(User.id == client_id))
    return status is UserStatus.suspended


def secrets_in_force(endpoint: WebhookEndpoint, box: SecretBox, now: datetime) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    found = [box.open(endpoint.secret_sealed)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_sealed and expires is not None and expires > now:
        found.append(box.open(endpoint.previous_secret_sealed))
    return found


def record_attempt(
    session: Session,
    settings: Settings,
    delivery_id: int,
    attempted_at: datetime,
    result: delivery.AttemptResult,
    *,
    draw: float | None = None,
) -> None:
    """Step 3: record what an attempt got and decide what follows. Flushes, never commits."""
    row = session.get(WebhookDelivery, delivery_id, with_for_update=True, populate_existing=True)
    if row is None:  # the endpoint was deleted meanwhile
        return
    now = utcnow()
    session.add(
        WebhookAttempt(
            delivery_id=row.id,
            attempted_at=attempted_at,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            response_excerpt=result.excerpt,
        )
    )
    row.attempts += 1
    row.locked_until = None
    row.last_attempt_at = attempted_at
    row.last_status_code = result.status_code
    row.last_latency_ms = result.latency_ms
    row.last_error = result.error
    outcome = rules.outcome_of(result.status_code)
    if outcome is rules.Outcome.delivered:
        row.status = DeliveryStatus.succeeded
        row.succeeded_at = now
        session.execute(
            update(WebhookEndpoint)
            .where(
                WebhookEndpoint.id == row.endpoint_id, WebhookEndpoint.failing_since.is_not(None)
            )
            .values(failing_since=None, last_failure_at=None)
        )
        session.flush()
        return
    endpoint = session.get_one(
        WebhookEndpoint, row.endpoint_id, with_for_update=True, populate_existing=True
    )
    if outcome is rules.Outcome.gone:
        _dead(row, now, "the endpoint answered 410 Gone and was disabled")
        _disable(session, endpoint, now, "The endpoint answered 410 Gone: it wants no more events.")
        session.flush()
        return
    policy = rules.RetryPolicy.of(settings)
    row.failures_in_window += 1
    retry_after = None
    if result.status_code in (429, 503):
        retry_after = rules.parse_retry_after(result.retry_after, now)
    next_at = rules.next_attempt_at(
        policy,
        row.window_started_at,
        now,
        row.failures_in_window,
        random.random() if draw is None else draw,  # noqa: S311 (jitter, not a secret)
        retry_after,
    )
    if next_at is None:
        _dead(row, now, result.error or "failed")
    else:
        row.next_attempt_at = next_at
        enqueue(session, DELIVER_JOB, row.id, delay=max(next_at - utcnow(), timedelta(0)))
    current = (
        rules.FailureRun(endpoint.failing_since, endpoint.last_failure_at)
        if endpoint.failing_since is not None and endpoint.last_failure_at is not None
        else None
    )
    first_failure = row.window_started_at if row.failures_in_window == 1 else None
    run = rules.failure_run(current, now, policy, first_failure)
    endpoint.failing_since, endpoint.last_failure_at = run.since, run.last
    disable_after = timedelta(hours=settings.webhook_disable_after_hours)
    if endpoint.active and rules.should_disable(run, disable_after):
        _disable(
            session,
            endpoint,
            now,
            f"Every delivery failed from {catalog.iso(run.since)} to {catalog.iso(run.last)}; "
            f"last error: {result.error or 'failed'}"[:500],
        )
        if row.status is DeliveryStatus.pending:
            _dead(row, now, "the endpoint was disabled after failing for too long")
    session.flush()


def _dead(row: WebhookDelivery, now: datetime, error: str) -> None:
    row.status = DeliveryStatus.dead
    row.dead_at = now
    row.locked_until = None
    row.last_error = error[:1000]


def _disable(session: Session, endpoint: WebhookEndpoint, now: datetime, reason: str) -> None:
    endpoint.active = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason[:500]
    endpoint.updated_at = now
    listeners.forget_on_commit(session, endpoint.client_id)


# --- sending due deliveries in bulk ---------------------------------------------------------------


def enqueue_due(
    session: Session,
    *,
    due_before: datetime,
    endpoint_id: int | None = None,
    after_id: int = 0,
    limit: int = DISPATCH_BATCH,
) -> list[int]:
    """Enqueue an attempt for each pending delivery due before `due_before` and not in flight
    (ids above `after_id`, of one endpoint if given); return their ids. Each gets a fresh
    `next_attempt_at`, so a sweep does not pick it again before its job had time to run."""
    now = utcnow()
    stmt = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == DeliveryStatus.pending,
            WebhookDelivery.next_attempt_at <= due_before,
            WebhookDelivery.id > after_id,
            or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
        )
        .order_by(WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if endpoint_id is not None:
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    ids = list(session.scalars(stmt))
    if ids:
        session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(next_attempt_at=now)
        )
        for delivery_id in ids:
            enqueue(session, DELIVER_JOB, delivery_id)
    return ids


@background_job(DISPATCH_JOB, queue=QUEUE)
def dispatch(ctx: JobContext, endpoint_id: int, after_id: int) -> None:
    """Send the endpoint's due deliveries, a batch per run (re-enqueues itself for the rest)."""
    ids = enqueue_due(ctx.session, due_before=utcnow(), endpoint_id=endpoint_id, after_id=after_id)
    if len(ids) == DISPATCH_BATCH:
        enqueue(ctx.session, DISPATCH_JOB, endpoint_id, ids[-1])
