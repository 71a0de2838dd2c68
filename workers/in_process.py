"""Jobs without a broker: the embedded default runs them on threads of `tessera serve`.

The same actors, middleware (retries, time limits, dead letters), relay and scheduler as in
production, over Dramatiq's in-memory stub broker. The database stays the durable store: a row
stays "sent" only while this process holds its message in memory, so on start every row sent but
neither done nor dead is made unsent again and relayed anew (a duplicate is skipped by the runner
if the earlier delivery did finish).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from dramatiq import Worker
from sqlalchemy import update

from app.core.db import Database, rowcount
from app.core.settings import Settings
from app.models.background import OutboxJob, ProcessKind
from workers.broker import BrokerHandle, build_broker
from workers.scheduler import PERIODIC, Periodic, Scheduler

logger = logging.getLogger("tessera.workers")


def reclaim_in_flight(db: Database) -> int:
    """Mark rows sent but not finished as unsent, for a relay to send again; return how many."""
    with db.transaction() as session:
        return rowcount(
            session.execute(
                update(OutboxJob)
                .where(
                    OutboxJob.sent_at.is_not(None),
                    OutboxJob.done_at.is_(None),
                    OutboxJob.dead_at.is_(None),
                )
                .values(sent_at=None)
            )
        )


class InProcessRunner:
    """A Dramatiq worker, relay, heartbeat and (optionally) scheduler on background threads."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        threads: int = 2,
        scheduler: bool = True,
        periodic: Sequence[Periodic] = PERIODIC,
        relay_interval: float = 1.0,
        heartbeat_interval: float | None = None,
        scheduler_poll: float = 1.0,
        worker_timeout_ms: int = 1000,
    ) -> None:
        if not settings.in_process_jobs:
            raise ValueError("a broker is configured: run `tessera worker` instead")
        self.settings = settings
        self.db = db
        self.threads = threads
        self.handle: BrokerHandle = build_broker(
            settings,
            db,
            kind=ProcessKind.in_process,
            relay_interval=relay_interval,
            heartbeat_interval=heartbeat_interval,
        )
        self.worker = Worker(
            self.handle.broker, worker_threads=threads, worker_timeout=worker_timeout_ms
        )
        self.scheduler = Scheduler(db, periodic) if scheduler else None
        self.scheduler_poll = scheduler_poll
        self._stop = threading.Event()
        self._scheduler_thread: threading.Thread | None = None

    def start(self) -> None:
        reclaimed = reclaim_in_flight(self.db)
        if reclaimed:
            logger.info("re-queued %d jobs left in flight by a previous run", reclaimed)
        self.handle.broker.emit_after("process_boot")
        self.worker.start()
        if self.scheduler is not None:
            scheduler = self.scheduler
            self._scheduler_thread = threading.Thread(
                target=scheduler.run,
                args=(self._stop,),
                kwargs={"poll": self.scheduler_poll},
                name="tessera-scheduler",
                daemon=True,
            )
            self._scheduler_thread.start()
        logger.info("background jobs run in this process (%d threads)", self.threads)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the scheduler and relay, let running jobs finish (up to `timeout`)."""
        self._stop.set()
        if self._scheduler_thread is not None:
            self._scheduler_thread.join(timeout)
        self.worker.stop(timeout=int(timeout * 1000))
        self.handle.close()
