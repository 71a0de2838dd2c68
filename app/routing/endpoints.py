"""HTTP for annotators at work: next task, heartbeat, release, submit, and their own lists."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from app.core.clock import utcnow
from app.core.errors import Forbidden, NotFound, Unauthorized, ValidationFailed, problem_responses
from app.core.inputs import PathId
from app.core.pagination import Page, PageParams, page_of, page_params, paginate
from app.core.security import AnnotatorPrincipal, ReadSession
from app.core.settings import Settings
from app.jobs import label_studio
from app.jobs.service import job_schema
from app.models.jobs import Assignment, AssignmentStatus, Job
from app.routing import flow, queue, rules, schemas, service
from app.routing.errors import (
    AlreadySubmitted,
    AnswersDiffer,
    AssignmentReleased,
    LeaseEnded,
    SlotTaken,
)
from app.routing.store import Claimed
from app.routing.work import AnnotatorWork
from payouts.schemas import PayOut

router = APIRouter(prefix="/v1/assignments", tags=["assignments"])

Paging = Annotated[PageParams, Depends(page_params)]

# The four calls of an annotator at work are the hot path: async endpoints running `flow` on
# the store chosen at start-up (no thread hop on PostgreSQL, one on SQLite).
_CALLER_PROBLEMS = (Unauthorized, Forbidden)


@router.post(
    "/next",
    response_model=schemas.NextResponse,
    responses=problem_responses(*_CALLER_PROBLEMS, NotFound, ValidationFailed),
)
async def claim_next(
    request: Request, work: AnnotatorWork, body: schemas.NextRequest | None = None
) -> Response:
    """Claim up to `count` tasks you are eligible for and have not done, each under a lease,
    each with what it pays you (`pay`). An empty list means there is no work for you right now,
    and `empty_reasons` says why for each job asked (a paused job is `job-paused`, not an
    error). With `job_id`, a job you may not work on is a 403 listing the reasons; an unknown
    job is a 404."""
    body = body or schemas.NextRequest()
    settings = _settings(request)
    now = utcnow()
    jobs, claimed, empty, pay = await work.runner.run(
        partial(
            flow.claim_next,
            annotator_id=work.caller.id,
            job_id=body.job_id,
            count=body.count,
            now=now,
            settings=settings,
        )
    )
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
                    items=_items(by_job[c.job_id], c),
                    pay=PayOut.model_validate(pay[c.job_id]),
                )
                for c in claimed
            ],
            empty_reasons=[_empty(e) for e in empty] if not claimed else None,
        )
    )


def _empty(e: queue.EmptyQueue) -> schemas.EmptyQueueOut:
    return schemas.EmptyQueueOut(
        job_id=e.job_id,
        reason=e.reason,
        detail=e.detail,
        leases_end_at=e.leases_end_at,
        eligibility=[schemas.EligibilityReasonOut(**r) for r in e.eligibility]
        if e.reason == "not-eligible"
        else None,
    )


def _items(job: Job, claimed: Claimed) -> list[schemas.PrelabeledItemOut | schemas.TaskItemOut]:
    if not job.show_prelabels:
        return [schemas.TaskItemOut(slot=slot, data=data) for slot, data in claimed.items]
    schema = job_schema(job)
    out: list[schemas.PrelabeledItemOut | schemas.TaskItemOut] = []
    for slot, data in claimed.items:
        prelabel, score = claimed.prelabels.get(slot, (None, None))
        out.append(
            schemas.PrelabeledItemOut(
                slot=slot,
                data=data,
                prelabel=prelabel,
                predictions=label_studio.prelabel_predictions(job, schema, prelabel, score, data),
            )
        )
    return out


def _brief(job: Job) -> schemas.JobBrief:
    return schemas.JobBrief(
        id=job.id, title=job.title, instructions=job.instructions, label_schema=job.label_schema
    )


@router.post(
    "/{assignment_id}/heartbeat",
    response_model=schemas.LeaseOut,
    responses=problem_responses(*_CALLER_PROBLEMS, NotFound, LeaseEnded),
)
async def heartbeat(assignment_id: PathId, request: Request, work: AnnotatorWork) -> Response:
    """Keep working: extends the lease (up to a maximum) and counts active time."""
    settings = _settings(request)
    report = await work.runner.run(
        partial(
            flow.heartbeat,
            annotator_id=work.caller.id,
            assignment_id=assignment_id,
            now=utcnow(),
            settings=settings,
        )
    )
    return _json(_lease(report))


@router.post(
    "/{assignment_id}/release",
    response_model=schemas.LeaseOut,
    responses=problem_responses(*_CALLER_PROBLEMS, NotFound, AlreadySubmitted, LeaseEnded),
)
async def release(
    assignment_id: PathId,
    request: Request,
    work: AnnotatorWork,
    body: schemas.ReleaseRequest | None = None,
) -> Response:
    """Skip this task: the slot goes back to the pool. The reason (optional) reaches the client
    only in aggregate."""
    settings = _settings(request)
    report = await work.runner.run(
        partial(
            flow.release,
            annotator_id=work.caller.id,
            assignment_id=assignment_id,
            reason=body.reason if body else None,
            now=utcnow(),
            settings=settings,
        )
    )
    return _json(_lease(report))


def _lease(report: rules.LeaseReport) -> schemas.LeaseOut:
    return schemas.LeaseOut(
        id=report.assignment_id,
        status=report.status,
        lease_expires_at=report.lease_expires_at,
        lease_limit=report.lease_limit,
        active_seconds=report.active_seconds,
    )


@router.post(
    "/{assignment_id}/submit",
    response_model=schemas.SubmitOut,
    responses=problem_responses(
        *_CALLER_PROBLEMS,
        NotFound,
        LeaseEnded,
        SlotTaken,
        AnswersDiffer,
        AssignmentReleased,
        ValidationFailed,
    ),
)
async def submit(
    assignment_id: PathId, body: schemas.SubmitRequest, request: Request, work: AnnotatorWork
) -> Response:
    """Submit one answer per task item, in slot order. Submitting the same answers again is
    harmless (same result); different answers after a submit are a 409 `answers-differ`."""
    settings = _settings(request)
    result = await work.runner.run(
        partial(
            flow.submit,
            annotator_id=work.caller.id,
            assignment_id=assignment_id,
            answers=body.answers,
            now=utcnow(),
            settings=settings,
        )
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


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


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


@router.get(
    "/{assignment_id}",
    response_model=schemas.AssignmentOut,
    responses=problem_responses(
        *_CALLER_PROBLEMS,
        (NotFound, "no assignment of yours has this id"),
        AlreadySubmitted,
        AssignmentReleased,
        LeaseEnded,
    ),
)
def get_assignment(
    assignment_id: PathId, request: Request, annotator: AnnotatorPrincipal, session: ReadSession
) -> schemas.AssignmentOut:
    """Your live assignment again, with its items as `next` handed them out: a reloaded page
    resumes the work under the same lease instead of releasing it. 409 once it is submitted
    (`already-submitted`), released (`assignment-released`) or its lease ran out
    (`lease-ended`)."""
    a, job, items = service.assignment_in_hand(session, annotator.id, assignment_id, utcnow())
    return schemas.AssignmentOut(
        id=a.id,
        job=_brief(job),
        status=a.status,
        claimed_at=a.claimed_at,
        lease_expires_at=a.lease_expires_at,
        heartbeat_interval_seconds=_settings(request).heartbeat_interval_seconds,
        items=[schemas.TaskItemOut(slot=slot, data=data) for slot, data in items],
    )


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
