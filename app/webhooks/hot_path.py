"""Events from code that writes its own SQL on an async psycopg connection: the annotators' hot
path on PostgreSQL, whose submit is one write statement. `assignment.submitted` and
`task.completed` are recorded there as the same two rows `service.record_event` writes (an event,
and an outbox job that fans it out after the commit), folded into that statement as CTEs.

How a submit uses it:

1. `await listening_types(conn, client_id)`: which types the job's client listens to (the cache
   `service.record_event` uses; a query only when it is stale). Keep only those events.
2. Build each payload with `catalog.assignment_submitted(...)` / `catalog.task_completed(...)`.
3. Put `EVENT_CTES` in the write statement's WITH list and merge `event_params(...)` into its
   parameters (with no events the arrays are empty and the CTEs insert nothing, so the
   statement's text need not change). Notify the relays at commit with
   `SELECT pg_notify('tessera_outbox', '')` when there were events (the statement's final SELECT
   can do it, as `RECORD_EVENTS` does). Or run `record_events(conn, …)` as its own statement in
   the submit's transaction.

The event row needs nothing looked up: client and job ids come from the (cached) job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from app.core.background import OUTBOX_CHANNEL, outbox_insert_sql
from app.webhooks import catalog, listeners
from app.webhooks.service import FAN_OUT_JOB, new_event_id

Conn = AsyncConnection[tuple[Any, ...]]

# One fan-out job per recorded event, written as core writes outbox rows (core owns `job_outbox`).
_FAN_OUT_JOBS: Final = outbox_insert_sql(
    FAN_OUT_JOB, args="json_build_array(id)", source="webhook_events_in", now="%(wh_now)s"
)

#: Two CTEs (for a WITH list): the events, and one fan-out job per event in the outbox.
EVENT_CTES: Final = f"""
webhook_events_in AS (
    INSERT INTO webhook_events (public_id, client_id, job_id, type, version, data, created_at)
    SELECT x.public_id, %(wh_client_id)s, %(wh_job_id)s, x.type, x.version, x.data, %(wh_now)s
    FROM unnest(%(wh_public_ids)s::text[], %(wh_types)s::text[], %(wh_versions)s::int[],
                %(wh_data)s::jsonb[]) AS x(public_id, type, version, data)
    RETURNING id
), webhook_fan_out AS (
    {_FAN_OUT_JOBS}
)"""  # noqa: S608 (only constants are interpolated; values are parameters)

#: The CTEs as a statement of their own, notifying the outbox relays when it wrote anything.
RECORD_EVENTS: Final = (
    f"WITH {EVENT_CTES}\nSELECT pg_notify('{OUTBOX_CHANNEL}', '') FROM webhook_fan_out LIMIT 1"
)

_LISTENING = "SELECT event_types FROM webhook_endpoints WHERE client_id = %s AND active"


@dataclass(frozen=True)
class PendingEvent:
    type: str
    data: dict[str, Any]


async def listening_types(conn: Conn, client_id: int) -> frozenset[str]:
    """`listeners.subscribed_types` on an async connection (the same per-process cache)."""
    hit = listeners.cached_types(client_id)
    if hit is not None:
        return hit
    generation = listeners.current_generation()
    cursor = await conn.execute(_LISTENING, (client_id,))
    types = listeners.types_of(row[0] for row in await cursor.fetchall())
    listeners.remember(client_id, types, generation)
    return types


def event_params(
    client_id: int, job_id: int | None, events: Sequence[PendingEvent], now: datetime
) -> tuple[dict[str, Any], list[str]]:
    """The parameters of `EVENT_CTES` for `events` (all of them written: filter first), and the
    public ids they get."""
    ids = [new_event_id() for _ in events]
    params = {
        "wh_client_id": client_id,
        "wh_job_id": job_id,
        "wh_now": now,
        "wh_public_ids": ids,
        "wh_types": [e.type for e in events],
        "wh_versions": [catalog.EVENTS[e.type].version for e in events],
        "wh_data": [Jsonb(e.data) for e in events],
    }
    return params, ids


async def record_events(
    conn: Conn,
    client_id: int,
    job_id: int | None,
    events: Sequence[PendingEvent],
    now: datetime,
) -> list[str]:
    """Record the events the client listens to, as one statement on `conn` (run it in the
    transaction of their cause); returns their public ids."""
    wanted = await listening_types(conn, client_id)
    events = [e for e in events if e.type in wanted]
    if not events:
        return []
    params, ids = event_params(client_id, job_id, events, now)
    await conn.execute(RECORD_EVENTS, params)
    return ids
