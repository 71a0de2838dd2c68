"""Issue #22 finding 10: a suspended client's webhooks stop.

Before, its deliveries kept going out. Now each due delivery is held while the client is
suspended (no attempt made or counted), and goes out once it is reactivated.
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.models import DeliveryStatus
from app.webhooks import attempts
from tests.jobs.factories import active_job
from tests.outbox import run_due_jobs
from tests.support import Account
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import attempts_of, deliveries, register


def test_finding_10_a_suspended_clients_deliveries_are_held_until_it_is_reactivated(
    hooks: TestClient,
    admin: Account,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    register(hooks, client_account, receiver.url, ["job.paused"])
    job_id = active_job(hooks, client_account)
    suspended = hooks.post(
        f"/v1/admin/users/{client_account.id}/suspend",
        json={"reason": "chargebacks"},
        headers=admin.headers,
    )
    assert suspended.status_code == 200, suspended.text

    run_due_jobs(db, hook_settings, prefix="webhooks.")
    assert receiver.received == []
    (held,) = deliveries(db)
    assert held.status is DeliveryStatus.pending
    assert attempts_of(db, held.id) == []
    with db.transaction() as session:  # the sweep comes by: still held
        attempts.enqueue_due(session, due_before=utcnow())
    run_due_jobs(db, hook_settings, prefix="webhooks.")
    assert receiver.received == []

    reactivated = hooks.post(
        f"/v1/admin/users/{client_account.id}/reactivate", headers=admin.headers
    )
    assert reactivated.status_code == 200
    with db.transaction() as session:  # the next sweep sends it
        attempts.enqueue_due(session, due_before=utcnow())
    run_due_jobs(db, hook_settings, prefix="webhooks.")
    (sent,) = [json.loads(r.body) for r in receiver.received]
    assert sent["type"] == "job.paused"
    assert sent["data"]["job_id"] == job_id
    assert sent["data"]["reason"] == "client_suspended"
