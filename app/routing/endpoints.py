"""HTTP for annotators at work: next task, heartbeat, release, submit, and their own lists."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from app.core.clock import utcnow
from app.core.errors import Forbidden, NotFound
from app.core.pagination import Page, PageParams, page_of, page_params, paginate
from app.core.security import AnnotatorPrincipal, DbSession, ReadSession
from app.core.settings import Settings
from app.models.jobs import Assignment, AssignmentStatus, Job
from app.routing import eligibility, schemas, service

router = APIRouter(prefix="/v1/assignments", tags=["assignments"])

Paging = Annotated[PageParams, Depends(page_params)]


def _settings(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


@router.post("/next", response_model=schemas.NextResponse)
def claim_next(
    request: Request,
    annotator: AnnotatorPrincipal,
    session: DbSession,
    body: schemas.NextRequest | None = None,
) -> schemas.NextResponse:
    """Claim up to `count` tasks you are eligible for and have not done, each under a lease.
    An empty list means there is no work for you right now. With `job_id`, a job you may not
    work on is a 403 listing the reasons."""
    body = body or schemas.NextRequest()
    settings = _settings(request)
    now = utcnow()
    jobs = service.active_jobs(session, body.job_id, settings.routing_cache_seconds)
    if body.job_id is not None and not jobs:
        raise NotFound("No such active job")
    verdicts = eligibility.for_jobs(
        session, annotator.id, jobs, now, settings.routing_cache_seconds
    )
    if body.job_id is not None and not verdicts[body.job_id].eligible:
        raise Forbidden(
            "You are not eligible for this job",
            reasons=[eligibility.reason_dict(r) for r in verdicts[body.job_id].reasons],
        )
    eligible = [job for job in jobs if verdicts[job.id].eligible]
    count = min(body.count, settings.max_claim_count)
    claimed = service.claim_tasks(session, annotator.id, eligible, count, now)
    by_job = {job.id: job for job in eligible}
    session.commit()
    return schemas.NextResponse(
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


def _brief(job: Job) -> schemas.JobBrief:
    return schemas.JobBrief(
        id=job.id, title=job.title, instructions=job.instructions, label_schema=job.label_schema
    )


@router.post("/{assignment_id}/heartbeat", response_model=schemas.LeaseOut)
def heartbeat(
    assignment_id: int, request: Request, annotator: AnnotatorPrincipal, session: DbSession
) -> schemas.LeaseOut:
    """Keep working: extends the lease (up to a maximum) and counts active time."""
    settings = _settings(request)
    assignment = service.heartbeat(session, annotator.id, assignment_id, utcnow(), settings)
    job = session.get_one(Job, assignment.job_id)
    session.commit()
    return _lease(assignment, job, settings)


def _lease(assignment: Assignment, job: Job, settings: Settings) -> schemas.LeaseOut:
    limit = assignment.claimed_at + timedelta(seconds=job.lease_seconds) * settings.max_lease_factor
    return schemas.LeaseOut(
        id=assignment.id,
        status=assignment.status,
        lease_expires_at=assignment.lease_expires_at,
        lease_limit=limit,
        active_seconds=assignment.active_seconds,
    )


@router.post("/{assignment_id}/release", response_model=schemas.LeaseOut)
def release(
    assignment_id: int,
    request: Request,
    annotator: AnnotatorPrincipal,
    session: DbSession,
    body: schemas.ReleaseRequest | None = None,
) -> schemas.LeaseOut:
    """Skip this task: the slot goes back to the pool. The reason (optional) reaches the client
    only in aggregate."""
    reason = body.reason if body else None
    assignment = service.release(session, annotator.id, assignment_id, reason, utcnow())
    job = session.get_one(Job, assignment.job_id)
    session.commit()
    return _lease(assignment, job, _settings(request))


@router.post("/{assignment_id}/submit", response_model=schemas.SubmitOut)
def submit(
    assignment_id: int,
    body: schemas.SubmitRequest,
    request: Request,
    annotator: AnnotatorPrincipal,
    session: DbSession,
) -> schemas.SubmitOut:
    """Submit one answer per task item, in slot order. Submitting the same answers again is
    harmless (same result); different answers after a submit are a 409."""
    settings = _settings(request)
    result = service.submit(session, annotator.id, assignment_id, body.answers, utcnow(), settings)
    job = service.job_for_work(session, result.assignment.job_id, settings.routing_cache_seconds)
    session.commit()
    assignment = result.assignment
    assert assignment.submitted_at is not None
    feedback = None
    if job.instant_feedback and result.gold_scores:
        feedback = [schemas.GoldFeedback(slot=s, score=round(v, 4)) for s, v in result.gold_scores]
    return schemas.SubmitOut(
        id=assignment.id,
        status=assignment.status,
        submitted_at=assignment.submitted_at,
        active_seconds=assignment.active_seconds,
        feedback=feedback,
    )


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
