"""Jobs finish themselves: once every task is complete the job completes (`automatic`), with
the final consensus refit, unspent escrow released, and `job.completed` then `export.ready`
naming the fit; an export right after names that fit and has its consensus. A job setting turns
it off. On both databases (the PostgreSQL store queues the completion with its own SQL)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.background import enqueue
from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from app.models import Answer, ConsensusFit, ItemResult
from app.webhooks import catalog
from payouts import ledger
from tests.jobs.factories import active_job, jsonl, reviews, upload
from tests.outbox import run_due_jobs
from tests.payouts.factories import balance, post_earnings
from tests.routing.test_claim_and_submit import claim, submit
from tests.support import Account
from tests.webhooks.receiver import Receiver, running_receiver
from tests.webhooks.support import register
from workers.scheduler import PERIODIC

KEYS = ("positive", "negative", "neutral")
# Controls whose answer keys vary, so the fit can tell an annotator who always says the same
# from one who reads the text.
CONTROLS = [
    {"external_id": f"g{n}", "text": f"control {n}", "gold_answer": {"sentiment": KEYS[n % 3]}}
    for n in range(6)
]
SPAM, CAREFUL = "negative", "positive"


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"webhook_allowed_networks": ["127.0.0.1/32"], "webhook_timeout_seconds": 0.5}
    )


@pytest.fixture
def hooks(hook_settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(hook_settings, db)) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def work_through(client: TestClient, people: list[tuple[Account, str]], job_id: int) -> None:
    """Each annotator in turn claims and answers every task they can: the careful one answers
    controls by their key, a spammer always the same; regular items get each one's label."""
    for person, label in people:
        while found := claim(client, person, job_id=job_id):
            [assignment] = found
            answers = []
            for item in assignment[
                "items"
            ]:  # a control item may come with the task (claim-time gold)
                text = item["data"]["text"]
                answer = label
                if text.startswith("control") and label == CAREFUL:
                    answer = KEYS[int(text.split()[1]) % 3]
                answers.append({"sentiment": answer})
            submitted = client.post(
                f"/v1/assignments/{assignment['id']}/submit",
                json={"answers": answers},
                headers=person.headers,
            )
            assert submitted.status_code == 200, submitted.text


def export(client: TestClient, owner: Account, job_id: int) -> tuple[Any, list[dict[str, Any]]]:
    response = client.get(f"/v1/jobs/{job_id}/export", headers=owner.headers)
    assert response.status_code == 200
    return response.headers, [json.loads(line) for line in response.text.splitlines()]


def status_of(client: TestClient, owner: Account, job_id: int) -> str:
    status: str = client.get(f"/v1/jobs/{job_id}", headers=owner.headers).json()["status"]
    return status


def test_the_last_answer_completes_the_job_and_an_export_right_after_has_the_final_fit(
    hooks: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    receiver: Receiver,
    db: Database,
    hook_settings: Settings,
) -> None:
    register(hooks, client_account, receiver.url, ["job.completed", "export.ready"])
    job_id = active_job(
        hooks,
        client_account,
        rows=reviews(6) + CONTROLS,
        gold_ratio=0.5,
        overlap={"min": 3},
        consensus_method="dawid_skene",
    )
    people = [(make_account("annotator"), SPAM) for _ in range(2)]
    work_through(hooks, [*people, (make_account("annotator"), CAREFUL)], job_id)
    # Online, before any fit: a vote, 2 of 3 ("negative", as the spammers say).
    headers, online = export(hooks, client_account, job_id)
    assert headers["tessera-consensus-fit-version"] == "none"
    assert "tessera-consensus-fitted-at" not in headers
    assert {(r["consensus"]["sentiment"], round(r["confidence"], 4)) for r in online} == {
        ("negative", 0.7935)
    }

    # After the last submit committed, its completion was queued; the background runs it.
    assert status_of(hooks, client_account, job_id) == "active"
    run_due_jobs(db, hook_settings)
    assert status_of(hooks, client_account, job_id) == "completed"

    sent = [json.loads(r.body) for r in receiver.received]
    for body in sent:
        catalog.EVENTS[body["type"]].model.model_validate(body)
    assert [b["type"] for b in sent] == ["job.completed", "export.ready"]
    completed, ready = sent[0]["data"], sent[1]["data"]
    assert completed["completed_by"] == "automatic"
    # one task per regular item: control items come with the claims, not in tasks of their own
    assert completed["tasks_complete"] == completed["tasks_total"] == len(online)
    with db.read_session() as session:
        fit = session.get_one(ConsensusFit, job_id)
        answers = session.query(Answer).filter(Answer.job_id == job_id).count()
        stored = {
            r.item_id: (r.answer, r.confidence, r.method)
            for r in session.scalars(select(ItemResult).where(ItemResult.job_id == job_id))
        }
    assert (fit.method, fit.version, fit.answers) == ("dawid_skene", 1, answers)  # every answer
    assert ready["consensus_fit"]["method"] == "dawid_skene"
    assert ready["consensus_fit"]["version"] == 1

    # The export right after names the final fit and has its consensus, not the vote's.
    headers, final = export(hooks, client_account, job_id)
    assert headers["tessera-consensus-method"] == "dawid_skene"
    assert headers["tessera-consensus-fit-version"] == "1"
    assert headers["tessera-consensus-fitted-at"] == ready["consensus_fit"]["fitted_at"]
    assert {
        r["item_id"]: (r["consensus"], pytest.approx(r["confidence"]), "dawid_skene") for r in final
    } == (stored)
    assert all(r["confidence"] > 0.81 for r in final)  # the fit's, not the vote's 0.79


def test_completing_by_itself_releases_unspent_escrow(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    job_id = active_job(client, client_account, items=2, overlap={"min": 1, "max": 3})
    assert balance(db, ledger.job_escrow(job_id, "usd")) > 0
    work_through(client, [(make_account("annotator"), "positive")], job_id)
    assert post_earnings(db) == 2  # the earnings poster's run: the work is paid from escrow
    run_due_jobs(db)
    assert status_of(client, client_account, job_id) == "completed"
    assert balance(db, ledger.job_escrow(job_id, "usd")) == 0
    spend = client.get(f"/v1/jobs/{job_id}/spend", headers=client_account.headers).json()
    assert spend["closed"] is True
    assert spend["spent_micros"] == 2 * 60_000
    assert spend["released_micros"] == 2 * 2 * 60_000  # the slots overlap.max kept in reserve


def test_a_job_with_auto_complete_off_stays_active_until_turned_on(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1}, auto_complete=False)
    job = client.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    assert job["auto_complete"] is False
    work_through(client, [(make_account("annotator"), "positive")], job_id)
    run_due_jobs(db)
    assert status_of(client, client_account, job_id) == "active"

    turned = client.patch(
        f"/v1/jobs/{job_id}", json={"auto_complete": True}, headers=client_account.headers
    )
    assert turned.json()["auto_complete"] is True
    # The periodic check completes what no submit's own check could.
    [sweep] = [p for p in PERIODIC if p.job == "jobs.complete_finished"]
    assert sweep.every is not None
    assert sweep.every.total_seconds() <= 60
    with db.transaction() as session:
        enqueue(session, sweep.job)
    run_due_jobs(db)
    assert status_of(client, client_account, job_id) == "completed"


def test_a_job_completes_only_when_every_task_is_complete(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    job_id = active_job(client, client_account, items=2, overlap={"min": 2})
    first, second = make_account("annotator"), make_account("annotator")
    work_through(client, [(first, "positive")], job_id)  # each task has 1 of 2 answers
    run_due_jobs(db)
    assert status_of(client, client_account, job_id) == "active"
    [assignment] = claim(client, second, job_id=job_id)
    assert submit(client, second, assignment).status_code == 200  # one task complete
    run_due_jobs(db)
    assert status_of(client, client_account, job_id) == "active"
    [assignment] = claim(client, second, job_id=job_id)
    assert submit(client, second, assignment).status_code == 200  # the last one
    # New items imported before the queued completion runs: the job has work again.
    assert upload(client, client_account, job_id, jsonl(reviews(1, start=5))).status_code == 201
    run_due_jobs(db)
    assert status_of(client, client_account, job_id) == "active"
    work_through(client, [(first, "positive"), (second, "positive")], job_id)
    run_due_jobs(db)
    assert status_of(client, client_account, job_id) == "completed"
