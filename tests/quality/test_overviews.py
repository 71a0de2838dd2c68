"""Admins list annotators (reputation, tier, accuracy, speed, open flags; sorted, filtered,
paged) and clients (balance and escrow); clients see the appeals on their jobs and their
outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from app.core.clock import utcnow
from app.core.db import Database
from app.models.quality import ActionKind, ActionStatus, QualityAction, QualityRule
from tests.jobs.factories import active_job
from tests.quality.factories import do_tasks
from tests.quality.test_appeals import appeal, resolve
from tests.quality.test_review import reject
from tests.support import Account, assert_problem


def override(client: TestClient, admin: Account, who: Account, **body: Any) -> None:
    response = client.put(
        f"/v1/admin/annotators/{who.id}/reputation-override",
        json={"reason": "test", **body},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text


def flag(db: Database, who: Account) -> None:
    with db.transaction() as session:
        session.add(
            QualityAction(
                annotator_id=who.id,
                rule=QualityRule.fast_submit,
                kind=ActionKind.flag,
                status=ActionStatus.open,
                reason="fast",
                thresholds={},
                numbers={},
                evidence={},
                created_at=utcnow(),
            )
        )


def listed(client: TestClient, admin: Account, query: str) -> dict[str, Any]:
    response = client.get(f"/v1/admin/annotators{query}", headers=admin.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_admins_list_annotators_sorted_filtered_and_paged(
    client: TestClient, admin: Account, make_account: Callable[..., Account], db: Database
) -> None:
    low, high, mid = (make_account("annotator") for _ in range(3))
    override(client, admin, low, reputation=0.2)
    override(client, admin, high, reputation=0.95, tier="expert")
    override(client, admin, mid, reputation=0.6, tier="mid")
    flag(db, low)
    ours = {low.id, high.id, mid.id}

    by_rep = listed(client, admin, "?sort=reputation&desc=true&limit=500")["items"]
    assert [a["id"] for a in by_rep if a["id"] in ours] == [high.id, mid.id, low.id]
    top = next(a for a in by_rep if a["id"] == high.id)
    assert (top["tier"], top["reputation"], top["open_flags"]) == ("expert", 0.95, 0)
    assert {"gold_accuracy", "median_active_seconds", "tasks", "email"} <= set(top)

    flagged = listed(client, admin, "?has_open_flags=true&limit=500")["items"]
    assert [(a["id"], a["open_flags"]) for a in flagged] == [(low.id, 1)]
    experts = listed(client, admin, "?tier=expert&limit=500")["items"]
    assert [a["id"] for a in experts] == [high.id]
    ranged = listed(client, admin, "?min_reputation=0.5&max_reputation=0.7&limit=500")["items"]
    assert [a["id"] for a in ranged] == [mid.id]

    first = listed(client, admin, "?sort=tier&desc=true&limit=1")
    assert first["items"][0]["id"] == high.id
    second = listed(client, admin, f"?sort=tier&desc=true&limit=1&offset={first['next_offset']}")
    assert second["items"][0]["id"] == mid.id
    assert_problem(client.get("/v1/admin/annotators?sort=nope", headers=admin.headers), 422)


def test_admins_list_clients_with_balance_and_escrow(
    client: TestClient, client_account: Account, admin: Account
) -> None:
    active_job(client, client_account, items=2, overlap={"min": 1})
    balance = client.get("/v1/balance", headers=client_account.headers).json()
    response = client.get("/v1/admin/clients?limit=500", headers=admin.headers)
    assert response.status_code == 200, response.text
    [row] = [c for c in response.json()["items"] if c["id"] == client_account.id]
    assert row["escrow_micros"] == balance["escrow_micros"] > 0
    assert row["available_micros"] == balance["available_micros"]


def test_clients_see_the_appeals_on_their_jobs_and_the_outcome(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    admin: Account,
    make_account: Callable[..., Account],
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    [task] = do_tasks(client, annotator, job_id, 1)
    reject(client, client_account, job_id, [task["id"]], reason="wrong label")
    filed = appeal(client, annotator, task["id"])
    assert filed.status_code == 201, filed.text
    path = f"/v1/quality/jobs/{job_id}/appeals"

    [seen] = client.get(path, headers=client_account.headers).json()["items"]
    assert (seen["assignment_id"], seen["status"], seen["kind"]) == (
        task["id"],
        "open",
        "rejection",
    )
    assert seen["annotator"] != str(annotator.id)  # a pseudonym, as in exports
    assert "annotator_id" not in seen

    assert resolve(client, admin, filed.json()["id"], outcome="overturned").status_code == 200
    [seen] = client.get(path, headers=client_account.headers).json()["items"]
    assert (seen["status"], seen["resolution"]) == ("overturned", "checked against the guide")
    other = make_account("client")
    assert_problem(client.get(path, headers=other.headers), 404)
