"""Background jobs: the one interface services use to schedule work. No broker details here.

(This module is about background jobs only; elsewhere in Tessera a "job" is a client's labeling
job.) Registering a job (in the domain package that owns the work)::

    @background_job("imports.run", time_limit=timedelta(hours=1))
    def run_import_job(ctx: JobContext, run_id: int, fmt: str) -> None:
        imports.run_import(ctx.session, run_id, ImportFormat(fmt))

Scheduling it (in a service, inside the caller's unit of work)::

    enqueue(session, "imports.run", run.id, fmt.value, run_id=run.id)

`enqueue` writes a row to the transactional outbox (`job_outbox`) in the caller's transaction, so
a rolled-back request enqueues nothing, and a crash after the commit loses nothing: a relay
(`workers.relay`) moves committed rows to the broker and marks them sent. Delivery is
at-least-once; the runner makes duplicates harmless by marking the outbox row done in the same
transaction as the job's own changes and skipping rows already done. This module alone writes
`job_outbox`: code that writes its own SQL (the PostgreSQL hot path) takes the INSERT from
`outbox_insert_sql` instead of spelling its own.

Handlers receive ids and names only (they re-read state from the database; an enum travels as
its value, never as a position in a list that a later release may reorder), run in a session the
runner owns and commits once (handlers flush, never commit), and must tolerate running after a
failed attempt.
Unexpected exceptions are retried with exponential backoff and finally dead-lettered; a
`TesseraError` raised by a handler is a final business outcome: the job's changes roll back, its
run (if any) is marked failed with that problem, and it is not retried.

Long work goes in bounded chunks: a handler does a slice, records progress on its run and enqueues
itself again for the rest. Each chunk commits, so progress is visible while the work goes on, a
crash redoes one chunk at most, and SQLite's single writer is never held for long.

Work that must commit at once but needs long reading first (a dataset import parses and checks the
whole file before one short transaction inserts it) registers a `prepare` step: a context manager
factory the runner enters before the unit of work, outside any write transaction (on SQLite the
unit of work holds the only write lock from its first statement). It gets a `PrepareContext` (it
opens short sessions of its own, e.g. to read or to report progress), and what it yields reaches
the handler as `ctx.prepared`; it is exited (temporary files removed) after the unit of work ends.
A `TesseraError` raised by it ends the job like one raised by the handler.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, TypeVar

from sqlalchemy import delete, event, or_, select, text
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.models.background import OutboxJob, WorkerHeartbeat

#: PostgreSQL channel notified (on commit only) when outbox rows are written.
OUTBOX_CHANNEL: Final = "tessera_outbox"
DEFAULT_QUEUE: Final = "default"
DEFAULT_TIME_LIMIT: Final = timedelta(minutes=10)

#: Background processes write a heartbeat this often; one silent for STALE is presumed dead.
HEARTBEAT_INTERVAL: Final = timedelta(seconds=10)
HEARTBEAT_STALE: Final = timedelta(seconds=60)

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_QUEUE = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
# A name argument: an enum value or slug. It starts with a letter, so an id passed as a string
# ("7") is caught as the mistake it is.
_ARGUMENT_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")
_PENDING = "tessera.outbox_pending"
_NOTIFIED = "tessera.outbox_notified"


@dataclass(frozen=True)
class JobContext:
    """What a handler gets besides its ids: the unit of work and where it comes from."""

    session: Session
    settings: Settings
    outbox_id: int | None  # the outbox row (None when run directly, e.g. in a test)
    run_id: int | None  # the background run this job reports to, if any
    attempt: int  # 0 on the first try
    prepared: Any = None  # what the job's `prepare` step yielded (None without one)


@dataclass(frozen=True)
class PrepareContext:
    """What a `prepare` step gets: no session (it runs outside the unit of work) but the
    database, to open short sessions of its own."""

    db: Database
    settings: Settings
    run_id: int | None
    attempt: int


Handler = Callable[..., None]  # (ctx: JobContext, *args: int | str) -> None
# (ctx: PrepareContext, *args: int | str) -> a context manager yielding `ctx.prepared`
Prepare = Callable[..., AbstractContextManager[Any]]
JobArgument = int | str  # an id, or a name (an enum's value, a slug)
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class JobSpec:
    """A registered job: its handler and how the runner treats it."""

    name: str
    handler: Handler
    queue: str = DEFAULT_QUEUE
    max_retries: int | None = None  # None: TESSERA_JOB_MAX_RETRIES
    time_limit: timedelta = DEFAULT_TIME_LIMIT
    prepare: Prepare | None = None


_registry: dict[str, JobSpec] = {}
_registry_lock = threading.Lock()


def background_job(
    name: str,
    *,
    queue: str = DEFAULT_QUEUE,
    max_retries: int | None = None,
    time_limit: timedelta = DEFAULT_TIME_LIMIT,
    prepare: Prepare | None = None,
) -> Callable[[H], H]:
    """Register the decorated function as the handler of job `name` (dotted, lower case:
    `"imports.run"`). The handler is called as `handler(ctx, *args)`, after `prepare(pctx,
    *args)` (if given) was entered outside the unit of work. Registering a different function
    under a name already taken raises `ValueError`."""
    if not _NAME.match(name):
        raise ValueError(f"job name {name!r} must be dotted lower-case words, like 'imports.run'")
    if not _QUEUE.match(queue):
        raise ValueError(f"queue name {queue!r} must be lower-case letters, digits, _ or -")

    def register(handler: H) -> H:
        spec = JobSpec(name, handler, queue, max_retries, time_limit, prepare)
        with _registry_lock:
            existing = _registry.get(name)
            if existing is not None and _qualname(existing.handler) != _qualname(handler):
                raise ValueError(f"job {name!r} is already registered to {existing.handler!r}")
            _registry[name] = spec
        return handler

    return register


def _qualname(fn: Handler) -> str:
    return f"{fn.__module__}.{getattr(fn, '__qualname__', repr(fn))}"


def job_spec(name: str) -> JobSpec:
    """The registered job `name`; `LookupError` if no imported module registered it."""
    try:
        return _registry[name]
    except KeyError:
        raise LookupError(f"no background job named {name!r} is registered") from None


def registered_jobs() -> Mapping[str, JobSpec]:
    """Every job registered so far in this process, by name."""
    with _registry_lock:
        return dict(_registry)


def enqueue(
    session: Session,
    name: str,
    *args: JobArgument,
    delay: timedelta | None = None,
    run_id: int | None = None,
) -> int:
    """Schedule job `name` with `args` as part of the caller's transaction; return the outbox id.

    Arguments are ids (int) and names (str: an enum's value or a slug, lower case, starting with
    a letter), never objects: the handler re-reads state. Nothing is sent until the caller
    commits: a rollback discards the job, a commit makes it durable and a relay delivers it (at
    least once; duplicates are skipped by the runner). `delay` holds the job back at least that
    long. `run_id` ties the job to a background run, which is marked running when the job starts
    and failed if the job dies. Flushes, never commits. Raises `LookupError` for a name no
    imported module registered (so keep a job's handler in, or imported by, the service module
    that enqueues it) and `TypeError` for an argument that is neither."""
    spec = job_spec(name)
    for value in args:
        if isinstance(value, str) and _ARGUMENT_NAME.match(value):
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(
                f"job arguments are ids (int) or names (lower-case str starting with a letter), "
                f"got {value!r}"
            )
    now = utcnow()
    row = OutboxJob(
        name=spec.name,
        queue=spec.queue,
        args=list(args),
        run_id=run_id,
        available_at=now + delay if delay else now,
        attempts=0,
        created_at=now,
    )
    session.add(row)
    session.flush()
    session.info[_PENDING] = True
    if session.get_bind().dialect.name == "postgresql" and not session.info.get(_NOTIFIED):
        # Delivered to listening relays at commit, and never if the transaction rolls back.
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": OUTBOX_CHANNEL})
        session.info[_NOTIFIED] = True
    return row.id


def outbox_insert_sql(name: str, *, args: str, source: str, now: str) -> str:
    """The row `enqueue` writes, as SQL text for code that writes its own statements (the
    PostgreSQL hot path folds it into its submit as a CTE): `INSERT INTO job_outbox ... SELECT
    ... FROM {source} RETURNING id`, one job `name` per row of `source`.

    `args` is an SQL expression over `source` giving the JSON array of arguments (ids, as
    `enqueue` takes them: `json_build_array(id)`), `now` the statement's placeholder for the time
    (`%(now)s`). The job's queue is its registered one, as in `enqueue` (`LookupError` if no
    imported module registered `name`). The caller notifies `OUTBOX_CHANNEL` when rows were
    written. Only constants go in the text; values stay parameters."""
    spec = job_spec(name)  # its name and queue match _NAME and _QUEUE: safe as SQL literals
    return f"""INSERT INTO job_outbox (name, queue, args, available_at, attempts, created_at)
    SELECT '{spec.name}', '{spec.queue}', {args}, {now}, 0, {now}
    FROM {source}
    RETURNING id"""  # noqa: S608 (only constants are interpolated; values are parameters)


# --- waking relays in this process on commit ------------------------------------------------

_commit_listeners: list[Callable[[], None]] = []


def on_outbox_commit(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` (quickly, no I/O) after any session in this process commits outbox rows.
    Returns a function that unsubscribes it."""
    _commit_listeners.append(callback)

    def unsubscribe() -> None:
        if callback in _commit_listeners:
            _commit_listeners.remove(callback)

    return unsubscribe


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    session.info.pop(_NOTIFIED, None)
    if session.info.pop(_PENDING, False):
        for callback in list(_commit_listeners):
            callback()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_NOTIFIED, None)
    session.info.pop(_PENDING, None)


# --- housekeeping jobs (the scheduler runs them) ----------------------------------------------

PRUNE_BATCH: Final = 5000


@background_job("outbox.prune")
def prune_outbox(ctx: JobContext) -> None:
    """Delete outbox rows finished (done, dead, or sent and never heard of again) longer ago
    than TESSERA_OUTBOX_RETENTION_HOURS, a batch at a time; re-enqueues itself while more
    remain. Unsent rows are never deleted."""
    cutoff = utcnow() - timedelta(hours=ctx.settings.outbox_retention_hours)
    old = (
        select(OutboxJob.id)
        .where(
            OutboxJob.sent_at.is_not(None),
            OutboxJob.sent_at < cutoff,
            or_(OutboxJob.done_at.is_(None), OutboxJob.done_at < cutoff),
            or_(OutboxJob.dead_at.is_(None), OutboxJob.dead_at < cutoff),
        )
        .order_by(OutboxJob.id)
        .limit(PRUNE_BATCH)
    )
    ids = list(ctx.session.scalars(old))
    if ids:
        ctx.session.execute(delete(OutboxJob).where(OutboxJob.id.in_(ids)))
    if len(ids) == PRUNE_BATCH:
        enqueue(ctx.session, "outbox.prune")


@background_job("workers.prune_heartbeats")
def prune_heartbeats(ctx: JobContext) -> None:
    """Forget background processes silent for an hour (they died without saying goodbye)."""
    cutoff = utcnow() - timedelta(hours=1)
    ctx.session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen_at < cutoff))
