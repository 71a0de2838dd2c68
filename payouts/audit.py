"""The books proving themselves: business invariants checked over the ledger and the rows it
pays for (issue 22). A balanced ledger is not a correct one: double pay balances too.

Each check reads the money tables and the rows behind them and reports every row that breaks
its invariant (the first `ROWS_PER_BREACH` of them, with the total count):

- `assignment_earning`: an assignment's net earning (what its entries moved into its annotator's
  pending and available balances) is its price (what its submit entry paid) when it is approved
  or submitted, and 0 otherwise (rejected, or never submitted) — never more.
- `job_escrow`: a job's escrow = reserved (its budget's slots at the slot cost) + deposited −
  spent (on work, top-ups and fees) − released; never negative; a running job's free escrow is
  within its escrow.
- `client_money`: credited (the client's credited fundings) − available − escrow (of all its
  jobs) − spent (by its jobs) = 0.
- `payout`: every payout has its `payout:<id>` entry for its amount; a paid payout has its
  `payout-paid` entry and no `payout-failed` one, a failed one the reverse, an unsettled one
  neither; each annotator's in-flight balance is what their unsettled payouts hold; no ledger
  payout without its payout row.
- `fair_pay_topup`: the top-ups the ledger paid an annotator on a job are those recorded, never
  more than the floor asks for the measured (paid) active time of their approved work, and that
  time is the sum over the approved assignments.

Run by `GET /v1/admin/ledger/audit`, daily by the scheduler (`payouts.audit`, which logs any
breach as an error), and by the crash and race tests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db import session_settings
from app.models.jobs import Assignment, AssignmentStatus, Job
from app.models.money import (
    AccountKind,
    EntryKind,
    Funding,
    FundingStatus,
    JobBudget,
    JobEarnings,
    LedgerEntry,
    LedgerPosting,
    Payout,
    PayoutStatus,
)
from payouts import escrow, pricing

ROWS_PER_BREACH = 100
ANNOTATOR_ACCOUNTS = (AccountKind.annotator_pending, AccountKind.annotator_available)
SPENT_ACCOUNTS = (*ANNOTATOR_ACCOUNTS, AccountKind.platform_fees)
PAID_FOR = (AssignmentStatus.approved, AssignmentStatus.submitted)
UNSETTLED = (PayoutStatus.pending, PayoutStatus.held, PayoutStatus.unknown)


@dataclass(frozen=True)
class Breach:
    """One invariant broken: which, what it says, and the rows behind it."""

    invariant: str
    detail: str
    count: int
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class AuditReport:
    checked_at: datetime
    checked: dict[str, int]  # rows looked at, per invariant
    breaches: list[Breach] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaches


def run_audit(session: Session) -> AuditReport:
    """Check every invariant over the whole books (read only)."""
    checked: dict[str, int] = {}
    breaches: list[Breach] = []
    for name, detail, check in (
        (
            "assignment_earning",
            "net earning is the price when approved or submitted, else 0",
            _assignments,
        ),
        (
            "job_escrow",
            "escrow = reserved + deposited - spent - released, never negative",
            _escrows,
        ),
        ("client_money", "credited - available - escrow - spent = 0", _clients),
        (
            "payout",
            "each payout has its entries, settled once; in flight = unsettled payouts",
            _payouts,
        ),
        ("fair_pay_topup", "top-ups match the floor over the measured time", _top_ups),
    ):
        looked_at, bad = check(session)
        checked[name] = looked_at
        if bad:
            breaches.append(Breach(name, detail, len(bad), bad[:ROWS_PER_BREACH]))
    return AuditReport(utcnow(), checked, breaches)


# --- assignments ---------------------------------------------------------------------------------


def _assignments(session: Session) -> tuple[int, list[dict[str, Any]]]:
    to_annotator = LedgerPosting.account_kind.in_(ANNOTATOR_ACCOUNTS)
    rows = session.execute(
        select(
            LedgerEntry.assignment_id,
            Assignment.status,
            func.sum(case((to_annotator, LedgerPosting.amount_micros), else_=0)),
            func.sum(
                case(
                    (
                        and_(
                            LedgerEntry.kind == EntryKind.earning,
                            LedgerPosting.account_kind == AccountKind.annotator_pending,
                        ),
                        LedgerPosting.amount_micros,
                    ),
                    else_=0,
                )
            ),
        )
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .join(Assignment, Assignment.id == LedgerEntry.assignment_id)
        .where(LedgerEntry.assignment_id.is_not(None))
        .group_by(LedgerEntry.assignment_id, Assignment.status)
        .order_by(LedgerEntry.assignment_id)
    ).all()
    bad = []
    for assignment_id, status, net, price in rows:
        expected = int(price or 0) if AssignmentStatus(status) in PAID_FOR else 0
        if int(net or 0) != expected:
            bad.append(
                {
                    "assignment_id": assignment_id,
                    "status": AssignmentStatus(status).value,
                    "price_micros": int(price or 0),
                    "net_earning_micros": int(net or 0),
                    "expected_micros": expected,
                }
            )
    return len(rows), bad


# --- jobs and clients ----------------------------------------------------------------------------


def _moved_by_job(session: Session) -> dict[int, dict[str, int]]:
    """Per job: money into its escrow by entry kind, and what its entries spent."""
    into_escrow = LedgerPosting.account_kind == AccountKind.job_escrow
    rows = session.execute(
        select(
            LedgerEntry.job_id,
            LedgerEntry.kind,
            func.sum(case((into_escrow, LedgerPosting.amount_micros), else_=0)),
            func.sum(
                case(
                    (LedgerPosting.account_kind.in_(SPENT_ACCOUNTS), LedgerPosting.amount_micros),
                    else_=0,
                )
            ),
        )
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .where(LedgerEntry.job_id.is_not(None))
        .group_by(LedgerEntry.job_id, LedgerEntry.kind)
    ).all()
    out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for job_id, kind, escrow_amount, spent in rows:
        moved = out[int(job_id)]
        moved[EntryKind(kind).value] += int(escrow_amount or 0)
        moved["spent"] += int(spent or 0)
        moved["escrow"] += int(escrow_amount or 0)
    return out


def _escrows(session: Session) -> tuple[int, list[dict[str, Any]]]:
    moved = _moved_by_job(session)
    budgets = list(session.scalars(select(JobBudget).order_by(JobBudget.job_id)))
    bad = []
    for budget in budgets:
        m = moved.get(budget.job_id, {})
        reserved = budget.reserved_slots * budget.slot_cost_micros
        deposited = m.get(EntryKind.deposit.value, 0)
        released = -m.get(EntryKind.release.value, 0)
        spent = m.get("spent", 0)
        balance = m.get("escrow", 0)
        expected = reserved + deposited - spent - released
        problems = []
        if m.get(EntryKind.reservation.value, 0) != reserved:
            problems.append("reservations differ from the budget's slots")
        if balance != expected:
            problems.append("escrow differs from reserved + deposited - spent - released")
        if balance < 0:
            problems.append("escrow is negative")
        if budget.closed_at is None and not 0 <= budget.free_micros <= max(balance, 0):
            problems.append("free escrow is outside the escrow")
        if problems:
            bad.append(
                {
                    "job_id": budget.job_id,
                    "problems": problems,
                    "escrow_micros": balance,
                    "reserved_micros": reserved,
                    "reservations_micros": m.get(EntryKind.reservation.value, 0),
                    "deposited_micros": deposited,
                    "spent_micros": spent,
                    "released_micros": released,
                    "free_micros": escrow.free_escrow(session, budget),
                }
            )
    return len(budgets), bad


def _clients(session: Session) -> tuple[int, list[dict[str, Any]]]:
    moved = _moved_by_job(session)
    owner_of: dict[int, int] = {}
    for job_id, owner in session.execute(select(Job.id, Job.client_id)):
        owner_of[job_id] = owner
    credited: dict[int, int] = defaultdict(int)
    for client_id, amount in session.execute(
        select(Funding.client_id, func.sum(Funding.credited_micros))
        .where(Funding.status == FundingStatus.credited)
        .group_by(Funding.client_id)
    ):
        credited[int(client_id)] += int(amount or 0)
    available = _balances_by_owner(session, AccountKind.client_available)
    held: dict[int, int] = defaultdict(int)
    spent: dict[int, int] = defaultdict(int)
    for job_id, m in moved.items():
        if job_id in owner_of:
            held[owner_of[job_id]] += m.get("escrow", 0)
            spent[owner_of[job_id]] += m.get("spent", 0)
    clients = sorted(set(credited) | set(available) | set(held))
    bad = []
    for client_id in clients:
        gap = credited[client_id] - available[client_id] - held[client_id] - spent[client_id]
        if gap != 0:
            bad.append(
                {
                    "client_id": client_id,
                    "credited_micros": credited[client_id],
                    "available_micros": available[client_id],
                    "escrow_micros": held[client_id],
                    "spent_micros": spent[client_id],
                    "unexplained_micros": gap,
                }
            )
    return len(clients), bad


def _balances_by_owner(session: Session, kind: AccountKind) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for owner_id, total in session.execute(
        select(LedgerPosting.owner_id, func.sum(LedgerPosting.amount_micros))
        .where(LedgerPosting.account_kind == kind)
        .group_by(LedgerPosting.owner_id)
    ):
        out[int(owner_id)] = int(total or 0)
    return out


# --- payouts -------------------------------------------------------------------------------------


def _payouts(session: Session) -> tuple[int, list[dict[str, Any]]]:
    posted: dict[str, int] = {}  # cause -> amount into payouts in flight (or out of it)
    for cause, amount in session.execute(
        select(LedgerEntry.cause, func.sum(LedgerPosting.amount_micros))
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .where(
            LedgerEntry.kind.in_(
                [EntryKind.payout, EntryKind.payout_paid, EntryKind.payout_failed]
            ),
            LedgerPosting.account_kind == AccountKind.payouts_in_flight,
        )
        .group_by(LedgerEntry.cause)
    ):
        posted[cause] = int(amount or 0)
    payouts = list(session.scalars(select(Payout).order_by(Payout.id)))
    bad: list[dict[str, Any]] = []
    in_flight: dict[int, int] = defaultdict(int)
    for payout in payouts:
        problems = list(_payout_problems(payout, posted))
        if payout.status in UNSETTLED:
            in_flight[payout.annotator_id] += payout.amount_micros
        if problems:
            bad.append(
                {
                    "payout_id": payout.id,
                    "status": payout.status.value,
                    "amount_micros": payout.amount_micros,
                    "problems": problems,
                }
            )
    known = {
        f"{prefix}:{p.id}" for p in payouts for prefix in ("payout", "payout-paid", "payout-failed")
    }
    for cause in sorted(set(posted) - known):
        bad.append({"cause": cause, "problems": ["a payout entry without its payout"]})
    for annotator_id, balance in sorted(
        _balances_by_owner(session, AccountKind.payouts_in_flight).items()
    ):
        if balance != in_flight[annotator_id]:
            bad.append(
                {
                    "annotator_id": annotator_id,
                    "in_flight_micros": balance,
                    "unsettled_payouts_micros": in_flight[annotator_id],
                    "problems": ["in-flight balance differs from unsettled payouts"],
                }
            )
    return len(payouts), bad


def _payout_problems(payout: Payout, posted: dict[str, int]) -> Iterable[str]:
    made = posted.get(f"payout:{payout.id}")
    paid = f"payout-paid:{payout.id}" in posted
    failed = f"payout-failed:{payout.id}" in posted
    if made is None:
        yield "no payout entry"
    elif made != payout.amount_micros:
        yield f"payout entry moved {made}, not the payout's amount"
    if paid and failed:
        yield "both paid and failed in the ledger"
    if payout.status is PayoutStatus.paid and not paid:
        yield "paid without its payout-paid entry"
    if payout.status is PayoutStatus.failed and not failed:
        yield "failed without its payout-failed entry"
    if payout.status in UNSETTLED and (paid or failed):
        yield f"{payout.status.value} but settled in the ledger"


# --- fair-pay top-ups ----------------------------------------------------------------------------


def _top_ups(session: Session) -> tuple[int, list[dict[str, Any]]]:
    floor = session_settings(session).fair_pay_floor_micros_per_hour
    paid: dict[tuple[int, int], int] = defaultdict(int)
    for job_id, owner_id, amount in session.execute(
        select(LedgerEntry.job_id, LedgerPosting.owner_id, func.sum(LedgerPosting.amount_micros))
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .where(
            LedgerEntry.kind == EntryKind.topup,
            LedgerPosting.account_kind == AccountKind.annotator_available,
        )
        .group_by(LedgerEntry.job_id, LedgerPosting.owner_id)
    ):
        paid[(int(job_id or 0), int(owner_id))] = int(amount or 0)
    measured = _measured_seconds(session)
    rows = list(
        session.scalars(select(JobEarnings).order_by(JobEarnings.job_id, JobEarnings.annotator_id))
    )
    bad = []
    seen = set()
    for row in rows:
        key = (row.job_id, row.annotator_id)
        seen.add(key)
        due = max(0, floor * row.paid_seconds // pricing.SECONDS_PER_HOUR - row.earned_micros)
        problems = []
        if paid[key] != row.topup_micros:
            problems.append("the ledger's top-ups differ from those recorded")
        if row.topup_micros > due:
            problems.append("more topped up than the floor asks for the paid time")
        if row.paid_seconds != measured.get(key, 0):
            problems.append("paid time differs from the approved work's measured time")
        if problems:
            bad.append(
                {
                    "job_id": row.job_id,
                    "annotator_id": row.annotator_id,
                    "problems": problems,
                    "topup_micros": row.topup_micros,
                    "ledger_topup_micros": paid[key],
                    "floor_due_micros": due,
                    "paid_seconds": row.paid_seconds,
                    "measured_seconds": measured.get(key, 0),
                }
            )
    for job_id, annotator_id in sorted(set(paid) - seen):
        bad.append(
            {
                "job_id": job_id,
                "annotator_id": annotator_id,
                "problems": ["top-ups paid without an earnings record"],
                "ledger_topup_micros": paid[(job_id, annotator_id)],
            }
        )
    return len(rows), bad


def _measured_seconds(session: Session) -> dict[tuple[int, int], int]:
    """The paid active seconds of each annotator's approved work per job, as approval counts
    them (capped per task by the job's terms)."""
    terms = {
        job.id: escrow.terms_of(job)
        for job in session.scalars(select(Job).where(Job.platform_fee_bps.is_not(None)))
    }
    out: dict[tuple[int, int], int] = defaultdict(int)
    for job_id, annotator_id, active in session.execute(
        select(Assignment.job_id, Assignment.annotator_id, Assignment.active_seconds).where(
            Assignment.status == AssignmentStatus.approved
        )
    ):
        if job_id in terms:  # (a job without pay terms never paid any work)
            out[(job_id, annotator_id)] += pricing.paid_seconds(terms[job_id], active)
    return out


Check = Callable[[Session], tuple[int, list[dict[str, Any]]]]
CHECKS: tuple[tuple[str, str, Check], ...] = (
    (
        "assignment_earning",
        "net earning is its price when approved or submitted, else 0",
        _assignments,
    ),
    ("job_escrow", "escrow = reserved + deposited - spent - released, never negative", _escrows),
    ("client_money", "credited - available - escrow - spent = 0", _clients),
    ("payout", "each payout has its entries and settles once; in flight = unsettled", _payouts),
    ("fair_pay_topup", "top-ups match the floor over the measured time", _top_ups),
)
