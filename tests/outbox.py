"""Running queued background jobs by hand in tests, as the relay and a worker would, on the
controlled clock (`app.core.clock`): the one outbox runner of the suite."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select, update

from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.models import OutboxJob
from workers.runner import JobRunner


def run_due_jobs(
    db: Database,
    settings: Settings | None = None,
    *,
    prefix: str = "",
    names: Collection[str] | None = None,
    max_rounds: int = 100,
) -> list[str]:
    """Run every due, unsent outbox job whose name starts with `prefix` (and, given `names`, is
    one of them) through the real runner, as the relay would: mark the rows sent, then run them
    in id order; repeat until none is due (so jobs they enqueue for now run too). Returns the
    names run, in order. `settings` defaults to the database's.

    Only what a relay would send now runs: a job whose `available_at` is later on the controlled
    clock waits (move the clock with `clock.travel` to run it, as its delay intends), and a row
    already sent (by a relay, or an earlier call) is the worker's, not run again here. Raises
    AssertionError when jobs still come due after `max_rounds` rounds (a job that keeps
    enqueueing itself)."""
    runner = JobRunner(settings if settings is not None else db.settings, db)
    ran: list[str] = []
    for _ in range(max_rounds):
        with db.transaction() as session:
            stmt = select(OutboxJob.id, OutboxJob.name, OutboxJob.args, OutboxJob.run_id).where(
                OutboxJob.sent_at.is_(None),
                OutboxJob.available_at <= utcnow(),
                OutboxJob.name.startswith(prefix),
            )
            if names is not None:
                stmt = stmt.where(OutboxJob.name.in_(list(names)))
            rows = session.execute(stmt.order_by(OutboxJob.id)).all()
            if rows:
                session.execute(
                    update(OutboxJob)
                    .where(OutboxJob.id.in_([r.id for r in rows]))
                    .values(sent_at=utcnow())
                )
        if not rows:
            return ran
        for row in rows:
            runner.run(row.name, tuple(row.args), outbox_id=row.id, run_id=row.run_id)
            ran.append(row.name)
    raise AssertionError(f"background jobs still came due after {max_rounds} rounds")
