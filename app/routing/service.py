"""Claiming tasks under a lease, heartbeats, release, submit, and lease expiry, over a SQLAlchemy
session: the implementation SQLite runs. On PostgreSQL the annotator's hot path (next, heartbeat,
release, submit) runs in `hot_path`, async over raw SQL; both take their decisions from `rules`.
The lease sweep and the cached job list here serve both.

Concurrency: on SQLite every write transaction begins with BEGIN IMMEDIATE, so claims are
serialised. Lock order everywhere is assignment, then task (sorted by id), so sweeps, submits and
releases cannot deadlock one another.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.core.settings import Settings
from app.jobs.consensus import refresh_item_results
from app.jobs.service import job_schema
from app.models.jobs import (
    Answer,
    Assignment,
    AssignmentStatus,
    Item,
    Job,
    JobStatus,
    Task,
    TaskItem,
    TaskStatus,
)
from app.routing import rules
from app.routing.rules import TaskItemView
from qualification_tests.eligibility import COUNTED_ASSIGNMENTS

SWEEP_ON_CLAIM_EVERY = 1.0  # seconds between claim-time lease sweeps of one job, per process


@dataclass(frozen=True)
class Claimed:
    assignment_id: int
    task_id: int
    job_id: int
    lease_expires_at: datetime
    items: tuple[tuple[int, dict[str, Any]], ...]  # (slot, payload): what the annotator sees


# --- claiming (the SQLite implementation; PostgreSQL claims in `hot_path`) ------------------------

_SQLITE_PICK = text("""
SELECT t.id FROM tasks t
WHERE t.job_id = :job_id AND t.status = 'open'
  AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = :job_id AND j.status = 'active')
  AND NOT EXISTS (SELECT 1 FROM assignments a
                  WHERE a.task_id = t.id AND a.annotator_id = :annotator_id)
  AND (NOT t.has_gold OR NOT EXISTS (
        SELECT 1 FROM task_items ti
        JOIN gold_exposures g ON g.item_id = ti.item_id AND g.annotator_id = :annotator_id
        WHERE ti.task_id = t.id))
ORDER BY t.order_key, t.id
LIMIT :n
""")

_SQLITE_TAKE_SLOT = text(
    "UPDATE tasks SET live_count = live_count + 1, status = CASE WHEN live_count + 1 "
    "+ done_count >= overlap_target THEN 'full' ELSE 'open' END WHERE id = :task_id"
)

_SQLITE_INSERT_ASSIGNMENT = text(
    "INSERT INTO assignments (task_id, job_id, annotator_id, status, claimed_at, "
    "lease_expires_at, last_seen_at, active_seconds) VALUES (:task_id, :job_id, "
    ":annotator_id, 'active', :now, :lease_until, :now, 0) RETURNING id"
).bindparams(
    bindparam("now", type_=Assignment.__table__.c.claimed_at.type),
    bindparam("lease_until", type_=Assignment.__table__.c.claimed_at.type),
)

# Gold items of the claimed tasks, recorded as seen by the annotator.
_RECORD_GOLD = text("""
INSERT INTO gold_exposures (annotator_id, item_id)
SELECT DISTINCT :annotator_id, ti.item_id FROM task_items ti JOIN items i ON i.id = ti.item_id
WHERE ti.task_id IN :task_ids AND i.is_gold
ON CONFLICT DO NOTHING
""").bindparams(bindparam("task_ids", expanding=True))


def claim_tasks(
    session: Session,
    annotator_id: int,
    jobs: Sequence[Job],
    count: int,
    now: datetime,
) -> list[Claimed]:
    """Claim up to `count` tasks from `jobs` (eligible and active, in the order to serve them)
    that the annotator has not worked on, each under a new lease. Returns what was claimed
    (possibly nothing).

    SQLite only: its write transactions begin with BEGIN IMMEDIATE, so this transaction is the
    only writer and plain statements are safe. On PostgreSQL they would not be (no row locks
    here): claims there go through `hot_path.claim_tasks`."""
    if session.get_bind().dialect.name != "sqlite":
        raise RuntimeError("service.claim_tasks is SQLite's claim; use hot_path on PostgreSQL")
    claimed: list[Claimed] = []
    for job in jobs:
        wanted = min(count - len(claimed), _room_left(session, annotator_id, job))
        if wanted <= 0:
            continue
        if sweep_due(job.id, now):
            expire_overdue_assignments(session, now, job_id=job.id)
        per_statement = rules.claims_per_statement(job.gold_ratio, wanted)
        while wanted > 0:
            got = _claim_from_job(session, annotator_id, job, min(per_statement, wanted), now)
            claimed.extend(got)
            wanted -= len(got)
            if len(got) < per_statement:
                break
        if len(claimed) >= count:
            break
    return claimed


def _room_left(session: Session, annotator_id: int, job: Job) -> int:
    if job.max_tasks_per_annotator is None:
        return 1 << 30
    used = session.scalar(
        select(func.count()).where(
            Assignment.job_id == job.id,
            Assignment.annotator_id == annotator_id,
            Assignment.status.in_(COUNTED_ASSIGNMENTS),
        )
    )
    return job.max_tasks_per_annotator - (used or 0)


def _claim_from_job(
    session: Session, annotator_id: int, job: Job, n: int, now: datetime
) -> list[Claimed]:
    lease_until = now + timedelta(seconds=job.lease_seconds)
    params = {
        "job_id": job.id,
        "annotator_id": annotator_id,
        "n": n,
        "now": now,
        "lease_until": lease_until,
    }
    task_ids = list(session.scalars(_SQLITE_PICK, params))
    if not task_ids:
        return []
    assignment_ids = []
    for task_id in task_ids:
        session.execute(_SQLITE_TAKE_SLOT, {"task_id": task_id})
        assignment_id = session.scalar(_SQLITE_INSERT_ASSIGNMENT, {**params, "task_id": task_id})
        assert assignment_id is not None
        assignment_ids.append(assignment_id)
    views = task_items(session, task_ids)
    if any(v.is_gold for task_id in task_ids for v in views[task_id]):
        session.execute(_RECORD_GOLD, {"annotator_id": annotator_id, "task_ids": task_ids})
    return [
        Claimed(
            assignment_id,
            task_id,
            job.id,
            lease_until,
            tuple((v.slot, v.payload) for v in views[task_id]),
        )
        for assignment_id, task_id in zip(assignment_ids, task_ids, strict=True)
    ]


# --- lease expiry -------------------------------------------------------------------------------

_last_sweep: dict[int, float] = {}
_last_sweep_lock = threading.Lock()


def sweep_due(job_id: int, now: datetime) -> bool:
    """Whether a claim from this job should first return its expired leases to the pool (at
    most once a second per job and process; the scheduler's periodic sweep catches the rest).
    Marks the sweep as done."""
    tick = now.timestamp()
    with _last_sweep_lock:
        if 0 <= tick - _last_sweep.get(job_id, 0.0) < SWEEP_ON_CLAIM_EVERY:
            return False
        _last_sweep[job_id] = tick
    return True


def expire_overdue_assignments(
    session: Session, now: datetime, *, job_id: int | None = None, limit: int = 5000
) -> int:
    """Mark active assignments whose lease ran out as expired and give their slots back.
    Assignments another transaction holds are skipped (they are being submitted or swept).
    Returns how many expired."""
    stmt = (
        select(Assignment.id, Assignment.task_id)
        .where(Assignment.status == AssignmentStatus.active, Assignment.lease_expires_at < now)
        .order_by(Assignment.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if job_id is not None:
        stmt = stmt.where(Assignment.job_id == job_id)
    rows = session.execute(stmt).all()
    if not rows:
        return 0
    session.execute(
        update(Assignment)
        .where(Assignment.id.in_([r.id for r in rows]))
        .values(status=AssignmentStatus.expired)
    )
    _free_slots(session, Counter(r.task_id for r in rows))
    return len(rows)


FREE_SLOTS = (
    "UPDATE tasks SET live_count = live_count - :k, status = CASE "
    "WHEN status IN ('open', 'full') AND live_count - :k + done_count < overlap_target "
    "THEN 'open' ELSE status END WHERE id = :id"
)


def _free_slots(session: Session, per_task: Counter[int]) -> None:
    """Give `per_task[task]` live slots back on each task (reopening full tasks)."""
    for task_id in sorted(per_task):
        session.execute(text(FREE_SLOTS), {"k": per_task[task_id], "id": task_id})


# --- the annotator's own assignment -------------------------------------------------------------


def own_assignment(session: Session, annotator_id: int, assignment_id: int) -> Assignment:
    """The annotator's assignment, locked; 404 for anyone else's (ids do not leak)."""
    assignment = session.scalar(
        select(Assignment).where(Assignment.id == assignment_id).with_for_update()
    )
    if assignment is None or assignment.annotator_id != annotator_id:
        raise NotFound("No such assignment")
    return assignment


def _seen(assignment: Assignment, now: datetime, settings: Settings) -> None:
    assignment.active_seconds = rules.active_seconds_at(assignment, now, settings)
    assignment.last_seen_at = now


def heartbeat(
    session: Session, annotator_id: int, assignment_id: int, now: datetime, settings: Settings
) -> rules.LeaseReport:
    """Extend a live lease by the job's lease time, never past claim time + lease × the
    platform's maximum lease factor; records active time. 409 once the lease has run out."""
    assignment = own_assignment(session, annotator_id, assignment_id)
    job = job_for_work(session, assignment.job_id, settings.routing_cache_seconds)
    assignment.lease_expires_at = rules.extended_lease(assignment, job.lease_seconds, now, settings)
    _seen(assignment, now, settings)
    session.flush()
    return _lease_report(assignment, job, settings)


def release(
    session: Session,
    annotator_id: int,
    assignment_id: int,
    reason: str | None,
    now: datetime,
    settings: Settings,
) -> rules.LeaseReport:
    """Give a live assignment back (skip); its slot returns to the pool. Releasing twice is a
    no-op; releasing a submitted or expired one is a 409."""
    assignment = own_assignment(session, annotator_id, assignment_id)
    job = job_for_work(session, assignment.job_id, settings.routing_cache_seconds)
    if rules.check_releasable(assignment, now):
        assignment.status = AssignmentStatus.released
        assignment.release_reason = reason
        assignment.last_seen_at = now
        session.flush()
        _free_slots(session, Counter({assignment.task_id: 1}))
    return _lease_report(assignment, job, settings)


def _lease_report(assignment: Assignment, job: Job, settings: Settings) -> rules.LeaseReport:
    return rules.LeaseReport(
        assignment.id,
        assignment.status,
        assignment.lease_expires_at,
        rules.lease_limit(assignment.claimed_at, job.lease_seconds, settings),
        assignment.active_seconds,
    )


# --- submit -------------------------------------------------------------------------------------


def task_items(session: Session, task_ids: Sequence[int]) -> dict[int, list[TaskItemView]]:
    """The items of each task in slot order (with gold data, for the server's own use only)."""
    out: dict[int, list[TaskItemView]] = {task_id: [] for task_id in task_ids}
    for row in session.execute(
        select(
            TaskItem.task_id,
            TaskItem.position,
            Item.id,
            Item.payload,
            Item.is_gold,
            Item.gold_answer,
        )
        .join(Item, Item.id == TaskItem.item_id)
        .where(TaskItem.task_id.in_(task_ids))
        .order_by(TaskItem.task_id, TaskItem.position)
    ):
        out[row.task_id].append(
            TaskItemView(row.position, row.id, row.payload, row.is_gold, row.gold_answer)
        )
    return out


def submit(
    session: Session,
    annotator_id: int,
    assignment_id: int,
    answers: Sequence[Any],
    now: datetime,
    settings: Settings,
) -> rules.Submitted:
    """Submit the answers of an assignment, one per task item in slot order.

    Ownership (404), state and lease are checked: a live lease is fine; a lease that ran out
    is accepted within the grace period only while its slot has not been handed to someone
    else. Every answer is validated against the schema (422 listing every problem; nothing is
    stored). Gold items are graded at once. Submitting the same answers again returns the
    same result; different answers are a 409."""
    # The assignment and its task, locked together (assignment first, as everywhere).
    row = session.execute(
        select(Assignment, Task)
        .join(Task, Task.id == Assignment.task_id)
        .where(Assignment.id == assignment_id)
        .with_for_update()
    ).first()
    if row is None or row[0].annotator_id != annotator_id:
        raise NotFound("No such assignment")
    assignment, task = row
    job = job_for_work(session, assignment.job_id, settings.routing_cache_seconds)
    digest = rules.answers_digest(answers)
    if rules.check_resubmit(assignment, assignment.answers_hash, digest):
        return _submitted(assignment, job, _stored_gold_scores(session, assignment), True)
    reclaims_slot = rules.check_lease(assignment, task, now, settings)

    schema = job_schema(job)
    items = task_items(session, [task.id])[task.id]
    rules.validate_answers(schema, items, answers)
    scores = rules.grade_gold(schema, items, answers)
    session.add_all(
        Answer(
            assignment_id=assignment.id,
            job_id=job.id,
            item_id=item.item_id,
            annotator_id=annotator_id,
            value=answer,
            score=score,
            created_at=now,
        )
        for item, answer, score in zip(items, answers, scores, strict=True)
    )
    gold_scores = rules.gold_feedback(items, scores)
    _seen(assignment, now, settings)
    assignment.status = AssignmentStatus.submitted
    assignment.submitted_at = now
    assignment.answers_hash = digest
    if gold_scores:
        assignment.gold_score = sum(s for _, s in gold_scores) / len(gold_scores)

    after = rules.slot_after_submit(task, reclaims_slot, now)
    task.live_count, task.done_count = after.live_count, after.done_count
    task.status = after.status
    if after.completed_at is not None:
        task.completed_at = after.completed_at
    session.flush()
    if task.status is TaskStatus.complete:
        regular = [i.item_id for i in items if not i.is_gold]
        if regular:
            refresh_item_results(session, job, schema, regular)
    return _submitted(assignment, job, gold_scores, False)


def _submitted(
    assignment: Assignment, job: Job, gold_scores: list[tuple[int, float]], replayed: bool
) -> rules.Submitted:
    assert assignment.submitted_at is not None
    return rules.Submitted(
        assignment.id,
        assignment.status,
        assignment.submitted_at,
        assignment.active_seconds,
        gold_scores,
        job.instant_feedback,
        replayed,
    )


def _stored_gold_scores(session: Session, assignment: Assignment) -> list[tuple[int, float]]:
    rows = session.execute(
        select(TaskItem.position, Answer.score)
        .join(
            TaskItem,
            (TaskItem.item_id == Answer.item_id) & (TaskItem.task_id == assignment.task_id),
        )
        .where(Answer.assignment_id == assignment.id, Answer.score.is_not(None))
        .order_by(TaskItem.position)
    ).all()
    return [(slot, score) for slot, score in rows if score is not None]


# --- the active jobs, cached ----------------------------------------------------------------------

_active: tuple[float, tuple[Job, ...]] = (0.0, ())  # (fetched at, monotonic; jobs)
_active_lock = threading.Lock()


def job_for_work(session: Session, job_id: int, ttl: float = 0.0) -> Job:
    """The job of an assignment: from the active-job list when it is there (its schema never
    changes once tasks exist), else read (a paused job still takes work in flight)."""
    for job in active_jobs(session, job_id, ttl):
        return job
    return session.get_one(Job, job_id)


def fresh_active_jobs(ttl: float) -> tuple[Job, ...] | None:
    """The cached active jobs while younger than `ttl` seconds, else None."""
    with _active_lock:
        fetched, jobs = _active
    if ttl > 0 and 0 <= time.monotonic() - fetched < ttl:
        return jobs
    return None


def active_jobs(session: Session, job_id: int | None = None, ttl: float = 0.0) -> list[Job]:
    """Active jobs, highest priority first (one job when `job_id` is given). The list is
    reused for `ttl` seconds; the claim statement itself re-checks that the job is active,
    so a job paused meanwhile hands out nothing."""
    global _active
    jobs = fresh_active_jobs(ttl)
    if jobs is None:
        tick = time.monotonic()
        jobs = tuple(
            session.scalars(
                select(Job)
                .where(Job.status == JobStatus.active)
                .order_by(Job.priority.desc(), Job.id)
            )
        )
        for job in jobs:
            session.expunge(job)  # detached snapshots, safe to share between requests
        if ttl > 0:
            with _active_lock:
                _active = (tick, jobs)
    return [job for job in jobs if job_id is None or job.id == job_id]
