"""Product defects `tessera simulate` found, each reduced to a small repro. Marked xfail (strict:
the fix turns it into a failure that asks for the marker to go), so the suite stays green."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.jobs.factories import active_job
from tests.quality.factories import do_task
from tests.support import Account


@pytest.mark.xfail(
    strict=True,
    reason="consensus counts the answers of rejected assignments (app/consensus/service.py "
    "refresh_item_results and refit read every answer of the item), while exports list only "
    "submitted and approved ones",
)
def test_a_rejected_answer_no_longer_counts_in_the_items_consensus(
    client: TestClient, client_account: Account, make_account: Callable[..., Account]
) -> None:
    job_id = active_job(
        client, client_account, items=1, overlap={"min": 1}, consensus_method="majority_vote"
    )
    spammer, honest = make_account("annotator"), make_account("annotator")
    spam = do_task(client, spammer, job_id, label="negative")
    assert spam is not None
    rejected = client.post(
        f"/v1/quality/jobs/{job_id}/reject",
        json={"assignment_ids": [spam["id"]], "reason": "wrong"},
        headers=client_account.headers,
    )
    assert rejected.status_code == 200, rejected.text
    assert do_task(client, honest, job_id, label="positive") is not None

    exported = client.get(
        f"/v1/jobs/{job_id}/export", params={"format": "jsonl"}, headers=client_account.headers
    )
    [record] = [json.loads(line) for line in exported.text.splitlines()]
    assert [a["answer"] for a in record["answers"]] == [{"sentiment": "positive"}]
    assert (record["consensus"], record["answer_count"]) == ({"sentiment": "positive"}, 1)
