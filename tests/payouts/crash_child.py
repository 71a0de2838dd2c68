"""The process the payout crash test kills: one payout batch, then each payout's send job through
the real job runner, as a scheduler tick and a worker would run them. It reports each step on a
pipe before taking it, so the test can kill it between any two steps; the fake Stripe kills it
inside a send, after accepting the transfer and before the commit."""

from __future__ import annotations

import time
from multiprocessing.connection import Connection

from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from app.core.db import Database
from app.core.settings import Settings
from app.models import OutboxJob
from payouts import payouts
from workers.runner import JobRunner


def run_round(settings: Settings, pipe: Connection) -> None:
    db = Database(settings)
    try:
        _connect(db)
        pipe.send("start")
        with db.transaction() as session:
            payouts.run_batch(session)
        pipe.send("batch committed")
        with db.read_session() as session:
            sends = session.execute(
                select(OutboxJob.id, OutboxJob.args)
                .where(OutboxJob.name == payouts.SEND_JOB, OutboxJob.done_at.is_(None))
                .order_by(OutboxJob.id)
            ).all()
        runner = JobRunner(settings, db)
        for outbox_id, args in sends:
            pipe.send(f"sending {args[0]}")
            runner.run(payouts.SEND_JOB, tuple(args), outbox_id=outbox_id)
            pipe.send(f"sent {args[0]}")
        pipe.send("done")
    finally:
        db.dispose()


def _connect(db: Database, patience: float = 10.0) -> None:
    """Wait for a connection: the PostgreSQL server may be shared and momentarily full."""
    deadline = time.monotonic() + patience
    while True:
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
