"""The scheduler: periodic jobs from one table in code, enqueued through the outbox.

Adding a periodic job is one line in `PERIODIC` (its handler is registered with
`app.core.background.background_job` like any other job).

Each tick runs in one transaction. On PostgreSQL it first takes a transaction-level advisory lock
(`pg_try_advisory_xact_lock`), so only one scheduler works at a time; on SQLite the write
transaction (`BEGIN IMMEDIATE`) is that lock. The per-job row in `scheduler_ticks` is then updated
compare-and-set (`last_tick_at < due`) and the job enqueued only if that update won, so even two
schedulers racing past the lock could not enqueue one tick twice.

Missed ticks (the scheduler was down) coalesce into one run at the next tick; a new periodic job
runs at once for its latest due time. Periodic jobs must be idempotent like every job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.core.background import enqueue, job_spec
from app.core.clock import utcnow
from app.core.db import Database, rowcount
from app.models.background import SchedulerTick
from payouts.payout_plan import BATCH_CRON
from workers import registry  # noqa: F401  (registers every job PERIODIC names)

logger = logging.getLogger("tessera.scheduler")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ADVISORY_LOCK_KEY = 0x7E55E7A_5C4ED  # "tessera scheduler"; any fixed bigint


class Cron:
    """A five-field cron expression (minute hour day-of-month month day-of-week) in UTC.
    Fields take `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n` or `a-b/n`; day of week
    0-7 with 0 and 7 both Sunday. As in cron, when both day fields are restricted either may
    match."""

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(f"cron {expression!r} needs 5 fields, got {len(fields)}")
        self.expression = expression
        self.minutes = _field(fields[0], 0, 59)
        self.hours = _field(fields[1], 0, 23)
        self.days = _field(fields[2], 1, 31)
        self.months = _field(fields[3], 1, 12)
        self.weekdays = {d % 7 for d in _field(fields[4], 0, 7)}
        self.any_day = fields[2] == "*"
        self.any_weekday = fields[4] == "*"
        self.latest(datetime(2000, 1, 1, tzinfo=UTC) + timedelta(days=8 * 366))  # fires at all?

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = day.isoweekday() % 7 in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return by_weekday
        if self.any_weekday:
            return by_day
        return by_day or by_weekday

    def latest(self, now: datetime) -> datetime:
        """The latest time at or before `now` the expression matches."""
        now = now.astimezone(UTC)
        hours = sorted(self.hours, reverse=True)
        minutes = sorted(self.minutes, reverse=True)
        for back in range(8 * 366):  # covers 29 February and leap-year gaps
            day = now.date() - timedelta(days=back)
            if not self._day_matches(day):
                continue
            for hour in hours:
                if back == 0 and hour > now.hour:
                    continue
                for minute in minutes:
                    if back == 0 and hour == now.hour and minute > now.minute:
                        continue
                    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
        raise ValueError(f"cron {self.expression!r} never fires")


def _field(spec: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in spec.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = int(first), int(last)
        else:
            start = int(body)
            end = high if step_text else start
        if not (low <= start <= end <= high) or step < 1:
            raise ValueError(f"cron field {spec!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


@dataclass(frozen=True)
class Periodic:
    """A job enqueued on a schedule: every `every` (aligned to the Unix epoch) or on `cron`."""

    job: str
    every: timedelta | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError(f"periodic job {self.job!r} needs exactly one of every= or cron=")
        if self.every is not None and self.every <= timedelta(0):
            raise ValueError(f"periodic job {self.job!r} needs a positive interval")
        if self.cron is not None:
            Cron(self.cron)

    def due(self, now: datetime) -> datetime:
        """The latest scheduled time at or before `now`."""
        if self.every is not None:
            return EPOCH + ((now - EPOCH) // self.every) * self.every
        assert self.cron is not None
        return Cron(self.cron).latest(now)


#: The periodic jobs. Add one with one line.
PERIODIC: tuple[Periodic, ...] = (
    Periodic("outbox.prune", cron="7 * * * *"),
    Periodic("idempotency.prune", cron="37 * * * *"),
    Periodic("workers.prune_heartbeats", every=timedelta(minutes=10)),
    Periodic("accounts.prune_limits", every=timedelta(minutes=10)),
    Periodic("routing.sweep_leases", every=timedelta(seconds=30)),
    Periodic("quality.refit_due", every=timedelta(minutes=5)),
    Periodic("jobs.complete_finished", every=timedelta(minutes=1)),
    Periodic("webhooks.job_progress", every=timedelta(minutes=1)),
    Periodic("webhooks.sweep", every=timedelta(minutes=1)),
    Periodic("webhooks.prune", cron="23 * * * *"),
    Periodic("payouts.post_earnings", every=timedelta(seconds=5)),
    Periodic("payouts.run_batch", cron=BATCH_CRON),  # Mondays 06:00 UTC
    Periodic("payouts.reconcile", every=timedelta(minutes=10)),
    Periodic("payouts.release_escrow", cron="17 * * * *"),
    Periodic("payouts.audit", cron="41 3 * * *"),  # daily
    Periodic("quality.auto_approve", every=timedelta(minutes=10)),
    Periodic("quality.refresh", every=timedelta(minutes=10)),
)


class Scheduler:
    """Enqueues due periodic jobs; `tick()` once, or `run()` until stopped."""

    def __init__(
        self,
        db: Database,
        periodic: Sequence[Periodic] = PERIODIC,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        for entry in periodic:
            job_spec(entry.job)  # unknown job names fail at start, not at 3 a.m.
        self.db = db
        self.periodic = tuple(periodic)
        self.clock = clock
        self._seeded = False

    def _seed(self) -> None:
        """Create the tick rows that do not exist yet (last tick: never)."""
        rows = [{"name": p.job, "last_tick_at": EPOCH} for p in self.periodic]
        if not rows:
            return
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        with self.db.transaction() as session:
            session.execute(insert(SchedulerTick).values(rows).on_conflict_do_nothing())
        self._seeded = True

    def tick(self, now: datetime | None = None) -> list[tuple[str, datetime]]:
        """Enqueue every periodic job whose latest due time has not been enqueued yet; return
        (job, due time) for each this scheduler enqueued (none while another holds the lock)."""
        if not self._seeded:
            self._seed()
        now = now or self.clock()
        enqueued: list[tuple[str, datetime]] = []
        with self.db.transaction() as session:
            if self.db.dialect == "postgresql":
                locked = session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
                if not locked:
                    return []
            for entry in self.periodic:
                due = entry.due(now)
                won = rowcount(
                    session.execute(
                        update(SchedulerTick)
                        .where(SchedulerTick.name == entry.job, SchedulerTick.last_tick_at < due)
                        .values(last_tick_at=due, enqueued_at=now)
                    )
                )
                if won == 1:
                    enqueue(session, entry.job)
                    enqueued.append((entry.job, due))
        if enqueued:
            # Each job with the tick it was due at: which tick ran is traceable from the log.
            logger.info(
                "scheduler enqueued %s",
                ", ".join(f"{name} (due {due.isoformat()})" for name, due in enqueued),
            )
        return enqueued

    def run(self, stop: threading.Event, *, poll: float = 1.0) -> None:
        """Tick every `poll` seconds until `stop` is set; errors are logged and retried."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                logger.exception("scheduler tick failed")
            stop.wait(poll)
