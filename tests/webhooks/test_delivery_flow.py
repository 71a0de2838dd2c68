"""Events recorded in a transaction are delivered to a local receiver by the background jobs:
signed, retried with growing delays on 500s and timeouts (on the controlled clock), dead-lettered
after the retry window, replayable with the same event id; failing endpoints are switched off."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from app.core import clock
from app.core.background import JobContext, enqueue
from app.core.clock import utcnow
from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from app.models import DeliveryStatus, OutboxJob, WebhookDelivery, WebhookEvent
from app.webhooks import attempts, background, catalog, service, signing
from tests.outbox import run_due_jobs
from tests.support import Account, assert_problem
from tests.webhooks.receiver import Receiver, Reply
from tests.webhooks.support import (
    attempts_of,
    deliveries,
    endpoint_row,
    events,
    register,
)
from tests.workers.background import wait_until
from workers.in_process import InProcessRunner
from workers.runner import JobRunner


def record(db: Database, client_id: int, event_type: str = catalog.JOB_PAUSED) -> str | None:
    with db.transaction() as session:
        return service.record_event(
            session,
            client_id,
            event_type,
            catalog.job_paused(7, utcnow(), "paused_by_client"),
        )


def travel_to_next_attempt(db: Database) -> None:
    [row] = deliveries(db)
    assert row.status is DeliveryStatus.pending
    clock.travel(row.next_attempt_at - utcnow() + timedelta(seconds=1))


def test_an_event_is_delivered_signed_with_its_id_and_the_signature_verifies(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    endpoint = register(hooks, client_account, receiver.url, ["job.paused"])
    event_id = record(db, client_account.id)
    assert event_id is not None
    assert event_id.startswith("evt_")

    assert run_due_jobs(db, hook_settings, prefix="webhooks.") == [
        "webhooks.fan_out",
        "webhooks.deliver",
    ]
    [request] = receiver.received
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == event_id
    assert abs(int(request.headers["webhook-timestamp"]) - utcnow().timestamp()) < 5
    assert signing.verify(endpoint["secret"], request.headers, request.body)
    body = json.loads(request.body)
    assert body["id"] == event_id
    assert body["type"] == "job.paused"
    assert body["version"] == 1
    assert body["data"]["reason"] == "paused_by_client"
    catalog.JobPausedEvent.model_validate(body)

    [row] = deliveries(db)
    assert (row.status, row.attempts, row.last_status_code) == (DeliveryStatus.succeeded, 1, 200)
    listed = hooks.get("/v1/webhooks/deliveries", headers=client_account.headers).json()["items"]
    assert listed[0]["status"] == "succeeded"
    assert listed[0]["event"]["id"] == event_id
    assert listed[0]["last_latency_ms"] >= 0


def test_nothing_is_written_when_no_endpoint_listens_or_the_cause_rolls_back(
    hooks: TestClient, client_account: Account, make_account: Any, receiver: Receiver, db: Database
) -> None:
    assert record(db, client_account.id) is None  # no endpoint at all
    register(hooks, client_account, receiver.url, ["job.completed"])
    assert record(db, client_account.id, catalog.JOB_PAUSED) is None  # not subscribed to it
    other = make_account("client")
    assert record(db, other.id, catalog.JOB_COMPLETED) is None  # someone else's endpoint
    with db.session() as session:
        service.record_event(
            session,
            client_account.id,
            catalog.JOB_COMPLETED,
            catalog.job_completed(1, "t", utcnow(), "client", 1, 1),
        )
        session.rollback()
    assert events(db) == []
    with db.read_session() as session:
        assert session.scalars(select(OutboxJob)).all() == []


def test_500s_and_timeouts_are_retried_with_growing_delays_and_the_same_event_id(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    endpoint = register(hooks, client_account, receiver.url, ["job.paused"])
    receiver.reply(Reply(500), Reply(200, delay=1.0), Reply(503), Reply(500), Reply(200))
    event_id = record(db, client_account.id)
    run_due_jobs(db, hook_settings, prefix="webhooks.")
    waits = []
    for _ in range(4):
        [row] = deliveries(db)
        assert row.last_attempt_at is not None
        waits.append(row.next_attempt_at - row.last_attempt_at)
        assert (
            run_due_jobs(db, hook_settings, prefix="webhooks.") == []
        )  # not due yet: nothing happens
        travel_to_next_attempt(db)
        assert run_due_jobs(db, hook_settings, prefix="webhooks.") == ["webhooks.deliver"]
    [row] = deliveries(db)
    assert row.status is DeliveryStatus.succeeded
    assert row.attempts == 5
    assert all(later > earlier for earlier, later in itertools.pairwise(waits))
    assert waits[0] >= timedelta(seconds=24)  # 30 s ± 20 %
    log = attempts_of(db, row.id)
    assert [a.status_code for a in log] == [500, None, 503, 500, 200]
    assert log[1].error == "timed out after 0.5 s"
    assert {r.headers["webhook-id"] for r in receiver.received} == {event_id}
    assert len({r.headers["webhook-timestamp"] for r in receiver.received}) == 5
    assert all(signing.verify(endpoint["secret"], r.headers, r.body) for r in receiver.received)


def test_a_delivery_failing_for_24_hours_is_dead_and_its_endpoint_disabled(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    endpoint = register(hooks, client_account, receiver.url, ["job.paused"])
    receiver.default = Reply(500)
    record(db, client_account.id)
    started = utcnow()
    run_due_jobs(db, hook_settings, prefix="webhooks.")
    while deliveries(db)[0].status is DeliveryStatus.pending:
        travel_to_next_attempt(db)
        run_due_jobs(db, hook_settings, prefix="webhooks.")
    [row] = deliveries(db)
    assert row.status is DeliveryStatus.dead
    assert row.dead_at is not None
    assert row.dead_at - started >= timedelta(hours=24)
    assert row.dead_at - started < timedelta(hours=24, minutes=1)
    assert 12 <= row.attempts <= 17
    assert len(receiver.received) == row.attempts
    clock.travel(timedelta(days=1))
    assert run_due_jobs(db, hook_settings, prefix="webhooks.") == []  # nothing more is tried

    shown = hooks.get(
        f"/v1/webhooks/endpoints/{endpoint['id']}", headers=client_account.headers
    ).json()
    assert shown["active"] is False
    assert shown["disabled_reason"].startswith("Every delivery failed from")
    assert "HTTP 500" in shown["disabled_reason"]
    assert record(db, client_account.id) is None  # a disabled endpoint listens to nothing
    dead = hooks.get(
        "/v1/webhooks/deliveries", params={"status": "dead"}, headers=client_account.headers
    ).json()["items"]
    assert [d["id"] for d in dead] == [row.id]


def test_a_dead_delivery_is_replayed_with_the_same_event_id(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    short = hook_settings.model_copy(update={"webhook_retry_window_hours": 0.01})  # 36 s
    endpoint = register(hooks, client_account, receiver.url, ["job.paused"])
    receiver.default = Reply(500)
    event_id = record(db, client_account.id)
    run_due_jobs(db, short, prefix="webhooks.")
    while deliveries(db)[0].status is DeliveryStatus.pending:
        travel_to_next_attempt(db)
        run_due_jobs(db, short, prefix="webhooks.")
    [row] = deliveries(db)
    assert row.status is DeliveryStatus.dead
    tried = row.attempts
    assert tried in (2, 3)
    assert endpoint_row(db, endpoint["id"]).active  # 36 s of failures disable nothing

    receiver.default = Reply(200)
    replayed = hooks.post(
        f"/v1/webhooks/deliveries/{row.id}/replay", headers=client_account.headers
    )
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["status"] == "pending"
    again = hooks.post(f"/v1/webhooks/deliveries/{row.id}/replay", headers=client_account.headers)
    assert assert_problem(again, 409)["type"] == "/problems/webhook-delivery-pending"
    run_due_jobs(db, short, prefix="webhooks.")
    [row] = deliveries(db)
    assert row.status is DeliveryStatus.succeeded
    assert row.attempts == tried + 1
    assert receiver.received[-1].headers["webhook-id"] == event_id
    assert signing.verify(
        endpoint["secret"], receiver.received[-1].headers, receiver.received[-1].body
    )
    assert receiver.received[-1].body == receiver.received[0].body  # the same event, byte for byte


def test_every_dead_delivery_of_an_endpoint_is_replayed_at_once(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    short = hook_settings.model_copy(update={"webhook_retry_window_hours": 0.01})
    endpoint = register(hooks, client_account, receiver.url, ["job.paused"])
    receiver.default = Reply(500)
    ids = {record(db, client_account.id) for _ in range(3)}
    run_due_jobs(db, short, prefix="webhooks.")
    for _ in range(2):
        clock.travel(timedelta(seconds=40))
        run_due_jobs(db, short, prefix="webhooks.")
    assert {d.status for d in deliveries(db)} == {DeliveryStatus.dead}

    receiver.default = Reply(200)
    received_before = len(receiver.received)
    response = hooks.post(
        f"/v1/webhooks/endpoints/{endpoint['id']}/replay-dead", headers=client_account.headers
    )
    assert response.status_code == 202
    assert response.json() == {"replayed": 3}
    ran = run_due_jobs(db, short, prefix="webhooks.")
    assert ran.count("webhooks.deliver") == 3
    assert "webhooks.dispatch" in ran
    assert {d.status for d in deliveries(db)} == {DeliveryStatus.succeeded}
    assert {r.headers["webhook-id"] for r in receiver.received[received_before:]} == ids


def test_a_test_event_goes_to_the_one_endpoint_and_its_attempts_are_listed(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    endpoint = register(hooks, client_account, receiver.url, ["job.completed"])
    register(hooks, client_account, receiver.url + "/other", ["job.completed"])
    response = hooks.post(
        f"/v1/webhooks/endpoints/{endpoint['id']}/test", headers=client_account.headers
    )
    assert response.status_code == 202, response.text
    sent = response.json()
    run_due_jobs(db, hook_settings, prefix="webhooks.")
    [request] = receiver.received
    assert request.path == "/hook"
    assert json.loads(request.body)["type"] == "webhook.test"
    detail = hooks.get(
        f"/v1/webhooks/deliveries/{sent['delivery_id']}", headers=client_account.headers
    ).json()
    assert detail["status"] == "succeeded"
    assert detail["event"]["id"] == sent["event_id"]
    assert detail["payload"]["data"]["endpoint_id"] == endpoint["id"]
    [attempt] = detail["attempt_log"]
    assert attempt["status_code"] == 200
    assert attempt["response_excerpt"] == "ok"


def test_410_gone_switches_the_endpoint_off_at_once(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    endpoint = register(hooks, client_account, receiver.url, ["job.paused"])
    receiver.reply(Reply(410))
    record(db, client_account.id)
    run_due_jobs(db, hook_settings, prefix="webhooks.")
    [row] = deliveries(db)
    assert row.status is DeliveryStatus.dead
    shown = hooks.get(
        f"/v1/webhooks/endpoints/{endpoint['id']}", headers=client_account.headers
    ).json()
    assert shown["active"] is False
    assert "410" in shown["disabled_reason"]
    replay = hooks.post(f"/v1/webhooks/deliveries/{row.id}/replay", headers=client_account.headers)
    assert assert_problem(replay, 409)["type"] == "/problems/webhook-endpoint-disabled"
    enabled = hooks.patch(
        f"/v1/webhooks/endpoints/{endpoint['id']}",
        json={"active": True},
        headers=client_account.headers,
    ).json()
    assert (enabled["active"], enabled["disabled_reason"]) == (True, None)


def test_pending_deliveries_to_a_disabled_endpoint_die_at_their_next_attempt(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    endpoint = register(hooks, client_account, receiver.url, ["job.paused"])
    receiver.reply(Reply(500))
    record(db, client_account.id)
    run_due_jobs(db, hook_settings, prefix="webhooks.")
    hooks.patch(
        f"/v1/webhooks/endpoints/{endpoint['id']}",
        json={"active": False},
        headers=client_account.headers,
    )
    travel_to_next_attempt(db)
    run_due_jobs(db, hook_settings, prefix="webhooks.")
    [row] = deliveries(db)
    assert row.status is DeliveryStatus.dead
    assert row.last_error is not None
    assert "disabled" in row.last_error
    assert len(receiver.received) == 1


def test_a_second_job_for_the_same_delivery_sends_nothing(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    register(hooks, client_account, receiver.url, ["job.paused"])
    record(db, client_account.id)
    run_due_jobs(db, hook_settings, prefix="webhooks.")
    [row] = deliveries(db)
    with db.transaction() as session:
        enqueue(session, attempts.DELIVER_JOB, row.id)
        enqueue(session, attempts.DELIVER_JOB, row.id)
    assert run_due_jobs(db, hook_settings, prefix="webhooks.") == [
        "webhooks.deliver",
        "webhooks.deliver",
    ]
    assert len(receiver.received) == 1
    assert deliveries(db)[0].attempts == 1


def test_an_attempt_lost_in_flight_is_picked_up_by_the_sweep(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    register(hooks, client_account, receiver.url, ["job.paused"])
    record(db, client_account.id)
    run_due_jobs(db, hook_settings, prefix="webhooks.fan_out")
    [row] = deliveries(db)
    with db.transaction() as session:  # the attempt's first step, then the process dies
        assert attempts.prepare_attempt(session, hook_settings, row.id) is not None
        session.execute(
            OutboxJob.__table__.update()
            .where(OutboxJob.name == attempts.DELIVER_JOB)
            .values(sent_at=utcnow(), done_at=utcnow())
        )
    with db.transaction() as session:
        assert attempts.enqueue_due(session, due_before=utcnow()) == []  # in flight
    clock.travel(timedelta(minutes=12))
    with db.transaction() as session:
        background.sweep(JobContext(session, hook_settings, None, None, 0))
    run_due_jobs(db, hook_settings, prefix="webhooks.")
    assert deliveries(db)[0].status is DeliveryStatus.succeeded
    assert len(receiver.received) == 1


def test_a_secret_sealed_under_another_key_fails_the_attempt_clearly(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    register(hooks, client_account, receiver.url, ["job.paused"])
    record(db, client_account.id)
    rekeyed = hook_settings.model_copy(update={"secret_key": SecretStr("another-key-" + "y" * 40)})
    run_due_jobs(db, rekeyed, prefix="webhooks.")
    [row] = deliveries(db)
    assert row.status is DeliveryStatus.pending
    assert row.last_error is not None
    assert "rotate it" in row.last_error
    assert receiver.received == []


@pytest.mark.commits  # the engine's threads see only committed rows
def test_deliveries_run_on_the_background_engine(
    client_account: Account, receiver: Receiver, db: Database, hook_settings: Settings
) -> None:
    runner = InProcessRunner(
        hook_settings, db, scheduler=False, relay_interval=0.05, worker_timeout_ms=100
    )
    runner.start()
    try:
        with TestClient(create_app(hook_settings, db)) as client:
            endpoint = register(client, client_account, receiver.url, ["job.paused"])
            record(db, client_account.id)
            wait_until(lambda: receiver.received, timeout=120, what="the delivery")
    finally:
        runner.stop()
    assert signing.verify(
        endpoint["secret"], receiver.received[0].headers, receiver.received[0].body
    )
    wait_until(
        lambda: deliveries(db)[0].status is DeliveryStatus.succeeded, what="the outcome recorded"
    )


@pytest.mark.postgresql
@pytest.mark.commits  # threads race on real commits
def test_concurrent_jobs_for_one_delivery_make_one_request(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    register(hooks, client_account, receiver.url, ["job.paused"])
    receiver.default = Reply(200, delay=0.2)
    record(db, client_account.id)
    run_due_jobs(db, hook_settings, prefix="webhooks.fan_out")
    [row] = deliveries(db)
    with db.transaction() as session:
        outbox_ids = [enqueue(session, attempts.DELIVER_JOB, row.id) for _ in range(15)]
    runner = JobRunner(hook_settings, db)
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def attempt(outbox_id: int) -> None:
        try:
            barrier.wait(10)
            runner.run(attempts.DELIVER_JOB, (row.id,), outbox_id=outbox_id)
        except BaseException as exc:
            errors.append(exc)

    first = [o.id for o in _pending_deliver_jobs(db) if o.id not in outbox_ids]
    threads = [threading.Thread(target=attempt, args=(i,)) for i in [*outbox_ids, *first]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(receiver.received) == 1
    assert deliveries(db)[0].attempts == 1


def _pending_deliver_jobs(db: Database) -> list[OutboxJob]:
    with db.read_session() as session:
        return list(
            session.scalars(
                select(OutboxJob).where(
                    OutboxJob.name == attempts.DELIVER_JOB, OutboxJob.done_at.is_(None)
                )
            )
        )


def test_the_event_table_needs_nothing_looked_up(db: Database, client_account: Account) -> None:
    """The columns a raw-SQL store must fill: all known from the job and the payload."""
    required = {
        c.name
        for c in WebhookEvent.__table__.columns
        if not c.nullable and c.server_default is None and not c.primary_key
    }
    assert required == {"public_id", "client_id", "type", "version", "data", "created_at"}
    assert WebhookDelivery.__table__.c.event_id.foreign_keys


def test_old_events_are_pruned_once_none_of_their_deliveries_is_pending(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    register(hooks, client_account, receiver.url, ["job.paused"])
    receiver.reply(Reply(200), Reply(500))
    record(db, client_account.id)
    record(db, client_account.id)
    run_due_jobs(db, hook_settings, prefix="webhooks.")
    assert sorted(d.status for d in deliveries(db)) == [
        DeliveryStatus.pending,
        DeliveryStatus.succeeded,
    ]
    clock.travel(timedelta(days=29))
    recent = record(db, client_account.id)
    clock.travel(timedelta(days=2))
    with db.transaction() as session:
        background.prune(JobContext(session, hook_settings, None, None, 0))
    remaining = events(db)
    assert len(remaining) == 2  # the one still pending, and the recent one
    assert recent in {e.public_id for e in remaining}
    assert [d.status for d in deliveries(db)] == [DeliveryStatus.pending]  # cascaded
