"""Escrow: activation reserves every task slot or fails with a 402 stating the shortfall (and
changes nothing); imports into an active job and a higher overlap reserve more; cancelling or
completing releases what is unspent, keeping what live assignments may still cost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core import clock
from app.core.db import Database
from app.models import LedgerEntry, Task
from app.routing.service import expire_overdue_assignments
from payouts import escrow, ledger
from payouts.background import POST_EARNINGS_JOB
from tests.jobs.factories import active_job, draft_job, jsonl, reviews, upload
from tests.outbox import run_due_jobs
from tests.payouts.factories import (
    assert_books_balance,
    balance,
    claim,
    post_earnings,
    submit,
    work,
)
from tests.support import Account, assert_problem
from workers.scheduler import PERIODIC

USD = "usd"
# 3 tasks × overlap 3 × (0.05 + 20% fee) = 0.54
THREE_TASKS_BUDGET = 9 * 60_000


def fund(http: TestClient, admin: Account, client: Account, micros: int) -> None:
    response = http.post(
        f"/v1/admin/clients/{client.id}/credits",
        json={"amount_micros": micros, "reason": "invoice 42 paid by wire"},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text


def test_activation_without_enough_funds_is_a_402_stating_the_shortfall_and_changes_nothing(
    client: TestClient, db: Database, admin: Account, make_account: Callable[..., Account]
) -> None:
    owner = make_account("client", funded=False)
    fund(client, admin, owner, 500_000)
    job_id = draft_job(client, owner, items=3)

    body = assert_problem(client.post(f"/v1/jobs/{job_id}/activate", headers=owner.headers), 402)
    assert body["type"] == "/problems/insufficient-funds"
    assert body["required_micros"] == THREE_TASKS_BUDGET
    assert body["available_micros"] == 500_000
    assert body["shortfall_micros"] == 40_000
    assert body["shortfall"] == "0.04"

    job = client.get(f"/v1/jobs/{job_id}", headers=owner.headers).json()
    assert job["status"] == "draft"
    with db.read_session() as session:
        assert session.scalar(select(func.count()).where(Task.job_id == job_id)) == 0
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 1  # the credit
    assert balance(db, ledger.client_available(owner.id, USD)) == 500_000

    fund(client, admin, owner, 40_000)
    activated = client.post(f"/v1/jobs/{job_id}/activate", headers=owner.headers)
    assert activated.status_code == 200, activated.text
    assert activated.json()["pricing"]["platform_fee_bps"] == 2000
    assert balance(db, ledger.client_available(owner.id, USD)) == 0
    assert balance(db, ledger.job_escrow(job_id, USD)) == THREE_TASKS_BUDGET
    spend = client.get(f"/v1/jobs/{job_id}/spend", headers=owner.headers).json()
    assert spend["reserved_slots"] == 9
    assert spend["slot_cost_micros"] == 60_000
    assert spend["remaining_escrow_micros"] == THREE_TASKS_BUDGET


def test_escrow_reserves_each_slot_at_the_highest_tier_and_the_gold_bonus(
    client: TestClient, db: Database, client_account: Account
) -> None:
    job_id = active_job(
        client,
        client_account,
        items=2,
        overlap={"min": 1, "max": 2},
        pricing={"tier_multipliers_bps": {"expert": 20_000}, "gold_bonus_micros": 5_000},
    )
    # 2 tasks × 2 slots × (0.10 + 0.005 bonus) × 1.2
    assert balance(db, ledger.job_escrow(job_id, USD)) == 4 * 126_000


def test_hourly_jobs_need_a_cap_and_reserve_it(
    client: TestClient, db: Database, client_account: Account
) -> None:
    uncapped = client.post(
        "/v1/jobs",
        json={
            "title": "t",
            "label_schema": {"controls": [{"name": "s", "type": "text", "field": "text"}]},
            "pricing": {"mode": "hourly", "rate_micros": 12_000_000},
        },
        headers=client_account.headers,
    )
    body = assert_problem(uncapped, 422)
    assert "max_seconds_per_task" in str(body["errors"])
    job_id = active_job(
        client,
        client_account,
        items=1,
        overlap={"min": 1},
        pricing={"mode": "hourly", "rate_micros": 12_000_000, "max_seconds_per_task": 300},
    )
    assert balance(db, ledger.job_escrow(job_id, USD)) == 1_000_000 * 12 // 10  # 5 min of 12/h


def test_importing_into_an_active_job_reserves_the_new_slots_or_is_refused(
    client: TestClient, db: Database, admin: Account, make_account: Callable[..., Account]
) -> None:
    owner = make_account("client", funded=False)
    fund(client, admin, owner, THREE_TASKS_BUDGET + 60_000 * 3)
    job_id = active_job(client, owner, items=3)
    more = upload(client, owner, job_id, jsonl(reviews(1, start=10)))
    assert more.status_code == 201, more.text
    assert balance(db, ledger.job_escrow(job_id, USD)) == THREE_TASKS_BUDGET + 180_000
    refused = upload(client, owner, job_id, jsonl(reviews(1, start=20)))
    body = assert_problem(refused, 402)
    assert body["shortfall_micros"] == 180_000
    with db.read_session() as session:  # the import rolled back with its tasks
        assert session.scalar(select(func.count()).where(Task.job_id == job_id)) == 4


def test_raising_overlap_max_on_an_active_job_reserves_the_extra_slots(
    client: TestClient, db: Database, admin: Account, make_account: Callable[..., Account]
) -> None:
    owner = make_account("client", funded=False)
    fund(client, admin, owner, THREE_TASKS_BUDGET)
    job_id = active_job(client, owner, items=3)
    refused = client.patch(
        f"/v1/jobs/{job_id}", json={"overlap": {"min": 3, "max": 4}}, headers=owner.headers
    )
    assert assert_problem(refused, 402)["shortfall_micros"] == 3 * 60_000
    fund(client, admin, owner, 3 * 60_000)
    raised = client.patch(
        f"/v1/jobs/{job_id}", json={"overlap": {"min": 3, "max": 4}}, headers=owner.headers
    )
    assert raised.status_code == 200, raised.text
    assert balance(db, ledger.job_escrow(job_id, USD)) == 12 * 60_000


def test_cancelling_releases_unspent_escrow_but_keeps_what_live_work_may_cost(
    client: TestClient,
    db: Database,
    admin: Account,
    make_account: Callable[..., Account],
    annotator: Account,
) -> None:
    owner = make_account("client", funded=False)
    fund(client, admin, owner, 1_000_000)
    job_id = active_job(client, owner, items=3, lease_seconds=60)
    work(client, db, annotator, job_id)  # 0.06 spent
    claim(client, make_account("annotator"), job_id)  # live: may still submit

    cancelled = client.post(f"/v1/jobs/{job_id}/cancel", headers=owner.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert balance(db, ledger.job_escrow(job_id, USD)) == 60_000  # one live slot kept
    assert balance(db, ledger.client_available(owner.id, USD)) == 1_000_000 - 60_000 - 60_000

    clock.travel(timedelta(seconds=120 + 61))  # the live lease and its grace run out
    with db.transaction() as session:
        expire_overdue_assignments(session, clock.utcnow())
        escrow.release_closed_budgets(session)
    assert balance(db, ledger.job_escrow(job_id, USD)) == 0
    assert balance(db, ledger.client_available(owner.id, USD)) == 1_000_000 - 60_000
    with db.read_session() as session:
        assert_books_balance(session)


def test_work_submitted_but_not_yet_posted_keeps_its_cost_in_escrow_until_the_poster_runs(
    client: TestClient,
    db: Database,
    admin: Account,
    make_account: Callable[..., Account],
    annotator: Account,
) -> None:
    owner = make_account("client", funded=False)
    fund(client, admin, owner, 1_000_000)
    job_id = active_job(client, owner, items=3)
    submit(client, annotator, claim(client, annotator, job_id))  # the poster has not run yet

    cancelled = client.post(f"/v1/jobs/{job_id}/cancel", headers=owner.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert balance(db, ledger.job_escrow(job_id, USD)) == 60_000  # kept for the unposted work
    assert balance(db, ledger.client_available(owner.id, USD)) == 1_000_000 - 60_000

    assert post_earnings(db) == 1  # the scheduler's run: the work draws what was kept
    assert balance(db, ledger.job_escrow(job_id, USD)) == 0
    assert balance(db, ledger.annotator_pending(annotator.id, USD)) == 50_000
    with db.transaction() as session:
        assert escrow.release_closed_budgets(session) == 1  # nothing left: settled
        assert escrow.release_closed_budgets(session) == 0
    assert post_earnings(db) == 0
    with db.read_session() as session:
        assert_books_balance(session)


def test_the_scheduler_runs_the_earnings_poster_every_few_seconds() -> None:
    [poster] = [p for p in PERIODIC if p.job == POST_EARNINGS_JOB]
    assert poster.every is not None
    assert poster.every <= timedelta(seconds=10)


def test_completing_releases_unspent_escrow_and_the_periodic_job_finishes_it(
    client: TestClient, db: Database, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=3)
    work(client, db, annotator, job_id)
    completed = client.post(f"/v1/jobs/{job_id}/complete", headers=client_account.headers)
    assert completed.status_code == 200, completed.text
    assert balance(db, ledger.job_escrow(job_id, USD)) == 0
    spend = client.get(f"/v1/jobs/{job_id}/spend", headers=client_account.headers).json()
    assert spend["closed"] is True
    assert spend["released_micros"] == THREE_TASKS_BUDGET - 60_000
    assert spend["work_micros"] == 50_000
    assert spend["fee_micros"] == 10_000
    assert spend["spent_micros"] == 60_000
    # Nothing live: the budget is settled and the periodic release has nothing to do, and
    # completing queued no money job (the final refit it queues is the jobs domain's).
    with db.transaction() as session:
        assert escrow.release_closed_budgets(session) == 0
    assert run_due_jobs(db, db.settings, prefix="payouts.") == []


def test_spend_is_only_for_the_jobs_owner(
    client: TestClient, client_account: Account, make_account: Callable[..., Account]
) -> None:
    job_id = active_job(client, client_account, items=1)
    other = make_account("client")
    assert_problem(client.get(f"/v1/jobs/{job_id}/spend", headers=other.headers), 404)
    annotator = make_account("annotator")
    assert_problem(client.get(f"/v1/jobs/{job_id}/spend", headers=annotator.headers), 403)
    assert_problem(
        client.post(
            f"/v1/jobs/{job_id}/deposits", json={"amount_micros": 5}, headers=other.headers
        ),
        404,
    )


def test_deposits_need_an_activated_job(client: TestClient, client_account: Account) -> None:
    job_id = draft_job(client, client_account, items=1)
    refused = client.post(
        f"/v1/jobs/{job_id}/deposits", json={"amount_micros": 5}, headers=client_account.headers
    )
    assert assert_problem(refused, 409)["type"] == "/problems/job-not-activated"
