"""The rules of leases and submits as pure functions of plain values: every decision `flow`
takes, on either database's store. Tested as decision tables (`tests/routing/test_rules.py`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson

from app.core.errors import ValidationFailed
from app.core.settings import Settings
from app.label_schema import LabelSchema, validate_answer
from app.label_schema.grading import grade_answer
from app.models.jobs import AssignmentStatus, TaskStatus
from app.routing.errors import (
    AlreadySubmitted,
    AnswersDiffer,
    AssignmentReleased,
    LeaseEnded,
    SlotTaken,
)

FINISHED = (AssignmentStatus.submitted, AssignmentStatus.approved, AssignmentStatus.rejected)
HEARTBEAT_SLACK = timedelta(seconds=5)


class LeaseState(Protocol):
    """What the rules read of an assignment (an ORM object or a row)."""

    @property
    def status(self) -> AssignmentStatus: ...
    @property
    def claimed_at(self) -> datetime: ...
    @property
    def lease_expires_at(self) -> datetime: ...
    @property
    def last_seen_at(self) -> datetime: ...
    @property
    def active_seconds(self) -> int: ...


class SlotState(Protocol):
    """What the rules read of a task."""

    @property
    def status(self) -> TaskStatus: ...
    @property
    def live_count(self) -> int: ...
    @property
    def done_count(self) -> int: ...
    @property
    def overlap_target(self) -> int: ...


@dataclass(frozen=True)
class TaskItemView:
    """One item of a task, for the server's own use (it carries the gold answer)."""

    slot: int
    item_id: int
    payload: dict[str, Any]
    is_gold: bool
    gold_answer: dict[str, Any] | None
    external_id: str | None = None


@dataclass(frozen=True)
class PrelabelView:
    """An item's pre-label in a claimed task, for deciding whether to show it."""

    task_id: int
    slot: int
    prelabel: dict[str, Any]
    score: float | None
    is_gold: bool
    gold_answer: dict[str, Any] | None


def shows_prelabel(view: PrelabelView) -> bool:
    """A pre-label is shown unless it would give a gold item's answer key away."""
    return not (view.is_gold and (view.gold_answer is None or view.prelabel == view.gold_answer))


@dataclass(frozen=True)
class SlotAfterSubmit:
    live_count: int
    done_count: int
    status: TaskStatus
    completed_at: datetime | None


@dataclass(frozen=True)
class LeaseReport:
    """An assignment's lease after a heartbeat or release."""

    assignment_id: int
    status: AssignmentStatus
    lease_expires_at: datetime
    lease_limit: datetime
    active_seconds: int


@dataclass(frozen=True)
class Submitted:
    """The outcome of a submit (or of its replay)."""

    assignment_id: int
    status: AssignmentStatus
    submitted_at: datetime
    active_seconds: int
    gold_scores: list[tuple[int, float]]  # (slot, score) of the graded gold items
    instant_feedback: bool
    replayed: bool
    # The job whose task this submit completed (None: the task needs more answers, or a replay).
    completed_task_of: int | None = None


def public_status(assignment: LeaseState, now: datetime) -> str:
    """The status an annotator sees: a live assignment past its lease is already expired."""
    if assignment.status is AssignmentStatus.active and assignment.lease_expires_at <= now:
        return "expired"
    return assignment.status.value


def lease_limit(claimed_at: datetime, lease_seconds: int, settings: Settings) -> datetime:
    """Heartbeats never extend a lease past this."""
    return claimed_at + timedelta(seconds=lease_seconds) * settings.max_lease_factor


def extended_lease(
    assignment: LeaseState, lease_seconds: int, now: datetime, settings: Settings
) -> datetime:
    """The lease after a heartbeat at `now` (409 once the lease has run out): one more lease
    time from now, capped at the lease limit, never shorter than it was."""
    if assignment.status is not AssignmentStatus.active or assignment.lease_expires_at <= now:
        raise LeaseEnded(
            "This assignment's lease has ended",
            assignment_status=public_status(assignment, now),
        )
    limit = lease_limit(assignment.claimed_at, lease_seconds, settings)
    return max(assignment.lease_expires_at, min(now + timedelta(seconds=lease_seconds), limit))


def active_seconds_at(assignment: LeaseState, now: datetime, settings: Settings) -> int:
    """Active time after being seen at `now`: the gap since the annotator was last seen counts,
    unless it is longer than the heartbeat interval (they were idle or away)."""
    gap = now - assignment.last_seen_at
    interval = timedelta(seconds=settings.heartbeat_interval_seconds) + HEARTBEAT_SLACK
    if timedelta(0) < gap <= interval:
        return assignment.active_seconds + int(gap.total_seconds())
    return assignment.active_seconds


def check_releasable(assignment: LeaseState, now: datetime) -> bool:
    """Whether a release changes anything (False: already released, a no-op); 409 for a
    submitted (`already-submitted`) or expired (`lease-ended`) assignment. An active one past
    its lease may still be released: nobody else holds its slot yet."""
    if assignment.status is AssignmentStatus.released:
        return False
    if assignment.status in FINISHED:
        raise AlreadySubmitted(f"A {assignment.status.value} assignment cannot be released")
    if assignment.status is not AssignmentStatus.active:
        raise LeaseEnded(f"A {public_status(assignment, now)} assignment cannot be released")
    return True


def check_resumable(assignment: LeaseState, now: datetime) -> None:
    """A reloaded page may pick up a live assignment again; 409 for one that is not live:
    `already-submitted` (submitted or reviewed), `assignment-released`, `lease-ended`."""
    if assignment.status in FINISHED:
        raise AlreadySubmitted(f"This assignment is {assignment.status.value}")
    if assignment.status is AssignmentStatus.released:
        raise AssignmentReleased("This assignment was released")
    if assignment.status is not AssignmentStatus.active or assignment.lease_expires_at <= now:
        raise LeaseEnded(
            "This assignment's lease has ended",
            assignment_status=public_status(assignment, now),
        )


def answers_digest(answers: Sequence[Any]) -> str:
    return hashlib.sha256(orjson.dumps(list(answers), option=orjson.OPT_SORT_KEYS)).hexdigest()


def check_resubmit(assignment: LeaseState, answers_hash: str | None, digest: str) -> bool:
    """Whether this submit replays an earlier one (True: answer as before); 409 when the
    answers differ from the submitted ones or the assignment was released."""
    if assignment.status in FINISHED:
        if answers_hash != digest:
            raise AnswersDiffer("This assignment was already submitted with different answers")
        return True
    if assignment.status is AssignmentStatus.released:
        raise AssignmentReleased("This assignment was released")
    return False


def check_lease(assignment: LeaseState, task: SlotState, now: datetime, settings: Settings) -> bool:
    """Whether a submit takes its slot back (True) or still holds it (False); 409 when it is
    too late or the slot went to someone else. A live lease holds its slot; a lease that ran
    out is accepted within the grace period only while the slot has not been handed on."""
    grace = timedelta(seconds=settings.submit_grace_seconds)
    if assignment.status is AssignmentStatus.active and now <= assignment.lease_expires_at:
        return False
    if now > assignment.lease_expires_at + grace:
        raise LeaseEnded(
            "The lease ran out and the grace period for late answers is over",
            lease_expired_at=assignment.lease_expires_at.isoformat(),
        )
    if assignment.status is AssignmentStatus.active:
        return False  # ran out, but the sweep has not taken the slot back yet
    # Expired and swept: the slot went back to the pool. Take it again only if it is still free.
    if (
        task.status is not TaskStatus.open
        or task.live_count + task.done_count >= task.overlap_target
    ):
        raise SlotTaken("The lease ran out and the task was given to someone else")
    return True


def slot_after_submit(task: SlotState, reclaims_slot: bool, now: datetime) -> SlotAfterSubmit:
    """The task's counters and status once one more answer set is in."""
    live = task.live_count if reclaims_slot else task.live_count - 1
    done = task.done_count + 1
    if done >= task.overlap_target:
        return SlotAfterSubmit(live, done, TaskStatus.complete, now)
    status = task.status
    if status is TaskStatus.open and live + done >= task.overlap_target:
        status = TaskStatus.full
    return SlotAfterSubmit(live, done, status, None)


def grows_overlap(
    slot: SlotAfterSubmit,
    overlap_target: int,
    confidence: float,
    threshold: float | None,
    overlap_max: int,
) -> bool:
    """Dynamic overlap: whether a task that just reached its target number of answers asks for
    one more instead of completing (its least confident item is below the job's confidence
    threshold, and the target is still below the job's overlap maximum)."""
    return (
        slot.status is TaskStatus.complete
        and threshold is not None
        and confidence < threshold
        and overlap_target < overlap_max
    )


def validate_answers(
    schema: LabelSchema, items: Sequence[TaskItemView], answers: Sequence[Any]
) -> None:
    """422 listing every problem (with a pointer into the request) unless there is one valid
    answer per item, in slot order."""
    if len(answers) != len(items):
        raise ValidationFailed(
            f"This task has {len(items)} item(s): send one answer per item, in order",
            errors=[
                {
                    "pointer": "#/answers",
                    "detail": f"expected {len(items)} answers, got {len(answers)}",
                }
            ],
        )
    problems = []
    for slot, (item, answer) in enumerate(zip(items, answers, strict=True)):
        for problem in validate_answer(schema, answer, item.payload):
            pointer = f"#/answers/{slot}" + str(problem["pointer"]).removeprefix("#")
            problems.append({**problem, "pointer": pointer})
    if problems:
        raise ValidationFailed("The answers do not fit the job's label schema", errors=problems)


def grade_gold(
    schema: LabelSchema, items: Sequence[TaskItemView], answers: Sequence[Any]
) -> list[float | None]:
    """The score of each answer: graded against the key for gold items, None for the rest."""
    return [
        grade_answer(schema, answer, item.gold_answer, item.payload)
        if item.is_gold and item.gold_answer is not None
        else None
        for item, answer in zip(items, answers, strict=True)
    ]


def mean_score(gold_scores: Sequence[tuple[int, float]]) -> float | None:
    """The assignment's gold score: the mean over its graded items (None without any)."""
    return sum(s for _, s in gold_scores) / len(gold_scores) if gold_scores else None


def gold_feedback(
    items: Sequence[TaskItemView], scores: Sequence[float | None]
) -> list[tuple[int, float]]:
    """(slot, score) of the graded items."""
    return [(item.slot, s) for item, s in zip(items, scores, strict=True) if s is not None]


def claims_per_statement(gold_ratio: float, wanted: int) -> int:
    """How many tasks one claim statement may take: one at a time in a job with gold, so a gold
    item seen in one claimed task rules out the next task that holds it."""
    return 1 if gold_ratio > 0 else wanted
