"""Clients' money coming in: a Stripe Checkout payment (provider `stripe`), credited only when
Stripe's verified webhook says it was paid, or an administrator's manual credit with a reason
(provider `manual`, or any installation for corrections). Each credit is one ledger entry
`funding:<funding id>`, external → client available, so a payment reported twice (the checkout
session and its payment intent both say so) is credited once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db import session_settings
from app.core.errors import NotFound, ValidationFailed
from app.core.money import MICROS_PER_CENT, format_micros
from app.core.pagination import PageParams, page_of, paginate
from app.core.settings import PayoutsProvider
from app.models.accounts import Role, User
from app.models.money import EntryKind, Funding, FundingStatus, PayoutsProviderName
from payouts import ledger
from payouts.errors import ProviderUnavailable
from payouts.providers.stripe import StripeGateway

MIN_CHECKOUT_MICROS = 50 * MICROS_PER_CENT  # Stripe's smallest card charge in usd


def _client(session: Session, client_id: int) -> User:
    user = session.get(User, client_id)
    if user is None or user.role is not Role.client:
        raise NotFound("No such client")
    return user


def credit_manually(
    session: Session, client_id: int, amount_micros: int, *, actor_id: int | None, reason: str
) -> Funding:
    """Credit a client's available balance by hand (an admin, with a reason; `actor_id` None is
    the system, e.g. demo content). 404 for anyone not a client."""
    if amount_micros <= 0:
        raise ValidationFailed(
            "Credit a positive amount",
            errors=[{"pointer": "#/amount_micros", "detail": "must be positive"}],
        )
    _client(session, client_id)
    now = utcnow()
    currency = session_settings(session).currency
    funding = Funding(
        client_id=client_id,
        provider=PayoutsProviderName.manual,
        status=FundingStatus.credited,
        amount_micros=amount_micros,
        credited_micros=amount_micros,
        currency=currency,
        reason=reason,
        created_by_id=actor_id,
        credited_at=now,
        created_at=now,
    )
    session.add(funding)
    session.flush()
    _post_credit(session, funding, amount_micros, actor_id, f"manual credit: {reason}", now)
    return funding


def start_checkout(
    session: Session,
    gateway: StripeGateway | None,
    client_id: int,
    amount_micros: int,
    *,
    success_url: str,
    cancel_url: str,
) -> Funding:
    """Open a Stripe Checkout Session for the client to add `amount_micros` (whole cents) to
    their balance. Nothing is credited until Stripe's webhook confirms the payment."""
    if gateway is None:
        raise ProviderUnavailable(
            "This installation takes no card payments (TESSERA_PAYOUTS_PROVIDER is not stripe); "
            "an administrator credits balances by hand"
        )
    problems = []
    if amount_micros % MICROS_PER_CENT:
        problems.append("must be whole cents (a multiple of 10000 micros)")
    if amount_micros < MIN_CHECKOUT_MICROS:
        problems.append(f"must be at least {format_micros(MIN_CHECKOUT_MICROS)}")
    if problems:
        raise ValidationFailed(
            "Card payments are in whole cents, 0.50 or more",
            errors=[{"pointer": "#/amount_micros", "detail": p} for p in problems],
        )
    _client(session, client_id)
    funding = Funding(
        client_id=client_id,
        provider=PayoutsProviderName.stripe,
        status=FundingStatus.pending,
        amount_micros=amount_micros,
        currency=gateway.currency,
        created_at=utcnow(),
    )
    session.add(funding)
    session.flush()
    checkout = gateway.create_checkout_session(
        funding_id=funding.id,
        client_id=client_id,
        amount_micros=amount_micros,
        success_url=success_url,
        cancel_url=cancel_url,
    )
    funding.checkout_session_id = checkout.id
    funding.checkout_url = checkout.url
    session.flush()
    return funding


def credit_paid_checkout(
    session: Session,
    *,
    funding_id: int | None,
    checkout_session_id: str | None,
    paid_micros: int,
    payment_intent_id: str | None,
    currency: str,
) -> str:
    """Credit a funding Stripe reports paid (from a verified webhook event); returns what
    happened, for the event's record. Crediting twice changes nothing."""
    stmt = select(Funding).with_for_update()
    if funding_id is not None:
        stmt = stmt.where(Funding.id == funding_id)
    elif checkout_session_id is not None:
        stmt = stmt.where(Funding.checkout_session_id == checkout_session_id)
    else:
        return "ignored: no funding reference"
    funding = session.scalar(stmt)
    if funding is None or funding.provider is not PayoutsProviderName.stripe:
        return "ignored: no such funding"
    if funding.status is FundingStatus.credited:
        return f"already credited (funding {funding.id})"
    if currency.lower() != funding.currency:
        return f"ignored: paid in {currency}, funding is in {funding.currency}"
    now = utcnow()
    funding.status = FundingStatus.credited
    funding.credited_micros = paid_micros
    funding.credited_at = now
    funding.payment_intent_id = payment_intent_id or funding.payment_intent_id
    _post_credit(session, funding, paid_micros, None, "card payment (Stripe Checkout)", now)
    return f"credited {format_micros(paid_micros)} {funding.currency} (funding {funding.id})"


def _post_credit(
    session: Session,
    funding: Funding,
    amount_micros: int,
    actor_id: int | None,
    reason: str,
    now: datetime,
) -> None:
    ledger.post_entry(
        session,
        ledger.transfer(
            f"funding:{funding.id}",
            EntryKind.funding,
            ledger.external(funding.currency),
            [(ledger.client_available(funding.client_id, funding.currency), amount_micros)],
            reason,
            actor_id=actor_id,
        ),
        now,
    )
    session.flush()


def list_fundings(
    session: Session, client_id: int | None, params: PageParams
) -> tuple[list[Funding], int | None]:
    """Fundings, newest last (one client's, or everyone's for `client_id` None)."""
    stmt = select(Funding)
    if client_id is not None:
        stmt = stmt.where(Funding.client_id == client_id)
    rows = list(session.scalars(paginate(stmt, Funding.id, params)))
    return page_of(rows, params, [r.id for r in rows])


def provider_is_stripe(session: Session) -> bool:
    return session_settings(session).payouts_provider is PayoutsProvider.stripe
