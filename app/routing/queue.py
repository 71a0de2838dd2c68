"""Why `next` handed out nothing: one reason per job asked (the job named, or every active
job), worked out only after a claim came back empty, so a successful claim never pays for it.

Reasons, checked in this order for each job (the first that holds is given):

- `job-paused`: the job is paused by its client or an admin (it takes no new claims).
- `escrow-exhausted`: the job is paused because its escrow cannot pay for more work.
- `no-open-tasks`: no task of the job needs an answer (all complete, none yet, or the job ended).
- `not-eligible`: the annotator may not work on the job; `eligibility` lists every reason
  (the codes of `qualification_tests.eligibility`).
- `task-limit-reached`: the annotator holds the job's `max_tasks_per_annotator` assignments.
- `answered-every-task`: every task still needing answers is one the annotator worked on.
- `open-slots-leased`: every free slot the annotator could take is leased to someone else;
  `leases_end_at` says when the earliest of those leases ends (it may end sooner, by a submit or
  a release, or later, by heartbeats).
- `gold-exhausted`: the tasks left for the annotator each hold a quality-control item they have
  already seen, and nobody sees one twice (only tasks split with gold baked in, before gold was
  chosen at claim time: `gold`).

Reads only, in a constant number of queries whatever the number of jobs, on either database
(SQLAlchemy Core on a synchronous session: the SQLite store's own, or a read session on a worker
thread for PostgreSQL's).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from app.core.errors import NotFound
from app.models.jobs import Assignment, AssignmentStatus, Job, JobStatus, Task, TaskStatus
from app.routing import eligibility, service
from payouts.escrow import budget_of
from qualification_tests.eligibility import Eligibility, explain_eligibility_for_jobs

EmptyReason = Literal[
    "job-paused",
    "escrow-exhausted",
    "no-open-tasks",
    "not-eligible",
    "task-limit-reached",
    "answered-every-task",
    "open-slots-leased",
    "gold-exhausted",
]

# A task still taking answers: open (a free slot) or full (every slot live or done).
_WANTING = (TaskStatus.open, TaskStatus.full)


@dataclass(frozen=True)
class EmptyQueue:
    """Why one job gave the annotator nothing."""

    job_id: int
    reason: EmptyReason
    detail: str
    leases_end_at: datetime | None = None
    eligibility: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Tasks:
    """A job's tasks still taking answers, as the annotator sees them."""

    mine: int = 0  # tasks the annotator already worked on
    open: int = 0  # open tasks the annotator has not worked on
    full: int = 0  # full tasks the annotator has not worked on
    leases_end_at: datetime | None = None  # the earliest lease on those full tasks


def explain_empty(
    session: Session, annotator_id: int, job_id: int | None, now: datetime, ttl: float
) -> list[EmptyQueue]:
    """Why a claim of `job_id` (or of any active job) came back empty, one reason per job.
    A job that does not exist or was never activated is a 404, as for any job id."""
    if job_id is None:
        jobs = service.active_jobs(session, None, ttl)
    else:
        job = session.get(Job, job_id)
        if job is None or job.status is JobStatus.draft:
            raise NotFound("No such active job")
        jobs = [job]
    if not jobs:
        return []
    verdicts = explain_eligibility_for_jobs(session, annotator_id, jobs, now=now)
    tasks = _tasks_by_job(session, annotator_id, [j.id for j in jobs])
    return [_reason(session, job, verdicts[job.id], tasks[job.id], now) for job in jobs]


def _reason(
    session: Session, job: Job, verdict: Eligibility, tasks: _Tasks, now: datetime
) -> EmptyQueue:
    if job.status is JobStatus.paused:
        return _paused(session, job)
    if job.status is not JobStatus.active:
        return EmptyQueue(job.id, "no-open-tasks", f"The job is {job.status.value}")
    if not tasks.mine and not tasks.open and not tasks.full:
        return EmptyQueue(job.id, "no-open-tasks", "No task of the job needs an answer")
    limit = [r for r in verdict.reasons if r.code == "job_full"]
    if len(limit) < len(verdict.reasons):
        return EmptyQueue(
            job.id,
            "not-eligible",
            "You may not work on this job",
            eligibility=[eligibility.reason_dict(r) for r in verdict.reasons],
        )
    if limit:
        return EmptyQueue(job.id, "task-limit-reached", limit[0].detail)
    if not tasks.open and not tasks.full:
        return EmptyQueue(
            job.id, "answered-every-task", "You worked on every task that still needs answers"
        )
    if not tasks.open:
        return EmptyQueue(
            job.id,
            "open-slots-leased",
            "Every free slot you could take is leased to another annotator",
            leases_end_at=tasks.leases_end_at,
        )
    return EmptyQueue(
        job.id,
        "gold-exhausted",
        "The tasks left for you hold quality-control items you have already seen",
    )


def _paused(session: Session, job: Job) -> EmptyQueue:
    budget = budget_of(session, job.id)
    if budget is not None and budget.paused_for_funds_at is not None:
        why = budget.pause_reason or "its escrow cannot pay for more work"
        return EmptyQueue(job.id, "escrow-exhausted", f"The job is paused: {why}")
    return EmptyQueue(job.id, "job-paused", "The job is paused and takes no new claims")


def _tasks_by_job(session: Session, annotator_id: int, job_ids: Sequence[int]) -> dict[int, _Tasks]:
    """Two queries: the job's tasks still taking answers by state and by whether the annotator
    worked on them, and the earliest live lease on the full ones they did not."""
    out: dict[int, _Tasks] = defaultdict(_Tasks)
    mine = exists().where(Assignment.task_id == Task.id, Assignment.annotator_id == annotator_id)
    rows = session.execute(
        select(Task.job_id, Task.status, mine.label("mine"), func.count())
        .where(Task.job_id.in_(job_ids), Task.status.in_(_WANTING))
        .group_by(Task.job_id, Task.status, mine)
    )
    for job_id, status, is_mine, count in rows:
        tasks = out[job_id]
        if is_mine:
            tasks.mine += count
        elif status is TaskStatus.open:
            tasks.open += count
        else:
            tasks.full += count
    leased = [job_id for job_id in job_ids if out[job_id].full and not out[job_id].open]
    if leased:
        live = aliased(Assignment)
        for job_id, ends in session.execute(
            select(Task.job_id, func.min(live.lease_expires_at))
            .join(live, and_(live.task_id == Task.id, live.status == AssignmentStatus.active))
            .where(Task.job_id.in_(leased), Task.status == TaskStatus.full, ~mine)
            .group_by(Task.job_id)
        ):
            out[job_id].leases_end_at = ends
    return out
