"""Gold chosen at claim time (issue 21 item 1): tasks hold regular items only and the claim adds
an unseen gold item of the job to an assignment at the annotator's gold rate, so a job's gold no
longer limits how many tasks one annotator can do. The issue's job (45 tasks of 5 items, 20 gold
items, overlap 3) completes with five annotators; nobody sees a gold item twice; an annotator
who has seen all of it keeps getting regular work (and the quality report counts them); gold
answers are graded at submit and never reach the consensus."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.db import Database
from app.models import Answer, Assignment, GoldExposure, Item, ItemResult, TaskItem
from tests.jobs.factories import draft_job
from tests.support import Account


def _work_in_turns(client: TestClient, people: list[Account], job_id: int) -> dict[int, list]:
    """The annotators claim one task each in turn and submit it, until `next` is empty for
    everyone; returns each one's claimed assignments (with the submit's response under
    "submitted"), checking what an empty `next` says."""
    done: dict[int, list[dict[str, Any]]] = {who.id: [] for who in people}
    busy = True
    while busy:
        busy = False
        for who in people:
            response = client.post(
                "/v1/assignments/next", json={"job_id": job_id}, headers=who.headers
            )
            assert response.status_code == 200, response.text
            body = response.json()
            if not body["assignments"]:
                [why] = body["empty_reasons"]
                assert why["reason"] != "gold-exhausted"
                continue
            busy = True
            [a] = body["assignments"]
            assert "gold" not in str(a).lower()  # nothing tells a gold item apart
            assert [item["slot"] for item in a["items"]] == list(range(len(a["items"])))
            answers = [{"sentiment": "neutral"} for _ in a["items"]]
            submitted = client.post(
                f"/v1/assignments/{a['id']}/submit", json={"answers": answers}, headers=who.headers
            )
            assert submitted.status_code == 200, submitted.text
            done[who.id].append({**a, "submitted": submitted.json()})
    return done


def test_the_issues_job_completes_with_five_annotators_and_gold_is_never_repeated(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    # 45 tasks of 5 regular items, 20 gold items, overlap 3, five annotators: with gold baked
    # into tasks each annotator could do 20 tasks and the job stalled at 100 of 135 answers.
    job_id = draft_job(
        client,
        client_account,
        items=225,
        gold=20,
        items_per_task=5,
        gold_ratio=0.2,
        instant_feedback=True,
    )
    response = client.post(f"/v1/jobs/{job_id}/activate", headers=client_account.headers)
    assert response.status_code == 200, response.text
    assert response.json()["warnings"] == []  # gold no longer limits anyone's reach

    people = [make_account("annotator") for _ in range(5)]
    done = _work_in_turns(client, people, job_id)

    progress = client.get(f"/v1/jobs/{job_id}/progress", headers=client_account.headers).json()
    assert progress["tasks"]["open"] == 0
    assert progress["tasks"]["complete"] == 45
    assert sum(len(work) for work in done.values()) == 135
    for work in done.values():
        assert len(work) == 27  # 135 answers over five people, more than the 20 gold items
        shown = Counter(len(a["items"]) for a in work)
        # New annotators get gold on every claim (rate 1 here) until all 20 are seen; the rest
        # of their work is regular tasks alone.
        assert shown == {6: 20, 5: 7}
        # Graded at submit: one score per assignment with gold, at its slot.
        for a in work:
            feedback = a["submitted"]["feedback"] or []
            assert len(feedback) == (1 if len(a["items"]) == 6 else 0)
            for f in feedback:
                assert 0 <= f["slot"] < len(a["items"])

    report = client.get(f"/v1/quality/jobs/{job_id}/report", headers=client_account.headers)
    assert report.status_code == 200, report.text
    assert report.json()["annotators_out_of_gold"] == 5

    with db.read_session() as session:
        gold_ids = set(
            session.scalars(select(Item.id).where(Item.job_id == job_id, Item.is_gold.is_(True)))
        )
        assert not set(session.scalars(select(TaskItem.item_id))) & gold_ids  # none baked in
        given = session.execute(
            select(Assignment.annotator_id, Assignment.gold_item_id).where(
                Assignment.job_id == job_id, Assignment.gold_item_id.is_not(None)
            )
        ).all()
        per_person = Counter(who for who, _ in given)
        assert per_person == {who.id: 20 for who in people}
        assert len(set(given)) == len(given) == 100  # no gold item twice to one annotator
        for who in people:
            assert {g for w, g in given if w == who.id} == gold_ids
        exposures = session.execute(
            select(GoldExposure.annotator_id, GoldExposure.item_id).where(
                GoldExposure.item_id.in_(gold_ids)
            )
        ).all()
        assert set(exposures) == set(given)
        # Gold answers are graded (a score each), regular ones are not, and gold never reaches
        # the consensus.
        scored = session.execute(
            select(Answer.item_id, Answer.score).where(Answer.job_id == job_id)
        ).all()
        assert all((score is not None) == (item in gold_ids) for item, score in scored)
        assert sum(1 for item, _ in scored if item in gold_ids) == 100
        consensus = set(
            session.scalars(select(ItemResult.item_id).where(ItemResult.job_id == job_id))
        )
        assert len(consensus) == 225
        assert not consensus & gold_ids


def test_gold_slot_and_grading_on_a_submit_with_gold(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    db: Database,
) -> None:
    # One item per task at ratio 0.5: a new annotator's rate is 1, so the claim shows two items,
    # one of them gold, at a slot drawn at random; the wrong gold answer scores 0 at its slot.
    job_id = draft_job(client, client_account, items=3, gold=2, instant_feedback=True)
    assert client.post(f"/v1/jobs/{job_id}/activate", headers=client_account.headers).is_success
    claim = client.post(
        "/v1/assignments/next", json={"job_id": job_id}, headers=annotator.headers
    ).json()
    [a] = claim["assignments"]
    assert len(a["items"]) == 2
    with db.read_session() as session:
        row = session.get_one(Assignment, a["id"])
        gold = session.get_one(Item, row.gold_item_id)
        assert gold.is_gold
        assert row.gold_slot in (0, 1)
        gold_slot = row.gold_slot
    assert a["items"][gold_slot]["data"] == gold.payload
    answers = [{"sentiment": "negative"}, {"sentiment": "negative"}]
    done = client.post(
        f"/v1/assignments/{a['id']}/submit", json={"answers": answers}, headers=annotator.headers
    )
    assert done.status_code == 200, done.text
    assert done.json()["feedback"] == [{"slot": gold_slot, "score": 0.0}]
    again = client.post(
        f"/v1/assignments/{a['id']}/submit", json={"answers": answers}, headers=annotator.headers
    )
    assert again.json()["feedback"] == [{"slot": gold_slot, "score": 0.0}]


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
