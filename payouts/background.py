"""Periodic work of money: the earnings poster, the payout batch, reconciliation of payouts left
unsettled, and the release of finished jobs' escrow. Thin actors: one service call, the runner
commits. (Sending a payout and processing a Stripe event are jobs of `payouts.payouts` and
`payouts.inbox`, the modules that enqueue them; importing this module registers them all.)"""

from __future__ import annotations

import logging
from datetime import timedelta

from app.core.background import JobContext, background_job
from payouts import audit, earnings, escrow, inbox, payouts
from payouts.providers.stripe import gateway_for

logger = logging.getLogger("tessera.payouts")

POST_EARNINGS_JOB = "payouts.post_earnings"
BATCH_JOB = "payouts.run_batch"
RECONCILE_JOB = "payouts.reconcile"
RELEASE_JOB = "payouts.release_escrow"
AUDIT_JOB = "payouts.audit"


@background_job(POST_EARNINGS_JOB, time_limit=timedelta(minutes=2))
def post_earnings(ctx: JobContext) -> None:
    """Write the earnings of work submitted since the last run to the ledger."""
    earnings.post_submitted(ctx.session)


@background_job(BATCH_JOB, time_limit=timedelta(minutes=30))
def run_payout_batch(ctx: JobContext) -> None:
    """The weekly payout batch."""
    payouts.run_batch(ctx.session)


@background_job(RECONCILE_JOB, time_limit=timedelta(minutes=5))
def reconcile_payouts(ctx: JobContext) -> None:
    """Send again every Stripe payout left unknown or pending too long (looked up first)."""
    if gateway_for(ctx.settings) is not None:
        payouts.reconcile(ctx.session)


@background_job(RELEASE_JOB, time_limit=timedelta(minutes=10))
def release_escrow(ctx: JobContext) -> None:
    """Release finished jobs' escrow that live assignments no longer need."""
    escrow.release_closed_budgets(ctx.session)


@background_job(AUDIT_JOB, time_limit=timedelta(minutes=30))
def audit_books(ctx: JobContext) -> None:
    """The daily audit of the books' business invariants: each breach is logged as an error
    (with its rows), for the operators' alerting; `GET /v1/admin/ledger/audit` shows the same."""
    report = audit.run_audit(ctx.session)
    for breach in report.breaches:
        logger.error(
            "ledger audit: %s broken by %d row(s): %s; first rows: %s",
            breach.invariant,
            breach.count,
            breach.detail,
            breach.rows[:10],
        )


REGISTERS = (inbox.process_job, payouts.send_payout_job)  # importing this module registers them
