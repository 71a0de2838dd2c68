"""What the jobs domain calls when a job's tasks or status change, so the money follows:
new task slots are reserved in escrow (402 with the shortfall otherwise), a resumed job first
pays the fair-pay top-ups it owes, a finished job pays them and releases unspent escrow.

All take the caller's session and flush; the caller commits (or rolls back on the 402).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.money import format_micros
from app.models.jobs import Job
from payouts import earnings, escrow, ledger
from payouts.errors import InsufficientFunds


def tasks_added(session: Session, job: Job) -> None:
    """Tasks were split off the job (its activation, or an import into an active job): reserve
    escrow for their slots, or raise `InsufficientFunds` stating the shortfall."""
    escrow.ensure_reserved(session, job)


def overlap_changed(session: Session, job: Job) -> None:
    """Overlap max changed on a job with tasks: reserve the extra slots (402 if short)."""
    if escrow.budget_of(session, job.id) is not None:
        escrow.ensure_reserved(session, job)


def job_resuming(session: Session, job: Job) -> None:
    """A paused job is about to be active again: its slots must be reserved and the fair-pay
    top-ups it owes paid first; 402 stating the shortfall otherwise."""
    budget = escrow.ensure_reserved(session, job)  # (a job from before budgets gets one here)
    owed = earnings.settle_owed_top_ups(session, job, budget)
    if owed > 0:
        available = ledger.balance(session, ledger.client_available(job.client_id, budget.currency))
        raise InsufficientFunds(
            f"Fair-pay top-ups owed to annotators on this job need {format_micros(owed)} "
            f"{budget.currency} (plus the platform fee) in escrow before it can resume; "
            "deposit funds into the job first.",
            shortfall_micros=owed,
            shortfall=format_micros(owed),
            available_micros=available,
            currency=budget.currency,
        )
    escrow.clear_pause(budget)
    budget.updated_at = utcnow()
    session.flush()


def funds_deposited(session: Session, job: Job, amount: int, *, actor_id: int | None) -> None:
    """The client moved `amount` into the job's escrow: the fair-pay top-ups it owes are paid
    at once, and a job paused for funds resumes once nothing is owed any more (402 when the
    client's balance is short; 409 `job-not-activated` before activation)."""
    escrow.deposit(session, job, amount, actor_id=actor_id, reason="client deposit")
    budget = escrow.budget_of(session, job.id, lock=True)
    assert budget is not None
    if earnings.settle_owed_top_ups(session, job, budget, actor_id=actor_id) == 0:
        escrow.resume_if_funded(session, job, budget)


def job_finished(session: Session, job: Job) -> None:
    """The job completed or was cancelled: pay owed fair-pay top-ups from its free escrow, then
    give the rest back to the client, keeping what live assignments may still cost."""
    budget = escrow.budget_of(session, job.id, lock=True)
    if budget is None:
        return
    earnings.settle_owed_top_ups(session, job, budget)
    escrow.clear_pause(budget)
    escrow.close_and_release(session, job)
