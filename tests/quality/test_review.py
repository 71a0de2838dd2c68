"""Clients approve and reject submitted work of their own jobs, one or in bulk, with reasons;
every status change passes through the one review hook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.db import Database
from app.models import AssignmentStatus, ReviewDecision, Task, TaskStatus
from app.quality import review
from tests.jobs.factories import active_job
from tests.quality.factories import assignment, do_task, do_tasks
from tests.support import Account, assert_problem


def approve(client: TestClient, who: Account, job_id: int, ids: list[int], **body: Any) -> Any:
    return client.post(
        f"/v1/quality/jobs/{job_id}/approve",
        json={"assignment_ids": ids, **body},
        headers=who.headers,
    )


def reject(client: TestClient, who: Account, job_id: int, ids: list[int], **body: Any) -> Any:
    return client.post(
        f"/v1/quality/jobs/{job_id}/reject",
        json={"assignment_ids": ids, **body},
        headers=who.headers,
    )


def decisions(db: Database) -> list[ReviewDecision]:
    with db.read_session() as session:
        return list(session.scalars(select(ReviewDecision).order_by(ReviewDecision.id)))


def test_a_client_approves_and_rejects_in_bulk_and_the_annotator_sees_the_reasons(
    client: TestClient, client_account: Account, annotator: Account, db: Database
) -> None:
    job_id = active_job(client, client_account, items=4, overlap={"min": 1})
    ids = [t["id"] for t in do_tasks(client, annotator, job_id, 4)]
    waiting = client.get(f"/v1/quality/jobs/{job_id}/assignments", headers=client_account.headers)
    assert waiting.status_code == 200, waiting.text
    assert sorted(a["id"] for a in waiting.json()["items"]) == sorted(ids)
    assert waiting.json()["items"][0]["answers"][0]["answer"] == {"sentiment": "positive"}

    ok = approve(client, client_account, job_id, ids[:2], reason="fine work")
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"status": "approved", "changed": ids[:2], "unchanged": []}
    bad = reject(client, client_account, job_id, ids[2:], reason="ignored the instructions")
    assert bad.json() == {"status": "rejected", "changed": ids[2:], "unchanged": []}

    assert [assignment(db, i).status for i in ids] == ["approved"] * 2 + ["rejected"] * 2
    rejected = client.get(
        f"/v1/quality/jobs/{job_id}/assignments?status=rejected", headers=client_account.headers
    ).json()["items"]
    assert {a["review"]["reason"] for a in rejected} == {"ignored the instructions"}
    mine = client.get("/v1/annotator/quality/decisions", headers=annotator.headers).json()
    assert [(d["new_status"], d["reason"]) for d in mine["items"]] == [
        ("approved", "fine work"),
        ("approved", "fine work"),
        ("rejected", "ignored the instructions"),
        ("rejected", "ignored the instructions"),
    ]
    assert all("actor_id" not in d for d in mine["items"])  # who reviewed is not shown


@pytest.mark.parametrize("reason", [None, "", "  ", "x"])
def test_rejecting_needs_a_reason(
    client: TestClient, client_account: Account, annotator: Account, db: Database, reason: Any
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    [task] = do_tasks(client, annotator, job_id, 1)
    body = {} if reason is None else {"reason": reason}
    assert_problem(reject(client, client_account, job_id, [task["id"]], **body), 422)
    assert assignment(db, task["id"]).status is AssignmentStatus.submitted


def test_a_rejection_gives_the_slot_back_for_someone_else(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    first, second = make_account("annotator"), make_account("annotator")
    [task] = do_tasks(client, first, job_id, 1)
    assert reject(client, client_account, job_id, [task["id"]], reason="wrong").status_code == 200
    with db.read_session() as session:
        reopened = session.scalars(select(Task)).one()
    assert (reopened.status, reopened.done_count, reopened.completed_at) == (
        TaskStatus.open,
        0,
        None,
    )
    assert do_task(client, first, job_id) is None  # never the same task twice
    assert do_task(client, second, job_id) is not None
    with db.read_session() as session:
        done = session.scalars(select(Task)).one()
    assert (done.status, done.done_count) == (TaskStatus.complete, 1)


def test_approved_work_is_final_and_a_bulk_review_is_all_or_nothing(
    client: TestClient, client_account: Account, annotator: Account, db: Database
) -> None:
    job_id = active_job(client, client_account, items=2, overlap={"min": 1})
    first, second = (t["id"] for t in do_tasks(client, annotator, job_id, 2))
    approve(client, client_account, job_id, [first])
    refused = reject(client, client_account, job_id, [second, first], reason="changed my mind")
    body = assert_problem(refused, 409, "assignment-already-approved")
    assert body["errors"] == [{"pointer": "#/assignment_ids/1", "detail": "approved"}]
    assert assignment(db, second).status is AssignmentStatus.submitted  # nothing changed


def test_ids_that_are_not_the_jobs_assignments_are_404_and_change_nothing(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    annotator: Account,
    db: Database,
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    other_job = active_job(client, client_account, items=1, overlap={"min": 1})
    [mine] = do_tasks(client, annotator, job_id, 1)
    [elsewhere] = do_tasks(client, annotator, other_job, 1)
    body = assert_problem(
        approve(client, client_account, job_id, [mine["id"], elsewhere["id"], 10**9]), 404
    )
    assert [e["pointer"] for e in body["errors"]] == ["#/assignment_ids/1", "#/assignment_ids/2"]
    assert assignment(db, mine["id"]).status is AssignmentStatus.submitted


def test_work_still_in_progress_cannot_be_reviewed(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    claimed = client.post(
        "/v1/assignments/next", json={"job_id": job_id}, headers=annotator.headers
    )
    [active] = claimed.json()["assignments"]
    body = assert_problem(
        approve(client, client_account, job_id, [active["id"]]), 409, "assignment-not-submitted"
    )
    assert body["errors"] == [{"pointer": "#/assignment_ids/0", "detail": "active"}]


def test_clients_review_only_their_own_jobs(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    annotator: Account,
    admin: Account,
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    [task] = do_tasks(client, annotator, job_id, 1)
    stranger = make_account("client")
    for path, method, body in [
        ("assignments", "get", None),
        ("report", "get", None),
        ("rules", "get", None),
        ("rules", "put", {}),
        ("approve", "post", {"assignment_ids": [task["id"]]}),
        ("reject", "post", {"assignment_ids": [task["id"]], "reason": "nope"}),
    ]:
        url = f"/v1/quality/jobs/{job_id}/{path}"
        assert_problem(client.request(method, url, json=body, headers=stranger.headers), 404)
        assert_problem(client.request(method, url, json=body, headers=annotator.headers), 403)
    # An admin may act on any job.
    assert approve(client, admin, job_id, [task["id"]]).status_code == 200


def test_repeating_a_decision_changes_nothing(
    client: TestClient, client_account: Account, annotator: Account, db: Database
) -> None:
    job_id = active_job(client, client_account, items=2, overlap={"min": 1})
    first, second = (t["id"] for t in do_tasks(client, annotator, job_id, 2))
    approve(client, client_account, job_id, [first])
    assert approve(client, client_account, job_id, [first]).json()["unchanged"] == [first]
    reject(client, client_account, job_id, [second], reason="wrong")
    again = reject(client, client_account, job_id, [second], reason="still wrong")
    assert again.json() == {"status": "rejected", "changed": [], "unchanged": [second]}
    assert len(decisions(db)) == 2


def test_every_review_status_change_calls_the_hook_once(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    admin: Account,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, str, str, str, int | None]] = []
    original = review.on_review

    def spy(session: Any, assignment: Any, old: Any, new: Any, **kwargs: Any) -> Any:
        calls.append(
            (assignment.id, old.value, new.value, kwargs["source"].value, kwargs["actor_id"])
        )
        assert assignment.status is new  # called after the change, in its transaction
        return original(session, assignment, old, new, **kwargs)

    monkeypatch.setattr(review, "on_review", spy)
    job_id = active_job(client, client_account, items=3, overlap={"min": 1})
    a, b, c = (t["id"] for t in do_tasks(client, annotator, job_id, 3))
    approve(client, client_account, job_id, [a])
    reject(client, client_account, job_id, [b, c], reason="wrong labels")
    approve(client, client_account, job_id, [b])  # the client changes their mind
    appeal = client.post(
        "/v1/annotator/appeals",
        json={"assignment_id": c, "kind": "rejection", "message": "I followed the guide"},
        headers=annotator.headers,
    ).json()
    client.post(
        f"/v1/admin/appeals/{appeal['id']}/resolve",
        json={"outcome": "overturned", "note": "the guide allows it"},
        headers=admin.headers,
    )
    me = client_account.id
    assert calls == [
        (a, "submitted", "approved", "client", me),
        (b, "submitted", "rejected", "client", me),
        (c, "submitted", "rejected", "client", me),
        (b, "rejected", "approved", "client", me),
        (c, "rejected", "approved", "appeal", admin.id),
    ]
    assert [(d.assignment_id, d.new_status) for d in decisions(db)] == [
        (i, AssignmentStatus(new)) for i, _, new, _, _ in calls
    ]


def test_approving_rejected_work_settles_its_open_appeal_and_counts_it_again(
    client: TestClient, client_account: Account, annotator: Account, db: Database
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    [task] = do_tasks(client, annotator, job_id, 1)
    reject(client, client_account, job_id, [task["id"]], reason="wrong")
    client.post(
        "/v1/annotator/appeals",
        json={"assignment_id": task["id"], "kind": "rejection", "message": "please look again"},
        headers=annotator.headers,
    )
    approve(client, client_account, job_id, [task["id"]], reason="you were right")
    [appeal] = client.get("/v1/annotator/appeals", headers=annotator.headers).json()
    assert (appeal["status"], appeal["resolution"]) == (
        "overturned",
        "The client approved the work.",
    )
    with db.read_session() as session:
        task_row = session.scalars(select(Task)).one()
    assert (task_row.status, task_row.done_count) == (TaskStatus.complete, 1)


@pytest.mark.parametrize(
    ("method", "path", "slugs"),
    [
        ("post", "/v1/quality/jobs/{job_id}/approve", {"not-found", "assignment-not-submitted"}),
        (
            "post",
            "/v1/quality/jobs/{job_id}/reject",
            {"not-found", "assignment-not-submitted", "assignment-already-approved"},
        ),
        ("post", "/v1/annotator/appeals", {"not-found", "nothing-to-appeal", "appeal-exists"}),
        ("post", "/v1/admin/appeals/{appeal_id}/resolve", {"appeal-resolved", "validation-failed"}),
        ("post", "/v1/admin/quality/actions/{action_id}/confirm", {"action-not-open"}),
        ("post", "/v1/admin/quality/actions/{action_id}/reverse", {"action-not-open"}),
    ],
)
def test_each_endpoint_lists_its_problem_types(
    openapi_document: dict[str, Any], method: str, path: str, slugs: set[str]
) -> None:
    responses = openapi_document["paths"][path][method]["responses"]
    declared = {
        slug
        for response in responses.values()
        for slug in response.get("content", {})
        .get("application/problem+json", {})
        .get("examples", {})
    }
    assert slugs <= declared
