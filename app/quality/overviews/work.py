"""An annotator's own finished work: each submitted, approved or rejected assignment with its
items and their answers, the latest review (status and reason), what it earned and its appeals,
so the annotator appeals knowing what was judged. Never a gold flag or answer key; the control
score only where the job showed it (instant feedback), as appeals do."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.pagination import PageParams, page_of, paginate
from app.models.jobs import Answer, Assignment, AssignmentStatus, Item, Job, TaskItem
from app.models.quality import Appeal, AppealKind, ReviewDecision
from app.quality import review
from payouts import reports

FINISHED = (AssignmentStatus.submitted, AssignmentStatus.approved, AssignmentStatus.rejected)


@dataclass(frozen=True)
class WorkItem:
    slot: int
    data: dict[str, Any]
    answer: Any


@dataclass(frozen=True)
class Work:
    assignment: Assignment
    job_title: str
    gold_score: float | None  # only where the job showed it
    items: list[WorkItem]
    review: ReviewDecision | None
    pay_micros: int | None  # None: not in the ledger yet (posted within seconds of a submit)
    appeals: list[Appeal]
    appealable: list[AppealKind]


def work_of(
    session: Session,
    annotator_id: int,
    params: PageParams,
    *,
    statuses: Sequence[AssignmentStatus] | None = None,
    job_id: int | None = None,
) -> tuple[list[Work], int | None]:
    """A page of the annotator's finished work (submitted, approved, rejected; `statuses` and
    `job_id` narrow it), oldest first by assignment id."""
    wanted = [s for s in (statuses or FINISHED) if s in FINISHED]
    stmt = (
        select(Assignment, Job.title, Job.instant_feedback)
        .join(Job, Job.id == Assignment.job_id)
        .where(Assignment.annotator_id == annotator_id, Assignment.status.in_(wanted))
    )
    if job_id is not None:
        stmt = stmt.where(Assignment.job_id == job_id)
    found = session.execute(paginate(stmt, Assignment.id, params)).all()
    rows, cursor = page_of(found, params, [r[0].id for r in found])
    assignments = [r[0] for r in rows]
    ids = [a.id for a in assignments]
    items = _items_with_answers(session, assignments)
    latest = review.latest_decisions(session, ids)
    pay = reports.pay_of_assignments(session, annotator_id, ids)
    appeals: dict[int, list[Appeal]] = defaultdict(list)
    for appeal in session.scalars(
        select(Appeal).where(Appeal.assignment_id.in_(ids)).order_by(Appeal.id)
    ):
        appeals[appeal.assignment_id].append(appeal)
    out = []
    for a, title, instant_feedback in rows:
        shown = a.gold_score if instant_feedback else None
        out.append(
            Work(
                assignment=a,
                job_title=title,
                gold_score=shown,
                items=items.get(a.id, []),
                review=latest.get(a.id),
                pay_micros=pay.get(a.id),
                appeals=appeals[a.id],
                appealable=_appealable(a, shown, appeals[a.id]),
            )
        )
    return out, cursor


def _appealable(a: Assignment, shown_score: float | None, filed: list[Appeal]) -> list[AppealKind]:
    """The judgments the annotator may still appeal (`POST /v1/annotator/appeals`)."""
    done = {appeal.kind for appeal in filed}
    kinds = []
    if a.status is AssignmentStatus.rejected and AppealKind.rejection not in done:
        kinds.append(AppealKind.rejection)
    if shown_score is not None and AppealKind.gold not in done:
        kinds.append(AppealKind.gold)
    return kinds


def _items_with_answers(
    session: Session, assignments: Sequence[Assignment]
) -> dict[int, list[WorkItem]]:
    if not assignments:
        return {}
    by_task: dict[int, list[int]] = defaultdict(list)
    for a in assignments:
        by_task[a.task_id].append(a.id)
    answers = {
        (assignment_id, item_id): value
        for assignment_id, item_id, value in session.execute(
            select(Answer.assignment_id, Answer.item_id, Answer.value).where(
                Answer.assignment_id.in_([a.id for a in assignments])
            )
        )
    }
    out: dict[int, list[WorkItem]] = defaultdict(list)
    for task_id, slot, item_id, payload in session.execute(
        select(TaskItem.task_id, TaskItem.position, Item.id, Item.payload)
        .join(Item, Item.id == TaskItem.item_id)
        .where(TaskItem.task_id.in_(list(by_task)))
        .order_by(TaskItem.task_id, TaskItem.position)
    ):
        for assignment_id in by_task[task_id]:
            answer = answers.get((assignment_id, item_id))
            out[assignment_id].append(WorkItem(slot, payload, answer))
    # a gold item chosen at claim, at the slot it was shown (the task's later items one further)
    with_gold = [a for a in assignments if a.gold_item_id is not None and a.gold_slot is not None]
    payloads: dict[int, dict[str, Any]] = {}
    if with_gold:
        ids = [a.gold_item_id for a in with_gold]
        for item_id, payload in session.execute(
            select(Item.id, Item.payload).where(Item.id.in_(ids))
        ):
            payloads[item_id] = payload
    for a in with_gold:
        assert a.gold_item_id is not None
        assert a.gold_slot is not None
        at = a.gold_slot
        shifted = [replace(w, slot=w.slot + 1) if w.slot >= at else w for w in out[a.id]]
        gold = WorkItem(at, payloads[a.gold_item_id], answers.get((a.id, a.gold_item_id)))
        out[a.id] = sorted([*shifted, gold], key=lambda w: w.slot)
    return out
