"""The one place Tessera reads the time, so tests and simulations can move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (plus any offset set by `travel`)."""
    return datetime.now(UTC) + _offset


def travel(delta: timedelta) -> None:
    """Move the clock by `delta` from where it is now (tests and simulations only)."""
    global _offset
    _offset += delta


def reset() -> None:
    """Back to the real time."""
    global _offset
    _offset = timedelta(0)
