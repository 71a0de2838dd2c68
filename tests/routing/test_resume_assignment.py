"""The owner of a live assignment fetches it again with its items: a reloaded page resumes the
work under the same lease instead of releasing it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from app.core import clock
from tests.jobs.factories import active_job
from tests.routing.test_claim_and_submit import claim, submit
from tests.support import Account, assert_problem


def test_the_owner_fetches_a_live_assignment_again_with_its_items(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    active_job(client, client_account, items=2, items_per_task=2, overlap={"min": 1})
    [claimed] = claim(client, annotator)
    again = client.get(f"/v1/assignments/{claimed['id']}", headers=annotator.headers)
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["items"] == claimed["items"]
    assert (body["id"], body["status"], body["job"]) == (claimed["id"], "active", claimed["job"])
    assert body["lease_expires_at"] == claimed["lease_expires_at"]
    # Still the caller's to submit: fetching it released nothing.
    assert submit(client, annotator, claimed).status_code == 200


def test_a_resumed_assignment_never_shows_gold(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    active_job(client, client_account, items=2, gold=2, overlap={"min": 1})
    texts = []
    for claimed in claim(client, annotator, count=4):
        again = client.get(f"/v1/assignments/{claimed['id']}", headers=annotator.headers)
        texts.append(again.text)
    assert any("control" in t for t in texts)  # the gold item, shown as an ordinary one
    for leak in ("gold", "is_gold", "item_id", "prelabel"):
        assert leak not in json.dumps(texts)


def test_someone_elses_assignment_is_404_and_a_finished_one_409(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    make_account: Callable[..., Account],
) -> None:
    active_job(client, client_account, items=3, overlap={"min": 1}, lease_seconds=60)
    first, second, third = claim(client, annotator, count=3)
    other = make_account("annotator")
    assert_problem(
        client.get(f"/v1/assignments/{first['id']}", headers=other.headers), 404, "not-found"
    )
    assert submit(client, annotator, first).status_code == 200
    assert_problem(
        client.get(f"/v1/assignments/{first['id']}", headers=annotator.headers),
        409,
        "already-submitted",
    )
    client.post(f"/v1/assignments/{second['id']}/release", headers=annotator.headers)
    assert_problem(
        client.get(f"/v1/assignments/{second['id']}", headers=annotator.headers),
        409,
        "assignment-released",
    )
    clock.travel(timedelta(seconds=61))
    assert_problem(
        client.get(f"/v1/assignments/{third['id']}", headers=annotator.headers),
        409,
        "lease-ended",
    )
