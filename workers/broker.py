"""Broker setup: Redis (`redis://`), RabbitMQ (`amqp://`) or, without a broker URL, Dramatiq's
in-memory stub broker for jobs run inside `tessera serve`; the middleware every Tessera worker
uses; and one Dramatiq actor per registered job.

Middleware, in order: outbox bookkeeping (attempts, dead letters), a time limit per actor,
shutdown notifications, the current message (for the outbox id) and retries with exponential
backoff (TESSERA_JOB_MIN_BACKOFF_MS doubling up to TESSERA_JOB_MAX_BACKOFF_MS, at most
TESSERA_JOB_MAX_RETRIES times, then the dead-letter queue: `<queue>.XQ` on Redis and RabbitMQ).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from dramatiq.middleware import (
    CurrentMessage,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from app.core.background import HEARTBEAT_INTERVAL, registered_jobs
from app.core.db import Database
from app.core.settings import Settings
from app.models.background import OutboxJob, ProcessKind
from workers import registry
from workers.heartbeat import Heartbeat, QueueDepth
from workers.relay import RelayLoop
from workers.runner import JobRunner, OutboxBookkeeping, actor_function

BrokerKind = Literal["redis", "rabbitmq", "stub"]


def broker_kind(settings: Settings) -> BrokerKind:
    url = settings.broker_url
    if url is None:
        return "stub"
    return "redis" if url.startswith(("redis://", "rediss://")) else "rabbitmq"


def broker_queue_name(kind: BrokerKind, namespace: str, queue: str) -> str:
    """The broker's name for a Tessera queue. Redis keys carry the namespace already; RabbitMQ
    queues are prefixed with it, so several installations can share one server."""
    return f"{namespace}.{queue}" if kind == "rabbitmq" else queue


@dataclass
class BrokerHandle:
    """A Dramatiq broker plus what Tessera needs around it: queue naming, sending outbox rows,
    and queue depths for heartbeats."""

    broker: dramatiq.Broker
    kind: BrokerKind
    namespace: str
    runner: JobRunner
    queues: set[str] = field(default_factory=set)  # Tessera queue names (without prefix)

    def queue_name(self, queue: str) -> str:
        """The broker's name for a Tessera queue (see `broker_queue_name`)."""
        return broker_queue_name(self.kind, self.namespace, queue)

    def send(self, row: OutboxJob) -> None:
        """Hand one outbox row to the broker: its ids and names as args, outbox and run ids as
        options."""
        queue = self.queue_name(row.queue)
        if queue not in self.broker.get_declared_queues():
            self.broker.declare_queue(queue)
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=queue,
            actor_name=row.name,
            args=tuple(row.args),
            kwargs={},
            options={"outbox_id": row.id, "run_id": row.run_id},
        )
        self.broker.enqueue(message)

    def queue_depth(self) -> QueueDepth:
        """Messages per Tessera queue: ready, delayed (waiting for a retry) and dead."""
        depth: QueueDepth = {}
        for queue in sorted(self.queues):
            name = self.queue_name(queue)
            if isinstance(self.broker, RedisBroker):
                client = self.broker.client
                key = f"{self.namespace}:{name}"
                depth[queue] = {
                    "ready": int(client.llen(key)),
                    "delayed": int(client.hlen(f"{self.namespace}:{dq_name(name)}.msgs")),
                    "dead": int(client.zcard(f"{key}.XQ")),
                }
            elif isinstance(self.broker, RabbitmqBroker):
                ready, delayed, dead = self.broker.get_queue_message_counts(name)
                depth[queue] = {"ready": ready, "delayed": delayed, "dead": dead}
            elif isinstance(self.broker, StubBroker):
                depth[queue] = {
                    "ready": self.broker.queues[name].qsize(),
                    "delayed": self.broker.queues[dq_name(name)].qsize(),
                    "dead": len(self.broker.dead_letters_by_queue[name]),
                }
        return depth

    def close(self) -> None:
        self.broker.close()


class BackgroundServices(dramatiq.Middleware):
    """Starts this process's outbox relay and heartbeat when its Dramatiq worker boots, and stops
    them on shutdown (the relay first, so nothing new is sent while the worker drains)."""

    def __init__(
        self,
        db: Database,
        handle: BrokerHandle,
        *,
        kind: ProcessKind,
        relay_interval: float,
        heartbeat_interval: float,
    ) -> None:
        self.db = db
        self.handle = handle
        self.kind = kind
        self.relay_interval = relay_interval
        self.heartbeat_interval = heartbeat_interval
        self.relay: RelayLoop | None = None
        self.heartbeat: Heartbeat | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        whitelist = worker.consumer_whitelist or set()
        consumed = sorted(
            q for q in self.handle.queues if not whitelist or self.handle.queue_name(q) in whitelist
        )
        self.heartbeat = Heartbeat(
            self.db,
            self.kind,
            queues=consumed,
            queue_depth=self.handle.queue_depth,
            interval=self.heartbeat_interval,
        )
        self.heartbeat.start()
        self.relay = RelayLoop(self.db, self.handle, interval=self.relay_interval)
        self.relay.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        if self.relay is not None:
            self.relay.stop(timeout=10)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop(timeout=10)


def build_broker(
    settings: Settings,
    db: Database,
    *,
    kind: ProcessKind = ProcessKind.worker,
    relay_interval: float = 1.0,
    heartbeat_interval: float | None = None,
) -> BrokerHandle:
    """The broker for `settings.broker_url` (stub broker when there is none), with Tessera's
    middleware, relay and heartbeat, and an actor for every registered job."""
    assert registry.JOB_MODULES  # importing `registry` registered every job
    middleware: list[dramatiq.Middleware] = [
        OutboxBookkeeping(db),
        TimeLimit(),
        ShutdownNotifications(),
        CurrentMessage(),
        Retries(
            max_retries=settings.job_max_retries,
            min_backoff=settings.job_min_backoff_ms,
            max_backoff=settings.job_max_backoff_ms,
        ),
    ]
    kind_of_broker = broker_kind(settings)
    broker: dramatiq.Broker
    if settings.broker_url is None:
        broker = StubBroker(middleware=middleware)
    elif kind_of_broker == "redis":
        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=settings.broker_url, namespace=settings.broker_namespace, middleware=middleware
        )
    else:
        broker = RabbitmqBroker(
            url=settings.broker_url, middleware=middleware, confirm_delivery=True
        )
    handle = BrokerHandle(
        broker, kind_of_broker, settings.broker_namespace, JobRunner(settings, db)
    )
    broker.add_middleware(
        BackgroundServices(
            db,
            handle,
            kind=kind,
            relay_interval=relay_interval,
            heartbeat_interval=heartbeat_interval or HEARTBEAT_INTERVAL.total_seconds(),
        )
    )
    for spec in registered_jobs().values():
        options: dict[str, Any] = {"time_limit": int(spec.time_limit.total_seconds() * 1000)}
        if spec.max_retries is not None:
            options["max_retries"] = spec.max_retries
        declare = dramatiq.actor(
            actor_name=spec.name,
            queue_name=handle.queue_name(spec.queue),
            broker=broker,
            **options,
        )
        declare(actor_function(handle.runner, spec.name))
        handle.queues.add(spec.queue)
    return handle
