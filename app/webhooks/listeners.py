"""Who listens to what: each client's subscribed event types, cached per process for a few seconds.

Every event source asks before it writes anything, so for a client without an active endpoint
subscribed to an event type, recording that event costs a dictionary look-up (after one read of
the client's endpoints). Answers are reused for `CACHE_SECONDS`. Endpoint changes made through
this process count at once (their client's entry is dropped when the change commits); through
another process, within that time. Both ways of being stale are harmless or small: an event
recorded for an endpoint that stopped listening fans out to nobody, and a brand-new endpoint may
miss events of its first seconds in other processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any, Final

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.models.webhooks import WebhookEndpoint

CACHE_SECONDS: Final = 5.0
MAX_CLIENTS: Final = 100_000

_cache: dict[int, tuple[float, frozenset[str]]] = {}  # client id -> (read at, types)
_generation = 0  # bumped on every drop, so a read that raced a change is not kept
_lock = threading.Lock()
_CHANGED = "tessera.webhooks.changed_clients"


def subscribed_types(session: Session, client_id: int) -> frozenset[str]:
    """Event types some active endpoint of the client subscribes to (cached)."""
    hit = cached_types(client_id)
    if hit is not None:
        return hit
    with _lock:
        generation = _generation
    rows = session.scalars(
        select(WebhookEndpoint.event_types).where(
            WebhookEndpoint.client_id == client_id, WebhookEndpoint.active.is_(True)
        )
    )
    types = types_of(rows)
    remember(client_id, types, generation)
    return types


def types_of(rows: Iterable[list[str]]) -> frozenset[str]:
    return frozenset(t for event_types in rows for t in event_types)


def cached_types(client_id: int) -> frozenset[str] | None:
    """The cached answer while fresh, else None (no I/O)."""
    with _lock:
        hit = _cache.get(client_id)
    if hit is not None and 0 <= time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    return None


def current_generation() -> int:
    with _lock:
        return _generation


def remember(client_id: int, types: frozenset[str], generation: int) -> None:
    """Keep an answer read when the generation was `generation` (dropped if it has moved on)."""
    with _lock:
        if generation != _generation:
            return
        if len(_cache) >= MAX_CLIENTS:
            _cache.clear()
        _cache[client_id] = (time.monotonic(), types)


def forget_on_commit(session: Session, client_id: int) -> None:
    """The client's endpoints change in this transaction: drop its entry when it commits."""
    session.info.setdefault(_CHANGED, set()).add(client_id)


def forget_all() -> None:
    global _generation
    with _lock:
        _cache.clear()
        _generation += 1


@event.listens_for(Session, "after_commit")
def _drop_changed(session: Session) -> None:
    global _generation
    changed = session.info.pop(_CHANGED, None)
    if changed:
        with _lock:
            for client_id in changed:
                _cache.pop(client_id, None)
            _generation += 1


@event.listens_for(Session, "after_soft_rollback")
def _discard_changes(session: Session, _previous: Any) -> None:
    session.info.pop(_CHANGED, None)
