"""Background health in `/readyz` and `/metrics`: worker heartbeats, outbox lag, queue depth."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from app.core.background import enqueue
from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from app.models import OutboxJob, ProcessKind, WorkerHeartbeat
from tests.support import Account, assert_problem
from tests.workers.background import REDIS_URL


def heartbeat(db: Database, *, seen_ago: timedelta, depth: dict[str, dict[str, int]]) -> None:
    now = utcnow()
    with db.transaction() as session:
        session.add(
            WorkerHeartbeat(
                id="host:1:abc",
                kind=ProcessKind.worker,
                hostname="host",
                pid=1,
                queues=["default"],
                queue_depth=depth,
                started_at=now - timedelta(hours=1),
                last_seen_at=now - seen_ago,
            )
        )


def test_without_a_broker_readiness_needs_no_worker(client: TestClient, admin: Account) -> None:
    ready = client.get("/readyz", headers=admin.headers)
    assert ready.status_code == 200
    background = ready.json()["checks"]["background"]
    assert background["mode"] == "in-process"
    assert background["workers"] == {}


def test_with_a_broker_readiness_needs_a_worker_seen_recently(
    settings: Settings, db: Database, admin: Account
) -> None:
    with_broker = settings.model_copy(update={"broker_url": REDIS_URL})
    with TestClient(create_app(with_broker, db), headers=admin.headers) as client:
        body = assert_problem(client.get("/readyz"), 503)
        assert body["checks"]["background"]["mode"] == "broker"
        assert "tessera worker" in body["detail"]

        heartbeat(db, seen_ago=timedelta(minutes=5), depth={})  # a dead worker's row
        assert_problem(client.get("/readyz"), 503)

        with db.transaction() as session:
            session.execute(update(WorkerHeartbeat).values(last_seen_at=utcnow()))
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["background"]["workers"] == {"worker": 1}


def test_outbox_lag_and_queue_depth_are_reported(
    client: TestClient, db: Database, admin: Account
) -> None:
    with db.transaction() as session:
        stuck = enqueue(session, "test.count", 1)
        enqueue(session, "test.count", 2, delay=timedelta(hours=1))  # not due: no lag
        session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == stuck)
            .values(available_at=utcnow() - timedelta(seconds=90))
        )
    heartbeat(
        db, seen_ago=timedelta(seconds=1), depth={"default": {"ready": 3, "delayed": 1, "dead": 2}}
    )

    background = client.get("/readyz", headers=admin.headers).json()["checks"]["background"]
    assert background["outbox_pending"] == 1
    assert 90 <= background["outbox_lag_seconds"] < 120
    assert background["queue_depth"] == {"default": {"ready": 3, "delayed": 1, "dead": 2}}

    metrics = client.get("/metrics", headers=admin.headers).text

    def value(line_start: str) -> float:
        match = re.search(rf"^{re.escape(line_start)} (\S+)$", metrics, re.MULTILINE)
        assert match, f"{line_start} missing from /metrics"
        return float(match.group(1))

    assert value("tessera_outbox_pending_jobs") == 1
    assert 90 <= value("tessera_outbox_lag_seconds") < 120
    assert value('tessera_background_processes{kind="worker"}') == 1
    assert value('tessera_queue_depth{queue="default",state="ready"}') == 3
    assert value('tessera_queue_depth{queue="default",state="dead"}') == 2
