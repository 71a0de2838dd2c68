"""The decision behind every abuse limit: may one more attempt under a key go ahead?

A pure function of plain values (no session, no clock), tested as a decision table; the store
that keeps each key's counter in the database is `app.accounts.throttle`.

A key's attempts are counted in a fixed window that starts with its first attempt. The attempt
that would pass the limit is refused and locks the key for the lockout time; attempts while
locked are refused and not counted, so a lockout ends when it says it does (`Retry-After`).
Once the window or the lockout is over, counting starts afresh.

A rule with a `first_delay` (an account's password checks from one address) grows delays
instead: the first `limit` attempts go ahead freely; the next is refused and makes the key wait
`first_delay`; once a wait is over one attempt goes ahead, and the one after it waits twice as
long, up to `lockout`. Attempts while waiting are refused and not counted. Its window slides: the
count is forgotten only after a quiet window since the last attempt or the end of the last wait.
A successful login forgets it at once
(`throttle.clear_account`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Rule:
    """At most `limit` attempts per `window`; past it, refused for `lockout`. With a
    `first_delay`: growing delays after `limit` attempts instead, at most `lockout` each."""

    limit: int
    window: timedelta
    lockout: timedelta
    first_delay: timedelta | None = None


@dataclass(frozen=True)
class Counter:
    """A key's attempts in its current window, and the end of its lockout if one was set."""

    window_started_at: datetime
    attempts: int
    locked_until: datetime | None = None


@dataclass(frozen=True)
class Decision:
    """The key's counter after the attempt, and how long to wait when it was refused (None:
    the attempt goes ahead)."""

    counter: Counter
    retry_after: timedelta | None

    @property
    def admitted(self) -> bool:
        return self.retry_after is None


def decide(counter: Counter | None, rule: Rule, now: datetime) -> Decision:
    """Count one more attempt at `now` under `rule`, or refuse it."""
    if counter is not None and counter.locked_until is not None and now < counter.locked_until:
        return Decision(counter, counter.locked_until - now)
    if rule.first_delay is not None:
        return _growing(counter, rule, rule.first_delay, now)
    if (
        counter is None
        or counter.locked_until is not None
        or now >= counter.window_started_at + rule.window
    ):
        counter = Counter(window_started_at=now, attempts=0)
    if counter.attempts >= rule.limit:
        locked_until = now + rule.lockout
        return Decision(
            Counter(counter.window_started_at, counter.attempts, locked_until), rule.lockout
        )
    return Decision(Counter(counter.window_started_at, counter.attempts + 1), None)


def _growing(
    counter: Counter | None, rule: Rule, first_delay: timedelta, now: datetime
) -> Decision:
    """`decide` for a rule with growing delays, at a moment the key is not waiting: past the
    free attempts, a wait that is over admits one attempt, and the attempt after it is refused
    with the next, doubled wait (from now, so `Retry-After` is the whole delay)."""
    if counter is None or now >= (counter.locked_until or counter.window_started_at) + rule.window:
        counter = Counter(window_started_at=now, attempts=0)
    if counter.attempts < rule.limit or counter.locked_until is not None:
        return Decision(Counter(now, counter.attempts + 1), None)
    doublings = min(counter.attempts - rule.limit, 32)  # 2^32 seconds is past any cap
    delay = min(first_delay * 2**doublings, rule.lockout)
    return Decision(Counter(counter.window_started_at, counter.attempts, now + delay), delay)
