"""Who the next payout batch pays and who waits, and why, without paying anyone: the admin's
preview of a batch, the annotator's `/earnings` (next payout date, amounts waiting) and the
batch itself share these decisions.

An annotator is paid their available balance rounded down to cents once it reaches their
minimum: the platform's `TESSERA_PAYOUT_MINIMUM_MICROS`, or the higher threshold they chose
(`PUT /v1/earnings/payout-threshold`). Money waits for one of these reasons:
- `under-minimum`: available, but below that minimum;
- `review-window`: pending, earned by work not yet approved (the client reviews it, or it is
  approved automatically `TESSERA_QUALITY_AUTO_APPROVE_DAYS` after its submit);
- `no-payout-account`: with Stripe, the annotator has no account that can receive transfers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import ValidationFailed
from app.core.money import floor_to_cents
from app.core.settings import PayoutsProvider, Settings
from app.models.jobs import Assignment, AssignmentStatus
from app.models.money import AccountKind, LedgerPosting, PayoutAccount, PayoutPreference

#: When the scheduler runs a batch (`workers.scheduler` uses this cron): Mondays 06:00 UTC.
BATCH_CRON: Final = "0 6 * * 1"
_BATCH_WEEKDAY, _BATCH_HOUR = 0, 6


class WaitReason(StrEnum):
    under_minimum = "under-minimum"
    review_window = "review-window"
    no_payout_account = "no-payout-account"


@dataclass(frozen=True)
class Waiting:
    reason: WaitReason
    amount_micros: int
    until: datetime | None = None  # review window: when the oldest pending work auto-approves


@dataclass(frozen=True)
class Plan:
    """One annotator in the next batch: what it pays them (0: nothing) and what waits."""

    annotator_id: int
    available_micros: int
    pending_micros: int
    minimum_micros: int
    amount_micros: int
    waiting: list[Waiting]


def next_batch_at(now: datetime) -> datetime:
    """When the scheduler's next batch runs after `now`."""
    day = now.replace(hour=_BATCH_HOUR, minute=0, second=0, microsecond=0)
    day += timedelta(days=(_BATCH_WEEKDAY - day.weekday()) % 7)
    return day if day > now else day + timedelta(days=7)


def minimum_for(settings: Settings, own_minimum: int | None) -> int:
    """The balance an annotator is paid from: the platform's minimum or their own, if higher."""
    return max(settings.payout_minimum_micros, own_minimum or 0)


def decide(
    annotator_id: int,
    available: int,
    pending: int,
    minimum: int,
    *,
    can_receive: bool,
    review_until: datetime | None,
) -> Plan:
    """The plan for one annotator from plain values (no session)."""
    waiting = []
    amount = floor_to_cents(max(available, 0))
    if amount < minimum:
        if available > 0:
            waiting.append(Waiting(WaitReason.under_minimum, available))
        amount = 0
    elif not can_receive:
        waiting.append(Waiting(WaitReason.no_payout_account, available))
        amount = 0
    if pending > 0:
        waiting.append(Waiting(WaitReason.review_window, pending, review_until))
    return Plan(annotator_id, available, pending, minimum, amount, waiting)


def own_minimums(session: Session, annotator_ids: list[int] | None = None) -> dict[int, int]:
    """The thresholds annotators chose (those who chose one)."""
    stmt = select(PayoutPreference.annotator_id, PayoutPreference.minimum_micros).where(
        PayoutPreference.minimum_micros.is_not(None)
    )
    if annotator_ids is not None:
        stmt = stmt.where(PayoutPreference.annotator_id.in_(annotator_ids))
    return {a: int(m) for a, m in session.execute(stmt) if m is not None}


def plan_batch(session: Session, settings: Settings) -> list[Plan]:
    """Every annotator with money available or pending, in id order, as a batch run now would
    treat them."""
    balances: dict[int, dict[AccountKind, int]] = {}
    kinds = (AccountKind.annotator_available, AccountKind.annotator_pending)
    for owner, kind, total in session.execute(
        select(
            LedgerPosting.owner_id,
            LedgerPosting.account_kind,
            func.sum(LedgerPosting.amount_micros),
        )
        .where(LedgerPosting.account_kind.in_(kinds), LedgerPosting.currency == settings.currency)
        .group_by(LedgerPosting.owner_id, LedgerPosting.account_kind)
    ):
        balances.setdefault(owner, {})[kind] = int(total)
    ids = sorted(a for a, b in balances.items() if any(v > 0 for v in b.values()))
    return _plans(session, settings, ids, balances)


def plan_for(
    session: Session, settings: Settings, annotator_id: int, available: int, pending: int
) -> Plan:
    """One annotator's plan, from balances the caller has read."""
    balances = {
        annotator_id: {
            AccountKind.annotator_available: available,
            AccountKind.annotator_pending: pending,
        }
    }
    [plan] = _plans(session, settings, [annotator_id], balances)
    return plan


def _plans(
    session: Session,
    settings: Settings,
    ids: list[int],
    balances: dict[int, dict[AccountKind, int]],
) -> list[Plan]:
    own = own_minimums(session, ids)
    ready = set(ids)
    if settings.payouts_provider is PayoutsProvider.stripe:
        ready = set(
            session.scalars(
                select(PayoutAccount.annotator_id).where(
                    PayoutAccount.annotator_id.in_(ids), PayoutAccount.transfers_enabled.is_(True)
                )
            )
        )
    oldest: dict[int, datetime | None] = dict(
        session.execute(
            select(Assignment.annotator_id, func.min(Assignment.submitted_at))
            .where(
                Assignment.annotator_id.in_(ids), Assignment.status == AssignmentStatus.submitted
            )
            .group_by(Assignment.annotator_id)
        ).all()
    )
    window = timedelta(days=settings.quality_auto_approve_days)
    return [
        decide(
            a,
            balances[a].get(AccountKind.annotator_available, 0),
            balances[a].get(AccountKind.annotator_pending, 0),
            minimum_for(settings, own.get(a)),
            can_receive=a in ready,
            review_until=_plus(oldest.get(a), window),
        )
        for a in ids
    ]


def _plus(at: datetime | None, delta: timedelta) -> datetime | None:
    return None if at is None else at + delta


def set_own_minimum(
    session: Session, settings: Settings, annotator_id: int, minimum: int | None, now: datetime
) -> PayoutPreference:
    """Set (or, with None, clear) the annotator's own payout threshold. 422 below the
    platform's minimum. Flushes, never commits."""
    if minimum is not None and minimum < settings.payout_minimum_micros:
        raise ValidationFailed(
            "A payout threshold cannot be below the platform's minimum",
            errors=[
                {
                    "pointer": "#/minimum_micros",
                    "detail": f"at least {settings.payout_minimum_micros}",
                }
            ],
        )
    row = session.get(PayoutPreference, annotator_id, with_for_update=True)
    if row is None:
        row = PayoutPreference(annotator_id=annotator_id)
        session.add(row)
    row.minimum_micros, row.updated_at = minimum, now
    session.flush()
    return row
