"""Response bodies of the overviews."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.models.accounts import UserStatus
from app.models.jobs import AssignmentStatus, Tier
from app.models.quality import AppealKind, AppealStatus, ReviewSource
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


class AnnotatorOverviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str
    status: UserStatus
    reputation: float = Field(description="In force (an override's, if any)")
    tier: Tier
    gold_accuracy: float | None = Field(description="Overall, as of the last refresh")
    median_active_seconds: float | None = Field(description="Speed: median per task")
    tasks: int = Field(description="Finished tasks counted by the last refresh")
    open_flags: int = Field(description="Open rule actions (flags, removals, proposals)")


class AnnotatorOverviewPage(BaseModel):
    items: list[AnnotatorOverviewOut]
    next_offset: int | None = Field(description="Pass as `offset` for the next page")


class ClientOverviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str
    status: UserStatus
    currency: str
    available_micros: int = Field(description="Funds not committed to a job")
    escrow_micros: int = Field(description="Held in escrow across the client's jobs")


class JobAppealOut(BaseModel):
    """An appeal of a judgment on your job, and its outcome (the annotator by pseudonym)."""

    id: int
    assignment_id: int
    job_id: int
    annotator: str
    kind: AppealKind
    message: str
    status: AppealStatus
    created_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class JobAppealPage(BaseModel):
    items: list[JobAppealOut]
    next_cursor: int | None
