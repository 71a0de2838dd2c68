"""An empty `next` says why, per job asked (issue 21 item 2; issue 22 item 16 for paused jobs)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.db import Database
from app.models import Item, Job, Task, TaskItem
from payouts.escrow import budget_of, pause_for_funds
from tests.jobs.factories import active_job, draft_job, reviews
from tests.support import Account, assert_problem


def next_(client: TestClient, who: Account, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/assignments/next", json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out


def reasons(client: TestClient, who: Account, **body: Any) -> dict[int, dict[str, Any]]:
    out = next_(client, who, **body)
    assert out["assignments"] == []
    return {r["job_id"]: r for r in out["empty_reasons"]}


def submit(client: TestClient, who: Account, assignment: dict[str, Any]) -> None:
    answers = [{"sentiment": "positive"} for _ in assignment["items"]]
    response = client.post(
        f"/v1/assignments/{assignment['id']}/submit", json={"answers": answers}, headers=who.headers
    )
    assert response.status_code == 200, response.text


def test_a_claim_that_gets_work_carries_no_reasons(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    active_job(client, client_account)
    out = next_(client, annotator)
    assert len(out["assignments"]) == 1
    assert out["empty_reasons"] is None


def test_a_paused_job_answers_job_paused_not_an_error(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account)
    client.post(f"/v1/jobs/{job_id}/pause", headers=client_account.headers)
    [why] = reasons(client, annotator, job_id=job_id).values()
    assert (why["job_id"], why["reason"]) == (job_id, "job-paused")
    # Without a job id a paused job is not asked: it is not among the active jobs.
    assert reasons(client, annotator) == {}


def test_unknown_and_draft_jobs_are_404(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    draft = draft_job(client, client_account)
    for job_id in (draft, draft + 1000):
        response = client.post(
            "/v1/assignments/next", json={"job_id": job_id}, headers=annotator.headers
        )
        assert_problem(response, 404, "not-found")


def test_a_job_paused_for_money_answers_escrow_exhausted(
    client: TestClient, client_account: Account, annotator: Account, db: Database
) -> None:
    job_id = active_job(client, client_account)
    with db.transaction() as session:
        job = session.get_one(Job, job_id)
        budget = budget_of(session, job_id, lock=True)
        assert budget is not None
        assert pause_for_funds(session, job, budget, "fair-pay top-ups owed")
    [why] = reasons(client, annotator, job_id=job_id).values()
    assert why["reason"] == "escrow-exhausted"
    assert "fair-pay top-ups owed" in why["detail"]


def test_every_active_job_gets_its_own_reason(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    make_account: Callable[..., Account],
) -> None:
    done = active_job(client, client_account, items=1, overlap={"min": 2})
    picky = active_job(client, client_account, items=1, min_reputation=0.9)
    leased = active_job(client, client_account, items=1, overlap={"min": 1}, priority=5)
    limited = active_job(client, client_account, items=3, max_tasks_per_annotator=1)
    other = make_account("annotator")
    [held] = next_(client, other, job_id=leased)["assignments"]
    submit(client, annotator, next_(client, annotator, job_id=done)["assignments"][0])
    submit(client, annotator, next_(client, annotator, job_id=limited)["assignments"][0])

    why = reasons(client, annotator)
    assert set(why) == {done, picky, leased, limited}
    assert why[done]["reason"] == "answered-every-task"
    assert why[picky]["reason"] == "not-eligible"
    [rule] = why[picky]["eligibility"]
    assert (rule["code"], rule["required"]) == ("reputation_too_low", 0.9)
    assert why[leased]["reason"] == "open-slots-leased"
    ends = datetime.fromisoformat(why[leased]["leases_end_at"])
    assert ends == datetime.fromisoformat(held["lease_expires_at"])
    assert why[limited]["reason"] == "task-limit-reached"
    assert all(r["leases_end_at"] is None for j, r in why.items() if j != leased)
    # Asking for a job at its task limit is the same empty queue, not a 403.
    assert reasons(client, annotator, job_id=limited)[limited]["reason"] == "task-limit-reached"
    # A job whose tasks are all complete has none open.
    submit(client, other, held)
    assert reasons(client, annotator, job_id=leased)[leased]["reason"] == "no-open-tasks"


def test_gold_already_seen_in_every_task_left_is_named(
    client: TestClient, client_account: Account, annotator: Account, db: Database
) -> None:
    rows = [{"text": "control", "gold_answer": {"sentiment": "neutral"}}, *reviews(4)]
    job_id = active_job(client, client_account, rows=rows, items_per_task=2, gold_ratio=0.5)
    # Tasks split before gold was chosen at claim held their gold: both tasks hold the one
    # control item beside two reviews, so one is all the annotator may do.
    with db.transaction() as session:
        control = session.scalars(
            select(Item.id).where(Item.job_id == job_id, Item.is_gold.is_(True))
        ).one()
        for task in session.scalars(select(Task).where(Task.job_id == job_id)):
            task.has_gold = True
            session.add(TaskItem(task_id=task.id, position=2, item_id=control))
    [got] = next_(client, annotator, job_id=job_id, count=10)["assignments"]
    assert len(got["items"]) == 3  # the baked-in control item, and no second one added
    submit(client, annotator, got)
    why = reasons(client, annotator, job_id=job_id)[job_id]
    assert (why["reason"], why["eligibility"]) == ("gold-exhausted", None)


def test_gold_chosen_at_claim_never_stops_an_annotator(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    rows = [{"text": "control", "gold_answer": {"sentiment": "neutral"}}, *reviews(4)]
    job_id = active_job(client, client_account, rows=rows, items_per_task=2, gold_ratio=0.5)
    got = next_(client, annotator, job_id=job_id, count=10)["assignments"]
    assert sorted(len(a["items"]) for a in got) == [2, 3]  # the control item once, then none
    for a in got:
        submit(client, annotator, a)
    why = reasons(client, annotator, job_id=job_id)[job_id]
    assert why["reason"] == "answered-every-task"


def test_the_reasons_are_documented_in_openapi(openapi_document: dict[str, Any]) -> None:
    schemas = openapi_document["components"]["schemas"]
    reason = schemas["EmptyQueueOut"]["properties"]["reason"]
    assert set(reason["enum"]) >= {
        "job-paused",
        "no-open-tasks",
        "open-slots-leased",
        "answered-every-task",
        "task-limit-reached",
        "not-eligible",
        "escrow-exhausted",
    }
    assert "empty_reasons" in schemas["NextResponse"]["properties"]


def progress(client: TestClient, owner: Account, job_id: int) -> dict[str, Any]:
    response = client.get(f"/v1/jobs/{job_id}/progress", headers=owner.headers)
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out


def test_progress_says_when_a_job_is_starved_and_gives_no_estimate(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=2, overlap={"min": 1})
    quiet = progress(client, client_account, job_id)
    assert (quiet["state"], quiet["estimated_completion"]) == ("starved", None)
    assert [r["code"] for r in quiet["state_reasons"]] == ["no-recent-answers"]
    assert quiet["no_estimate_reason"]

    [first] = next_(client, annotator)["assignments"]
    submit(client, annotator, first)
    moving = progress(client, client_account, job_id)
    assert (moving["state"], moving["state_reasons"], moving["no_estimate_reason"]) == (
        "running",
        [],
        None,
    )
    assert moving["estimated_completion"] is not None

    client.post(f"/v1/jobs/{job_id}/pause", headers=client_account.headers)
    paused = progress(client, client_account, job_id)
    assert (paused["state"], paused["estimated_completion"]) == ("starved", None)
    assert [r["code"] for r in paused["state_reasons"]] == ["job-paused"]


def test_progress_waits_for_leases_then_completes(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    [held] = next_(client, annotator)["assignments"]
    waiting = progress(client, client_account, job_id)
    assert waiting["state"] == "waiting-for-leases"
    [why] = waiting["state_reasons"]
    assert why["code"] == "open-slots-leased"
    assert datetime.fromisoformat(why["leases_end_at"]) == datetime.fromisoformat(
        held["lease_expires_at"]
    )
    assert waiting["estimated_completion"] is None  # nothing submitted yet
    submit(client, annotator, held)
    done = progress(client, client_account, job_id)
    assert (done["state"], done["no_estimate_reason"]) == ("complete", None)
    assert done["estimated_completion"] is not None


def test_count_has_one_maximum_in_openapi_and_beyond_it_a_422(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    openapi_document: dict[str, Any],
) -> None:
    count = openapi_document["components"]["schemas"]["NextRequest"]["properties"]["count"]
    assert (count["minimum"], count["maximum"]) == (1, 10)
    active_job(client, client_account, items=12, overlap={"min": 1})
    for too_many in (11, 100):
        response = client.post(
            "/v1/assignments/next", json={"count": too_many}, headers=annotator.headers
        )
        problem = assert_problem(response, 422, "validation-failed")
        assert "count" in str(problem["errors"])
    mine = client.get("/v1/assignments", headers=annotator.headers).json()["items"]
    assert mine == []  # the refusals claimed nothing
    assert len(next_(client, annotator, count=10)["assignments"]) == 10
