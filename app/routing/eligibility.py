"""Eligibility on the claim path: the qualification package decides; this keeps its verdicts
per annotator for `TESSERA_ELIGIBILITY_CACHE_SECONDS` (in `app.core.caches`, which says what
forgets them), because `next` is the hottest endpoint and the verdict (skills, grants, bans,
reputation) changes rarely, while working it out takes four queries. The per-annotator task limit
is re-checked inside every claim, so a stale verdict can never over-assign."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.core import caches
from app.core.errors import Forbidden
from app.core.settings import Settings
from app.models.jobs import Job
from app.routing import service
from qualification_tests.eligibility import Eligibility, Reason, explain_eligibility_for_jobs


def for_jobs(
    session: Session, annotator_id: int, jobs: Sequence[Job], now: datetime, ttl: float = 0.0
) -> dict[int, Eligibility]:
    """The annotator's eligibility for each job, reused for `ttl` seconds."""
    verdicts = fresh(annotator_id, jobs, ttl)
    if verdicts is None:
        read_at = time.monotonic()
        verdicts = explain_eligibility_for_jobs(session, annotator_id, jobs, now=now)
        caches.verdicts.put(annotator_id, (_key(jobs), verdicts), read_at)
    return verdicts


def fresh(annotator_id: int, jobs: Sequence[Job], ttl: float) -> dict[int, Eligibility] | None:
    """The cached verdicts for exactly these jobs while younger than `ttl` seconds, else None."""
    hit: tuple[tuple[int, ...], dict[int, Eligibility]] | None = caches.verdicts.get(
        annotator_id, ttl
    )
    if hit is not None and hit[0] == _key(jobs):
        return hit[1]
    return None


def _key(jobs: Sequence[Job]) -> tuple[int, ...]:
    return tuple(job.id for job in jobs)


JobsAndVerdicts = tuple[list[Job], dict[int, Eligibility]]


def jobs_for(
    session: Session, annotator_id: int, job_id: int | None, now: datetime, settings: Settings
) -> JobsAndVerdicts:
    """The active jobs to serve (one when `job_id` is given) with the annotator's verdicts."""
    jobs = service.active_jobs(session, job_id, settings.routing_cache_seconds)
    return jobs, for_jobs(session, annotator_id, jobs, now, settings.eligibility_cache_seconds)


def cached_jobs_for(
    annotator_id: int, job_id: int | None, settings: Settings
) -> JobsAndVerdicts | None:
    """`jobs_for` from the caches alone, or None when either is stale."""
    jobs = service.fresh_active_jobs(settings.routing_cache_seconds)
    if jobs is None:
        return None
    serving = [job for job in jobs if job_id is None or job.id == job_id]
    verdicts = fresh(annotator_id, serving, settings.eligibility_cache_seconds)
    return None if verdicts is None else (serving, verdicts)


def eligible_jobs(found: JobsAndVerdicts, job_id: int | None) -> list[Job]:
    """The jobs the annotator may claim from, in serving order. Asking for one active job: 403
    with the reasons when the annotator may not work on it, except when the only reason is the
    per-annotator task limit (an empty queue, `task-limit-reached`). A job asked for that is not
    active gives nothing here; the empty queue's explanation says why (or 404s)."""
    jobs, verdicts = found
    if job_id is not None and jobs:
        reasons = verdicts[job_id].reasons
        if any(r.code != "job_full" for r in reasons):
            raise Forbidden(
                "You are not eligible for this job", reasons=[reason_dict(r) for r in reasons]
            )
    return [job for job in jobs if verdicts[job.id].eligible]


def reason_dict(reason: Reason) -> dict[str, Any]:
    """A reason as problem details carry it (unset fields left out)."""
    out: dict[str, Any] = {"code": reason.code, "detail": reason.detail}
    for name in ("skill", "required", "actual"):
        value = getattr(reason, name)
        if value is not None:
            out[name] = value
    if reason.until is not None:
        out["until"] = reason.until.isoformat()
    return out
