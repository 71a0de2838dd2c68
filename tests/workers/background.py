"""A background-work harness for tests: the in-process runner, or a Dramatiq worker on real Redis
(or RabbitMQ) started by the test, with short backoffs and a namespace of its own."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

import pytest
from dramatiq import Worker
from sqlalchemy import select

from app.core.db import Database
from app.core.settings import Settings
from app.models import BackgroundRun, OutboxJob
from tests.harness import require_commits
from workers.broker import BrokerHandle, build_broker
from workers.in_process import InProcessRunner

REDIS_URL = os.environ.get("TESSERA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("TESSERA_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")

T = TypeVar("T")


def require_service(name: str, url: str) -> None:
    """Skip when a service is unreachable, except under CI=true, where that fails the test."""
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), 2).close()
    except OSError as exc:
        message = f"{name} is unreachable at {parsed.hostname}:{parsed.port}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: failing instead of skipping)")
        pytest.skip(message)


def wait_until(check: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def settings_for(base: Settings, mode: str) -> Settings:
    url = {"in-process": None, "redis": REDIS_URL, "rabbitmq": RABBITMQ_URL}[mode]
    return base.model_copy(
        update={
            "broker_url": url,
            "broker_namespace": f"tt{uuid.uuid4().hex[:12]}",
            "job_min_backoff_ms": 100,
            "job_max_backoff_ms": 2000,
            "job_max_retries": 3,
        }
    )


@dataclass
class Background:
    mode: str
    settings: Settings
    db: Database
    handle: BrokerHandle
    runner: InProcessRunner | None = None
    worker: Worker | None = None
    started: bool = False

    @classmethod
    def build(cls, mode: str, base: Settings, db: Database) -> Background:
        require_commits(db, "background workers run on threads of their own")
        settings = settings_for(base, mode)
        if mode == "in-process":
            runner = InProcessRunner(
                settings,
                db,
                threads=2,
                scheduler=False,
                relay_interval=0.1,
                heartbeat_interval=0.5,
                worker_timeout_ms=100,
            )
            return cls(mode, settings, db, runner.handle, runner=runner)
        handle = build_broker(settings, db, relay_interval=0.1, heartbeat_interval=0.5)
        worker = Worker(handle.broker, worker_threads=2, worker_timeout=100)
        return cls(mode, settings, db, handle, worker=worker)

    def start(self) -> None:
        if self.runner is not None:
            self.runner.start()
        else:
            assert self.worker is not None
            self.handle.broker.emit_after("process_boot")
            self.worker.start()
        self.started = True

    def join(self) -> None:
        """Wait until every message handed to the broker so far has been processed."""
        for queue in self.handle.queues:
            self.handle.broker.join(self.handle.queue_name(queue), timeout=10_000)  # type: ignore[call-arg]
        worker = self.runner.worker if self.runner is not None else self.worker
        assert worker is not None
        worker.join()

    def stop(self) -> None:
        if not self.started:
            return
        if self.runner is not None:
            self.runner.stop(timeout=5)
        else:
            assert self.worker is not None
            self.worker.stop(timeout=5000)
            self.handle.close()
        self.started = False

    def cleanup(self) -> None:
        """Remove what this harness created in the broker."""
        ns = self.settings.broker_namespace
        if self.mode == "redis":
            client = self.handle.broker.client  # type: ignore[attr-defined]
            keys = list(client.scan_iter(match=f"{ns}:*", count=1000))
            if keys:
                client.delete(*keys)
            client.connection_pool.disconnect()
        elif self.mode == "rabbitmq":
            import pika

            connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
            channel = connection.channel()
            for queue in self.handle.queues:
                name = self.handle.queue_name(queue)
                for suffix in ("", ".DQ", ".XQ"):
                    channel.queue_delete(name + suffix)
            connection.close()

    # --- reading what happened -----------------------------------------------------------------

    def run(self, run_id: int) -> BackgroundRun:
        with self.db.read_session() as session:
            run = session.get(BackgroundRun, run_id)
            assert run is not None
            return run

    def outbox(self, run_id: int) -> list[OutboxJob]:
        with self.db.read_session() as session:
            return list(
                session.scalars(
                    select(OutboxJob).where(OutboxJob.run_id == run_id).order_by(OutboxJob.id)
                )
            )

    def dead_letters(self) -> list[dict[str, Any]]:
        """Messages in the dead-letter queues, as {outbox_id, actor_name}."""
        from dramatiq import Message
        from dramatiq.brokers.stub import StubBroker

        broker = self.handle.broker
        found: list[dict[str, Any]] = []
        if isinstance(broker, StubBroker):
            for message in broker.dead_letters:
                found.append(
                    {"outbox_id": message.options.get("outbox_id"), "actor": message.actor_name}
                )
        elif self.mode == "redis":
            client = broker.client  # type: ignore[attr-defined]
            for queue in self.handle.queues:
                for data in client.hvals(f"{self.settings.broker_namespace}:{queue}.XQ.msgs"):
                    message = Message.decode(data)
                    found.append(
                        {"outbox_id": message.options.get("outbox_id"), "actor": message.actor_name}
                    )
        return found


def background_harness(mode: str, base: Settings, db: Database) -> Iterator[Background]:
    if mode == "redis":
        require_service("Redis", REDIS_URL)
    elif mode == "rabbitmq":
        require_service("RabbitMQ", RABBITMQ_URL)
    harness = Background.build(mode, base, db)
    try:
        yield harness
    finally:
        harness.stop()
        harness.cleanup()
