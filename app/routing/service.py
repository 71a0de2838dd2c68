"""Routing's synchronous services, shared by both stores and the background sweep: the active
jobs in serving order (cached: see `app.core.caches`) and lease expiry. The annotator's own calls
(claim, heartbeat, release, submit) are in `flow`.

Lock order everywhere is assignment, then task (sorted by id), so sweeps, submits and releases
cannot deadlock one another.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from app.core import caches
from app.core.errors import NotFound
from app.models.jobs import Assignment, AssignmentStatus, Item, Job, JobStatus, TaskItem
from app.routing import gold, rules

# --- lease expiry -------------------------------------------------------------------------------


def expire_overdue_assignments(
    session: Session, now: datetime, *, job_id: int | None = None, limit: int = 5000
) -> int:
    """Mark active assignments whose lease ran out as expired and give their slots back.
    Assignments another transaction holds are skipped (they are being submitted or swept).
    Returns how many expired."""
    stmt = (
        select(Assignment.id, Assignment.task_id)
        .where(Assignment.status == AssignmentStatus.active, Assignment.lease_expires_at < now)
        .order_by(Assignment.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if job_id is not None:
        stmt = stmt.where(Assignment.job_id == job_id)
    rows = session.execute(stmt).all()
    if not rows:
        return 0
    session.execute(
        update(Assignment)
        .where(Assignment.id.in_([r.id for r in rows]))
        .values(status=AssignmentStatus.expired)
    )
    free_slots(session, Counter(r.task_id for r in rows))
    return len(rows)


FREE_SLOTS = (
    "UPDATE tasks SET live_count = live_count - :k, status = CASE "
    "WHEN status IN ('open', 'full') AND live_count - :k + done_count < overlap_target "
    "THEN 'open' ELSE status END WHERE id = :id"
)


def free_slots(session: Session, per_task: Counter[int]) -> None:
    """Give `per_task[task]` live slots back on each task (reopening full tasks)."""
    for task_id in sorted(per_task):
        session.execute(text(FREE_SLOTS), {"k": per_task[task_id], "id": task_id})


# --- the active jobs, cached ----------------------------------------------------------------------


def job_for_work(session: Session, job_id: int, ttl: float = 0.0) -> Job:
    """The job of an assignment: from the active-job list when it is there (its schema never
    changes once tasks exist), else read (a paused job still takes work in flight)."""
    for job in active_jobs(session, job_id, ttl):
        return job
    return session.get_one(Job, job_id)


def fresh_active_jobs(ttl: float) -> tuple[Job, ...] | None:
    """The cached active jobs while younger than `ttl` seconds, else None."""
    jobs: tuple[Job, ...] | None = caches.active_jobs.get(caches.ACTIVE_JOBS_KEY, ttl)
    return jobs


def active_jobs(session: Session, job_id: int | None = None, ttl: float = 0.0) -> list[Job]:
    """Active jobs, highest priority first (one job when `job_id` is given). The list is
    reused for `ttl` seconds; the claim statement itself re-checks that the job is active,
    so a job paused meanwhile hands out nothing."""
    jobs = fresh_active_jobs(ttl)
    if jobs is None:
        read_at = time.monotonic()
        jobs = tuple(
            session.scalars(
                select(Job)
                .where(Job.status == JobStatus.active)
                .order_by(Job.priority.desc(), Job.id)
            )
        )
        for job in jobs:
            session.expunge(job)  # detached snapshots, safe to share between requests
        caches.active_jobs.put(caches.ACTIVE_JOBS_KEY, jobs, read_at)
    return [job for job in jobs if job_id is None or job.id == job_id]


# --- an assignment in hand, again -----------------------------------------------------------------


def assignment_in_hand(
    session: Session, annotator_id: int, assignment_id: int, now: datetime
) -> tuple[Assignment, Job, list[tuple[int, dict[str, Any]]]]:
    """The caller's live assignment with its job and its items as (slot, payload), as `next`
    handed them out, so a reloaded page resumes instead of releasing. 404 for anyone else's
    assignment (as if it did not exist); 409 when it is not live (`rules.check_resumable`).
    Payloads only: never a gold flag or answer."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or assignment.annotator_id != annotator_id:
        raise NotFound("No such assignment")
    rules.check_resumable(assignment, now)
    job = session.get_one(Job, assignment.job_id)
    items = session.execute(
        select(TaskItem.position, Item.payload)
        .join(Item, Item.id == TaskItem.item_id)
        .where(TaskItem.task_id == assignment.task_id)
        .order_by(TaskItem.position)
    ).all()
    shown = tuple((slot, payload) for slot, payload in items)
    if assignment.gold_item_id is not None and assignment.gold_slot is not None:
        # the gold item chosen at claim, at the slot `next` showed it (as a payload only)
        gold_payload = session.get_one(Item, assignment.gold_item_id).payload
        shown = gold.shown_with_gold(shown, assignment.gold_slot, gold_payload)
    return assignment, job, list(shown)
