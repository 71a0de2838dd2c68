"""Job progress: counts by state, the state the job is in (and why), and an estimate of when
the work will be done.

States: `complete` (every task has its answers, or the job was completed), `waiting-for-leases`
(no open slot is free: every task still needing answers is full of live leases), `starved`
(tasks wait and nothing moves: the job is paused or not active, has no tasks, or nobody claimed
or submitted anything in the last hour) and `running`. The estimate extrapolates the answers of
the last hour; it is null, with `no_estimate_reason`, when the job is starved or nothing was
submitted in that hour."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.jobs import gold
from app.jobs.schemas import Progress, ProgressReason, ProgressState
from app.models.consensus import ItemResult
from app.models.jobs import Assignment, AssignmentStatus, Item, Job, JobStatus, Task, TaskStatus
from payouts.escrow import budget_of

WINDOW = timedelta(hours=1)


def job_progress(session: Session, job: Job) -> Progress:
    """Items, tasks and assignments by state; consensus reached; and, from the submissions of
    the last hour, an estimated completion time (None while nothing was submitted lately)."""
    now = utcnow()
    items: dict[bool, int] = dict(
        session.execute(
            select(Item.is_gold, func.count()).where(Item.job_id == job.id).group_by(Item.is_gold)
        ).all()
    )
    tasks = {s.value: 0 for s in TaskStatus}
    remaining = 0
    for task_status, count, missing in session.execute(
        select(Task.status, func.count(), func.sum(Task.overlap_target - Task.done_count))
        .where(Task.job_id == job.id)
        .group_by(Task.status)
    ):
        tasks[task_status.value] = count
        if task_status in (TaskStatus.open, TaskStatus.full):
            remaining += int(missing or 0)
    assignments = {s.value: 0 for s in AssignmentStatus}
    for assignment_status, count in session.execute(
        select(Assignment.status, func.count())
        .where(Assignment.job_id == job.id)
        .group_by(Assignment.status)
    ):
        assignments[assignment_status.value] = count
    recent = (
        session.scalar(
            select(func.count()).where(
                Assignment.job_id == job.id,
                Assignment.submitted_at >= now - WINDOW,
            )
        )
        or 0
    )
    consensus = session.scalar(select(func.count()).where(ItemResult.job_id == job.id)) or 0
    # Why annotators skip tasks, in aggregate only (no one's identity).
    release_reasons = [
        {"reason": reason or "(no reason given)", "count": count}
        for reason, count in session.execute(
            select(Assignment.release_reason, func.count().label("n"))
            .where(Assignment.job_id == job.id, Assignment.status == AssignmentStatus.released)
            .group_by(Assignment.release_reason)
            .order_by(func.count().desc())
            .limit(20)
        )
    ]
    state, reasons = _state(session, job, tasks, assignments, recent)
    eta, no_estimate = _estimate(state, reasons, now, remaining, recent)
    return Progress(
        job_id=job.id,
        status=job.status,
        items={
            "total": sum(items.values()),
            "regular": items.get(False, 0),
            "gold": items.get(True, 0),
        },
        tasks=tasks,
        assignments=assignments,
        consensus_reached=consensus,
        answers_last_hour=recent,
        release_reasons=release_reasons,
        estimated_completion=eta,
        no_estimate_reason=no_estimate,
        state=state,
        state_reasons=reasons,
        warnings=[w for w in [gold.thin_gold_warning(session, job)] if w],
    )


def _state(
    session: Session, job: Job, tasks: dict[str, int], assignments: dict[str, int], recent: int
) -> tuple[ProgressState, list[ProgressReason]]:
    wanting = tasks[TaskStatus.open.value] + tasks[TaskStatus.full.value]
    if job.status is JobStatus.completed or (sum(tasks.values()) > 0 and not wanting):
        return "complete", [ProgressReason(code="all-tasks-complete", detail="No task waits")]
    if job.status is JobStatus.paused:
        budget = budget_of(session, job.id)
        if budget is not None and budget.paused_for_funds_at is not None:
            why = budget.pause_reason or "its escrow cannot pay for more work"
            return "starved", [ProgressReason(code="escrow-exhausted", detail=why)]
        return "starved", [ProgressReason(code="job-paused", detail="The job is paused")]
    if job.status is not JobStatus.active:
        detail = f"The job is {job.status.value}"
        return "starved", [ProgressReason(code="job-not-active", detail=detail)]
    if not wanting:
        return "starved", [ProgressReason(code="no-tasks", detail="The job has no tasks yet")]
    if not tasks[TaskStatus.open.value]:
        ends = session.scalar(
            select(func.min(Assignment.lease_expires_at)).where(
                Assignment.job_id == job.id, Assignment.status == AssignmentStatus.active
            )
        )
        detail = "Every task still needing answers is leased to annotators at work"
        return "waiting-for-leases", [
            ProgressReason(code="open-slots-leased", detail=detail, leases_end_at=ends)
        ]
    if not recent and not assignments[AssignmentStatus.active.value]:
        detail = (
            "Tasks are open but nobody claimed or submitted one in the last hour: check the "
            "job's requirements (skills, reputation, tier) and its gold"
        )
        return "starved", [ProgressReason(code="no-recent-answers", detail=detail)]
    return "running", []


def _estimate(
    state: ProgressState,
    reasons: list[ProgressReason],
    now: datetime,
    remaining: int,
    recent: int,
) -> tuple[datetime | None, str | None]:
    """The estimated completion, or None with why."""
    if state == "complete":
        return now, None
    if state == "starved":
        return None, reasons[0].detail
    if not recent:
        return None, "Nothing was submitted in the last hour"
    return now + WINDOW * (remaining / recent), None
