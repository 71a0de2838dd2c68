"""Consensus in the service: the estimators of `aggregation` applied to a job's stored answers.

Two forms, one method per job (`Job.consensus_method`):

- **Online** (`decide`): when a submit completes a task, each of its items gets a consensus from
  its answers with the job's last fitted model held fixed (`aggregation.aggregate_item`: no
  refit on the hot path; about 0.1 ms an item). Before the first fit, categorical controls take
  a vote weighted by the default skill. Both databases' submit stores call this one function.
- **Batch** (`refit_job`): the job's estimator fitted over all its answers (gold items clamped
  to their known answers), every completed item's consensus rewritten, and the model stored as a
  new version of the job's `ConsensusFit`, which the online form then uses. Run by a background
  job periodically while answers come in, on demand, and when the job completes.

Both count only the answers of submitted or approved work (`COUNTED_WORK`, as agreement and
exports): a rejected answer leaves the consensus when its work is rejected (`recount_items`, in
the review's transaction) and comes back if the rejection is overturned.

`item_results.method` records the method of each consensus; `consensus_fits` the fit's version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.consensus.aggregation import AnnotatorId, ItemId, aggregate_item, aggregate_job
from app.consensus.aggregation import Answer as AnswerValue
from app.consensus.methods import Method
from app.consensus.model import ConsensusModel
from app.core.clock import utcnow
from app.label_schema import LabelSchema
from app.models.consensus import ConsensusFit, ItemResult
from app.models.jobs import COUNTED_WORK, Answer, Assignment, Item, Job, Task, TaskItem, TaskStatus

# (item id, annotator id, answer), in answer order
Vote = tuple[int, int, Any]


@dataclass(frozen=True)
class Consensus:
    item_id: int
    answer: dict[str, Any]
    confidence: float
    answer_count: int


@dataclass(frozen=True)
class Fit:
    """A job's fitted model as the online consensus uses it."""

    method: str
    version: int
    model: ConsensusModel


def decide(
    job: Job, schema: LabelSchema, votes: Iterable[Vote], fit: Fit | None
) -> tuple[str, list[Consensus]]:
    """The method and the consensus of each item from its votes, with `fit` (the job's last
    fitted model, None before the first fit) held fixed."""
    by_item: dict[int, list[tuple[int, Any]]] = {}
    for item_id, annotator_id, value in votes:
        by_item.setdefault(item_id, []).append((annotator_id, value))
    method = fit.method if fit is not None else job.consensus_method
    out = []
    for item_id, pairs in by_item.items():
        found = aggregate_item(
            schema,
            pairs,
            fit.model if fit is not None else None,
            Method(job.consensus_method),
            item_id=item_id,
            seed=job.id,
        )
        out.append(Consensus(item_id, found.answer, found.confidence, found.answer_count))
    return method, out


def fit_of(row: ConsensusFit) -> Fit:
    return Fit(row.method, row.version, ConsensusModel.from_json(row.model))


def write_results(
    session: Session, job_id: int, method: str, results: Sequence[Consensus], now: datetime
) -> None:
    """Insert or replace the consensus of each item."""
    if not results:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(ItemResult)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ItemResult.item_id],
        set_={
            name: stmt.excluded[name]
            for name in ("answer", "confidence", "answer_count", "method", "updated_at")
        },
    )
    session.execute(
        stmt,
        [
            {
                "item_id": r.item_id,
                "job_id": job_id,
                "answer": r.answer,
                "confidence": r.confidence,
                "answer_count": r.answer_count,
                "method": method,
                "updated_at": now,
            }
            for r in results
        ],
    )


def read_fit(session: Session, job_id: int) -> Fit | None:
    row = session.get(ConsensusFit, job_id)
    return None if row is None else fit_of(row)


def counted_votes(*where: ColumnElement[bool]) -> Select[tuple[int, int, Any]]:
    """The votes (item, annotator, answer) that count, in answer order: the answers of
    submitted or approved work (`COUNTED_WORK`) matching `where`."""
    return (
        select(Answer.item_id, Answer.annotator_id, Answer.value)
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .where(Assignment.status.in_(COUNTED_WORK), *where)
        .order_by(Answer.id)
    )


def votes_of_items(session: Session, item_ids: Sequence[int]) -> list[Vote]:
    """The votes that count of the given items, in answer order."""
    rows = session.execute(counted_votes(Answer.item_id.in_(list(item_ids)))).all()
    return [(item_id, who, value) for item_id, who, value in rows]


def refresh_item_results(
    session: Session,
    job: Job,
    schema: LabelSchema,
    item_ids: Sequence[int],
    now: datetime | None = None,
) -> int:
    """Recompute the online consensus of the given items from the answers that count (an item
    left with none loses its consensus); return how many items now have one."""
    method, results = decide(
        job, schema, votes_of_items(session, item_ids), read_fit(session, job.id)
    )
    write_results(session, job.id, method, results, now or utcnow())
    kept = {r.item_id for r in results}
    gone = [i for i in item_ids if i not in kept]
    if gone:
        session.execute(delete(ItemResult).where(ItemResult.item_id.in_(gone)))
    return len(results)


def recount_items(session: Session, job: Job, task_ids: Sequence[int], now: datetime) -> int:
    """After a review changed which answers of these tasks count (a rejection, or its overturn
    or approval after all): recompute the consensus of the tasks' regular items that have one
    or whose task is complete. Bounded by the tasks' items and their answers; flushes, never
    commits. Returns how many items now have a consensus."""
    if not task_ids:
        return 0
    item_ids = sorted(
        set(
            session.scalars(
                select(TaskItem.item_id)
                .join(Task, Task.id == TaskItem.task_id)
                .join(Item, Item.id == TaskItem.item_id)
                .outerjoin(ItemResult, ItemResult.item_id == TaskItem.item_id)
                .where(
                    TaskItem.task_id.in_(list(task_ids)),
                    Item.is_gold.is_(False),
                    (Task.status == TaskStatus.complete) | ItemResult.item_id.is_not(None),
                )
            )
        )
    )
    if not item_ids:
        return 0
    schema = LabelSchema.model_validate(job.label_schema)
    return refresh_item_results(session, job, schema, item_ids, now)


def refit_job(session: Session, job: Job, schema: LabelSchema, now: datetime) -> ConsensusFit:
    """Fit the job's method over all its answers that count (gold items clamped to their known
    answers), rewrite the consensus of every item of a completed task, and store the model as the
    job's next fit version. Deterministic for the same answers."""
    by_item: dict[ItemId, list[tuple[AnnotatorId, AnswerValue]]] = {}
    answers = 0
    for item_id, annotator_id, value in session.execute(counted_votes(Answer.job_id == job.id)):
        by_item.setdefault(item_id, []).append((annotator_id, value))
        answers += 1
    gold: dict[ItemId, AnswerValue] = dict(
        session.execute(
            select(Item.id, Item.gold_answer).where(
                Item.job_id == job.id, Item.is_gold.is_(True), Item.gold_answer.is_not(None)
            )
        ).all()
    )
    fitted = aggregate_job(schema, by_item, Method(job.consensus_method), gold=gold, seed=job.id)
    done = set(
        session.scalars(
            select(TaskItem.item_id)
            .join(Task, Task.id == TaskItem.task_id)
            .where(Task.job_id == job.id, Task.status == TaskStatus.complete)
        )
    )
    results = [
        Consensus(item_id, c.answer, c.confidence, c.answer_count)
        for item_id, c in fitted.items.items()
        if item_id in done and item_id not in gold
    ]
    write_results(session, job.id, job.consensus_method, results, now)
    row = session.get(ConsensusFit, job.id, with_for_update=True)
    if row is None:
        row = ConsensusFit(job_id=job.id, version=0)
        session.add(row)
    row.method = job.consensus_method
    row.version += 1
    row.model = fitted.model.to_json()
    row.answers = answers
    row.items = len(results)
    row.fitted_at = now
    session.flush()
    return row


def answers_since_fit(session: Session, job_id: int) -> tuple[int, int]:
    """(answers the last fit saw, answers given since it), for deciding when to refit."""
    row = session.get(ConsensusFit, job_id)
    newer = select(func.count()).where(Answer.job_id == job_id)
    if row is not None:
        newer = newer.where(Answer.created_at > row.fitted_at)
    return (row.answers if row is not None else 0), session.scalar(newer) or 0
