"""Earnings after real submits through the API: pending at submit, available at approval, back to
escrow at rejection, paid again when an appeal overturns it; tiers and hourly pay on a
controlled clock; the fair-pay floor with its top-ups, the pause when escrow runs short, and
the deposit that settles it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.core import clock
from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from app.models import AnnotatorProfile, Tier
from payouts import earnings, ledger
from payouts.errors import EarningsFinal
from tests.jobs.factories import active_job
from tests.payouts.factories import (
    assert_books_balance,
    balance,
    claim,
    decide,
    post_earnings,
    submit,
    work,
)
from tests.support import Account, assert_problem

USD = "usd"


def test_submit_posts_pending_and_approval_makes_it_available(
    client: TestClient, db: Database, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=2)
    assignment_id = work(client, db, annotator, job_id)
    assert balance(db, ledger.annotator_pending(annotator.id, USD)) == 50_000
    assert balance(db, ledger.platform_fees(USD)) == 10_000
    assert balance(db, ledger.job_escrow(job_id, USD)) == 6 * 60_000 - 60_000

    settled = decide(db, earnings.on_approved, assignment_id)
    assert (settled.earned_micros, settled.topup_micros, settled.replayed) == (50_000, 0, False)
    assert balance(db, ledger.annotator_pending(annotator.id, USD)) == 0
    assert balance(db, ledger.annotator_available(annotator.id, USD)) == 50_000
    assert decide(db, earnings.on_approved, assignment_id).replayed  # once only
    assert balance(db, ledger.annotator_available(annotator.id, USD)) == 50_000
    with pytest.raises(EarningsFinal):  # approved pay is final
        decide(db, earnings.on_rejected, assignment_id)

    mine = client.get("/v1/earnings", headers=annotator.headers).json()
    assert (mine["pending_micros"], mine["available_micros"]) == (0, 50_000)
    assert mine["jobs"] == [
        {
            "job_id": job_id,
            "title": "Sentiment of reviews",
            "approved_assignments": 1,
            "paid_seconds": 0,
            "earned_micros": 50_000,
            "topup_micros": 0,
            "effective_hourly_micros": None,
        }
    ]
    with db.read_session() as session:
        assert_books_balance(session)


def test_approval_posts_the_submit_entry_itself_when_submit_did_not(
    client: TestClient, db: Database, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=1)
    assignment = claim(client, annotator, job_id)
    submit(client, annotator, assignment)  # nothing posted yet (the lead wires it into submit)
    decide(db, earnings.on_approved, assignment["id"])
    assert balance(db, ledger.annotator_available(annotator.id, USD)) == 50_000
    assert balance(db, ledger.annotator_pending(annotator.id, USD)) == 0


def test_rejection_returns_pay_and_fee_to_escrow_and_an_overturn_pays_again(
    client: TestClient, db: Database, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    assignment_id = work(client, db, annotator, job_id)
    escrow_before = balance(db, ledger.job_escrow(job_id, USD))

    assert decide(db, earnings.on_rejected, assignment_id) == 60_000
    assert decide(db, earnings.on_rejected, assignment_id) == 0  # once only
    assert balance(db, ledger.annotator_pending(annotator.id, USD)) == 0
    assert balance(db, ledger.platform_fees(USD)) == 0
    assert balance(db, ledger.job_escrow(job_id, USD)) == escrow_before + 60_000

    # The reopened slot is still free: the overturned work takes it back, paid from the money the
    # rejection returned to escrow; the client's available balance is not asked (finding 2).
    available = balance(db, ledger.client_available(client_account.id, USD))
    settled = decide(db, earnings.on_overturned, assignment_id)
    assert settled.earned_micros == 50_000
    assert balance(db, ledger.annotator_available(annotator.id, USD)) == 50_000
    assert balance(db, ledger.platform_fees(USD)) == 10_000
    assert balance(db, ledger.client_available(client_account.id, USD)) == available
    assert balance(db, ledger.job_escrow(job_id, USD)) == escrow_before
    assert decide(db, earnings.on_overturned, assignment_id).replayed
    assert decide(db, earnings.on_rejected, assignment_id) == 0  # a replay changes nothing
    assert balance(db, ledger.annotator_available(annotator.id, USD)) == 50_000
    with db.read_session() as session:
        assert_books_balance(session)


def test_tier_multipliers_pay_by_the_annotators_tier(
    client: TestClient, db: Database, client_account: Account, annotator: Account
) -> None:
    with db.transaction() as session:
        session.add(
            AnnotatorProfile(user_id=annotator.id, tier=Tier.expert, updated_at=clock.utcnow())
        )
    job_id = active_job(
        client, client_account, items=1, pricing={"tier_multipliers_bps": {"expert": 15_000}}
    )
    work(client, db, annotator, job_id)
    assert balance(db, ledger.annotator_pending(annotator.id, USD)) == 75_000
    assert balance(db, ledger.platform_fees(USD)) == 15_000


def _hourly_work(
    http: TestClient, who: Account, job_id: int, beats: list[int], submit_after: int
) -> dict[str, object]:
    """Claim, heartbeat after each of `beats` seconds, submit `submit_after` seconds after the
    last beat, on the controlled clock."""
    assignment = claim(http, who, job_id)
    for gap in beats:
        clock.travel(timedelta(seconds=gap))
        beat = http.post(f"/v1/assignments/{assignment['id']}/heartbeat", headers=who.headers)
        assert beat.status_code == 200, beat.text
    clock.travel(timedelta(seconds=submit_after))
    submit(http, who, assignment)
    return assignment


def test_hourly_pay_is_measured_active_time_capped_per_task(
    client: TestClient, db: Database, client_account: Account, make_account: Callable[..., Account]
) -> None:
    job_id = active_job(
        client,
        client_account,
        items=2,
        overlap={"min": 1},
        lease_seconds=600,
        pricing={"mode": "hourly", "rate_micros": 36_000_000, "max_seconds_per_task": 100},
    )
    steady, slow = make_account("annotator"), make_account("annotator")
    # 3 beats 20 s apart, submit 20 s later: 80 s active at 36.00/h = 0.80
    _hourly_work(client, steady, job_id, [20, 20, 20], 20)
    # a gap of 500 s is idle time (longer than the heartbeat interval): not paid; then
    # 6 × 25 s = 150 s active, capped at 100 s = 1.00
    _hourly_work(client, slow, job_id, [25, 25, 25, 500, 25, 25], 25)
    # The poster posts their earnings (pending until approval).
    assert post_earnings(db) == 2
    assert balance(db, ledger.annotator_pending(steady.id, USD)) == 800_000
    assert balance(db, ledger.annotator_pending(slow.id, USD)) == 1_000_000


@pytest.fixture
def floor_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"fair_pay_floor_micros_per_hour": 12_000_000})


@pytest.fixture
def floor_db(db: Database, floor_settings: Settings) -> Database:
    return db.with_settings(floor_settings)


@pytest.fixture
def floor_client(floor_settings: Settings, floor_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(floor_settings, floor_db)) as test_client:
        yield test_client


def test_finding3_a_deposit_that_pays_owed_top_ups_resumes_the_job_it_paused(
    floor_client: TestClient, floor_db: Database, client_account: Account, annotator: Account
) -> None:
    http, db = floor_client, floor_db
    clock.travel(datetime(2026, 12, 1, 9, tzinfo=UTC) - clock.utcnow())
    job_id = active_job(http, client_account, items=3, overlap={"min": 1}, lease_seconds=600)
    http.post(
        f"/v1/jobs/{job_id}/deposits",
        json={"amount_micros": 150_000},
        headers=client_account.headers,
    )
    # One task in 60 active seconds at 0.05: the floor (12.00/h) wants 0.20, so 0.15 is owed.
    first = _hourly_work(http, annotator, job_id, [30], 30)
    earnings_first = decide(db, earnings.on_approved, first["id"])
    assert earnings_first.topup_micros == 125_000  # 0.15 free escrow pays 0.125 + its 20% fee
    assert earnings_first.topup_short_micros == 25_000
    job = http.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    assert job["status"] == "paused"
    spend = http.get(f"/v1/jobs/{job_id}/spend", headers=client_account.headers).json()
    assert "Fair-pay top-ups" in spend["pause_reason"]
    assert "0.025" in spend["pause_reason"]
    assert spend["topup_micros"] == 125_000

    assert spend["owed_topup_micros"] == 25_000

    # Resuming is refused until the escrow can pay what is owed; a deposit pays it at once and
    # resumes the job (issue 22, finding 3).
    refused = http.post(f"/v1/jobs/{job_id}/activate", headers=client_account.headers)
    assert assert_problem(refused, 402)["shortfall_micros"] == 25_000
    deposited = http.post(
        f"/v1/jobs/{job_id}/deposits",
        json={"amount_micros": 100_000},
        headers=client_account.headers,
    )
    assert deposited.status_code == 200, deposited.text
    assert deposited.json()["topup_micros"] == 150_000
    assert (deposited.json()["owed_topup_micros"], deposited.json()["pause_reason"]) == (0, None)
    job = http.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    assert job["status"] == "active"
    assert http.post("/v1/assignments/next", json={}, headers=annotator.headers).status_code == 200

    mine = http.get("/v1/earnings", headers=annotator.headers).json()
    assert mine["available_micros"] == 50_000 + 150_000
    assert mine["topup_micros"] == 150_000
    assert mine["jobs"][0]["effective_hourly_micros"] == 12_000_000
    statement = http.get("/v1/earnings/statement", headers=annotator.headers)
    assert statement.headers["content-type"].startswith("text/csv")
    kinds = [line.split(",")[2] for line in statement.text.splitlines()[1:]]
    assert kinds.count("topup") == 2
    with db.read_session() as session:
        assert_books_balance(session)


def test_finding3_a_deposit_leaves_a_job_its_client_paused_paused(
    floor_client: TestClient, floor_db: Database, client_account: Account, annotator: Account
) -> None:
    http, db = floor_client, floor_db
    job_id = active_job(http, client_account, items=3, overlap={"min": 1}, lease_seconds=600)
    first = _hourly_work(http, annotator, job_id, [30], 30)
    paused = http.post(f"/v1/jobs/{job_id}/pause", headers=client_account.headers)
    assert paused.status_code == 200, paused.text
    assert decide(db, earnings.on_approved, first["id"]).topup_short_micros == 150_000
    spend = http.get(f"/v1/jobs/{job_id}/spend", headers=client_account.headers).json()
    assert spend["owed_topup_micros"] == 150_000
    deposited = http.post(
        f"/v1/jobs/{job_id}/deposits",
        json={"amount_micros": 180_000},
        headers=client_account.headers,
    )
    assert deposited.status_code == 200, deposited.text
    assert deposited.json()["owed_topup_micros"] == 0
    job = http.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    assert job["status"] == "paused"  # the client's own pause is theirs to lift
    with db.read_session() as session:
        assert_books_balance(session)


def test_the_floor_counts_approved_work_on_the_job_as_a_whole(
    floor_client: TestClient, floor_db: Database, client_account: Account, annotator: Account
) -> None:
    """A fast task above the floor makes up for a slow one below it: top-ups follow the
    annotator's effective rate on the job, not each task."""
    http, db = floor_client, floor_db
    job_id = active_job(
        http,
        client_account,
        items=2,
        overlap={"min": 1},
        rate=100_000,
    )
    fast = _hourly_work(http, annotator, job_id, [], 10)  # 0.10 in 10 s: 36.00/h
    slow = _hourly_work(http, annotator, job_id, [25], 25)  # 0.10 in 50 s: 7.20/h
    assert decide(db, earnings.on_approved, fast["id"]).topup_micros == 0
    # together: 0.20 for 60 s = 12.00/h, exactly the floor
    assert decide(db, earnings.on_approved, slow["id"]).topup_micros == 0
