"""Gold chosen at claim time: whether a claimed assignment gets a gold item, and where it goes.

Tasks hold regular items only (`app.jobs.splitting`). After a task is claimed, the claim adds ONE
gold item of the job the annotator has never been shown (random among those left) to the
assignment, with probability p_a, at a slot drawn at random among the k + 1 items shown, so
nothing tells it apart. Nobody sees a gold item twice (`gold_exposures`); an annotator who has
seen all of a job's gold simply gets regular work. Tasks split before this (`tasks.has_gold`)
keep their gold in `task_items` and get none added.

The rate, for an assignment of k regular items in a job whose `gold_ratio` is g:

    p_a = clamp(min(1, k·g / (1 − g)) × f_a, 0, 1)

k·g/(1 − g) is the number of gold items per k regular items that makes gold a share g of what
is shown; at one gold item per assignment it is the chance of adding one. f_a adapts it to the
annotator's record in the job (graded gold answers n, gold accuracy acc = mean score, and the
job's gold accuracy threshold T, `removal_gold_accuracy`):

- 2.0 while n < 10 (new: learn about them quickly);
- 1.5 when |acc − T| < 0.1 (near the line: check more);
- 0.5 when n ≥ 30 and acc ≥ T + 0.1 (proven: check less);
- 1.0 otherwise.

The factors are chosen, not fitted; and with one gold item at most per assignment (p_a capped at
1, gold running out) the share of gold over a job only approximates g. The record is one
cached read per annotator and job (`app.core.caches.gold_records`), and the gold step is one
extra statement only when p_a says gold is due.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.settings import Settings
from app.models.jobs import Answer
from app.quality.job_settings import thresholds_for_jobs
from app.routing.rules import TaskItemView

NEW_BELOW = 10  # graded gold answers under which an annotator is new to the job
PROVEN_FROM = 30  # graded gold answers from which an annotator may be proven
MARGIN = 0.1  # accuracy within this of the threshold is near it; this above it, proven
FACTOR_NEW, FACTOR_NEAR, FACTOR_PROVEN = 2.0, 1.5, 0.5

_random = random.SystemRandom()


@dataclass(frozen=True)
class GoldRecord:
    """An annotator's gold record in one job."""

    graded: int  # graded gold answers
    accuracy: float | None  # their mean score (None before the first)
    threshold: float  # the job's gold accuracy threshold


def read_record(session: Session, settings: Settings, annotator_id: int, job_id: int) -> GoldRecord:
    graded, accuracy = session.execute(
        select(func.count(Answer.score), func.avg(Answer.score)).where(
            Answer.job_id == job_id,
            Answer.annotator_id == annotator_id,
            Answer.score.is_not(None),
        )
    ).one()
    threshold = thresholds_for_jobs(session, settings, [job_id])[job_id].removal_gold_accuracy
    return GoldRecord(int(graded or 0), None if accuracy is None else float(accuracy), threshold)


def factor(record: GoldRecord) -> float:
    """The adaptive factor f_a (see the module's docstring)."""
    if record.graded < NEW_BELOW:
        return FACTOR_NEW
    assert record.accuracy is not None
    if abs(record.accuracy - record.threshold) < MARGIN:
        return FACTOR_NEAR
    if record.graded >= PROVEN_FROM and record.accuracy >= record.threshold + MARGIN:
        return FACTOR_PROVEN
    return 1.0


def rate(gold_ratio: float, regular_items: int, record: GoldRecord) -> float:
    """p_a: the probability that an assignment of `regular_items` items gets a gold item."""
    if gold_ratio <= 0 or regular_items <= 0:
        return 0.0
    base = min(1.0, regular_items * gold_ratio / (1 - gold_ratio))
    return max(0.0, min(1.0, base * factor(record)))


def due(p: float) -> bool:
    return _random.random() < p


def slot_for(regular_items: int) -> int:
    """A slot for the gold item among the `regular_items + 1` shown, uniformly at random."""
    return _random.randint(0, regular_items)


def shown_with_gold(
    items: tuple[tuple[int, dict[str, Any]], ...], slot: int, payload: dict[str, Any]
) -> tuple[tuple[int, dict[str, Any]], ...]:
    """(slot, payload) of a claimed task's items with the gold item put in at `slot`."""
    shifted = [(s + 1 if s >= slot else s, p) for s, p in items]
    return tuple(sorted([*shifted, (slot, payload)], key=lambda pair: pair[0]))


def items_with_gold(items: list[TaskItemView], gold: TaskItemView | None) -> list[TaskItemView]:
    """A task's items with the assignment's gold item (if any) put in at its slot."""
    if gold is None:
        return items
    shifted = [replace(i, slot=i.slot + 1) if i.slot >= gold.slot else i for i in items]
    return sorted([*shifted, gold], key=lambda i: i.slot)
