"""Eligibility on the claim path: the qualification package decides; this keeps its verdicts
for a moment per annotator, because `next` is the hottest endpoint and the verdict (skills,
grants, bans, reputation) changes rarely. The per-annotator task limit is re-checked inside every
claim, so a stale verdict can never over-assign; a new ban or grant counts within
`TESSERA_ELIGIBILITY_CACHE_SECONDS`."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.models.jobs import Job
from qualification_tests.eligibility import Eligibility, Reason, explain_eligibility_for_jobs

MAX_ENTRIES = 50_000

_cache: dict[int, tuple[float, tuple[int, ...], dict[int, Eligibility]]] = {}
_lock = threading.Lock()


def for_jobs(
    session: Session, annotator_id: int, jobs: Sequence[Job], now: datetime, ttl: float = 0.0
) -> dict[int, Eligibility]:
    """The annotator's eligibility for each job, reused for `ttl` seconds."""
    key = tuple(job.id for job in jobs)
    tick = time.monotonic()
    if ttl > 0:
        with _lock:
            hit = _cache.get(annotator_id)
        if hit is not None and hit[1] == key and 0 <= tick - hit[0] < ttl:
            return hit[2]
    verdicts = explain_eligibility_for_jobs(session, annotator_id, jobs, now=now)
    if ttl > 0:
        with _lock:
            if len(_cache) >= MAX_ENTRIES:
                _cache.clear()
            _cache[annotator_id] = (tick, key, verdicts)
    return verdicts


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
