"""Every module that registers background jobs. Importing this module registers them all, so
worker processes know every job; a domain that adds jobs adds its module here (one line)."""

from __future__ import annotations

from types import ModuleType

import app.accounts.background  # accounts.prune_limits
import app.consensus.refits  # quality.refit_consensus, quality.refit_due
import app.core.background  # outbox.prune, workers.prune_heartbeats
import app.core.idempotency  # idempotency.prune
import app.jobs.background  # jobs.import
import app.jobs.completion  # jobs.complete_when_done, jobs.complete_finished
import app.jobs.results  # jobs.finalize_results
import app.quality.after_review  # quality.refresh_reviewed
import app.quality.background  # quality.auto_approve, quality.refresh, quality.refresh_all
import app.routing.background  # routing.sweep_leases
import app.webhooks.background  # webhooks.*: fan-out, deliveries, progress, sweep, prune
import payouts.background  # payouts.send, payouts.stripe_event, batches, reconciliation, release

JOB_MODULES: tuple[ModuleType, ...] = (
    app.accounts.background,
    app.consensus.refits,
    app.core.background,
    app.core.idempotency,
    app.jobs.background,
    app.jobs.completion,
    app.jobs.results,
    app.quality.after_review,
    app.quality.background,
    app.routing.background,
    app.webhooks.background,
    payouts.background,
)
