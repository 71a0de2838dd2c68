"""Background runs: the state, progress and outcome of long-running work, for whoever started it.

A run goes queued -> running -> succeeded | failed. Terminal states are final: finishing, failing
or reporting progress on a finished run leaves it as it is (the first outcome wins), so a job that
runs twice cannot flip a result. Every function flushes and never commits; mutating functions lock
the run's row (PostgreSQL `FOR UPDATE`; SQLite's writer lock does the same) so concurrent chunks
of one run do not lose each other's counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core import background
from app.core.clock import utcnow
from app.core.errors import NotFound, TesseraError
from app.core.pagination import PageParams, page_of, paginate
from app.models.background import BackgroundRun, RunState

TERMINAL = frozenset({RunState.succeeded, RunState.failed})
_COUNTER = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def create_run(
    session: Session,
    *,
    kind: str,
    owner_id: int | None,
    total: int | None = None,
    job: str | None = None,
    job_ids: Sequence[int] = (),
) -> BackgroundRun:
    """Record a new run (state `queued`) of `kind` (e.g. `"import"`) for user `owner_id` (None
    for system work). With `job`, also enqueue that background job in the same transaction as
    `job(ctx, run.id, *job_ids)`, tied to the run (it is marked running when the job starts and
    failed if the job dies)."""
    run = BackgroundRun(kind=kind, owner_id=owner_id, state=RunState.queued, total=total)
    run.counters = {}
    session.add(run)
    session.flush()
    if job is not None:
        background.enqueue(session, job, run.id, *job_ids, run_id=run.id)
    return run


def get_run(session: Session, run_id: int) -> BackgroundRun:
    """The run, or `NotFound`."""
    run = session.get(BackgroundRun, run_id)
    if run is None:
        raise NotFound("No such run")
    return run


def get_run_for(session: Session, run_id: int, *, viewer_id: int, is_admin: bool) -> BackgroundRun:
    """The run if `viewer_id` owns it or is an admin; `NotFound` for anyone else (so ids of
    other people's runs give nothing away)."""
    run = session.get(BackgroundRun, run_id)
    if run is None or (run.owner_id != viewer_id and not is_admin):
        raise NotFound("No such run")
    return run


def list_runs(
    session: Session,
    owner_id: int,
    params: PageParams,
    *,
    kind: str | None = None,
    state: RunState | None = None,
) -> tuple[list[BackgroundRun], int | None]:
    """A page of `owner_id`'s runs, oldest first, and the next cursor."""
    stmt = select(BackgroundRun).where(BackgroundRun.owner_id == owner_id)
    if kind is not None:
        stmt = stmt.where(BackgroundRun.kind == kind)
    if state is not None:
        stmt = stmt.where(BackgroundRun.state == state)
    runs = list(session.scalars(paginate(stmt, BackgroundRun.id, params)))
    return page_of(runs, params, [r.id for r in runs])


def _locked(session: Session, run_id: int) -> BackgroundRun:
    run = session.get(BackgroundRun, run_id, with_for_update=True, populate_existing=True)
    if run is None:
        raise NotFound("No such run")
    return run


def mark_running(session: Session, run_id: int) -> BackgroundRun:
    """Move a queued run to `running` (recording when it started); other states are left as
    they are."""
    run = _locked(session, run_id)
    if run.state is RunState.queued:
        run.state = RunState.running
        run.started_at = utcnow()
        session.flush()
    return run


def _checked(counters: Mapping[str, int]) -> dict[str, int]:
    for name, value in counters.items():
        if not _COUNTER.match(name):
            raise ValueError(f"counter name {name!r} must be lower_snake_case")
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"counter {name!r} must be an int, got {value!r}")
    return dict(counters)


def set_progress(
    session: Session, run_id: int, *, total: int | None = None, **counters: int
) -> BackgroundRun:
    """Set counters to absolute values (e.g. `rows_read=5000, accepted=4990, rejected=10`),
    keeping counters not named, and optionally the expected `total`. Idempotent. Marks a queued
    run running. A finished run is left unchanged."""
    values = _checked(counters)
    run = _locked(session, run_id)
    if run.state in TERMINAL:
        return run
    if run.state is RunState.queued:
        run.state, run.started_at = RunState.running, utcnow()
    run.counters = {**(run.counters or {}), **values}
    if total is not None:
        run.total = total
    session.flush()
    return run


def add_progress(session: Session, run_id: int, **deltas: int) -> BackgroundRun:
    """Add to counters (missing ones start at 0). Use it from work that commits with the same
    transaction as the counted changes, so a retried chunk does not count twice. Marks a queued
    run running. A finished run is left unchanged."""
    values = _checked(deltas)
    run = _locked(session, run_id)
    if run.state in TERMINAL:
        return run
    if run.state is RunState.queued:
        run.state, run.started_at = RunState.running, utcnow()
    current = dict(run.counters or {})
    for name, delta in values.items():
        current[name] = current.get(name, 0) + delta
    run.counters = current
    session.flush()
    return run


def finish_run(
    session: Session, run_id: int, *, result: Mapping[str, Any] | None = None
) -> BackgroundRun:
    """Mark the run succeeded, with an optional JSON `result` (e.g. an export's file id).
    A run already finished is left unchanged."""
    run = _locked(session, run_id)
    if run.state in TERMINAL:
        return run
    now = utcnow()
    run.state, run.finished_at = RunState.succeeded, now
    run.started_at = run.started_at or now
    if result is not None:
        run.result = dict(result)
    session.flush()
    return run


def fail_run(
    session: Session, run_id: int, error: TesseraError | Mapping[str, Any]
) -> BackgroundRun:
    """Mark the run failed with `error` stored as RFC 9457 problem details (a `TesseraError`
    is rendered with `to_problem()`; a mapping is stored as given). A run already finished is
    left unchanged."""
    run = _locked(session, run_id)
    if run.state in TERMINAL:
        return run
    now = utcnow()
    run.state, run.finished_at = RunState.failed, now
    run.started_at = run.started_at or now
    run.error = error.to_problem() if isinstance(error, TesseraError) else dict(error)
    session.flush()
    return run
