"""Client funding (Stripe Checkout, credited only by the verified webhook; admin credits) and the
Stripe webhook inbox: signatures, duplicates, events out of order, unknown types. Stripe is the
fake of `fake_stripe`, driven through the unchanged SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core.db import Database
from app.models import Funding, OutboxJob, StripeEvent
from payouts import ledger
from tests.outbox import run_due_jobs
from tests.payouts.factories import assert_books_balance, balance
from tests.payouts.fake_stripe import FakeStripe, sign
from tests.support import Account, assert_problem

USD = "usd"
URLS = {"success_url": "https://client.example/paid", "cancel_url": "https://client.example/no"}


def deliver(http: TestClient, event: dict[str, Any], **signing: Any) -> Any:
    payload = json.dumps(event).encode()
    return http.post(
        "/v1/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": sign(payload, **signing), "Content-Type": "application/json"},
    )


def counts(db: Database) -> tuple[int, int, int]:
    with db.read_session() as session:
        return (
            session.scalar(select(func.count()).select_from(StripeEvent)) or 0,
            session.scalar(select(func.count()).select_from(OutboxJob)) or 0,
            session.scalar(select(func.count()).select_from(Funding)) or 0,
        )


def start_checkout(http: TestClient, who: Account, micros: int) -> dict[str, Any]:
    response = http.post(
        "/v1/fundings/checkout", json={"amount_micros": micros, **URLS}, headers=who.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_card_funding_is_credited_once_when_stripe_confirms_the_payment(
    stripe_client: TestClient,
    stripe_db: Database,
    stripe: FakeStripe,
    make_account: Callable[..., Account],
) -> None:
    owner = make_account("client", funded=False)
    funding = start_checkout(stripe_client, owner, 25_000_000)
    assert funding["status"] == "pending"
    assert funding["checkout_url"].startswith(stripe.url + "/checkout/")
    [session] = stripe.sessions.values()
    assert session["amount_total"] == 2500  # cents
    assert session["metadata"] == {"funding_id": str(funding["id"]), "client_id": str(owner.id)}
    assert balance(stripe_db, ledger.client_available(owner.id, USD)) == 0

    completed, succeeded = stripe.complete_checkout(session["id"])
    # Stripe may send them in either order, and more than once.
    for event in (succeeded, completed, succeeded):
        assert deliver(stripe_client, event).status_code == 200
    assert deliver(stripe_client, completed).json() == {"received": True, "duplicate": True}
    assert balance(stripe_db, ledger.client_available(owner.id, USD)) == 0  # not yet processed
    assert len(run_due_jobs(stripe_db)) == 2  # one processing job per distinct event
    assert balance(stripe_db, ledger.client_available(owner.id, USD)) == 25_000_000

    fundings = stripe_client.get("/v1/fundings", headers=owner.headers).json()["items"]
    assert [(f["status"], f["credited_micros"]) for f in fundings] == [("credited", 25_000_000)]
    with stripe_db.read_session() as db_session:
        outcomes = sorted(db_session.scalars(select(StripeEvent.outcome)))
        assert outcomes[0].startswith("already credited")
        assert outcomes[1].startswith("credited 25")
        assert_books_balance(db_session)
    assert stripe_client.get("/v1/balance", headers=owner.headers).json()["available"] == "25"


def test_forged_altered_stale_or_unsigned_webhooks_are_400_and_change_nothing(
    stripe_client: TestClient,
    stripe_db: Database,
    stripe: FakeStripe,
    make_account: Callable[..., Account],
) -> None:
    owner = make_account("client", funded=False)
    start_checkout(stripe_client, owner, 1_000_000)
    [session] = stripe.sessions.values()
    completed, _ = stripe.complete_checkout(session["id"])
    before = counts(stripe_db)

    forged = deliver(stripe_client, completed, secret="whsec_somebody_else")
    assert assert_problem(forged, 400)["type"] == "/problems/signature-invalid"
    stale = deliver(stripe_client, completed, timestamp=int(time.time()) - 3600)
    assert_problem(stale, 400)
    payload = json.dumps(completed).encode()
    assert b'"amount_total": 100,' in payload
    altered = stripe_client.post(
        "/v1/stripe/webhook",
        content=payload.replace(b'"amount_total": 100', b'"amount_total": 999'),  # after signing
        headers={"Stripe-Signature": sign(payload)},
    )
    assert_problem(altered, 400)
    unsigned = stripe_client.post("/v1/stripe/webhook", content=payload)
    assert_problem(unsigned, 400)

    assert counts(stripe_db) == before
    assert run_due_jobs(stripe_db) == []
    assert balance(stripe_db, ledger.client_available(owner.id, USD)) == 0


def test_unknown_event_types_are_stored_and_ignored(
    stripe_client: TestClient, stripe_db: Database, stripe: FakeStripe
) -> None:
    event = stripe.event("issuing_card.created", {"id": "ic_1", "object": "issuing.card"})
    assert deliver(stripe_client, event).json() == {"received": True, "duplicate": False}
    assert len(run_due_jobs(stripe_db)) == 1
    with stripe_db.read_session() as session:
        row = session.scalars(select(StripeEvent)).one()
        assert (row.type, row.outcome) == ("issuing_card.created", "ignored: unhandled type")
        assert row.processed_at is not None


def test_account_updates_out_of_order_leave_the_account_as_stripe_has_it_now(
    stripe_client: TestClient, stripe_db: Database, stripe: FakeStripe, annotator: Account
) -> None:
    onboarding = stripe_client.post(
        "/v1/payout-account/onboarding",
        json={"return_url": "https://me.example/back", "refresh_url": "https://me.example/again"},
        headers=annotator.headers,
    )
    assert onboarding.status_code == 200, onboarding.text
    body = onboarding.json()
    account_id = body["account"]["stripe_account_id"]
    assert body["onboarding_url"].startswith(f"{stripe.url}/connect/onboarding/{account_id}/")
    assert body["account"]["transfers_enabled"] is False
    again = stripe_client.post(
        "/v1/payout-account/onboarding",
        json={"return_url": "https://me.example/back", "refresh_url": "https://me.example/again"},
        headers=annotator.headers,
    ).json()
    assert again["account"]["stripe_account_id"] == account_id  # one account, a fresh link
    assert len(stripe.accounts) == 1

    restricted = stripe.update_account(account_id, transfers=False)
    enabled = stripe.update_account(account_id, transfers=True)
    deliver(stripe_client, enabled)
    deliver(stripe_client, restricted)  # the older event arrives last
    assert len(run_due_jobs(stripe_db)) == 2
    mine = stripe_client.get("/v1/payout-account", headers=annotator.headers).json()
    assert mine["transfers_enabled"] is True
    assert mine["details_submitted"] is True


def test_account_events_for_accounts_not_ours_are_ignored(
    stripe_client: TestClient, stripe_db: Database, stripe: FakeStripe
) -> None:
    deliver(stripe_client, stripe.event("account.updated", {"id": "acct_elsewhere"}))
    run_due_jobs(stripe_db)
    with stripe_db.read_session() as session:
        assert session.scalars(select(StripeEvent.outcome)).one().startswith("ignored")


def test_card_funding_needs_whole_cents_and_the_stripe_provider(
    client: TestClient, stripe_client: TestClient, client_account: Account
) -> None:
    odd = stripe_client.post(
        "/v1/fundings/checkout",
        json={"amount_micros": 1_000_001, **URLS},
        headers=client_account.headers,
    )
    assert "whole cents" in str(assert_problem(odd, 422)["errors"])
    manual = client.post(
        "/v1/fundings/checkout",
        json={"amount_micros": 1_000_000, **URLS},
        headers=client_account.headers,
    )
    assert assert_problem(manual, 409)["type"] == "/problems/provider-unavailable"
    assert_problem(client.post("/v1/stripe/webhook", content=b"{}"), 404)


def test_admins_credit_clients_with_a_reason_and_nobody_else_can(
    client: TestClient,
    db: Database,
    admin: Account,
    make_account: Callable[..., Account],
) -> None:
    owner = make_account("client", funded=False)
    credit = {"amount_micros": 7_500_000, "reason": "prepaid by invoice 1001"}
    url = f"/v1/admin/clients/{owner.id}/credits"
    assert_problem(client.post(url, json=credit, headers=owner.headers), 403)
    annotator = make_account("annotator")
    assert_problem(
        client.post(
            f"/v1/admin/clients/{annotator.id}/credits", json=credit, headers=admin.headers
        ),
        404,
    )
    assert_problem(
        client.post(url, json={**credit, "amount_micros": 0}, headers=admin.headers), 422
    )
    made = client.post(url, json=credit, headers=admin.headers)
    assert made.status_code == 201, made.text
    assert made.json()["reason"] == "prepaid by invoice 1001"
    assert balance(db, ledger.client_available(owner.id, USD)) == 7_500_000
    entries = client.get(
        f"/v1/admin/ledger/accounts/client_available/{owner.id}", headers=admin.headers
    ).json()
    [posting] = entries["postings"]
    assert (posting["actor_id"], posting["kind"], posting["amount"]) == (admin.id, "funding", "7.5")
    assert entries["balance_micros"] == 7_500_000


def test_stripe_failing_is_a_503_and_leaves_nothing_behind(
    stripe_client: TestClient,
    stripe_db: Database,
    stripe: FakeStripe,
    client_account: Account,
    annotator: Account,
) -> None:
    stripe.api_key = "sk_test_rotated"  # our key no longer works
    try:
        refused = stripe_client.post(
            "/v1/fundings/checkout",
            json={"amount_micros": 1_000_000, **URLS},
            headers=client_account.headers,
        )
        assert "Stripe could not open a checkout session" in assert_problem(refused, 503)["detail"]
        onboarding = stripe_client.post(
            "/v1/payout-account/onboarding",
            json={"return_url": "https://me.example/r", "refresh_url": "https://me.example/f"},
            headers=annotator.headers,
        )
        assert_problem(onboarding, 503)
    finally:
        stripe.api_key = "sk_test_fake_tessera"
    with stripe_db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Funding)) == 1  # the test credit
    assert_problem(stripe_client.get("/v1/payout-account", headers=annotator.headers), 404)
