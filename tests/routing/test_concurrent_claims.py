"""32 annotators in 32 threads claim and submit ~10,000 times against tasks with overlap 3 on
PostgreSQL, some abandoning their claims so leases expire and slots are re-issued. Each thread
runs the hot path the API runs on PostgreSQL (`hot_path`, async) on a connection of its own."""

from __future__ import annotations

import asyncio
import io
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import func, select, text

from app.core.clock import utcnow
from app.core.db import Database, open_async_pool
from app.core.security import Principal
from app.jobs import importing, schemas, service, splitting
from app.models import Answer, Assignment, AssignmentStatus, Job, Task, TaskStatus
from app.routing import hot_path
from app.routing.service import expire_overdue_assignments
from tests.jobs.factories import SENTIMENT, jsonl, reviews
from tests.support import Account

THREADS = 32
TASKS = 3_300  # × overlap 3 ≈ 9,900 submits, plus re-issued abandoned claims
OVERLAP = 3
ABANDON = 0.04
DEADLINE_S = 900  # typically 2-4 minutes on a 2-core machine; a hang still fails


@pytest.mark.postgresql
def test_32_threads_never_over_assign_duplicate_or_lose_work(
    db: Database, make_account: Callable[..., Account]
) -> None:
    owner = make_account("client")
    annotators = [make_account("annotator") for _ in range(THREADS)]
    wide = Database(db.settings.model_copy(update={"db_pool_size": THREADS + 4}))
    with wide.transaction() as session:
        body = schemas.JobCreate(
            title="race",
            label_schema=SENTIMENT,
            pricing=schemas.Pricing(rate_micros=1),
            overlap=schemas.Overlap(min=OVERLAP),
        )
        job = service.create_job(session, Principal(owner.user, 0), body)
        job.lease_seconds = 1  # short leases so abandoned claims expire during the run
        importing.import_dataset(
            session,
            job,
            service.job_schema(job),
            io.BytesIO(jsonl(reviews(TASKS))),
            importing.ImportFormat.jsonl,
        )
        service.change_status(session, job, "activate")
        splitting.split_into_tasks(session, job)
        job_id = job.id
    with wide.transaction() as session:
        session.execute(text("ANALYZE tasks; ANALYZE assignments"))

    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(annotator: Account, seed: int) -> None:
        try:
            asyncio.run(annotate(annotator, seed))
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    async def annotate(annotator: Account, seed: int) -> None:
        """One annotator on a connection of its own, through the hot path the API runs."""
        rng = random.Random(seed)
        pool = await open_async_pool(wide.settings)
        assert pool is not None
        try:
            with wide.read_session() as session:
                jobs = [session.get_one(Job, job_id)]
            while not stop.is_set():
                async with pool.connection() as conn:
                    claimed = await hot_path.claim_tasks(
                        conn, wide, annotator.id, jobs, 1, utcnow()
                    )
                    await conn.commit()
                if not claimed:
                    await asyncio.sleep(0.05)
                    continue
                with lock:
                    outcomes["claimed"] += 1
                if rng.random() < ABANDON:
                    with lock:
                        outcomes["abandoned"] += 1
                    continue
                answers = [{"sentiment": rng.choice(["positive", "negative"])}]
                async with pool.connection() as conn:
                    try:
                        async with conn.transaction():
                            await hot_path.submit(
                                conn,
                                wide,
                                annotator.id,
                                claimed[0].assignment_id,
                                answers,
                                utcnow(),
                                wide.settings,
                            )
                        outcome = "submitted"
                    except Exception as exc:  # a late submit may lose its re-issued slot
                        outcome = type(exc).__name__
                with lock:
                    outcomes[outcome] += 1
        finally:
            await pool.close()

    def sweep() -> None:
        while not stop.is_set():
            with wide.transaction() as session:
                expire_overdue_assignments(session, utcnow())
            time.sleep(0.2)

    def all_complete() -> bool:
        with wide.read_session() as session:
            left = session.scalar(
                select(func.count()).where(
                    Task.job_id == job_id, Task.status != TaskStatus.complete
                )
            )
        return left == 0

    threads = [threading.Thread(target=work, args=(a, n)) for n, a in enumerate(annotators)]
    threads.append(threading.Thread(target=sweep))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        while not stop.is_set() and not all_complete():
            assert time.monotonic() - started < DEADLINE_S, f"not done in time: {outcomes}"
            time.sleep(0.5)
    finally:  # never leave threads running into the next test's clean-up
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors

    with wide.read_session() as session:
        tasks = session.execute(
            select(Task.overlap_target, Task.live_count, Task.done_count, Task.status).where(
                Task.job_id == job_id
            )
        ).all()
        duplicates = session.scalar(
            select(func.count()).select_from(
                select(Assignment.task_id, Assignment.annotator_id)
                .group_by(Assignment.task_id, Assignment.annotator_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
        by_status = Counter(
            dict(
                session.execute(
                    select(Assignment.status, func.count())
                    .where(Assignment.job_id == job_id)
                    .group_by(Assignment.status)
                ).all()
            )
        )
        answers = session.scalar(select(func.count()).where(Answer.job_id == job_id))
    wide.dispose()

    assert outcomes["claimed"] >= 10_000
    assert sum(1 for t in tasks if t.done_count > t.overlap_target) == 0  # never over overlap
    assert all(t.live_count == 0 and t.done_count == OVERLAP for t in tasks)
    assert all(t.status is TaskStatus.complete for t in tasks)
    assert duplicates == 0
    # No lost submissions: every acknowledged submit is stored, once.
    assert by_status[AssignmentStatus.submitted] == outcomes["submitted"] == answers
    assert outcomes["submitted"] == TASKS * OVERLAP
    # Every expired lease was re-issued exactly once: each claim beyond the 3 per task
    # corresponds to exactly one expired assignment.
    expired = by_status[AssignmentStatus.expired]
    assert expired >= outcomes["abandoned"] > 0
    assert sum(by_status.values()) == TASKS * OVERLAP + expired
    assert outcomes["claimed"] == sum(by_status.values())
