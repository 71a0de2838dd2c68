"""Unreviewed work is approved automatically after TESSERA_QUALITY_AUTO_APPROVE_DAYS, by the
scheduler's periodic job, on the controlled clock."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core import clock
from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.models import AssignmentStatus, ReviewDecision, ReviewSource
from tests.jobs.factories import active_job
from tests.outbox import run_due_jobs
from tests.quality.factories import assignment, do_tasks
from tests.support import Account
from workers.scheduler import PERIODIC, Scheduler


def test_unreviewed_work_is_auto_approved_after_n_days_by_the_scheduler(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    db: Database,
    settings: Settings,
) -> None:
    assert settings.quality_auto_approve_days == 3
    job_id = active_job(client, client_account, items=3, overlap={"min": 1})
    waiting, rejected, approved = (t["id"] for t in do_tasks(client, annotator, job_id, 3))
    client.post(
        f"/v1/quality/jobs/{job_id}/reject",
        json={"assignment_ids": [rejected], "reason": "off topic"},
        headers=client_account.headers,
    )
    client.post(
        f"/v1/quality/jobs/{job_id}/approve",
        json={"assignment_ids": [approved]},
        headers=client_account.headers,
    )
    scheduler = Scheduler(db, [p for p in PERIODIC if p.job.startswith("quality.")])

    clock.travel(timedelta(days=3) - timedelta(minutes=15))
    scheduler.tick(utcnow())
    assert "quality.auto_approve" in run_due_jobs(db, settings, prefix="quality.")
    assert assignment(db, waiting).status is AssignmentStatus.submitted  # not yet

    clock.travel(timedelta(minutes=20))  # three days and five minutes after the submit
    scheduler.tick(utcnow())
    assert "quality.auto_approve" in run_due_jobs(db, settings, prefix="quality.")
    assert [assignment(db, i).status for i in (waiting, rejected, approved)] == [
        AssignmentStatus.approved,
        AssignmentStatus.rejected,
        AssignmentStatus.approved,
    ]
    with db.read_session() as session:
        auto = session.scalars(
            select(ReviewDecision).where(ReviewDecision.assignment_id == waiting)
        ).one()
    assert (auto.source, auto.actor_id, auto.old_status) == (
        ReviewSource.auto,
        None,
        AssignmentStatus.submitted,
    )
    assert auto.reason == "Approved automatically: not reviewed within 3 days of submission"

    # Later ticks find nothing more to approve and change nothing.
    clock.travel(timedelta(minutes=10))
    scheduler.tick(utcnow())
    run_due_jobs(db, settings, prefix="quality.")
    with db.read_session() as session:
        assert len(session.scalars(select(ReviewDecision)).all()) == 3
