"""The outbox relay: moves committed outbox rows to the broker and marks them sent.

A row is handed to the broker and marked sent in one database transaction. If the process dies
after the broker accepted the message but before that commit, the row is still unsent and goes
again: delivery is at-least-once, and `JobRunner` skips the duplicate. Several relays may run at
once (one per worker process): on PostgreSQL each takes rows with `FOR UPDATE SKIP LOCKED`; on
SQLite the write transaction (`BEGIN IMMEDIATE`) serializes them, and a relay that waited finds
the rows already sent.

The loop wakes on PostgreSQL `NOTIFY` (sent by `enqueue`, delivered only on commit), on commits
in its own process, and otherwise polls, which is also how delayed jobs become due.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import psycopg
from sqlalchemy import make_url, select

from app.core.background import OUTBOX_CHANNEL, on_outbox_commit
from app.core.clock import utcnow
from app.core.db import Database
from app.models.background import OutboxJob

logger = logging.getLogger("tessera.relay")

BATCH = 500


class Sender(Protocol):
    """Hands one outbox row to the broker (`workers.broker.BrokerHandle`)."""

    def send(self, row: OutboxJob) -> None: ...


def relay_once(
    db: Database,
    broker: Sender,
    *,
    limit: int = BATCH,
    before_commit: Callable[[list[OutboxJob]], None] | None = None,
) -> int:
    """Send up to `limit` due, unsent outbox rows to the broker; return how many.
    (`before_commit` is for tests that simulate a crash between sending and marking sent.)"""
    now = utcnow()
    with db.transaction() as session:
        rows = list(
            session.scalars(
                select(OutboxJob)
                .where(OutboxJob.sent_at.is_(None), OutboxJob.available_at <= now)
                .order_by(OutboxJob.available_at, OutboxJob.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        for row in rows:
            broker.send(row)
            row.sent_at = now
        if before_commit is not None:
            before_commit(rows)
    if rows:
        logger.debug("relayed %d jobs", len(rows))
    return len(rows)


class RelayLoop(threading.Thread):
    """Relays until stopped: right after commits it hears of, and every `interval` seconds."""

    def __init__(self, db: Database, broker: Sender, *, interval: float = 1.0) -> None:
        super().__init__(name="tessera-relay", daemon=True)
        self.db = db
        self.broker = broker
        self.interval = interval
        self._stop_event = threading.Event()
        self._wake = threading.Event()
        self._listener: psycopg.Connection[object] | None = None

    def stop(self, timeout: float | None = None) -> None:
        self._stop_event.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        unsubscribe = on_outbox_commit(self._wake.set)
        failures = 0
        try:
            while not self._stop_event.is_set():
                try:
                    while relay_once(self.db, self.broker) == BATCH:
                        if self._stop_event.is_set():
                            return
                    failures = 0
                except Exception:
                    failures += 1
                    logger.exception("outbox relay failed (attempt %d); retrying", failures)
                    self._stop_event.wait(min(self.interval * 2**failures, 30.0))
                    continue
                self._wait()
        finally:
            unsubscribe()
            self._close_listener()

    def _wait(self) -> None:
        """Until a notification, a local commit, a stop, or `interval` seconds."""
        deadline = time.monotonic() + self.interval
        while not self._wake.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self.db.dialect != "postgresql":
                self._wake.wait(remaining)
                break
            try:
                # In short slices, so a stop or local commit is noticed promptly too.
                for _ in self._listen().notifies(timeout=min(remaining, 0.25), stop_after=1):
                    self._wake.set()
            except psycopg.Error:
                logger.warning("LISTEN %s failed; polling", OUTBOX_CHANNEL, exc_info=True)
                self._close_listener()
                self._wake.wait(remaining)
        self._wake.clear()

    def _listen(self) -> psycopg.Connection[object]:
        if self._listener is None or self._listener.closed:
            url = make_url(self.db.settings.database_url).set(drivername="postgresql")
            conn: psycopg.Connection[object] = psycopg.connect(
                url.render_as_string(hide_password=False), autocommit=True, connect_timeout=10
            )
            conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
            self._listener = conn
        return self._listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(psycopg.Error):
                self._listener.close()
            self._listener = None
