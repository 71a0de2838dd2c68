"""Running one job: the thin actor body, and the bookkeeping of attempts and dead letters.

Every delivery of an outbox job runs `JobRunner.run`: in one session it marks the outbox row done
(compare-and-set, so a duplicate delivery finds it done and does nothing), calls the registered
handler and commits once. On PostgreSQL the row lock taken by that update makes a concurrent
duplicate wait for the first delivery's outcome; on SQLite `BEGIN IMMEDIATE` serializes them.
A job with a `prepare` step has it entered first, outside that session (so on SQLite its long
reading holds no write lock), and exited once the session has ended.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.background import JobArgument, JobContext, JobSpec, PrepareContext, job_spec
from app.core.clock import utcnow
from app.core.db import Database, rowcount
from app.core.errors import NotFound, TesseraError
from app.core.settings import Settings
from app.models.background import OutboxJob
from app.runs import service as runs

logger = logging.getLogger("tessera.jobs")

JOB_FAILED_PROBLEM = {
    "type": "/problems/background-job-failed",
    "title": "Background job failed",
    "status": 500,
}


class JobRunner:
    """Runs jobs against one database: claim the outbox row, call the handler, commit."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    def run(
        self,
        name: str,
        args: tuple[JobArgument, ...],
        *,
        outbox_id: int | None = None,
        run_id: int | None = None,
        attempt: int = 0,
    ) -> bool:
        """Run job `name` once; False when this delivery was a duplicate and did nothing.
        Unexpected exceptions propagate (the broker retries); a `TesseraError` (from the
        handler or its `prepare` step) fails the job's run with that problem and is not
        retried."""
        spec = job_spec(name)
        if spec.prepare is not None and outbox_id is not None and self._done(outbox_id):
            logger.info("job %s #%s already done: duplicate skipped", name, outbox_id)
            return False
        if run_id is not None:
            self._mark_run_running(run_id)
        try:
            with self._prepared(spec, args, run_id, attempt) as prepared:
                return self._unit_of_work(spec, args, outbox_id, run_id, attempt, prepared)
        except TesseraError as exc:
            self._record_outcome(outbox_id, run_id, exc)
            logger.info("job %s #%s ended with %s: %s", name, outbox_id, exc.slug, exc)
            return True

    def _prepared(
        self, spec: JobSpec, args: tuple[JobArgument, ...], run_id: int | None, attempt: int
    ) -> contextlib.AbstractContextManager[Any]:
        if spec.prepare is None:
            return contextlib.nullcontext()
        return spec.prepare(PrepareContext(self.db, self.settings, run_id, attempt), *args)

    def _unit_of_work(
        self,
        spec: JobSpec,
        args: tuple[JobArgument, ...],
        outbox_id: int | None,
        run_id: int | None,
        attempt: int,
        prepared: Any,
    ) -> bool:
        with self.db.session() as session:
            try:
                if outbox_id is not None and not self._claim(session, outbox_id):
                    session.rollback()
                    logger.info("job %s #%s already done: duplicate skipped", spec.name, outbox_id)
                    return False
                ctx = JobContext(session, self.settings, outbox_id, run_id, attempt, prepared)
                spec.handler(ctx, *args)
                session.commit()
            except BaseException:
                session.rollback()
                raise
        return True

    def _done(self, outbox_id: int) -> bool:
        """Whether the outbox row is already done (a cheap read before a long prepare step)."""
        with self.db.read_session() as session:
            done_at = session.scalar(select(OutboxJob.done_at).where(OutboxJob.id == outbox_id))
        return done_at is not None

    @staticmethod
    def _claim(session: Session, outbox_id: int) -> bool:
        claimed = rowcount(
            session.execute(
                update(OutboxJob)
                .where(OutboxJob.id == outbox_id, OutboxJob.done_at.is_(None))
                .values(done_at=utcnow())
            )
        )
        if claimed == 1:
            return True
        # Not there at all (pruned long ago, e.g. a replay from the dead-letter queue): run it.
        return session.get(OutboxJob, outbox_id) is None

    def _mark_run_running(self, run_id: int) -> None:
        # Its own short transaction, so the owner sees "running" while the job works.
        try:
            with self.db.transaction() as session:
                runs.mark_running(session, run_id)
        except NotFound:
            logger.warning("background run %s is gone", run_id)

    def _record_outcome(self, outbox_id: int | None, run_id: int | None, exc: TesseraError) -> None:
        with self.db.transaction() as session:
            if outbox_id is not None:
                session.execute(
                    update(OutboxJob)
                    .where(OutboxJob.id == outbox_id)
                    .values(
                        done_at=utcnow(),
                        attempts=OutboxJob.attempts + 1,
                        last_error=f"{exc.slug}: {exc}"[:2000],
                    )
                )
            if run_id is not None:
                with contextlib.suppress(NotFound):
                    runs.fail_run(session, run_id, exc)


class OutboxBookkeeping(dramatiq.Middleware):
    """Records each failed attempt on the outbox row and, when retries are exhausted (the
    message goes to the dead-letter queue), marks the row dead and fails its background run.

    Must come first in the broker's middleware list: `after_*` hooks run in reverse order, so it
    then sees the message after `Retries` has decided whether it failed for good."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            return
        outbox_id = message.options.get("outbox_id")
        run_id = message.options.get("run_id")
        dead = bool(message.failed)
        error = f"{type(exception).__name__}: {exception}"[:2000]
        now = utcnow()
        with self.db.transaction() as session:
            if outbox_id is not None:
                values: dict[str, Any] = {"attempts": OutboxJob.attempts + 1, "last_error": error}
                if dead:
                    values["dead_at"] = now
                session.execute(
                    update(OutboxJob)
                    .where(OutboxJob.id == outbox_id, OutboxJob.done_at.is_(None))
                    .values(**values)
                )
            if dead and run_id is not None:
                problem = {
                    **JOB_FAILED_PROBLEM,
                    "detail": "The job kept failing and was stopped; an administrator can "
                    f"find it as background job #{outbox_id}.",
                }
                with contextlib.suppress(NotFound):
                    runs.fail_run(session, run_id, problem)
        if dead:
            logger.error(
                "job %s #%s dead-lettered after %s attempts: %s",
                message.actor_name,
                outbox_id,
                message.options.get("retries"),
                error,
            )


def actor_function(runner: JobRunner, name: str) -> Any:
    """The Dramatiq actor body for job `name`: ids and names in, everything else from the
    message."""

    def perform(*args: JobArgument) -> None:
        message = CurrentMessage.get_current_message()
        options: dict[str, Any] = message.options if message is not None else {}
        runner.run(
            name,
            args,
            outbox_id=options.get("outbox_id"),
            run_id=options.get("run_id"),
            attempt=int(options.get("retries", 0)),
        )

    perform.__name__ = perform.__qualname__ = "job_" + name.replace(".", "_")
    return perform
