"""Only the answers that count (of submitted or approved work) make an item's consensus, online,
in refits and in exports; a review that rejects work, or restores it (an overturned appeal, an
approval after all), recomputes the consensus of its items."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from app.core.db import Database
from tests.jobs.factories import active_job
from tests.outbox import run_due_jobs
from tests.quality.factories import do_task
from tests.support import Account


def exported(client: TestClient, owner: Account, job_id: int) -> dict[str, Any]:
    """The job's one item as the JSONL export gives it."""
    response = client.get(
        f"/v1/jobs/{job_id}/export", params={"format": "jsonl"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    [record] = [json.loads(line) for line in response.text.splitlines()]
    return dict(record)


def consensus_of(client: TestClient, owner: Account, job_id: int) -> tuple[Any, int]:
    record = exported(client, owner, job_id)
    return record["consensus"], record["answer_count"]


def answered(client: TestClient, who: Account, job_id: int, label: str) -> int:
    done = do_task(client, who, job_id, label=label)
    assert done is not None
    return int(done["id"])


def review(client: TestClient, owner: Account, job_id: int, verb: str, *ids: int) -> None:
    body: dict[str, Any] = {"assignment_ids": list(ids)}
    if verb == "reject":
        body["reason"] = "wrong"
    response = client.post(f"/v1/quality/jobs/{job_id}/{verb}", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text


def overturn_on_appeal(
    client: TestClient, who: Account, admin: Account, assignment_id: int
) -> None:
    filed = client.post(
        "/v1/annotator/appeals",
        json={"assignment_id": assignment_id, "kind": "rejection", "message": "I followed it"},
        headers=who.headers,
    )
    assert filed.status_code == 201, filed.text
    done = client.post(
        f"/v1/admin/appeals/{filed.json()['id']}/resolve",
        json={"note": "checked against the guide", "outcome": "overturned"},
        headers=admin.headers,
    )
    assert done.status_code == 200, done.text


def test_a_rejected_answer_does_not_count_in_the_exported_consensus(
    client: TestClient, client_account: Account, make_account: Callable[..., Account]
) -> None:
    job_id = active_job(
        client, client_account, items=1, overlap={"min": 1}, consensus_method="majority_vote"
    )
    spammer, honest = make_account("annotator"), make_account("annotator")
    review(client, client_account, job_id, "reject", answered(client, spammer, job_id, "negative"))
    answered(client, honest, job_id, "positive")

    record = exported(client, client_account, job_id)
    assert [a["answer"] for a in record["answers"]] == [{"sentiment": "positive"}]
    assert (record["consensus"], record["answer_count"]) == ({"sentiment": "positive"}, 1)


def test_rejecting_recomputes_the_consensus_and_restoring_the_work_brings_it_back(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    admin: Account,
) -> None:
    job_id = active_job(
        client, client_account, items=1, overlap={"min": 3}, consensus_method="majority_vote"
    )
    bots = [make_account("annotator") for _ in range(2)]
    spam = [answered(client, bot, job_id, "negative") for bot in bots]
    answered(client, make_account("annotator"), job_id, "positive")
    assert consensus_of(client, client_account, job_id) == ({"sentiment": "negative"}, 3)

    review(client, client_account, job_id, "reject", *spam)
    assert consensus_of(client, client_account, job_id) == ({"sentiment": "positive"}, 1)

    overturn_on_appeal(client, bots[0], admin, spam[0])
    assert consensus_of(client, client_account, job_id)[1] == 2
    review(client, client_account, job_id, "approve", spam[1])  # the client changed their mind
    assert consensus_of(client, client_account, job_id) == ({"sentiment": "negative"}, 3)


def test_rejecting_an_items_only_answer_removes_its_consensus_until_overturned(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    admin: Account,
) -> None:
    job_id = active_job(
        client, client_account, items=1, overlap={"min": 1}, consensus_method="majority_vote"
    )
    contested = answered(client, annotator, job_id, "negative")
    assert consensus_of(client, client_account, job_id) == ({"sentiment": "negative"}, 1)

    review(client, client_account, job_id, "reject", contested)
    assert consensus_of(client, client_account, job_id) == (None, 0)

    overturn_on_appeal(client, annotator, admin, contested)
    assert consensus_of(client, client_account, job_id) == ({"sentiment": "negative"}, 1)


def test_a_refit_leaves_rejected_answers_out(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    job_id = active_job(
        client, client_account, items=1, overlap={"min": 2}, consensus_method="majority_vote"
    )
    spam = answered(client, make_account("annotator"), job_id, "negative")
    answered(client, make_account("annotator"), job_id, "positive")
    review(client, client_account, job_id, "reject", spam)
    answered(client, make_account("annotator"), job_id, "positive")

    accepted = client.post(f"/v1/jobs/{job_id}/consensus/refit", headers=client_account.headers)
    assert accepted.status_code == 202, accepted.text
    run_due_jobs(db, db.settings, prefix="quality.")
    fit = client.get(f"/v1/jobs/{job_id}/consensus", headers=client_account.headers).json()["fit"]
    assert (fit["version"], fit["answers"], fit["items"]) == (1, 2, 1)
    assert consensus_of(client, client_account, job_id) == ({"sentiment": "positive"}, 2)
