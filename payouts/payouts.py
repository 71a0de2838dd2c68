"""Payout batches, sending each payout exactly once, reconciliation, and admin settlement.

A batch (weekly from the scheduler, or on demand by an admin) creates one payout per annotator
whose available balance is at least their minimum (TESSERA_PAYOUT_MINIMUM_MICROS, or the higher
threshold they chose: `payout_plan`), for that balance rounded
down to whole cents (the remainder stays available), and moves it available → in flight, all
in one transaction. With the `stripe` provider only annotators whose connected account can
receive transfers are paid, and each payout is then sent by its own background job.

Sending (`send_payout`) holds the payout's row lock for the whole Stripe call, so two senders
never call Stripe for one payout at the same time. It first asks Stripe whether a transfer for
the payout exists (transfer group `payout-<id>`, payout id in its metadata): a sender that
crashed after Stripe accepted its transfer and before its commit left one behind, which is then
recorded instead of being made again. Only then does it create the transfer, with the
idempotency key `payout-<id>`. Outcomes: paid (transfer id stored; in flight → external),
failed (Stripe refused it; in flight → available, reason stored), unknown (no answer; the row
stays in flight and the periodic reconciliation sends it again, which looks it up first).

With the `manual` provider nothing is sent: an admin exports pending payouts as CSV, pays them
outside Tessera and marks each settled (or failed).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.core.background import JobContext, background_job, enqueue
from app.core.clock import utcnow
from app.core.csv_cells import spreadsheet_safe
from app.core.db import session_settings
from app.core.errors import NotFound
from app.core.money import floor_to_cents, format_micros
from app.core.pagination import PageParams, page_of, paginate
from app.core.settings import PayoutsProvider
from app.models.accounts import User
from app.models.money import (
    AccountKind,
    EntryKind,
    LedgerPosting,
    Payout,
    PayoutAccount,
    PayoutBatch,
    PayoutsProviderName,
    PayoutStatus,
)
from payouts import destinations, ledger, payout_plan
from payouts.errors import (
    PayoutAlreadyRetried,
    PayoutInProgress,
    PayoutWrongState,
    ProviderUnavailable,
)
from payouts.providers.stripe import StripeGateway, TransferOutcome, gateway_for

logger = logging.getLogger("tessera.payouts")

SEND_JOB = "payouts.send"
BATCH_LOCK_KEY = 0x7E55E7A_BA7C4  # "tessera batch": one payout batch at a time (PostgreSQL)
RECONCILE_AFTER = timedelta(minutes=15)  # a pending payout older than this lost its send job
UNSETTLED = (PayoutStatus.pending, PayoutStatus.unknown)


@dataclass(frozen=True)
class BatchResult:
    batch: PayoutBatch | None  # None: nobody had enough to be paid
    payouts: list[Payout]


def run_batch(session: Session, *, actor_id: int | None = None) -> BatchResult:
    """Create a payout for every annotator with at least the minimum available (rounded down to
    cents) and move it into flight; with Stripe, enqueue each payout's send. Batches are
    serialised, so two at once cannot pay the same balance twice."""
    settings = session_settings(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BATCH_LOCK_KEY})
    provider = PayoutsProviderName(settings.payouts_provider.value)
    currency = settings.currency
    candidates = _balances_at_least(session, currency, settings.payout_minimum_micros)
    destinations: dict[int, str | None] = dict.fromkeys(candidates)
    if provider is PayoutsProviderName.stripe:
        ready = dict(
            session.execute(
                select(PayoutAccount.annotator_id, PayoutAccount.stripe_account_id).where(
                    PayoutAccount.annotator_id.in_(candidates),
                    PayoutAccount.transfers_enabled.is_(True),
                )
            ).all()
        )
        destinations = {a: ready[a] for a in candidates if a in ready}
    if not destinations:
        return BatchResult(None, [])
    keys = [ledger.annotator_available(a, currency) for a in sorted(destinations)]
    ledger.lock_accounts(session, keys)
    balances = ledger.balances(session, keys)  # again, under the locks
    now = utcnow()
    batch = PayoutBatch(provider=provider, created_by_id=actor_id, payouts=0, total_micros=0)
    session.add(batch)
    session.flush()
    own = payout_plan.own_minimums(session, list(destinations))
    made = []
    for key in keys:
        amount = floor_to_cents(balances[key])
        if amount < payout_plan.minimum_for(settings, own.get(key.owner_id)):
            continue
        payout = _new_payout(
            session, key.owner_id, amount, currency, provider, destinations[key.owner_id], now
        )
        payout.batch_id = batch.id
        made.append(payout)
    batch.payouts = len(made)
    batch.total_micros = sum(p.amount_micros for p in made)
    session.flush()
    return BatchResult(batch, made)


def _balances_at_least(session: Session, currency: str, minimum: int) -> list[int]:
    total = func.sum(LedgerPosting.amount_micros)
    return list(
        session.scalars(
            select(LedgerPosting.owner_id)
            .where(
                LedgerPosting.account_kind == AccountKind.annotator_available,
                LedgerPosting.currency == currency,
            )
            .group_by(LedgerPosting.owner_id)
            .having(total >= minimum)
            .order_by(LedgerPosting.owner_id)
        )
    )


def _new_payout(
    session: Session,
    annotator_id: int,
    amount: int,
    currency: str,
    provider: PayoutsProviderName,
    destination: str | None,
    now: datetime,
    *,
    retry_of: int | None = None,
    actor_id: int | None = None,
) -> Payout:
    payout = Payout(
        annotator_id=annotator_id,
        provider=provider,
        status=PayoutStatus.pending,
        amount_micros=amount,
        currency=currency,
        destination=destination,
        attempts=0,
        retry_of_id=retry_of,
        created_at=now,
    )
    session.add(payout)
    session.flush()
    ledger.post_entry(
        session,
        ledger.transfer(
            f"payout:{payout.id}",
            EntryKind.payout,
            ledger.annotator_available(annotator_id, currency),
            [(ledger.payouts_in_flight(annotator_id, currency), amount)],
            f"payout {payout.id}" + (f" (retry of {retry_of})" if retry_of else ""),
            actor_id=actor_id,
        ),
        now,
    )
    if provider is PayoutsProviderName.stripe:
        enqueue(session, SEND_JOB, payout.id)
    return payout


# --- sending and reconciling (Stripe) ----------------------------------------------------------


def send_payout(session: Session, payout_id: int, gateway: StripeGateway) -> PayoutStatus | None:
    """Settle one Stripe payout: find its transfer if one was made, else make it; record the
    outcome. Holds the payout's row lock throughout; returns the payout's status, or None when
    another transaction holds it (that one settles it)."""
    payout = _locked(session, payout_id, wait=False)
    if payout is None:
        return None
    if payout.status not in UNSETTLED or payout.provider is not PayoutsProviderName.stripe:
        return payout.status
    now = utcnow()
    try:
        outcome = gateway.find_transfer(payout.id)
    except Exception as exc:  # Stripe cannot be asked: try again later (the row stays)
        logger.warning("payout %s: cannot look up its transfer: %s", payout.id, exc)
        outcome = TransferOutcome("unknown", reason=f"lookup failed: {exc}"[:500])
        return _record(session, payout, outcome, now)
    if outcome is None:
        if payout.destination is None:
            outcome = TransferOutcome("failed", reason="no connected account to pay into")
        else:
            outcome = gateway.send_transfer(
                payout_id=payout.id,
                annotator_id=payout.annotator_id,
                destination=payout.destination,
                amount_micros=payout.amount_micros,
            )
        payout.attempts += 1
        payout.last_attempt_at = now
    return _record(session, payout, outcome, now)


@background_job(SEND_JOB, time_limit=timedelta(minutes=5))
def send_payout_job(ctx: JobContext, payout_id: int) -> None:
    """The job that sends (or finds) one payout's transfer."""
    gateway = gateway_for(ctx.settings)
    if gateway is None:
        raise ProviderUnavailable("Payouts are manual here: nothing is sent")
    send_payout(ctx.session, payout_id, gateway)


def _record(
    session: Session, payout: Payout, outcome: TransferOutcome, now: datetime
) -> PayoutStatus:
    if outcome.status == "paid":
        if outcome.amount_micros not in (None, payout.amount_micros):
            logger.error(
                "payout %s: Stripe transfer %s is for %s, the payout for %s",
                payout.id,
                outcome.transfer_id,
                outcome.amount_micros,
                payout.amount_micros,
            )
        _mark_paid(session, payout, outcome.transfer_id, None, None, now)
    elif outcome.status == "failed":
        _mark_failed(session, payout, outcome.reason or "refused", None, now)
    else:
        payout.status = PayoutStatus.unknown
        payout.failure_reason = outcome.reason
    session.flush()
    return payout.status


def _mark_paid(
    session: Session,
    payout: Payout,
    transfer_id: str | None,
    reference: str | None,
    actor_id: int | None,
    now: datetime,
) -> None:
    ledger.post_entry(
        session,
        ledger.transfer(
            f"payout-paid:{payout.id}",
            EntryKind.payout_paid,
            ledger.payouts_in_flight(payout.annotator_id, payout.currency),
            [(ledger.external(payout.currency), payout.amount_micros)],
            f"payout {payout.id} paid"
            + (f" ({transfer_id or reference})" if transfer_id or reference else ""),
            actor_id=actor_id,
        ),
        now,
    )
    payout.status = PayoutStatus.paid
    payout.transfer_id = transfer_id
    payout.reference = reference
    payout.failure_reason = None
    payout.settled_at = now
    payout.settled_by_id = actor_id


def _mark_failed(
    session: Session, payout: Payout, reason: str, actor_id: int | None, now: datetime
) -> None:
    ledger.post_entry(
        session,
        ledger.transfer(
            f"payout-failed:{payout.id}",
            EntryKind.payout_failed,
            ledger.payouts_in_flight(payout.annotator_id, payout.currency),
            [
                (
                    ledger.annotator_available(payout.annotator_id, payout.currency),
                    payout.amount_micros,
                )
            ],
            f"payout {payout.id} failed: {reason}",
            actor_id=actor_id,
        ),
        now,
    )
    payout.status = PayoutStatus.failed
    payout.failure_reason = reason
    payout.settled_at = now
    payout.settled_by_id = actor_id


def reconcile(session: Session, *, older_than: timedelta = RECONCILE_AFTER) -> list[int]:
    """Enqueue a send for every Stripe payout left unsettled: unknown outcomes, and pending
    payouts older than `older_than` (their send job was lost). Sending looks the transfer up
    first, so this never pays twice. Returns the payout ids."""
    cutoff = utcnow() - older_than
    ids = list(
        session.scalars(
            select(Payout.id)
            .where(
                Payout.provider == PayoutsProviderName.stripe,
                or_(
                    Payout.status == PayoutStatus.unknown,
                    (Payout.status == PayoutStatus.pending) & (Payout.created_at <= cutoff),
                ),
            )
            .order_by(Payout.id)
        )
    )
    for payout_id in ids:
        enqueue(session, SEND_JOB, payout_id)
    return ids


def _locked(session: Session, payout_id: int, *, wait: bool) -> Payout | None:
    """The payout, row-locked (None if another transaction holds it and `wait` is False)."""
    stmt = select(Payout).where(Payout.id == payout_id)
    stmt = stmt.with_for_update() if wait else stmt.with_for_update(skip_locked=True)
    payout = session.scalar(stmt)
    if payout is None and not wait and session.get(Payout, payout_id) is None:
        raise NotFound("No such payout")
    return payout


# --- admin actions --------------------------------------------------------------------------------


def _for_action(session: Session, payout_id: int, allowed: tuple[PayoutStatus, ...]) -> Payout:
    """The payout locked for an admin action; 409 while a sender holds it, or when its status
    is not one the action applies to."""
    try:
        payout = session.scalar(
            select(Payout).where(Payout.id == payout_id).with_for_update(nowait=True)
        )
    except OperationalError:
        raise PayoutInProgress(f"Payout {payout_id} is being sent; try again shortly") from None
    if payout is None:
        raise NotFound("No such payout")
    if payout.status not in allowed:
        raise PayoutWrongState(
            f"Payout {payout_id} is {payout.status.value}; this needs "
            + " or ".join(s.value for s in allowed),
            status=payout.status.value,
        )
    return payout


def hold(session: Session, payout_id: int, *, actor_id: int, reason: str) -> Payout:
    """Stop a pending payout from being sent (its money stays in flight)."""
    payout = _for_action(session, payout_id, (PayoutStatus.pending,))
    payout.status = PayoutStatus.held
    payout.failure_reason = f"held: {reason}"
    payout.settled_by_id = actor_id
    session.flush()
    return payout


def release_hold(session: Session, payout_id: int, *, actor_id: int) -> Payout:
    """Let a held payout go: pending again, and sent (Stripe)."""
    payout = _for_action(session, payout_id, (PayoutStatus.held,))
    payout.status = PayoutStatus.pending
    payout.failure_reason = None
    payout.settled_by_id = actor_id
    if payout.provider is PayoutsProviderName.stripe:
        enqueue(session, SEND_JOB, payout.id)
    session.flush()
    return payout


def retry(session: Session, payout_id: int, *, actor_id: int) -> Payout:
    """Pay a failed payout again as a new payout (new id, new idempotency key) for the same
    amount, from the annotator's available balance (where the failure put it back). Once per
    failed payout: 409 `payout-already-retried` the second time (a failed retry is retried
    itself)."""
    failed = _for_action(session, payout_id, (PayoutStatus.failed,))
    # The failed payout's lock serialises retries; a unique index on `retry_of_id` backs it.
    retried = session.scalar(select(Payout.id).where(Payout.retry_of_id == failed.id))
    if retried is not None:
        raise PayoutAlreadyRetried(
            f"Payout {payout_id} was retried already as payout {retried}", retry_id=retried
        )
    settings = session_settings(session)
    destination = None
    if failed.provider is PayoutsProviderName.stripe:
        destination = session.scalar(
            select(PayoutAccount.stripe_account_id).where(
                PayoutAccount.annotator_id == failed.annotator_id
            )
        )
    if PayoutsProviderName(settings.payouts_provider.value) is not failed.provider:
        raise ProviderUnavailable(
            f"Payout {payout_id} went through {failed.provider.value}; this installation now "
            f"pays through {settings.payouts_provider.value}: the next batch pays the balance"
        )
    return _new_payout(
        session,
        failed.annotator_id,
        failed.amount_micros,
        failed.currency,
        failed.provider,
        destination,
        utcnow(),
        retry_of=failed.id,
        actor_id=actor_id,
    )


def settle_manually(session: Session, payout_id: int, *, actor_id: int, reference: str) -> Payout:
    """Mark a manual payout paid (the admin paid it outside Tessera; `reference` says how)."""
    payout = _for_action(session, payout_id, (PayoutStatus.pending, PayoutStatus.held))
    _require_manual(payout)
    _mark_paid(session, payout, None, reference, actor_id, utcnow())
    session.flush()
    return payout


def fail_manually(session: Session, payout_id: int, *, actor_id: int, reason: str) -> Payout:
    """Mark a manual payout failed: its money goes back to the annotator's available balance."""
    payout = _for_action(session, payout_id, (PayoutStatus.pending, PayoutStatus.held))
    _require_manual(payout)
    _mark_failed(session, payout, reason, actor_id, utcnow())
    session.flush()
    return payout


def _require_manual(payout: Payout) -> None:
    if payout.provider is not PayoutsProviderName.manual:
        raise ProviderUnavailable(
            f"Payout {payout.id} goes through Stripe: it is settled by its transfer, not by hand"
        )


# --- reading ----------------------------------------------------------------------------------


def list_payouts(
    session: Session,
    params: PageParams,
    *,
    annotator_id: int | None = None,
    status: PayoutStatus | None = None,
) -> tuple[list[Payout], int | None]:
    stmt = select(Payout)
    if annotator_id is not None:
        stmt = stmt.where(Payout.annotator_id == annotator_id)
    if status is not None:
        stmt = stmt.where(Payout.status == status)
    rows = list(session.scalars(paginate(stmt, Payout.id, params)))
    return page_of(rows, params, [r.id for r in rows])


CSV_COLUMNS = [
    "payout_id",
    "annotator_id",
    "email",
    "display_name",
    "amount",
    "amount_micros",
    "currency",
    "status",
    "created_at",
    "destination_method",
    "destination_details",
]


def export_manual_csv(session: Session) -> Iterator[str]:
    """Pending and held manual payouts as CSV lines (header first), oldest first, for an admin
    to pay by hand and then mark settled."""
    if session_settings(session).payouts_provider is not PayoutsProvider.manual:
        raise ProviderUnavailable("Payouts go through Stripe here; there is nothing to export")
    rows = session.execute(
        select(Payout, User.email, User.display_name)
        .join(User, User.id == Payout.annotator_id)
        .where(
            Payout.provider == PayoutsProviderName.manual,
            Payout.status.in_([PayoutStatus.pending, PayoutStatus.held]),
        )
        .order_by(Payout.id)
    ).all()
    settings = session_settings(session)
    where = destinations.full_destinations(
        session, settings, sorted({payout.annotator_id for payout, _, _ in rows})
    )

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for payout, email, name in rows:
            writer.writerow(
                [
                    payout.id,
                    payout.annotator_id,
                    spreadsheet_safe(email),
                    spreadsheet_safe(name),
                    format_micros(payout.amount_micros),
                    payout.amount_micros,
                    payout.currency,
                    payout.status.value,
                    payout.created_at.isoformat(),
                    *(spreadsheet_safe(v) for v in where.get(payout.annotator_id, ("", ""))),
                ]
            )
        yield buffer.getvalue()

    return lines()
