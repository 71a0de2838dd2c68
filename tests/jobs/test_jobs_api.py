from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.jobs.factories import SENTIMENT, active_job, create_job, job_body, jsonl, reviews, upload
from tests.support import Account, assert_problem


def test_client_creates_and_reads_a_draft_job(
    client: TestClient, client_account: Account, admin: Account
) -> None:
    skill = {"slug": "sentiment-en", "name": "Sentiment (English)", "max_level": 3}
    assert client.post("/v1/admin/skills", json=skill, headers=admin.headers).status_code == 201
    created = client.post(
        "/v1/jobs",
        headers=client_account.headers,
        json=job_body(
            required_skills=[{"skill": "sentiment-en", "level": 2}],
            min_reputation=0.7,
            lease_seconds=300,
            overlap={"min": 3, "max": 5},
            confidence_threshold=0.8,
        ),
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "draft"
    assert job["pricing"] == {
        "mode": "per_task",
        "rate_micros": 50_000,
        "rate": "0.05",
        "tier_multipliers_bps": None,
        "gold_bonus_micros": 0,
        "gold_bonus_min_score": None,
        "max_seconds_per_task": None,
        "platform_fee_bps": None,  # fixed when the job first reserves escrow
    }
    assert job["overlap"] == {"min": 3, "max": 5}
    assert job["required_skills"] == [{"skill": "sentiment-en", "level": 2}]
    assert job["label_schema"]["controls"][0]["labels"] == ["positive", "negative", "neutral"]

    fetched = client.get(f"/v1/jobs/{job['id']}", headers=client_account.headers).json()
    assert fetched == job
    listed = client.get("/v1/jobs", headers=client_account.headers).json()["items"]
    assert [j["id"] for j in listed] == [job["id"]]


def test_another_clients_job_is_404_everywhere(
    client: TestClient, make_account: Callable[..., Account]
) -> None:
    owner, other = make_account("client"), make_account("client")
    job_id = create_job(client, owner)
    for method, path in [
        ("GET", ""),
        ("PATCH", ""),
        ("POST", "/activate"),
        ("GET", "/progress"),
        ("GET", "/export"),
        ("POST", "/items"),
    ]:
        response = client.request(
            method,
            f"/v1/jobs/{job_id}{path}",
            headers=other.headers,
            json={} if method == "PATCH" else None,
        )
        assert_problem(response, 404)
    assert client.get("/v1/jobs", headers=other.headers).json()["items"] == []


def test_admin_sees_every_job(client: TestClient, client_account: Account, admin: Account) -> None:
    job_id = create_job(client, client_account)
    assert client.get(f"/v1/jobs/{job_id}", headers=admin.headers).status_code == 200


def test_annotators_cannot_use_client_job_endpoints(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    job_id = create_job(client, client_account)
    assert_problem(client.get(f"/v1/jobs/{job_id}", headers=annotator.headers), 403)
    assert_problem(client.post("/v1/jobs", json=job_body(), headers=annotator.headers), 403)


def test_status_machine_and_illegal_moves(client: TestClient, client_account: Account) -> None:
    headers = client_account.headers
    job_id = create_job(client, client_account)
    activate = client.post(f"/v1/jobs/{job_id}/activate", headers=headers)
    body = assert_problem(activate, 409, "job-has-no-items")
    assert "item" in body["detail"]  # nothing to label yet
    pause = client.post(f"/v1/jobs/{job_id}/pause", headers=headers)
    assert_problem(pause, 409, "transition-not-allowed")

    assert upload(client, client_account, job_id, jsonl(reviews(5))).status_code == 201
    assert client.post(f"/v1/jobs/{job_id}/activate", headers=headers).json()["status"] == "active"
    assert client.post(f"/v1/jobs/{job_id}/pause", headers=headers).json()["status"] == "paused"
    assert client.post(f"/v1/jobs/{job_id}/activate", headers=headers).json()["status"] == "active"
    done = client.post(f"/v1/jobs/{job_id}/complete", headers=headers).json()
    assert done["status"] == "completed"
    assert done["finished_at"] is not None

    activate = client.post(f"/v1/jobs/{job_id}/activate", headers=headers)
    body = assert_problem(activate, 409, "transition-not-allowed")
    assert body["current_status"] == "completed"
    assert body["allowed_actions"] == []
    cancel = client.post(f"/v1/jobs/{job_id}/cancel", headers=headers)
    assert_problem(cancel, 409, "transition-not-allowed")


def test_cancel_withdraws_open_tasks(client: TestClient, client_account: Account) -> None:
    headers = client_account.headers
    job_id = active_job(client, client_account, items=4)
    client.post(f"/v1/jobs/{job_id}/cancel", headers=headers)
    tasks = client.get(f"/v1/jobs/{job_id}/progress", headers=headers).json()["tasks"]
    assert tasks == {"open": 0, "full": 0, "complete": 0, "cancelled": 4}


def test_work_defining_fields_freeze_after_activation(
    client: TestClient, client_account: Account
) -> None:
    headers = client_account.headers
    job_id = create_job(client, client_account)
    patched = client.patch(
        f"/v1/jobs/{job_id}", headers=headers, json={"title": "Renamed", "items_per_task": 2}
    )
    assert patched.json()["title"] == "Renamed"
    assert patched.json()["items_per_task"] == 2
    upload(client, client_account, job_id, jsonl(reviews(4)))
    client.post(f"/v1/jobs/{job_id}/activate", headers=headers)

    body = assert_problem(
        client.patch(
            f"/v1/jobs/{job_id}",
            headers=headers,
            json={"pricing": {"rate_micros": 1}, "gold_ratio": 0.2},
        ),
        409,
        "job-frozen",
    )
    assert {e["pointer"] for e in body["errors"]} == {"#/pricing", "#/gold_ratio"}
    ok = client.patch(
        f"/v1/jobs/{job_id}", headers=headers, json={"priority": 5, "overlap": {"min": 3, "max": 6}}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["overlap"] == {"min": 3, "max": 6}


def test_schema_cannot_change_once_items_exist(client: TestClient, client_account: Account) -> None:
    job_id = create_job(client, client_account)
    upload(client, client_account, job_id, jsonl(reviews(2)))
    other = {"controls": [{"name": "n", "type": "number"}]}
    assert_problem(
        client.patch(
            f"/v1/jobs/{job_id}", headers=client_account.headers, json={"label_schema": other}
        ),
        409,
        "label-schema-locked",
    )


def test_invalid_job_bodies_point_at_the_field(client: TestClient, client_account: Account) -> None:
    bad_overlap = job_body(overlap={"min": 3, "max": 2})
    body = assert_problem(
        client.post("/v1/jobs", json=bad_overlap, headers=client_account.headers), 422
    )
    assert body["errors"][0]["pointer"].startswith("#/overlap")

    unknown_type = job_body({"controls": [{"name": "x", "type": "video", "field": "f"}]})
    body = assert_problem(
        client.post("/v1/jobs", json=unknown_type, headers=client_account.headers), 422
    )
    assert body["errors"][0]["pointer"].startswith("#/label_schema/controls/0")

    negative_price = job_body(pricing={"mode": "per_task", "rate_micros": -1})
    body = assert_problem(
        client.post("/v1/jobs", json=negative_price, headers=client_account.headers), 422
    )
    assert body["errors"][0]["pointer"] == "#/pricing/rate_micros"


def test_label_studio_config_is_accepted_as_the_schema(
    client: TestClient, client_account: Account
) -> None:
    config = """<View><Text name="text" value="$text"/>
      <Choices name="sentiment" toName="text"><Choice value="positive"/><Choice value="negative"/>
      </Choices></View>"""
    job_id = create_job(client, client_account, config)
    job = client.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    control = job["label_schema"]["controls"][0]
    assert (control["type"], control["field"], control["labels"]) == (
        "choices",
        "text",
        ["positive", "negative"],
    )
    assert SENTIMENT["controls"][0]["field"] == control["field"]
