"""Small helpers for money tests: work through the API, decisions through the services quality
will call, and the books (jobs come from `tests.jobs.factories`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.db import Database
from app.models import Assignment, LedgerPosting
from app.models.money import AccountKind
from payouts import earnings, ledger
from tests.support import Account


def claim(http: TestClient, who: Account, job_id: int | None = None) -> dict[str, Any]:
    body = {"job_id": job_id} if job_id else {}
    response = http.post("/v1/assignments/next", json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    [assignment] = response.json()["assignments"]
    return dict(assignment)


def submit(http: TestClient, who: Account, assignment: dict[str, Any]) -> None:
    answers = [{"sentiment": "positive"} for _ in assignment["items"]]
    response = http.post(
        f"/v1/assignments/{assignment['id']}/submit",
        json={"answers": answers},
        headers=who.headers,
    )
    assert response.status_code == 200, response.text


def work(http: TestClient, db: Database, who: Account, job_id: int | None = None) -> int:
    """Claim and submit one task through the API, then run the earnings poster as the scheduler
    would; returns the assignment id. Submit itself writes no ledger rows: the poster does."""
    assignment = claim(http, who, job_id)
    submit(http, who, assignment)
    cause = earnings.submit_cause(assignment["id"])
    with db.transaction() as session:
        assert not ledger.entry_exists(session, cause)
        assert earnings.post_submitted(session) >= 1
        assert session.get_one(Assignment, assignment["id"]).earning_posted_at is not None
        assert ledger.entry_exists(session, cause)
    return int(assignment["id"])


def post_earnings(db: Database) -> int:
    """Run the earnings poster once, as the scheduler does every few seconds."""
    with db.transaction() as session:
        return earnings.post_submitted(session)


def decide(db: Database, decision: Callable[..., Any], assignment_id: int, **kw: Any) -> Any:
    """Run one of `earnings.on_approved / on_rejected / on_overturned` in its own transaction."""
    with db.transaction() as session:
        return decision(session, session.get_one(Assignment, assignment_id), **kw)


def balance(db: Database, key: ledger.AccountKey) -> int:
    with db.read_session() as session:
        return ledger.balance(session, key)


def assert_books_balance(session: Session) -> dict[AccountKind, int]:
    """Every entry balances, every currency sums to zero, and no account but `external` is
    negative. Returns the total balance per account kind."""
    assert ledger.unbalanced_entries(session) == []
    per_account = session.execute(
        select(
            LedgerPosting.account_kind,
            LedgerPosting.owner_id,
            func.sum(LedgerPosting.amount_micros),
        ).group_by(LedgerPosting.account_kind, LedgerPosting.owner_id, LedgerPosting.currency)
    ).all()
    negative = [
        (kind, owner, total)
        for kind, owner, total in per_account
        if total < 0 and kind is not AccountKind.external
    ]
    assert negative == [], f"negative balances: {negative}"
    totals: dict[AccountKind, int] = {}
    for kind, _, total in per_account:
        totals[kind] = totals.get(kind, 0) + int(total)
    assert sum(totals.values()) == 0
    return totals
