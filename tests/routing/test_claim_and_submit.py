from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core import clock
from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from app.models import Answer, Assignment, AssignmentStatus, ItemResult, Task
from app.quality import enforcement
from tests.jobs.factories import active_job, reviews
from tests.support import Account, assert_problem

GOLD_TEXT = "a very distinctive control review"


def claim(client: TestClient, who: Account, **body: Any) -> list[dict[str, Any]]:
    response = client.post("/v1/assignments/next", json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    assignments: list[dict[str, Any]] = response.json()["assignments"]
    return assignments


def submit(
    client: TestClient, who: Account, assignment: dict[str, Any], label: str = "positive"
) -> Any:
    answers = [{"sentiment": label} for _ in assignment["items"]]
    return client.post(
        f"/v1/assignments/{assignment['id']}/submit", json={"answers": answers}, headers=who.headers
    )


def test_next_gives_a_task_under_a_lease_showing_items_by_slot(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, lease_seconds=300)
    [assignment] = claim(client, annotator)
    assert assignment["job"]["id"] == job_id
    assert assignment["job"]["label_schema"]["controls"][0]["name"] == "sentiment"
    assert assignment["items"] == [{"slot": 0, "data": {"text": "review number 0"}}]
    assert assignment["status"] == "active"
    lease = (assignment["lease_expires_at"], assignment["claimed_at"])
    assert lease[0] > lease[1]
    mine = client.get("/v1/assignments?status=active", headers=annotator.headers).json()["items"]
    assert [a["id"] for a in mine] == [assignment["id"]]


def test_overlap_fills_a_task_then_moves_on_and_nobody_repeats_a_task(
    client: TestClient, client_account: Account, make_account: Callable[..., Account]
) -> None:
    active_job(client, client_account, items=2, overlap={"min": 3})
    people = [make_account("annotator") for _ in range(4)]
    first = [claim(client, p)[0]["items"][0]["data"]["text"] for p in people]
    assert first == ["review number 0"] * 3 + ["review number 1"]
    again = claim(client, people[0], count=5)
    assert [a["items"][0]["data"]["text"] for a in again] == ["review number 1"]
    assert claim(client, people[0]) == []  # nothing left that this annotator has not done


def test_count_claims_several_and_is_capped_by_max_tasks_per_annotator(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    active_job(client, client_account, items=10, max_tasks_per_annotator=4)
    assert len(claim(client, annotator, count=3)) == 3
    assert len(claim(client, annotator, count=3)) == 1


def test_clients_and_admins_cannot_claim(
    client: TestClient, client_account: Account, admin: Account
) -> None:
    active_job(client, client_account)
    for who in (client_account, admin):
        assert_problem(client.post("/v1/assignments/next", json={}, headers=who.headers), 403)


def test_next_for_an_unknown_job_is_404_and_for_a_paused_one_empty(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account)
    client.post(f"/v1/jobs/{job_id}/pause", headers=client_account.headers)
    assert_problem(
        client.post("/v1/assignments/next", json={"job_id": job_id + 1}, headers=annotator.headers),
        404,
    )
    assert claim(client, annotator, job_id=job_id) == []  # `job-paused`: test_empty_queue.py
    assert claim(client, annotator) == []


def test_submit_records_answers_and_completes_the_task_with_consensus(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    active_job(
        client,
        client_account,
        items=1,
        overlap={"min": 3},
        consensus_method="majority_vote",
    )
    labels = ["negative", "negative", "neutral"]
    for label in labels:
        person = make_account("annotator")
        [assignment] = claim(client, person)
        response = submit(client, person, assignment, label)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "submitted"
        assert response.json()["feedback"] is None
    with db.read_session() as session:
        task = session.scalars(select(Task)).one()
        result = session.scalars(select(ItemResult)).one()
    assert (task.status.value, task.done_count, task.live_count) == ("complete", 3, 0)
    assert result.answer == {"sentiment": "negative"}
    assert abs(result.confidence - 2 / 3) < 1e-9


def test_invalid_answers_are_422_with_pointers_and_nothing_is_stored(
    client: TestClient, client_account: Account, annotator: Account, db: Database
) -> None:
    active_job(client, client_account, items=2, items_per_task=2)
    [assignment] = claim(client, annotator)
    bad = {"answers": [{"sentiment": "happy"}, {"sentiment": "positive", "extra": 1}]}
    body = assert_problem(
        client.post(
            f"/v1/assignments/{assignment['id']}/submit", json=bad, headers=annotator.headers
        ),
        422,
    )
    assert {e["pointer"] for e in body["errors"]} == {"#/answers/0/sentiment", "#/answers/1/extra"}
    short = {"answers": [{"sentiment": "positive"}]}
    assert_problem(
        client.post(
            f"/v1/assignments/{assignment['id']}/submit", json=short, headers=annotator.headers
        ),
        422,
    )
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 0
        assert session.scalars(select(Assignment.status)).one().value == "active"
    assert submit(client, annotator, assignment).status_code == 200


def test_double_submit_is_idempotent_and_a_different_answer_is_409(
    client: TestClient, client_account: Account, annotator: Account, db: Database
) -> None:
    active_job(client, client_account)
    [assignment] = claim(client, annotator)
    first = submit(client, annotator, assignment)
    again = submit(client, annotator, assignment)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert_problem(submit(client, annotator, assignment, "negative"), 409)
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 1


def test_someone_elses_assignment_is_404_not_403(
    client: TestClient, client_account: Account, make_account: Callable[..., Account]
) -> None:
    active_job(client, client_account)
    owner, intruder = make_account("annotator"), make_account("annotator")
    [assignment] = claim(client, owner)
    for action in ("submit", "heartbeat", "release"):
        body = {"answers": [{"sentiment": "positive"}]} if action == "submit" else None
        assert_problem(
            client.post(
                f"/v1/assignments/{assignment['id']}/{action}", json=body, headers=intruder.headers
            ),
            404,
        )
    assert_problem(client.post("/v1/assignments/999999/heartbeat", headers=owner.headers), 404)


def test_gold_is_graded_at_submit_with_instant_feedback_and_never_shown(
    client: TestClient, client_account: Account, annotator: Account, db: Database
) -> None:
    rows = [{"text": GOLD_TEXT, "gold_answer": {"sentiment": "neutral"}}, *reviews(9)]
    active_job(client, client_account, rows=rows, gold_ratio=0.5, instant_feedback=True)
    seen: list[str] = []
    gold_feedback = []
    gold_slots = []
    for assignment in claim(client, annotator, count=10):
        seen.append(json.dumps(assignment))
        gold_slots += [i["slot"] for i in assignment["items"] if GOLD_TEXT in json.dumps(i)]
        response = submit(client, annotator, assignment, "neutral")
        seen.append(response.text)
        gold_feedback.extend(response.json()["feedback"] or [])
    seen.append(client.get("/v1/assignments", headers=annotator.headers).text)
    assert gold_feedback == [{"slot": gold_slots[0], "score": 1.0}]  # at its random slot
    text = "\n".join(seen)
    assert GOLD_TEXT in text  # the gold item is shown as an ordinary item...
    for leak in ("gold", "is_gold", "item_id", "prelabel"):
        assert leak not in text  # ...with nothing that tells it apart
    with db.read_session() as session:
        assignment = session.scalars(select(Assignment).where(Assignment.gold_score.is_not(None)))
        assert [a.gold_score for a in assignment] == [1.0]


def test_the_quality_rules_run_after_the_submit_has_committed_and_cannot_undo_it(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [{"text": GOLD_TEXT, "gold_answer": {"sentiment": "neutral"}}, *reviews(9)]
    active_job(client, client_account, rows=rows, gold_ratio=0.5)
    [with_gold] = [a for a in claim(client, annotator, count=10) if GOLD_TEXT in json.dumps(a)]
    seen_by_the_rules: list[AssignmentStatus] = []

    def failing_rules(*args: Any) -> list[Any]:
        with db.read_session() as other:  # another connection sees only what is committed
            seen_by_the_rules.append(other.get_one(Assignment, with_gold["id"]).status)
        raise RuntimeError("the rules step failed")

    monkeypatch.setattr(enforcement, "check_submit", failing_rules)
    assert_problem(submit(client, annotator, with_gold, "neutral"), 500)
    assert seen_by_the_rules == [AssignmentStatus.submitted]
    with db.read_session() as session:
        assignment = session.get_one(Assignment, with_gold["id"])
        assert (assignment.status, assignment.gold_score) == (AssignmentStatus.submitted, 1.0)
        stored = session.scalar(select(func.count()).where(Answer.assignment_id == with_gold["id"]))
        assert stored == len(with_gold["items"])


def test_heartbeat_extends_the_lease_up_to_the_maximum(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    active_job(client, client_account, lease_seconds=60)
    [assignment] = claim(client, annotator)
    url = f"/v1/assignments/{assignment['id']}/heartbeat"
    leases = []
    for _ in range(4):  # at 50, 100, 150 and 200 s
        clock.travel(timedelta(seconds=50))
        response = client.post(url, headers=annotator.headers)
        assert response.status_code == 200, response.text
        leases.append(response.json()["lease_expires_at"])
    limit = response.json()["lease_limit"]
    assert leases[-1] == limit  # capped at claim + 4 × 60 s = 240 s
    assert leases[0] < leases[1] < leases[2] < leases[3]
    clock.travel(timedelta(seconds=41))
    assert_problem(client.post(url, headers=annotator.headers), 409)


def test_active_time_skips_idle_gaps(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    active_job(client, client_account, lease_seconds=600)
    [assignment] = claim(client, annotator)
    url = f"/v1/assignments/{assignment['id']}/heartbeat"
    clock.travel(timedelta(seconds=20))
    client.post(url, headers=annotator.headers)  # +20 s
    clock.travel(timedelta(seconds=200))  # away: longer than the heartbeat interval
    client.post(url, headers=annotator.headers)
    clock.travel(timedelta(seconds=10))
    assert submit(client, annotator, assignment).json()["active_seconds"] == 30


def test_release_returns_the_slot_and_cannot_be_undone(
    client: TestClient, client_account: Account, make_account: Callable[..., Account]
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    first, second = make_account("annotator"), make_account("annotator")
    [assignment] = claim(client, first)
    assert claim(client, second) == []
    released = client.post(
        f"/v1/assignments/{assignment['id']}/release",
        json={"reason": "image does not load"},
        headers=first.headers,
    )
    assert released.json()["status"] == "released"
    progress = client.get(f"/v1/jobs/{job_id}/progress", headers=client_account.headers).json()
    assert progress["release_reasons"] == [{"reason": "image does not load", "count": 1}]
    assert str(first.id) not in json.dumps(progress["release_reasons"])
    assert len(claim(client, second)) == 1
    assert_problem(submit(client, first, assignment), 409)
    assert claim(client, first) == []  # released tasks are not offered to the same person again


def test_expired_lease_goes_back_to_the_pool(
    client: TestClient, client_account: Account, make_account: Callable[..., Account]
) -> None:
    active_job(client, client_account, items=1, overlap={"min": 1}, lease_seconds=60)
    slow, quick = make_account("annotator"), make_account("annotator")
    [stale] = claim(client, slow)
    assert claim(client, quick) == []
    clock.travel(timedelta(seconds=61))
    clock.travel(timedelta(seconds=2))  # past the once-a-second sweep limit as well
    [fresh] = claim(client, quick)
    assert fresh["items"] == stale["items"]
    body = assert_problem(
        submit(client, slow, stale), 409
    )  # within grace, but the slot was re-issued
    assert "someone else" in body["detail"]
    assert submit(client, quick, fresh).status_code == 200


def test_late_submit_within_grace_is_accepted_when_the_slot_is_free(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    active_job(client, client_account, lease_seconds=60)
    [assignment] = claim(client, annotator)
    clock.travel(timedelta(seconds=90))  # expired, within the 120 s grace, not re-issued
    assert submit(client, annotator, assignment).status_code == 200


def test_late_submit_after_the_grace_period_is_409(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    active_job(client, client_account, lease_seconds=60)
    [assignment] = claim(client, annotator)
    clock.travel(timedelta(seconds=60 + 121))
    assert_problem(submit(client, annotator, assignment), 409)


def test_late_submit_after_a_sweep_retakes_a_free_slot(
    client: TestClient, client_account: Account, annotator: Account, db: Database
) -> None:
    from app.routing.service import expire_overdue_assignments

    active_job(client, client_account, items=1, lease_seconds=60)
    [assignment] = claim(client, annotator)
    clock.travel(timedelta(seconds=70))
    with db.transaction() as session:
        assert expire_overdue_assignments(session, clock.utcnow()) == 1
    assert submit(client, annotator, assignment).status_code == 200
    with db.read_session() as session:
        task = session.scalars(select(Task)).one()
    assert (task.live_count, task.done_count, task.status.value) == (0, 1, "open")


def test_an_ineligible_annotator_gets_403_with_the_reasons(
    client: TestClient, client_account: Account, annotator: Account, admin: Account
) -> None:
    made = client.post(
        "/v1/admin/skills",
        headers=admin.headers,
        json={"slug": "sentiment-en", "name": "Sentiment (English)"},
    )
    assert made.status_code == 201, made.text
    job_id = active_job(
        client,
        client_account,
        required_skills=[{"skill": "sentiment-en", "level": 1}],
        min_reputation=0.8,
    )
    body = assert_problem(
        client.post("/v1/assignments/next", json={"job_id": job_id}, headers=annotator.headers), 403
    )
    codes = {r["code"] for r in body["reasons"]}
    assert codes == {"missing_skill", "reputation_too_low"}
    assert claim(client, annotator) == []  # and nothing from it without job_id either


def test_the_periodic_sweep_job_returns_expired_slots(
    client: TestClient, client_account: Account, annotator: Account, db: Database
) -> None:
    from workers.runner import JobRunner
    from workers.scheduler import PERIODIC

    assert "routing.sweep_leases" in {p.job for p in PERIODIC}
    active_job(client, client_account, items=1, overlap={"min": 1}, lease_seconds=60)
    claim(client, annotator)
    clock.travel(timedelta(seconds=61))
    JobRunner(db.settings, db).run("routing.sweep_leases", ())
    with db.read_session() as session:
        status = session.scalars(select(Assignment.status)).one()
        task = session.scalars(select(Task)).one()
    assert status.value == "expired"
    assert (task.live_count, task.status.value) == (0, "open")


def test_a_job_activated_through_this_process_is_served_at_once_with_the_caches_on(
    settings: Settings, db: Database, make_account: Callable[..., Account]
) -> None:
    cached = settings.model_copy(
        update={"routing_cache_seconds": 60.0, "eligibility_cache_seconds": 60.0}
    )
    owner, annotator = make_account("client"), make_account("annotator")
    cached_db = db.with_settings(cached)
    with TestClient(create_app(cached, cached_db)) as client:
        first = active_job(client, owner)
        assert claim(client, annotator, job_id=first)  # the active-job list is cached now
        second = active_job(client, owner)
        [assignment] = claim(client, annotator, job_id=second)
        assert assignment["job"]["id"] == second
