"""Money: the double-entry ledger, job budgets, pay summaries, client fundings, connected payout
accounts, payouts and the inbox of Stripe events.

Amounts are integer micro-units (1 unit = 1,000,000 micros) of a currency.

Postings name their account by its natural key (kind, owner id, currency) instead of a foreign
key to an accounts table: the annotator's submit posts its earnings in the same single write
statement as the submit itself (one `INSERT … SELECT FROM unnest(…)`), which leaves no room for a
get-or-create round trip per account. An account exists once something was posted to it; its
balance is the sum of its postings (a covering index makes that one index range scan).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedAtMixin, IdMixin, str_enum


class AccountKind(StrEnum):
    """What an account holds, and whose it is (`owner_id`)."""

    client_available = "client_available"  # a client's funds not yet committed (owner: client)
    job_escrow = "job_escrow"  # a job's committed budget (owner: job)
    annotator_pending = "annotator_pending"  # earned, awaiting approval (owner: annotator)
    annotator_available = "annotator_available"  # approved, not yet paid out (owner: annotator)
    payouts_in_flight = "payouts_in_flight"  # in a payout not yet settled (owner: annotator)
    platform_fees = "platform_fees"  # the platform's fees (owner: 0)
    external = "external"  # the world outside: card payments in, transfers out (owner: 0)


class EntryKind(StrEnum):
    funding = "funding"  # external -> client available (Stripe payment or admin credit)
    reservation = "reservation"  # client available -> job escrow (task slots)
    deposit = "deposit"  # client available -> job escrow (beyond the slots: top-ups)
    release = "release"  # job escrow -> client available (unspent)
    earning = "earning"  # job escrow -> annotator pending + platform fees (submit)
    approval = "approval"  # annotator pending -> annotator available
    reversal = "reversal"  # annotator pending + platform fees -> job escrow (rejection)
    overturn = "overturn"  # job escrow -> annotator available + platform fees (appeal won)
    topup = "topup"  # job escrow -> annotator available + platform fees (fair-pay floor)
    payout = "payout"  # annotator available -> payouts in flight
    payout_paid = "payout_paid"  # payouts in flight -> external
    payout_failed = "payout_failed"  # payouts in flight -> annotator available


class LedgerEntry(IdMixin, Base):
    """A balanced set of postings, written in the transaction of its cause. `cause` is unique
    (`submit:<assignment id>`, `payout:<payout id>`, …), so a retried cause cannot post twice."""

    __tablename__ = "ledger_entries"

    cause: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[EntryKind] = mapped_column(str_enum(EntryKind, "ledger_entry_kind"))
    currency: Mapped[str] = mapped_column(String(3))
    job_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("jobs.id"))
    assignment_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("assignments.id"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))  # None: system
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_ledger_entries_job_id_kind", "job_id", "kind"),)


class LedgerPosting(IdMixin, Base):
    """One leg of an entry: `amount_micros` into (positive) or out of (negative) an account."""

    __tablename__ = "ledger_postings"

    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_entries.id"), index=True)
    account_kind: Mapped[AccountKind] = mapped_column(str_enum(AccountKind, "ledger_account_kind"))
    owner_id: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    amount_micros: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        # An account's postings in order, and its balance, from the index alone.
        Index(
            "ix_ledger_postings_account",
            "account_kind",
            "owner_id",
            "currency",
            "id",
            "amount_micros",
        ),
        CheckConstraint("amount_micros <> 0", name="nonzero"),
    )


class JobBudget(Base):
    """What a job's escrow is for. Every task slot (tasks × overlap max) is reserved at
    `slot_cost_micros`, the most one assignment can cost (highest tier multiplier, gold bonus,
    hourly cap, plus the platform fee), so a submit can always be paid without a check.
    `free_micros` is escrow not tied to a slot (deposits, and what approved work left unspent of
    its slot): only that pays fair-pay top-ups and overturned rejections."""

    __tablename__ = "job_budgets"

    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    slot_cost_micros: Mapped[int] = mapped_column(BigInteger)
    reserved_slots: Mapped[int] = mapped_column(BigInteger, default=0)
    free_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    reservations: Mapped[int] = mapped_column(Integer, default=0)  # counters for entry causes
    releases: Mapped[int] = mapped_column(Integer, default=0)
    deposits: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[datetime | None]  # completed or cancelled: slots no longer reserved
    settled_at: Mapped[datetime | None]  # closed, nothing live, escrow released to the last micro
    paused_for_funds_at: Mapped[datetime | None]
    pause_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("free_micros >= 0", name="free"),
        CheckConstraint("reserved_slots >= 0 AND slot_cost_micros >= 0", name="slots"),
    )


class JobEarnings(Base):
    """An annotator's approved work on one job: what the fair-pay floor is measured on, and the
    annotator's per-job earnings view."""

    __tablename__ = "job_earnings"

    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"), primary_key=True)
    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), primary_key=True)
    approved_assignments: Mapped[int] = mapped_column(Integer, default=0)
    paid_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    topup_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_job_earnings_annotator_id", "annotator_id"),)


class PayoutsProviderName(StrEnum):
    manual = "manual"
    stripe = "stripe"


class FundingStatus(StrEnum):
    pending = "pending"  # checkout created, not paid yet
    credited = "credited"


class Funding(IdMixin, CreatedAtMixin, Base):
    """Money a client added: a Stripe Checkout payment, or an admin's manual credit."""

    __tablename__ = "fundings"

    client_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    provider: Mapped[PayoutsProviderName] = mapped_column(
        str_enum(PayoutsProviderName, "funding_provider")
    )
    status: Mapped[FundingStatus] = mapped_column(str_enum(FundingStatus, "funding_status"))
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    credited_micros: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    checkout_url: Mapped[str | None] = mapped_column(Text)
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    credited_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("amount_micros > 0", name="amount"),)


class PayoutAccount(CreatedAtMixin, Base):
    """An annotator's connected Stripe Express account and what Stripe last said about it."""

    __tablename__ = "payout_accounts"

    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), primary_key=True)
    stripe_account_id: Mapped[str] = mapped_column(String(255), unique=True)
    details_submitted: Mapped[bool] = mapped_column(Boolean, default=False)
    transfers_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime]


class PayoutPreference(Base):
    """An annotator's payout choices: their own threshold (batches pay them only once their
    available balance reaches it, never below the platform's minimum) and the destination the
    manual provider pays."""

    __tablename__ = "payout_preferences"

    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), primary_key=True)
    minimum_micros: Mapped[int | None] = mapped_column(BigInteger)
    # Where the manual provider pays them: a method and its details, encrypted with a key
    # derived from the service's secret key (`payouts.destinations`), and a masked copy to show.
    destination_method: Mapped[str | None] = mapped_column(String(40))
    destination_ciphertext: Mapped[str | None] = mapped_column(Text)
    destination_masked: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class PayoutStatus(StrEnum):
    pending = "pending"  # money in flight, transfer not (known to be) made
    held = "held"  # an admin stopped it; money stays in flight until released
    unknown = "unknown"  # the transfer call ended without an answer; reconciliation settles it
    paid = "paid"
    failed = "failed"  # money back in the annotator's available balance


class PayoutBatch(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "payout_batches"

    provider: Mapped[PayoutsProviderName] = mapped_column(
        str_enum(PayoutsProviderName, "payout_batch_provider")
    )
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    payouts: Mapped[int] = mapped_column(Integer, default=0)
    total_micros: Mapped[int] = mapped_column(BigInteger, default=0)


class Payout(IdMixin, CreatedAtMixin, Base):
    """One transfer of an annotator's available balance (whole cents). The transfer carries the
    idempotency key `payout-<id>` and the transfer group `payout-<id>`, by which reconciliation
    finds it."""

    __tablename__ = "payouts"

    batch_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("payout_batches.id"))
    annotator_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    provider: Mapped[PayoutsProviderName] = mapped_column(
        str_enum(PayoutsProviderName, "payout_provider")
    )
    status: Mapped[PayoutStatus] = mapped_column(str_enum(PayoutStatus, "payout_status"))
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    destination: Mapped[str | None] = mapped_column(String(255))
    transfer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_of_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("payouts.id"))
    last_attempt_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]
    settled_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    reference: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index("ix_payouts_status_id", "status", "id"),
        # One retry per failed payout, ever (issue 22, finding 6): the last line of defence.
        Index("uq_payouts_retry_of_id", "retry_of_id", unique=True),
        CheckConstraint("amount_micros > 0", name="amount"),
    )


class StripeEvent(IdMixin, Base):
    """A verified Stripe webhook event, stored once (unique on Stripe's event id) and processed
    by a background job."""

    __tablename__ = "stripe_events"

    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(120))
    stripe_created_at: Mapped[datetime]
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        Index(
            "ix_stripe_events_unprocessed",
            "id",
            postgresql_where=text("processed_at IS NULL"),
            sqlite_where=text("processed_at IS NULL"),
        ),
    )
