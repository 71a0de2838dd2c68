"""Payout batches and their settlement: whole cents with the remainder kept, the minimum, Stripe
transfers exactly once (idempotency key and transfer group `payout-<id>`), refusals reversed,
unknown outcomes reconciled, admin hold / release / retry, and the manual provider's CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core import clock
from app.core.db import Database
from app.core.settings import Settings
from app.models import OutboxJob, Payout
from app.models.money import EntryKind
from payouts import earnings, ledger, payouts
from payouts.providers.stripe import StripeGateway, gateway_for
from tests.jobs.factories import active_job
from tests.outbox import run_due_jobs
from tests.payouts.factories import assert_books_balance, balance, decide, work
from tests.payouts.fake_stripe import FakeStripe
from tests.support import Account, assert_problem

USD = "usd"
RATE = 1_234_567  # 1.234567 per task: pays out 1.23, keeps 0.004567


def earn(http: TestClient, db: Database, who: Account, job_id: int, tasks: int = 1) -> None:
    for _ in range(tasks):
        decide(db, earnings.on_approved, work(http, db, who, job_id))


def batch(http: TestClient, admin: Account) -> dict[str, Any]:
    response = http.post("/v1/admin/payouts/batches", headers=admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def connect(http: TestClient, stripe: FakeStripe, who: Account, *, enabled: bool = True) -> str:
    body = {"return_url": "https://me.example/r", "refresh_url": "https://me.example/f"}
    response = http.post("/v1/payout-account/onboarding", json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    account_id: str = response.json()["account"]["stripe_account_id"]
    if enabled:
        stripe.update_account(account_id, transfers=True)
        assert http.post("/v1/payout-account/refresh", headers=who.headers).status_code == 200
    return account_id


# --- manual provider ----------------------------------------------------------------------------


def test_a_batch_pays_whole_cents_keeps_the_remainder_and_skips_balances_below_the_minimum(
    client: TestClient,
    db: Database,
    admin: Account,
    client_account: Account,
    make_account: Callable[..., Account],
    settings: Settings,
) -> None:
    job_id = active_job(client, client_account, items=4, overlap={"min": 1}, rate=RATE)
    rich, poor = make_account("annotator"), make_account("annotator")
    earn(client, db, rich, job_id, tasks=2)  # 2.469134
    decide(db, earnings.on_approved, work(client, db, make_account("annotator"), job_id))
    with db.transaction() as session:  # a small balance: below the minimum
        ledger.post_entry(
            session,
            ledger.transfer(
                "test:small",
                EntryKind.topup,
                ledger.external(USD),
                [(ledger.annotator_available(poor.id, USD), settings.payout_minimum_micros - 1)],
                "test",
            ),
            clock.utcnow(),
        )

    made = batch(client, admin)
    mine = [p for p in made["payouts"] if p["annotator_id"] == rich.id]
    assert [(p["amount_micros"], p["status"], p["provider"]) for p in mine] == [
        (2_460_000, "pending", "manual")
    ]
    assert poor.id not in [p["annotator_id"] for p in made["payouts"]]
    assert balance(db, ledger.annotator_available(rich.id, USD)) == 9_134  # the remainder
    assert balance(db, ledger.payouts_in_flight(rich.id, USD)) == 2_460_000
    assert (
        balance(db, ledger.annotator_available(poor.id, USD)) == settings.payout_minimum_micros - 1
    )
    assert batch(client, admin)["payouts"] == []  # nothing left to pay: no double payout


def test_manual_payouts_export_as_csv_and_are_settled_or_failed_by_an_admin(
    client: TestClient,
    db: Database,
    admin: Account,
    client_account: Account,
    annotator: Account,
) -> None:
    job_id = active_job(client, client_account, items=2, overlap={"min": 1}, rate=RATE)
    earn(client, db, annotator, job_id)
    [payout] = batch(client, admin)["payouts"]

    exported = client.get("/v1/admin/payouts/export", headers=admin.headers)
    assert exported.headers["content-type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (row["payout_id"], row["amount"], row["email"]) == (
        str(payout["id"]),
        "1.23",
        annotator.user.email,
    )
    assert_problem(client.get("/v1/admin/payouts/export", headers=annotator.headers), 403)

    settled = client.post(
        f"/v1/admin/payouts/{payout['id']}/settle",
        json={"reference": "SEPA batch 2026-12-01"},
        headers=admin.headers,
    )
    assert settled.status_code == 200, settled.text
    assert (settled.json()["status"], settled.json()["reference"]) == (
        "paid",
        "SEPA batch 2026-12-01",
    )
    again = client.post(
        f"/v1/admin/payouts/{payout['id']}/settle",
        json={"reference": "twice"},
        headers=admin.headers,
    )
    assert assert_problem(again, 409)["type"] == "/problems/payout-wrong-state"
    assert balance(db, ledger.payouts_in_flight(annotator.id, USD)) == 0
    assert balance(db, ledger.external(USD)) < 0  # clients' money in, minus 1.23 out

    earn(client, db, annotator, job_id)
    [second] = batch(client, admin)["payouts"]
    failed = client.post(
        f"/v1/admin/payouts/{second['id']}/fail",
        json={"reason": "IBAN rejected by the bank"},
        headers=admin.headers,
    )
    assert failed.json()["status"] == "failed"
    assert balance(db, ledger.annotator_available(annotator.id, USD)) == 1_230_000 + 2 * 4_567
    mine = client.get("/v1/payouts", headers=annotator.headers).json()["items"]
    assert [(p["status"], p["failure_reason"]) for p in mine] == [
        ("paid", None),
        ("failed", "IBAN rejected by the bank"),
    ]
    earnings_view = client.get("/v1/earnings", headers=annotator.headers).json()
    assert earnings_view["paid_micros"] == 1_230_000
    with db.read_session() as session:
        assert_books_balance(session)


def test_finding6_a_failed_payout_is_retried_once_ever(
    client: TestClient, db: Database, admin: Account, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=3, overlap={"min": 1}, rate=RATE)
    earn(client, db, annotator, job_id)
    [payout] = batch(client, admin)["payouts"]
    failed = client.post(
        f"/v1/admin/payouts/{payout['id']}/fail", json={"reason": "bounced"}, headers=admin.headers
    )
    assert failed.status_code == 200, failed.text
    earn(client, db, annotator, job_id, tasks=2)  # enough for the retry to be paid twice over
    first = client.post(f"/v1/admin/payouts/{payout['id']}/retry", headers=admin.headers)
    assert first.status_code == 201, first.text
    again = client.post(f"/v1/admin/payouts/{payout['id']}/retry", headers=admin.headers)
    assert assert_problem(again, 409, "payout-already-retried")["retry_id"] == first.json()["id"]
    with db.read_session() as session:
        retries = session.scalars(select(Payout).where(Payout.retry_of_id == payout["id"])).all()
        assert [p.id for p in retries] == [first.json()["id"]]
        assert_books_balance(session)


def test_the_payouts_csv_neutralises_names_a_spreadsheet_would_run(
    client: TestClient,
    db: Database,
    admin: Account,
    client_account: Account,
    make_account: Callable[..., Account],
) -> None:
    # The display name (here taken from the email's local part) is typed by the annotator.
    annotator = make_account("annotator", email="=2+5+cmd@example.com")
    job_id = active_job(client, client_account, items=2, overlap={"min": 1}, rate=RATE)
    earn(client, db, annotator, job_id)
    batch(client, admin)

    exported = client.get("/v1/admin/payouts/export", headers=admin.headers)
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (row["email"], row["display_name"]) == ("'=2+5+cmd@example.com", "'=2+5+cmd")
    assert row["amount"] == "1.23"


def test_payout_views_are_private(
    client: TestClient,
    db: Database,
    admin: Account,
    client_account: Account,
    make_account: Callable[..., Account],
) -> None:
    job_id = active_job(client, client_account, items=2, overlap={"min": 1}, rate=RATE)
    one, two = make_account("annotator"), make_account("annotator")
    earn(client, db, one, job_id)
    batch(client, admin)
    assert client.get("/v1/payouts", headers=two.headers).json()["items"] == []
    assert_problem(client.get("/v1/admin/payouts", headers=one.headers), 403)
    assert_problem(client.get("/v1/earnings", headers=client_account.headers), 403)
    assert_problem(client.get("/v1/admin/ledger/trial-balance", headers=one.headers), 403)
    trial = client.get("/v1/admin/ledger/trial-balance", headers=admin.headers).json()
    assert trial["balanced"] is True
    assert trial["totals_micros"] == {"usd": 0}


# --- Stripe provider ----------------------------------------------------------------------------


def test_stripe_payouts_go_to_enabled_accounts_once_with_the_payout_key(
    stripe_client: TestClient,
    stripe_db: Database,
    stripe: FakeStripe,
    admin: Account,
    client_account: Account,
    make_account: Callable[..., Account],
) -> None:
    http, db = stripe_client, stripe_db
    job_id = active_job(http, client_account, items=3, overlap={"min": 1}, rate=RATE)
    ready, onboarding, unconnected = (make_account("annotator") for _ in range(3))
    account_id = connect(http, stripe, ready)
    connect(http, stripe, onboarding, enabled=False)
    for who in (ready, onboarding, unconnected):
        earn(http, db, who, job_id)

    [payout] = batch(http, admin)["payouts"]
    assert payout["annotator_id"] == ready.id
    assert run_due_jobs(db, names=[payouts.SEND_JOB]) == [payouts.SEND_JOB]
    [transfer] = stripe.transfers_for(payout["id"])
    assert (transfer["amount"], transfer["destination"]) == (123, account_id)
    assert transfer["transfer_group"] == f"payout-{payout['id']}"
    assert f"payout-{payout['id']}" in stripe.idempotency
    with db.read_session() as session:
        row = session.get_one(Payout, payout["id"])
        assert (row.status.value, row.transfer_id, row.attempts) == ("paid", transfer["id"], 1)
        assert_books_balance(session)

    # Running the send again (a duplicate delivery, a reconciliation) changes nothing.
    with db.transaction() as session:
        payouts.send_payout(session, payout["id"], _gateway(db))
    assert len(stripe.transfers_for(payout["id"])) == 1
    assert balance(db, ledger.payouts_in_flight(ready.id, USD)) == 0
    assert balance(db, ledger.annotator_available(onboarding.id, USD)) == RATE  # waits


def _gateway(db: Database) -> StripeGateway:
    gateway = gateway_for(db.settings)
    assert gateway is not None
    return gateway


def test_a_refused_transfer_fails_the_payout_and_returns_the_money(
    stripe_client: TestClient,
    stripe_db: Database,
    stripe: FakeStripe,
    admin: Account,
    client_account: Account,
    annotator: Account,
) -> None:
    http, db = stripe_client, stripe_db
    job_id = active_job(http, client_account, items=2, overlap={"min": 1}, rate=RATE)
    connect(http, stripe, annotator)
    earn(http, db, annotator, job_id)
    [payout] = batch(http, admin)["payouts"]
    stripe.balance_cents = 50  # the platform's Stripe balance cannot cover it
    run_due_jobs(db, names=[payouts.SEND_JOB])
    failed = http.get("/v1/admin/payouts?status=failed", headers=admin.headers).json()["items"]
    assert [p["id"] for p in failed] == [payout["id"]]
    assert "balance_insufficient" in failed[0]["failure_reason"]
    assert balance(db, ledger.annotator_available(annotator.id, USD)) == RATE
    assert stripe.transfers_for(payout["id"]) == []

    stripe.balance_cents = 10**9
    retried = http.post(f"/v1/admin/payouts/{payout['id']}/retry", headers=admin.headers)
    assert retried.status_code == 201, retried.text
    assert retried.json()["retry_of_id"] == payout["id"]
    run_due_jobs(db, names=[payouts.SEND_JOB])
    [transfer] = stripe.transfers_for(retried.json()["id"])
    assert transfer["amount"] == 123
    assert balance(db, ledger.annotator_available(annotator.id, USD)) == RATE - 1_230_000
    with db.read_session() as session:
        assert_books_balance(session)


def test_an_unanswered_transfer_is_unknown_until_reconciliation_finds_it(
    stripe_client: TestClient,
    stripe_db: Database,
    stripe: FakeStripe,
    admin: Account,
    client_account: Account,
    annotator: Account,
) -> None:
    http, db = stripe_client, stripe_db
    job_id = active_job(http, client_account, items=2, overlap={"min": 1}, rate=RATE)
    connect(http, stripe, annotator)
    earn(http, db, annotator, job_id)
    [payout] = batch(http, admin)["payouts"]
    stripe.drop_transfer_responses = 3  # the SDK's request and both of its retries go unanswered
    run_due_jobs(db, names=[payouts.SEND_JOB])
    with db.read_session() as session:
        row = session.get_one(Payout, payout["id"])
        assert row.status.value == "unknown"
        assert row.transfer_id is None
    assert len(stripe.transfers_for(payout["id"])) == 1  # Stripe did make it
    assert balance(db, ledger.payouts_in_flight(annotator.id, USD)) == 1_230_000

    with db.transaction() as session:
        assert payouts.reconcile(session) == [payout["id"]]
    run_due_jobs(db, names=[payouts.SEND_JOB])
    with db.read_session() as session:
        row = session.get_one(Payout, payout["id"])
        assert row.status.value == "paid"
        assert row.transfer_id == stripe.transfers_for(payout["id"])[0]["id"]
        assert_books_balance(session)
    assert len(stripe.transfers_for(payout["id"])) == 1


def test_held_payouts_are_not_sent_until_released(
    stripe_client: TestClient,
    stripe_db: Database,
    stripe: FakeStripe,
    admin: Account,
    client_account: Account,
    annotator: Account,
) -> None:
    http, db = stripe_client, stripe_db
    job_id = active_job(http, client_account, items=2, overlap={"min": 1}, rate=RATE)
    connect(http, stripe, annotator)
    earn(http, db, annotator, job_id)
    [payout] = batch(http, admin)["payouts"]
    held = http.post(
        f"/v1/admin/payouts/{payout['id']}/hold",
        json={"reason": "account under review"},
        headers=admin.headers,
    )
    assert held.json()["status"] == "held"
    run_due_jobs(db, names=[payouts.SEND_JOB])
    assert stripe.transfers_for(payout["id"]) == []
    retry_held = http.post(f"/v1/admin/payouts/{payout['id']}/retry", headers=admin.headers)
    assert assert_problem(retry_held, 409)["status"] == 409
    released = http.post(f"/v1/admin/payouts/{payout['id']}/release", headers=admin.headers)
    assert released.json()["status"] == "pending"
    run_due_jobs(db, names=[payouts.SEND_JOB])
    assert len(stripe.transfers_for(payout["id"])) == 1
    settle = http.post(
        f"/v1/admin/payouts/{payout['id']}/settle",
        json={"reference": "x" * 5},
        headers=admin.headers,
    )
    assert_problem(settle, 409)  # paid already (and a Stripe payout is never settled by hand)
    with db.read_session() as session:
        pending_sends = session.scalars(
            select(OutboxJob.id).where(OutboxJob.done_at.is_(None))
        ).all()
        assert pending_sends == []
