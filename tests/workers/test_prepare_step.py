"""A job's `prepare` step: entered before the unit of work, outside any write transaction (so on
SQLite its long reading holds no write lock), its value handed to the handler, exited after the
unit of work ends; a refusal it raises ends the job like one from the handler."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select, update

from app.core.background import JobContext, PrepareContext, background_job
from app.core.db import Database
from app.core.errors import ValidationFailed
from app.models import OutboxJob, RunState
from app.runs import service as runs
from workers.runner import JobRunner

pytestmark = pytest.mark.commits  # background workers and processes see only what was committed

events: list[str] = []


@contextmanager
def _read_first(ctx: PrepareContext, run_id: int, refuse: int = 0) -> Iterator[str]:
    events.append("prepare")
    if refuse:
        raise ValidationFailed("the file is not a dataset")
    # Another writer gets through at once: the unit of work has not begun, so (on SQLite) no
    # write lock is held. A short busy timeout turns a held lock into an error here.
    with ctx.db.transaction() as session:
        runs.set_progress(session, run_id, prepared=1)
    try:
        yield "checked rows"
    finally:
        events.append("cleanup")


@background_job("test.prepared", max_retries=0, prepare=_read_first)
def write_at_once(ctx: JobContext, run_id: int, refuse: int = 0) -> None:
    events.append(f"handler got {ctx.prepared}")
    runs.finish_run(ctx.session, run_id, result={"prepared": ctx.prepared})


@pytest.fixture
def impatient(db: Database) -> Iterator[Database]:
    """The test database with a 200 ms busy timeout (SQLite)."""
    database = Database(db.settings.model_copy(update={"sqlite_busy_timeout_ms": 200}))
    events.clear()
    yield database
    database.dispose()


def queued(db: Database, *args: int) -> tuple[int, int]:
    with db.transaction() as session:
        run = runs.create_run(session, kind="test", owner_id=None, job="test.prepared")
        outbox_id = session.scalars(select(OutboxJob.id).where(OutboxJob.run_id == run.id)).one()
        session.execute(
            update(OutboxJob).where(OutboxJob.id == outbox_id).values(args=[run.id, *args])
        )
        return run.id, outbox_id


def test_prepare_runs_outside_the_unit_of_work_and_hands_its_value_to_the_handler(
    impatient: Database,
) -> None:
    run_id, outbox_id = queued(impatient)
    runner = JobRunner(impatient.settings, impatient)
    assert runner.run("test.prepared", (run_id,), outbox_id=outbox_id, run_id=run_id)
    assert events == ["prepare", "handler got checked rows", "cleanup"]
    with impatient.read_session() as session:
        run = runs.get_run(session, run_id)
    assert (run.state, run.result, run.counters) == (
        RunState.succeeded,
        {"prepared": "checked rows"},
        {"prepared": 1},
    )

    events.clear()  # a duplicate delivery finds the job done and prepares nothing
    assert not runner.run("test.prepared", (run_id,), outbox_id=outbox_id, run_id=run_id)
    assert events == []


def test_a_refusal_from_prepare_fails_the_run_and_is_not_retried(impatient: Database) -> None:
    run_id, outbox_id = queued(impatient, 1)
    assert JobRunner(impatient.settings, impatient).run(
        "test.prepared", (run_id, 1), outbox_id=outbox_id, run_id=run_id
    )
    assert events == ["prepare"]
    with impatient.read_session() as session:
        run = runs.get_run(session, run_id)
        row = session.get(OutboxJob, outbox_id)
    assert run.state is RunState.failed
    assert run.error is not None
    assert run.error["type"] == "/problems/validation-failed"
    assert row is not None
    assert (row.attempts, row.done_at is not None, row.dead_at) == (1, True, None)
