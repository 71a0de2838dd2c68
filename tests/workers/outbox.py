"""Running queued background jobs by hand in tests, as the relay and a worker would (on the
controlled clock)."""

from __future__ import annotations

from sqlalchemy import select, update

from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.models import OutboxJob
from workers.runner import JobRunner


def run_due_jobs(db: Database, settings: Settings, *, prefix: str = "") -> list[str]:
    """Run every due, unsent outbox job whose name starts with `prefix`, until none is due (jobs
    they enqueue for now run too); return the names run, in order."""
    runner = JobRunner(settings, db)
    ran: list[str] = []
    while True:
        with db.transaction() as session:
            rows = session.execute(
                select(OutboxJob.id, OutboxJob.name, OutboxJob.args, OutboxJob.run_id)
                .where(
                    OutboxJob.sent_at.is_(None),
                    OutboxJob.available_at <= utcnow(),
                    OutboxJob.name.startswith(prefix),
                )
                .order_by(OutboxJob.id)
            ).all()
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
