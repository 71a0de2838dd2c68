"""What people see of the money, all derived from the ledger: an annotator's earnings and
statement, a client's balance and each job's spend, the admin's trial balance and accounts."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.csv_cells import spreadsheet_safe
from app.core.money import format_micros
from app.models.jobs import Job
from app.models.money import (
    AccountKind,
    EntryKind,
    JobBudget,
    JobEarnings,
    LedgerEntry,
    LedgerPosting,
    Payout,
    PayoutStatus,
)
from payouts import earnings, escrow, ledger
from payouts.pricing import SECONDS_PER_HOUR


@dataclass(frozen=True)
class JobPay:
    job_id: int
    title: str
    approved_assignments: int
    paid_seconds: int
    earned_micros: int
    topup_micros: int

    @property
    def effective_hourly_micros(self) -> int | None:
        if not self.paid_seconds:
            return None
        return (self.earned_micros + self.topup_micros) * SECONDS_PER_HOUR // self.paid_seconds


@dataclass(frozen=True)
class AnnotatorEarnings:
    currency: str
    pending_micros: int
    available_micros: int
    in_flight_micros: int
    paid_micros: int
    topup_micros: int
    jobs: list[JobPay] = field(default_factory=list)


def annotator_earnings(session: Session, annotator_id: int, currency: str) -> AnnotatorEarnings:
    keys = [
        ledger.annotator_pending(annotator_id, currency),
        ledger.annotator_available(annotator_id, currency),
        ledger.payouts_in_flight(annotator_id, currency),
    ]
    pending, available, in_flight = (ledger.balances(session, keys)[k] for k in keys)
    paid = session.scalar(
        select(func.coalesce(func.sum(Payout.amount_micros), 0)).where(
            Payout.annotator_id == annotator_id,
            Payout.status == PayoutStatus.paid,
            Payout.currency == currency,
        )
    )
    jobs = [
        JobPay(job_id, title, approved, seconds, earned, topup)
        for job_id, title, approved, seconds, earned, topup in session.execute(
            select(
                JobEarnings.job_id,
                Job.title,
                JobEarnings.approved_assignments,
                JobEarnings.paid_seconds,
                JobEarnings.earned_micros,
                JobEarnings.topup_micros,
            )
            .join(Job, Job.id == JobEarnings.job_id)
            .where(JobEarnings.annotator_id == annotator_id)
            .order_by(JobEarnings.job_id)
        )
    ]
    return AnnotatorEarnings(
        currency,
        pending,
        available,
        in_flight,
        int(paid or 0),
        sum(j.topup_micros for j in jobs),
        jobs,
    )


STATEMENT_COLUMNS = [
    "posted_at",
    "entry_id",
    "kind",
    "account",
    "amount",
    "amount_micros",
    "currency",
    "job_id",
    "assignment_id",
    "description",
]
ANNOTATOR_ACCOUNTS = (
    AccountKind.annotator_pending,
    AccountKind.annotator_available,
    AccountKind.payouts_in_flight,
)


def statement_csv(session: Session, annotator_id: int, currency: str) -> Iterator[str]:
    """Every posting on the annotator's accounts (pending, available, in flight), oldest first,
    as CSV lines, header first. Top-ups show as kind `topup`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(STATEMENT_COLUMNS)
    yield _drain(buffer)
    rows = session.execute(
        select(
            LedgerEntry.created_at,
            LedgerEntry.id,
            LedgerEntry.kind,
            LedgerPosting.account_kind,
            LedgerPosting.amount_micros,
            LedgerEntry.job_id,
            LedgerEntry.assignment_id,
            LedgerEntry.reason,
        )
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(
            LedgerPosting.account_kind.in_(ANNOTATOR_ACCOUNTS),
            LedgerPosting.owner_id == annotator_id,
            LedgerPosting.currency == currency,
        )
        .order_by(LedgerPosting.id)
        .execution_options(yield_per=1000)
    )
    for n, (at, entry_id, kind, account, amount, job_id, assignment_id, reason) in enumerate(rows):
        writer.writerow(
            [
                at.isoformat(),
                entry_id,
                kind.value,
                account.value.removeprefix("annotator_"),
                format_micros(amount),
                amount,
                currency,
                job_id or "",
                assignment_id or "",
                spreadsheet_safe(reason),
            ]
        )
        if n % 500 == 499:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


@dataclass(frozen=True)
class ClientBalance:
    currency: str
    available_micros: int
    escrow_micros: int  # across the client's jobs


def client_balance(session: Session, client_id: int, currency: str) -> ClientBalance:
    available = ledger.balance(session, ledger.client_available(client_id, currency))
    escrowed = session.scalar(
        select(func.coalesce(func.sum(LedgerPosting.amount_micros), 0)).where(
            LedgerPosting.account_kind == AccountKind.job_escrow,
            LedgerPosting.currency == currency,
            LedgerPosting.owner_id.in_(select(Job.id).where(Job.client_id == client_id)),
        )
    )
    return ClientBalance(currency, available, int(escrowed or 0))


@dataclass(frozen=True)
class JobSpend:
    job_id: int
    currency: str
    status: str
    slot_cost_micros: int
    reserved_slots: int
    escrow_micros: int  # what is left in escrow
    free_micros: int  # of which not needed for work still to come
    reserved_micros: int
    deposited_micros: int
    released_micros: int
    work_micros: int  # paid (or pending) to annotators for work, net of rejections
    topup_micros: int
    fee_micros: int
    closed: bool
    pause_reason: str | None
    owed_topup_micros: int  # fair-pay top-ups owed to annotators and not paid yet (before fee)


def job_spend(session: Session, job: Job) -> JobSpend | None:
    """Where the job's money went (None: it never reserved any)."""
    budget = session.get(JobBudget, job.id)
    if budget is None:
        return None
    cur = budget.currency
    moved: dict[tuple[EntryKind, AccountKind], int] = defaultdict(int)
    for kind, account, total in session.execute(
        select(LedgerEntry.kind, LedgerPosting.account_kind, func.sum(LedgerPosting.amount_micros))
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .where(LedgerEntry.job_id == job.id, LedgerPosting.currency == cur)
        .group_by(LedgerEntry.kind, LedgerPosting.account_kind)
    ):
        moved[(EntryKind(kind), AccountKind(account))] = int(total or 0)
    to_annotators = (AccountKind.annotator_pending, AccountKind.annotator_available)
    work = sum(
        moved[(kind, account)]
        for kind in (EntryKind.earning, EntryKind.reversal, EntryKind.overturn)
        for account in to_annotators
    )
    fees = sum(v for (_, account), v in moved.items() if account is AccountKind.platform_fees)
    escrow_balance = ledger.balance(session, ledger.job_escrow(job.id, cur))
    return JobSpend(
        job_id=job.id,
        currency=cur,
        status=job.status.value,
        slot_cost_micros=budget.slot_cost_micros,
        reserved_slots=budget.reserved_slots,
        escrow_micros=escrow_balance,
        free_micros=escrow.free_escrow(session, budget),
        reserved_micros=moved[(EntryKind.reservation, AccountKind.job_escrow)],
        deposited_micros=moved[(EntryKind.deposit, AccountKind.job_escrow)],
        released_micros=-moved[(EntryKind.release, AccountKind.job_escrow)],
        work_micros=work,
        topup_micros=moved[(EntryKind.topup, AccountKind.annotator_available)],
        fee_micros=fees,
        closed=budget.closed_at is not None,
        pause_reason=budget.pause_reason if job.status.value == "paused" else None,
        owed_topup_micros=earnings.owed_top_ups(session, job.id),
    )


def pay_of_assignments(
    session: Session, annotator_id: int, assignment_ids: list[int]
) -> dict[int, int]:
    """What each of these assignments of the annotator has earned them so far, net, from the
    ledger (submit, approval, reversal, overturn): assignments with nothing posted yet are
    absent. Payouts move money on, not back, so they do not count here."""
    if not assignment_ids:
        return {}
    mine = (AccountKind.annotator_pending, AccountKind.annotator_available)
    rows = session.execute(
        select(LedgerEntry.assignment_id, func.sum(LedgerPosting.amount_micros))
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .where(
            LedgerEntry.assignment_id.in_(assignment_ids),
            LedgerPosting.account_kind.in_(mine),
            LedgerPosting.owner_id == annotator_id,
        )
        .group_by(LedgerEntry.assignment_id)
    ).all()
    posted = {a: int(total) for a, total in rows if a is not None}
    entries = session.scalars(
        select(LedgerEntry.assignment_id).where(LedgerEntry.assignment_id.in_(assignment_ids))
    )
    # An entry without postings for this annotator (work that paid nothing) still counts as 0.
    return {a: posted.get(a, 0) for a in entries if a is not None}
