"""Background work of quality (periodic ones are one line each in `workers.scheduler.PERIODIC`):

- `quality.auto_approve` (every 10 minutes): approves work nobody reviewed within
  `TESSERA_QUALITY_AUTO_APPROVE_DAYS`, 1,000 assignments a run, re-enqueuing itself while more
  are due.
- `quality.refresh` (every 10 minutes): recomputes the figures of annotators whose figures are
  out of date (`tracking.due_annotators`), 100 a run in annotator id order, then applies the
  rules (`enforcement.enforce`); it re-enqueues itself after the last annotator it did while a
  run is full, so one tick walks every due annotator once.
- `quality.refresh_all` (on demand, an admin's `POST /v1/admin/quality/refresh`): the same for
  every annotator with finished work, reporting progress on a background run.

A refresh rewrites an annotator's rows whole, so two at once would trip over each other: on
PostgreSQL each takes a transaction-level advisory lock and one that cannot get it leaves the
work to the one running (on SQLite the write transaction is that lock already).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.core.background import JobContext, background_job, enqueue
from app.core.clock import utcnow
from app.core.settings import Settings
from app.models.jobs import Assignment
from app.quality import enforcement, review, tracking
from app.runs import service as runs

AUTO_APPROVE_JOB: Final = "quality.auto_approve"
REFRESH_JOB: Final = "quality.refresh"
REFRESH_ALL_JOB: Final = "quality.refresh_all"
REFRESH_BATCH: Final = 100
REFRESH_LOCK_KEY: Final = 0x7E55_0A11_7700  # "tessera quality refresh"; any fixed bigint


@background_job(AUTO_APPROVE_JOB)
def auto_approve(ctx: JobContext) -> None:
    if review.auto_approve_due(ctx.session, ctx.settings, utcnow()) == review.AUTO_APPROVE_BATCH:
        enqueue(ctx.session, AUTO_APPROVE_JOB)


@background_job(REFRESH_JOB, time_limit=timedelta(minutes=30))
def refresh(ctx: JobContext, after: int = 0) -> None:
    """Refresh the next due annotators after id `after` and apply the rules to them."""
    done = refresh_due(ctx.session, ctx.settings, utcnow(), after=after)
    if len(done) == REFRESH_BATCH:
        enqueue(ctx.session, REFRESH_JOB, done[-1])


def refresh_due(
    session: Session,
    settings: Settings,
    now: datetime,
    *,
    after: int = 0,
    limit: int = REFRESH_BATCH,
) -> list[int]:
    """Refresh up to `limit` due annotators with ids above `after`, then apply the rules;
    returns their ids (none while another refresh holds the lock)."""
    if not _refresh_lock(session):
        return []
    ids = tracking.due_annotators(session, now, after=after, limit=limit)
    refreshed = tracking.refresh_annotators(session, settings, ids, now)
    enforcement.enforce(session, settings, refreshed, now)
    return ids


@background_job(REFRESH_ALL_JOB, time_limit=timedelta(minutes=30))
def refresh_all(ctx: JobContext, run_id: int, after: int = 0) -> None:
    """Refresh every annotator with finished work, REFRESH_BATCH at a time, reporting on the
    run; each chunk enqueues the next."""
    if not _refresh_lock(ctx.session):
        enqueue(ctx.session, REFRESH_ALL_JOB, run_id, after, delay=timedelta(seconds=30))
        return
    ids = list(
        ctx.session.scalars(
            select(Assignment.annotator_id)
            .where(Assignment.submitted_at.is_not(None), Assignment.annotator_id > after)
            .group_by(Assignment.annotator_id)
            .order_by(Assignment.annotator_id)
            .limit(REFRESH_BATCH)
        )
    )
    now = utcnow()
    refreshed = tracking.refresh_annotators(ctx.session, ctx.settings, ids, now)
    actions = enforcement.enforce(ctx.session, ctx.settings, refreshed, now)
    runs.add_progress(ctx.session, run_id, annotators=len(ids), actions=len(actions))
    if len(ids) == REFRESH_BATCH:
        enqueue(ctx.session, REFRESH_ALL_JOB, run_id, ids[-1], run_id=run_id)
    else:
        runs.finish_run(ctx.session, run_id)


def start_refresh_all(session: Session, admin_id: int) -> int:
    """Queue a refresh of everyone as a background run; returns the run id."""
    run = runs.create_run(session, kind="quality-refresh", owner_id=admin_id)
    enqueue(session, REFRESH_ALL_JOB, run.id, 0, run_id=run.id)
    return run.id


def _refresh_lock(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(
        session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": REFRESH_LOCK_KEY})
    )
