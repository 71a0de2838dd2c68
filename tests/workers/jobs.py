"""Jobs registered for the tests. Each reports to a background run, so its effect is visible in
the database (`counters["calls"]`)."""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from datetime import timedelta

from app.core.background import JobContext, background_job
from app.core.errors import ValidationFailed
from app.runs import service as runs

# Monotonic times of each attempt of `test.fail`, per run (jobs run on threads of the test).
ATTEMPTS: defaultdict[int, list[float]] = defaultdict(list)
_lock = threading.Lock()


@background_job("test.count")
def count_call(ctx: JobContext, run_id: int) -> None:
    """Deliberately not idempotent by itself: adds 1 per run, so a duplicate would show."""
    runs.add_progress(ctx.session, run_id, calls=1)


@background_job("test.fail", max_retries=3)
def always_fail(ctx: JobContext, run_id: int) -> None:
    with _lock:
        ATTEMPTS[run_id].append(time.monotonic())
    runs.add_progress(ctx.session, run_id, calls=1)  # rolled back with the failure
    raise RuntimeError(f"boom on attempt {ctx.attempt}")


@background_job("test.reject")
def reject_input(ctx: JobContext, run_id: int) -> None:
    runs.add_progress(ctx.session, run_id, calls=1)
    raise ValidationFailed(
        "The uploaded file is not CSV", errors=[{"pointer": "#/file", "detail": "not CSV"}]
    )


@background_job("test.slow")
def slow_call(ctx: JobContext, run_id: int) -> None:
    """Sleeps TESSERA_TEST_SLOW_SECONDS (0 unless set), then counts like `test.count`."""
    time.sleep(float(os.environ.get("TESSERA_TEST_SLOW_SECONDS", "0")))
    runs.add_progress(ctx.session, run_id, calls=1)


@background_job("test.tick")
def scheduled_tick(ctx: JobContext) -> None:
    """A periodic job for scheduler tests; running it does nothing."""


@background_job("test.overrun", time_limit=timedelta(milliseconds=200), max_retries=0)
def overrun(ctx: JobContext, run_id: int) -> None:
    """Runs far past its 200 ms time limit unless interrupted."""
    runs.add_progress(ctx.session, run_id, calls=1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.01)
