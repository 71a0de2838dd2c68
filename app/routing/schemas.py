"""Request and response bodies for claiming and working on tasks.

Nothing here ever carries gold flags, gold answers or item ids: an annotator sees the items of
a task only by slot, so gold items (which recur across tasks) cannot be told apart. Pre-labels
are shown only for jobs that say so, and never one that would give a gold answer away
(`rules.shows_prelabel`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.core.inputs import Int64, RequestBody
from app.models.jobs import AssignmentStatus
from app.routing.queue import EmptyReason
from payouts.schemas import PayOut

# The most tasks one `next` may claim: the schema states it, so OpenAPI and a 422 beyond it agree.
MAX_CLAIM_COUNT = 10


class NextRequest(RequestBody):
    job_id: Int64 | None = Field(default=None, description="Only from this job")
    count: int = Field(
        default=1,
        ge=1,
        le=MAX_CLAIM_COUNT,
        description=f"How many tasks to claim (at most {MAX_CLAIM_COUNT}; more is a 422)",
    )


class TaskItemOut(BaseModel):
    slot: int
    data: dict[str, Any]


class PrelabeledItemOut(TaskItemOut):
    """An item of a job that shows pre-labels."""

    prelabel: dict[str, Any] | None = Field(
        description="The item's pre-label, a model's guess in the answer's shape (null: none)"
    )
    predictions: list[dict[str, Any]] = Field(
        description="The pre-label as Label Studio predictions (`model_version`, `score`, "
        "`result`), for a Label Studio labeling front end; empty without one"
    )


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
    items: list[PrelabeledItemOut | TaskItemOut] = Field(
        description="The task's items by slot; with `prelabel` and `predictions` when the job "
        "shows pre-labels"
    )
    pay: PayOut | None = Field(
        default=None, description="What this task pays you (in `next`; null when fetched again)"
    )


class EligibilityReasonOut(BaseModel):
    """One failing eligibility rule (codes as in `GET /v1/jobs/{id}/eligibility`)."""

    code: str
    detail: str
    skill: str | None = None
    required: Any = None
    actual: Any = None
    until: datetime | None = None


class EmptyQueueOut(BaseModel):
    """Why a job gave you nothing (see the README's "Honest queues")."""

    job_id: int
    reason: EmptyReason = Field(
        description="`job-paused`, `escrow-exhausted` (paused until funded), `no-open-tasks`, "
        "`not-eligible` (see `eligibility`), `task-limit-reached` (the job's "
        "`max_tasks_per_annotator`), `answered-every-task`, `open-slots-leased` (see "
        "`leases_end_at`), `gold-exhausted` (the tasks left hold quality-control items you "
        "have seen)"
    )
    detail: str
    leases_end_at: datetime | None = Field(
        default=None,
        description="With `open-slots-leased`: when the earliest lease on a slot you could "
        "take ends (heartbeats may extend it; a submit or release frees it sooner)",
    )
    eligibility: list[EligibilityReasonOut] | None = Field(
        default=None, description="With `not-eligible`: every rule you do not meet"
    )


class NextResponse(BaseModel):
    assignments: list[AssignmentOut]
    empty_reasons: list[EmptyQueueOut] | None = Field(
        default=None,
        description="Only when `assignments` is empty: why, one entry per job asked (the job "
        "named by `job_id`, else every active job); null when something was claimed",
    )


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
