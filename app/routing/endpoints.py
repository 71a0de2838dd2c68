"""HTTP for annotators at work: next task, heartbeat, release, submit, and their own lists."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core.clock import utcnow
from app.core.db import Database
from app.core.pagination import Page, PageParams, page_of, page_params, paginate
from app.core.security import AnnotatorPrincipal, AnnotatorWork, ReadSession
from app.core.settings import Settings
from app.models.jobs import Assignment, AssignmentStatus, Job
from app.routing import eligibility, hot_path, rules, schemas, service

P = ParamSpec("P")
R = TypeVar("R")

router = APIRouter(prefix="/v1/assignments", tags=["assignments"])

Paging = Annotated[PageParams, Depends(page_params)]


# The four calls of an annotator at work are the hot path: async, with no thread hop on
# PostgreSQL (see `hot_path`); on SQLite the same rules run in `service` on a thread.


@router.post("/next", response_model=schemas.NextResponse)
async def claim_next(
    request: Request, work: AnnotatorWork, body: schemas.NextRequest | None = None
) -> Response:
    """Claim up to `count` tasks you are eligible for and have not done, each under a lease.
    An empty list means there is no work for you right now. With `job_id`, a job you may not
    work on is a 403 listing the reasons."""
    body = body or schemas.NextRequest()
    settings, db = _context(request)
    me, now = work.caller.id, utcnow()
    count = min(body.count, settings.max_claim_count)
    if work.conn is None:
        jobs, claimed = await run_in_threadpool(_claim_on_thread, db, me, body.job_id, count, now)
    else:
        found = eligibility.cached_jobs_for(me, body.job_id, settings)
        if found is None:
            found = await run_in_threadpool(_jobs_for, db, me, body.job_id, now)
        jobs = eligibility.eligible_jobs(found, body.job_id)
        async with work.conn.transaction() if count > 1 else nullcontext():
            claimed = await hot_path.claim_tasks(work.conn, db, me, jobs, count, now)
    by_job = {job.id: job for job in jobs}
    return _json(
        schemas.NextResponse(
            assignments=[
                schemas.AssignmentOut(
                    id=c.assignment_id,
                    job=_brief(by_job[c.job_id]),
                    status=AssignmentStatus.active,
                    claimed_at=now,
                    lease_expires_at=c.lease_expires_at,
                    heartbeat_interval_seconds=settings.heartbeat_interval_seconds,
                    items=[schemas.TaskItemOut(slot=slot, data=data) for slot, data in c.items],
                )
                for c in claimed
            ]
        )
    )


def _jobs_for(
    db: Database, annotator_id: int, job_id: int | None, now: datetime
) -> eligibility.JobsAndVerdicts:
    with db.read_session() as session:
        return eligibility.jobs_for(session, annotator_id, job_id, now, db.settings)


def _claim_on_thread(
    db: Database, annotator_id: int, job_id: int | None, count: int, now: datetime
) -> tuple[list[Job], list[service.Claimed]]:
    with db.transaction() as session:
        found = eligibility.jobs_for(session, annotator_id, job_id, now, db.settings)
        jobs = eligibility.eligible_jobs(found, job_id)
        return jobs, service.claim_tasks(session, annotator_id, jobs, count, now)


def _brief(job: Job) -> schemas.JobBrief:
    return schemas.JobBrief(
        id=job.id, title=job.title, instructions=job.instructions, label_schema=job.label_schema
    )


@router.post("/{assignment_id}/heartbeat", response_model=schemas.LeaseOut)
async def heartbeat(assignment_id: int, request: Request, work: AnnotatorWork) -> Response:
    """Keep working: extends the lease (up to a maximum) and counts active time."""
    settings, db = _context(request)
    me, now = work.caller.id, utcnow()
    if work.conn is None:
        report = await run_in_threadpool(
            _on_thread, db, service.heartbeat, me, assignment_id, now, settings
        )
    else:
        async with work.conn.transaction():
            report = await hot_path.heartbeat(work.conn, db, me, assignment_id, now, settings)
    return _json(_lease(report))


@router.post("/{assignment_id}/release", response_model=schemas.LeaseOut)
async def release(
    assignment_id: int,
    request: Request,
    work: AnnotatorWork,
    body: schemas.ReleaseRequest | None = None,
) -> Response:
    """Skip this task: the slot goes back to the pool. The reason (optional) reaches the client
    only in aggregate."""
    settings, db = _context(request)
    me, now = work.caller.id, utcnow()
    reason = body.reason if body else None
    if work.conn is None:
        report = await run_in_threadpool(
            _on_thread, db, service.release, me, assignment_id, reason, now, settings
        )
    else:
        async with work.conn.transaction():
            report = await hot_path.release(work.conn, db, me, assignment_id, reason, now, settings)
    return _json(_lease(report))


def _lease(report: rules.LeaseReport) -> schemas.LeaseOut:
    return schemas.LeaseOut(
        id=report.assignment_id,
        status=report.status,
        lease_expires_at=report.lease_expires_at,
        lease_limit=report.lease_limit,
        active_seconds=report.active_seconds,
    )


@router.post("/{assignment_id}/submit", response_model=schemas.SubmitOut)
async def submit(
    assignment_id: int, body: schemas.SubmitRequest, request: Request, work: AnnotatorWork
) -> Response:
    """Submit one answer per task item, in slot order. Submitting the same answers again is
    harmless (same result); different answers after a submit are a 409."""
    settings, db = _context(request)
    me, now = work.caller.id, utcnow()
    if work.conn is None:
        result = await run_in_threadpool(
            _on_thread, db, service.submit, me, assignment_id, body.answers, now, settings
        )
    else:
        async with work.conn.transaction():
            result = await hot_path.submit(
                work.conn, db, me, assignment_id, body.answers, now, settings
            )
    feedback = None
    if result.instant_feedback and result.gold_scores:
        feedback = [schemas.GoldFeedback(slot=s, score=round(v, 4)) for s, v in result.gold_scores]
    return _json(
        schemas.SubmitOut(
            id=result.assignment_id,
            status=result.status,
            submitted_at=result.submitted_at,
            active_seconds=result.active_seconds,
            feedback=feedback,
        )
    )


def _on_thread(
    db: Database, work: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """Run a sync service call in a transaction of its own (the SQLite path)."""
    with db.transaction() as session:
        return work(session, *args, **kwargs)


def _context(request: Request) -> tuple[Settings, Database]:
    return request.app.state.settings, request.app.state.db


def _json(model: BaseModel) -> Response:
    """The response model serialised once, by pydantic (FastAPI would validate it again)."""
    return Response(model.model_dump_json(), media_type="application/json")


@router.get("", response_model=Page[schemas.MyAssignment])
def my_assignments(
    annotator: AnnotatorPrincipal,
    session: ReadSession,
    paging: Paging,
    status: Annotated[list[AssignmentStatus] | None, Query()] = None,
) -> Page[schemas.MyAssignment]:
    """Your assignments, newest first by id cursor (filter with `status`, e.g. `status=active`
    for the ones in hand with their lease deadlines)."""
    stmt = (
        select(Assignment, Job.title)
        .join(Job, Job.id == Assignment.job_id)
        .where(Assignment.annotator_id == annotator.id)
    )
    if status:
        stmt = stmt.where(Assignment.status.in_(status))
    rows = session.execute(paginate(stmt, Assignment.id, paging)).all()
    rows, cursor = page_of(rows, paging, [r[0].id for r in rows])
    return Page(items=[_mine(a, title) for a, title in rows], next_cursor=cursor)


def _mine(a: Assignment, title: str) -> schemas.MyAssignment:
    return schemas.MyAssignment(
        id=a.id,
        job_id=a.job_id,
        job_title=title,
        status=a.status,
        claimed_at=a.claimed_at,
        lease_expires_at=a.lease_expires_at,
        submitted_at=a.submitted_at,
        active_seconds=a.active_seconds,
    )
