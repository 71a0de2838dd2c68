"""The rules of leases and submits as decision tables: every case a row, the outcome (a value or
the problem type raised) beside it. Times are offsets in seconds from a fixed `NOW`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from app.core.errors import TesseraError
from app.core.settings import Settings
from app.models.jobs import AssignmentStatus as A
from app.models.jobs import TaskStatus as T
from app.routing import gold, rules
from app.routing.errors import (
    AlreadySubmitted,
    AnswersDiffer,
    AssignmentReleased,
    LeaseEnded,
    SlotTaken,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LEASE = 600  # the job's lease time, seconds
SETTINGS = Settings(
    database_url="sqlite://",
    secret_key="k" * 40,
    heartbeat_interval_seconds=30,
    max_lease_factor=4,
    submit_grace_seconds=120,
    _env_file=None,
)  # type: ignore[call-arg]


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


@dataclass(frozen=True)
class Lease:
    status: A
    claimed_at: datetime
    lease_expires_at: datetime
    last_seen_at: datetime
    active_seconds: int = 0


@dataclass(frozen=True)
class Slots:
    status: T
    live_count: int
    done_count: int
    overlap_target: int


def lease(status: A = A.active, *, claimed: float = -100, expires: float = 500, seen: float = -10,
          active: int = 90) -> Lease:  # fmt: skip
    return Lease(status, at(claimed), at(expires), at(seen), active)


def outcome(call: object) -> object:
    """What a rule gives: its value, or the problem type it raises."""
    try:
        return call() if callable(call) else call
    except TesseraError as problem:
        return type(problem)


# extended_lease: (assignment, heartbeat at) -> new lease end, or the problem
@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        # live: one more lease time from now
        (lease(expires=100), 0, at(LEASE)),
        # never shorter than it was
        (lease(expires=900), 0, at(900)),
        # capped at claim time + lease x factor (claimed at -100: limit at 2,300)
        (lease(expires=2_000), 1_900, at(2_300)),
        # the lease has run out, even if the sweep has not marked it
        (lease(expires=0), 0, LeaseEnded),
        (lease(expires=-1), 0, LeaseEnded),
        (lease(A.expired, expires=-1), 0, LeaseEnded),
        (lease(A.released), 0, LeaseEnded),
        (lease(A.submitted), 0, LeaseEnded),
    ],
)
def test_extended_lease(state: Lease, now: float, expected: object) -> None:
    assert outcome(lambda: rules.extended_lease(state, LEASE, at(now), SETTINGS)) == expected


# active_seconds_at: a gap counts when it is within the heartbeat interval plus 5 s of slack
@pytest.mark.parametrize(
    ("seen", "now", "expected"),
    [
        (-10, 0, 100),  # a 10 s gap counts
        (-35, 0, 125),  # 35 s = interval + slack: still counts
        (-36, 0, 90),  # longer: idle or away, not counted
        (0, 0, 90),  # no gap
        (10, 0, 90),  # a clock that went backwards counts nothing
    ],
)
def test_active_seconds_at(seen: float, now: float, expected: int) -> None:
    assert rules.active_seconds_at(lease(seen=seen, active=90), at(now), SETTINGS) == expected


# check_releasable: True releases, False is a no-op, or the problem
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (lease(A.active), True),
        (lease(A.active, expires=-5), True),  # ran out but nobody else holds the slot yet
        (lease(A.released), False),
        (lease(A.expired, expires=-5), LeaseEnded),
        (lease(A.submitted), AlreadySubmitted),
        (lease(A.approved), AlreadySubmitted),
        (lease(A.rejected), AlreadySubmitted),
    ],
)
def test_check_releasable(state: Lease, expected: object) -> None:
    assert outcome(lambda: rules.check_releasable(state, NOW)) == expected


# check_resubmit: True replays an earlier submit, False is a first submit, or the problem
@pytest.mark.parametrize(
    ("status", "stored", "sent", "expected"),
    [
        (A.active, None, "h1", False),
        (A.expired, None, "h1", False),  # a late submit: the lease rules decide
        (A.submitted, "h1", "h1", True),
        (A.approved, "h1", "h1", True),
        (A.rejected, "h1", "h1", True),
        (A.submitted, "h1", "h2", AnswersDiffer),
        (A.approved, "h1", "h2", AnswersDiffer),
        (A.released, None, "h1", AssignmentReleased),
    ],
)
def test_check_resubmit(status: A, stored: str | None, sent: str, expected: object) -> None:
    assert outcome(lambda: rules.check_resubmit(lease(status), stored, sent)) == expected


OPEN_WITH_ROOM = Slots(T.open, live_count=0, done_count=1, overlap_target=3)
OPEN_TAKEN = Slots(T.open, live_count=2, done_count=1, overlap_target=3)
FULL = Slots(T.full, live_count=2, done_count=1, overlap_target=3)
COMPLETE = Slots(T.complete, live_count=0, done_count=3, overlap_target=3)


# check_lease: False holds its slot, True takes a freed slot back, or the problem
@pytest.mark.parametrize(
    ("state", "task", "now", "expected"),
    [
        # a live lease holds its slot, whatever the task looks like
        (lease(expires=100), FULL, 0, False),
        (lease(expires=0), FULL, 0, False),  # the last instant of the lease
        # ran out, not swept yet, within the grace period: still its slot
        (lease(expires=-60), FULL, 0, False),
        (lease(expires=-120), FULL, 0, False),  # the last instant of the grace period
        # past the grace period: too late, swept or not
        (lease(expires=-121), OPEN_WITH_ROOM, 0, LeaseEnded),
        (lease(A.expired, expires=-121), OPEN_WITH_ROOM, 0, LeaseEnded),
        # swept within the grace period: the slot is taken back only if still free
        (lease(A.expired, expires=-60), OPEN_WITH_ROOM, 0, True),
        (lease(A.expired, expires=-60), OPEN_TAKEN, 0, SlotTaken),
        (lease(A.expired, expires=-60), FULL, 0, SlotTaken),
        (lease(A.expired, expires=-60), COMPLETE, 0, SlotTaken),
    ],
)
def test_check_lease(state: Lease, task: Slots, now: float, expected: object) -> None:
    assert outcome(lambda: rules.check_lease(state, task, at(now), SETTINGS)) == expected


# slot_after_submit: (live, done, status, completed?) once one more answer set is in
@pytest.mark.parametrize(
    ("task", "reclaims", "expected"),
    [
        # held its slot: live goes down, done up
        (Slots(T.open, 1, 0, 3), False, (0, 1, T.open, False)),
        (Slots(T.full, 3, 0, 3), False, (2, 1, T.full, False)),
        (Slots(T.full, 1, 2, 3), False, (0, 3, T.complete, True)),
        # took a freed slot back: live stays, and the task may fill up
        (Slots(T.open, 1, 1, 3), True, (1, 2, T.full, False)),
        (Slots(T.open, 0, 1, 3), True, (0, 2, T.open, False)),
        (Slots(T.open, 0, 2, 3), True, (0, 3, T.complete, True)),
        # overlap 1: the first answer completes it
        (Slots(T.full, 1, 0, 1), False, (0, 1, T.complete, True)),
    ],
)
def test_slot_after_submit(task: Slots, reclaims: bool, expected: tuple[object, ...]) -> None:
    after = rules.slot_after_submit(task, reclaims, NOW)
    completed = after.completed_at == NOW
    assert (after.live_count, after.done_count, after.status, completed) == expected
    assert after.completed_at in (None, NOW)


# claims_per_statement: one at a time where gold could repeat across tasks
@pytest.mark.parametrize(
    ("gold_ratio", "wanted", "expected"), [(0.0, 5, 5), (0.0, 1, 1), (0.1, 5, 1), (1.0, 3, 1)]
)
def test_claims_per_statement(gold_ratio: float, wanted: int, expected: int) -> None:
    assert rules.claims_per_statement(gold_ratio, wanted) == expected


@pytest.mark.parametrize(
    ("scores", "expected"), [([], None), ([(0, 1.0)], 1.0), ([(0, 1.0), (3, 0.0)], 0.5)]
)
def test_mean_score(scores: list[tuple[int, float]], expected: float | None) -> None:
    assert rules.mean_score(scores) == expected


@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        (lease(A.active, expires=10), 0, "active"),
        (lease(A.active, expires=0), 0, "expired"),  # past its lease: already expired to them
        (lease(A.submitted, expires=-10), 0, "submitted"),
        (lease(A.released), 0, "released"),
    ],
)
def test_public_status(state: Lease, now: float, expected: str) -> None:
    assert rules.public_status(state, at(now)) == expected


def test_the_answers_digest_ignores_key_order_but_not_answer_order() -> None:
    one = rules.answers_digest([{"a": 1, "b": 2}, {"c": 3}])
    assert one == rules.answers_digest([{"b": 2, "a": 1}, {"c": 3}])
    assert one != rules.answers_digest([{"c": 3}, {"a": 1, "b": 2}])


COMPLETED = rules.SlotAfterSubmit(0, 2, T.complete, NOW)
STILL_OPEN = rules.SlotAfterSubmit(1, 1, T.open, None)


# grows_overlap: (slot after the submit, target, least confidence, threshold, overlap.max)
@pytest.mark.parametrize(
    ("slot", "target", "confidence", "threshold", "most", "expected"),
    [
        (COMPLETED, 2, 0.5, 0.9, 4, True),  # unsure, room to grow
        (COMPLETED, 3, 0.89, 0.9, 4, True),
        (COMPLETED, 4, 0.5, 0.9, 4, False),  # overlap.max reached: complete as it is
        (COMPLETED, 2, 0.9, 0.9, 4, False),  # confident enough (the threshold is met)
        (COMPLETED, 2, 0.5, None, 4, False),  # no threshold: done at overlap.min
        (STILL_OPEN, 2, 0.1, 0.9, 4, False),  # not at its target yet
    ],
)
def test_grows_overlap(
    slot: rules.SlotAfterSubmit,
    target: int,
    confidence: float,
    threshold: float | None,
    most: int,
    expected: bool,
) -> None:
    assert rules.grows_overlap(slot, target, confidence, threshold, most) is expected


def test_the_gold_rate_follows_the_ratio_and_the_annotators_record() -> None:
    new = gold.GoldRecord(graded=3, accuracy=1.0, threshold=0.6)
    near = gold.GoldRecord(graded=20, accuracy=0.65, threshold=0.6)
    proven = gold.GoldRecord(graded=30, accuracy=0.9, threshold=0.6)
    steady = gold.GoldRecord(graded=20, accuracy=0.9, threshold=0.6)
    # g = 0.1, k = 3: base 3·0.1/0.9 = 1/3.
    assert gold.rate(0.1, 3, steady) == pytest.approx(1 / 3)
    assert gold.rate(0.1, 3, new) == pytest.approx(2 / 3)
    assert gold.rate(0.1, 3, near) == pytest.approx(0.5)
    assert gold.rate(0.1, 3, proven) == pytest.approx(1 / 6)
    assert gold.rate(0.5, 5, new) == 1.0  # clamped
    assert gold.rate(0.0, 5, new) == 0.0


def test_a_gold_item_goes_in_at_its_slot_and_the_others_move_up() -> None:
    shown = ((0, {"t": "a"}), (1, {"t": "b"}))
    assert gold.shown_with_gold(shown, 1, {"t": "g"}) == (
        (0, {"t": "a"}),
        (1, {"t": "g"}),
        (2, {"t": "b"}),
    )
    assert all(0 <= gold.slot_for(2) <= 2 for _ in range(50))
