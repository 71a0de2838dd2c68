"""Background work of routing: the periodic sweep that gives expired leases' slots back."""

from __future__ import annotations

from datetime import timedelta

from app.core.background import JobContext, background_job
from app.core.clock import utcnow
from app.routing.service import expire_overdue_assignments

SWEEP_JOB = "routing.sweep_leases"


@background_job(SWEEP_JOB, time_limit=timedelta(minutes=5))
def sweep_leases(ctx: JobContext) -> None:
    """Expire every overdue lease (in batches of 5,000 per statement; each run takes what it
    finds and the next tick takes the rest)."""
    expire_overdue_assignments(ctx.session, utcnow(), limit=5000)
