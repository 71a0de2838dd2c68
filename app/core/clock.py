"""The one place Tessera reads the time, so tests and simulations can move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)
_frozen: datetime | None = None


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (plus any offset set by `travel`; the frozen
    instant after `freeze`)."""
    if _frozen is not None:
        return _frozen
    return datetime.now(UTC) + _offset


def travel(delta: timedelta) -> None:
    """Move the clock by `delta` from where it is now (tests and simulations only)."""
    global _offset, _frozen
    if _frozen is not None:
        _frozen += delta
    else:
        _offset += delta


def freeze() -> None:
    """Stop the clock where it is, until `travel` moves it or `reset` (tests only: a test
    asserting exact waits must not depend on how fast the machine runs it)."""
    global _frozen
    _frozen = utcnow()


def reset() -> None:
    """Back to the real time."""
    global _offset, _frozen
    _offset = timedelta(0)
    _frozen = None
