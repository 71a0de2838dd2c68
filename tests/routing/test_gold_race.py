"""Gold chosen at claim under concurrency (PostgreSQL, 16 threads claiming and submitting at
once): no task takes more answers than its overlap and no annotator is given a gold item twice,
while the gold runs out for everyone before the job is done."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial

import pytest
from sqlalchemy import func, select

from app.core.clock import utcnow
from app.core.db import Database
from app.core.security import Principal
from app.jobs import importing, schemas, service, splitting
from app.models import Answer, Assignment, GoldExposure, Item, Task, TaskStatus
from app.routing import flow
from app.routing.work import open_workplace
from tests.jobs.factories import SENTIMENT, controls, jsonl, reviews
from tests.support import Account

pytestmark = pytest.mark.commits  # threads race on real commits

THREADS = 16
TASKS = 60
GOLD = 6
OVERLAP = 3
DEADLINE_S = 600


@pytest.mark.postgresql
def test_16_threads_never_over_assign_nor_repeat_gold(
    db: Database, make_account: Callable[..., Account]
) -> None:
    owner = make_account("client")
    annotators = [make_account("annotator") for _ in range(THREADS)]
    wide = Database(db.settings.model_copy(update={"db_pool_size": 4, "db_max_overflow": 4}))
    with wide.transaction() as session:
        body = schemas.JobCreate(
            title="gold race",
            label_schema=SENTIMENT,
            pricing=schemas.Pricing(rate_micros=1),
            overlap=schemas.Overlap(min=OVERLAP),
            items_per_task=2,
            gold_ratio=0.3,
        )
        job = service.create_job(session, Principal(owner.user, 0), body)
        importing.import_dataset(
            session,
            job,
            service.job_schema(job),
            io.BytesIO(jsonl(reviews(TASKS * 2) + controls(GOLD))),
            importing.ImportFormat.jsonl,
        )
        service.change_status(session, job, "activate")
        splitting.split_into_tasks(session, job)
        job_id = job.id

    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    async def annotate(annotator: Account) -> None:
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
                [c] = claimed
                answers = [{"sentiment": "neutral"} for _ in c.items]
                async with workplace.runner() as runner:
                    await runner.run(
                        partial(
                            flow.submit,
                            annotator_id=annotator.id,
                            assignment_id=c.assignment_id,
                            answers=answers,
                            now=utcnow(),
                            settings=wide.settings,
                        )
                    )
                with lock:
                    outcomes[f"shown {len(c.items)}"] += 1
        finally:
            await workplace.close()

    def work(annotator: Account) -> None:
        try:
            asyncio.run(annotate(annotator))
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    def all_complete() -> bool:
        with wide.read_session() as session:
            left = session.scalar(
                select(func.count()).where(
                    Task.job_id == job_id, Task.status != TaskStatus.complete
                )
            )
        return left == 0

    runners = [threading.Thread(target=work, args=(a,)) for a in annotators]
    started = time.monotonic()
    for thread in runners:
        thread.start()
    try:
        while not stop.is_set() and not all_complete():
            assert time.monotonic() - started < DEADLINE_S, f"not done in time: {outcomes}"
            time.sleep(0.3)
    finally:
        stop.set()
        for thread in runners:
            thread.join()
    assert not errors, errors

    with wide.read_session() as session:
        tasks = session.execute(
            select(Task.done_count, Task.live_count).where(Task.job_id == job_id)
        ).all()
        given = session.execute(
            select(Assignment.annotator_id, Assignment.gold_item_id).where(
                Assignment.job_id == job_id, Assignment.gold_item_id.is_not(None)
            )
        ).all()
        gold_ids = set(
            session.scalars(select(Item.id).where(Item.job_id == job_id, Item.is_gold.is_(True)))
        )
        exposures = set(
            session.execute(
                select(GoldExposure.annotator_id, GoldExposure.item_id).where(
                    GoldExposure.item_id.in_(gold_ids)
                )
            ).all()
        )
        graded = session.scalar(
            select(func.count()).where(
                Answer.job_id == job_id, Answer.item_id.in_(gold_ids), Answer.score.is_not(None)
            )
        )
    wide.dispose()

    assert len(tasks) == TASKS
    assert all(t.done_count == OVERLAP and t.live_count == 0 for t in tasks)
    assert len(set(given)) == len(given)  # no gold item twice to one annotator
    assert set(given) <= exposures
    assert graded == len(given) > 0
    assert outcomes["shown 3"] == len(given)
    assert outcomes["shown 2"] + outcomes["shown 3"] == TASKS * OVERLAP
