"""The quality rules as pure decisions: functions of plain numbers, no session, no clock.

Three callers take the same decisions from here: the batch after each stats refresh
(`enforcement.enforce`), the cheap check at submit (`enforcement.check_submit`, and the lead's
submit flow through `decide_at_submit`), and the views that explain them. Each decision carries
what the annotator is shown (the reason, the thresholds and their own numbers, never anyone
else's data or a gold answer) so the action row can be written as is.

The rules:
- **gold accuracy** — remove from a job when the mean gold score is below X after at least N
  gold answers (counted in the rule's window: since the last removal an admin reversed, so a
  reversed removal is not re-imposed on the same evidence).
- **fast submit** — flag a submit whose seconds on the task (claim to submit, wall time) are
  below the job's floor. Wall time rather than measured active time: active time leaves out
  gaps longer than the heartbeat interval, so a slow annotator whose client sent no heartbeat
  has 0 active seconds and would be flagged as fast. Wall time is never less than active time,
  so every submit it flags was fast by both measures.
- **identical answers** — flag a run of L identical answers in a row within a job (the run
  starts afresh after each flag, so one long run gives one flag per L answers).
- **repeated removals** — propose suspending the account after K removals not reversed (again
  only once the count has grown past the last proposal an admin dismissed).
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import orjson

from app.core.settings import Settings
from app.models.quality import ActionKind, QualityRule

T = TypeVar("T")


@dataclass(frozen=True)
class Thresholds:
    """The rule thresholds in force for one job (platform defaults with the job's overrides)."""

    removal_gold_accuracy: float
    removal_min_gold_answers: int
    identical_run_length: int
    speed_floor_seconds: float | None  # None: no floor known yet, nothing is flagged as fast
    suspension_after_removals: int

    @classmethod
    def platform(cls, settings: Settings) -> Thresholds:
        return cls(
            removal_gold_accuracy=settings.quality_removal_gold_accuracy,
            removal_min_gold_answers=settings.quality_removal_min_gold_answers,
            identical_run_length=settings.quality_identical_run_length,
            speed_floor_seconds=None,
            suspension_after_removals=settings.quality_suspension_after_removals,
        )

    def for_job(
        self,
        *,
        removal_gold_accuracy: float | None = None,
        removal_min_gold_answers: int | None = None,
        identical_run_length: int | None = None,
        speed_floor_seconds: float | None = None,
        derived_floor_seconds: float | None = None,
    ) -> Thresholds:
        """These defaults with a job's overrides (None: keep the default). The job's own speed
        floor wins over the one derived from its submits."""
        floor = speed_floor_seconds if speed_floor_seconds is not None else derived_floor_seconds
        return replace(
            self,
            removal_gold_accuracy=_or(removal_gold_accuracy, self.removal_gold_accuracy),
            removal_min_gold_answers=_or(removal_min_gold_answers, self.removal_min_gold_answers),
            identical_run_length=_or(identical_run_length, self.identical_run_length),
            speed_floor_seconds=floor,
        )


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


@dataclass(frozen=True)
class Decision:
    """What a rule decided: the action to record, with the reason, the thresholds and the
    annotator's own numbers behind it."""

    rule: QualityRule
    kind: ActionKind
    reason: str
    thresholds: dict[str, Any]
    numbers: dict[str, Any]
    slot: int | None = None  # at submit: the answer (slot) that triggered it


# --- the rules, one function each ----------------------------------------------------------------


def gold_removal(gold_answers: int, gold_score_sum: float, t: Thresholds) -> Decision | None:
    """Remove from the job when, after at least N gold answers, the mean gold score is below X."""
    if gold_answers < t.removal_min_gold_answers or gold_answers == 0:
        return None
    accuracy = gold_score_sum / gold_answers
    if accuracy >= t.removal_gold_accuracy:
        return None
    return Decision(
        QualityRule.gold_accuracy,
        ActionKind.removal,
        f"Removed from this job: your accuracy on control questions was {accuracy:.0%} over "
        f"{gold_answers} answers; this job needs at least {t.removal_gold_accuracy:.0%} after "
        f"{t.removal_min_gold_answers}.",
        {
            "min_accuracy": t.removal_gold_accuracy,
            "after_gold_answers": t.removal_min_gold_answers,
        },
        {"gold_accuracy": round(accuracy, 4), "gold_answers": gold_answers},
    )


def fast_submit(seconds: float, floor: float | None) -> Decision | None:
    """Flag a submit made in fewer seconds than the job's floor."""
    if floor is None or floor <= 0 or seconds >= floor:
        return None
    return Decision(
        QualityRule.fast_submit,
        ActionKind.flag,
        f"Flagged for review: submitted {seconds:.0f} s after claiming; this job expects at "
        f"least {floor:.0f} s per task.",
        {"floor_seconds": round(floor, 2)},
        {"seconds": round(seconds, 2)},
    )


def identical_run(run_length: int, t: Thresholds) -> Decision | None:
    """Flag a run of identical answers as long as the job's limit."""
    if run_length < t.identical_run_length:
        return None
    return Decision(
        QualityRule.identical_answers,
        ActionKind.flag,
        f"Flagged for review: {run_length} identical answers in a row in this job (the limit "
        f"is {t.identical_run_length}).",
        {"max_run": t.identical_run_length},
        {"run_length": run_length},
    )


def suspension_proposal(removals: int, dismissed_at: int | None, t: Thresholds) -> Decision | None:
    """Propose suspending the account after K removals not reversed; after an admin dismissed
    a proposal made at `dismissed_at` removals, only once there are more than that."""
    if removals < t.suspension_after_removals:
        return None
    if dismissed_at is not None and removals <= dismissed_at:
        return None
    return Decision(
        QualityRule.repeated_removals,
        ActionKind.suspension_proposal,
        f"Proposed for suspension: removed from {removals} jobs by quality rules (the limit is "
        f"{t.suspension_after_removals}); an administrator will decide.",
        {"max_removals": t.suspension_after_removals},
        {"removals": removals},
    )


def derived_floor(seconds: Sequence[float], share: float, min_submits: int) -> float | None:
    """The speed floor of a job whose client set none: `share` of the median seconds of its
    submits, once there are at least `min_submits`; None before that (or with a share of 0)."""
    if len(seconds) < min_submits or share <= 0:
        return None
    return round(share * statistics.median(seconds), 2)


# --- identical answers: keys and runs ------------------------------------------------------------


def answer_key(value: Any) -> str:
    """A short digest of an answer, equal for equal answers (keys sorted; a multi-choice list
    in any order is the same answer)."""
    return hashlib.sha256(orjson.dumps(canonical(value), option=orjson.OPT_SORT_KEYS)).hexdigest()[
        :16
    ]


def canonical(value: Any) -> Any:
    """An answer in a form where equal answers are equal (lists of labels sorted)."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        if all(isinstance(v, str) for v in items):
            return sorted(items)
        return items
    return value


def same_answer(value: Any, consensus: Any) -> bool:
    """Whether an answer equals the consensus on every control the consensus has."""
    if not isinstance(value, dict) or not isinstance(consensus, dict) or not consensus:
        return False
    return all(
        name in value and canonical(value[name]) == canonical(v) for name, v in consensus.items()
    )


@dataclass(frozen=True)
class Run:
    """The current run of identical answers: its answer key and length."""

    key: str | None = None
    length: int = 0

    def then(self, key: str) -> Run:
        return Run(key, self.length + 1) if key == self.key else Run(key, 1)


@dataclass(frozen=True)
class LongRun:
    """L identical answers in a row: what one identical-answers flag covers."""

    length: int
    first_answer_id: int
    last_answer_id: int


def long_runs(keys: Sequence[tuple[int, str]], limit: int) -> tuple[list[LongRun], Run]:
    """Over (answer id, answer key) pairs in order: every `limit` identical answers in a row
    (each one flag; the run then counts afresh, so 2L in a row are two flags), and the run at
    the end. The same counting as `decide_at_submit`, over a whole history at once."""
    found: list[LongRun] = []
    run = Run()
    for position, (answer_id, key) in enumerate(keys):
        run = run.then(key)
        if run.length >= limit:
            found.append(LongRun(limit, keys[position - limit + 1][0], answer_id))
            run = Run(key, 0)
    return found, run


# --- the check at submit -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningCounts:
    """An annotator's running numbers on one job, within the rules' window."""

    gold_answers: int = 0
    gold_score_sum: float = 0.0
    run: Run = field(default_factory=Run)


@dataclass(frozen=True)
class SubmitNumbers:
    """One submitted assignment, as the rules see it."""

    seconds: float  # wall time from claim to submit
    gold_scores: tuple[float, ...]  # the scores of its graded gold items
    answer_keys: tuple[str, ...]  # `answer_key` of each answer, in slot order


@dataclass(frozen=True)
class SubmitVerdict:
    decisions: tuple[Decision, ...]
    counts: RunningCounts  # the running numbers with this submit counted


def decide_at_submit(numbers: SubmitNumbers, counts: RunningCounts, t: Thresholds) -> SubmitVerdict:
    """The rules' decisions on one submit, from its numbers and the annotator's running counts
    on the job before it: a fast-submit flag, an identical-answers flag (the run then starts
    afresh), a removal. Pure and cheap: the submit flow may call it in its own transaction."""
    decisions: list[Decision] = []
    flag = fast_submit(numbers.seconds, t.speed_floor_seconds)
    if flag is not None:
        decisions.append(flag)
    run = counts.run
    for slot, key in enumerate(numbers.answer_keys):
        run = run.then(key)
        flagged = identical_run(run.length, t)
        if flagged is not None:
            decisions.append(replace(flagged, slot=slot))
            run = Run(key, 0)
    gold_answers = counts.gold_answers + len(numbers.gold_scores)
    gold_sum = counts.gold_score_sum + sum(numbers.gold_scores)
    if numbers.gold_scores:
        removal = gold_removal(gold_answers, gold_sum, t)
        if removal is not None:
            decisions.append(removal)
    return SubmitVerdict(tuple(decisions), RunningCounts(gold_answers, gold_sum, run))
