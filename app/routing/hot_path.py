"""The annotator's hot path on PostgreSQL: claim, heartbeat, release and submit as raw SQL on the
request's async psycopg connection, run on the event loop.

Why not the ORM on worker threads, as the rest of the service does: measured on this machine kind
(2 vCPU), every sync FastAPI dependency or endpoint is a hop to a worker thread (a bare endpoint
behind five of them served 690 requests/s, the same endpoint async 4,457), and SQLAlchemy adds
about 160 µs a statement over plain psycopg (357 against 195 µs for a one-row query). `next` and
`submit` are the busiest calls of the marketplace, so they take no thread hop in the common case:
only a stale cache (the active jobs, an annotator's eligibility) or the once-a-second lease sweep
goes to a thread, through the same sync code the rest of the service uses.

Every decision is taken in `rules`, shared with `service` (the implementation SQLite runs); only
the SQL differs. Like `service`, nothing here commits: the endpoint does, once.

Concurrency: one statement claims (select-and-lock the head of the job's queue with FOR UPDATE
SKIP LOCKED, bump the task's live count, insert the assignment), so two annotators never hold the
same slot and nobody waits on a row another claim holds; UNIQUE(task, annotator) is the last line
of defence against doing a task twice. Submit, heartbeat and release lock the assignment, then
its task, the lock order used everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from starlette.concurrency import run_in_threadpool

from app.core.db import Database
from app.core.errors import NotFound
from app.core.settings import Settings
from app.jobs.consensus import aggregate_items
from app.jobs.service import job_schema
from app.models.jobs import AssignmentStatus, Job, TaskStatus
from app.routing import rules, service
from app.routing.rules import TaskItemView
from app.routing.service import Claimed
from qualification_tests.eligibility import COUNTED_ASSIGNMENTS

Conn = AsyncConnection[tuple[Any, ...]]


def pyformat(sql: str) -> str:
    """SQL written with SQLAlchemy's `:name` parameters, as psycopg's `%(name)s`."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql)


# --- claiming -----------------------------------------------------------------------------------

CLAIM = """
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
SELECT ins.id, ins.task_id, ti.position, i.payload
FROM inserted ins
JOIN task_items ti ON ti.task_id = ins.task_id
JOIN items i ON i.id = ti.item_id
ORDER BY ins.id, ti.position
"""

_USED = """
SELECT count(*) FROM assignments
WHERE job_id = %s AND annotator_id = %s AND status = ANY(%s)
"""
_COUNTED = [status.value for status in COUNTED_ASSIGNMENTS]


async def claim_tasks(
    conn: Conn, db: Database, annotator_id: int, jobs: Sequence[Job], count: int, now: datetime
) -> list[Claimed]:
    """Claim up to `count` tasks from `jobs` (eligible and active, in the order to serve them)
    that the annotator has not worked on, each under a new lease. Returns what was claimed
    (possibly nothing).

    Each claim statement is atomic on its own (the gold items it hands out are recorded in
    it too), and with `count` 1 only one of them can take a task, so that call needs no
    transaction (the pool's connections autocommit); the caller opens one for larger counts."""
    claimed: list[Claimed] = []
    for job in jobs:
        wanted = min(count - len(claimed), await _room_left(conn, annotator_id, job))
        if wanted <= 0:
            continue
        if service.sweep_due(job.id, now):
            await run_in_threadpool(_sweep, db, job.id, now)
        per_statement = rules.claims_per_statement(job.gold_ratio, wanted)
        while wanted > 0:
            got = await _claim_from_job(conn, annotator_id, job, min(per_statement, wanted), now)
            claimed.extend(got)
            wanted -= len(got)
            if len(got) < per_statement:
                break
        if len(claimed) >= count:
            break
    return claimed


def _sweep(db: Database, job_id: int, now: datetime) -> None:
    """Expired leases of the job back to the pool, in a transaction of their own."""
    with db.transaction() as session:
        service.expire_overdue_assignments(session, now, job_id=job_id)


async def _room_left(conn: Conn, annotator_id: int, job: Job) -> int:
    if job.max_tasks_per_annotator is None:
        return 1 << 30
    row = await (await conn.execute(_USED, (job.id, annotator_id, _COUNTED))).fetchone()
    return job.max_tasks_per_annotator - (row[0] if row else 0)


async def _claim_from_job(
    conn: Conn, annotator_id: int, job: Job, n: int, now: datetime
) -> list[Claimed]:
    lease_until = now + timedelta(seconds=job.lease_seconds)
    cursor = await conn.execute(
        CLAIM,
        {
            "job_id": job.id,
            "annotator_id": annotator_id,
            "n": n,
            "now": now,
            "lease_until": lease_until,
        },
    )
    by_assignment: dict[int, tuple[int, list[tuple[int, dict[str, Any]]]]] = {}
    for assignment_id, task_id, position, payload in await cursor.fetchall():
        by_assignment.setdefault(assignment_id, (task_id, []))[1].append((position, payload))
    return [
        Claimed(assignment_id, task_id, job.id, lease_until, tuple(items))
        for assignment_id, (task_id, items) in by_assignment.items()
    ]


# --- the annotator's own assignment -------------------------------------------------------------


@dataclass(frozen=True)
class _Assignment:
    """The columns of an assignment the rules read (satisfies `rules.LeaseState`)."""

    id: int
    job_id: int
    task_id: int
    status: AssignmentStatus
    claimed_at: datetime
    lease_expires_at: datetime
    last_seen_at: datetime
    active_seconds: int
    answers_hash: str | None
    submitted_at: datetime | None


@dataclass(frozen=True)
class _Task:
    """The columns of a task the rules read (satisfies `rules.SlotState`)."""

    status: TaskStatus
    live_count: int
    done_count: int
    overlap_target: int


_LOCK_ASSIGNMENT = """
SELECT a.annotator_id, a.job_id, a.task_id, a.status, a.claimed_at, a.lease_expires_at,
       a.last_seen_at, a.active_seconds, a.answers_hash, a.submitted_at
FROM assignments a WHERE a.id = %s
FOR UPDATE
"""


async def _own(conn: Conn, annotator_id: int, assignment_id: int) -> _Assignment:
    """The annotator's assignment, locked; 404 for anyone else's (ids do not leak)."""
    row = await (await conn.execute(_LOCK_ASSIGNMENT, (assignment_id,))).fetchone()
    return _owned(annotator_id, assignment_id, [row] if row else [])


def _owned(annotator_id: int, assignment_id: int, rows: list[tuple[Any, ...]]) -> _Assignment:
    """The assignment in the first of `rows` (which start with its columns, as
    `_LOCK_ASSIGNMENT` reads them); 404 when there is none or it is someone else's."""
    if not rows or rows[0][0] != annotator_id:
        raise NotFound("No such assignment")
    job_id, task_id, status, *lease = rows[0][1:10]
    return _Assignment(assignment_id, job_id, task_id, AssignmentStatus(status), *lease)


async def job_for_work(db: Database, job_id: int, ttl: float) -> Job:
    """`service.job_for_work` from the cached active-job list, else read on a thread."""
    for job in service.fresh_active_jobs(ttl) or ():
        if job.id == job_id:
            return job
    return await run_in_threadpool(_read_job, db, job_id, ttl)


def _read_job(db: Database, job_id: int, ttl: float) -> Job:
    with db.read_session() as session:
        return service.job_for_work(session, job_id, ttl)


_HEARTBEAT = """
UPDATE assignments SET lease_expires_at = %(lease)s, last_seen_at = %(now)s,
    active_seconds = %(active)s
WHERE id = %(id)s
"""


async def heartbeat(
    conn: Conn,
    db: Database,
    annotator_id: int,
    assignment_id: int,
    now: datetime,
    settings: Settings,
) -> rules.LeaseReport:
    """`service.heartbeat`, on PostgreSQL's hot path."""
    a = await _own(conn, annotator_id, assignment_id)
    job = await job_for_work(db, a.job_id, settings.routing_cache_seconds)
    lease = rules.extended_lease(a, job.lease_seconds, now, settings)
    active = rules.active_seconds_at(a, now, settings)
    await conn.execute(
        _HEARTBEAT, {"lease": lease, "now": now, "active": active, "id": assignment_id}
    )
    return rules.LeaseReport(
        assignment_id,
        a.status,
        lease,
        rules.lease_limit(a.claimed_at, job.lease_seconds, settings),
        active,
    )


_RELEASE = """
UPDATE assignments SET status = 'released', release_reason = %(reason)s, last_seen_at = %(now)s
WHERE id = %(id)s
"""
_FREE_SLOTS = pyformat(service.FREE_SLOTS)


async def release(
    conn: Conn,
    db: Database,
    annotator_id: int,
    assignment_id: int,
    reason: str | None,
    now: datetime,
    settings: Settings,
) -> rules.LeaseReport:
    """`service.release`, on PostgreSQL's hot path."""
    a = await _own(conn, annotator_id, assignment_id)
    job = await job_for_work(db, a.job_id, settings.routing_cache_seconds)
    status = a.status
    if rules.check_releasable(a, now):
        await conn.execute(_RELEASE, {"reason": reason, "now": now, "id": assignment_id})
        await conn.execute(_FREE_SLOTS, {"k": 1, "id": a.task_id})
        status = AssignmentStatus.released
    return rules.LeaseReport(
        assignment_id,
        status,
        a.lease_expires_at,
        rules.lease_limit(a.claimed_at, job.lease_seconds, settings),
        a.active_seconds,
    )


# --- submit -------------------------------------------------------------------------------------

# The assignment and its task, locked together (assignment first, as everywhere), with the
# task's items in slot order: one row per item.
_LOCK_FOR_SUBMIT = """
SELECT a.annotator_id, a.job_id, a.task_id, a.status, a.claimed_at, a.lease_expires_at,
       a.last_seen_at, a.active_seconds, a.answers_hash, a.submitted_at,
       t.status, t.live_count, t.done_count, t.overlap_target,
       ti.position, i.id, i.payload, i.is_gold, i.gold_answer
FROM assignments a
JOIN tasks t ON t.id = a.task_id
JOIN task_items ti ON ti.task_id = a.task_id
JOIN items i ON i.id = ti.item_id
WHERE a.id = %s
ORDER BY ti.position
FOR UPDATE OF a, t
"""
# Answers, assignment and task in one statement. When the task completes, it returns the
# earlier answers of its regular items for the consensus: a new statement, so it sees every
# answer committed before this transaction took the task's lock.
_RECORD_SUBMIT = """
WITH answered AS (
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
SELECT an.item_id, an.value FROM answers an
WHERE %(complete)s AND an.item_id = ANY(%(regular)s)
ORDER BY an.id
"""
_STORED_GOLD_SCORES = """
SELECT ti.position, an.score
FROM answers an JOIN task_items ti ON ti.item_id = an.item_id AND ti.task_id = %(task_id)s
WHERE an.assignment_id = %(id)s AND an.score IS NOT NULL
ORDER BY ti.position
"""


async def submit(
    conn: Conn,
    db: Database,
    annotator_id: int,
    assignment_id: int,
    answers: Sequence[Any],
    now: datetime,
    settings: Settings,
) -> rules.Submitted:
    """`service.submit`, on PostgreSQL's hot path: the same checks, the same outcome. Run it in
    a transaction."""
    cursor = await conn.execute(_LOCK_FOR_SUBMIT, (assignment_id,))
    rows = await cursor.fetchall()
    a = _owned(annotator_id, assignment_id, rows)
    task = _Task(TaskStatus(rows[0][10]), *rows[0][11:14])
    items = [TaskItemView(*row[14:19]) for row in rows]
    job = await job_for_work(db, a.job_id, settings.routing_cache_seconds)
    digest = rules.answers_digest(answers)
    if rules.check_resubmit(a, a.answers_hash, digest):
        cursor = await conn.execute(
            _STORED_GOLD_SCORES, {"task_id": a.task_id, "id": assignment_id}
        )
        assert a.submitted_at is not None
        return rules.Submitted(
            assignment_id,
            a.status,
            a.submitted_at,
            a.active_seconds,
            [(slot, score) for slot, score in await cursor.fetchall()],
            job.instant_feedback,
            replayed=True,
        )
    reclaims_slot = rules.check_lease(a, task, now, settings)

    schema = job_schema(job)
    rules.validate_answers(schema, items, answers)
    scores = rules.grade_gold(schema, items, answers)
    gold_scores = rules.gold_feedback(items, scores)
    active = rules.active_seconds_at(a, now, settings)
    after = rules.slot_after_submit(task, reclaims_slot, now)
    complete = after.status is TaskStatus.complete
    regular = [
        (item.item_id, answer)
        for item, answer in zip(items, answers, strict=True)
        if not item.is_gold
    ]
    cursor = await conn.execute(
        _RECORD_SUBMIT,
        {
            "id": assignment_id,
            "job_id": job.id,
            "annotator_id": annotator_id,
            "now": now,
            "item_ids": [item.item_id for item in items],
            "values": [Jsonb(answer) for answer in answers],
            "scores": scores,
            "active": active,
            "hash": digest,
            "gold": sum(s for _, s in gold_scores) / len(gold_scores) if gold_scores else None,
            "live": after.live_count,
            "done": after.done_count,
            "status": after.status.value,
            "completed": after.completed_at,
            "task_id": a.task_id,
            "complete": complete and bool(regular),
            "regular": [item_id for item_id, _ in regular],
        },
    )
    earlier = await cursor.fetchall()
    if complete and regular:
        await _record_consensus(conn, job, [*earlier, *regular], now)
    return rules.Submitted(
        assignment_id,
        AssignmentStatus.submitted,
        now,
        active,
        gold_scores,
        job.instant_feedback,
        replayed=False,
    )


_UPSERT_RESULTS = """
INSERT INTO item_results (item_id, job_id, answer, confidence, answer_count, method, updated_at)
SELECT x.item_id, %(job_id)s, x.answer, x.confidence, x.n, 'majority_vote', %(now)s
FROM unnest(%(item_ids)s::bigint[], %(answers)s::jsonb[], %(confidences)s::float8[],
            %(counts)s::int[]) AS x(item_id, answer, confidence, n)
ON CONFLICT (item_id) DO UPDATE SET answer = excluded.answer, confidence = excluded.confidence,
    answer_count = excluded.answer_count, method = excluded.method,
    updated_at = excluded.updated_at
"""


async def _record_consensus(
    conn: Conn, job: Job, answers: list[tuple[int, dict[str, Any]]], now: datetime
) -> None:
    """`consensus.refresh_item_results` with its default aggregator, from every answer of the
    items (in answer order), on this connection."""
    results = aggregate_items(job_schema(job), answers)
    await conn.execute(
        _UPSERT_RESULTS,
        {
            "job_id": job.id,
            "now": now,
            "item_ids": [r.item_id for r in results],
            "answers": [Jsonb(r.answer) for r in results],
            "confidences": [r.confidence for r in results],
            "counts": [r.answer_count for r in results],
        },
    )
