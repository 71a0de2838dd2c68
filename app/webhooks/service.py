"""Webhooks: recording events where they happen, and clients' endpoints and deliveries.
Services flush, never commit.

Recording. Every event source calls `record_event` in the transaction of its cause. If no active
endpoint of the client subscribes to the type (a cached answer, `listeners`), nothing is written
at all; otherwise one event row and one outbox job (`webhooks.fan_out`), which after the commit
creates a delivery per subscribed endpoint and enqueues its first attempt (`attempts`). So a
rolled-back cause sends nothing, a committed one is delivered at least once, and the cost at the
source is two inserts whatever the number of endpoints. Stores that write their own SQL insert
the same two rows (`hot_path`).

Management. Clients register endpoints (URL, event types, a signing secret shown once and
rotatable with an overlap), list deliveries with their attempts, replay finished deliveries (one,
or every dead one of an endpoint) and send test events. Admins see and manage every endpoint;
other clients' endpoints and deliveries are 404s.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from app.core.background import JobContext, background_job, enqueue
from app.core.clock import utcnow
from app.core.db import rowcount
from app.core.errors import NotFound
from app.core.pagination import PageParams, page_of, paginate
from app.core.security import Principal
from app.core.settings import Settings
from app.models.accounts import Role
from app.models.jobs import Job, Task, TaskStatus
from app.models.webhooks import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from app.webhooks import attempts, catalog, delivery, listeners, schemas
from app.webhooks.errors import (
    WebhookDeliveryPending,
    WebhookEndpointDisabled,
    WebhookUrlNotAllowed,
    WebhookUrlUnresolvable,
)
from app.webhooks.signing import SecretBox, new_secret

FAN_OUT_JOB: Final = "webhooks.fan_out"
EVENT_ID_PREFIX: Final = "evt_"

Data = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


def new_event_id() -> str:
    """A random public event id (the `webhook-id`): unique across installations."""
    return EVENT_ID_PREFIX + uuid.uuid4().hex


# --- recording events ---------------------------------------------------------------------------


def listens(session: Session, client_id: int, event_type: str) -> bool:
    """Whether an active endpoint of the client subscribes to `event_type` (cached briefly)."""
    return event_type in listeners.subscribed_types(session, client_id)


def record_event(
    session: Session,
    client_id: int,
    event_type: str,
    data: Data,
    *,
    job_id: int | None = None,
) -> str | None:
    """Record an event for the client in the caller's transaction; return its public id, or None
    when no endpoint listens (then nothing is written, and a callable `data` is never called:
    pass one when the payload costs queries). `data` is the payload a `catalog` builder made.
    Delivery starts after the caller commits. Raises `KeyError` for an unknown event type."""
    spec = catalog.EVENTS[event_type]
    if not listens(session, client_id, event_type):
        return None
    payload = data() if callable(data) else data
    event = WebhookEvent(
        public_id=new_event_id(),
        client_id=client_id,
        job_id=job_id,
        type=event_type,
        version=spec.version,
        data=dict(payload),
        created_at=utcnow(),
    )
    session.add(event)
    session.flush()
    enqueue(session, FAN_OUT_JOB, event.id)
    return event.public_id


@background_job(FAN_OUT_JOB, queue=attempts.QUEUE)
def fan_out(ctx: JobContext, event_id: int) -> None:
    """Create the deliveries of an event and enqueue their first attempts."""
    event = ctx.session.get(WebhookEvent, event_id)
    if event is not None:  # else pruned long ago (a replayed message)
        fan_out_event(ctx.session, event)


def fan_out_event(session: Session, event: WebhookEvent) -> list[int]:
    """One delivery per active endpoint of the event's client subscribed to its type (that
    does not have one yet), each with its first attempt enqueued; returns the new ids."""
    endpoints = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.client_id == event.client_id, WebhookEndpoint.active.is_(True)
        )
    )
    done = set(
        session.scalars(
            select(WebhookDelivery.endpoint_id).where(WebhookDelivery.event_id == event.id)
        )
    )
    fresh = [
        _new_delivery(event.id, e.id)
        for e in endpoints
        if event.type in e.event_types and e.id not in done
    ]
    session.add_all(fresh)
    session.flush()
    for row in fresh:
        enqueue(session, attempts.DELIVER_JOB, row.id)
    return [row.id for row in fresh]


def _new_delivery(event_id: int, endpoint_id: int) -> WebhookDelivery:
    now = utcnow()
    return WebhookDelivery(
        event_id=event_id,
        endpoint_id=endpoint_id,
        status=DeliveryStatus.pending,
        attempts=0,
        failures_in_window=0,
        window_started_at=now,
        next_attempt_at=now,
        created_at=now,
    )


# --- events of the jobs domain ------------------------------------------------------------------


def job_status_changed(session: Session, job: Job, action: str, by: Role | None) -> None:
    """Record what a job status move (`pause`, `complete`, `cancel`, …) means to webhooks:
    `job.paused` with its reason and `job.completed` (`export.ready` is `results_final`'s, sent
    when the results are final: on cancelling, and after a completed job's final refit). `by` is
    the role of who moved it (None: the system)."""
    now = job.updated_at or utcnow()
    if action == "pause":
        reason: catalog.PauseReason = (
            "client_suspended"
            if job.pause_reason == "client_suspended"
            else "paused_by_admin"
            if by is Role.admin
            else "paused_by_client"
        )
        record_event(
            session,
            job.client_id,
            catalog.JOB_PAUSED,
            catalog.job_paused(job.id, now, reason),
            job_id=job.id,
        )
    if action == "complete":
        completed_by: catalog.CompletedBy = (
            "automatic" if by is None else "admin" if by is Role.admin else "client"
        )

        def completed() -> dict[str, Any]:
            total, complete = task_counts(session, job.id)
            return catalog.job_completed(job.id, job.title, now, completed_by, total, complete)

        record_event(session, job.client_id, catalog.JOB_COMPLETED, completed, job_id=job.id)


def results_final(session: Session, job: Job, fit: tuple[str, int, datetime] | None) -> None:
    """`export.ready` for a finished job whose results will not change, naming the consensus
    fit (method, version, fitted_at) they reflect."""
    record_event(
        session,
        job.client_id,
        catalog.EXPORT_READY,
        catalog.export_ready(job.id, job.status.value, export_formats(job.label_schema), fit),
        job_id=job.id,
    )


def task_counts(session: Session, job_id: int) -> tuple[int, int]:
    """(tasks not cancelled, tasks complete) of a job."""
    total, complete = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((Task.status == TaskStatus.complete, 1), else_=0)), 0),
        ).where(Task.job_id == job_id, Task.status != TaskStatus.cancelled)
    ).one()
    return int(total), int(complete)


SHAPES: Final = ("boxes", "polygons", "keypoints")


def export_formats(label_schema: Mapping[str, Any]) -> list[str]:
    """The export formats a job's schema allows: JSONL and CSV always; Label Studio when every
    shape control says where the image size is; COCO with a boxes control."""
    controls = label_schema.get("controls", [])
    formats = ["jsonl", "csv"]
    if all(c.get("width_field") and c.get("height_field") for c in controls if c["type"] in SHAPES):
        formats.append("label-studio")
    if any(c["type"] == "boxes" for c in controls):
        formats.append("coco")
    return formats


def record_import_finished(
    session: Session,
    job: Job,
    *,
    run_id: int | None,
    report: Mapping[str, Any] | None = None,
    problem: Mapping[str, Any] | None = None,
) -> str | None:
    """`import.finished` for an import that succeeded (`report`) or failed (`problem`)."""
    return record_event(
        session,
        job.client_id,
        catalog.IMPORT_FINISHED,
        catalog.import_finished(job.id, run_id=run_id, report=report, problem=problem),
        job_id=job.id,
    )


# --- endpoints ----------------------------------------------------------------------------------


def check_destination(settings: Settings, url: str) -> None:
    """422 for a URL whose host resolves to an address webhooks may not reach, or to nothing."""
    try:
        delivery.check_url(url, attempts.address_policy(settings))
    except delivery.DestinationRefused as exc:
        raise WebhookUrlNotAllowed(
            str(exc), errors=[{"pointer": "#/url", "detail": str(exc)}]
        ) from None
    except delivery.DestinationUnresolvable as exc:
        raise WebhookUrlUnresolvable(
            f"{exc}; check the host name (or try again once its DNS record exists)",
            errors=[{"pointer": "#/url", "detail": str(exc)}],
        ) from None


def create_endpoint(
    session: Session, settings: Settings, client: Principal, body: schemas.EndpointCreate
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint for `client`; returns it and its signing secret (shown once)."""
    check_destination(settings, body.url)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        client_id=client.id,
        url=body.url,
        description=body.description,
        event_types=list(body.event_types),
        active=True,
        secret_sealed=SecretBox(settings.resolved_secret_key()).seal(secret),
        created_at=utcnow(),
    )
    session.add(endpoint)
    session.flush()
    listeners.forget_on_commit(session, client.id)
    return endpoint, secret


def list_endpoints(
    session: Session, principal: Principal, params: PageParams, client_id: int | None = None
) -> tuple[list[WebhookEndpoint], int | None]:
    """Your endpoints (admins: everyone's, or one client's)."""
    stmt = select(WebhookEndpoint)
    if principal.role is not Role.admin:
        stmt = stmt.where(WebhookEndpoint.client_id == principal.id)
    elif client_id is not None:
        stmt = stmt.where(WebhookEndpoint.client_id == client_id)
    rows = list(session.scalars(paginate(stmt, WebhookEndpoint.id, params)))
    return page_of(rows, params, [r.id for r in rows])


def get_endpoint(
    session: Session, principal: Principal, endpoint_id: int, *, lock: bool = False
) -> WebhookEndpoint:
    """The endpoint if `principal` owns it (or is an admin); 404 otherwise."""
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if lock:
        stmt = stmt.with_for_update()
    endpoint = session.scalar(stmt)
    if endpoint is None or (
        principal.role is not Role.admin and endpoint.client_id != principal.id
    ):
        raise NotFound("No such webhook endpoint")
    return endpoint


def update_endpoint(
    session: Session, settings: Settings, endpoint: WebhookEndpoint, body: schemas.EndpointUpdate
) -> WebhookEndpoint:
    """Change URL, event types, description; `active` switches it off or back on (which clears
    an automatic disabling and the failure run)."""
    now = utcnow()
    if body.url is not None and body.url != endpoint.url:
        check_destination(settings, body.url)
        endpoint.url = body.url
    if body.event_types is not None:
        endpoint.event_types = list(body.event_types)
    if body.description is not None:
        endpoint.description = body.description
    if body.active is True and not endpoint.active:
        endpoint.active = True
        endpoint.disabled_at = endpoint.disabled_reason = None
        endpoint.failing_since = endpoint.last_failure_at = None
    elif body.active is False and endpoint.active:
        endpoint.active = False
        endpoint.disabled_at, endpoint.disabled_reason = now, None
    endpoint.updated_at = now
    session.flush()
    listeners.forget_on_commit(session, endpoint.client_id)
    return endpoint


def rotate_secret(
    session: Session, settings: Settings, endpoint: WebhookEndpoint, overlap: timedelta
) -> str:
    """Give the endpoint a new signing secret (returned, shown once). The current one stays
    valid for `overlap` (deliveries carry a signature with each), then only the new one."""
    box = SecretBox(settings.resolved_secret_key())
    now = utcnow()
    secret = new_secret()
    if overlap > timedelta(0):
        endpoint.previous_secret_sealed = endpoint.secret_sealed
        endpoint.previous_secret_expires_at = now + overlap
    else:
        endpoint.previous_secret_sealed = endpoint.previous_secret_expires_at = None
    endpoint.secret_sealed = box.seal(secret)
    endpoint.secret_rotated_at = endpoint.updated_at = now
    session.flush()
    return secret


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its deliveries and their attempts."""
    session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id))
    session.expunge(endpoint)
    listeners.forget_on_commit(session, endpoint.client_id)


def send_test(session: Session, endpoint: WebhookEndpoint) -> tuple[WebhookEvent, WebhookDelivery]:
    """A `webhook.test` event for this endpoint alone, its delivery queued; 409 while the
    endpoint is switched off."""
    if not endpoint.active:
        raise WebhookEndpointDisabled("Enable the endpoint before sending it a test event")
    event = WebhookEvent(
        public_id=new_event_id(),
        client_id=endpoint.client_id,
        endpoint_id=endpoint.id,
        type=catalog.WEBHOOK_TEST,
        version=catalog.EVENTS[catalog.WEBHOOK_TEST].version,
        data=catalog.webhook_test(endpoint.id),
        created_at=utcnow(),
    )
    session.add(event)
    session.flush()
    row = _new_delivery(event.id, endpoint.id)
    session.add(row)
    session.flush()
    enqueue(session, attempts.DELIVER_JOB, row.id)
    return event, row


# --- deliveries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryView:
    delivery: WebhookDelivery
    event: WebhookEvent

    def out(self) -> schemas.DeliveryOut:
        return schemas.DeliveryOut(**self._fields())

    def detail(self, attempt_log: list[WebhookAttempt]) -> schemas.DeliveryDetail:
        e = self.event
        return schemas.DeliveryDetail(
            **self._fields(),
            payload=catalog.envelope(e.public_id, e.type, e.version, e.created_at, e.data),
            attempt_log=[schemas.AttemptOut.model_validate(a) for a in attempt_log],
        )

    def _fields(self) -> dict[str, Any]:
        d, e = self.delivery, self.event
        return {
            "id": d.id,
            "endpoint_id": d.endpoint_id,
            "event": schemas.EventOut(
                id=e.public_id,
                type=e.type,
                version=e.version,
                job_id=e.job_id,
                created_at=e.created_at,
            ),
            "status": d.status,
            "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at if d.status is DeliveryStatus.pending else None,
            "last_attempt_at": d.last_attempt_at,
            "last_status_code": d.last_status_code,
            "last_latency_ms": d.last_latency_ms,
            "last_error": d.last_error,
            "succeeded_at": d.succeeded_at,
            "dead_at": d.dead_at,
            "created_at": d.created_at,
        }


def list_deliveries(
    session: Session,
    principal: Principal,
    params: PageParams,
    *,
    endpoint_id: int | None = None,
    status: DeliveryStatus | None = None,
    event_type: str | None = None,
) -> tuple[list[DeliveryView], int | None]:
    """Deliveries to your endpoints (admins: all), oldest first, filtered."""
    stmt = select(WebhookDelivery, WebhookEvent).join(
        WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id
    )
    if principal.role is not Role.admin:
        stmt = stmt.join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id).where(
            WebhookEndpoint.client_id == principal.id
        )
    if endpoint_id is not None:
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    if event_type is not None:
        stmt = stmt.where(WebhookEvent.type == event_type)
    rows = [
        DeliveryView(d, e) for d, e in session.execute(paginate(stmt, WebhookDelivery.id, params))
    ]
    return page_of(rows, params, [r.delivery.id for r in rows])


def get_delivery(
    session: Session, principal: Principal, delivery_id: int, *, lock: bool = False
) -> DeliveryView:
    """The delivery if it goes to one of `principal`'s endpoints (or an admin asks); else 404."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
    if lock:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is not None:
        endpoint = session.get_one(WebhookEndpoint, row.endpoint_id)
        if principal.role is Role.admin or endpoint.client_id == principal.id:
            return DeliveryView(row, session.get_one(WebhookEvent, row.event_id))
    raise NotFound("No such webhook delivery")


def attempt_log(session: Session, delivery_id: int) -> list[WebhookAttempt]:
    return list(
        session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
    )


def _restart(row: WebhookDelivery, now: datetime) -> None:
    row.status = DeliveryStatus.pending
    row.window_started_at = row.next_attempt_at = now
    row.failures_in_window = 0
    row.locked_until = row.dead_at = row.succeeded_at = None


def replay_delivery(session: Session, principal: Principal, delivery_id: int) -> DeliveryView:
    """Send a finished (dead or succeeded) delivery again, with a fresh retry window and the
    same event id; 409 while it is still pending or its endpoint is switched off."""
    view = get_delivery(session, principal, delivery_id, lock=True)
    if view.delivery.status is DeliveryStatus.pending:
        raise WebhookDeliveryPending(
            "This delivery is still being attempted; replay it once it has succeeded or died"
        )
    endpoint = session.get_one(WebhookEndpoint, view.delivery.endpoint_id)
    if not endpoint.active:
        raise WebhookEndpointDisabled("Enable the endpoint before replaying deliveries to it")
    _restart(view.delivery, utcnow())
    session.flush()
    enqueue(session, attempts.DELIVER_JOB, view.delivery.id)
    return view


def replay_dead(session: Session, endpoint: WebhookEndpoint) -> int:
    """Send every dead delivery of the endpoint again (fresh retry windows, same event ids);
    returns how many. 409 while the endpoint is switched off."""
    if not endpoint.active:
        raise WebhookEndpointDisabled("Enable the endpoint before replaying deliveries to it")
    now = utcnow()
    replayed = rowcount(
        session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id == endpoint.id,
                WebhookDelivery.status == DeliveryStatus.dead,
            )
            .values(
                status=DeliveryStatus.pending,
                window_started_at=now,
                next_attempt_at=now,
                failures_in_window=0,
                locked_until=None,
                dead_at=None,
            )
        )
    )
    if replayed:
        enqueue(session, attempts.DISPATCH_JOB, endpoint.id, 0)
    return replayed
