"""The audit (`GET /v1/admin/ledger/audit`): quiet over books a whole money life wrote, and
each invariant reported, with its rows, when bad rows are written on purpose."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core import clock
from app.core.db import Database
from app.models import Funding, JobBudget, JobEarnings, Payout
from app.models.money import EntryKind, FundingStatus, PayoutsProviderName, PayoutStatus
from payouts import ledger
from payouts.background import audit_books
from tests.jobs.factories import active_job
from tests.payouts.factories import claim, submit, work
from tests.quality.test_appeals import appeal, resolve
from tests.support import Account

USD = "usd"


def _audit(http: TestClient, admin: Account) -> dict[str, Any]:
    response = http.get("/v1/admin/ledger/audit", headers=admin.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _breaches(http: TestClient, admin: Account) -> dict[str, list[dict[str, Any]]]:
    return {b["invariant"]: b["rows"] for b in _audit(http, admin)["breaches"]}


@pytest.fixture
def books(
    client: TestClient, db: Database, admin: Account, client_account: Account, annotator: Account
) -> dict[str, int]:
    """A money life: work approved, rejected, overturned on appeal, rejected before the poster,
    paid out, a payout failed and retried."""
    job_id = active_job(client, client_account, items=5, overlap={"min": 1}, rate=1_000_000)
    approved = work(client, db, annotator, job_id)
    ok = client.post(
        f"/v1/quality/jobs/{job_id}/approve",
        json={"assignment_ids": [approved]},
        headers=client_account.headers,
    )
    assert ok.status_code == 200, ok.text
    contested = work(client, db, annotator, job_id)
    rejected = client.post(
        f"/v1/quality/jobs/{job_id}/reject",
        json={"assignment_ids": [contested], "reason": "mislabelled"},
        headers=client_account.headers,
    )
    assert rejected.status_code == 200, rejected.text
    filed = appeal(client, annotator, contested)
    assert filed.status_code == 201, filed.text
    assert resolve(client, admin, filed.json()["id"], outcome="overturned").status_code == 200
    early = claim(client, annotator, job_id)
    submit(client, annotator, early)
    client.post(
        f"/v1/quality/jobs/{job_id}/reject",
        json={"assignment_ids": [early["id"]], "reason": "mislabelled"},
        headers=client_account.headers,
    )
    [payout] = client.post("/v1/admin/payouts/batches", headers=admin.headers).json()["payouts"]
    failed = client.post(
        f"/v1/admin/payouts/{payout['id']}/fail", json={"reason": "bounced"}, headers=admin.headers
    )
    assert failed.status_code == 200, failed.text
    retried = client.post(f"/v1/admin/payouts/{payout['id']}/retry", headers=admin.headers)
    assert retried.status_code == 201, retried.text
    client.post(
        f"/v1/admin/payouts/{retried.json()['id']}/settle",
        json={"reference": "wire 1"},
        headers=admin.headers,
    )
    return {"job_id": job_id, "assignment_id": approved, "payout_id": payout["id"]}


def test_the_audit_of_books_a_money_life_wrote_finds_nothing(
    client: TestClient, admin: Account, books: dict[str, int]
) -> None:
    report = _audit(client, admin)
    assert report["breaches"] == []
    assert report["ok"] is True
    assert report["checked"]["assignment_earning"] >= 3
    assert report["checked"]["payout"] == 2


def _post(db: Database, cause: str, kind: EntryKind, source: Any, target: Any, **refs: Any) -> None:
    with db.transaction() as session:
        ledger.post_entry(
            session,
            ledger.transfer(cause, kind, source, [(target, 70_000)], "written on purpose", **refs),
            clock.utcnow(),
        )


def test_the_audit_reports_an_assignment_paid_twice(
    client: TestClient, db: Database, admin: Account, annotator: Account, books: dict[str, int]
) -> None:
    _post(
        db,
        "twice",
        EntryKind.overturn,
        ledger.external(USD),
        ledger.annotator_available(annotator.id, USD),
        assignment_id=books["assignment_id"],
    )
    [row] = _breaches(client, admin)["assignment_earning"]
    assert row["assignment_id"] == books["assignment_id"]
    assert row["net_earning_micros"] == row["price_micros"] + 70_000


def test_the_audit_reports_escrow_that_does_not_add_up(
    client: TestClient, db: Database, admin: Account, books: dict[str, int]
) -> None:
    with db.transaction() as session:
        session.get_one(JobBudget, books["job_id"]).reserved_slots += 1
    [row] = _breaches(client, admin)["job_escrow"]
    assert row["job_id"] == books["job_id"]
    assert "reservations differ from the budget's slots" in row["problems"]


def test_the_audit_reports_client_money_from_nowhere(
    client: TestClient, db: Database, admin: Account, client_account: Account, books: dict[str, int]
) -> None:
    with db.transaction() as session:
        session.add(
            Funding(
                client_id=client_account.id,
                provider=PayoutsProviderName.manual,
                status=FundingStatus.credited,
                amount_micros=5,
                credited_micros=5,
                currency=USD,
                created_at=clock.utcnow(),
            )
        )
    [row] = _breaches(client, admin)["client_money"]
    assert (row["client_id"], row["unexplained_micros"]) == (client_account.id, 5)


def test_the_audit_reports_a_payout_without_its_entries(
    client: TestClient, db: Database, admin: Account, annotator: Account, books: dict[str, int]
) -> None:
    with db.transaction() as session:
        bogus = Payout(
            annotator_id=annotator.id,
            provider=PayoutsProviderName.manual,
            status=PayoutStatus.paid,
            amount_micros=1_000_000,
            currency=USD,
            attempts=0,
            created_at=clock.utcnow(),
        )
        session.add(bogus)
        session.flush()
        bogus_id = bogus.id
    rows = _breaches(client, admin)["payout"]
    [row] = [r for r in rows if r.get("payout_id") == bogus_id]
    assert "no payout entry" in row["problems"]
    assert "paid without its payout-paid entry" in row["problems"]


def test_the_audit_reports_a_top_up_the_measured_time_does_not_explain(
    client: TestClient, db: Database, admin: Account, annotator: Account, books: dict[str, int]
) -> None:
    with db.transaction() as session:
        row = session.scalar(select(JobEarnings).where(JobEarnings.job_id == books["job_id"]))
        assert row is not None
        row.topup_micros += 10_000
        row.paid_seconds += 3
    [bad] = _breaches(client, admin)["fair_pay_topup"]
    assert bad["annotator_id"] == annotator.id
    assert set(bad["problems"]) == {
        "the ledger's top-ups differ from those recorded",
        "more topped up than the floor asks for the paid time",
        "paid time differs from the approved work's measured time",
    }


def test_the_daily_audit_job_logs_each_breach(
    client: TestClient,
    db: Database,
    admin: Account,
    books: dict[str, int],
    caplog: pytest.LogCaptureFixture,
    make_account: Callable[..., Account],
) -> None:
    with db.transaction() as session:
        session.get_one(JobBudget, books["job_id"]).reserved_slots += 1
    with db.transaction() as session:
        audit_books(_Ctx(session))
    assert any("job_escrow" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


class _Ctx:
    def __init__(self, session: Any) -> None:
        self.session = session
