"""Periodic work of webhooks (one line each in `workers.scheduler.PERIODIC`):

- `webhooks.job_progress` (every minute): `job.progress` events, off the hot path. Only active
  jobs of clients with an endpoint listening are looked at: one grouped count of their tasks,
  compared with the last event sent per job (`rules.progress_due`: every 5 points, at most once
  a minute).
- `webhooks.sweep` (every minute): deliveries due for a while with no attempt in flight get an
  attempt enqueued. Normally every attempt enqueues the next one; this catches the ones whose
  job was lost (a process died between an attempt's two transactions).
- `webhooks.prune` (hourly): events older than TESSERA_WEBHOOK_RETENTION_DAYS, with their
  deliveries and attempts, once none of their deliveries is pending.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import case, delete, exists, func, select
from sqlalchemy.orm import Session

from app.core.background import JobContext, background_job, enqueue
from app.core.clock import utcnow
from app.models.jobs import Job, JobStatus, Task, TaskStatus
from app.models.webhooks import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookJobProgress,
)
from app.webhooks import attempts, catalog, rules, service

PROGRESS_JOB: Final = "webhooks.job_progress"
SWEEP_JOB: Final = "webhooks.sweep"
PRUNE_JOB: Final = "webhooks.prune"
SWEEP_GRACE: Final = timedelta(minutes=10)
SWEEP_BATCH: Final = 1000
PRUNE_BATCH: Final = 1000


@background_job(PROGRESS_JOB, queue=attempts.QUEUE)
def job_progress(ctx: JobContext) -> None:
    record_job_progress(ctx.session, utcnow())


def record_job_progress(session: Session, now: datetime) -> list[int]:
    """Record `job.progress` for every active job whose client listens and whose progress is
    due; returns the job ids."""
    clients = {
        client_id
        for client_id, types in session.execute(
            select(WebhookEndpoint.client_id, WebhookEndpoint.event_types).where(
                WebhookEndpoint.active.is_(True)
            )
        )
        if catalog.JOB_PROGRESS in types
    }
    if not clients:
        return []
    jobs = list(
        session.execute(
            select(Job.id, Job.client_id).where(
                Job.status == JobStatus.active, Job.client_id.in_(clients)
            )
        )
    )
    job_ids = [job_id for job_id, _ in jobs]
    counts = {
        job_id: (int(total), int(complete))
        for job_id, total, complete in session.execute(
            select(
                Task.job_id,
                func.count(),
                func.sum(case((Task.status == TaskStatus.complete, 1), else_=0)),
            )
            .where(Task.job_id.in_(job_ids), Task.status != TaskStatus.cancelled)
            .group_by(Task.job_id)
        )
    }
    marks = {
        mark.job_id: mark
        for mark in session.scalars(
            select(WebhookJobProgress).where(WebhookJobProgress.job_id.in_(job_ids))
        )
    }
    sent = []
    for job_id, client_id in jobs:
        total, complete = counts.get(job_id, (0, 0))
        percent = catalog.percent(complete, total)
        mark = marks.get(job_id)
        if not rules.progress_due(
            percent, mark.percent if mark else None, mark.sent_at if mark else None, now
        ):
            continue
        data = catalog.job_progress(job_id, JobStatus.active.value, total, complete)
        if service.record_event(session, client_id, catalog.JOB_PROGRESS, data, job_id=job_id):
            if mark is None:
                session.add(WebhookJobProgress(job_id=job_id, percent=percent, sent_at=now))
            else:
                mark.percent, mark.sent_at = percent, now
            sent.append(job_id)
    session.flush()
    return sent


@background_job(SWEEP_JOB, queue=attempts.QUEUE)
def sweep(ctx: JobContext) -> None:
    attempts.enqueue_due(ctx.session, due_before=utcnow() - SWEEP_GRACE, limit=SWEEP_BATCH)


@background_job(PRUNE_JOB, queue=attempts.QUEUE)
def prune(ctx: JobContext) -> None:
    """Delete old events whose deliveries are all finished, a batch at a time (re-enqueues
    itself while more remain); deliveries and attempts go with them (ON DELETE CASCADE)."""
    cutoff = utcnow() - timedelta(days=ctx.settings.webhook_retention_days)
    pending = exists().where(
        WebhookDelivery.event_id == WebhookEvent.id,
        WebhookDelivery.status == DeliveryStatus.pending,
    )
    ids = list(
        ctx.session.scalars(
            select(WebhookEvent.id)
            .where(WebhookEvent.created_at < cutoff, ~pending)
            .order_by(WebhookEvent.id)
            .limit(PRUNE_BATCH)
        )
    )
    if ids:
        ctx.session.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(ids)))
    if len(ids) == PRUNE_BATCH:
        enqueue(ctx.session, PRUNE_JOB)
