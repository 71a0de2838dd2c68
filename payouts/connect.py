"""Annotators' connected Stripe Express accounts: created on request, onboarded through an
account link, and their ability to receive transfers kept from Stripe's `account.updated`
events (see `inbox`). Payout batches pay only accounts that can receive transfers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.models.accounts import User
from app.models.money import PayoutAccount
from payouts.errors import ProviderUnavailable
from payouts.inbox import apply_account
from payouts.providers.stripe import StripeGateway


def _require(gateway: StripeGateway | None) -> StripeGateway:
    if gateway is None:
        raise ProviderUnavailable(
            "Payouts are settled by an administrator here (TESSERA_PAYOUTS_PROVIDER=manual); "
            "there is no account to connect"
        )
    return gateway


def account_of(session: Session, annotator_id: int) -> PayoutAccount | None:
    return session.scalar(select(PayoutAccount).where(PayoutAccount.annotator_id == annotator_id))


def start_onboarding(
    session: Session,
    gateway: StripeGateway | None,
    annotator: User,
    *,
    return_url: str,
    refresh_url: str,
) -> tuple[PayoutAccount, str]:
    """The annotator's Express account (created the first time) and a fresh onboarding link."""
    gateway = _require(gateway)
    row = session.scalar(
        select(PayoutAccount).where(PayoutAccount.annotator_id == annotator.id).with_for_update()
    )
    if row is None:
        created = gateway.create_express_account(annotator_id=annotator.id, email=annotator.email)
        now = utcnow()
        row = PayoutAccount(
            annotator_id=annotator.id,
            stripe_account_id=created.id,
            details_submitted=False,
            transfers_enabled=False,
            created_at=now,
            updated_at=now,
        )
        apply_account(row, created, now)
        session.add(row)
        session.flush()
    url = gateway.onboarding_link(
        row.stripe_account_id, return_url=return_url, refresh_url=refresh_url
    )
    return row, url


def refresh(
    session: Session, gateway: StripeGateway | None, annotator_id: int
) -> PayoutAccount | None:
    """Read the annotator's account afresh from Stripe (after they return from onboarding)."""
    gateway = _require(gateway)
    row = session.scalar(
        select(PayoutAccount).where(PayoutAccount.annotator_id == annotator_id).with_for_update()
    )
    if row is not None:
        apply_account(row, gateway.retrieve_account(row.stripe_account_id), utcnow())
        session.flush()
    return row
