"""How far a job's gold reaches in tasks split with gold baked in (before gold was chosen at
claim time, `app.routing.gold`; jobs split since hold no gold in their tasks, so this finds
nothing to warn about). Nobody is shown a gold item twice, so an annotator can do at most about
`gold items ÷ gold items per gold task` of the tasks holding gold. When finishing those tasks
(each needing `overlap_min` answers) takes more annotators than a small crowd, the job can stall
with tasks open while everyone has seen its gold. This module measures that, for the warning
given on activation and kept in progress, and counts the annotators who have seen all of a job's
gold (the quality report: with gold chosen at claim they keep getting regular work).

Thin gold: the gold-holding tasks need more than `CROWD` annotators to finish, that is
`ceil(gold tasks × overlap_min ÷ per annotator) > CROWD`, where
`per annotator = floor(gold items ÷ mean gold items per gold task)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models.jobs import GoldExposure, Item, Job, Task, TaskItem

# The crowd a job can count on without saying so: more annotators needed than this is a warning.
CROWD = 5


@dataclass(frozen=True)
class GoldReach:
    gold_items: int
    gold_tasks: int  # tasks holding at least one gold item
    per_annotator: int  # gold-holding tasks one annotator can do at most
    annotators_needed: int  # to finish every gold-holding task at the job's overlap


def gold_reach(session: Session, job: Job) -> GoldReach | None:
    """The reach of the job's gold over its tasks (None without gold or without gold tasks)."""
    gold_items = session.scalar(
        select(func.count()).where(Item.job_id == job.id, Item.is_gold.is_(True))
    )
    if not gold_items:
        return None
    gold_tasks, gold_slots = session.execute(
        select(func.count(func.distinct(TaskItem.task_id)), func.count())
        .select_from(TaskItem)
        .join(Item, Item.id == TaskItem.item_id)
        .join(Task, Task.id == TaskItem.task_id)
        .where(Task.job_id == job.id, Item.is_gold.is_(True))
    ).one()
    if not gold_tasks:
        return None
    per_task = gold_slots / gold_tasks
    per_annotator = max(1, int(gold_items / per_task + 1e-9))
    needed = math.ceil(gold_tasks * job.overlap_min / per_annotator)
    return GoldReach(gold_items, gold_tasks, per_annotator, needed)


def thin_gold_warning(session: Session, job: Job) -> str | None:
    """A warning for the client when the job's gold is thin for its size, else None."""
    reach = gold_reach(session, job)
    if reach is None or reach.annotators_needed <= CROWD:
        return None
    return (
        f"Gold is thin for this job: {reach.gold_tasks} tasks hold some of its "
        f"{reach.gold_items} gold items and nobody sees a gold item twice, so one annotator "
        f"can do at most {reach.per_annotator} of them; finishing them at overlap "
        f"{job.overlap_min} takes at least {reach.annotators_needed} annotators. Add gold "
        "items or lower the gold ratio."
    )


def annotators_out_of_gold(session: Session, job: Job) -> int:
    """How many annotators have been shown every gold item of the job."""
    gold_items = session.scalar(
        select(func.count()).where(Item.job_id == job.id, Item.is_gold.is_(True))
    )
    if not gold_items:
        return 0
    seen = (
        select(GoldExposure.annotator_id)
        .join(Item, Item.id == GoldExposure.item_id)
        .where(Item.job_id == job.id, Item.is_gold.is_(True))
        .group_by(GoldExposure.annotator_id)
        .having(func.count() >= gold_items)
        .subquery()
    )
    return session.scalar(select(func.count()).select_from(seen)) or 0
