"""Entry points of the background processes: `tessera worker` and `tessera scheduler`.

`tessera worker` hands over to Dramatiq's process manager, which forks the worker processes,
restarts nothing silently (one dying stops the rest, so the supervisor notices), and shuts down
gracefully on SIGTERM/SIGINT: it stops taking messages, lets running jobs finish within the
shutdown timeout and puts prefetched messages back. Each worker process calls `setup()`.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

import dramatiq
from dramatiq import cli as dramatiq_cli

from app.core.db import Database
from app.core.observability import configure_logging
from app.core.settings import load_settings
from app.models.background import ProcessKind
from workers.broker import broker_kind, broker_queue_name, build_broker
from workers.heartbeat import Heartbeat
from workers.scheduler import PERIODIC, Scheduler

logger = logging.getLogger("tessera.workers")


def setup() -> None:
    """Build this worker process's broker from the environment (called by Dramatiq)."""
    settings = load_settings()
    configure_logging(settings.log_level.value, settings.log_json)
    logging.getLogger("pika").setLevel(logging.WARNING)
    handle = build_broker(settings, Database(settings), kind=ProcessKind.worker)
    dramatiq.set_broker(handle.broker)


def run_worker(
    *,
    processes: int,
    threads: int,
    queues: Sequence[str] = (),
    shutdown_timeout: float = 600.0,
) -> int:
    """Run `processes` Dramatiq worker processes of `threads` threads each, until signalled;
    return the exit code."""
    argv = [
        "workers.entry:setup",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--skip-logging",
        "--worker-shutdown-timeout",
        str(int(shutdown_timeout * 1000)),
    ]
    if queues:
        settings = load_settings()
        kind = broker_kind(settings)
        argv += [
            "--queues",
            *[broker_queue_name(kind, settings.broker_namespace, q) for q in queues],
        ]
    parser = dramatiq_cli.make_argument_parser()  # type: ignore[no-untyped-call]
    return int(dramatiq_cli.main(parser.parse_args(argv)) or 0)  # type: ignore[no-untyped-call]


def run_scheduler(*, poll: float = 1.0) -> int:
    """Run the scheduler in this process until SIGTERM or SIGINT; return the exit code."""
    settings = load_settings()
    db = Database(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("scheduler stopping (signal %d)", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    heartbeat = Heartbeat(db, ProcessKind.scheduler)
    heartbeat.start()
    try:
        logger.info("scheduler running %d periodic jobs", len(PERIODIC))
        Scheduler(db, PERIODIC).run(stop, poll=poll)
    finally:
        heartbeat.stop(timeout=5)
        db.dispose()
    return 0
