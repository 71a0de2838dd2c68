"""Issue #22 finding 10: suspending a client pauses its jobs.

Before, a suspended client's jobs kept running: annotators kept claiming and submitting and its
escrow kept being spent. Now its active jobs pause with the reason `client_suspended`, and only an
admin resumes them: reactivating the client does not, and the client cannot.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.jobs.factories import active_job, create_job
from tests.routing.test_claim_and_submit import claim, submit
from tests.support import Account, assert_problem


def suspend(client: TestClient, admin: Account, who: Account) -> None:
    response = client.post(
        f"/v1/admin/users/{who.id}/suspend", json={"reason": "chargebacks"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text


def test_finding_10_suspending_a_client_pauses_its_active_jobs_and_claims_stop(
    client: TestClient, admin: Account, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=4)
    draft_id = create_job(client, client_account)
    in_flight = claim(client, annotator, job_id=job_id)
    assert in_flight

    suspend(client, admin, client_account)

    job = client.get(f"/v1/jobs/{job_id}", headers=admin.headers).json()
    assert (job["status"], job["pause_reason"]) == ("paused", "client_suspended")
    draft = client.get(f"/v1/jobs/{draft_id}", headers=admin.headers).json()
    assert (draft["status"], draft["pause_reason"]) == ("draft", None)
    # no new work is handed out; work in flight may still be submitted, as in any pause
    asked = client.post("/v1/assignments/next", json={"job_id": job_id}, headers=annotator.headers)
    assert asked.status_code == 200, asked.text
    assert asked.json()["assignments"] == []
    assert [r["reason"] for r in asked.json()["empty_reasons"]] == ["job-paused"]
    assert submit(client, annotator, in_flight[0]).status_code == 200


def test_finding_10_only_an_admin_resumes_a_job_paused_by_a_suspension(
    client: TestClient, admin: Account, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=4)
    suspend(client, admin, client_account)
    reactivated = client.post(
        f"/v1/admin/users/{client_account.id}/reactivate", headers=admin.headers
    )
    assert reactivated.status_code == 200, reactivated.text
    # reactivating the client does not resume its jobs, nor may the client
    job = client.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    assert (job["status"], job["pause_reason"]) == ("paused", "client_suspended")
    refused = client.post(f"/v1/jobs/{job_id}/activate", headers=client_account.headers)
    assert_problem(refused, 403, "resume-needs-admin")
    assert client.get(f"/v1/jobs/{job_id}", headers=admin.headers).json()["status"] == "paused"

    resumed = client.post(f"/v1/jobs/{job_id}/activate", headers=admin.headers)
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["status"], resumed.json()["pause_reason"]) == ("active", None)
    assert claim(client, annotator, job_id=job_id)


def test_finding_10_a_pause_says_who_paused_and_the_client_resumes_its_own(
    client: TestClient, admin: Account, client_account: Account
) -> None:
    job_id = active_job(client, client_account)
    paused = client.post(f"/v1/jobs/{job_id}/pause", headers=client_account.headers).json()
    assert paused["pause_reason"] == "paused_by_client"
    assert client.post(f"/v1/jobs/{job_id}/activate", headers=client_account.headers).is_success
    paused = client.post(f"/v1/jobs/{job_id}/pause", headers=admin.headers).json()
    assert paused["pause_reason"] == "paused_by_admin"


def test_finding_10_suspending_an_annotator_pauses_no_job(
    client: TestClient, admin: Account, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account)
    suspend(client, admin, annotator)
    assert client.get(f"/v1/jobs/{job_id}", headers=admin.headers).json()["status"] == "active"
