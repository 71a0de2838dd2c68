"""Response bodies of the overviews."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.models.jobs import AssignmentStatus
from app.models.quality import AppealKind, ReviewSource
from app.quality.schemas import AppealOut


class WorkItemOut(BaseModel):
    slot: int
    data: dict[str, Any]
    answer: Any = Field(description="Your answer for this item")


class ReviewOut(BaseModel):
    status: AssignmentStatus
    source: ReviewSource
    reason: str | None
    at: datetime


class MyWorkOut(BaseModel):
    id: int = Field(description="The assignment (appeal it with this id)")
    job_id: int
    job_title: str
    status: AssignmentStatus
    submitted_at: datetime | None
    active_seconds: int
    gold_score: float | None = Field(
        description="The score of the task's control items, on jobs that show it"
    )
    items: list[WorkItemOut]
    review: ReviewOut | None = Field(description="The latest review decision, if any")
    pay_micros: int | None = Field(
        description="What this work has earned you so far, net (null until it reaches the "
        "ledger, seconds after the submit; 0 once a rejection reversed it)"
    )
    appeals: list[AppealOut]
    appealable: list[AppealKind] = Field(
        description="Judgments you may still appeal: `POST /v1/annotator/appeals` with this id"
    )


class MyWorkPage(BaseModel):
    items: list[MyWorkOut]
    next_cursor: int | None
