"""Annotators see their own finished work: items with their answers, status, the review's
reason and the pay, filterable and paged; they appeal from there; and a review counts in their
figures at once (a queued refresh), not only at the periodic one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from app.core.db import Database
from app.quality.after_review import REFRESH_REVIEWED_JOB
from tests.jobs.factories import active_job
from tests.outbox import run_due_jobs
from tests.quality.factories import do_tasks
from tests.quality.test_review import approve, reject
from tests.support import Account


def my_work(client: TestClient, who: Account, query: str = "") -> dict[str, Any]:
    response = client.get(f"/v1/annotator/work{query}", headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_annotators_see_their_work_with_items_answers_review_and_pay(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=3, overlap={"min": 1}, rate=50_000)
    ids = [t["id"] for t in do_tasks(client, annotator, job_id, 3, label="negative")]
    assert approve(client, client_account, job_id, ids[:1]).status_code == 200
    assert reject(client, client_account, job_id, ids[1:2], reason="too hasty").status_code == 200

    page = my_work(client, annotator)
    by_id = {w["id"]: w for w in page["items"]}
    assert list(by_id) == ids
    approved, rejected, waiting = (by_id[i] for i in ids)
    assert approved["status"] == "approved"
    assert approved["review"]["status"] == "approved"
    assert approved["items"][0]["answer"] == {"sentiment": "negative"}
    assert approved["items"][0]["data"]["text"].startswith("review number")
    assert approved["pay_micros"] == 50_000
    assert (rejected["status"], rejected["review"]["reason"]) == ("rejected", "too hasty")
    assert rejected["pay_micros"] == 0  # the rejection reversed it
    assert rejected["appealable"] == ["rejection"]
    assert approved["appealable"] == []
    assert waiting["status"] == "submitted"
    assert waiting["review"] is None
    assert approved["job_title"]
    assert approved["job_id"] == job_id

    rejected_only = my_work(client, annotator, "?status=rejected")["items"]
    assert [w["id"] for w in rejected_only] == [ids[1]]
    assert my_work(client, annotator, f"?job_id={job_id + 1000}")["items"] == []
    first = my_work(client, annotator, "?limit=2")
    assert len(first["items"]) == 2
    assert first["next_cursor"] == ids[1]
    rest = my_work(client, annotator, f"?limit=2&after={first['next_cursor']}")
    assert [w["id"] for w in rest["items"]] == [ids[2]]


def test_an_annotator_appeals_from_their_work_list_and_sees_the_appeal_there(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    [task] = do_tasks(client, annotator, job_id, 1)
    reject(client, client_account, job_id, [task["id"]], reason="wrong label")
    [work] = my_work(client, annotator)["items"]
    appeal = client.post(
        "/v1/annotator/appeals",
        json={"assignment_id": work["id"], "kind": work["appealable"][0], "message": "it was ok"},
        headers=annotator.headers,
    )
    assert appeal.status_code == 201, appeal.text
    [work] = my_work(client, annotator)["items"]
    assert work["appealable"] == []
    assert [(a["kind"], a["status"]) for a in work["appeals"]] == [("rejection", "open")]


def test_nobody_sees_anyone_elses_work_nor_gold(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    make_account: Callable[..., Account],
) -> None:
    job_id = active_job(client, client_account, items=2, gold=2, overlap={"min": 1})
    do_tasks(client, annotator, job_id, 4)
    other = make_account("annotator")
    assert my_work(client, other)["items"] == []
    text = client.get("/v1/annotator/work", headers=annotator.headers).text
    assert "control" in text  # gold items are shown like any other...
    for leak in ("is_gold", "gold_answer", "item_id", "prelabel"):
        assert leak not in text  # ...with nothing that gives them away
    assert '"gold_score":null' in text.replace(" ", "")  # the job shows no feedback
    assert client.get("/v1/annotator/work", headers=client_account.headers).status_code == 403


def test_a_review_counts_in_the_annotators_figures_at_once(
    client: TestClient, client_account: Account, annotator: Account, db: Database
) -> None:
    job_id = active_job(client, client_account, items=2, overlap={"min": 1})
    ids = [t["id"] for t in do_tasks(client, annotator, job_id, 2)]
    assert approve(client, client_account, job_id, ids[:1]).status_code == 200
    assert reject(client, client_account, job_id, ids[1:], reason="not it").status_code == 200
    assert run_due_jobs(db, names=[REFRESH_REVIEWED_JOB]) == [REFRESH_REVIEWED_JOB] * 2
    quality = client.get("/v1/annotator/quality", headers=annotator.headers).json()
    [overall] = [s for s in quality["stats"] if s["scope"] == "overall"]
    assert (overall["approved"], overall["rejected"], overall["approval_rate"]) == (1, 1, 0.5)
    assert quality["computed_at"] is not None
