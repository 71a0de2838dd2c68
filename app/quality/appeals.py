"""Appeals: an annotator contests a judgment of their work once, with a message; an admin
upholds or overturns it.

Two judgments can be appealed:
- a rejection by the client: overturning approves the assignment again (`review`), which
  counts it on its task and runs the review hook (the money follows);
- a gold judgment, the score of the assignment's control items: overturning clears it, or
  re-scores it as the admin says. Gold scores are appealable only where the annotator was shown
  them, on jobs with instant feedback: elsewhere an annotator is never told which items were
  control items, and the appeal route must not tell them either (it answers the same
  `nothing-to-appeal` whether or not the assignment held gold). A rejected assignment whose gold
  judgment is overturned is approved again too.

Overturning recomputes the annotator's figures at once (`tracking`), and a removal from the job
that the new gold scores no longer support is reversed (`enforcement.revisit_removals`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.errors import NotFound, ValidationFailed
from app.core.pagination import PageParams, page_of, paginate
from app.core.settings import Settings
from app.models.jobs import Answer, Assignment, AssignmentStatus, Job
from app.models.quality import Appeal, AppealKind, AppealStatus
from app.quality import enforcement, review, tracking
from app.quality.errors import AppealExists, AppealResolved, NothingToAppeal


def file_appeal(
    session: Session,
    annotator_id: int,
    assignment_id: int,
    kind: AppealKind,
    message: str,
    now: datetime,
) -> Appeal:
    """Appeal a judgment of one of the annotator's assignments. 404 for anyone else's
    assignment; 409 `nothing-to-appeal` when there is no such judgment to appeal (not rejected;
    no gold score shown); 409 `appeal-exists` the second time. Flushes, never commits."""
    assignment = session.scalar(
        select(Assignment).where(Assignment.id == assignment_id).with_for_update()
    )
    if assignment is None or assignment.annotator_id != annotator_id:
        raise NotFound("No such assignment")
    if kind is AppealKind.rejection and assignment.status is not AssignmentStatus.rejected:
        raise NothingToAppeal("This assignment is not rejected")
    if kind is AppealKind.gold and not _gold_shown(session, assignment):
        raise NothingToAppeal("No control score was shown for this assignment")
    existing = session.scalar(
        select(Appeal.id).where(Appeal.assignment_id == assignment.id, Appeal.kind == kind)
    )
    if existing is not None:
        raise AppealExists("This judgment was appealed already", appeal_id=existing)
    appeal = Appeal(
        assignment_id=assignment.id,
        job_id=assignment.job_id,
        annotator_id=annotator_id,
        kind=kind,
        message=message,
        status=AppealStatus.open,
        created_at=now,
        gold_score_before=assignment.gold_score if kind is AppealKind.gold else None,
    )
    session.add(appeal)
    session.flush()
    return appeal


def _gold_shown(session: Session, assignment: Assignment) -> bool:
    if assignment.gold_score is None:
        return False
    return bool(session.scalar(select(Job.instant_feedback).where(Job.id == assignment.job_id)))


def resolve_appeal(
    session: Session,
    settings: Settings,
    appeal_id: int,
    *,
    overturn: bool,
    note: str,
    admin_id: int,
    now: datetime,
    gold_score: float | None = None,
) -> Appeal:
    """Uphold or overturn an open appeal, with a note shown to the annotator.

    Overturning a rejection approves the assignment again (through `review`, so the review
    hook runs). Overturning a gold judgment sets each graded gold answer of the assignment to
    `gold_score`, or clears their scores when it is None (they no longer count), keeping the
    originals on the appeal; a rejected assignment is approved again too. Either way the
    annotator's figures, reputation and tier are recomputed now, and a removal from the job
    the new figures no longer support is reversed. 404 unknown appeal; 409 `appeal-resolved`;
    422 for a `gold_score` on a rejection appeal. Flushes, never commits.

    Lock order, as in review: the assignment, then its appeal (a client approving the same work
    at the same moment locks them in that order too; the other order deadlocked)."""
    assignment_id = session.scalar(select(Appeal.assignment_id).where(Appeal.id == appeal_id))
    if assignment_id is None:
        raise NotFound("No such appeal")
    assignment = session.scalar(
        select(Assignment).where(Assignment.id == assignment_id).with_for_update()
    )
    appeal = session.get(Appeal, appeal_id, with_for_update=True, populate_existing=True)
    if appeal is None or assignment is None:
        raise NotFound("No such appeal")
    if appeal.status is not AppealStatus.open:
        raise AppealResolved(
            f"This appeal was {appeal.status.value} already", current_status=appeal.status.value
        )
    if gold_score is not None and appeal.kind is not AppealKind.gold:
        raise ValidationFailed(
            "Only a gold appeal takes a gold score",
            errors=[{"pointer": "#/gold_score", "detail": "only for gold appeals"}],
        )
    appeal.resolved_at, appeal.resolved_by_id, appeal.resolution = now, admin_id, note
    if not overturn:
        appeal.status = AppealStatus.upheld
        session.flush()
        return appeal

    appeal.status = AppealStatus.overturned
    if appeal.kind is AppealKind.gold:
        _rescore_gold(session, appeal, assignment, gold_score)
    review.overturn_rejection(
        session, assignment, admin_id=admin_id, note=f"Appeal {appeal.id}: {note}", now=now
    )
    session.flush()
    [refreshed] = tracking.refresh_annotators(session, settings, [appeal.annotator_id], now)
    enforcement.revisit_removals(
        session,
        refreshed,
        appeal.job_id,
        admin_id=admin_id,
        note=f"Gold judgment overturned on appeal {appeal.id}.",
        now=now,
    )
    return appeal


def _rescore_gold(
    session: Session, appeal: Appeal, assignment: Assignment, gold_score: float | None
) -> None:
    graded = list(
        session.execute(
            select(Answer.id, Answer.score).where(
                Answer.assignment_id == assignment.id, Answer.score.is_not(None)
            )
        )
    )
    appeal.original_scores = {str(answer_id): score for answer_id, score in graded}
    if graded:
        session.execute(
            update(Answer)
            .where(Answer.id.in_([answer_id for answer_id, _ in graded]))
            .values(score=gold_score)
        )
    assignment.gold_score = gold_score
    appeal.gold_score_after = gold_score


# --- reading -------------------------------------------------------------------------------------


def list_appeals(
    session: Session, params: PageParams, *, status: AppealStatus | None = AppealStatus.open
) -> tuple[list[Appeal], int | None]:
    """A page of appeals, oldest first (the admins' queue: open ones by default)."""
    stmt = select(Appeal)
    if status is not None:
        stmt = stmt.where(Appeal.status == status)
    rows = list(session.scalars(paginate(stmt, Appeal.id, params)))
    return page_of(rows, params, [a.id for a in rows])


def appeals_of(session: Session, annotator_id: int) -> list[Appeal]:
    """The annotator's appeals, newest first."""
    return list(
        session.scalars(
            select(Appeal).where(Appeal.annotator_id == annotator_id).order_by(Appeal.id.desc())
        )
    )
