"""Request and response bodies for claiming and working on tasks.

Nothing here ever carries gold flags, gold answers, item ids or pre-labels: an annotator sees
the items of a task only by slot, so gold items (which recur across tasks) cannot be told apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.core.inputs import Int64, RequestBody
from app.models.jobs import AssignmentStatus
from payouts.schemas import PayOut


class NextRequest(RequestBody):
    job_id: Int64 | None = Field(default=None, description="Only from this job")
    count: int = Field(default=1, ge=1, le=100, description="How many tasks to claim")


class TaskItemOut(BaseModel):
    slot: int
    data: dict[str, Any]


class JobBrief(BaseModel):
    id: int
    title: str
    instructions: str
    label_schema: dict[str, Any]


class AssignmentOut(BaseModel):
    id: int
    job: JobBrief
    status: AssignmentStatus
    claimed_at: datetime
    lease_expires_at: datetime
    heartbeat_interval_seconds: int
    items: list[TaskItemOut]
    pay: PayOut | None = Field(
        default=None, description="What this task pays you (in `next`; null when fetched again)"
    )


class NextResponse(BaseModel):
    assignments: list[AssignmentOut]


class LeaseOut(BaseModel):
    id: int
    status: AssignmentStatus
    lease_expires_at: datetime
    lease_limit: datetime = Field(description="Heartbeats cannot extend the lease past this")
    active_seconds: int


class ReleaseRequest(RequestBody):
    reason: str | None = Field(default=None, max_length=500)


class SubmitRequest(RequestBody):
    answers: list[dict[str, Any]] = Field(
        min_length=1, max_length=100, description="One answer per task item, in slot order"
    )


class GoldFeedback(BaseModel):
    slot: int
    score: float


class SubmitOut(BaseModel):
    id: int
    status: AssignmentStatus
    submitted_at: datetime
    active_seconds: int
    feedback: list[GoldFeedback] | None = Field(
        description="Scores of this task's quality-control items, when the job shows instant "
        "feedback"
    )


class MyAssignment(BaseModel):
    id: int
    job_id: int
    job_title: str
    status: AssignmentStatus
    claimed_at: datetime
    lease_expires_at: datetime
    submitted_at: datetime | None
    active_seconds: int
