"""Background work: the transactional outbox of jobs, the runs people watch, worker heartbeats
and the scheduler's last ticks."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, CreatedAtMixin, IdMixin, str_enum


def _now() -> datetime:
    return datetime.now(UTC)


class RunState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class ProcessKind(StrEnum):
    worker = "worker"  # `tessera worker` (a Dramatiq worker process)
    scheduler = "scheduler"  # `tessera scheduler`
    in_process = "in_process"  # jobs on threads of `tessera serve` (no broker)


class OutboxJob(IdMixin, CreatedAtMixin, Base):
    """A background job written in the transaction that asked for it.

    Life: unsent (`sent_at` null) -> sent to the broker by a relay -> done (`done_at`, set in the
    same transaction as the job's own changes, so a second delivery finds it and does nothing)
    or dead (`dead_at`: retries exhausted, the message is in the dead-letter queue)."""

    __tablename__ = "job_outbox"

    name: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(50))
    args: Mapped[list[int | str]] = mapped_column(JSON)  # ids and names (`enqueue`)
    run_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("background_runs.id", ondelete="SET NULL")
    )
    available_at: Mapped[datetime] = mapped_column(default=_now, server_default=func.now())
    sent_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    dead_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # The relay's work list: only unsent rows, oldest due first.
        Index(
            "ix_job_outbox_unsent",
            "available_at",
            "id",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
        # Health checks count dead jobs on every probe.
        Index(
            "ix_job_outbox_dead",
            "dead_at",
            postgresql_where=text("dead_at IS NOT NULL"),
            sqlite_where=text("dead_at IS NOT NULL"),
        ),
    )


class BackgroundRun(IdMixin, CreatedAtMixin, Base):
    """Long-running work as the person who started it sees it: state, progress, outcome."""

    __tablename__ = "background_runs"

    kind: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    state: Mapped[RunState] = mapped_column(
        str_enum(RunState, "run_state"), default=RunState.queued
    )
    total: Mapped[int | None] = mapped_column(BigInteger)
    counters: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # RFC 9457 problem details
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(
        default=_now, onupdate=_now, server_default=func.now()
    )


class WorkerHeartbeat(Base):
    """A live background process; rows not seen for a while belong to dead processes."""

    __tablename__ = "worker_heartbeats"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)  # host:pid:random
    kind: Mapped[ProcessKind] = mapped_column(str_enum(ProcessKind, "process_kind"))
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Messages per queue as this process last saw them: {queue: {ready, delayed, dead}}
    queue_depth: Mapped[dict[str, dict[str, int]] | None] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(default=_now)
    last_seen_at: Mapped[datetime] = mapped_column(default=_now, index=True)


class SchedulerTick(Base):
    """The last tick of one periodic job that was enqueued; updated compare-and-set, so a tick is
    enqueued once however many schedulers run."""

    __tablename__ = "scheduler_ticks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_tick_at: Mapped[datetime]
    enqueued_at: Mapped[datetime | None]
