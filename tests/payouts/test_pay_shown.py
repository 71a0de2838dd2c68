"""Pay shown before work: the annotators' job list and every `next` carry what a task pays the
caller (base × their tier's multiplier, or the hourly rate), the gold bonus, the job's median
active seconds so far with the hourly rate it implies, and the fair-pay floor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from app.core import caches
from app.core.db import Database
from app.core.settings import Settings
from app.models import Assignment
from payouts import pay_shown
from tests.jobs.factories import active_job
from tests.quality.factories import do_tasks
from tests.support import Account

TERMS = {
    "mode": "per_task",
    "rate_micros": 50_000,
    "tier_multipliers_bps": {"mid": 15_000},
    "gold_bonus_micros": 10_000,
    "gold_bonus_min_score": 0.8,
}


def listed(client: TestClient, who: Account, job_id: int) -> dict[str, Any]:
    jobs = client.get("/v1/annotator/jobs", headers=who.headers)
    assert jobs.status_code == 200, jobs.text
    [job] = [j for j in jobs.json() if j["id"] == job_id]
    pay: dict[str, Any] = job["pay"]
    return pay


def make_mid(client: TestClient, admin: Account, who: Account) -> None:
    response = client.put(
        f"/v1/admin/annotators/{who.id}/reputation-override",
        json={"tier": "mid", "reason": "proven elsewhere"},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text


def test_the_job_list_and_next_show_what_a_task_pays_the_caller(
    client: TestClient,
    client_account: Account,
    admin: Account,
    make_account: Callable[..., Account],
    settings: Settings,
) -> None:
    job_id = active_job(client, client_account, items=6, overlap={"min": 2}, pricing=TERMS)
    entry, mid = make_account("annotator"), make_account("annotator")
    make_mid(client, admin, mid)

    before = listed(client, mid, job_id)
    assert before["mode"] == "per_task"
    assert (before["tier"], before["multiplier_bps"], before["task_micros"]) == (
        "mid",
        15_000,
        75_000,
    )
    assert (before["bonus_micros"], before["bonus_min_score"]) == (10_000, 0.8)
    assert (before["median_active_seconds"], before["implied_hourly_micros"]) == (None, None)
    assert before["hourly_rate_micros"] is None
    assert before["floor_micros_per_hour"] == settings.fair_pay_floor_micros_per_hour
    assert listed(client, entry, job_id)["task_micros"] == 50_000

    do_tasks(client, entry, job_id, 1, seconds=10)
    do_tasks(client, entry, job_id, 1, seconds=20)
    after = listed(client, mid, job_id)
    assert after["median_active_seconds"] == 15.0
    assert after["implied_hourly_micros"] == 75_000 * 3600 // 15  # the bonus left out

    claimed = client.post("/v1/assignments/next", json={"job_id": job_id}, headers=mid.headers)
    assert claimed.status_code == 200, claimed.text
    [assignment] = claimed.json()["assignments"]
    assert assignment["pay"] == after


def test_hourly_jobs_show_the_callers_rate_and_the_cap(
    client: TestClient, client_account: Account, annotator: Account
) -> None:
    pricing = {"mode": "hourly", "rate_micros": 12_000_000, "max_seconds_per_task": 600}
    job_id = active_job(client, client_account, items=2, overlap={"min": 1}, pricing=pricing)
    pay = listed(client, annotator, job_id)
    assert (pay["mode"], pay["hourly_rate_micros"], pay["max_seconds_per_task"]) == (
        "hourly",
        12_000_000,
        600,
    )
    assert (pay["task_micros"], pay["implied_hourly_micros"]) == (None, 12_000_000)
    [assignment] = client.post(
        "/v1/assignments/next", json={"job_id": job_id}, headers=annotator.headers
    ).json()["assignments"]
    assert assignment["pay"]["hourly_rate_micros"] == 12_000_000


def test_a_jobs_pace_is_read_once_per_cache_time(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    db: Database,
    settings: Settings,
) -> None:
    job_id = active_job(client, client_account, items=3, overlap={"min": 1})
    do_tasks(client, annotator, job_id, 1, seconds=10)
    cached = settings.model_copy(update={"pay_preview_cache_seconds": 60})
    caches.job_pace.clear()  # the claim above kept the pace before its submit
    with db.transaction() as session:
        assert pay_shown.medians_for(session, [job_id], cached) == {job_id: 10.0}
        session.query(Assignment).update({"active_seconds": 99})
        assert pay_shown.medians_for(session, [job_id], cached) == {job_id: 10.0}  # no read
        assert pay_shown.medians_for(session, [job_id], settings) == {job_id: 99.0}
