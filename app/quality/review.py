"""Review: clients approve or reject submitted work of their jobs; unreviewed work is approved
automatically after `TESSERA_QUALITY_AUTO_APPROVE_DAYS`; an appeal may overturn a rejection.

Every change of an assignment's review status goes through `_change`, which moves the task's
counters and then calls `on_review`, the one hook for all of them (approval, rejection, auto-
approval, overturn). The money issue posts its ledger entries from that hook, in the same
transaction as the status change, so a review and its money commit or roll back together.

What a change does to the consensus: a rejected answer no longer counts, an overturned (or
approved after all) one counts again, so each review call that rejects or restores work
recomputes the consensus of the affected tasks' items (`consensus.recount_items`) in its own
transaction, once for all its assignments: bounded by those tasks' items and their answers.

What a change does to the task: a rejection gives the slot back (the task needs another answer
and reopens while its job runs; the rejected annotator cannot take it again), an overturn counts
the work again (the task may then hold one answer more than its target, if the reopened slot
was filled meanwhile). Approved work is final: it cannot be rejected. A client may approve work
they rejected (changing their mind; an open appeal of that rejection is then settled).

Lock order, as in routing: assignments (by id), then their tasks (by id); an assignment's
appeal after the assignment (`appeals.resolve_appeal` too), then the job's budget (money).

Every approval or rejection also queues a refresh of the reviewed annotators' figures and
reputation (`after_review`), so a review counts at once rather than at the periodic refresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.consensus import service as consensus
from app.core.errors import NotFound, ValidationFailed
from app.core.pagination import PageParams, page_of, paginate
from app.core.settings import Settings
from app.models.jobs import Assignment, AssignmentStatus, Job, JobStatus, Task, TaskStatus
from app.models.quality import Appeal, AppealKind, AppealStatus, ReviewDecision, ReviewSource
from app.quality.after_review import refresh_soon
from app.quality.errors import AssignmentAlreadyApproved, AssignmentNotSubmitted
from payouts import earnings

REVIEWABLE = (AssignmentStatus.submitted, AssignmentStatus.approved, AssignmentStatus.rejected)
AUTO_APPROVE_BATCH = 1000


@dataclass(frozen=True)
class Reviewed:
    """The outcome of a (bulk) review: what changed, and what already was as asked."""

    changed: list[int]
    unchanged: list[int]


def on_review(
    session: Session,
    assignment: Assignment,
    old: AssignmentStatus,
    new: AssignmentStatus,
    *,
    actor_id: int | None,
    source: ReviewSource,
    reason: str | None,
    now: datetime,
) -> ReviewDecision:
    """Called once for every change of an assignment's review status, after the assignment and
    its task are updated and in the same transaction: submitted → approved (a client, or
    `source` auto with `actor_id` None), submitted → rejected, rejected → approved (a client
    changing their mind, or an admin overturning on appeal, `source` appeal).

    Records the decision (the assignment's review history, shown to the annotator and to
    admins). This is where the ledger follows the work: approved → the annotator's pending
    earnings become available; rejected → they go back to the job's escrow; rejected →
    approved → they are paid again. Whatever is added here must flush, never commit, and
    raise to refuse the change (the caller's transaction then rolls back whole)."""
    decision = ReviewDecision(
        assignment_id=assignment.id,
        job_id=assignment.job_id,
        annotator_id=assignment.annotator_id,
        old_status=old,
        new_status=new,
        source=source,
        actor_id=actor_id,
        reason=reason,
        created_at=now,
    )
    session.add(decision)
    session.flush()
    if old is AssignmentStatus.submitted and new is AssignmentStatus.approved:
        earnings.on_approved(session, assignment, actor_id=actor_id)
    elif old is AssignmentStatus.submitted and new is AssignmentStatus.rejected:
        earnings.on_rejected(session, assignment, actor_id=actor_id)
    elif old is AssignmentStatus.rejected and new is AssignmentStatus.approved:
        earnings.on_overturned(session, assignment, actor_id=actor_id)
    return decision


def approve_assignments(
    session: Session,
    job: Job,
    assignment_ids: Sequence[int],
    *,
    actor_id: int | None,
    reason: str | None = None,
    now: datetime,
    source: ReviewSource = ReviewSource.client,
) -> Reviewed:
    """Approve submitted (or previously rejected) assignments of `job`, all or none.

    404 (`errors` pointing at each id) for ids that are not assignments of this job; 409
    `assignment-not-submitted` for work still active, released or expired. Approved ones are
    left as they are (`unchanged`). Flushes, never commits; `on_review` runs for each change."""
    assignments = _locked(session, job, assignment_ids)
    changed, unchanged = [], []
    for assignment in assignments:
        if assignment.status is AssignmentStatus.approved:
            unchanged.append(assignment.id)
            continue
        changed.append(assignment)
    tasks = _tasks_of(session, [a for a in changed if a.status is AssignmentStatus.rejected])
    for assignment in changed:
        if assignment.status is AssignmentStatus.rejected:
            _settle_rejection_appeal(session, assignment, actor_id, now)
        _change(
            session,
            job,
            assignment,
            tasks.get(assignment.task_id),
            AssignmentStatus.approved,
            actor_id=actor_id,
            source=source,
            reason=reason,
            now=now,
        )
    consensus.recount_items(session, job, sorted(tasks), now)
    refresh_soon(session, (a.annotator_id for a in changed))
    return Reviewed([a.id for a in changed], unchanged)


def reject_assignments(
    session: Session,
    job: Job,
    assignment_ids: Sequence[int],
    *,
    actor_id: int,
    reason: str,
    now: datetime,
) -> Reviewed:
    """Reject submitted assignments of `job` with a reason (shown to the annotator), all or
    none. Each task gets its slot back (and reopens while the job runs).

    404 for ids that are not assignments of this job; 409 `assignment-not-submitted` for work
    still active, released or expired; 409 `assignment-already-approved` for approved work
    (final). Rejected ones are left as they are (`unchanged`). Flushes, never commits."""
    if not reason.strip():
        raise ValidationFailed(
            "A rejection needs a reason", errors=[{"pointer": "#/reason", "detail": "empty"}]
        )
    assignments = _locked(session, job, assignment_ids)
    approved = [a for a in assignments if a.status is AssignmentStatus.approved]
    if approved:
        raise AssignmentAlreadyApproved(
            "Approved work is final and cannot be rejected",
            errors=[_problem(assignment_ids, a.id, "approved") for a in approved],
        )
    already = [a.id for a in assignments if a.status is AssignmentStatus.rejected]
    todo = [a for a in assignments if a.status is AssignmentStatus.submitted]
    tasks = _tasks_of(session, todo)
    for assignment in todo:
        _change(
            session,
            job,
            assignment,
            tasks[assignment.task_id],
            AssignmentStatus.rejected,
            actor_id=actor_id,
            source=ReviewSource.client,
            reason=reason.strip(),
            now=now,
        )
    consensus.recount_items(session, job, sorted(tasks), now)
    refresh_soon(session, (a.annotator_id for a in todo))
    return Reviewed([a.id for a in todo], already)


def overturn_rejection(
    session: Session, assignment: Assignment, *, admin_id: int, note: str, now: datetime
) -> None:
    """An admin overturned the rejection on appeal: the assignment is approved again and its
    task counts it. The caller holds the assignment's lock. Flushes, never commits."""
    if assignment.status is not AssignmentStatus.rejected:
        return
    job = session.get_one(Job, assignment.job_id)
    task = _tasks_of(session, [assignment])[assignment.task_id]
    _change(
        session,
        job,
        assignment,
        task,
        AssignmentStatus.approved,
        actor_id=admin_id,
        source=ReviewSource.appeal,
        reason=note,
        now=now,
    )
    consensus.recount_items(session, job, [task.id], now)


def auto_approve_due(session: Session, settings: Settings, now: datetime) -> int:
    """Approve (source auto, no actor) up to AUTO_APPROVE_BATCH assignments submitted more than
    `TESSERA_QUALITY_AUTO_APPROVE_DAYS` before `now` and not reviewed since, oldest first;
    returns how many. Assignments another transaction holds are left for the next run."""
    days = settings.quality_auto_approve_days
    due = session.execute(
        select(Assignment.id, Assignment.job_id)
        .where(
            Assignment.status == AssignmentStatus.submitted,
            Assignment.submitted_at <= now - timedelta(days=days),
        )
        .order_by(Assignment.submitted_at, Assignment.id)
        .limit(AUTO_APPROVE_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    by_job: dict[int, list[int]] = {}
    for assignment_id, job_id in due:
        by_job.setdefault(job_id, []).append(assignment_id)
    for job_id, ids in sorted(by_job.items()):
        approve_assignments(
            session,
            session.get_one(Job, job_id),
            ids,
            actor_id=None,
            reason=f"Approved automatically: not reviewed within {days:g} days of submission",
            now=now,
            source=ReviewSource.auto,
        )
    return len(due)


# --- reading -------------------------------------------------------------------------------------


def assignments_for_review(
    session: Session, job: Job, status: AssignmentStatus | None, params: PageParams
) -> tuple[list[Assignment], int | None]:
    """A page of the job's reviewable assignments (submitted, approved, rejected; or one of
    those), by id."""
    statuses = [status] if status is not None else list(REVIEWABLE)
    stmt = select(Assignment).where(Assignment.job_id == job.id, Assignment.status.in_(statuses))
    rows = list(session.scalars(paginate(stmt, Assignment.id, params)))
    return page_of(rows, params, [a.id for a in rows])


def decisions_of(
    session: Session, annotator_id: int, params: PageParams
) -> tuple[list[ReviewDecision], int | None]:
    """A page of the review decisions about an annotator's work, oldest first."""
    stmt = select(ReviewDecision).where(ReviewDecision.annotator_id == annotator_id)
    rows = list(session.scalars(paginate(stmt, ReviewDecision.id, params)))
    return page_of(rows, params, [d.id for d in rows])


def latest_decisions(session: Session, assignment_ids: Sequence[int]) -> dict[int, ReviewDecision]:
    """The latest review decision of each assignment that has one."""
    out: dict[int, ReviewDecision] = {}
    for decision in session.scalars(
        select(ReviewDecision)
        .where(ReviewDecision.assignment_id.in_(list(assignment_ids)))
        .order_by(ReviewDecision.id)
    ):
        out[decision.assignment_id] = decision
    return out


# --- the one path of every change ----------------------------------------------------------------


def _change(
    session: Session,
    job: Job,
    assignment: Assignment,
    task: Task | None,
    new: AssignmentStatus,
    *,
    actor_id: int | None,
    source: ReviewSource,
    reason: str | None,
    now: datetime,
) -> None:
    old = assignment.status
    assignment.status = new
    if task is not None:
        if new is AssignmentStatus.rejected:
            _slot_given_back(task, job)
        elif old is AssignmentStatus.rejected:
            _work_counted_again(task, now)
    session.flush()
    on_review(
        session, assignment, old, new, actor_id=actor_id, source=source, reason=reason, now=now
    )


def _slot_given_back(task: Task, job: Job) -> None:
    task.done_count -= 1
    running = job.status in (JobStatus.active, JobStatus.paused)
    if (
        running
        and task.status in (TaskStatus.complete, TaskStatus.full)
        and task.live_count + task.done_count < task.overlap_target
    ):
        task.status = TaskStatus.open
        task.completed_at = None


def _work_counted_again(task: Task, now: datetime) -> None:
    task.done_count += 1
    if task.status in (TaskStatus.open, TaskStatus.full) and task.done_count >= task.overlap_target:
        task.status = TaskStatus.complete
        task.completed_at = now


def _locked(session: Session, job: Job, assignment_ids: Sequence[int]) -> list[Assignment]:
    """The job's assignments with these ids, locked in id order; 404 naming any id that is not
    one, 409 naming any that is not submitted, approved or rejected."""
    wanted = list(dict.fromkeys(assignment_ids))
    found = {
        a.id: a
        for a in session.scalars(
            select(Assignment)
            .where(Assignment.id.in_(wanted), Assignment.job_id == job.id)
            .order_by(Assignment.id)
            .with_for_update()
        )
    }
    missing = [
        _problem(assignment_ids, i, "no such assignment in this job")
        for i in wanted
        if i not in found
    ]
    if missing:
        raise NotFound("Some assignments are not assignments of this job", errors=missing)
    unfinished = [
        _problem(assignment_ids, a.id, a.status.value)
        for a in found.values()
        if a.status not in REVIEWABLE
    ]
    if unfinished:
        raise AssignmentNotSubmitted("Only submitted work can be reviewed", errors=unfinished)
    return [found[i] for i in sorted(found)]


def _problem(ids: Sequence[int], assignment_id: int, detail: str) -> dict[str, Any]:
    return {"pointer": f"#/assignment_ids/{_position(ids, assignment_id)}", "detail": detail}


def _position(ids: Sequence[int], assignment_id: int) -> int:
    return list(ids).index(assignment_id)


def _tasks_of(session: Session, assignments: Sequence[Assignment]) -> dict[int, Task]:
    task_ids = sorted({a.task_id for a in assignments})
    if not task_ids:
        return {}
    return {
        t.id: t
        for t in session.scalars(
            select(Task).where(Task.id.in_(task_ids)).order_by(Task.id).with_for_update()
        )
    }


def _settle_rejection_appeal(
    session: Session, assignment: Assignment, actor_id: int | None, now: datetime
) -> None:
    """The client approved work they had rejected: an open appeal of that rejection is moot."""
    appeal = session.scalar(
        select(Appeal)
        .where(
            Appeal.assignment_id == assignment.id,
            Appeal.kind == AppealKind.rejection,
            Appeal.status == AppealStatus.open,
        )
        .with_for_update()
    )
    if appeal is not None:
        appeal.status = AppealStatus.overturned
        appeal.resolved_at, appeal.resolved_by_id = now, actor_id
        appeal.resolution = "The client approved the work."
