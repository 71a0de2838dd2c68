"""The hot path's store on PostgreSQL: raw SQL on the request's async psycopg connection, run
on the event loop.

Why not the ORM on worker threads, as the rest of the service does: measured on this machine kind
(2 vCPU), every sync FastAPI dependency or endpoint is a hop to a worker thread (a bare endpoint
behind five of them served 690 requests/s, the same endpoint async 4,457), and SQLAlchemy adds
about 160 µs a statement over plain psycopg (357 against 195 µs for a one-row query). `next` and
`submit` are the busiest calls of the marketplace, so they take no thread hop in the common case:
only a stale cache (the active jobs, an annotator's eligibility, a token) or the once-a-second
lease sweep goes to a thread, through the same sync code the rest of the service uses.

The pool's connections autocommit, so a single statement costs no BEGIN and COMMIT (about
230 µs of CPU here); `flow` opens a transaction where an operation needs one.

Concurrency: one statement claims (select-and-lock the head of the job's queue with FOR UPDATE
SKIP LOCKED, bump the task's live count, insert the assignment), so two annotators never hold the
same slot and nobody waits on a row another claim holds (in a job with gold, one more
statement adds an unseen gold item to the assignment when the annotator's gold rate says one is
due: `app.routing.gold`; the primary key of `gold_exposures` keeps two claims of one annotator
from taking the same gold item); UNIQUE(task, annotator) is the last line
of defence against doing a task twice. Submit, heartbeat and release lock the assignment, then
its task, the lock order used everywhere. A submit is one locking read and one write; when it
completes the task, the write returns the earlier answers (a new statement, so it sees every
answer committed before the task's lock was taken) and a consensus upsert follows. The SQL on
the consensus tables is `app.consensus.hot_path`'s, as the webhook events' is
`app.webhooks.hot_path`'s: each table has one owner, which states its SQL once.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row, kwargs_row
from psycopg.types.json import Jsonb
from starlette.concurrency import run_in_threadpool

from app.consensus import hot_path as consensus
from app.consensus.service import Consensus, Fit, Vote
from app.core.background import OUTBOX_CHANNEL
from app.core.clock import utcnow
from app.core.db import AsyncPool, Database
from app.core.security import LAST_USED_RESOLUTION, KnownToken, last_use_is_stale
from app.core.settings import Settings
from app.jobs import completion
from app.models.jobs import COUNTED_WORK, AssignmentStatus, Job, TaskStatus
from app.quality import enforcement
from app.routing import eligibility, service
from app.routing.gold import GoldRecord, items_with_gold, read_record
from app.routing.queue import EmptyQueue, explain_empty
from app.routing.rules import PrelabelView, TaskItemView
from app.routing.store import (
    AssignmentState,
    Claimed,
    Operation,
    R,
    SubmitState,
    SubmitWrite,
    TaskState,
)
from app.webhooks import hot_path as webhooks
from app.webhooks.hot_path import PendingEvent
from payouts import pay_shown
from qualification_tests.eligibility import COUNTED_ASSIGNMENTS

Conn = AsyncConnection[tuple[Any, ...]]


def pyformat(sql: str) -> str:
    """SQL written with SQLAlchemy's `:name` parameters, as psycopg's `%(name)s`."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


_CLAIM = """
WITH picked AS (
    SELECT t.id FROM tasks t
    WHERE t.job_id = %(job_id)s AND t.status = 'open'
      AND NOT EXISTS (
        SELECT 1 FROM assignments a
        WHERE a.task_id = t.id AND a.annotator_id = %(annotator_id)s
        OFFSET 0)
      AND (NOT t.has_gold OR NOT EXISTS (
        SELECT 1 FROM task_items ti
        JOIN gold_exposures g ON g.item_id = ti.item_id AND g.annotator_id = %(annotator_id)s
        WHERE ti.task_id = t.id
        OFFSET 0))
      AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = %(job_id)s AND j.status = 'active')
    ORDER BY t.order_key, t.id
    LIMIT %(n)s
    FOR UPDATE OF t SKIP LOCKED
), bumped AS (
    UPDATE tasks t
    SET live_count = t.live_count + 1,
        status = CASE WHEN t.live_count + 1 + t.done_count >= t.overlap_target
                      THEN 'full' ELSE 'open' END
    FROM picked WHERE t.id = picked.id
    RETURNING t.id, t.has_gold
), seen_gold AS (
    INSERT INTO gold_exposures (annotator_id, item_id)
    SELECT DISTINCT %(annotator_id)s, ti.item_id
    FROM bumped b JOIN task_items ti ON ti.task_id = b.id JOIN items i ON i.id = ti.item_id
    WHERE b.has_gold AND i.is_gold
    ON CONFLICT DO NOTHING
), inserted AS (
    INSERT INTO assignments (task_id, job_id, annotator_id, status, claimed_at, lease_expires_at,
                             last_seen_at, active_seconds)
    SELECT id, %(job_id)s, %(annotator_id)s, 'active', %(now)s, %(lease_until)s, %(now)s, 0
    FROM bumped
    RETURNING id, task_id
)
SELECT ins.id AS assignment_id, ins.task_id, b.has_gold, ti.position AS slot, i.payload
FROM inserted ins
JOIN bumped b ON b.id = ins.task_id
JOIN task_items ti ON ti.task_id = ins.task_id
JOIN items i ON i.id = ti.item_id
ORDER BY ins.id, ti.position
"""
# Gold chosen at claim (`app.routing.gold`): one gold item of the job the annotator has not been
# shown, at random, recorded as seen and stored on the assignment at its slot; returns its
# payload (no row when none is left, or when a concurrent claim of theirs just took it).
_ADD_GOLD = """
WITH pick AS (
    SELECT i.id, i.payload FROM items i
    WHERE i.job_id = %(job_id)s AND i.is_gold
      AND NOT EXISTS (SELECT 1 FROM gold_exposures g
                      WHERE g.annotator_id = %(annotator_id)s AND g.item_id = i.id)
    ORDER BY random()
    LIMIT 1
), seen AS (
    INSERT INTO gold_exposures (annotator_id, item_id)
    SELECT %(annotator_id)s, id FROM pick
    ON CONFLICT DO NOTHING
    RETURNING item_id
), stored AS (
    UPDATE assignments a SET gold_item_id = seen.item_id, gold_slot = %(slot)s
    FROM seen WHERE a.id = %(assignment_id)s
    RETURNING a.gold_item_id
)
SELECT p.payload FROM pick p JOIN stored s ON s.gold_item_id = p.id
"""
_COUNTED = """
SELECT count(*) FROM assignments
WHERE job_id = %s AND annotator_id = %s AND status = ANY(%s)
"""
_COUNTED_STATUSES = [status.value for status in COUNTED_ASSIGNMENTS]

_LOCK_ASSIGNMENT = """
SELECT a.id, a.annotator_id, a.job_id, a.task_id, a.status, a.claimed_at, a.lease_expires_at,
       a.last_seen_at, a.active_seconds, a.answers_hash, a.submitted_at
FROM assignments a WHERE a.id = %s
FOR UPDATE
"""
_HEARTBEAT = """
UPDATE assignments SET lease_expires_at = %(lease)s, last_seen_at = %(now)s,
    active_seconds = %(active)s
WHERE id = %(id)s
"""
_RELEASE = """
UPDATE assignments SET status = 'released', release_reason = %(reason)s, last_seen_at = %(now)s
WHERE id = %(id)s
"""
_FREE_SLOTS = pyformat(service.FREE_SLOTS)

# The assignment and its task, locked together (assignment first, as everywhere), with the
# task's items in slot order: one row per item, each with the assignment's gold item, if any.
_LOCK_FOR_SUBMIT = """
SELECT a.id, a.annotator_id, a.job_id, a.task_id, a.status, a.claimed_at, a.lease_expires_at,
       a.last_seen_at, a.active_seconds, a.answers_hash, a.submitted_at,
       t.status AS task_status, t.live_count, t.done_count, t.overlap_target,
       ti.position AS slot, i.id AS item_id, i.payload, i.is_gold, i.gold_answer,
       i.external_id, a.gold_slot, g.id AS gold_item_id, g.payload AS gold_payload,
       g.gold_answer AS gold_gold_answer, g.external_id AS gold_external_id
FROM assignments a
JOIN tasks t ON t.id = a.task_id
JOIN task_items ti ON ti.task_id = a.task_id
JOIN items i ON i.id = ti.item_id
LEFT JOIN items g ON g.id = a.gold_item_id
WHERE a.id = %s
ORDER BY ti.position
FOR UPDATE OF a, t
"""
_STORED_GOLD_SCORES = """
SELECT CASE WHEN an.item_id = a.gold_item_id THEN a.gold_slot ELSE ti.position END AS slot,
       an.score
FROM answers an
JOIN assignments a ON a.id = an.assignment_id
LEFT JOIN task_items ti ON ti.item_id = an.item_id AND ti.task_id = %(task_id)s
WHERE an.assignment_id = %(id)s AND an.score IS NOT NULL
ORDER BY slot
"""
# Answers, assignment and task in one statement. When the task completes, it returns the
# earlier answers that count (`COUNTED_WORK`) of its regular items for the consensus: this
# statement's own inserts are not visible to it, so `record_submit` adds them.
_RECORD_SUBMIT = """
WITH {events}answered AS (
    INSERT INTO answers (assignment_id, job_id, item_id, annotator_id, value, score, created_at)
    SELECT %(id)s, %(job_id)s, x.item_id, %(annotator_id)s, x.value, x.score, %(now)s
    FROM unnest(%(item_ids)s::bigint[], %(values)s::jsonb[], %(scores)s::float8[])
         AS x(item_id, value, score)
), submitted AS (
    UPDATE assignments SET status = 'submitted', submitted_at = %(now)s, last_seen_at = %(now)s,
        active_seconds = %(active)s, answers_hash = %(hash)s, gold_score = %(gold)s
    WHERE id = %(id)s
), counted AS (
    UPDATE tasks SET live_count = %(live)s, done_count = %(done)s, status = %(status)s,
        completed_at = coalesce(%(completed)s, completed_at)
    WHERE id = %(task_id)s
)
SELECT an.item_id, an.annotator_id, an.value
FROM answers an JOIN assignments s ON s.id = an.assignment_id
WHERE an.item_id = ANY(%(consensus_items)s) AND s.status = ANY(%(counted_work)s)
ORDER BY an.id
"""
_COUNTED_WORK = [status.value for status in COUNTED_WORK]
# With webhook events: the same statement writing them too (a second text, so the common case
# carries no empty CTEs), and a consensus upsert that writes them and wakes the outbox relays.
_RECORD_SUBMITS = {
    events: _RECORD_SUBMIT.format(events=webhooks.EVENT_CTES + ",\n" if events else "")
    for events in (False, True)
}
_NOTIFY = f"SELECT pg_notify('{OUTBOX_CHANNEL}', '')"
_GROW_OVERLAP = """
UPDATE tasks SET overlap_target = overlap_target + 1, status = 'open', completed_at = NULL
WHERE id = %s
"""
_READ_CALLER = """
SELECT t.id AS token_id, t.revoked_at, t.expires_at, t.last_used_at, u.id AS user_id, u.role,
       u.status, u.suspended_reason
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.secret_hash = %s
"""
_TOUCH = """
UPDATE api_tokens SET last_used_at = %(now)s
WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < %(stale)s)
"""


class PgStore:
    """`Store` on one async connection in autocommit mode; `db` serves the cache misses and
    the sweep, on worker threads."""

    def __init__(self, conn: Conn, db: Database) -> None:
        self.conn = conn
        self.db = db

    def transaction(self) -> AbstractAsyncContextManager[object]:
        return self.conn.transaction()

    async def read_jobs_for(
        self, annotator_id: int, job_id: int | None, now: datetime
    ) -> eligibility.JobsAndVerdicts:
        return await run_in_threadpool(_jobs_for, self.db, annotator_id, job_id, now)

    async def read_job(self, job_id: int) -> Job:
        return await run_in_threadpool(_job_for_work, self.db, job_id)

    async def read_job_pace(self, job_ids: list[int]) -> dict[int, float | None]:
        return await run_in_threadpool(_job_pace, self.db, job_ids)

    async def counted_assignments(self, annotator_id: int, job_id: int) -> int:
        cursor = await self.conn.execute(_COUNTED, (job_id, annotator_id, _COUNTED_STATUSES))
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def sweep_expired(self, job_id: int, now: datetime) -> None:
        await run_in_threadpool(_sweep, self.db, job_id, now)

    async def claim(
        self, annotator_id: int, job: Job, n: int, now: datetime, lease_until: datetime
    ) -> list[Claimed]:
        cursor = self.conn.cursor(row_factory=dict_row)
        await cursor.execute(
            _CLAIM,
            {
                "job_id": job.id,
                "annotator_id": annotator_id,
                "n": n,
                "now": now,
                "lease_until": lease_until,
            },
        )
        by_assignment: dict[int, tuple[int, bool, list[tuple[int, dict[str, Any]]]]] = {}
        for row in await cursor.fetchall():
            _, _, items = by_assignment.setdefault(
                row["assignment_id"], (row["task_id"], row["has_gold"], [])
            )
            items.append((row["slot"], row["payload"]))
        return [
            Claimed(assignment_id, task_id, job.id, lease_until, tuple(items), has_gold=has_gold)
            for assignment_id, (task_id, has_gold, items) in by_assignment.items()
        ]

    async def read_gold_record(self, annotator_id: int, job_id: int) -> GoldRecord:
        return await run_in_threadpool(_gold_record, self.db, annotator_id, job_id)

    async def add_gold(
        self, annotator_id: int, job_id: int, assignment_id: int, slot: int
    ) -> dict[str, Any] | None:
        cursor = await self.conn.execute(
            _ADD_GOLD,
            {
                "job_id": job_id,
                "annotator_id": annotator_id,
                "assignment_id": assignment_id,
                "slot": slot,
            },
        )
        row = await cursor.fetchone()
        return None if row is None else row[0]

    async def explain_empty(
        self, annotator_id: int, job_id: int | None, now: datetime
    ) -> list[EmptyQueue]:
        return await run_in_threadpool(_explain_empty, self.db, annotator_id, job_id, now)

    async def read_prelabels(self, task_ids: Sequence[int]) -> list[PrelabelView]:
        cursor = await self.conn.execute(_PRELABELS, (list(task_ids),))
        return [PrelabelView(*row) for row in await cursor.fetchall()]

    async def lock_assignment(self, assignment_id: int) -> AssignmentState | None:
        cursor = self.conn.cursor(row_factory=kwargs_row(_assignment_state))
        await cursor.execute(_LOCK_ASSIGNMENT, (assignment_id,))
        return await cursor.fetchone()

    async def record_heartbeat(
        self, assignment_id: int, lease_expires_at: datetime, now: datetime, active_seconds: int
    ) -> None:
        await self.conn.execute(
            _HEARTBEAT,
            {"lease": lease_expires_at, "now": now, "active": active_seconds, "id": assignment_id},
        )

    async def record_release(
        self, assignment: AssignmentState, reason: str | None, now: datetime
    ) -> None:
        await self.conn.execute(_RELEASE, {"reason": reason, "now": now, "id": assignment.id})
        await self.conn.execute(_FREE_SLOTS, {"k": 1, "id": assignment.task_id})

    async def lock_for_submit(self, assignment_id: int) -> SubmitState | None:
        cursor = self.conn.cursor(row_factory=dict_row)
        await cursor.execute(_LOCK_FOR_SUBMIT, (assignment_id,))
        rows = await cursor.fetchall()
        if not rows:
            return None
        first = rows[0]
        gold = None
        if first["gold_item_id"] is not None:
            gold = TaskItemView(
                first["gold_slot"],
                first["gold_item_id"],
                first["gold_payload"],
                True,
                first["gold_gold_answer"],
                first["gold_external_id"],
            )
        return SubmitState(
            assignment=_assignment_state(**{k: first[k] for k in _ASSIGNMENT_FIELDS}),
            task=TaskState(
                TaskStatus(first["task_status"]),
                first["live_count"],
                first["done_count"],
                first["overlap_target"],
            ),
            items=items_with_gold(
                [
                    TaskItemView(
                        row["slot"],
                        row["item_id"],
                        row["payload"],
                        row["is_gold"],
                        row["gold_answer"],
                        row["external_id"],
                    )
                    for row in rows
                ],
                gold,
            ),
        )

    async def apply_submit_rules(self, assignment_id: int, now: datetime) -> None:
        await run_in_threadpool(_apply_submit_rules, self.db, assignment_id, now)

    async def queue_completion_if_done(self, job_id: int, now: datetime) -> None:
        # Autocommit: one statement after the submit's transaction (see `app.jobs.completion`).
        await self.conn.execute(completion.queue_if_done_sql(), {"job_id": job_id, "now": now})

    async def listening_types(self, client_id: int) -> frozenset[str]:
        return await webhooks.listening_types(self.conn, client_id)

    async def stored_gold_scores(self, assignment: AssignmentState) -> list[tuple[int, float]]:
        cursor = await self.conn.execute(
            _STORED_GOLD_SCORES, {"task_id": assignment.task_id, "id": assignment.id}
        )
        return [(slot, score) for slot, score in await cursor.fetchall()]

    async def record_submit(self, write: SubmitWrite) -> list[Vote]:
        events: dict[str, Any] = {}
        if write.events:
            events, _ = webhooks.event_params(
                write.client_id, write.job_id, write.events, write.now
            )
        cursor = await self.conn.execute(
            _RECORD_SUBMITS[bool(events)],
            {
                **events,
                "id": write.assignment_id,
                "job_id": write.job_id,
                "annotator_id": write.annotator_id,
                "now": write.now,
                "item_ids": [a.item_id for a in write.answers],
                "values": [Jsonb(a.value) for a in write.answers],
                "scores": [a.score for a in write.answers],
                "active": write.active_seconds,
                "hash": write.answers_hash,
                "gold": write.gold_score,
                "live": write.slot.live_count,
                "done": write.slot.done_count,
                "status": write.slot.status.value,
                "completed": write.slot.completed_at,
                "task_id": write.task_id,
                "consensus_items": write.consensus_items,
                "counted_work": _COUNTED_WORK,
            },
        )
        earlier: list[Vote] = [(item, who, value) for item, who, value in await cursor.fetchall()]
        if events:
            await self.conn.execute(_NOTIFY)
        if not write.consensus_items:
            return []
        wanted = set(write.consensus_items)
        return earlier + [
            (a.item_id, write.annotator_id, a.value) for a in write.answers if a.item_id in wanted
        ]

    async def read_fit(self, job_id: int) -> Fit | None:
        cursor = self.conn.cursor(row_factory=dict_row)
        await cursor.execute(consensus.READ_FIT, (job_id,))
        row = await cursor.fetchone()
        return None if row is None else consensus.fit_of_row(row)

    async def grow_overlap(self, task_id: int) -> None:
        await self.conn.execute(_GROW_OVERLAP, (task_id,))

    async def record_consensus(
        self,
        job: Job,
        method: str,
        results: Sequence[Consensus],
        now: datetime,
        events: Sequence[PendingEvent],
    ) -> None:
        if events:
            await webhooks.record_events(self.conn, job.client_id, job.id, events, now)
        await self.conn.execute(
            consensus.UPSERT_RESULTS, consensus.results_params(job.id, method, results, now)
        )


_PRELABELS = """
SELECT ti.task_id, ti.position, i.prelabel, i.prelabel_score, i.is_gold, i.gold_answer
FROM task_items ti JOIN items i ON i.id = ti.item_id
WHERE ti.task_id = ANY(%s) AND i.prelabel IS NOT NULL
"""

_ASSIGNMENT_FIELDS = (
    "id",
    "annotator_id",
    "job_id",
    "task_id",
    "status",
    "claimed_at",
    "lease_expires_at",
    "last_seen_at",
    "active_seconds",
    "answers_hash",
    "submitted_at",
)


def _assignment_state(**columns: Any) -> AssignmentState:
    return AssignmentState(**{**columns, "status": AssignmentStatus(columns["status"])})


def _jobs_for(
    db: Database, annotator_id: int, job_id: int | None, now: datetime
) -> eligibility.JobsAndVerdicts:
    with db.read_session() as session:
        return eligibility.jobs_for(session, annotator_id, job_id, now, db.settings)


def _explain_empty(
    db: Database, annotator_id: int, job_id: int | None, now: datetime
) -> list[EmptyQueue]:
    with db.read_session() as session:
        return explain_empty(session, annotator_id, job_id, now, db.settings.routing_cache_seconds)


def _gold_record(db: Database, annotator_id: int, job_id: int) -> GoldRecord:
    with db.read_session() as session:
        return read_record(session, db.settings, annotator_id, job_id)


def _job_for_work(db: Database, job_id: int) -> Job:
    with db.read_session() as session:
        return service.job_for_work(session, job_id, db.settings.routing_cache_seconds)


def _job_pace(db: Database, job_ids: list[int]) -> dict[int, float | None]:
    with db.read_session() as session:
        return pay_shown.medians(session, job_ids)


def _apply_submit_rules(db: Database, assignment_id: int, now: datetime) -> None:
    with db.transaction() as session:
        enforcement.check_submit(session, db.settings, assignment_id, now)


def _sweep(db: Database, job_id: int, now: datetime) -> None:
    """Expired leases of the job back to the pool, in a transaction of their own."""
    with db.transaction() as session:
        service.expire_overdue_assignments(session, now, job_id=job_id)


class PgRunner:
    """Runs operations and reads tokens on the request's pooled connection."""

    def __init__(self, conn: Conn, db: Database) -> None:
        self.store = PgStore(conn, db)

    async def run(self, operation: Operation[R]) -> R:
        return await operation(self.store)

    async def read_token(self, secret_hash: str) -> KnownToken | None:
        conn = self.store.conn
        cursor = conn.cursor(row_factory=kwargs_row(KnownToken))
        await cursor.execute(_READ_CALLER, (secret_hash,))
        known = await cursor.fetchone()
        if known is not None and last_use_is_stale(known.last_used_at):
            now = utcnow()
            await conn.execute(
                _TOUCH, {"now": now, "id": known.token_id, "stale": now - LAST_USED_RESOLUTION}
            )
        return known


class PgWorkplace:
    """The hot path on PostgreSQL: a pool of async connections bound to the event loop of the
    app's lifespan, one lent to each request."""

    def __init__(self, pool: AsyncPool, db: Database) -> None:
        self.pool = pool
        self.db = db

    @classmethod
    async def open(cls, settings: Settings, db: Database) -> PgWorkplace:
        pool = await db.open_async_pool()
        assert pool is not None
        return cls(pool, db)

    @asynccontextmanager
    async def runner(self) -> AsyncIterator[PgRunner]:
        async with self.pool.connection() as conn:
            yield PgRunner(conn, self.db)

    async def close(self) -> None:
        await self.pool.close()
