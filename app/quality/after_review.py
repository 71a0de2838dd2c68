"""Reviews count at once: an approval or rejection queues a refresh of the reviewed annotators'
figures, reputation and tier (then the rules), the same code the periodic `quality.refresh`
runs, for just those annotators. It runs after the review commits, in the background, so the
review request stays short and the hot path (claim, submit) never waits on it; the periodic
refresh remains the safety net."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from sqlalchemy.orm import Session

from app.core.background import JobContext, background_job, enqueue
from app.core.clock import utcnow
from app.quality import enforcement, tracking

REFRESH_REVIEWED_JOB: Final = "quality.refresh_reviewed"
#: Annotators per queued refresh (an auto-approval run may touch many).
CHUNK: Final = 100


@background_job(REFRESH_REVIEWED_JOB)
def refresh_reviewed(ctx: JobContext, *annotator_ids: int) -> None:
    """Recompute these annotators' figures, reputation and tier now, and apply the rules."""
    now = utcnow()
    refreshed = tracking.refresh_annotators(ctx.session, ctx.settings, list(annotator_ids), now)
    enforcement.enforce(ctx.session, ctx.settings, refreshed, now)


def refresh_soon(session: Session, annotator_ids: Iterable[int]) -> None:
    """Queue the refresh of these annotators in the caller's transaction (nothing is queued if
    it rolls back). Flushes, never commits."""
    ids = sorted(set(annotator_ids))
    for start in range(0, len(ids), CHUNK):
        enqueue(session, REFRESH_REVIEWED_JOB, *ids[start : start + CHUNK])
