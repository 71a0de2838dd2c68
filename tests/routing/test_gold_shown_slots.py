"""A gold item chosen at claim is put in at a random slot and moves the task's later items one
slot further: everything the annotator is shown of the assignment follows it (pre-labels stay
on their own items, a reloaded page shows the same items at the same slots)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.jobs.factories import active_job
from tests.routing.test_claim_and_submit import claim
from tests.support import Account


def _label(n: int) -> str:
    return "positive" if n % 2 == 0 else "negative"


def _rows(count: int) -> list[dict[str, Any]]:
    return [
        {"text": f"review {n}", "prelabel": {"sentiment": _label(n)}, "prelabel_score": 0.9}
        for n in range(count)
    ]


def test_prelabels_and_a_resumed_page_follow_the_slot_a_gold_item_took(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    # gold_ratio 0.5 with two regular items a task: a gold item is due with every claim of a
    # new annotator while they have unseen ones (two here)
    active_job(
        client,
        client_account,
        _rows(4),
        gold=2,
        items_per_task=2,
        overlap={"min": 1},
        show_prelabels=True,
    )
    claimed = claim(client, annotator, count=2)
    assert len(claimed) == 2
    for assignment in claimed:
        items = assignment["items"]
        assert [i["slot"] for i in items] == [0, 1, 2]  # two regular items and a gold one
        regular = [i for i in items if i["data"]["text"].startswith("review ")]
        assert len(regular) == 2
        for item in regular:
            n = int(item["data"]["text"].removeprefix("review "))
            assert item["prelabel"] == {"sentiment": _label(n)}, items
        again = client.get(f"/v1/assignments/{assignment['id']}", headers=annotator.headers)
        assert again.status_code == 200, again.text
        assert [(i["slot"], i["data"]) for i in again.json()["items"]] == [
            (i["slot"], i["data"]) for i in items
        ]
