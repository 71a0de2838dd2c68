"""Heartbeats: each background process keeps a row in `worker_heartbeats` fresh (with the broker's
queue depths as it sees them), and deletes it when it shuts down cleanly."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence

from sqlalchemy import delete, update

from app.core.background import HEARTBEAT_INTERVAL
from app.core.clock import utcnow
from app.core.db import Database, rowcount
from app.models.background import ProcessKind, WorkerHeartbeat

logger = logging.getLogger("tessera.heartbeat")

QueueDepth = dict[str, dict[str, int]]


def process_id() -> str:
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Heartbeat(threading.Thread):
    """Writes this process's heartbeat every `interval` seconds until stopped."""

    def __init__(
        self,
        db: Database,
        kind: ProcessKind,
        *,
        queues: Sequence[str] = (),
        queue_depth: Callable[[], QueueDepth] | None = None,
        interval: float = HEARTBEAT_INTERVAL.total_seconds(),
    ) -> None:
        super().__init__(name="tessera-heartbeat", daemon=True)
        self.db = db
        self.kind = kind
        self.queues = list(queues)
        self.queue_depth = queue_depth
        self.interval = interval
        self.id = process_id()
        self.started_at = utcnow()
        self._stop_event = threading.Event()

    def beat(self) -> None:
        """Record that this process is alive (insert its row the first time)."""
        depth: QueueDepth | None = None
        if self.queue_depth is not None:
            try:
                depth = self.queue_depth()
            except Exception:
                logger.warning("could not read queue depth from the broker", exc_info=True)
        now = utcnow()
        with self.db.transaction() as session:
            updated = rowcount(
                session.execute(
                    update(WorkerHeartbeat)
                    .where(WorkerHeartbeat.id == self.id)
                    .values(last_seen_at=now, queue_depth=depth)
                )
            )
            if updated == 0:
                session.add(
                    WorkerHeartbeat(
                        id=self.id,
                        kind=self.kind,
                        hostname=socket.gethostname()[:255],
                        pid=os.getpid(),
                        queues=self.queues,
                        queue_depth=depth,
                        started_at=self.started_at,
                        last_seen_at=now,
                    )
                )

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.beat()
            except Exception:
                logger.warning("heartbeat failed", exc_info=True)
            self._stop_event.wait(self.interval)

    def stop(self, timeout: float | None = None) -> None:
        """Stop beating and remove this process's row (a clean goodbye)."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)
        try:
            with self.db.transaction() as session:
                session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.id == self.id))
        except Exception:
            logger.warning("could not remove heartbeat %s", self.id, exc_info=True)
