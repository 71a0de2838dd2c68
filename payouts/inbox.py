"""Stripe's webhook events: verified, stored once, processed by a background job.

The endpoint only verifies the signature (with the SDK, in `providers.stripe`) and stores the
event in `stripe_events`, unique on Stripe's event id, enqueueing its processing in the same
transaction; Stripe gets its 200 at once and a redelivered event is stored once. Processing is
idempotent and does not depend on the order events arrive in:

- `checkout.session.completed` (when paid), `checkout.session.async_payment_succeeded` and
  `payment_intent.succeeded` credit the funding named in their metadata; the ledger entry's
  cause is the funding, so the second of them changes nothing.
- `account.updated` reads the connected account afresh from Stripe and stores what it says
  now, so an older event arriving late cannot undo a newer state.
- Any other type is stored and marked ignored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.core.background import JobContext, background_job, enqueue
from app.core.clock import utcnow
from app.core.money import MICROS_PER_CENT
from app.models.money import PayoutAccount, StripeEvent
from payouts import funding
from payouts.providers.stripe import StripeGateway, VerifiedEvent, gateway_for

PROCESS_JOB = "payouts.stripe_event"


def receive(session: Session, event: VerifiedEvent) -> tuple[int | None, bool]:
    """Store a verified event and enqueue its processing; returns (inbox id, whether it is
    new). A duplicate delivery stores nothing and enqueues nothing."""
    now = utcnow()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    inbox_id = session.scalar(
        insert(StripeEvent)
        .values(
            event_id=event.id,
            type=event.type[:120],
            stripe_created_at=event.created,
            livemode=event.livemode,
            payload=event.payload,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(StripeEvent.id)
    )
    if inbox_id is None:
        existing = session.scalar(select(StripeEvent.id).where(StripeEvent.event_id == event.id))
        return existing, False
    enqueue(session, PROCESS_JOB, int(inbox_id))
    return int(inbox_id), True


@background_job(PROCESS_JOB, time_limit=timedelta(minutes=5))
def process_job(ctx: JobContext, inbox_id: int) -> None:
    """The job that applies one stored event."""
    process(ctx.session, inbox_id, gateway_for(ctx.settings))


def process(session: Session, inbox_id: int, gateway: StripeGateway | None) -> str | None:
    """Apply one stored event (once); returns its outcome (None: already processed)."""
    row = session.scalar(select(StripeEvent).where(StripeEvent.id == inbox_id).with_for_update())
    if row is None or row.processed_at is not None:
        return None
    handler = HANDLERS.get(row.type)
    outcome = (
        handler(session, _object(row.payload), gateway) if handler else "ignored: unhandled type"
    )
    row.processed_at = utcnow()
    row.outcome = outcome[:500]
    session.flush()
    return outcome


def _object(payload: dict[str, Any]) -> dict[str, Any]:
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def _funding_id(obj: dict[str, Any]) -> int | None:
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    raw = (metadata or {}).get("funding_id") or obj.get("client_reference_id")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _checkout_paid(session: Session, obj: dict[str, Any], _: StripeGateway | None) -> str:
    if obj.get("payment_status") != "paid":
        return f"waiting: payment status {obj.get('payment_status')}"
    return funding.credit_paid_checkout(
        session,
        funding_id=_funding_id(obj),
        checkout_session_id=obj.get("id"),
        paid_micros=int(obj.get("amount_total") or 0) * MICROS_PER_CENT,
        payment_intent_id=_string(obj.get("payment_intent")),
        currency=str(obj.get("currency") or ""),
    )


def _async_payment_succeeded(session: Session, obj: dict[str, Any], g: StripeGateway | None) -> str:
    return _checkout_paid(session, {**obj, "payment_status": "paid"}, g)


def _payment_intent_succeeded(
    session: Session, obj: dict[str, Any], _: StripeGateway | None
) -> str:
    funding_id = _funding_id(obj)
    if funding_id is None:
        return "ignored: not a Tessera funding"
    return funding.credit_paid_checkout(
        session,
        funding_id=funding_id,
        checkout_session_id=None,
        paid_micros=int(obj.get("amount_received") or 0) * MICROS_PER_CENT,
        payment_intent_id=_string(obj.get("id")),
        currency=str(obj.get("currency") or ""),
    )


def _account_updated(session: Session, obj: dict[str, Any], gateway: StripeGateway | None) -> str:
    account_id = _string(obj.get("id"))
    row = session.scalar(
        select(PayoutAccount).where(PayoutAccount.stripe_account_id == account_id).with_for_update()
    )
    if row is None:
        return "ignored: not a connected account of ours"
    if gateway is None:
        return "ignored: the stripe provider is not configured"
    apply_account(row, gateway.retrieve_account(row.stripe_account_id), utcnow())
    return f"account {row.stripe_account_id}: transfers " + (
        "enabled" if row.transfers_enabled else f"disabled ({row.disabled_reason or 'onboarding'})"
    )


def apply_account(row: PayoutAccount, account: Any, now: datetime) -> None:
    """Store what Stripe says about a connected account now."""
    row.details_submitted = account.details_submitted
    row.transfers_enabled = account.transfers_enabled
    row.disabled_reason = account.disabled_reason
    row.updated_at = now


def _string(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


HANDLERS = {
    "checkout.session.completed": _checkout_paid,
    "checkout.session.async_payment_succeeded": _async_payment_succeeded,
    "payment_intent.succeeded": _payment_intent_succeeded,
    "account.updated": _account_updated,
}
