"""Splitting a job's items into microtasks of regular items only.

Gold is not baked into tasks: the claim adds an unseen gold item of the job to an assignment at
the annotator's gold rate (`app.routing.gold`), so a job's gold never limits how many tasks one
annotator can do. Tasks split before this (`tasks.has_gold`, gold in `task_items`) still route
as they were split.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app.models.jobs import Item, Job, Task, TaskItem, TaskOrder, TaskStatus
from payouts import lifecycle as money

BATCH_ITEMS = 5000


def split_into_tasks(session: Session, job: Job) -> int:
    """Group the job's regular items not yet in a task into new open tasks; return how many
    tasks were created. Their slots are reserved in the job's escrow (`InsufficientFunds`, a
    402 stating the shortfall, when the client's balance is short: roll back). The caller holds
    the job's row lock (imports take it too)."""
    per_task = job.items_per_task
    sequence = session.scalar(select(func.count()).where(Task.job_id == job.id)) or 0
    created = 0
    pending: list[tuple[list[int], float]] = []
    leftover: list[Any] = []

    for rows in _unsplit_batches(session, job):
        leftover.extend(rows)
        while len(leftover) >= per_task or (leftover and rows is _LAST):
            regular = leftover[:per_task]
            del leftover[:per_task]
            sequence += 1
            pending.append(([r.id for r in regular], _order_key(job, regular, sequence)))
            if len(pending) >= BATCH_ITEMS // per_task + 1:
                created += _insert_tasks(session, job, pending)
                pending.clear()
        job.split_watermark = max(job.split_watermark, rows[-1].id if rows else 0)
    created += _insert_tasks(session, job, pending)
    session.flush()
    if created:
        money.tasks_added(session, job)
    return created


_LAST: list[Any] = []


def _unsplit_batches(session: Session, job: Job) -> Iterator[list[Any]]:
    """Batches of (id, prelabel_score) of regular items past the watermark, then `_LAST`."""
    after = job.split_watermark
    while True:
        rows = list(
            session.execute(
                select(Item.id, Item.prelabel_score)
                .where(Item.job_id == job.id, Item.is_gold.is_(False), Item.id > after)
                .order_by(Item.id)
                .limit(BATCH_ITEMS)
            )
        )
        if not rows:
            break
        after = rows[-1].id
        yield rows
    yield _LAST


def _order_key(job: Job, regular: list[Any], sequence: int) -> float:
    if job.task_order is TaskOrder.uncertainty:
        scores = [r.prelabel_score for r in regular if r.prelabel_score is not None]
        # Least confident pre-label first; unscored items after every scored one.
        return min(scores) if scores else 1.0 + sequence * 1e-9
    return float(sequence)


def _insert_tasks(session: Session, job: Job, pending: list[tuple[list[int], float]]) -> int:
    if not pending:
        return 0
    ids = session.scalars(
        insert(Task).returning(Task.id, sort_by_parameter_order=True),
        [
            {
                "job_id": job.id,
                "status": TaskStatus.open,
                "order_key": key,
                "overlap_target": job.overlap_min,
                "live_count": 0,
                "done_count": 0,
                "has_gold": False,
            }
            for _, key in pending
        ],
    ).all()
    session.execute(
        insert(TaskItem),
        [
            {"task_id": task_id, "position": position, "item_id": item_id}
            for task_id, (items, _) in zip(ids, pending, strict=True)
            for position, item_id in enumerate(items)
        ],
    )
    return len(ids)
