"""A client banning an id from its job learns nothing about other users' roles: unknown ids,
clients and admins get the same 404, and a bad body the same 422 whoever the id names."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from app.core.clock import utcnow
from app.models import Role
from tests.jobs.factories import create_job
from tests.support import Account


def test_a_ban_answers_alike_for_unknown_ids_clients_and_admins(
    client: TestClient, make_account: Callable[..., Account], admin: Account, annotator: Account
) -> None:
    owner, other_client = make_account(Role.client), make_account(Role.client)
    job_id = create_job(client, owner)
    not_annotators = {"unknown": 10**9, "client": other_client.id, "admin": admin.id}
    past = (utcnow() - timedelta(days=1)).isoformat()
    future = (utcnow() + timedelta(days=1)).isoformat()

    def ban(annotator_id: int, until: str | None) -> tuple[int, dict[str, object]]:
        body = {"annotator_id": annotator_id, "reason": "low quality", "until": until}
        response = client.post(f"/v1/jobs/{job_id}/bans", json=body, headers=owner.headers)
        problem = response.json()
        problem.pop("instance", None)
        return response.status_code, problem

    for until in (None, future):
        answers = {who: ban(user_id, until) for who, user_id in not_annotators.items()}
        assert {status for status, _ in answers.values()} == {404}
        assert len({str(problem) for _, problem in answers.values()}) == 1, answers
    # A bad body is 422 whoever the id names: an annotator's id is not told apart by it.
    for user_id in (*not_annotators.values(), annotator.id):
        status, problem = ban(user_id, past)
        assert status == 422
        assert problem["errors"] == [{"pointer": "#/until", "detail": "must be in the future"}]
    assert client.get(f"/v1/jobs/{job_id}/bans", headers=owner.headers).json() == []
    lifts = []
    for user_id in (*not_annotators.values(), annotator.id):
        lifted = client.delete(f"/v1/jobs/{job_id}/bans/{user_id}", headers=owner.headers)
        problem = lifted.json()
        problem.pop("instance")
        lifts.append((lifted.status_code, problem))
    assert all(lift == lifts[0] for lift in lifts)  # "not banned from this job", whoever it is
    assert lifts[0][0] == 404
