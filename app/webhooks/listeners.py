"""Who listens to what: each client's subscribed event types, cached per process for a few seconds.

Every event source asks before it writes anything, so for a client without an active endpoint
subscribed to an event type, recording that event costs a dictionary look-up (after one read of
the client's endpoints). Answers are reused for `CACHE_SECONDS` (in
`app.core.caches.webhook_listeners`, which `caches.clear_all` forgets with the rest). Endpoint
changes made through this process count at once (their client's entry is dropped when the change
commits); through another process, within that time. Both ways of being stale are harmless or
small: an event recorded for an endpoint that stopped listening fans out to nobody, and a
brand-new endpoint may miss events of its first seconds in other processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Final

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.core import caches
from app.models.webhooks import WebhookEndpoint

CACHE_SECONDS: Final = 5.0

# client id -> types, in `caches.webhook_listeners`: its generation moves on every drop, so a
# read that raced a change is not kept.
_CHANGED = "tessera.webhooks.changed_clients"


def subscribed_types(session: Session, client_id: int) -> frozenset[str]:
    """Event types some active endpoint of the client subscribes to (cached)."""
    hit = cached_types(client_id)
    if hit is not None:
        return hit
    generation = current_generation()
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
    types: frozenset[str] | None = caches.webhook_listeners.get(client_id, CACHE_SECONDS)
    return types


def current_generation() -> int:
    return caches.webhook_listeners.generation()


def remember(client_id: int, types: frozenset[str], generation: int) -> None:
    """Keep an answer read when the generation was `generation` (dropped if it has moved on)."""
    caches.webhook_listeners.put(client_id, types, time.monotonic(), generation)


def forget_on_commit(session: Session, client_id: int) -> None:
    """The client's endpoints change in this transaction: drop its entry when it commits."""
    session.info.setdefault(_CHANGED, set()).add(client_id)


@event.listens_for(Session, "after_commit")
def _drop_changed(session: Session) -> None:
    changed = session.info.pop(_CHANGED, None)
    for client_id in changed or ():
        caches.webhook_listeners.forget(client_id)


@event.listens_for(Session, "after_soft_rollback")
def _discard_changes(session: Session, _previous: Any) -> None:
    session.info.pop(_CHANGED, None)
