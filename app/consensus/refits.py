"""Background refits of jobs' consensus: one job at a time (`quality.refit_consensus`, enqueued
on demand, when a job completes, and by the periodic check), and the periodic check itself
(`quality.refit_due`), which picks the active jobs whose answers have grown enough since their
last fit.

A refit reads every answer of its job, so it is bounded by the job's size, not by traffic; the
check reads one count per active job through the (job, created_at) index of answers.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.consensus import service as consensus
from app.core.background import JobContext, background_job, enqueue
from app.core.clock import utcnow
from app.core.errors import NotFound
from app.label_schema import LabelSchema
from app.models.jobs import Job, JobStatus
from app.runs import service as runs

# The names (and the queue) predate `app.consensus`: outbox rows and broker queues hold them,
# so they stay.
REFIT_JOB = "quality.refit_consensus"
REFIT_DUE_JOB = "quality.refit_due"
# A job is refitted once its new answers reach this share of those its last fit saw (and at
# least MIN_NEW_ANSWERS): early on after every few dozen answers, later rarely.
REFIT_GROWTH = 0.2
MIN_NEW_ANSWERS = 30


def request_refit(session: Session, job_id: int, *, run_id: int | None = None) -> int:
    """Queue a refit of the job in the caller's transaction; returns the outbox id."""
    return enqueue(session, REFIT_JOB, job_id, run_id=run_id)


@background_job(REFIT_JOB, queue="quality", time_limit=timedelta(hours=1))
def refit_consensus(ctx: JobContext, job_id: int) -> None:
    """Refit one job's consensus (its run, when there is one, gets the fit's numbers)."""
    job = ctx.session.get(Job, job_id)
    if job is None:
        raise NotFound(f"No job {job_id}")
    schema = LabelSchema.model_validate(job.label_schema)
    fit = consensus.refit_job(ctx.session, job, schema, utcnow())
    if ctx.run_id is not None:
        runs.finish_run(
            ctx.session,
            ctx.run_id,
            result={
                "job_id": job.id,
                "method": fit.method,
                "version": fit.version,
                "answers": fit.answers,
                "items": fit.items,
            },
        )


@background_job(REFIT_DUE_JOB, queue="quality")
def refit_due(ctx: JobContext) -> None:
    """Queue a refit for every active job whose answers grew enough since its last fit."""
    for job_id in ctx.session.scalars(select(Job.id).where(Job.status == JobStatus.active)):
        seen, new = consensus.answers_since_fit(ctx.session, job_id)
        if new >= max(MIN_NEW_ANSWERS, REFIT_GROWTH * seen):
            enqueue(ctx.session, REFIT_JOB, job_id)
