"""The job flow end to end, in-process (no broker) and through a Dramatiq worker on real Redis:
enqueue in a request, relay, run once, survive crashes, retry, dead-letter, skip duplicates."""

from __future__ import annotations

import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.errors import Conflict
from app.core.security import DbSession
from app.main import create_app
from app.models import BackgroundRun, OutboxJob, RunState
from app.runs import service as runs
from tests.support import REPO_ROOT, assert_problem
from tests.workers import jobs
from tests.workers.background import Background, wait_until
from workers.relay import relay_once

pytestmark = pytest.mark.commits  # background workers and processes see only what was committed


def request_client(bg: Background) -> TestClient:
    """The real app plus one endpoint that starts a run with a job, as an import would."""
    app = create_app(bg.settings, bg.db)

    @app.post("/test/imports")
    def start_import(
        session: DbSession, job: str = "test.count", fail: bool = False
    ) -> dict[str, int]:
        run = runs.create_run(session, kind="import", owner_id=None, job=job)
        if fail:
            raise Conflict("Changed our mind after enqueueing")
        session.commit()
        return {"run_id": run.id}

    return TestClient(app)


def start_run(bg: Background, job: str) -> int:
    with bg.db.transaction() as session:
        return runs.create_run(session, kind="import", owner_id=None, job=job).id


def calls(bg: Background, run_id: int) -> int:
    return bg.run(run_id).counters.get("calls", 0)


def test_a_job_enqueued_in_a_committed_request_runs_once(background: Background) -> None:
    background.start()
    with request_client(background) as client:
        run_id = client.post("/test/imports").json()["run_id"]

    wait_until(lambda: calls(background, run_id), what="the job to run")
    background.join()
    assert calls(background, run_id) == 1
    [row] = background.outbox(run_id)
    assert row.sent_at is not None
    assert row.done_at is not None
    assert row.dead_at is None
    assert row.attempts == 0
    assert background.run(run_id).state is RunState.running  # started; the job does not finish it


def test_a_job_enqueued_in_a_rolled_back_request_never_runs(background: Background) -> None:
    background.start()
    with request_client(background) as client:
        assert_problem(client.post("/test/imports?fail=true"), 409)
        sentinel = client.post("/test/imports").json()["run_id"]

    # The relay works in outbox order: once the later, committed job has run, the rolled-back
    # one would have too, had anything of it survived.
    wait_until(lambda: calls(background, sentinel), what="the committed job to run")
    background.join()
    with background.db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxJob)) == 1
        assert session.scalar(select(func.count()).select_from(BackgroundRun)) == 1


COMMIT_THEN_DIE = textwrap.dedent(
    """
    import os, signal, sys
    from app.core.db import Database
    from app.core.settings import Settings
    from app.runs import service as runs
    import tests.workers.jobs

    settings = Settings(database_url=sys.argv[1], secret_key="k" * 40, _env_file=None)
    with Database(settings).transaction() as session:
        run = runs.create_run(session, kind="import", owner_id=None, job="test.count")
    print(run.id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # after the commit, before any relay
    """
)


def test_a_job_committed_by_a_process_killed_before_the_relay_is_still_delivered(
    background: Background,
) -> None:
    died = subprocess.run(
        [sys.executable, "-c", COMMIT_THEN_DIE, background.settings.database_url],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    run_id = int(died.stdout.split()[0])
    [row] = background.outbox(run_id)
    assert row.sent_at is None

    background.start()  # the next relay finds the committed row
    wait_until(lambda: calls(background, run_id), what="the orphaned job to run")
    background.join()
    assert calls(background, run_id) == 1


DIE_WHILE_RUNNING = textwrap.dedent(
    """
    import os, signal, sys, time
    from sqlalchemy import select
    from app.core.db import Database
    from app.core.settings import Settings
    from app.models import OutboxJob
    from app.runs import service as runs
    from workers.in_process import InProcessRunner
    import tests.workers.jobs

    settings = Settings(database_url=sys.argv[1], secret_key="k" * 40, _env_file=None)
    db = Database(settings)
    runner = InProcessRunner(settings, db, threads=1, scheduler=False, relay_interval=0.05)
    runner.start()
    with db.transaction() as session:
        run = runs.create_run(session, kind="import", owner_id=None, job="test.slow")
    print(run.id, flush=True)
    while True:  # until the job is in the in-memory broker and has started
        with db.read_session() as session:
            row = session.scalar(select(OutboxJob).where(OutboxJob.run_id == run.id))
            started = row.sent_at is not None and runs.get_run(session, run.id).started_at
        if started:
            break
        time.sleep(0.02)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("background", ["in-process"], indirect=True)
def test_jobs_in_memory_when_the_embedded_process_dies_run_after_restart(
    background: Background,
) -> None:
    died = subprocess.run(
        [sys.executable, "-c", DIE_WHILE_RUNNING, background.settings.database_url],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "TESSERA_TEST_SLOW_SECONDS": "60"},
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    run_id = int(died.stdout.split()[0])
    [row] = background.outbox(run_id)
    assert row.sent_at is not None
    assert row.done_at is None

    background.start()  # reclaims the row and relays it again
    wait_until(lambda: calls(background, run_id), what="the reclaimed job to run")
    assert background.outbox(run_id)[0].done_at is not None


def test_a_relay_that_dies_before_marking_rows_sent_causes_a_harmless_resend(
    background: Background,
) -> None:
    run_id = start_run(background, "test.count")

    class RelayCrashed(Exception):
        pass

    def crash(_rows: object) -> None:
        raise RelayCrashed

    with pytest.raises(RelayCrashed):  # the broker took the message, the commit never happened
        relay_once(background.db, background.handle, before_commit=crash)
    assert background.outbox(run_id)[0].sent_at is None

    background.start()  # delivers the first message, and its relay sends the row again
    wait_until(lambda: background.outbox(run_id)[0].sent_at, what="the resend")
    wait_until(lambda: calls(background, run_id), what="the job to run")
    background.join()
    assert calls(background, run_id) == 1


def test_duplicate_deliveries_change_nothing(
    background: Background, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tessera.jobs")
    run_id = start_run(background, "test.count")
    assert relay_once(background.db, background.handle) == 1
    [row] = background.outbox(run_id)
    background.handle.send(row)  # the same message twice more, processed concurrently
    background.handle.send(row)

    background.start()
    wait_until(lambda: calls(background, run_id), what="the job to run")
    wait_until(lambda: background.outbox(run_id)[0].sent_at, what="every resend")
    background.join()
    assert calls(background, run_id) == 1
    skipped = [r for r in caplog.records if "duplicate skipped" in r.getMessage()]
    # Starting the in-process runner re-relays rows it finds sent but unfinished: one more.
    assert len(skipped) == (3 if background.mode == "in-process" else 2)


def test_a_failing_job_retries_with_growing_delays_then_is_dead_lettered(
    background: Background, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dramatiq.middleware.retries")
    jobs.ATTEMPTS.clear()  # run ids restart in every test
    run_id = start_run(background, "test.fail")
    background.start()

    row = wait_until(
        lambda: next((r for r in background.outbox(run_id) if r.dead_at is not None), None),
        timeout=20,
        what="the job to be dead-lettered",
    )
    dead = wait_until(background.dead_letters, what="the dead-letter queue")
    assert dead == [{"outbox_id": row.id, "actor": "test.fail"}]

    # Retry n is scheduled min_backoff * 2^n later, times a jitter of 1 to 2 ...
    min_backoff = background.settings.job_min_backoff_ms
    scheduled = [
        int(match.group(1))
        for record in caplog.records
        if (match := re.match(r"Retrying message .* in (\d+) milliseconds", record.getMessage()))
    ]
    assert len(scheduled) == 3, scheduled  # max_retries=3, then the dead-letter queue
    for retry, delay in enumerate(scheduled):
        assert min_backoff * 2**retry <= delay <= 2 * min_backoff * 2**retry, scheduled
    # ... and the attempts really were at least that far apart.
    times = jobs.ATTEMPTS[run_id]
    assert len(times) == 4
    observed = [later - earlier for earlier, later in itertools.pairwise(times)]
    for retry, gap in enumerate(observed):
        assert gap >= 0.95 * min_backoff / 1000 * 2**retry, observed

    assert row.attempts == 4
    assert row.last_error is not None
    assert "RuntimeError: boom on attempt 3" in row.last_error
    assert row.done_at is None
    run = background.run(run_id)
    assert run.state is RunState.failed
    assert run.error is not None
    assert run.error["type"] == "/problems/background-job-failed"
    assert run.counters == {}  # each attempt's own changes rolled back


def test_a_job_raising_a_tessera_error_fails_its_run_with_that_problem_without_retrying(
    background: Background,
) -> None:
    run_id = start_run(background, "test.reject")
    background.start()

    run = wait_until(
        lambda: (r := background.run(run_id)).state is RunState.failed and r,
        what="the run to fail",
    )
    background.join()
    assert run.error is not None
    assert run.error["type"] == "/problems/validation-failed"
    assert run.error["errors"] == [{"pointer": "#/file", "detail": "not CSV"}]
    assert run.counters == {}
    [row] = background.outbox(run_id)
    assert row.attempts == 1
    assert row.done_at is not None
    assert row.dead_at is None
    assert background.dead_letters() == []


def test_a_job_over_its_time_limit_is_interrupted(background: Background) -> None:
    run_id = start_run(background, "test.overrun")  # 200 ms limit, no retries
    started = time.monotonic()
    background.start()

    run = wait_until(
        lambda: (r := background.run(run_id)).state is RunState.failed and r,
        timeout=10,
        what="the time limit to stop the job",
    )
    assert time.monotonic() - started < 5  # the job alone would take 20 s
    [row] = background.outbox(run_id)
    assert row.last_error is not None
    assert row.last_error.startswith("TimeLimitExceeded")
    assert row.dead_at is not None
    assert run.counters == {}
