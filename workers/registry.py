"""Every module that registers background jobs. Importing this module registers them all, so
worker processes know every job; a domain that adds jobs adds its module here (one line)."""

from __future__ import annotations

from types import ModuleType

import app.core.jobs  # outbox.prune, workers.prune_heartbeats
import app.jobs.background  # jobs.import
import app.routing.background  # routing.sweep_leases
import payouts.background  # payouts.send, payouts.stripe_event, batches, reconciliation, release

JOB_MODULES: tuple[ModuleType, ...] = (
    app.core.jobs,
    app.jobs.background,
    app.routing.background,
    payouts.background,
)
