"""HTTP for the overviews: an annotator's own finished work (/v1/annotator/work)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.core.inputs import Int64
from app.core.pagination import PageParams, page_params
from app.core.security import AnnotatorPrincipal, ReadSession
from app.models.jobs import AssignmentStatus
from app.quality.overviews import schemas, work
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
