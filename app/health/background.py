"""Health of background work, read from the database only (the API never talks to the broker):
outbox lag, dead jobs, live background processes and the queue depths they last saw."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.core.background import HEARTBEAT_STALE
from app.core.clock import utcnow
from app.core.db import Database
from app.models.background import OutboxJob, ProcessKind, WorkerHeartbeat

logger = logging.getLogger("tessera.health")


@dataclass
class BackgroundStatus:
    in_process: bool  # no broker: jobs run on threads of `tessera serve`
    outbox_pending: int  # committed, due, not yet handed to the broker
    outbox_lag_seconds: float  # age of the oldest of those (0 when none)
    dead_jobs: int  # retries exhausted (kept for the outbox retention period)
    live_processes: dict[str, int] = field(default_factory=dict)  # kind -> count
    queue_depth: dict[str, dict[str, int]] = field(default_factory=dict)  # queue -> state -> n

    @property
    def live_workers(self) -> int:
        return self.live_processes.get(ProcessKind.worker.value, 0) + self.live_processes.get(
            ProcessKind.in_process.value, 0
        )

    def as_check(self) -> dict[str, object]:
        return {
            "mode": "in-process" if self.in_process else "broker",
            "workers": self.live_processes,
            "outbox_pending": self.outbox_pending,
            "outbox_lag_seconds": round(self.outbox_lag_seconds, 3),
            "dead_jobs": self.dead_jobs,
            "queue_depth": self.queue_depth,
        }


def background_status(
    session: Session, *, in_process: bool, now: datetime | None = None
) -> BackgroundStatus:
    """Outbox lag and size, dead jobs, live processes and the freshest queue depths."""
    now = now or utcnow()
    pending, oldest = session.execute(
        select(func.count(), func.min(OutboxJob.available_at)).where(
            OutboxJob.sent_at.is_(None), OutboxJob.available_at <= now
        )
    ).one()
    dead = session.scalar(select(func.count()).where(OutboxJob.dead_at.is_not(None))) or 0
    live = list(
        session.scalars(
            select(WorkerHeartbeat)
            .where(WorkerHeartbeat.last_seen_at >= now - HEARTBEAT_STALE)
            .order_by(WorkerHeartbeat.last_seen_at.desc())
        )
    )
    kinds: dict[str, int] = {}
    for process in live:
        kinds[process.kind.value] = kinds.get(process.kind.value, 0) + 1
    # Each worker reports the broker's depth as it saw it; the freshest report wins per queue.
    depth: dict[str, dict[str, int]] = {}
    for process in live:
        for queue, counts in (process.queue_depth or {}).items():
            depth.setdefault(queue, dict(counts))
    lag = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return BackgroundStatus(
        in_process=in_process,
        outbox_pending=int(pending),
        outbox_lag_seconds=lag,
        dead_jobs=int(dead),
        live_processes=kinds,
        queue_depth=depth,
    )


class BackgroundCollector(Collector):
    """Prometheus gauges for background work, read from the database at scrape time."""

    def __init__(self, db: Database, *, in_process: bool) -> None:
        self.db = db
        self.in_process = in_process

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "tessera_outbox_pending_jobs", "Committed jobs not yet handed to the broker"
            ),
            GaugeMetricFamily(
                "tessera_outbox_lag_seconds", "Age of the oldest committed job not yet relayed"
            ),
            GaugeMetricFamily("tessera_dead_jobs", "Jobs whose retries are exhausted"),
            GaugeMetricFamily(
                "tessera_background_processes",
                "Background processes with a recent heartbeat",
                labels=["kind"],
            ),
            GaugeMetricFamily(
                "tessera_queue_depth",
                "Messages in the broker per queue, as last seen by a worker",
                labels=["queue", "state"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        pending, lag, dead, processes, depth = self._families()
        try:
            with self.db.read_session() as session:
                status = background_status(session, in_process=self.in_process)
        except SQLAlchemyError:
            logger.warning("background metrics unavailable", exc_info=True)
            return
        pending.add_metric([], status.outbox_pending)
        lag.add_metric([], status.outbox_lag_seconds)
        dead.add_metric([], status.dead_jobs)
        for kind in ProcessKind:
            processes.add_metric([kind.value], status.live_processes.get(kind.value, 0))
        for queue, counts in sorted(status.queue_depth.items()):
            for state, count in sorted(counts.items()):
                depth.add_metric([queue, state], count)
        yield from (pending, lag, dead, processes, depth)
