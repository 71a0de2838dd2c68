"""A job's escrow: what activation commits, what work draws, and what is released at the end.

Why slots: a submit (the annotators' hot path, one write statement on PostgreSQL) draws its pay
from escrow without a lock or a balance check. That is safe because escrow holds, for every
task slot (tasks × overlap max), the most one assignment can cost (`pricing.slot_cost`). The
reservation is made, or refused with a 402 stating the shortfall, when tasks come into being
(a draft's activation, an import into an active job) or overlap max grows; a reservation is
never given back while the job runs.

Escrow then splits into slot money and free money (`JobBudget.free_micros`): free money is
what clients deposit beyond the slots, plus the part of its slot an approved assignment did
not need (an entry-tier annotator costs less than the slot reserved for an expert). Only free
money pays fair-pay top-ups and overturned rejections, so slot money is always there for
submits still to come. A rejection returns the assignment's cost to escrow, where it becomes
the reopened slot's money again.

When the job completes or is cancelled its budget closes: what live assignments may still
cost stays (they may still submit), the rest goes back to the client's available balance.
Later reversals and expired leases are released by `release_unspent` again (the scheduler
sweeps closed budgets) until the escrow is empty.

Lock order: the job's budget row, then ledger accounts (inside `post_entry`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db import session_settings
from app.core.errors import Conflict, ValidationFailed
from app.core.money import format_micros
from app.models.jobs import Assignment, AssignmentStatus, Job, JobStatus, Task, TaskStatus
from app.models.money import EntryKind, JobBudget
from payouts import ledger, pricing
from payouts.errors import InsufficientFunds, JobNotActivated
from payouts.pricing import PayTerms


def budget_of(session: Session, job_id: int, *, lock: bool = False) -> JobBudget | None:
    stmt = select(JobBudget).where(JobBudget.job_id == job_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def terms_of(job: Job) -> PayTerms:
    """The job's pay terms, with the platform fee fixed at its activation."""
    return PayTerms.of(job)


def open_budget(session: Session, job: Job, now: datetime) -> JobBudget:
    """The job's budget, locked; created (fixing the platform fee and the slot cost) if the job
    has none yet."""
    budget = budget_of(session, job.id, lock=True)
    if budget is not None:
        return budget
    settings = session_settings(session)
    if job.platform_fee_bps is None:
        job.platform_fee_bps = settings.platform_fee_bps
    budget = JobBudget(
        job_id=job.id,
        currency=settings.currency,
        slot_cost_micros=pricing.slot_cost(terms_of(job)),
        reserved_slots=0,
        free_micros=0,
        reservations=0,
        releases=0,
        deposits=0,
        updated_at=now,
    )
    session.add(budget)
    session.flush()
    return budget


def ensure_reserved(session: Session, job: Job, *, actor_id: int | None = None) -> JobBudget:
    """Reserve escrow for every task slot of the job (tasks not cancelled × overlap max) not
    reserved yet, from the client's available balance. Raises `InsufficientFunds` (402) with the
    shortfall when the balance is short; the caller's transaction must then roll back. A closed
    budget reserves nothing."""
    now = utcnow()
    budget = open_budget(session, job, now)
    if budget.closed_at is not None:
        return budget
    tasks = session.scalar(
        select(func.count()).where(Task.job_id == job.id, Task.status != TaskStatus.cancelled)
    )
    target = int(tasks or 0) * job.overlap_max
    missing = target - budget.reserved_slots
    if missing <= 0:
        return budget
    amount = missing * budget.slot_cost_micros
    client = ledger.client_available(job.client_id, budget.currency)
    ledger.lock_accounts(session, [client])
    _require(session, client, amount, f"{missing} more task slot(s) of job {job.id}")
    budget.reservations += 1
    ledger.post_entry(
        session,
        _entry(
            f"reserve:{job.id}:{budget.reservations}",
            EntryKind.reservation,
            client,
            ledger.job_escrow(job.id, budget.currency),
            amount,
            f"{missing} task slot(s) at {format_micros(budget.slot_cost_micros)}",
            job_id=job.id,
            actor_id=actor_id,
        ),
        now,
    )
    budget.reserved_slots = target
    budget.updated_at = now
    session.flush()
    return budget


def _require(session: Session, client: ledger.AccountKey, amount: int, what: str) -> None:
    available = ledger.balance(session, client)
    if available < amount:
        short = amount - available
        raise InsufficientFunds(
            f"{what} need {format_micros(amount)} {client.currency}; the available balance is "
            f"{format_micros(available)}, {format_micros(short)} short. Add funds and try again.",
            required_micros=amount,
            available_micros=available,
            shortfall_micros=short,
            shortfall=format_micros(short),
            currency=client.currency,
        )


def _entry(
    cause: str,
    kind: EntryKind,
    source: ledger.AccountKey,
    target: ledger.AccountKey,
    amount: int,
    reason: str,
    **refs: int | None,
) -> ledger.Entry:
    entry = ledger.transfer(cause, kind, source, [(target, amount)], reason, **refs)
    assert entry is not None
    return entry


def free_escrow(session: Session, budget: JobBudget) -> int:
    """Escrow not needed for work still to come: the budget's free money while the job runs;
    once closed, escrow beyond what live assignments may still cost."""
    if budget.closed_at is None:
        return budget.free_micros
    escrow = ledger.balance(session, ledger.job_escrow(budget.job_id, budget.currency))
    return max(0, escrow - _live(session, budget.job_id) * budget.slot_cost_micros)


def spend_free(budget: JobBudget, amount: int) -> None:
    """Record that `amount` of free money left escrow (the caller posts the entry)."""
    if budget.closed_at is None:
        if amount > budget.free_micros:
            raise ValueError(f"job {budget.job_id}: spending {amount} of {budget.free_micros} free")
        budget.free_micros -= amount


def add_free(budget: JobBudget, amount: int) -> None:
    """Record that `amount` of escrow is free now (no-op once closed: computed from then on)."""
    if budget.closed_at is None:
        budget.free_micros += amount


def deposit(
    session: Session,
    job: Job,
    amount: int,
    *,
    actor_id: int | None,
    reason: str,
    now: datetime | None = None,
) -> JobBudget:
    """Move `amount` from the client's available balance into the job's escrow as free money
    (for top-ups and overturns); 402 with the shortfall when the balance is short."""
    if amount <= 0:
        raise ValidationFailed(
            "Deposit a positive amount",
            errors=[{"pointer": "#/amount_micros", "detail": "must be positive"}],
        )
    now = now or utcnow()
    budget = budget_of(session, job.id, lock=True)
    if budget is None:
        raise JobNotActivated(
            f"Job {job.id} has no escrow yet: activate it first (its pay terms are fixed then)"
        )
    client = ledger.client_available(job.client_id, budget.currency)
    ledger.lock_accounts(session, [client])
    _require(session, client, amount, f"A deposit into job {job.id}")
    budget.deposits += 1
    ledger.post_entry(
        session,
        _entry(
            f"deposit:{job.id}:{budget.deposits}",
            EntryKind.deposit,
            client,
            ledger.job_escrow(job.id, budget.currency),
            amount,
            reason,
            job_id=job.id,
            actor_id=actor_id,
        ),
        now,
    )
    add_free(budget, amount)
    budget.settled_at = None
    budget.updated_at = now
    session.flush()
    return budget


def cover_from_client(
    session: Session, job: Job, budget: JobBudget, amount: int, *, actor_id: int | None, why: str
) -> None:
    """Make at least `amount` of escrow free, depositing the difference from the client's
    available balance (402 with the shortfall when that is short too)."""
    missing = amount - free_escrow(session, budget)
    if missing > 0:
        deposit(session, job, missing, actor_id=actor_id, reason=f"covers {why}")


def pause_for_funds(session: Session, job: Job, budget: JobBudget, reason: str) -> bool:
    """The one place a job pauses for money: an active job whose escrow cannot pay what it owes
    (fair-pay top-ups) stops handing out tasks, with `reason` for its client. Returns whether
    it paused (False: it was not active). Work in flight may still be submitted: its slots are
    reserved. (Issue 15 hangs the client's `job.paused` webhook here.)"""
    now = utcnow()
    budget.pause_reason = reason
    if job.status is not JobStatus.active:
        return False
    budget.paused_for_funds_at = now  # money paused it: money resumes it (`resume_if_funded`)
    job.status = JobStatus.paused
    job.updated_at = now
    session.flush()
    return True


def resume_if_funded(session: Session, job: Job, budget: JobBudget) -> bool:
    """A job that `pause_for_funds` paused runs again once what it owed is paid (a deposit paid
    it); a job its client or an admin paused stays paused. Returns whether it resumed."""
    if job.status is not JobStatus.paused or budget.paused_for_funds_at is None:
        return False
    clear_pause(budget)
    job.status = JobStatus.active
    job.updated_at = budget.updated_at = utcnow()
    session.flush()
    return True


def clear_pause(budget: JobBudget) -> None:
    budget.pause_reason = None
    budget.paused_for_funds_at = None


def close_and_release(session: Session, job: Job, *, actor_id: int | None = None) -> int:
    """Close the job's budget (it completed or was cancelled) and release unspent escrow to
    the client; returns the amount released. Idempotent."""
    budget = budget_of(session, job.id, lock=True)
    if budget is None:
        return 0
    if budget.closed_at is None:
        budget.closed_at = utcnow()
        budget.free_micros = 0  # from now on computed: escrow beyond live assignments
    return release_unspent(session, job, budget, actor_id=actor_id)


def release_unspent(
    session: Session, job: Job, budget: JobBudget, *, actor_id: int | None = None
) -> int:
    """Give a closed budget's escrow back to the client, except what live assignments may still
    cost; marks the budget settled once nothing is live and the escrow is empty."""
    if budget.closed_at is None:
        raise Conflict(f"Job {job.id} is still running: its escrow is committed")
    now = utcnow()
    escrow = ledger.job_escrow(job.id, budget.currency)
    live = _live(session, job.id)
    amount = ledger.balance(session, escrow) - live * budget.slot_cost_micros
    if amount > 0:
        budget.releases += 1
        ledger.post_entry(
            session,
            _entry(
                f"release:{job.id}:{budget.releases}",
                EntryKind.release,
                escrow,
                ledger.client_available(job.client_id, budget.currency),
                amount,
                f"unspent escrow of {job.status.value} job",
                job_id=job.id,
                actor_id=actor_id,
            ),
            now,
        )
    if live == 0 and budget.settled_at is None:
        budget.settled_at = now
    budget.updated_at = now
    session.flush()
    return max(0, amount)


def release_closed_budgets(session: Session, limit: int = 500) -> int:
    """Release what closed, unsettled budgets no longer need (run by the scheduler); returns
    how many budgets it looked at."""
    budgets = list(
        session.scalars(
            select(JobBudget)
            .where(JobBudget.closed_at.is_not(None), JobBudget.settled_at.is_(None))
            .order_by(JobBudget.job_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for budget in budgets:
        job = session.get_one(Job, budget.job_id)
        release_unspent(session, job, budget)
    return len(budgets)


def _live(session: Session, job_id: int) -> int:
    """Assignments that may still draw a slot's cost from the escrow: those in progress, and
    submitted work whose earning the poster has not written yet."""
    unposted = and_(Assignment.submitted_at.is_not(None), Assignment.earning_posted_at.is_(None))
    return int(
        session.scalar(
            select(func.count()).where(
                Assignment.job_id == job_id,
                or_(Assignment.status == AssignmentStatus.active, unposted),
            )
        )
        or 0
    )
