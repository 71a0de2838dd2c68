"""Appeals: an annotator appeals a rejection or a gold judgment once, with a message; an admin
upholds or overturns it; overturning restores the assignment and recomputes the stats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.db import Database
from app.core.settings import Settings
from app.models import Answer, AssignmentStatus, Item, Task, TaskStatus
from tests.jobs.factories import active_job
from tests.quality.factories import actions_of, assignment, do_tasks, refresh
from tests.support import Account, assert_problem


def appeal(client: TestClient, who: Account, assignment_id: int, kind: str = "rejection") -> Any:
    return client.post(
        "/v1/annotator/appeals",
        json={"assignment_id": assignment_id, "kind": kind, "message": "I followed the guide"},
        headers=who.headers,
    )


def resolve(client: TestClient, admin: Account, appeal_id: int, **body: Any) -> Any:
    return client.post(
        f"/v1/admin/appeals/{appeal_id}/resolve",
        json={"note": "checked against the guide", **body},
        headers=admin.headers,
    )


def job_stats(client: TestClient, who: Account, job_id: int) -> dict[str, Any]:
    mine = client.get("/v1/annotator/quality", headers=who.headers).json()
    [row] = [s for s in mine["stats"] if s["scope"] == "job" and s["key"] == str(job_id)]
    return dict(row)


def test_an_overturned_rejection_restores_the_assignment_and_the_stats(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    make_account: Callable[..., Account],
    admin: Account,
    db: Database,
    settings: Settings,
) -> None:
    job_id = active_job(client, client_account, items=2, overlap={"min": 1})
    kept, contested = (t["id"] for t in do_tasks(client, annotator, job_id, 2))
    client.post(
        f"/v1/quality/jobs/{job_id}/approve",
        json={"assignment_ids": [kept]},
        headers=client_account.headers,
    )
    client.post(
        f"/v1/quality/jobs/{job_id}/reject",
        json={"assignment_ids": [contested], "reason": "mislabelled"},
        headers=client_account.headers,
    )
    refresh(db, settings, annotator)
    before = job_stats(client, annotator, job_id)
    assert (before["approved"], before["rejected"], before["approval_rate"]) == (1, 1, 0.5)

    filed = appeal(client, annotator, contested)
    assert filed.status_code == 201, filed.text
    assert (filed.json()["status"], filed.json()["kind"]) == ("open", "rejection")
    assert_problem(appeal(client, annotator, contested), 409, "appeal-exists")
    assert_problem(appeal(client, annotator, kept), 409, "nothing-to-appeal")
    assert_problem(appeal(client, make_account("annotator"), contested), 404)
    queue = client.get("/v1/admin/appeals", headers=admin.headers).json()["items"]
    assert [(a["id"], a["annotator_id"], a["message"]) for a in queue] == [
        (filed.json()["id"], annotator.id, "I followed the guide")
    ]

    done = resolve(client, admin, filed.json()["id"], outcome="overturned")
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["resolved_by_id"]) == ("overturned", admin.id)
    assert assignment(db, contested).status is AssignmentStatus.approved
    with db.read_session() as session:
        task = session.scalars(select(Task).where(Task.id == assignment(db, contested).task_id))
        restored = task.one()
    assert (restored.status, restored.done_count) == (TaskStatus.complete, 1)
    after = job_stats(client, annotator, job_id)  # recomputed by the resolution itself
    assert (after["approved"], after["rejected"], after["approval_rate"]) == (2, 0, 1.0)
    [mine] = client.get("/v1/annotator/appeals", headers=annotator.headers).json()
    assert (mine["status"], mine["resolution"]) == ("overturned", "checked against the guide")
    assert "resolved_by_id" not in mine
    history = client.get("/v1/annotator/quality/decisions", headers=annotator.headers).json()
    assert [(d["new_status"], d["source"]) for d in history["items"]][-1] == ("approved", "appeal")
    again = resolve(client, admin, filed.json()["id"], outcome="upheld")
    assert_problem(again, 409, "appeal-resolved")
    assert client.get("/v1/admin/appeals", headers=admin.headers).json()["items"] == []


def test_an_upheld_appeal_leaves_the_judgment_as_it_was(
    client: TestClient, client_account: Account, annotator: Account, admin: Account, db: Database
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    [task] = do_tasks(client, annotator, job_id, 1)
    client.post(
        f"/v1/quality/jobs/{job_id}/reject",
        json={"assignment_ids": [task["id"]], "reason": "mislabelled"},
        headers=client_account.headers,
    )
    filed = appeal(client, annotator, task["id"]).json()
    assert_problem(resolve(client, admin, filed["id"], outcome="overturned", gold_score=1.0), 422)
    upheld = resolve(client, admin, filed["id"], outcome="upheld")
    assert upheld.json()["status"] == "upheld"
    assert assignment(db, task["id"]).status is AssignmentStatus.rejected
    assert_problem(appeal(client, annotator, task["id"]), 409, "appeal-exists")  # once


def test_an_overturned_gold_judgment_is_rescored_and_a_removal_it_caused_is_reversed(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    admin: Account,
    db: Database,
    settings: Settings,
) -> None:
    job_id = active_job(
        client, client_account, items=4, gold=4, instant_feedback=True, overlap={"min": 1}
    )
    client.put(
        f"/v1/quality/jobs/{job_id}/rules",
        json={"removal_min_gold_answers": 2, "removal_gold_accuracy": 0.6},
        headers=client_account.headers,
    )
    done = do_tasks(client, annotator, job_id, 2)  # each with a control item, answered wrong
    gold = [t for t in done if t["gold"]]
    assert [t["feedback"][0]["score"] for t in gold] == [0.0, 0.0]  # shown at submit
    assert refresh(db, settings, annotator) == []  # the second gold submit removed them
    [removal] = actions_of(db, annotator)
    assert removal.kind.value == "removal"

    first = appeal(client, annotator, gold[0]["id"], kind="gold")
    assert first.status_code == 201, first.text
    assert first.json()["gold_score_before"] == 0.0
    cleared = resolve(client, admin, first.json()["id"], outcome="overturned")
    assert (cleared.json()["gold_score_after"], cleared.json()["original_scores"]) == (
        None,
        {str(answer_id(db, gold[0]["id"])): 0.0},
    )
    # One wrong control answer left: too few to judge, so the removal is reversed at once.
    stats = job_stats(client, annotator, job_id)
    assert (stats["gold_answers"], stats["gold_accuracy"]) == (1, 0.0)
    [action] = client.get("/v1/annotator/quality/actions", headers=annotator.headers).json()[
        "items"
    ]
    assert (action["status"], action["resolution"]) == (
        "reversed",
        f"Gold judgment overturned on appeal {first.json()['id']}.",
    )
    eligible = client.get(f"/v1/annotator/jobs/{job_id}/eligibility", headers=annotator.headers)
    assert eligible.json()["eligible"] is True

    second = appeal(client, annotator, gold[1]["id"], kind="gold").json()
    resolve(client, admin, second["id"], outcome="overturned", gold_score=1.0)
    assert assignment(db, gold[1]["id"]).gold_score == 1.0
    stats = job_stats(client, annotator, job_id)
    assert (stats["gold_answers"], stats["gold_accuracy"]) == (1, 1.0)


def test_gold_judgments_are_appealable_only_where_they_were_shown(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    """Without instant feedback annotators are never told which items were control items; the
    appeal route answers the same for a control task and any other."""
    job_id = active_job(client, client_account, items=2, gold=1, overlap={"min": 1})
    done = do_tasks(client, annotator, job_id, 2)
    assert [t["gold"] for t in done] == [True, False]
    answers = [appeal(client, annotator, t["id"], kind="gold") for t in done]
    bodies = [assert_problem(a, 409, "nothing-to-appeal") for a in answers]
    assert bodies[0]["detail"] == bodies[1]["detail"]


def answer_id(db: Database, assignment_id: int) -> int:
    with db.read_session() as session:
        return session.scalars(
            select(Answer.id)
            .join(Item, Item.id == Answer.item_id)
            .where(Answer.assignment_id == assignment_id, Item.is_gold.is_(True))
        ).one()
