"""A finished job's final results: the consensus fit they reflect, and `export.ready`.

A completed job's consensus is refitted once more over every answer (the online consensus of
the last tasks held the previous fit fixed, or took a vote before the first fit), and only then
does the client hear `export.ready`, naming that fit; an export names the fit it reflects in its
headers (`fit_headers`). An automatic completion refits in its own background job
(`app.jobs.completion`); a client's or an admin's `complete` queues `jobs.finalize_results`,
so the request stays short. A cancelled job's results are final as they stand: its
`export.ready` names the fit it had, if any.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.consensus import service as consensus
from app.core.background import JobContext, background_job, enqueue
from app.core.clock import utcnow
from app.core.errors import NotFound
from app.label_schema import LabelSchema
from app.models.consensus import ConsensusFit
from app.models.jobs import Job, JobStatus
from app.webhooks import service as webhooks

FINALIZE_JOB = "jobs.finalize_results"

FitRef = tuple[str, int, datetime]  # (method, version, fitted_at)


def current_fit(session: Session, job_id: int) -> FitRef | None:
    """The job's last consensus fit, as exports and `export.ready` name it (None: never
    fitted)."""
    row = session.get(ConsensusFit, job_id)
    return None if row is None else (row.method, row.version, row.fitted_at)


def fit_headers(fit: FitRef | None, method: str) -> dict[str, str]:
    """The `Tessera-Consensus-*` headers of an export: the method, and the fit's version and
    time (`none` before the job's first fit: the consensus is then the online vote)."""
    if fit is None:
        return {"Tessera-Consensus-Method": method, "Tessera-Consensus-Fit-Version": "none"}
    return {
        "Tessera-Consensus-Method": fit[0],
        "Tessera-Consensus-Fit-Version": str(fit[1]),
        "Tessera-Consensus-Fitted-At": fit[2].isoformat().replace("+00:00", "Z"),
    }


def finalize_results(session: Session, job: Job) -> FitRef:
    """Refit a completed job's consensus over every answer, then tell the client its results
    are final (`export.ready`, naming the fit). Flushes; the caller commits."""
    schema = LabelSchema.model_validate(job.label_schema)
    fit = consensus.refit_job(session, job, schema, utcnow())
    ref = (fit.method, fit.version, fit.fitted_at)
    webhooks.results_final(session, job, ref)
    return ref


def results_final_now(session: Session, job: Job) -> None:
    """A cancelled job: its results are final as they stand."""
    webhooks.results_final(session, job, current_fit(session, job.id))


def request_finalize(session: Session, job_id: int) -> int:
    """Queue `finalize_results` for a job just completed, in the caller's transaction."""
    return enqueue(session, FINALIZE_JOB, job_id)


@background_job(FINALIZE_JOB, queue="quality", time_limit=timedelta(hours=1))
def finalize_job_results(ctx: JobContext, job_id: int) -> None:
    """The final refit and `export.ready` of a completed job (the runner skips a duplicate
    delivery; running it again would only refit the same answers once more)."""
    job = ctx.session.get(Job, job_id)
    if job is None:
        raise NotFound(f"No job {job_id}")
    if job.status is JobStatus.completed:
        finalize_results(ctx.session, job)
