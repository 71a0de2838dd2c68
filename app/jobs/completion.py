"""Jobs finish themselves: once every task of a job is complete, the job completes
(`completed_by: automatic`), unless its client turned `auto_complete` off.

Detection stays off the hot path's transaction. A submit that completes a task, once it has
committed, asks whether the job still has a task open or in flight (one look-up through the
(job_id, status) index of tasks, only on such submits); when none is left it queues
`jobs.complete_when_done` through the outbox. Asking after the commit matters: two submits
completing the last two tasks at once would each see the other's task unfinished inside their
own transactions, and neither would queue it. After the commits at least the later one sees
both complete; both may queue it, and the job re-checks under the job's row lock, so the second
finds the job completed and does nothing. A submit lost between its commit and that question
(a crash) is caught by the periodic `jobs.complete_finished`, which also completes a job whose
client turns `auto_complete` back on after its last task.

The completion itself is `service.change_status(..., "complete", refit_now=True)`: unspent
escrow released (`payouts.lifecycle.job_finished`), `job.completed`, the final consensus refit
over every answer and then `export.ready` naming that fit (`app.jobs.results`), in one unit of
work, so an export made after `export.ready` has the final fit's consensus.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Final

from sqlalchemy import ColumnElement, Exists, exists, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.core.background import (
    OUTBOX_CHANNEL,
    JobContext,
    background_job,
    enqueue,
    outbox_insert_sql,
)
from app.jobs import service
from app.models.jobs import Job, JobStatus, Task, TaskStatus

COMPLETE_JOB: Final = "jobs.complete_when_done"
SWEEP_JOB: Final = "jobs.complete_finished"
# Statuses a job completes from by itself (a paused job's last leases may still complete).
RUNNING: Final = (JobStatus.active, JobStatus.paused)
UNFINISHED: Final = (TaskStatus.open, TaskStatus.full)


def _unfinished(job_id: int | ColumnElement[int] | InstrumentedAttribute[int]) -> Exists:
    """Whether the job has a task still open or in flight."""
    return exists().where(Task.job_id == job_id, Task.status.in_(UNFINISHED))


def is_done(session: Session, job: Job) -> bool:
    """Whether the job would complete by itself now: on, running, and no task left to do."""
    if not job.auto_complete or job.status not in RUNNING:
        return False
    return not session.scalar(select(_unfinished(job.id)))


def queue_if_done(session: Session, job_id: int) -> bool:
    """After a submit that completed one of the job's tasks committed: queue the job's
    completion when no task is left. Flushes; the caller commits."""
    job = session.get(Job, job_id)
    if job is None or not is_done(session, job):
        return False
    enqueue(session, COMPLETE_JOB, job_id)
    return True


@cache
def queue_if_done_sql() -> str:
    """`queue_if_done` as one statement for the PostgreSQL hot path (autocommit, after the
    submit's transaction): parameters `job_id` and `now`; notifies the relays when it queued."""
    source = """jobs j WHERE j.id = %(job_id)s AND j.auto_complete
        AND j.status IN ('active', 'paused')
        AND NOT EXISTS (SELECT 1 FROM tasks t
                        WHERE t.job_id = j.id AND t.status IN ('open', 'full'))"""
    insert = outbox_insert_sql(
        COMPLETE_JOB, args="json_build_array(j.id)", source=source, now="%(now)s"
    )
    return f"WITH queued AS ({insert})\nSELECT pg_notify('{OUTBOX_CHANNEL}', '') FROM queued"


@background_job(COMPLETE_JOB, queue="quality", time_limit=timedelta(hours=1))
def complete_when_done(ctx: JobContext, job_id: int) -> None:
    """Complete the job if every task is complete (re-checked under the job's row lock; a job
    already completed, or given new tasks meanwhile, is left alone)."""
    job = ctx.session.get(Job, job_id, with_for_update=True)
    if job is None or not is_done(ctx.session, job):
        return
    service.change_status(ctx.session, job, "complete", by=None, refit_now=True)


@background_job(SWEEP_JOB)
def complete_finished(ctx: JobContext) -> None:
    """Queue the completion of every running job with auto_complete whose tasks are all
    complete (what a submit's own check missed)."""
    has_tasks = exists().where(Task.job_id == Job.id)
    done = ctx.session.scalars(
        select(Job.id).where(
            Job.status.in_(RUNNING),
            Job.auto_complete.is_(True),
            has_tasks,
            ~_unfinished(Job.id),
        )
    )
    for job_id in done:
        enqueue(ctx.session, COMPLETE_JOB, job_id)
