"""Annotators in many threads claim and submit against tasks with overlap 3, some abandoning
their claims so leases expire and slots are re-issued: 32 threads and ~10,000 claims on
PostgreSQL, 8 threads on SQLite. Each thread runs the operations the API runs (`flow`, through
the database's runner, as `work.open_workplace` chooses it) with an event loop of its own."""

from __future__ import annotations

import asyncio
import io
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial

import pytest
from sqlalchemy import func, select, text

from app.core.clock import utcnow
from app.core.db import Database
from app.core.security import Principal
from app.jobs import importing, schemas, service, splitting
from app.models import Answer, Assignment, AssignmentStatus, Task, TaskStatus
from app.routing import flow
from app.routing.service import expire_overdue_assignments
from app.routing.work import open_workplace
from tests.jobs.factories import SENTIMENT, jsonl, reviews
from tests.support import Account

pytestmark = pytest.mark.commits  # threads race on real commits

OVERLAP = 3
ABANDON = 0.04
DEADLINE_S = 900  # typically 2-4 minutes on a 2-core machine; a hang still fails


@pytest.mark.postgresql
def test_32_threads_never_over_assign_duplicate_or_lose_work(
    db: Database, make_account: Callable[..., Account]
) -> None:
    outcomes = race(db, make_account, threads=32, tasks=3_300)  # ≈ 9,900 submits
    assert outcomes["claimed"] >= 10_000


def test_8_threads_on_sqlite_never_over_assign_duplicate_or_lose_work(
    db: Database, make_account: Callable[..., Account]
) -> None:
    if db.dialect != "sqlite":
        pytest.skip("the SQLite pass runs this; PostgreSQL runs the 32-thread race")
    outcomes = race(db, make_account, threads=8, tasks=300)
    assert outcomes["claimed"] >= 900


def race(
    db: Database, make_account: Callable[..., Account], *, threads: int, tasks: int
) -> Counter[str]:
    """Run the race and check its invariants; return what the annotators saw."""
    owner = make_account("client")
    annotators = [make_account("annotator") for _ in range(threads)]
    # The caches on, as in production: eligibility and the active-job list are shared reads.
    # Each annotator's workplace holds one connection; the small shared pool serves the cache
    # misses and sweeps (PostgreSQL's default allows 100 connections).
    wide = Database(
        db.settings.model_copy(
            update={
                "db_pool_size": 4,
                "db_max_overflow": 4,
                "routing_cache_seconds": 2.0,
                "eligibility_cache_seconds": 30.0,
            }
        )
    )
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
            io.BytesIO(jsonl(reviews(tasks))),
            importing.ImportFormat.jsonl,
        )
        service.change_status(session, job, "activate")
        splitting.split_into_tasks(session, job)
        job_id = job.id
    if wide.dialect == "postgresql":
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
        """One annotator with a workplace of its own, running the API's operations."""
        rng = random.Random(seed)
        workplace = await open_workplace(wide.settings, wide)
        try:
            while not stop.is_set():
                async with workplace.runner() as runner:
                    _, claimed, _, _ = await runner.run(
                        partial(
                            flow.claim_next,
                            annotator_id=annotator.id,
                            job_id=job_id,
                            count=1,
                            now=utcnow(),
                            settings=wide.settings,
                        )
                    )
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
                async with workplace.runner() as runner:
                    try:
                        await runner.run(
                            partial(
                                flow.submit,
                                annotator_id=annotator.id,
                                assignment_id=claimed[0].assignment_id,
                                answers=answers,
                                now=utcnow(),
                                settings=wide.settings,
                            )
                        )
                        outcome = "submitted"
                    except Exception as exc:  # a late submit may lose its re-issued slot
                        outcome = type(exc).__name__
                with lock:
                    outcomes[outcome] += 1
        finally:
            await workplace.close()

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

    runners = [threading.Thread(target=work, args=(a, n)) for n, a in enumerate(annotators)]
    runners.append(threading.Thread(target=sweep))
    started = time.monotonic()
    for thread in runners:
        thread.start()
    try:
        while not stop.is_set() and not all_complete():
            assert time.monotonic() - started < DEADLINE_S, f"not done in time: {outcomes}"
            time.sleep(0.5)
    finally:  # never leave threads running into the next test's clean-up
        stop.set()
        for thread in runners:
            thread.join()
    assert not errors, errors

    with wide.read_session() as session:
        task_rows = session.execute(
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

    assert sum(1 for t in task_rows if t.done_count > t.overlap_target) == 0  # never over overlap
    assert all(t.live_count == 0 and t.done_count == OVERLAP for t in task_rows)
    assert all(t.status is TaskStatus.complete for t in task_rows)
    assert duplicates == 0
    # No lost submissions: every acknowledged submit is stored, once.
    assert by_status[AssignmentStatus.submitted] == outcomes["submitted"] == answers
    assert outcomes["submitted"] == tasks * OVERLAP
    # Every expired lease was re-issued exactly once: each claim beyond the 3 per task
    # corresponds to exactly one expired assignment.
    expired = by_status[AssignmentStatus.expired]
    assert expired >= outcomes["abandoned"] > 0
    assert sum(by_status.values()) == tasks * OVERLAP + expired
    assert outcomes["claimed"] == sum(by_status.values())
    return outcomes
