"""HTTP for the overviews: an annotator's own finished work (/v1/annotator/work), admins' lists
of annotators and clients (/v1/admin/annotators, /v1/admin/clients) and the appeals on a
client's job (/v1/quality/jobs/{id}/appeals)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.core.errors import NotFound, problem_responses
from app.core.inputs import Int32, Int64, PathId
from app.core.pagination import MAX_PAGE, Page, PageParams, page_params
from app.core.security import (
    AdminPrincipal,
    AnnotatorPrincipal,
    ClientPrincipal,
    ReadSession,
    client_pseudonym,
)
from app.core.settings import Settings
from app.jobs import service as jobs
from app.models.accounts import UserStatus
from app.models.jobs import AssignmentStatus, Tier
from app.quality.overviews import people, schemas, work
from app.quality.schemas import AppealOut

router = APIRouter(prefix="/v1")

Paging = Annotated[PageParams, Depends(page_params)]


@router.get("/annotator/work", tags=["annotator"], response_model=schemas.MyWorkPage)
def my_work(
    annotator: AnnotatorPrincipal,
    session: ReadSession,
    paging: Paging,
    status: Annotated[
        list[AssignmentStatus] | None,
        Query(description="submitted, approved or rejected (several allowed); default all three"),
    ] = None,
    job_id: Annotated[Int64 | None, Query(description="Only work on this job")] = None,
) -> schemas.MyWorkPage:
    """Your submitted, approved and rejected work, oldest first: each task's items with your
    answers, the latest review with its reason, what it earned you and your appeals, and which
    judgments you may still appeal."""
    rows, cursor = work.work_of(session, annotator.id, paging, statuses=status, job_id=job_id)
    return schemas.MyWorkPage(items=[_work(w) for w in rows], next_cursor=cursor)


def _work(w: work.Work) -> schemas.MyWorkOut:
    a = w.assignment
    return schemas.MyWorkOut(
        id=a.id,
        job_id=a.job_id,
        job_title=w.job_title,
        status=a.status,
        submitted_at=a.submitted_at,
        active_seconds=a.active_seconds,
        gold_score=w.gold_score,
        items=[schemas.WorkItemOut(slot=i.slot, data=i.data, answer=i.answer) for i in w.items],
        review=(
            schemas.ReviewOut(
                status=w.review.new_status,
                source=w.review.source,
                reason=w.review.reason,
                at=w.review.created_at,
            )
            if w.review is not None
            else None
        ),
        pay_micros=w.pay_micros,
        appeals=[AppealOut.model_validate(appeal) for appeal in w.appeals],
        appealable=w.appealable,
    )


# --- admins: annotators and clients; clients: the appeals on their jobs -------------------------


@router.get("/admin/annotators", tags=["admin"], response_model=schemas.AnnotatorOverviewPage)
def annotators(
    _: AdminPrincipal,
    session: ReadSession,
    sort: Annotated[
        people.AnnotatorSort, Query(description="The order (ties by id); unknown figures last")
    ] = people.AnnotatorSort.id,
    desc: Annotated[bool, Query(description="Highest first")] = False,
    tier: Tier | None = None,
    min_reputation: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_reputation: Annotated[float | None, Query(ge=0, le=1)] = None,
    has_open_flags: bool | None = None,
    status: UserStatus | None = None,
    offset: Annotated[Int32, Query(ge=0, le=people.MAX_OFFSET)] = 0,
    limit: Annotated[Int32, Query(ge=1, le=MAX_PAGE)] = 50,
) -> schemas.AnnotatorOverviewPage:
    """Annotators with their reputation, tier, gold accuracy, speed (median active seconds per
    task), finished tasks and open flags, sorted and filtered as asked; paged by `offset`."""
    rows, next_offset = people.list_annotators(
        session,
        sort=sort,
        descending=desc,
        where=people.AnnotatorFilter(tier, min_reputation, max_reputation, has_open_flags, status),
        offset=offset,
        limit=limit,
    )
    return schemas.AnnotatorOverviewPage(
        items=[schemas.AnnotatorOverviewOut.model_validate(r) for r in rows],
        next_offset=next_offset,
    )


@router.get("/admin/clients", tags=["admin"], response_model=Page[schemas.ClientOverviewOut])
def clients(
    request: Request, _: AdminPrincipal, session: ReadSession, paging: Paging
) -> Page[schemas.ClientOverviewOut]:
    """Clients by id with their available balance and what their jobs hold in escrow."""
    settings: Settings = request.app.state.settings
    rows, cursor = people.list_clients(session, paging, settings.currency)
    return Page(
        items=[schemas.ClientOverviewOut.model_validate(r) for r in rows], next_cursor=cursor
    )


@router.get(
    "/quality/jobs/{job_id}/appeals",
    tags=["review"],
    response_model=schemas.JobAppealPage,
    responses=problem_responses((NotFound, "the job is not yours")),
)
def job_appeals(
    job_id: PathId, request: Request, client: ClientPrincipal, session: ReadSession, paging: Paging
) -> schemas.JobAppealPage:
    """The appeals annotators filed against judgments on your job and their outcome, oldest
    first (annotators by the pseudonym exports use)."""
    settings: Settings = request.app.state.settings
    job = jobs.get_job(session, client, job_id)
    rows, cursor = people.appeals_on_jobs(session, [job.id], paging)
    secret = settings.resolved_secret_key()
    return schemas.JobAppealPage(
        items=[
            schemas.JobAppealOut(
                id=a.id,
                assignment_id=a.assignment_id,
                job_id=a.job_id,
                annotator=client_pseudonym(secret, job.client_id, a.annotator_id),
                kind=a.kind,
                message=a.message,
                status=a.status,
                created_at=a.created_at,
                resolved_at=a.resolved_at,
                resolution=a.resolution,
            )
            for a in rows
        ],
        next_cursor=cursor,
    )
