"""The scheduler: cron and interval times, each tick enqueued once however many schedulers run,
missed ticks coalesced, and `tessera scheduler` processes racing each other."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.core.db import Database
from app.core.settings import Settings
from app.models import OutboxJob, ProcessKind, SchedulerTick, WorkerHeartbeat
from tests.support import REPO_ROOT
from tests.workers.background import wait_until
from workers.scheduler import EPOCH, PERIODIC, Cron, Periodic, Scheduler

pytestmark = pytest.mark.commits  # background workers and processes see only what was committed


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "now", "latest"),
    [
        ("7 * * * *", "2026-11-23 10:06:59", "2026-11-23 09:07"),
        ("7 * * * *", "2026-11-23 10:07:00", "2026-11-23 10:07"),
        ("*/15 9-17 * * 1-5", "2026-11-28 12:00", "2026-11-27 17:45"),  # Saturday -> Friday
        ("0 3 1 * *", "2026-11-23 10:00", "2026-11-01 03:00"),
        ("0 0 29 2 *", "2027-03-01 00:00", "2024-02-29 00:00"),
        ("30 6 13 * 5", "2026-11-23 10:00", "2026-11-20 06:30"),  # Friday or the 13th
        ("0 12 * * 7", "2026-11-23 10:00", "2026-11-22 12:00"),  # 7 is Sunday too
    ],
)
def test_cron_gives_the_latest_matching_minute(expression: str, now: str, latest: str) -> None:
    assert Cron(expression).latest(at(now)) == at(latest)


@pytest.mark.parametrize("expression", ["61 * * * *", "* * *", "0 0 31 2 *", "*/0 * * * *"])
def test_impossible_cron_expressions_are_rejected(expression: str) -> None:
    with pytest.raises(ValueError, match="cron"):
        Cron(expression)


def test_intervals_are_aligned_to_the_epoch() -> None:
    every_ten = Periodic("test.tick", every=timedelta(minutes=10))
    assert every_ten.due(at("2026-11-23 10:09:59")) == at("2026-11-23 10:00")
    assert every_ten.due(at("2026-11-23 10:10:00")) == at("2026-11-23 10:10")
    with pytest.raises(ValueError, match="exactly one"):
        Periodic("test.tick")


def test_the_periodic_table_names_registered_jobs(db: Database) -> None:
    Scheduler(db, PERIODIC)  # would raise LookupError for a typo
    with pytest.raises(LookupError):
        Scheduler(db, [Periodic("test.no_such_job", every=timedelta(minutes=1))])


def ticks_in_outbox(db: Database) -> int:
    with db.read_session() as session:
        return (
            session.scalar(
                select(func.count()).select_from(OutboxJob).where(OutboxJob.name == "test.tick")
            )
            or 0
        )


def test_each_tick_is_enqueued_once_and_missed_ticks_coalesce(db: Database) -> None:
    scheduler = Scheduler(db, [Periodic("test.tick", every=timedelta(minutes=10))])
    assert scheduler.tick(at("2026-11-23 10:03")) == [("test.tick", at("2026-11-23 10:00"))]
    assert scheduler.tick(at("2026-11-23 10:09")) == []
    assert scheduler.tick(at("2026-11-23 10:10:01")) == [("test.tick", at("2026-11-23 10:10"))]
    # Down for most of an hour: one catch-up run, not five.
    assert scheduler.tick(at("2026-11-23 11:00:05")) == [("test.tick", at("2026-11-23 11:00"))]
    assert ticks_in_outbox(db) == 3


@pytest.mark.usefixtures("db")  # its tables are emptied afterwards
def test_two_schedulers_started_together_enqueue_each_tick_once(settings: Settings) -> None:
    interval = timedelta(milliseconds=200)
    periodic = [Periodic("test.tick", every=interval)]
    databases = [Database(settings), Database(settings)]  # two "processes", two pools
    schedulers = [Scheduler(database, periodic) for database in databases]
    results: list[list[tuple[str, datetime]]] = [[], []]
    attempts = [0, 0]
    start = threading.Barrier(2)
    stop = threading.Event()

    def race(index: int) -> None:
        start.wait()
        while not stop.is_set():
            results[index].extend(schedulers[index].tick())
            attempts[index] += 1
            time.sleep(0.005)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: len(results[0]) + len(results[1]) >= 6, timeout=120, what="six ticks")
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
    dues = sorted(due for result in results for _, due in result)
    assert len(dues) == len(set(dues)), "a tick was enqueued twice"
    assert all((due - EPOCH) % interval == timedelta(0) for due in dues)
    assert min(attempts) > 10  # both really competed
    assert ticks_in_outbox(databases[0]) == len(dues)
    for database in databases:
        database.dispose()


@pytest.mark.postgresql
def test_two_scheduler_processes_started_together_enqueue_each_job_once(
    db: Database, settings: Settings
) -> None:
    env = {
        **os.environ,
        "TESSERA_DATABASE_URL": settings.database_url,
        "TESSERA_SECRET_KEY": settings.resolved_secret_key(),
        "TESSERA_LOG_JSON": "false",
        "TESSERA_BROKER_URL": "",
        "TESSERA_LOG_LEVEL": "INFO",
    }
    command = [sys.executable, "-m", "app.cli", "scheduler", "--poll", "0.05"]
    processes = [
        subprocess.Popen(command, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:

        def both_running() -> bool:
            with db.read_session() as session:
                alive = session.scalar(
                    select(func.count())
                    .select_from(WorkerHeartbeat)
                    .where(WorkerHeartbeat.kind == ProcessKind.scheduler)
                )
            return alive == 2

        wait_until(both_running, timeout=120, what="both schedulers to report in")
        time.sleep(0.5)  # both keep ticking; the assertion below is that nothing doubled
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=20) for process in processes]
    logs = [process.stderr.read() if process.stderr else "" for process in processes]
    assert codes == [0, 0], logs
    # Each (job, tick) the two processes enqueued, from their logs: a tick boundary may fall
    # inside the window (post_earnings runs every 5 s), so a job may rightly run twice, but
    # never twice for one tick.
    ticks = [
        (name, due)
        for log in logs
        for line in log.splitlines()
        if "scheduler enqueued " in line
        for name, due in re.findall(r"([\w.]+) \(due ([^)]+)\)", line)
    ]
    assert len(ticks) == len(set(ticks)), sorted(ticks)
    assert {name for name, _ in ticks} == {p.job for p in PERIODIC}  # each job at least once
    with db.read_session() as session:
        assert sorted(session.scalars(select(OutboxJob.name))) == sorted(n for n, _ in ticks)
        assert session.scalar(select(func.count()).select_from(SchedulerTick)) == len(PERIODIC)
        assert session.scalar(select(func.count()).select_from(WorkerHeartbeat)) == 0
