"""Splitting a job's items into microtasks, with gold items mixed in.

Each task has `items_per_task` slots. Gold slots are spread evenly at the job's gold ratio (an
error-diffusion accumulator), filled from the job's gold pool in a shuffled cycle (a gold item is
shown in many tasks, never twice in one), and the slot order inside a task is shuffled, so nothing
an annotator sees tells gold apart. With one item per task the accumulator makes whole gold tasks.
"""

from __future__ import annotations

import random
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
    gold_ids = list(
        session.scalars(
            select(Item.id).where(Item.job_id == job.id, Item.is_gold.is_(True)).order_by(Item.id)
        )
    )
    rng = random.Random()  # noqa: S311 (mixing, not secrecy: annotators never see the order)
    gold = _GoldCycle(gold_ids, rng)
    per_task = job.items_per_task
    ratio = job.gold_ratio if gold_ids else 0.0
    sequence = session.scalar(select(func.count()).where(Task.job_id == job.id)) or 0
    debt = 0.0
    created = 0
    pending: list[tuple[list[int], bool, float]] = []
    leftover: list[Any] = []

    for rows in _unsplit_batches(session, job):
        leftover.extend(rows)
        while len(leftover) >= per_task or (leftover and rows is _LAST):
            debt += ratio * per_task
            gold_slots = min(int(debt + 1e-9), per_task, len(gold_ids))
            debt -= gold_slots
            regular = leftover[: per_task - gold_slots]
            del leftover[: per_task - gold_slots]
            items = [r.id for r in regular] + gold.take(gold_slots)
            rng.shuffle(items)
            sequence += 1
            pending.append((items, gold_slots > 0, _order_key(job, regular, sequence, rng)))
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


def _order_key(job: Job, regular: list[Any], sequence: int, rng: random.Random) -> float:
    if job.task_order is TaskOrder.uncertainty:
        scores = [r.prelabel_score for r in regular if r.prelabel_score is not None]
        # Least confident pre-label first; unscored items after every scored one; gold-only
        # tasks spread at random.
        if not regular:
            return rng.random()
        return min(scores) if scores else 1.0 + sequence * 1e-9
    return float(sequence)


def _insert_tasks(session: Session, job: Job, pending: list[tuple[list[int], bool, float]]) -> int:
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
                "has_gold": has_gold,
            }
            for _, has_gold, key in pending
        ],
    ).all()
    session.execute(
        insert(TaskItem),
        [
            {"task_id": task_id, "position": position, "item_id": item_id}
            for task_id, (items, _, _) in zip(ids, pending, strict=True)
            for position, item_id in enumerate(items)
        ],
    )
    return len(ids)


class _GoldCycle:
    """Hands out gold item ids in a reshuffled cycle, distinct within one task."""

    def __init__(self, ids: list[int], rng: random.Random) -> None:
        self.ids, self.rng, self.queue = ids, rng, list[int]()

    def take(self, count: int) -> list[int]:
        chosen: list[int] = []
        while len(chosen) < count:
            if not self.queue:
                self.queue = self.ids[:]
                self.rng.shuffle(self.queue)
            candidate = self.queue.pop()
            if candidate not in chosen:
                chosen.append(candidate)
        return chosen
