"""Annotators' earnings: posted for submitted work, made final at approval, reversed at
rejection, re-posted when an appeal overturns a rejection, and topped up to the fair-pay floor.

Submit itself writes no ledger rows: it is the busiest call of the marketplace, and an entry with
its three postings cost about a fifth of the database's work per claim-and-submit cycle
(bench/claim_submit.py, README "The annotators' hot path"). The poster, `post_submitted`, run by
the scheduler every few seconds, writes the earnings of submitted work in batches instead
(`assignments.earning_posted_at` is null until then, and a partial index is its queue), from the
values submit stored on the assignment (active seconds, gold score) and the annotator's tier
when it posts. An approval or rejection that comes first posts the submit entry itself
(`post_submit`). The cause `submit:<assignment id>` makes either write happen once. Until it is
posted, the work's slot cost stays in the job's escrow: `escrow` counts unposted work as live.

Approval, rejection and overturn (`on_approved`, `on_rejected`, `on_overturned`) are called by
the quality domain in the transaction that changes the assignment; each is idempotent (its own
cause), and each first posts the submit entry if submit did not.

Fair-pay floor: per annotator and job, approved work must pay at least
`TESSERA_FAIR_PAY_FLOOR_MICROS_PER_HOUR` per hour of its paid active time. The top-up owed is
recomputed from the running totals in `JobEarnings` at every approval, so it is never paid
twice; it draws on the job's free escrow only, and when that falls short the job pauses for
funds and the rest is paid when the client deposits or resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db import session_settings
from app.core.money import format_micros
from app.models.jobs import Assignment, AssignmentStatus, Job, Tier
from app.models.money import EntryKind, JobBudget, JobEarnings
from app.models.qualification import AnnotatorProfile
from payouts import escrow, ledger, pricing
from payouts.errors import EarningsFinal
from payouts.pricing import PayTerms

# --- submit ---------------------------------------------------------------------------------------


def submit_entry(
    terms: PayTerms,
    *,
    tier: Tier,
    active_seconds: int,
    gold_score: float | None,
    assignment_id: int,
    annotator_id: int,
    job_id: int,
    currency: str,
) -> ledger.Entry:
    """The entry a submit posts: the assignment's cost out of the job's escrow, its pay into the
    annotator's pending balance and the fee into platform fees (no postings when the work pays
    nothing). Pure: the same values give the same entry on either store."""
    earned = pricing.earning(terms, tier, active_seconds, gold_score)
    return ledger.transfer(
        submit_cause(assignment_id),
        EntryKind.earning,
        ledger.job_escrow(job_id, currency),
        [
            (ledger.annotator_pending(annotator_id, currency), earned.annotator_micros),
            (ledger.platform_fees(currency), earned.fee_micros),
        ],
        f"submitted: {earned.describe(terms)}",
        job_id=job_id,
        assignment_id=assignment_id,
    )


def submit_cause(assignment_id: int) -> str:
    return f"submit:{assignment_id}"


def annotator_tier(session: Session, annotator_id: int) -> Tier:
    """The annotator's tier (entry until reputation gives them another)."""
    tier = session.scalar(
        select(AnnotatorProfile.tier).where(AnnotatorProfile.user_id == annotator_id)
    )
    return tier or Tier.entry


def post_submit(session: Session, assignment: Assignment, now: datetime | None = None) -> bool:
    """Post the submit entry of a submitted assignment now (an approval or rejection that comes
    before the poster). Returns whether it was posted now (False: posted before)."""
    now = now or utcnow()
    if assignment.earning_posted_at is None:
        assignment.earning_posted_at = now
    job = session.get_one(Job, assignment.job_id)
    budget = escrow.budget_of(session, job.id)
    currency = budget.currency if budget is not None else session_settings(session).currency
    entry = submit_entry(
        escrow.terms_of(job),
        tier=annotator_tier(session, assignment.annotator_id),
        active_seconds=assignment.active_seconds,
        gold_score=assignment.gold_score,
        assignment_id=assignment.id,
        annotator_id=assignment.annotator_id,
        job_id=job.id,
        currency=currency,
    )
    return ledger.post_entry(session, entry, now) is not None


#: Submits a run of the poster writes at most (two statements per batch; about 0.5 s on
#: PostgreSQL here), enough for the busiest marketplace between two runs five seconds apart.
POST_BATCH = 2000


def post_submitted(session: Session, *, limit: int = POST_BATCH) -> int:
    """Write the earnings of submitted work not in the ledger yet, oldest first, in one batch;
    returns how many assignments it settled. Work of a job without a budget (made before
    money existed) is marked posted with nothing to post. Rows an approval or rejection holds
    are skipped (they post their own); budgets are locked, in job order, so a release of
    unspent escrow sees either the work unposted (kept back as live) or posted."""
    due = session.execute(
        select(
            Assignment.id,
            Assignment.job_id,
            Assignment.annotator_id,
            Assignment.active_seconds,
            Assignment.gold_score,
        )
        .where(Assignment.submitted_at.is_not(None), Assignment.earning_posted_at.is_(None))
        .order_by(Assignment.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not due:
        return 0
    job_ids = sorted({a.job_id for a in due})
    currencies: dict[int, str] = dict(
        session.execute(
            select(JobBudget.job_id, JobBudget.currency)
            .where(JobBudget.job_id.in_(job_ids))
            .order_by(JobBudget.job_id)
            .with_for_update()
        ).all()
    )
    terms = {
        job.id: escrow.terms_of(job)
        for job in session.scalars(select(Job).where(Job.id.in_(list(currencies))))
    }
    tiers: dict[int, Tier] = dict(
        session.execute(
            select(AnnotatorProfile.user_id, AnnotatorProfile.tier).where(
                AnnotatorProfile.user_id.in_({a.annotator_id for a in due})
            )
        ).all()
    )
    now = utcnow()
    entries = [
        submit_entry(
            terms[a.job_id],
            tier=tiers.get(a.annotator_id) or Tier.entry,
            active_seconds=a.active_seconds,
            gold_score=a.gold_score,
            assignment_id=a.id,
            annotator_id=a.annotator_id,
            job_id=a.job_id,
            currency=currencies[a.job_id],
        )
        for a in due
        if a.job_id in currencies
    ]
    ledger.write_entries(session, entries, now)
    session.execute(
        update(Assignment)
        .where(Assignment.id.in_([a.id for a in due]))
        .values(earning_posted_at=now)
    )
    return len(due)


# --- approval, rejection, overturn ------------------------------------------------------------


@dataclass(frozen=True)
class Settled:
    """What an approval or overturn paid: the work (and bonus) and the fair-pay top-up."""

    assignment_id: int
    earned_micros: int
    topup_micros: int
    topup_short_micros: int  # owed but not paid (the job's free escrow ran out)
    replayed: bool  # posted before: nothing changed


def on_approved(
    session: Session, assignment: Assignment, *, actor_id: int | None = None
) -> Settled:
    """The assignment was approved: its earnings move pending → available (its submit entry
    is posted first if submit did not), the unspent part of its slot becomes free escrow, and a
    fair-pay top-up follows if the annotator's effective hourly rate on the job is below the
    floor. Idempotent; approving a rejected assignment is an overturn. Call in the transaction
    that approves it."""
    now = utcnow()
    job = session.get_one(Job, assignment.job_id)
    budget = escrow.open_budget(session, job, now)  # locked: the job's decisions queue here
    if _final(session, assignment.id):
        return Settled(assignment.id, 0, 0, 0, replayed=True)
    if ledger.entry_exists(session, reject_cause(assignment.id)):
        return on_overturned(session, assignment, actor_id=actor_id)
    cur = budget.currency
    postings = ledger.postings_of(session, submit_cause(assignment.id))
    if not ledger.entry_exists(session, submit_cause(assignment.id)):
        post_submit(session, assignment, now)
        postings = ledger.postings_of(session, submit_cause(assignment.id))
    pending = ledger.annotator_pending(assignment.annotator_id, cur)
    earned = sum(p.amount_micros for p in postings if p.account == pending)
    cost = -sum(p.amount_micros for p in postings if p.account == ledger.job_escrow(job.id, cur))
    ledger.post_entry(
        session,
        ledger.transfer(
            f"approve:{assignment.id}",
            EntryKind.approval,
            pending,
            [(ledger.annotator_available(assignment.annotator_id, cur), earned)],
            "approved",
            actor_id=actor_id,
            job_id=job.id,
            assignment_id=assignment.id,
        ),
        now,
    )
    escrow.add_free(budget, budget.slot_cost_micros - cost)
    return _count_and_top_up(session, job, budget, assignment, earned, actor_id, now)


def on_rejected(session: Session, assignment: Assignment, *, actor_id: int | None = None) -> int:
    """The assignment was rejected: its pending earnings and fee go back to the job's escrow
    (where they fund the reopened slot; a closed job releases them to the client). Returns the
    amount returned to escrow. Idempotent; `EarningsFinal` (409) if it was already approved.
    A rejection before the earnings poster posts the submit entry first, so it is reversed."""
    cause = reject_cause(assignment.id)
    now = utcnow()
    job = session.get_one(Job, assignment.job_id)
    budget = escrow.open_budget(session, job, now)  # locked: the job's decisions queue here
    if ledger.entry_exists(session, cause):
        return 0
    if _final(session, assignment.id):
        raise EarningsFinal(f"Assignment {assignment.id} is approved; its pay is final")
    # Post the submit first if the poster has not: the reversal then undoes real postings, and
    # `earning_posted_at` keeps the poster from paying the rejected work later (issue 22, #1).
    post_submit(session, assignment, now)
    reversal = ledger.Entry(
        cause,
        EntryKind.reversal,
        budget.currency,
        tuple(
            ledger.Posting(p.account, -p.amount_micros)
            for p in ledger.postings_of(session, submit_cause(assignment.id))
        ),
        "rejected",
        actor_id=actor_id,
        job_id=job.id,
        assignment_id=assignment.id,
    )
    ledger.post_entry(session, reversal, now)
    if budget.closed_at is not None:
        escrow.release_unspent(session, job, budget, actor_id=actor_id)
    return reversal.amount_to(ledger.job_escrow(job.id, budget.currency))


def on_overturned(
    session: Session, assignment: Assignment, *, actor_id: int | None = None
) -> Settled:
    """An appeal overturned the assignment's rejection: what the rejection reversed is paid
    again, straight to the annotator's available balance (the work is approved now), from the
    money the rejection returned to escrow when the work takes its task slot back (no other
    assignment took it meanwhile; the unspent rest of the slot becomes free, as at approval).
    Work beyond the reserved slots, or on a closed job, is paid from free escrow, topped up from
    the client's available balance when that is short (402 if that is short too); then the
    fair-pay floor applies. Idempotent; overturning what was
    never rejected is an approval."""
    now = utcnow()
    job = session.get_one(Job, assignment.job_id)
    budget = escrow.open_budget(session, job, now)  # locked: the job's decisions queue here
    if _final(session, assignment.id):
        return Settled(assignment.id, 0, 0, 0, replayed=True)
    if not ledger.entry_exists(session, reject_cause(assignment.id)):
        return on_approved(session, assignment, actor_id=actor_id)
    cur = budget.currency
    reversed_ = ledger.postings_of(session, reject_cause(assignment.id))
    if reversed_:
        pending = ledger.annotator_pending(assignment.annotator_id, cur)
        earned = -sum(p.amount_micros for p in reversed_ if p.account == pending)
        fee = -sum(p.amount_micros for p in reversed_ if p.account == ledger.platform_fees(cur))
    else:  # submit had posted nothing: pay what the work earns now
        amounts = pricing.earning(
            escrow.terms_of(job),
            annotator_tier(session, assignment.annotator_id),
            assignment.active_seconds,
            assignment.gold_score,
        )
        earned, fee = amounts.annotator_micros, amounts.fee_micros
    cost = earned + fee
    takes_its_slot = budget.closed_at is None and _slot_free_for(session, job, assignment)
    if not takes_its_slot:
        escrow.cover_from_client(
            session, job, budget, cost, actor_id=actor_id, why=f"overturn of {assignment.id}"
        )
    ledger.post_entry(
        session,
        ledger.transfer(
            f"overturn:{assignment.id}",
            EntryKind.overturn,
            ledger.job_escrow(job.id, cur),
            [
                (ledger.annotator_available(assignment.annotator_id, cur), earned),
                (ledger.platform_fees(cur), fee),
            ],
            "rejection overturned on appeal",
            actor_id=actor_id,
            job_id=job.id,
            assignment_id=assignment.id,
        ),
        now,
    )
    if takes_its_slot:  # paid from its slot's money, as an approval is
        escrow.add_free(budget, max(0, budget.slot_cost_micros - cost))
    else:
        escrow.spend_free(budget, cost)
    return _count_and_top_up(session, job, budget, assignment, earned, actor_id, now)


def _slot_free_for(session: Session, job: Job, assignment: Assignment) -> bool:
    """Whether the task slot the rejection gave back is still free for the overturned work
    (no other assignment took it meanwhile): its money, which the rejection returned to escrow,
    then pays the work again. Otherwise the work is a slot more than escrow reserved."""
    taken = session.scalar(
        select(func.count()).where(
            Assignment.task_id == assignment.task_id,
            Assignment.id != assignment.id,
            Assignment.status.in_(SLOT_HOLDERS),
        )
    )
    return int(taken or 0) < job.overlap_max


#: Assignments that hold a task slot's money: at work, submitted, approved.
SLOT_HOLDERS = (AssignmentStatus.active, AssignmentStatus.submitted, AssignmentStatus.approved)


def reject_cause(assignment_id: int) -> str:
    return f"reject:{assignment_id}"


def _final(session: Session, assignment_id: int) -> bool:
    """Whether the assignment's pay is final (approved, or overturned on appeal)."""
    return ledger.entry_exists(session, f"approve:{assignment_id}") or ledger.entry_exists(
        session, f"overturn:{assignment_id}"
    )


# --- the fair-pay floor ---------------------------------------------------------------------------


def _count_and_top_up(
    session: Session,
    job: Job,
    budget: JobBudget,
    assignment: Assignment,
    earned: int,
    actor_id: int | None,
    now: datetime,
) -> Settled:
    row = _earnings_row(session, job.id, assignment.annotator_id, now)
    row.approved_assignments += 1
    row.paid_seconds += pricing.paid_seconds(escrow.terms_of(job), assignment.active_seconds)
    row.earned_micros += earned
    row.updated_at = now
    paid, short = top_up(session, job, budget, row, actor_id=actor_id, now=now)
    budget.updated_at = now
    session.flush()
    return Settled(assignment.id, earned, paid, short, replayed=False)


def _earnings_row(session: Session, job_id: int, annotator_id: int, now: datetime) -> JobEarnings:
    row = session.get(JobEarnings, (job_id, annotator_id), with_for_update=True)
    if row is None:
        row = JobEarnings(
            job_id=job_id,
            annotator_id=annotator_id,
            approved_assignments=0,
            paid_seconds=0,
            earned_micros=0,
            topup_micros=0,
            updated_at=now,
        )
        session.add(row)
        session.flush()
    return row


def top_up(
    session: Session,
    job: Job,
    budget: JobBudget,
    row: JobEarnings,
    *,
    actor_id: int | None = None,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Pay what the fair-pay floor still owes one annotator on the job, as far as the job's
    free escrow goes; pause the job for funds if it falls short. Returns (paid, still owed)."""
    now = now or utcnow()
    floor = session_settings(session).fair_pay_floor_micros_per_hour
    owed = pricing.floor_owed(floor, row.paid_seconds, row.earned_micros, row.topup_micros)
    if owed == 0:
        return 0, 0
    terms = escrow.terms_of(job)
    amount = min(owed, pricing.affordable(escrow.free_escrow(session, budget), terms.fee_bps))
    if amount > 0:
        fee = pricing.fee_on(amount, terms.fee_bps)
        cur = budget.currency
        ledger.post_entry(
            session,
            ledger.transfer(
                f"topup:{job.id}:{row.annotator_id}:{row.topup_micros + amount}",
                EntryKind.topup,
                ledger.job_escrow(job.id, cur),
                [
                    (ledger.annotator_available(row.annotator_id, cur), amount),
                    (ledger.platform_fees(cur), fee),
                ],
                f"fair-pay floor {format_micros(floor)}/h over {row.paid_seconds}s",
                actor_id=actor_id,
                job_id=job.id,
            ),
            now,
        )
        escrow.spend_free(budget, amount + fee)
        row.topup_micros += amount
        row.updated_at = now
    short = owed - amount
    if short > 0:
        escrow.pause_for_funds(
            session,
            job,
            budget,
            f"Fair-pay top-ups owed to annotators need {format_micros(short)} "
            f"{budget.currency} more in escrow (plus the platform fee): deposit funds into "
            "the job to pay them and resume.",
        )
    session.flush()
    return amount, short


def owed_top_ups(session: Session, job_id: int) -> int:
    """What the fair-pay floor still owes the job's annotators in all (before the fee)."""
    floor = session_settings(session).fair_pay_floor_micros_per_hour
    return sum(
        pricing.floor_owed(floor, row.paid_seconds, row.earned_micros, row.topup_micros)
        for row in session.scalars(select(JobEarnings).where(JobEarnings.job_id == job_id))
    )


def settle_owed_top_ups(
    session: Session, job: Job, budget: JobBudget, *, actor_id: int | None = None
) -> int:
    """Pay every annotator of the job what the fair-pay floor still owes them, as far as free
    escrow goes; returns what is still owed after that."""
    rows = list(
        session.scalars(
            select(JobEarnings)
            .where(JobEarnings.job_id == job.id)
            .order_by(JobEarnings.annotator_id)
            .with_for_update()
        )
    )
    still_owed = 0
    for row in rows:
        _, short = top_up(session, job, budget, row, actor_id=actor_id)
        still_owed += short
    return still_owed
