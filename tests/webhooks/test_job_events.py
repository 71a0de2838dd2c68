"""Events from their sources: job transitions (paused, completed, results final), imports (inline
and background, succeeded or failed), throttled progress, and the submit flow's two events
(`task.completed`, `assignment.submitted`), through the API on both databases and through the
PostgreSQL store's own SQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url, select

from app.core import clock
from app.core.clock import utcnow
from app.core.db import Database
from app.core.security import client_pseudonym
from app.core.settings import Settings
from app.main import create_app
from app.models import Assignment, ItemResult, Task, TaskItem, WebhookJobProgress
from app.models.jobs import Answer, Item
from app.webhooks import background, catalog, hot_path, service
from tests.jobs.factories import BOXES, SENTIMENT, active_job, create_job, jsonl, reviews, upload
from tests.jobs.test_dataset_import import count_items
from tests.outbox import run_due_jobs
from tests.routing.test_claim_and_submit import claim, submit
from tests.support import Account
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import events, register
from tests.workers.background import wait_until
from workers.in_process import InProcessRunner
from workers.scheduler import PERIODIC


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received]


def delivered(receiver: Receiver, db: Database, settings: Settings) -> list[dict[str, Any]]:
    run_due_jobs(db, settings, prefix="jobs.")  # a completed job's final refit, export.ready
    run_due_jobs(db, settings, prefix="webhooks.")
    found = bodies(receiver)
    for body in found:  # every payload matches its documented model
        catalog.EVENTS[body["type"]].model.model_validate(body)
    return found


def test_pausing_and_completing_a_job_tell_listening_clients(
    hooks: TestClient,
    client_account: Account,
    admin: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    register(hooks, client_account, receiver.url, ["job.paused", "job.completed", "export.ready"])
    job_id = active_job(hooks, client_account)
    hooks.post(f"/v1/jobs/{job_id}/pause", headers=client_account.headers)
    hooks.post(f"/v1/jobs/{job_id}/activate", headers=client_account.headers)
    hooks.post(f"/v1/jobs/{job_id}/pause", headers=admin.headers)
    assert hooks.post(f"/v1/jobs/{job_id}/complete", headers=client_account.headers).is_success
    sent = delivered(receiver, db, hook_settings)
    assert [(b["type"], b["data"].get("reason")) for b in sent] == [
        ("job.paused", "paused_by_client"),
        ("job.paused", "paused_by_admin"),
        ("job.completed", None),
        ("export.ready", None),
    ]
    completed, ready = sent[2]["data"], sent[3]["data"]
    assert completed["job_id"] == job_id
    assert (completed["completed_by"], completed["tasks_total"], completed["tasks_complete"]) == (
        "client",
        3,
        0,
    )
    assert ready["job_status"] == "completed"
    fit = ready["consensus_fit"]  # the final refit (over no answers here)
    assert (fit["method"], fit["version"]) == ("calibrated_dawid_skene", 1)
    assert ready["exports"] == {
        "jsonl": f"/v1/jobs/{job_id}/export?format=jsonl",
        "csv": f"/v1/jobs/{job_id}/export?format=csv",
        "label-studio": f"/v1/jobs/{job_id}/export?format=label-studio",
    }
    assert hooks.get(ready["exports"]["jsonl"], headers=client_account.headers).status_code == 200


def test_cancelling_makes_results_final_and_an_unsubscribed_client_hears_nothing(
    hooks: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    register(hooks, client_account, receiver.url, ["export.ready"])
    quiet = make_account("client")
    register(hooks, quiet, receiver.url + "/quiet", ["job.progress"])
    job_id = active_job(hooks, client_account)
    hooks.post(f"/v1/jobs/{job_id}/pause", headers=client_account.headers)  # not subscribed
    hooks.post(f"/v1/jobs/{job_id}/cancel", headers=client_account.headers)
    other_job = active_job(hooks, quiet)
    hooks.post(f"/v1/jobs/{other_job}/cancel", headers=quiet.headers)
    [ready] = delivered(receiver, db, hook_settings)
    assert ready["type"] == "export.ready"
    assert ready["data"]["job_status"] == "cancelled"
    assert len(events(db)) == 1


def test_an_import_event_carries_at_most_100_bad_rows() -> None:
    errors = [{"line": n, "detail": "bad"} for n in range(1, 301)]
    data = catalog.import_finished(
        1, run_id=2, problem={"status": 422, "errors": errors, "errors_truncated": False}
    )
    assert len(data["problem"]["errors"]) == 100
    assert data["problem"]["errors_truncated"] is True
    few = catalog.import_finished(1, run_id=None, report={"errors": errors[:3], "x": 1})
    assert few["report"] == {"errors": errors[:3], "x": 1}
    with pytest.raises(ValueError):
        catalog.import_finished(1, run_id=None)


@pytest.mark.parametrize(
    ("schema", "formats"),
    [
        (SENTIMENT, ["jsonl", "csv", "label-studio"]),
        (BOXES, ["jsonl", "csv", "label-studio", "coco"]),
        (
            {"controls": [{"name": "b", "type": "boxes", "field": "image", "labels": ["x"]}]},
            ["jsonl", "csv", "coco"],  # Label Studio needs the image size
        ),
    ],
)
def test_export_ready_names_the_formats_the_schema_allows(
    schema: dict[str, Any], formats: list[str]
) -> None:
    assert service.export_formats(schema) == formats


def test_an_inline_import_sends_its_report(
    hooks: TestClient,
    client_account: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    register(hooks, client_account, receiver.url, ["import.finished"])
    job_id = create_job(hooks, client_account)
    rows = [*reviews(3), {"external_id": "bad"}]
    response = upload(hooks, client_account, job_id, jsonl(rows), mode="skip-invalid")
    assert response.status_code == 201
    [sent] = delivered(receiver, db, hook_settings)
    data = sent["data"]
    assert (data["job_id"], data["run_id"], data["background"], data["outcome"]) == (
        job_id,
        None,
        False,
        "succeeded",
    )
    assert data["report"] == {**response.json(), "errors": data["report"]["errors"]}
    assert data["report"]["created"] == 3
    assert data["report"]["rejected"] == 1
    assert data["report"]["errors"][0]["line"] == 4
    refused = upload(hooks, client_account, job_id, jsonl([{"external_id": "bad2"}]))
    assert refused.status_code == 422
    run_due_jobs(db, hook_settings, prefix="webhooks.")
    assert len(receiver.received) == 1  # a refused inline import tells the caller, not webhooks


@pytest.fixture
def staged(
    db: Database, hook_settings: Settings, tmp_path: Path
) -> Iterator[tuple[TestClient, Settings]]:
    settings = hook_settings.model_copy(
        update={"import_inline_max_bytes": 200, "upload_dir": tmp_path / "uploads"}
    )
    runner = InProcessRunner(
        settings, db, scheduler=False, relay_interval=0.05, worker_timeout_ms=100
    )
    runner.start()
    try:
        with TestClient(create_app(settings, db)) as client:
            yield client, settings
    finally:
        runner.stop()


@pytest.mark.commits  # the import runs on the engine's threads
def test_a_background_import_sends_its_report_or_its_problem(
    staged: tuple[TestClient, Settings], client_account: Account, receiver: Receiver, db: Database
) -> None:
    client, _ = staged
    register(client, client_account, receiver.url, ["import.finished"])
    job_id = create_job(client, client_account)
    good = upload(client, client_account, job_id, jsonl(reviews(40)))
    assert good.status_code == 202
    wait_until(lambda: len(receiver.received) == 1, timeout=120, what="the first event")
    bad = upload(client, client_account, job_id, jsonl([*reviews(20, start=100), {"x": 1}]))
    assert bad.status_code == 202
    wait_until(lambda: len(receiver.received) == 2, timeout=120, what="the second event")
    succeeded, failed = bodies(receiver)
    assert succeeded["data"]["run_id"] == good.json()["run_id"]
    assert (succeeded["data"]["background"], succeeded["data"]["outcome"]) == (True, "succeeded")
    assert succeeded["data"]["report"]["created"] == 40
    assert failed["data"]["outcome"] == "failed"
    assert failed["data"]["report"] is None
    problem = failed["data"]["problem"]
    assert (problem["status"], problem["errors"][0]["line"]) == (422, 21)
    run = client.get(bad.json()["status_url"], headers=client_account.headers).json()
    assert run["state"] == "failed"
    assert run["error"]["errors"][0]["line"] == 21
    assert count_items(db, job_id) == 40  # the failed import left nothing behind


def test_progress_is_sent_off_the_hot_path_every_5_points_at_most_once_a_minute(
    hooks: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    annotator: Account,
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    assert any(p.job == background.PROGRESS_JOB for p in PERIODIC)
    register(hooks, client_account, receiver.url, ["job.progress"])
    job_id = active_job(hooks, client_account, items=20, overlap={"min": 1})
    other = make_account("client")
    unheard = active_job(hooks, other, items=2, overlap={"min": 1})

    def work(count: int) -> None:
        for assignment in claim(hooks, annotator, job_id=job_id, count=count):
            assert submit(hooks, annotator, assignment).status_code == 200

    def tick() -> list[int]:
        with db.transaction() as session:
            return background.record_job_progress(session, utcnow())

    assert tick() == []  # 0 %
    work(3)
    assert tick() == [job_id]  # 15 %
    work(2)
    assert tick() == []  # 25 %, but within the minute
    clock.travel(timedelta(minutes=1))
    assert tick() == [job_id]  # 25 %
    clock.travel(timedelta(minutes=5))
    assert tick() == []  # no change
    work(1)
    assert tick() == [job_id]  # 30 %
    sent = delivered(receiver, db, hook_settings)
    assert [b["data"]["percent_complete"] for b in sent] == [15.0, 25.0, 30.0]
    assert sent[0]["data"] == {
        "job_id": job_id,
        "status": "active",
        "tasks_total": 20,
        "tasks_complete": 3,
        "percent_complete": 15.0,
    }
    with db.read_session() as session:
        assert session.get(WebhookJobProgress, unheard) is None


def submitted_task(
    hooks: TestClient, client_account: Account, make_account: Callable[..., Account]
) -> tuple[int, int]:
    """A job with one task answered by two annotators (overlap 2): (job id, last assignment)."""
    job_id = active_job(
        hooks, client_account, items=1, overlap={"min": 2}, consensus_method="majority_vote"
    )
    last = 0
    for label in ("positive", "positive"):
        person = make_account("annotator")
        [assignment] = claim(hooks, person, job_id=job_id)
        assert submit(hooks, person, assignment, label).status_code == 200
        last = assignment["id"]
    return job_id, last


def submit_events(
    db: Database, settings: Settings, client_id: int, assignment_id: int
) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    """What the submit flow builds for webhooks, from the rows it has at hand."""
    with db.read_session() as session:
        a = session.get_one(Assignment, assignment_id)
        task = session.get_one(Task, a.task_id)
        answers = session.execute(
            select(Answer.item_id, Item.external_id, Answer.value)
            .join(Item, Item.id == Answer.item_id)
            .join(TaskItem, (TaskItem.item_id == Item.id) & (TaskItem.task_id == task.id))
            .where(Answer.assignment_id == a.id)
            .order_by(TaskItem.position)
        ).all()
        results = session.execute(
            select(
                ItemResult.item_id,
                Item.external_id,
                ItemResult.answer,
                ItemResult.confidence,
                ItemResult.answer_count,
            )
            .join(Item, Item.id == ItemResult.item_id)
            .where(ItemResult.item_id.in_([row.item_id for row in answers]))
        ).all()
        assert task.completed_at is not None
        assert a.submitted_at is not None
        pseudonym = client_pseudonym(settings.resolved_secret_key(), client_id, a.annotator_id)
        return a.job_id, [
            (
                catalog.ASSIGNMENT_SUBMITTED,
                catalog.assignment_submitted(
                    a.job_id,
                    task.id,
                    a.id,
                    pseudonym,
                    a.submitted_at,
                    a.active_seconds,
                    a.gold_score,
                    [tuple(row) for row in answers],
                ),
            ),
            (
                catalog.TASK_COMPLETED,
                catalog.task_completed(
                    a.job_id, task.id, task.completed_at, [tuple(r) for r in results]
                ),
            ),
        ]


def test_submits_tell_listening_clients_what_the_rows_say_on_both_databases(
    hooks: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    register(hooks, client_account, receiver.url, ["task.completed", "assignment.submitted"])
    job_id, assignment_id = submitted_task(hooks, client_account, make_account)
    sent = delivered(receiver, db, hook_settings)
    assert sorted(b["type"] for b in sent) == [
        "assignment.submitted",
        "assignment.submitted",
        "task.completed",
    ]
    # The last submit's two events carry exactly what the stored rows say.
    _, built = submit_events(db, hook_settings, client_account.id, assignment_id)
    submitted = next(b for b in sent if b["data"].get("assignment_id") == assignment_id)
    completed = next(b for b in sent if b["type"] == "task.completed")
    expected = dict(built)
    assert submitted["data"] == json.loads(json.dumps(expected[catalog.ASSIGNMENT_SUBMITTED]))
    assert completed["data"] == json.loads(json.dumps(expected[catalog.TASK_COMPLETED]))
    assert submitted["data"]["answers"] == [
        {
            "item_id": submitted["data"]["answers"][0]["item_id"],
            "external_id": "r0",
            "answer": {"sentiment": "positive"},
        }
    ]
    exported = hooks.get(f"/v1/jobs/{job_id}/export", headers=client_account.headers).text
    record = json.loads(exported.splitlines()[0])
    assert submitted["data"]["annotator"] == record["answers"][1]["annotator"]  # same pseudonym
    [item] = completed["data"]["items"]
    assert (item["external_id"], item["label"], item["confidence"], item["answer_count"]) == (
        "r0",
        {"sentiment": "positive"},
        1.0,
        2,
    )


def test_a_client_listening_to_nothing_gets_no_submit_events(
    hooks: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    receiver: Receiver,
    db: Database,
) -> None:
    register(hooks, client_account, receiver.url, ["job.completed"])
    submitted_task(hooks, client_account, make_account)
    assert events(db) == []


def _conninfo(db: Database) -> str:
    url = make_url(db.settings.database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@pytest.mark.postgresql
@pytest.mark.commits  # its own connection commits and rolls back
def test_the_hot_path_records_submit_events_in_its_own_sql(
    hooks: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    job_id, assignment_id = submitted_task(hooks, client_account, make_account)
    register(hooks, client_account, receiver.url, ["task.completed"])  # after the submits
    _, built = submit_events(db, hook_settings, client_account.id, assignment_id)
    pending = [hot_path.PendingEvent(t, d) for t, d in built]

    async def write(commit: bool) -> list[str]:
        async with (
            await psycopg.AsyncConnection.connect(_conninfo(db)) as conn,
            conn.transaction(force_rollback=not commit),
        ):
            return await hot_path.record_events(conn, client_account.id, job_id, pending, utcnow())

    assert len(asyncio.run(write(commit=False))) == 1  # only task.completed is listened to
    assert events(db) == []  # rolled back with its cause
    [public_id] = asyncio.run(write(commit=True))
    [sent] = delivered(receiver, db, hook_settings)
    assert (sent["id"], sent["type"]) == (public_id, "task.completed")
    assert sent["data"]["items"][0]["label"] == {"sentiment": "positive"}
    assert receiver.received[0].headers["webhook-id"] == public_id


@pytest.mark.postgresql
@pytest.mark.commits  # its own connection commits and rolls back
def test_the_event_ctes_fold_into_another_statement_and_write_nothing_without_events(
    db: Database, client_account: Account
) -> None:
    statement = (
        f"WITH {hot_path.EVENT_CTES}, work AS (SELECT 1 AS done) "
        "SELECT (SELECT count(*) FROM webhook_fan_out), (SELECT done FROM work)"
    )

    async def run(events_: list[hot_path.PendingEvent]) -> tuple[Any, ...] | None:
        params, _ = hot_path.event_params(client_account.id, None, events_, utcnow())
        async with await psycopg.AsyncConnection.connect(_conninfo(db)) as conn:
            cursor = await conn.execute(statement, params)
            return await cursor.fetchone()

    assert asyncio.run(run([])) == (0, 1)
    data = catalog.job_paused(1, utcnow(), "paused_by_client")
    assert asyncio.run(run([hot_path.PendingEvent(catalog.JOB_PAUSED, data)])) == (1, 1)
    [event] = events(db)
    assert (event.type, event.version, event.client_id, event.job_id) == (
        "job.paused",
        1,
        client_account.id,
        None,
    )
