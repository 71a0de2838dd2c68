"""Pay shown before work: what each job pays the caller (`pricing.pay_preview`), for the job
list and for every `next` response.

The one figure that needs the database is a job's median active seconds per task so far (the
latest `PACE_SAMPLE` submitted assignments); it is kept per job in `app.core.caches.job_pace`
for `TESSERA_PAY_PREVIEW_CACHE_SECONDS`, so `next` reads it from memory and queries once per
job per that time at most (`medians` on a miss: one query for all the jobs missing). The
caller's tier comes with their cached eligibility verdicts, the terms from the cached job: a
warm `next` adds no query.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import caches
from app.core.settings import Settings
from app.models.jobs import Assignment, AssignmentStatus, Job, Tier
from payouts.pricing import PayPreview, PayTerms, pay_preview

#: Submitted assignments a job's median is taken over (the latest ones: the pace of the work
#: as it is now, and a bounded read on a large job).
PACE_SAMPLE = 1000
_DONE = (AssignmentStatus.submitted, AssignmentStatus.approved, AssignmentStatus.rejected)

Medians = dict[int, float | None]


def cached_medians(job_ids: Iterable[int], ttl: float) -> tuple[Medians, list[int]]:
    """The medians the cache holds while fresh, and the job ids it lacks."""
    found: Medians = {}
    missing = []
    for job_id in job_ids:
        hit: tuple[float | None] | None = caches.job_pace.get(job_id, ttl)
        if hit is None:
            missing.append(job_id)
        else:
            found[job_id] = hit[0]
    return found, missing


def medians(session: Session, job_ids: Sequence[int]) -> Medians:
    """Each job's median active seconds over its latest PACE_SAMPLE submitted assignments (None
    before the first), read now (one query for all) and kept in the cache."""
    if not job_ids:
        return {}
    read_at = time.monotonic()
    latest = (
        select(
            Assignment.job_id,
            Assignment.active_seconds,
            func.row_number()
            .over(partition_by=Assignment.job_id, order_by=Assignment.id.desc())
            .label("n"),
        )
        .where(Assignment.job_id.in_(list(job_ids)), Assignment.status.in_(_DONE))
        .subquery()
    )
    seconds: dict[int, list[int]] = defaultdict(list)
    for job_id, active in session.execute(
        select(latest.c.job_id, latest.c.active_seconds).where(latest.c.n <= PACE_SAMPLE)
    ):
        seconds[job_id].append(active)
    out: Medians = {}
    for job_id in job_ids:
        out[job_id] = float(statistics.median(seconds[job_id])) if seconds[job_id] else None
        caches.job_pace.put(job_id, (out[job_id],), read_at)
    return out


def medians_for(session: Session, job_ids: Sequence[int], settings: Settings) -> Medians:
    """Each job's median active seconds, from the cache where fresh, else read."""
    found, missing = cached_medians(job_ids, settings.pay_preview_cache_seconds)
    if missing:
        found.update(medians(session, missing))
    return found


def preview(job: Job, tier: Tier, median: float | None, settings: Settings) -> PayPreview:
    """What `job` pays an annotator of `tier`."""
    terms = PayTerms.of(job, fee_bps=settings.platform_fee_bps)
    return pay_preview(terms, tier, median, settings.fair_pay_floor_micros_per_hour)
