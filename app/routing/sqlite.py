"""The hot path's store on SQLite (the embedded default): SQLAlchemy Core statements on one
session, the whole operation in one transaction on one worker thread (a submit's quality rules
in a second one, after the submit has committed, as on PostgreSQL).

Every write transaction on SQLite begins with BEGIN IMMEDIATE (`app.core.db`), so an operation is
the only writer from its first statement to its commit: plain statements are safe where
PostgreSQL needs row locks, and claims are serialised. The store's methods are coroutines only to
share `flow` with PostgreSQL; they never suspend, so `SqliteRunner` drives them with
`store.drive` on its thread (one thread hop per request; none more on a cache miss except the
token's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, insert, select, text, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.consensus.service import (
    Consensus,
    Fit,
    Vote,
    read_fit,
    votes_of_items,
    write_results,
)
from app.core.db import Database
from app.core.security import KnownToken, read_token
from app.core.settings import Settings
from app.jobs import completion
from app.models.jobs import (
    Answer,
    Assignment,
    AssignmentStatus,
    GoldExposure,
    Item,
    Job,
    Task,
    TaskItem,
    TaskStatus,
)
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
    drive,
)
from app.webhooks.hot_path import PendingEvent
from app.webhooks.listeners import subscribed_types
from app.webhooks.service import record_event
from payouts import pay_shown
from qualification_tests.eligibility import COUNTED_ASSIGNMENTS

_PICK = text("""
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
_TAKE_SLOT = text(
    "UPDATE tasks SET live_count = live_count + 1, status = CASE WHEN live_count + 1 "
    "+ done_count >= overlap_target THEN 'full' ELSE 'open' END WHERE id = :task_id"
)
# Gold items of the claimed tasks, recorded as seen by the annotator.
_RECORD_GOLD = text("""
INSERT INTO gold_exposures (annotator_id, item_id)
SELECT DISTINCT :annotator_id, ti.item_id FROM task_items ti JOIN items i ON i.id = ti.item_id
WHERE ti.task_id IN :task_ids AND i.is_gold
ON CONFLICT DO NOTHING
""").bindparams(bindparam("task_ids", expanding=True))

_ASSIGNMENT_COLUMNS = (
    Assignment.id,
    Assignment.annotator_id,
    Assignment.job_id,
    Assignment.task_id,
    Assignment.status,
    Assignment.claimed_at,
    Assignment.lease_expires_at,
    Assignment.last_seen_at,
    Assignment.active_seconds,
    Assignment.answers_hash,
    Assignment.submitted_at,
)


class SqliteStore:
    """`Store` on a session whose transaction the runner commits (a submit with rules to run
    commits its own first: `apply_submit_rules`)."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    def transaction(self) -> AbstractAsyncContextManager[object]:
        return nullcontext()  # the whole operation is one transaction

    async def read_jobs_for(
        self, annotator_id: int, job_id: int | None, now: datetime
    ) -> eligibility.JobsAndVerdicts:
        return eligibility.jobs_for(self.session, annotator_id, job_id, now, self.settings)

    async def read_job(self, job_id: int) -> Job:
        return service.job_for_work(self.session, job_id, self.settings.routing_cache_seconds)

    async def read_job_pace(self, job_ids: list[int]) -> dict[int, float | None]:
        return pay_shown.medians(self.session, job_ids)

    async def counted_assignments(self, annotator_id: int, job_id: int) -> int:
        used = self.session.scalar(
            select(func.count()).where(
                Assignment.job_id == job_id,
                Assignment.annotator_id == annotator_id,
                Assignment.status.in_(COUNTED_ASSIGNMENTS),
            )
        )
        return used or 0

    async def sweep_expired(self, job_id: int, now: datetime) -> None:
        service.expire_overdue_assignments(self.session, now, job_id=job_id)

    async def claim(
        self, annotator_id: int, job: Job, n: int, now: datetime, lease_until: datetime
    ) -> list[Claimed]:
        params = {"job_id": job.id, "annotator_id": annotator_id, "n": n}
        task_ids = list(self.session.scalars(_PICK, params))
        if not task_ids:
            return []
        assignment_ids = []
        for task_id in task_ids:
            self.session.execute(_TAKE_SLOT, {"task_id": task_id})
            assignment_id = self.session.scalar(
                insert(Assignment)
                .values(
                    task_id=task_id,
                    job_id=job.id,
                    annotator_id=annotator_id,
                    status=AssignmentStatus.active,
                    claimed_at=now,
                    lease_expires_at=lease_until,
                    last_seen_at=now,
                    active_seconds=0,
                )
                .returning(Assignment.id)
            )
            assert assignment_id is not None
            assignment_ids.append(assignment_id)
        items = self._task_items(task_ids)
        baked = {task_id for task_id in task_ids if any(i.is_gold for i in items[task_id])}
        if baked:
            self.session.execute(_RECORD_GOLD, {"annotator_id": annotator_id, "task_ids": task_ids})
        return [
            Claimed(
                assignment_id,
                task_id,
                job.id,
                lease_until,
                tuple((item.slot, item.payload) for item in items[task_id]),
                has_gold=task_id in baked,
            )
            for assignment_id, task_id in zip(assignment_ids, task_ids, strict=True)
        ]

    async def read_gold_record(self, annotator_id: int, job_id: int) -> GoldRecord:
        return read_record(self.session, self.settings, annotator_id, job_id)

    async def add_gold(
        self, annotator_id: int, job_id: int, assignment_id: int, slot: int
    ) -> dict[str, Any] | None:
        seen = select(GoldExposure.item_id).where(
            GoldExposure.annotator_id == annotator_id, GoldExposure.item_id == Item.id
        )
        row = self.session.execute(
            select(Item.id, Item.payload)
            .where(Item.job_id == job_id, Item.is_gold.is_(True), ~seen.exists())
            .order_by(func.random())
            .limit(1)
        ).first()
        if row is None:
            return None
        self.session.execute(insert(GoldExposure).values(annotator_id=annotator_id, item_id=row.id))
        self.session.execute(
            update(Assignment)
            .where(Assignment.id == assignment_id)
            .values(gold_item_id=row.id, gold_slot=slot)
        )
        payload: dict[str, Any] = row.payload
        return payload

    async def explain_empty(
        self, annotator_id: int, job_id: int | None, now: datetime
    ) -> list[EmptyQueue]:
        ttl = self.settings.routing_cache_seconds
        return explain_empty(self.session, annotator_id, job_id, now, ttl)

    async def read_prelabels(self, task_ids: Sequence[int]) -> list[PrelabelView]:
        rows = self.session.execute(
            select(
                TaskItem.task_id,
                TaskItem.position,
                Item.prelabel,
                Item.prelabel_score,
                Item.is_gold,
                Item.gold_answer,
            )
            .join(Item, Item.id == TaskItem.item_id)
            .where(TaskItem.task_id.in_(task_ids), Item.prelabel.is_not(None))
        )
        return [PrelabelView(*row) for row in rows]

    async def lock_assignment(self, assignment_id: int) -> AssignmentState | None:
        row = self.session.execute(
            select(*_ASSIGNMENT_COLUMNS).where(Assignment.id == assignment_id)
        ).first()
        return None if row is None else AssignmentState(**row._asdict())

    async def record_heartbeat(
        self, assignment_id: int, lease_expires_at: datetime, now: datetime, active_seconds: int
    ) -> None:
        self.session.execute(
            update(Assignment)
            .where(Assignment.id == assignment_id)
            .values(
                lease_expires_at=lease_expires_at, last_seen_at=now, active_seconds=active_seconds
            )
        )

    async def record_release(
        self, assignment: AssignmentState, reason: str | None, now: datetime
    ) -> None:
        self.session.execute(
            update(Assignment)
            .where(Assignment.id == assignment.id)
            .values(status=AssignmentStatus.released, release_reason=reason, last_seen_at=now)
        )
        service.free_slots(self.session, Counter({assignment.task_id: 1}))

    async def lock_for_submit(self, assignment_id: int) -> SubmitState | None:
        row = self.session.execute(
            select(
                *_ASSIGNMENT_COLUMNS,
                Task.status.label("task_status"),
                Task.live_count,
                Task.done_count,
                Task.overlap_target,
                Assignment.gold_item_id,
                Assignment.gold_slot,
            )
            .join(Task, Task.id == Assignment.task_id)
            .where(Assignment.id == assignment_id)
        ).first()
        if row is None:
            return None
        columns = row._asdict()
        task = TaskState(
            columns.pop("task_status"),
            columns.pop("live_count"),
            columns.pop("done_count"),
            columns.pop("overlap_target"),
        )
        gold_item_id, gold_slot = columns.pop("gold_item_id"), columns.pop("gold_slot")
        assignment = AssignmentState(**columns)
        items = self._task_items([assignment.task_id])[assignment.task_id]
        return SubmitState(
            assignment, task, items_with_gold(items, self._gold(gold_item_id, gold_slot))
        )

    async def stored_gold_scores(self, assignment: AssignmentState) -> list[tuple[int, float]]:
        slot = case(
            (Answer.item_id == Assignment.gold_item_id, Assignment.gold_slot),
            else_=TaskItem.position,
        )
        rows = self.session.execute(
            select(slot, Answer.score)
            .join(Assignment, Assignment.id == Answer.assignment_id)
            .outerjoin(
                TaskItem,
                (TaskItem.item_id == Answer.item_id) & (TaskItem.task_id == assignment.task_id),
            )
            .where(Answer.assignment_id == assignment.id, Answer.score.is_not(None))
            .order_by(slot)
        ).all()
        return [(slot, score) for slot, score in rows if score is not None]

    async def record_submit(self, write: SubmitWrite) -> list[Vote]:
        self.session.execute(
            insert(Answer),
            [
                {
                    "assignment_id": write.assignment_id,
                    "job_id": write.job_id,
                    "item_id": a.item_id,
                    "annotator_id": write.annotator_id,
                    "value": a.value,
                    "score": a.score,
                    "created_at": write.now,
                }
                for a in write.answers
            ],
        )
        self.session.execute(
            update(Assignment)
            .where(Assignment.id == write.assignment_id)
            .values(
                status=AssignmentStatus.submitted,
                submitted_at=write.now,
                last_seen_at=write.now,
                active_seconds=write.active_seconds,
                answers_hash=write.answers_hash,
                gold_score=write.gold_score,
            )
        )
        slot = write.slot
        counters: dict[str, Any] = {
            "live_count": slot.live_count,
            "done_count": slot.done_count,
            "status": slot.status,
        }
        if slot.completed_at is not None:
            counters["completed_at"] = slot.completed_at
        self.session.execute(update(Task).where(Task.id == write.task_id).values(**counters))
        self._record_events(write.client_id, write.job_id, write.events)
        if not write.consensus_items:
            return []
        return votes_of_items(self.session, write.consensus_items)

    async def read_fit(self, job_id: int) -> Fit | None:
        return read_fit(self.session, job_id)

    async def grow_overlap(self, task_id: int) -> None:
        self.session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(
                overlap_target=Task.overlap_target + 1, status=TaskStatus.open, completed_at=None
            )
        )

    async def record_consensus(
        self,
        job: Job,
        method: str,
        results: Sequence[Consensus],
        now: datetime,
        events: Sequence[PendingEvent],
    ) -> None:
        write_results(self.session, job.id, method, results, now)
        self._record_events(job.client_id, job.id, events)

    async def apply_submit_rules(self, assignment_id: int, now: datetime) -> None:
        # As on PostgreSQL: the submit commits first, so a failing rule cannot undo it; the
        # rules then run in a transaction of their own, which the runner commits (same session,
        # same thread: no second hop).
        self.session.commit()
        enforcement.check_submit(self.session, self.settings, assignment_id, now)

    async def queue_completion_if_done(self, job_id: int, now: datetime) -> None:
        # After the submit's commit (see `app.jobs.completion`); the runner commits this one.
        self.session.commit()
        completion.queue_if_done(self.session, job_id)

    async def listening_types(self, client_id: int) -> frozenset[str]:
        return subscribed_types(self.session, client_id)

    def _record_events(self, client_id: int, job_id: int, events: Sequence[PendingEvent]) -> None:
        for e in events:
            record_event(self.session, client_id, e.type, e.data, job_id=job_id)

    def _gold(self, item_id: int | None, slot: int | None) -> TaskItemView | None:
        """The gold item a claim added to an assignment, at its slot (None without one)."""
        if item_id is None or slot is None:
            return None
        item = self.session.get_one(Item, item_id)
        return TaskItemView(slot, item.id, item.payload, True, item.gold_answer, item.external_id)

    def _task_items(self, task_ids: Sequence[int]) -> dict[int, list[TaskItemView]]:
        """The items of each task in slot order (with gold data, for the server's own use)."""
        out: dict[int, list[TaskItemView]] = {task_id: [] for task_id in task_ids}
        for row in self.session.execute(
            select(
                TaskItem.task_id,
                TaskItem.position,
                Item.id,
                Item.payload,
                Item.is_gold,
                Item.gold_answer,
                Item.external_id,
            )
            .join(Item, Item.id == TaskItem.item_id)
            .where(TaskItem.task_id.in_(task_ids))
            .order_by(TaskItem.task_id, TaskItem.position)
        ):
            out[row.task_id].append(
                TaskItemView(
                    row.position, row.id, row.payload, row.is_gold, row.gold_answer, row.external_id
                )
            )
        return out


class SqliteRunner:
    """Runs each operation in a transaction of its own on one worker thread (a submit's rules
    in the next one)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def run(self, operation: Operation[R]) -> R:
        return await run_in_threadpool(self._run, operation)

    def _run(self, operation: Operation[R]) -> R:
        with self.db.transaction() as session:
            return drive(operation(SqliteStore(session, self.db.settings)))

    async def read_token(self, secret_hash: str) -> KnownToken | None:
        return await run_in_threadpool(read_token, self.db, secret_hash)


class SqliteWorkplace:
    """The hot path on SQLite: nothing to open; each request runs on a worker thread."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def runner(self) -> AsyncIterator[SqliteRunner]:
        yield SqliteRunner(self.db)

    async def close(self) -> None:
        return None
