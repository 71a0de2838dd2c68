"""Background work of accounts (periodic ones are one line each in `workers.scheduler.PERIODIC`):

- `accounts.prune_limits` (every 10 minutes): deletes abuse-limit counters whose window and
  lockout are over (`throttle.prune`), so the table holds only keys seen recently.
"""

from __future__ import annotations

from typing import Final

from app.accounts import throttle
from app.core.background import JobContext, background_job
from app.core.clock import utcnow

PRUNE_LIMITS_JOB: Final = "accounts.prune_limits"


@background_job(PRUNE_LIMITS_JOB)
def prune_limits(ctx: JobContext) -> None:
    throttle.prune(ctx.session, ctx.settings, utcnow())
