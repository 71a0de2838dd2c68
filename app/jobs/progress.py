"""Job progress: counts by state and an estimate of when the work will be done."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.jobs.schemas import Progress
from app.models.consensus import ItemResult
from app.models.jobs import Assignment, AssignmentStatus, Item, Job, Task, TaskStatus

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
        if task_status is TaskStatus.open:
            remaining = int(missing or 0)
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
    eta = None
    total_tasks = sum(tasks.values())
    if total_tasks and remaining == 0 and tasks[TaskStatus.open.value] == 0:
        eta = now
    elif recent:
        eta = now + WINDOW * (remaining / recent)
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
    )
