"""Background work of money: sending payouts, processing Stripe events, and the periodic
payout batch, reconciliation and release of finished jobs' escrow. Thin actors: ids in, one
service call, the runner commits."""

from __future__ import annotations

from datetime import timedelta

from app.core.errors import ProviderUnavailable
from app.core.jobs import JobContext, background_job
from app.core.settings import PayoutsProvider, Settings
from payouts import escrow, inbox, payouts
from payouts.providers import stripe as stripe_provider
from payouts.providers.stripe import StripeGateway

BATCH_JOB = "payouts.run_batch"
RECONCILE_JOB = "payouts.reconcile"
RELEASE_JOB = "payouts.release_escrow"


def _gateway(settings: Settings) -> StripeGateway | None:
    if settings.payouts_provider is not PayoutsProvider.stripe:
        return None
    return stripe_provider.gateway(settings)


@background_job(payouts.SEND_JOB, time_limit=timedelta(minutes=5))
def send_payout(ctx: JobContext, payout_id: int) -> None:
    """Send (or find) one payout's transfer and record the outcome."""
    gateway = _gateway(ctx.settings)
    if gateway is None:
        raise ProviderUnavailable("Payouts are manual here: nothing is sent")
    payouts.send_payout(ctx.session, payout_id, gateway)


@background_job(inbox.PROCESS_JOB, time_limit=timedelta(minutes=5))
def process_stripe_event(ctx: JobContext, inbox_id: int) -> None:
    """Apply one stored Stripe event."""
    inbox.process(ctx.session, inbox_id, _gateway(ctx.settings))


@background_job(BATCH_JOB, time_limit=timedelta(minutes=30))
def run_payout_batch(ctx: JobContext) -> None:
    """The weekly payout batch."""
    payouts.run_batch(ctx.session)


@background_job(RECONCILE_JOB, time_limit=timedelta(minutes=5))
def reconcile_payouts(ctx: JobContext) -> None:
    """Send again every Stripe payout left unknown or pending too long (looked up first)."""
    if _gateway(ctx.settings) is not None:
        payouts.reconcile(ctx.session)


@background_job(RELEASE_JOB, time_limit=timedelta(minutes=10))
def release_escrow(ctx: JobContext) -> None:
    """Release finished jobs' escrow that live assignments no longer need."""
    escrow.release_closed_budgets(ctx.session)
