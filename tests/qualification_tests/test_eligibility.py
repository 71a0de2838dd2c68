"""Job eligibility: each reason code, the numbers behind it, and the cheap batch form."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, select

from app.core.db import Database
from app.models import Assignment, AssignmentStatus, Job, Role, Task
from qualification_tests.eligibility import explain_eligibility, explain_eligibility_for_jobs
from tests.jobs.factories import active_job, create_job
from tests.qualification_tests.factories import Clock, create_test, make_skill, take
from tests.support import Account, assert_problem


def eligibility(client: TestClient, annotator: Account, job_id: int) -> dict[str, Any]:
    response = client.get(f"/v1/annotator/jobs/{job_id}/eligibility", headers=annotator.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [r["code"] for r in body["reasons"]]


def grant(client: TestClient, admin: Account, annotator: Account, **body: Any) -> dict[str, Any]:
    payload = {"skill": "sentiment-en", "level": 1, "reason": "vetted by hand", **body}
    response = client.post(
        f"/v1/admin/annotators/{annotator.id}/skills", json=payload, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    out: dict[str, Any] = response.json()
    return out


def test_an_annotator_meeting_every_requirement_is_eligible(
    client: TestClient, admin: Account, client_account: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    job_id = active_job(
        client, client_account, required_skills=[{"skill": "sentiment-en", "level": 1}]
    )
    grant(client, admin, annotator)
    assert eligibility(client, annotator, job_id) == {
        "job_id": job_id,
        "eligible": True,
        "reasons": [],
    }


def test_missing_skill_and_level_too_low_say_what_is_required(
    client: TestClient, admin: Account, client_account: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    job_id = active_job(
        client, client_account, required_skills=[{"skill": "sentiment-en", "level": 2}]
    )
    body = eligibility(client, annotator, job_id)
    assert body["eligible"] is False
    assert body["reasons"][0]["code"] == "missing_skill"
    assert (body["reasons"][0]["skill"], body["reasons"][0]["required"]) == ("sentiment-en", 2)
    grant(client, admin, annotator, level=1)
    reason = eligibility(client, annotator, job_id)["reasons"][0]
    assert (reason["code"], reason["required"], reason["actual"]) == ("skill_level_too_low", 2, 1)


def test_an_expired_grant_makes_the_annotator_ineligible_with_skill_expired(
    client: TestClient, admin: Account, client_account: Account, annotator: Account, clock: Clock
) -> None:
    make_skill(client, admin)
    job_id = active_job(client, client_account, required_skills=[{"skill": "sentiment-en"}])
    test = create_test(client, admin, grant_valid_days=30)
    assert take(client, annotator, test["id"], right=4)["passed"] is True
    assert eligibility(client, annotator, job_id)["eligible"] is True
    clock.advance(days=31)
    body = eligibility(client, annotator, job_id)
    assert codes(body) == ["skill_expired"]
    assert body["reasons"][0]["until"] is not None


def test_a_revoked_grant_no_longer_counts_and_stays_on_record(
    client: TestClient, admin: Account, client_account: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    job_id = active_job(client, client_account, required_skills=[{"skill": "sentiment-en"}])
    granted = grant(client, admin, annotator)
    assert granted["reason"] == "vetted by hand"
    assert granted["granted_by_id"] == admin.id
    assert eligibility(client, annotator, job_id)["eligible"] is True
    revoked = client.post(
        f"/v1/admin/skill-grants/{granted['id']}/revoke",
        json={"reason": "caught copying answers"},
        headers=admin.headers,
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoke_reason"] == "caught copying answers"
    assert revoked.json()["revoked_by_id"] == admin.id
    assert codes(eligibility(client, annotator, job_id)) == ["missing_skill"]
    history = client.get(
        f"/v1/admin/annotators/{annotator.id}/skills", headers=admin.headers
    ).json()
    assert [g["revoked_at"] is not None for g in history] == [True]
    again = client.post(
        f"/v1/admin/skill-grants/{granted['id']}/revoke",
        json={"reason": "twice"},
        headers=admin.headers,
    )
    assert_problem(again, 409, "grant-already-revoked")


def test_reputation_and_tier_below_the_minimum_report_both_numbers(
    client: TestClient, admin: Account, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, min_reputation=0.8, min_tier="mid")
    body = eligibility(client, annotator, job_id)
    by_code = {r["code"]: r for r in body["reasons"]}
    assert (by_code["reputation_too_low"]["required"], by_code["reputation_too_low"]["actual"]) == (
        0.8,
        0.5,
    )
    assert (by_code["tier_too_low"]["required"], by_code["tier_too_low"]["actual"]) == (
        "mid",
        "entry",
    )
    profile = client.put(
        f"/v1/admin/annotators/{annotator.id}/profile",
        json={"reputation": 0.85, "tier": "expert"},
        headers=admin.headers,
    )
    assert profile.status_code == 200, profile.text
    assert eligibility(client, annotator, job_id)["eligible"] is True


def test_a_ban_makes_the_annotator_ineligible_until_it_ends_or_is_lifted(
    client: TestClient, admin: Account, client_account: Account, annotator: Account, clock: Clock
) -> None:
    job_id = active_job(client, client_account)
    until = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    ban = client.post(
        f"/v1/jobs/{job_id}/bans",
        json={"annotator_id": annotator.id, "until": until, "reason": "rushed answers"},
        headers=client_account.headers,
    )
    assert ban.status_code == 201, ban.text
    body = eligibility(client, annotator, job_id)
    assert codes(body) == ["banned"]
    assert "rushed answers" in body["reasons"][0]["detail"]
    clock.advance(days=3)
    assert eligibility(client, annotator, job_id)["eligible"] is True
    clock.advance(days=-3)
    permanent = client.post(
        f"/v1/jobs/{job_id}/bans",
        json={"annotator_id": annotator.id, "reason": "fraud"},
        headers=admin.headers,
    )
    assert permanent.status_code == 201
    clock.advance(days=365)
    assert codes(eligibility(client, annotator, job_id)) == ["banned"]
    lifted = client.delete(f"/v1/jobs/{job_id}/bans/{annotator.id}", headers=admin.headers)
    assert lifted.status_code == 204
    assert eligibility(client, annotator, job_id)["eligible"] is True
    bans = client.get(f"/v1/jobs/{job_id}/bans", headers=client_account.headers).json()
    assert all(b["lifted_at"] is not None for b in bans)


def test_a_full_job_counts_live_and_done_assignments_but_not_released_ones(
    client: TestClient, db: Database, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, max_tasks_per_annotator=2)
    now = datetime.now(UTC)
    with db.transaction() as session:
        tasks = list(session.scalars(select(Task.id).where(Task.job_id == job_id)))
        for task_id, status in zip(
            tasks, [AssignmentStatus.submitted, AssignmentStatus.released], strict=False
        ):
            session.add(
                Assignment(
                    task_id=task_id,
                    job_id=job_id,
                    annotator_id=annotator.id,
                    status=status,
                    claimed_at=now,
                    lease_expires_at=now,
                    last_seen_at=now,
                )
            )
    assert eligibility(client, annotator, job_id)["eligible"] is True
    with db.transaction() as session:
        session.add(
            Assignment(
                task_id=tasks[2],
                job_id=job_id,
                annotator_id=annotator.id,
                status=AssignmentStatus.active,
                claimed_at=now,
                lease_expires_at=now,
                last_seen_at=now,
            )
        )
    reason = eligibility(client, annotator, job_id)["reasons"][0]
    assert (reason["code"], reason["required"], reason["actual"]) == ("job_full", 2, 2)


def test_a_paused_job_is_not_active(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account)
    client.post(f"/v1/jobs/{job_id}/pause", headers=client_account.headers)
    reason = eligibility(client, annotator, job_id)["reasons"][0]
    assert (reason["code"], reason["actual"]) == ("job_not_active", "paused")
    draft = create_job(client, client_account)
    assert_problem(
        client.get(f"/v1/annotator/jobs/{draft}/eligibility", headers=annotator.headers), 404
    )


def test_a_private_tests_skill_counts_only_for_its_clients_jobs(
    client: TestClient,
    admin: Account,
    make_account: Callable[..., Account],
    annotator: Account,
) -> None:
    make_skill(client, admin)
    owner, other = make_account(Role.client), make_account(Role.client)
    own_job = active_job(client, owner, required_skills=[{"skill": "sentiment-en"}])
    other_job = active_job(client, other, required_skills=[{"skill": "sentiment-en"}])
    test = create_test(client, owner)
    assert take(client, annotator, test["id"], right=4)["passed"] is True
    assert eligibility(client, annotator, own_job)["eligible"] is True
    assert codes(eligibility(client, annotator, other_job)) == ["missing_skill"]


def test_the_job_list_shows_eligibility_and_nothing_of_the_client(
    client: TestClient, admin: Account, client_account: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    open_job = active_job(client, client_account)
    gated = active_job(client, client_account, required_skills=[{"skill": "sentiment-en"}])
    listed = client.get("/v1/annotator/jobs", headers=annotator.headers).json()
    by_id = {j["id"]: j for j in listed}
    assert by_id[open_job]["eligible"] is True
    assert codes(by_id[gated]) == ["missing_skill"]
    assert "client_id" not in by_id[open_job]
    assert "gold_ratio" not in by_id[open_job]
    only = client.get("/v1/annotator/jobs?eligible_only=true", headers=annotator.headers).json()
    assert [j["id"] for j in only] == [open_job]


def test_the_batch_form_issues_the_same_few_queries_for_many_jobs(
    client: TestClient, db: Database, admin: Account, client_account: Account, annotator: Account
) -> None:
    make_skill(client, admin)
    ids = [
        active_job(client, client_account, required_skills=[{"skill": "sentiment-en"}])
        for _ in range(5)
    ]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    with db.session() as session:
        jobs = list(session.scalars(select(Job).where(Job.id.in_(ids))))
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            one = explain_eligibility(session, annotator.id, jobs[0])
            single = len(statements)
            many = explain_eligibility_for_jobs(session, annotator.id, jobs)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) - single == single <= 4
    assert set(many) == set(ids)
    assert [r.code for r in one.reasons] == ["missing_skill"]
    assert all(not e.eligible for e in many.values())
