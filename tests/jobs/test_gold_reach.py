"""Gold thin for its job (issue 21 item 1, the part that is measured and said): the warning on
activation, kept in progress; the quality report's count of annotators who have seen all the
job's gold; and `next` naming `gold-exhausted` when that is what stops an annotator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.jobs.factories import draft_job
from tests.support import Account


def _work_until_empty(client: TestClient, who: Account, job_id: int) -> dict[str, Any]:
    """Claim and submit until `next` is empty; returns the empty answer's reason."""
    while True:
        response = client.post(
            "/v1/assignments/next", json={"job_id": job_id, "count": 10}, headers=who.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        if not body["assignments"]:
            [why] = body["empty_reasons"]
            return dict(why)
        for a in body["assignments"]:
            answers = [{"sentiment": "neutral"} for _ in a["items"]]
            done = client.post(
                f"/v1/assignments/{a['id']}/submit", json={"answers": answers}, headers=who.headers
            )
            assert done.status_code == 200, done.text


def test_thin_gold_is_a_warning_on_activation_and_in_progress_and_its_stall_is_named(
    client: TestClient, client_account: Account, make_account: Callable[..., Account]
) -> None:
    # The job: 45 tasks of 5 items, 20 gold items, overlap 3, five annotators. Each
    # task holds one gold item, so each annotator can do 20 tasks: 100 of the 135 answers.
    job_id = draft_job(client, client_account, items=180, gold=20, items_per_task=5, gold_ratio=0.2)
    response = client.post(f"/v1/jobs/{job_id}/activate", headers=client_account.headers)
    assert response.status_code == 200, response.text
    [warning] = response.json()["warnings"]
    assert "20 gold items" in warning
    assert "at least 7 annotators" in warning
    progress = client.get(f"/v1/jobs/{job_id}/progress", headers=client_account.headers).json()
    assert progress["warnings"] == [warning]
    assert client.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()["warnings"] == []

    people = [make_account("annotator") for _ in range(5)]
    stops = [_work_until_empty(client, who, job_id)["reason"] for who in people]
    assert stops == ["gold-exhausted"] * 5
    report = client.get(f"/v1/quality/jobs/{job_id}/report", headers=client_account.headers)
    assert report.status_code == 200, report.text
    assert report.json()["annotators_out_of_gold"] == 5
    progress = client.get(f"/v1/jobs/{job_id}/progress", headers=client_account.headers).json()
    assert progress["tasks"]["open"] > 0  # the stall the redesign of item 1 is to remove


def test_enough_gold_gives_no_warning_and_nobody_out_of_gold(
    client: TestClient, client_account: Account
) -> None:
    job_id = draft_job(client, client_account, items=4, gold=4, overlap={"min": 1})
    response = client.post(f"/v1/jobs/{job_id}/activate", headers=client_account.headers)
    assert response.json()["warnings"] == []
    progress = client.get(f"/v1/jobs/{job_id}/progress", headers=client_account.headers).json()
    assert progress["warnings"] == []
    report = client.get(f"/v1/quality/jobs/{job_id}/report", headers=client_account.headers)
    assert report.json()["annotators_out_of_gold"] == 0
