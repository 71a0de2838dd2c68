"""Issue 22's money findings, each reproduced through the API first: a rejection before the
earnings poster (finding 1), overturns and re-approvals paid from the escrow the rejection
returned (finding 2), and a deposit that pays owed top-ups resuming the job (finding 3)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from app.core.db import Database
from app.models import Assignment
from payouts import earnings, ledger
from tests.jobs.factories import active_job
from tests.payouts.factories import assert_books_balance, balance, claim, post_earnings, submit
from tests.quality.test_appeals import appeal, resolve
from tests.support import Account, assert_problem

USD = "usd"
PAY, FEE = 50_000, 10_000  # the default job's pay per task and the platform fee on it
SLOT = PAY + FEE  # what escrow reserves per task slot


def _reject(http: TestClient, owner: Account, job_id: int, ids: list[int]) -> None:
    response = http.post(
        f"/v1/quality/jobs/{job_id}/reject",
        json={"assignment_ids": ids, "reason": "mislabelled"},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text


def _approve(http: TestClient, owner: Account, job_id: int, ids: list[int]) -> None:
    response = http.post(
        f"/v1/quality/jobs/{job_id}/approve", json={"assignment_ids": ids}, headers=owner.headers
    )
    assert response.status_code == 200, response.text


def test_finding1_a_rejection_before_the_earnings_poster_pays_nothing_and_a_re_approval_once(
    client: TestClient, db: Database, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=2, overlap={"min": 1})
    ids = []
    for _ in range(2):
        assignment = claim(client, annotator, job_id)
        submit(client, annotator, assignment)
        ids.append(assignment["id"])
    _reject(client, client_account, job_id, ids)  # before the poster ran
    with db.read_session() as session:
        assert all(session.get_one(Assignment, i).earning_posted_at is not None for i in ids)
    assert post_earnings(db) == 0  # nothing left for the poster: the rejection settled it
    pending = ledger.annotator_pending(annotator.id, USD)
    available = ledger.annotator_available(annotator.id, USD)
    assert (balance(db, pending), balance(db, available)) == (0, 0)

    _approve(client, client_account, job_id, ids)  # the client changes their mind
    post_earnings(db)
    assert (balance(db, pending), balance(db, available)) == (0, 2 * PAY)
    assert balance(db, ledger.platform_fees(USD)) == 2 * FEE
    with db.read_session() as session:
        assert_books_balance(session)
        for i in ids:
            assert ledger.postings_of(session, earnings.reject_cause(i)) != []


def _unfunded_client_with_one_slot(
    http: TestClient, admin: Account, make_account: Callable[..., Account], items: int = 1
) -> tuple[Account, int]:
    """A client credited exactly its job's slots (0.06 each), so nothing is left available."""
    owner = make_account("client", funded=False)
    credited = http.post(
        f"/v1/admin/clients/{owner.id}/credits",
        json={"amount_micros": items * SLOT, "reason": "exactly the slots"},
        headers=admin.headers,
    )
    assert credited.status_code == 201, credited.text
    job_id = active_job(http, owner, items=items, overlap={"min": 1})
    assert balance_of(http, owner) == 0
    return owner, job_id


def balance_of(http: TestClient, owner: Account) -> int:
    return int(http.get("/v1/balance", headers=owner.headers).json()["available_micros"])


def test_finding2_an_overturn_on_appeal_is_paid_from_the_escrow_the_rejection_returned(
    client: TestClient,
    db: Database,
    admin: Account,
    make_account: Callable[..., Account],
    annotator: Account,
) -> None:
    owner, job_id = _unfunded_client_with_one_slot(client, admin, make_account)
    assignment = claim(client, annotator, job_id)
    submit(client, annotator, assignment)
    _reject(client, owner, job_id, [assignment["id"]])
    filed = appeal(client, annotator, assignment["id"])
    overturned = resolve(client, admin, filed.json()["id"], outcome="overturned")
    assert overturned.status_code == 200, overturned.text  # no 402 from the client's balance
    assert balance(db, ledger.annotator_available(annotator.id, USD)) == PAY
    spend = client.get(f"/v1/jobs/{job_id}/spend", headers=owner.headers).json()
    assert spend["deposited_micros"] == 0  # no new deposit
    assert (spend["remaining_escrow_micros"], spend["free_escrow_micros"]) == (0, 0)
    assert balance_of(client, owner) == 0
    with db.read_session() as session:
        assert_books_balance(session)


def test_finding2_a_re_approval_after_a_rejection_needs_no_new_money_and_strands_none(
    client: TestClient,
    db: Database,
    admin: Account,
    make_account: Callable[..., Account],
    annotator: Account,
) -> None:
    owner, job_id = _unfunded_client_with_one_slot(client, admin, make_account, items=3)
    ids = []
    for _ in range(3):
        assignment = claim(client, annotator, job_id)
        submit(client, annotator, assignment)
        ids.append(assignment["id"])
    post_earnings(db)
    _reject(client, owner, job_id, ids)
    _approve(client, owner, job_id, ids[:2])  # was 402: "A deposit into job … short"
    spend = client.get(f"/v1/jobs/{job_id}/spend", headers=owner.headers).json()
    assert spend["deposited_micros"] == 0
    # Escrow keeps exactly the one reopened slot's money: nothing stranded.
    assert (spend["remaining_escrow_micros"], spend["free_escrow_micros"]) == (SLOT, 0)
    assert balance(db, ledger.annotator_available(annotator.id, USD)) == 2 * PAY
    complete = client.post(f"/v1/jobs/{job_id}/complete", headers=owner.headers)
    assert complete.status_code == 200, complete.text
    assert balance_of(client, owner) == SLOT  # the unused slot comes back
    with db.read_session() as session:
        assert_books_balance(session)


def test_finding2_an_overturn_after_the_slot_was_taken_again_is_paid_from_free_escrow(
    client: TestClient,
    db: Database,
    admin: Account,
    make_account: Callable[..., Account],
    annotator: Account,
) -> None:
    """The reopened slot was filled by someone else: the overturned work is one answer more than
    escrow reserved, so it is paid from free escrow (a deposit), not from another slot."""
    owner, job_id = _unfunded_client_with_one_slot(client, admin, make_account)
    first = claim(client, annotator, job_id)
    submit(client, annotator, first)
    _reject(client, owner, job_id, [first["id"]])
    other = make_account("annotator")
    second = claim(client, other, job_id)
    submit(client, other, second)
    refused = client.post(
        f"/v1/quality/jobs/{job_id}/approve",
        json={"assignment_ids": [first["id"]]},
        headers=owner.headers,
    )
    assert_problem(refused, 402, "insufficient-funds")
    client.post(
        f"/v1/admin/clients/{owner.id}/credits",
        json={"amount_micros": SLOT, "reason": "one answer more"},
        headers=admin.headers,
    )
    _approve(client, owner, job_id, [first["id"], second["id"]])
    assert balance(db, ledger.annotator_available(annotator.id, USD)) == PAY
    assert balance(db, ledger.annotator_available(other.id, USD)) == PAY
    with db.read_session() as session:
        assert_books_balance(session)
