"""Who works in the simulated market: annotator kinds, their skill and speed, how they answer."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.simulate.tasks import Answer, TaskType


class Kind(StrEnum):
    honest = "honest"  # accuracy and speed drawn from distributions
    dropout = "dropout"  # honest, but abandons some leases and finally leaves
    drifter = "drifter"  # honest at first, careless after a while
    spammer = "spammer"  # random answers, fast
    bot = "bot"  # always the same answer, fastest

    @property
    def is_bad(self) -> bool:
        """Kinds the quality rules must remove."""
        return self in (Kind.spammer, Kind.bot)

    @property
    def is_good(self) -> bool:
        """Kinds the quality rules must never remove."""
        return self in (Kind.honest, Kind.dropout)


#: Share of each kind in a population (the rest are honest).
MIX = {Kind.dropout: 0.10, Kind.drifter: 0.10, Kind.spammer: 0.13, Kind.bot: 0.07}
DRIFT_AFTER_TASKS = 12
DRIFT_ACCURACY = 0.35
DROPOUT_ABANDON_SHARE = 0.3
DROPOUT_LEAVES_AFTER = 6  # abandoned leases


@dataclass
class Annotator:
    index: int
    kind: Kind
    accuracy: float  # chance of an honest answer per item
    seconds_per_item: float
    email: str = ""
    token: str = ""
    user_id: int = 0
    tasks_done: int = 0
    abandoned: int = 0
    gone: bool = False
    idle_since: float | None = None
    last_next: dict[str, Any] | None = None  # the last empty `next` answer, as given
    qualified: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        return f"{self.kind.value}-{self.index:03d}"

    def current_accuracy(self) -> float:
        if self.kind is Kind.drifter and self.tasks_done >= DRIFT_AFTER_TASKS:
            return DRIFT_ACCURACY
        return self.accuracy

    def answer(
        self, rng: random.Random, task: TaskType, payload: dict[str, Any], truth: Answer
    ) -> Answer:
        if self.kind is Kind.bot:
            return task.constant()
        if self.kind is Kind.spammer:
            return task.spam(rng, payload)
        if rng.random() < self.current_accuracy():
            return task.honest(rng, truth, payload)
        return task.mistake(rng, truth, payload)

    def qualification_answer(
        self, rng: random.Random, task: TaskType, payload: dict[str, Any], truth: Answer
    ) -> Answer:
        """Spammers and bots take qualification tests carefully: they pass, then cheat."""
        if self.kind.is_bad:
            return (
                task.honest(rng, truth, payload)
                if rng.random() < 0.95
                else task.mistake(rng, truth, payload)
            )
        return self.answer(rng, task, payload, truth)

    def work_seconds(self, rng: random.Random, items: int) -> float:
        """Seconds one task of `items` items takes this annotator now."""
        base = self.seconds_per_item * items
        if self.kind is Kind.drifter and self.tasks_done >= DRIFT_AFTER_TASKS:
            base *= 0.5
        return max(2.0, rng.gauss(base, base * 0.15))

    def abandons(self, rng: random.Random) -> bool:
        return self.kind is Kind.dropout and rng.random() < DROPOUT_ABANDON_SHARE


def draw_population(rng: random.Random, size: int) -> list[Annotator]:
    """`size` annotators, kinds in the proportions of `MIX` (at least one of each when there is
    room), honest accuracy from Beta(18, 1.6) within [0.85, 0.99] and speed lognormal around 7 s
    per item; spammers take 1-2 s per item, bots 0.5 s."""
    kinds: list[Kind] = []
    for kind, share in MIX.items():
        kinds += [kind] * max(1 if size >= 10 else 0, round(size * share))
    kinds += [Kind.honest] * max(0, size - len(kinds))
    kinds = kinds[:size]
    rng.shuffle(kinds)
    people = []
    for index, kind in enumerate(kinds):
        accuracy = min(0.99, max(0.85, rng.betavariate(18, 1.6)))
        speed = min(20.0, max(3.0, rng.lognormvariate(1.95, 0.3)))
        if kind is Kind.spammer:
            accuracy, speed = 0.0, rng.uniform(1.0, 2.0)
        elif kind is Kind.bot:
            accuracy, speed = 0.0, 0.5
        people.append(Annotator(index=index, kind=kind, accuracy=accuracy, seconds_per_item=speed))
    return people
