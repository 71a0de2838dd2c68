"""`enqueue` writes to the outbox in the caller's transaction; the relay sends committed, due rows
and wakes on commit (PostgreSQL NOTIFY, or a commit in its own process)."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import func, make_url, select, text, update

from app.core import background
from app.core.background import JobContext, background_job, enqueue, job_spec
from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.models import OutboxJob
from app.webhooks.service import FAN_OUT_JOB
from tests.workers.background import wait_until
from workers.relay import RelayLoop, relay_once


class Collector:
    """A broker stand-in that keeps what the relay sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, list[int]]] = []

    def send(self, row: OutboxJob) -> None:
        self.sent.append((row.id, row.name, list(row.args)))


def outbox_count(db: Database) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).select_from(OutboxJob)) or 0


def test_enqueue_is_part_of_the_callers_transaction(db: Database) -> None:
    with db.session() as session:
        job_id = enqueue(session, "test.count", 7)
        assert session.get(OutboxJob, job_id) is not None  # flushed, visible to the caller
        session.rollback()
    assert outbox_count(db) == 0

    with db.transaction() as session:
        job_id = enqueue(session, "test.count", 7, delay=timedelta(minutes=5))
    with db.read_session() as session:
        row = session.get(OutboxJob, job_id)
        assert row is not None
        assert (row.name, row.queue, row.args, row.sent_at) == ("test.count", "default", [7], None)
        assert row.available_at - row.created_at == timedelta(minutes=5)


def test_enqueue_rejects_unknown_jobs_and_non_id_arguments(db: Database) -> None:
    with db.session() as session:
        with pytest.raises(LookupError, match=r"no background job named 'test\.nope'"):
            enqueue(session, "test.nope")
        with pytest.raises(TypeError, match="ids"):
            enqueue(session, "test.count", "7")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="ids"):
            enqueue(session, "test.count", True)


def test_sql_written_outbox_rows_are_the_rows_enqueue_writes(db: Database) -> None:
    """Code that writes its own SQL (the PostgreSQL hot path) takes core's INSERT text: the same
    columns, the job's registered queue, its ids as a JSON array."""
    with db.transaction() as session:
        postgresql = session.get_bind().dialect.name == "postgresql"
        sql = background.outbox_insert_sql(
            FAN_OUT_JOB,  # registered on the "webhooks" queue
            args="json_build_array(id)" if postgresql else "json_array(id)",
            source="(SELECT 7 AS id) AS source",
            now=":now",
        )
        [written] = session.execute(text(sql), {"now": utcnow()}).scalars()
        enqueued = enqueue(session, FAN_OUT_JOB, 7)
    with db.read_session() as session:
        rows = [session.get_one(OutboxJob, written), session.get_one(OutboxJob, enqueued)]
    shapes = [(r.name, r.queue, r.args, r.run_id, r.attempts, r.sent_at) for r in rows]
    assert shapes == [("webhooks.fan_out", "webhooks", [7], None, 0, None)] * 2
    assert [r.available_at == r.created_at for r in rows] == [True, True]
    with pytest.raises(LookupError, match=r"no background job named 'test\.nope'"):
        background.outbox_insert_sql("test.nope", args="json_array(id)", source="t", now=":now")


def test_job_names_are_registered_once_and_checked() -> None:
    assert job_spec("outbox.prune").handler is background.prune_outbox
    with pytest.raises(ValueError, match="dotted"):
        background_job("NoDots")
    with pytest.raises(ValueError, match="already registered"):

        @background_job("test.count")
        def impostor(ctx: JobContext, run_id: int) -> None: ...


def test_the_relay_sends_due_rows_in_order_marks_them_sent_and_skips_the_rest(
    db: Database,
) -> None:
    with db.transaction() as session:
        first = enqueue(session, "test.count", 1)
        later = enqueue(session, "test.count", 2, delay=timedelta(hours=1))
        second = enqueue(session, "test.count", 3)
    broker = Collector()
    assert relay_once(db, broker) == 2
    assert broker.sent == [(first, "test.count", [1]), (second, "test.count", [3])]
    assert relay_once(db, broker) == 0  # sent rows are not sent again

    with db.transaction() as session:  # an hour passes
        session.execute(
            update(OutboxJob).where(OutboxJob.id == later).values(available_at=utcnow())
        )
    assert relay_once(db, broker) == 1
    assert broker.sent[-1] == (later, "test.count", [2])


def test_a_broker_failure_leaves_rows_unsent(db: Database) -> None:
    with db.transaction() as session:
        enqueue(session, "test.count", 1)

    class Down:
        def send(self, row: OutboxJob) -> None:
            raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        relay_once(db, Down())
    with db.read_session() as session:
        assert session.scalar(select(OutboxJob.sent_at)) is None


def test_the_relay_loop_wakes_on_commit_without_waiting_for_its_poll(db: Database) -> None:
    broker = Collector()
    loop = RelayLoop(db, broker, interval=30.0)
    loop.start()
    try:
        time.sleep(0.3)  # let it settle into waiting (setup, not an assertion)
        started = time.monotonic()
        with db.transaction() as session:
            job_id = enqueue(session, "test.count", 1)
        wait_until(lambda: broker.sent, timeout=5, what="the relay to wake")
        assert broker.sent == [(job_id, "test.count", [1])]
        assert time.monotonic() - started < 5  # woken, not polled (the poll is 30 s)
    finally:
        loop.stop(timeout=35)
    assert not loop.is_alive()


def test_pruning_deletes_only_old_finished_rows(db: Database, settings: Settings) -> None:
    old = utcnow() - timedelta(hours=settings.outbox_retention_hours + 1)
    with db.transaction() as session:
        stale_done = enqueue(session, "test.count", 1)
        stale_dead = enqueue(session, "test.count", 2)
        recent_done = enqueue(session, "test.count", 3)
        unsent_old = enqueue(session, "test.count", 4)
        session.execute(
            update(OutboxJob)
            .where(OutboxJob.id.in_([stale_done, stale_dead]))
            .values(sent_at=old, done_at=old)
        )
        session.execute(
            update(OutboxJob).where(OutboxJob.id == stale_dead).values(done_at=None, dead_at=old)
        )
        session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == recent_done)
            .values(sent_at=utcnow(), done_at=utcnow())
        )
        session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == unsent_old)
            .values(created_at=old, available_at=old)
        )
    with db.transaction() as session:
        background.prune_outbox(JobContext(session, settings, None, None, 0))
    with db.read_session() as session:
        assert set(session.scalars(select(OutboxJob.id))) == {recent_done, unsent_old}


@pytest.mark.postgresql
def test_the_relay_loop_wakes_on_a_notify_committed_by_another_process(
    db: Database, settings: Settings
) -> None:
    broker = Collector()
    loop = RelayLoop(db, broker, interval=30.0)
    loop.start()
    conninfo = make_url(settings.database_url).set(drivername="postgresql")
    try:
        time.sleep(0.3)  # let it settle into waiting (setup, not an assertion)
        # Another process: plain SQL over its own connection, so no in-process wake-up.
        with psycopg.connect(conninfo.render_as_string(hide_password=False)) as conn:
            conn.execute(
                "INSERT INTO job_outbox (name, queue, args, available_at, attempts, created_at)"
                " VALUES ('test.count', 'default', '[5]', now(), 0, now())"
            )
            conn.execute("SELECT pg_notify(%s, '')", (background.OUTBOX_CHANNEL,))
        wait_until(lambda: broker.sent, timeout=5, what="the NOTIFY to wake the relay")
        assert [args for _, _, args in broker.sent] == [[5]]
    finally:
        loop.stop(timeout=5)
    assert not loop.is_alive()
