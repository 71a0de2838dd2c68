"""The receiver example in the README verifies a real delivery (and rejects a tampered or stale
one): the documented recipe is the one we sign with."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.core import clock
from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.webhooks import catalog, service
from tests.outbox import run_due_jobs
from tests.support import REPO_ROOT, Account
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import register

MARKER = "<!-- webhook-receiver-example -->"


def readme_verifier() -> Callable[..., bool]:
    readme = (REPO_ROOT / "README.md").read_text()
    found = re.search(re.escape(MARKER) + r"\s*```python\n(.*?)```", readme, re.DOTALL)
    assert found, "the README lost its webhook receiver example"
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), "README.md", "exec"), namespace)
    verify: Callable[..., bool] = namespace["verify_webhook"]
    return verify


def deliver_one(db: Database, settings: Settings, client_id: int) -> None:
    with db.transaction() as session:
        service.record_event(
            session,
            client_id,
            catalog.JOB_PAUSED,
            catalog.job_paused(1, utcnow(), "paused_by_client"),
        )
    run_due_jobs(db, settings, prefix="webhooks.")


def test_the_readme_receiver_verifies_a_real_delivery(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    verify = readme_verifier()
    secret = register(hooks, client_account, receiver.url, ["job.paused"])["secret"]
    deliver_one(db, hook_settings, client_account.id)
    [request] = receiver.received
    assert verify(secret, request.headers, request.body)
    assert not verify(secret, request.headers, request.body + b" ")
    assert not verify(secret.replace(secret[-8:], "AAAAAAA="), request.headers, request.body)

    clock.travel(timedelta(hours=1))  # a delivery stamped an hour away from the receiver's clock
    deliver_one(db, hook_settings, client_account.id)
    assert not verify(secret, receiver.received[-1].headers, receiver.received[-1].body)
