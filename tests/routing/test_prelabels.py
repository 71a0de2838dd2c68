"""Pre-labels shown to annotators when the job says so: each item's pre-label in `next`, in
Tessera's answer shape and as Label Studio predictions, never one that gives a gold answer away;
the job's quality report shows how often annotators kept a pre-label unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.jobs.factories import active_job
from tests.routing.test_claim_and_submit import claim, submit
from tests.support import Account


def rows(count: int) -> list[dict[str, Any]]:
    """Reviews whose pre-label says "positive" (score 0.8), and one without a pre-label."""
    made: list[dict[str, Any]] = [
        {"text": f"review {n}", "prelabel": {"sentiment": "positive"}, "prelabel_score": 0.8}
        for n in range(count)
    ]
    return [*made, {"text": "no guess"}]


def test_next_shows_each_items_prelabel_when_the_job_says_so(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, rows=rows(1), show_prelabels=True)
    job = client.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    assert job["show_prelabels"] is True
    first, second = claim(client, annotator, job_id=job_id, count=2)
    [item] = first["items"]
    assert item["data"] == {"text": "review 0"}
    assert item["prelabel"] == {"sentiment": "positive"}
    [prediction] = item["predictions"]
    assert prediction["model_version"] == "tessera-prelabel"
    assert prediction["score"] == 0.8
    [result] = prediction["result"]
    assert (result["from_name"], result["type"], result["value"]) == (
        "sentiment",
        "choices",
        {"choices": ["positive"]},
    )
    assert second["items"] == [
        {"slot": 0, "data": {"text": "no guess"}, "prelabel": None, "predictions": []}
    ]


def test_next_shows_no_prelabels_by_default(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, rows=rows(1))
    assert (
        client.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()["show_prelabels"]
        is False
    )
    [assignment] = claim(client, annotator, job_id=job_id)
    assert assignment["items"] == [{"slot": 0, "data": {"text": "review 0"}}]
    # Turned on later, the next claim shows them.
    changed = client.patch(
        f"/v1/jobs/{job_id}", json={"show_prelabels": True}, headers=client_account.headers
    )
    assert changed.json()["show_prelabels"] is True
    [assignment] = claim(client, annotator, job_id=job_id)
    assert assignment["items"][0]["prelabel"] is None  # the item without one


@pytest.mark.xfail(
    strict=True,
    reason="known gap: a control item chosen at claim time is shown without its imported "
    "pre-label (only the task's own items are read), so in a job that shows pre-labels it stands "
    "out; its answer key is never shown",
)
def test_a_gold_items_answer_key_is_never_shown_as_its_prelabel(
    client: TestClient, client_account: Account, make_account: Callable[..., Account]
) -> None:
    key = {"sentiment": "neutral"}
    gold = [
        {"text": "control a", "gold_answer": key, "prelabel": key},
        {"text": "control b", "gold_answer": key, "prelabel": {"sentiment": "negative"}},
    ]
    job_id = active_job(
        client,
        client_account,
        rows=rows(6)[:6] + gold,
        gold_ratio=0.5,
        overlap={"min": 1},
        show_prelabels=True,
    )
    seen: dict[str, list[Any]] = {}
    for _ in range(3):
        person = make_account("annotator")
        while found := claim(client, person, job_id=job_id):
            [assignment] = found
            for item in assignment["items"]:
                seen.setdefault(item["data"]["text"], []).append(item["prelabel"])
            assert submit(client, person, assignment).status_code == 200
    assert {"control a", "control b"} <= set(seen)
    assert set(map(str, seen["control b"])) == {str({"sentiment": "negative"})}  # not the key
    assert set(map(str, seen["control a"])) == {"None"}  # its pre-label is its key: hidden
    assert "neutral" not in str(seen)


def test_the_quality_report_shows_how_often_annotators_kept_a_prelabel(
    client: TestClient, client_account: Account, make_account: Callable[..., Account]
) -> None:
    job_id = active_job(
        client, client_account, rows=rows(2), overlap={"min": 2}, show_prelabels=True
    )
    keeper, changer = make_account("annotator"), make_account("annotator")
    for person, label in ((keeper, "positive"), (changer, "negative")):
        while found := claim(client, person, job_id=job_id):
            [assignment] = found
            assert submit(client, person, assignment, label).status_code == 200
    report = client.get(f"/v1/quality/jobs/{job_id}/report", headers=client_account.headers).json()[
        "prelabels"
    ]
    assert (report["shown"], report["answers"], report["kept_unchanged"]) == (True, 4, 2)
    assert report["kept_rate"] == 0.5
    assert sorted(
        (a["answers"], a["kept_unchanged"], a["kept_rate"]) for a in report["annotators"]
    ) == [
        (2, 0, 0.0),
        (2, 2, 1.0),
    ]
    assert all(len(a["annotator"]) == 16 for a in report["annotators"])  # pseudonyms
