"""Pure decisions of delivery: what an HTTP outcome means, when to try again, when a delivery is
dead and when an endpoint has failed long enough to be switched off. Plain values in and out (the
caller supplies the time and the random draw), so they are tested as decision tables.

The retry schedule is exponential with jitter, as Standard Webhooks recommends: after the n-th
failure in a row the next attempt waits base × 2^(n-1), capped, times a random factor in
[1 - JITTER, 1 + JITTER] (so delays still grow strictly until the cap: 2 × 0.8 > 1.2), and
attempts go on until the retry window (counted from the first attempt, or the latest replay)
runs out: the last one is made at the end of the window, then the delivery is dead. With the
defaults (30 s base, 4 h cap, 24 h window) that is 15 attempts: about 30 s, 1, 2, 4, 8, 16, 32,
64 and 128 minutes, then every 4 hours, and one at the 24-hour mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Final

from app.core.settings import Settings

JITTER: Final = 0.2


class Outcome(StrEnum):
    delivered = "delivered"  # 2xx
    failed = "failed"  # anything else: another status, a timeout, a refused address
    gone = "gone"  # 410: the receiver wants no more; the endpoint is switched off


def outcome_of(status_code: int | None) -> Outcome:
    """2xx delivered, 410 gone, everything else (3xx too: redirects are never followed) failed."""
    if status_code is not None and 200 <= status_code < 300:
        return Outcome.delivered
    if status_code == 410:
        return Outcome.gone
    return Outcome.failed


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta
    max_delay: timedelta
    window: timedelta

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base=timedelta(seconds=settings.webhook_retry_base_seconds),
            max_delay=timedelta(seconds=settings.webhook_retry_max_delay_seconds),
            window=timedelta(hours=settings.webhook_retry_window_hours),
        )


def retry_delay(policy: RetryPolicy, failures: int, draw: float) -> timedelta:
    """The wait after the `failures`-th failure in a row (1 = the first), for a random `draw`
    in [0, 1)."""
    exponent = min(max(failures - 1, 0), 40)  # 2**40 × any base is past every cap
    delay = min(policy.base * (1 << exponent), policy.max_delay)
    return delay * (1 - JITTER + 2 * JITTER * draw)


def next_attempt_at(
    policy: RetryPolicy,
    window_started_at: datetime,
    now: datetime,
    failures: int,
    draw: float,
    retry_after: timedelta | None = None,
) -> datetime | None:
    """When to try again after a failure at `now` (the `failures`-th in a row), or None when the
    retry window is over and the delivery is dead. A receiver's Retry-After is honoured when it
    asks for longer than the backoff (up to the cap). The last attempt is made at the end of the
    window, never after it."""
    deadline = window_started_at + policy.window
    if now >= deadline:
        return None
    wait = retry_delay(policy, failures, draw)
    if retry_after is not None:
        wait = max(wait, min(retry_after, policy.max_delay))
    return min(now + wait, deadline)


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds, or an HTTP date) as a wait; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


@dataclass(frozen=True)
class FailureRun:
    """An endpoint's current run of failed attempts."""

    since: datetime
    last: datetime


def failure_run(
    current: FailureRun | None, now: datetime, policy: RetryPolicy, began: datetime | None = None
) -> FailureRun:
    """The run after one more failure at `now`. A run is unbroken while failures keep coming
    at least as often as a retrying delivery tries (the longest backoff, with jitter); a longer
    quiet gap (no traffic, say) starts a new run, so one failure a week never adds up to an
    outage. A new run starts at `began` when given (the start of the failing delivery's retry
    window, for its first failure), so a delivery failing through its whole window makes a run
    exactly as long as the window."""
    longest_gap = policy.max_delay * (1 + JITTER) + timedelta(minutes=5)
    if current is None or now - current.last > longest_gap:
        return FailureRun(since=min(began or now, now), last=now)
    return FailureRun(since=current.since, last=now)


def should_disable(run: FailureRun, disable_after: timedelta) -> bool:
    """Switch the endpoint off once every attempt has failed for `disable_after`."""
    return run.last - run.since >= disable_after


PROGRESS_STEP: Final = 5.0  # percentage points
PROGRESS_MIN_INTERVAL: Final = timedelta(minutes=1)
# The once-a-minute tick lands a little under a minute after the last one (59.x s) as often as
# not; without this slack `progress_due` refused it, and progress came every other minute.
PROGRESS_SLACK: Final = timedelta(seconds=5)


def progress_due(
    percent: float, last_percent: float | None, last_sent_at: datetime | None, now: datetime
) -> bool:
    """Whether a job at `percent` deserves a `job.progress` event: it has moved by 5 points or
    more since the last one (or reached 100), and the last one is about a minute old (a tick
    that comes up to `PROGRESS_SLACK` early counts)."""
    if last_sent_at is not None and now - last_sent_at < PROGRESS_MIN_INTERVAL - PROGRESS_SLACK:
        return False
    last = last_percent or 0.0
    if percent >= 100.0:
        return last < 100.0
    return percent - last >= PROGRESS_STEP
