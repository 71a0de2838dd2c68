"""Delivery decisions as tables: outcomes, the retry schedule, Retry-After, failure runs and
progress throttling."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from app.webhooks import rules
from app.webhooks.rules import FailureRun, Outcome, RetryPolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(
    base=timedelta(seconds=30), max_delay=timedelta(hours=4), window=timedelta(hours=24)
)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.delivered),
        (204, Outcome.delivered),
        (299, Outcome.delivered),
        (301, Outcome.failed),  # redirects are not followed
        (302, Outcome.failed),
        (400, Outcome.failed),
        (404, Outcome.failed),
        (410, Outcome.gone),
        (429, Outcome.failed),
        (500, Outcome.failed),
        (None, Outcome.failed),  # timeout, refused address, connection error
    ],
)
def test_what_a_response_means(status: int | None, outcome: Outcome) -> None:
    assert rules.outcome_of(status) is outcome


@pytest.mark.parametrize(
    ("failures", "draw", "seconds"),
    [
        (1, 0.5, 30),
        (2, 0.5, 60),
        (3, 0.5, 120),
        (9, 0.5, 7680),
        (10, 0.5, 14400),  # capped at 4 h
        (50, 0.5, 14400),
        (1, 0.0, 24),  # jitter: ±20 %
        (1, 0.999999, 36),
        (10, 0.0, 11520),
    ],
)
def test_retry_delay_doubles_to_the_cap_with_jitter(
    failures: int, draw: float, seconds: float
) -> None:
    assert rules.retry_delay(POLICY, failures, draw).total_seconds() == pytest.approx(
        seconds, abs=0.01
    )


def test_delays_grow_strictly_until_the_cap_whatever_the_jitter() -> None:
    for failures in range(1, 9):
        longest_now = rules.retry_delay(POLICY, failures, 0.999999)
        shortest_next = rules.retry_delay(POLICY, failures + 1, 0.0)
        assert shortest_next > longest_now


def test_the_schedule_runs_for_24_hours_ends_at_the_deadline_then_the_delivery_is_dead() -> None:
    now, failures, times = T0, 0, [T0]
    while True:
        failures += 1
        next_at = rules.next_attempt_at(POLICY, T0, now, failures, 0.5)
        if next_at is None:
            break
        times.append(next_at)
        now = next_at
    assert len(times) == 15
    assert times[-1] == T0 + timedelta(hours=24)  # the last attempt, at the end of the window
    assert times[-2] < T0 + timedelta(hours=21)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[:10] == sorted(gaps[:10])


def test_a_replay_restarts_the_window() -> None:
    replayed_at = T0 + timedelta(days=3)
    assert rules.next_attempt_at(POLICY, T0, replayed_at, 1, 0.5) is None
    assert rules.next_attempt_at(POLICY, replayed_at, replayed_at, 1, 0.5) == replayed_at + (
        timedelta(seconds=30)
    )


def test_retry_after_is_honoured_when_longer_than_the_backoff_up_to_the_cap() -> None:
    assert rules.next_attempt_at(POLICY, T0, T0, 1, 0.5, timedelta(minutes=10)) == T0 + timedelta(
        minutes=10
    )
    assert rules.next_attempt_at(POLICY, T0, T0, 1, 0.5, timedelta(seconds=1)) == T0 + timedelta(
        seconds=30
    )
    assert rules.next_attempt_at(POLICY, T0, T0, 1, 0.5, timedelta(days=2)) == T0 + timedelta(
        hours=4
    )


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120),
        (" 5 ", 5),
        ("Thu, 01 Jan 2026 00:02:00 GMT", 120),
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0),  # in the past
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_header(header: str | None, seconds: int | None) -> None:
    wait = rules.parse_retry_after(header, T0)
    assert (wait.total_seconds() if wait is not None else None) == seconds


def test_a_failure_run_continues_while_failures_keep_coming_and_restarts_after_a_quiet_gap() -> (
    None
):
    run = rules.failure_run(None, T0, POLICY)
    assert run == FailureRun(T0, T0)
    later = T0 + timedelta(hours=4)
    assert rules.failure_run(run, later, POLICY) == FailureRun(T0, later)
    much_later = T0 + timedelta(days=2)
    assert rules.failure_run(run, much_later, POLICY) == FailureRun(much_later, much_later)


def test_a_run_begun_by_a_delivery_dates_from_its_retry_window() -> None:
    window_start = T0 - timedelta(seconds=2)  # the delivery's first attempt was made then
    assert rules.failure_run(None, T0, POLICY, window_start) == FailureRun(window_start, T0)
    ongoing = FailureRun(T0 - timedelta(hours=1), T0 - timedelta(minutes=1))
    assert rules.failure_run(ongoing, T0, POLICY, window_start) == FailureRun(ongoing.since, T0)
    final = rules.failure_run(
        FailureRun(window_start, T0 + timedelta(hours=20)), window_start + POLICY.window, POLICY
    )
    assert rules.should_disable(final, timedelta(hours=24))


@pytest.mark.parametrize(("hours", "disabled"), [(0, False), (23.9, False), (24, True), (30, True)])
def test_an_endpoint_is_disabled_after_failing_for_24_hours(hours: float, disabled: bool) -> None:
    run = FailureRun(T0, T0 + timedelta(hours=hours))
    assert rules.should_disable(run, timedelta(hours=24)) is disabled


@pytest.mark.parametrize(
    ("percent", "last", "last_sent_minutes_ago", "due"),
    [
        (3.0, None, None, False),  # not 5 points yet
        (5.0, None, None, True),
        (27.0, None, None, True),  # a jump counts once
        (29.0, 27.0, 5, False),
        (32.0, 27.0, 5, True),
        (40.0, 27.0, 0.5, False),  # at most once a minute
        (40.0, 27.0, 59.3 / 60, True),  # finding 15: the next tick, a little early, is not refused
        (40.0, 27.0, 54 / 60, False),
        (100.0, 97.0, 5, True),  # completion is always news
        (100.0, 100.0, 5, False),
        (0.0, None, None, False),
    ],
)
def test_progress_is_sent_every_5_points_at_most_once_a_minute(
    percent: float, last: float | None, last_sent_minutes_ago: float | None, due: bool
) -> None:
    sent_at = (
        None if last_sent_minutes_ago is None else T0 - timedelta(minutes=last_sent_minutes_ago)
    )
    assert rules.progress_due(percent, last, sent_at, T0) is due
