"""Claiming tasks under a lease, heartbeats, release, submit, and lease expiry.

Concurrency: on PostgreSQL one statement claims (select-and-lock the head of the job's queue with
FOR UPDATE SKIP LOCKED, bump the task's live count, insert the assignment), so two annotators never
hold the same slot and nobody waits on a row another claim holds; UNIQUE(task, annotator) is the
last line of defence against doing a task twice. On SQLite every write transaction begins with
BEGIN IMMEDIATE, so claims are serialised and the same statements run one after another.
Lock order everywhere is assignment, then task (sorted by id), so sweeps, submits and releases
cannot deadlock one another.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.orm import Session

from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.settings import Settings
from app.jobs.consensus import refresh_item_results
from app.jobs.label_schema import LabelSchema, validate_answer
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
from qualification_tests.eligibility import COUNTED_ASSIGNMENTS
from qualification_tests.grading import grade_answer

FINISHED = (AssignmentStatus.submitted, AssignmentStatus.approved, AssignmentStatus.rejected)
HEARTBEAT_SLACK = timedelta(seconds=5)
SWEEP_ON_CLAIM_EVERY = 1.0  # seconds between claim-time lease sweeps of one job, per process


@dataclass(frozen=True)
class Claimed:
    assignment_id: int
    task_id: int
    job_id: int
    lease_expires_at: datetime
    items: tuple[tuple[int, dict[str, Any]], ...]  # (slot, payload): what the annotator sees


# --- claiming -----------------------------------------------------------------------------------

_PG_CLAIM = text("""
WITH picked AS (
    SELECT t.id FROM tasks t
    WHERE t.job_id = :job_id AND t.status = 'open'
      AND NOT EXISTS (
        SELECT 1 FROM assignments a
        WHERE a.task_id = t.id AND a.annotator_id = :annotator_id
        OFFSET 0)
      AND (NOT t.has_gold OR NOT EXISTS (
        SELECT 1 FROM task_items ti
        JOIN gold_exposures g ON g.item_id = ti.item_id AND g.annotator_id = :annotator_id
        WHERE ti.task_id = t.id
        OFFSET 0))
      AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = :job_id AND j.status = 'active')
    ORDER BY t.order_key, t.id
    LIMIT :n
    FOR UPDATE OF t SKIP LOCKED
), bumped AS (
    UPDATE tasks t
    SET live_count = t.live_count + 1,
        status = CASE WHEN t.live_count + 1 + t.done_count >= t.overlap_target
                      THEN 'full' ELSE 'open' END
    FROM picked WHERE t.id = picked.id
    RETURNING t.id, t.has_gold
), inserted AS (
    INSERT INTO assignments (task_id, job_id, annotator_id, status, claimed_at, lease_expires_at,
                             last_seen_at, active_seconds)
    SELECT id, :job_id, :annotator_id, 'active', :now, :lease_until, :now, 0 FROM bumped
    RETURNING id, task_id
)
SELECT ins.id, ins.task_id, b.has_gold, ti.position, i.payload
FROM inserted ins
JOIN bumped b ON b.id = ins.task_id
JOIN task_items ti ON ti.task_id = ins.task_id
JOIN items i ON i.id = ti.item_id
ORDER BY ins.id, ti.position
""").columns(payload=Item.__table__.c.payload.type)

_SQLITE_PICK = text("""
SELECT t.id FROM tasks t
WHERE t.job_id = :job_id AND t.status = 'open'
  AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = :job_id AND j.status = 'active')
  AND NOT EXISTS (SELECT 1 FROM assignments a
                  WHERE a.task_id = t.id AND a.annotator_id = :annotator_id)
      AND (NOT t.has_gold OR NOT EXISTS (
        SELECT 1 FROM task_items ti
        JOIN gold_exposures g ON g.item_id = ti.item_id AND g.annotator_id = :annotator_id
        WHERE ti.task_id = t.id
        ))
ORDER BY t.order_key, t.id
LIMIT :n
""")

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
    (possibly nothing)."""
    claimed: list[Claimed] = []
    for job in jobs:
        wanted = min(count - len(claimed), _room_left(session, annotator_id, job))
        if wanted <= 0:
            continue
        _sweep_job_now_and_then(session, job.id, now)
        lease_until = now + timedelta(seconds=job.lease_seconds)
        if job.gold_ratio > 0:
            # One at a time, so a gold item seen in one claimed task rules out the next.
            for _ in range(wanted):
                got = _claim_from_job(session, annotator_id, job.id, 1, now, lease_until)
                claimed.extend(got)
                if not got:
                    break
        else:
            claimed.extend(_claim_from_job(session, annotator_id, job.id, wanted, now, lease_until))
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
    session: Session,
    annotator_id: int,
    job_id: int,
    n: int,
    now: datetime,
    lease_until: datetime,
) -> list[Claimed]:
    params = {
        "job_id": job_id,
        "annotator_id": annotator_id,
        "n": n,
        "now": now,
        "lease_until": lease_until,
    }
    if session.get_bind().dialect.name == "postgresql":
        by_assignment: dict[int, list[Any]] = {}
        gold_tasks = []
        for r in session.execute(_PG_CLAIM, params):
            if r.id not in by_assignment:
                by_assignment[r.id] = [r.task_id, []]
                if r.has_gold:
                    gold_tasks.append(r.task_id)
            by_assignment[r.id][1].append((r.position, r.payload))
        claimed = [
            Claimed(aid, task_id, job_id, lease_until, tuple(items))
            for aid, (task_id, items) in by_assignment.items()
        ]
    else:
        claimed = _claim_one_by_one(session, params, job_id, lease_until)
        gold_tasks = list(
            session.scalars(
                select(Task.id).where(Task.id.in_([c.task_id for c in claimed]), Task.has_gold)
            )
        )
    if gold_tasks:
        session.execute(_RECORD_GOLD, {"annotator_id": annotator_id, "task_ids": gold_tasks})
    return claimed


def _claim_one_by_one(
    session: Session, params: dict[str, Any], job_id: int, lease_until: datetime
) -> list[Claimed]:
    """SQLite: the write lock is ours (BEGIN IMMEDIATE), so plain statements are safe."""
    task_ids = list(session.scalars(_SQLITE_PICK, params))
    claimed = []
    for task_id in task_ids:
        session.execute(
            text(
                "UPDATE tasks SET live_count = live_count + 1, status = CASE WHEN live_count + 1 "
                "+ done_count >= overlap_target THEN 'full' ELSE 'open' END WHERE id = :id"
            ),
            {"id": task_id},
        )
        assignment_id = session.scalar(
            text(
                "INSERT INTO assignments (task_id, job_id, annotator_id, status, claimed_at, "
                "lease_expires_at, last_seen_at, active_seconds) VALUES (:task_id, :job_id, "
                ":annotator_id, 'active', :now, :lease_until, :now, 0) RETURNING id"
            ).bindparams(
                bindparam("now", type_=Assignment.__table__.c.claimed_at.type),
                bindparam("lease_until", type_=Assignment.__table__.c.claimed_at.type),
            ),
            {**params, "task_id": task_id},
        )
        assert assignment_id is not None
        claimed.append(Claimed(assignment_id, task_id, job_id, lease_until, ()))
    views = task_items(session, task_ids)
    return [
        Claimed(
            c.assignment_id,
            c.task_id,
            c.job_id,
            c.lease_expires_at,
            tuple((v.slot, v.payload) for v in views[c.task_id]),
        )
        for c in claimed
    ]


# --- lease expiry -------------------------------------------------------------------------------

_last_sweep: dict[int, float] = {}
_last_sweep_lock = threading.Lock()


def _sweep_job_now_and_then(session: Session, job_id: int, now: datetime) -> None:
    """Expired leases of a job go back to the pool when someone claims from it (at most once a
    second per job and process; the scheduler's periodic sweep catches the rest)."""
    tick = now.timestamp()
    with _last_sweep_lock:
        if 0 <= tick - _last_sweep.get(job_id, 0.0) < SWEEP_ON_CLAIM_EVERY:
            return
        _last_sweep[job_id] = tick
    expire_overdue_assignments(session, now, job_id=job_id)


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


def _free_slots(session: Session, per_task: Counter[int]) -> None:
    """Give `per_task[task]` live slots back on each task (reopening full tasks)."""
    for task_id in sorted(per_task):
        session.execute(
            text(
                "UPDATE tasks SET live_count = live_count - :k, status = CASE "
                "WHEN status IN ('open', 'full') AND live_count - :k + done_count < overlap_target "
                "THEN 'open' ELSE status END WHERE id = :id"
            ),
            {"k": per_task[task_id], "id": task_id},
        )


# --- the annotator's own assignment -------------------------------------------------------------


def own_assignment(session: Session, annotator_id: int, assignment_id: int) -> Assignment:
    """The annotator's assignment, locked; 404 for anyone else's (ids do not leak)."""
    assignment = session.scalar(
        select(Assignment).where(Assignment.id == assignment_id).with_for_update()
    )
    if assignment is None or assignment.annotator_id != annotator_id:
        raise NotFound("No such assignment")
    return assignment


def _accrue_active_time(assignment: Assignment, now: datetime, interval: timedelta) -> None:
    """Count the time since the annotator was last seen, unless the gap is longer than the
    heartbeat interval (they were idle or away)."""
    gap = now - assignment.last_seen_at
    if timedelta(0) < gap <= interval + HEARTBEAT_SLACK:
        assignment.active_seconds += int(gap.total_seconds())
    assignment.last_seen_at = now


def heartbeat(
    session: Session, annotator_id: int, assignment_id: int, now: datetime, settings: Settings
) -> Assignment:
    """Extend a live lease by the job's lease time, never past claim time + lease × the
    platform's maximum lease factor; records active time. 409 once the lease has run out."""
    assignment = own_assignment(session, annotator_id, assignment_id)
    if assignment.status is not AssignmentStatus.active or assignment.lease_expires_at <= now:
        raise Conflict(
            "This assignment's lease has ended",
            assignment_status=_public_status(assignment, now),
        )
    job = session.get_one(Job, assignment.job_id)
    lease = timedelta(seconds=job.lease_seconds)
    limit = assignment.claimed_at + lease * settings.max_lease_factor
    assignment.lease_expires_at = max(assignment.lease_expires_at, min(now + lease, limit))
    _accrue_active_time(assignment, now, timedelta(seconds=settings.heartbeat_interval_seconds))
    session.flush()
    return assignment


def release(
    session: Session, annotator_id: int, assignment_id: int, reason: str | None, now: datetime
) -> Assignment:
    """Give a live assignment back (skip); its slot returns to the pool. Releasing twice is a
    no-op; releasing a submitted or expired one is a 409."""
    assignment = own_assignment(session, annotator_id, assignment_id)
    if assignment.status is AssignmentStatus.released:
        return assignment
    if assignment.status is not AssignmentStatus.active:
        raise Conflict(f"A {_public_status(assignment, now)} assignment cannot be released")
    assignment.status = AssignmentStatus.released
    assignment.release_reason = reason
    assignment.last_seen_at = now
    session.flush()
    _free_slots(session, Counter({assignment.task_id: 1}))
    return assignment


def _public_status(assignment: Assignment, now: datetime) -> str:
    if assignment.status is AssignmentStatus.active and assignment.lease_expires_at <= now:
        return "expired"
    return assignment.status.value


# --- submit -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskItemView:
    slot: int
    item_id: int
    payload: dict[str, Any]
    is_gold: bool
    gold_answer: dict[str, Any] | None


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


@dataclass(frozen=True)
class SubmitResult:
    assignment: Assignment
    gold_scores: list[tuple[int, float]]  # (slot, score) of gold items
    replayed: bool


def answers_digest(answers: Sequence[Any]) -> str:
    return hashlib.sha256(orjson.dumps(list(answers), option=orjson.OPT_SORT_KEYS)).hexdigest()


def submit(
    session: Session,
    annotator_id: int,
    assignment_id: int,
    answers: Sequence[Any],
    now: datetime,
    settings: Settings,
) -> SubmitResult:
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
    digest = answers_digest(answers)
    if assignment.status in FINISHED:
        if assignment.answers_hash != digest:
            raise Conflict("This assignment was already submitted with different answers")
        return SubmitResult(assignment, _stored_gold_scores(session, assignment), replayed=True)
    if assignment.status is AssignmentStatus.released:
        raise Conflict("This assignment was released")

    job = job_for_work(session, assignment.job_id, settings.routing_cache_seconds)
    reclaims_slot = _check_lease(assignment, task, now, settings)

    schema = job_schema(job)
    items = task_items(session, [task.id])[task.id]
    _validate_answers(schema, items, answers)

    gold_scores: list[tuple[int, float]] = []
    for item, answer in zip(items, answers, strict=True):
        score = None
        if item.is_gold and item.gold_answer is not None:
            score = grade_answer(schema, answer, item.gold_answer, item.payload)
            gold_scores.append((item.slot, score))
        session.add(
            Answer(
                assignment_id=assignment.id,
                job_id=job.id,
                item_id=item.item_id,
                annotator_id=annotator_id,
                value=answer,
                score=score,
                created_at=now,
            )
        )
    _accrue_active_time(assignment, now, timedelta(seconds=settings.heartbeat_interval_seconds))
    assignment.status = AssignmentStatus.submitted
    assignment.submitted_at = now
    assignment.answers_hash = digest
    if gold_scores:
        assignment.gold_score = sum(s for _, s in gold_scores) / len(gold_scores)

    if not reclaims_slot:
        task.live_count -= 1
    task.done_count += 1
    if task.done_count >= task.overlap_target:
        task.status, task.completed_at = TaskStatus.complete, now
    elif (
        task.status is TaskStatus.open and task.live_count + task.done_count >= task.overlap_target
    ):
        task.status = TaskStatus.full
    session.flush()
    if task.status is TaskStatus.complete:
        regular = [i.item_id for i in items if not i.is_gold]
        if regular:
            refresh_item_results(session, job, schema, regular)
    return SubmitResult(assignment, gold_scores, replayed=False)


def _check_lease(assignment: Assignment, task: Task, now: datetime, settings: Settings) -> bool:
    """Whether a late submit takes its slot back (True) or still holds it (False); 409 when
    it is too late or the slot went to someone else."""
    grace = timedelta(seconds=settings.submit_grace_seconds)
    if assignment.status is AssignmentStatus.active and now <= assignment.lease_expires_at:
        return False
    if now > assignment.lease_expires_at + grace:
        raise Conflict(
            "The lease ran out and the grace period for late answers is over",
            lease_expired_at=assignment.lease_expires_at.isoformat(),
        )
    if assignment.status is AssignmentStatus.active:
        return False  # ran out, but the sweep has not taken the slot back yet
    # Expired and swept: the slot went back to the pool. Take it again only if it is still free.
    if (
        task.status is not TaskStatus.open
        or task.live_count + task.done_count >= task.overlap_target
    ):
        raise Conflict("The lease ran out and the task was given to someone else")
    return True


def _validate_answers(
    schema: LabelSchema, items: list[TaskItemView], answers: Sequence[Any]
) -> None:
    if len(answers) != len(items):
        raise ValidationFailed(
            f"This task has {len(items)} item(s): send one answer per item, in order",
            errors=[
                {
                    "pointer": "#/answers",
                    "detail": f"expected {len(items)} answers, got {len(answers)}",
                }
            ],
        )
    problems = []
    for slot, (item, answer) in enumerate(zip(items, answers, strict=True)):
        for problem in validate_answer(schema, answer, item.payload):
            pointer = f"#/answers/{slot}" + str(problem["pointer"]).removeprefix("#")
            problems.append({**problem, "pointer": pointer})
    if problems:
        raise ValidationFailed("The answers do not fit the job's label schema", errors=problems)


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


_active: list[Any] = [0.0, []]  # [fetched at (monotonic), jobs]
_active_lock = threading.Lock()


def job_for_work(session: Session, job_id: int, ttl: float = 0.0) -> Job:
    """The job of an assignment: from the active-job list when it is there (its schema never
    changes once tasks exist), else read (a paused job still takes work in flight)."""
    for job in active_jobs(session, job_id, ttl):
        return job
    return session.get_one(Job, job_id)


def active_jobs(session: Session, job_id: int | None = None, ttl: float = 0.0) -> list[Job]:
    """Active jobs, highest priority first (one job when `job_id` is given). The list is
    reused for `ttl` seconds; the claim statement itself re-checks that the job is active,
    so a job paused meanwhile hands out nothing."""
    tick = time.monotonic()
    with _active_lock:
        fetched, jobs = _active
    if not (ttl > 0 and 0 <= tick - fetched < ttl):
        jobs = list(
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
                _active[:] = [tick, jobs]
    if job_id is not None:
        return [job for job in jobs if job.id == job_id]
    return list(jobs)
