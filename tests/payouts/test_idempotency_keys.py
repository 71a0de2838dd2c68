"""Issue 22, finding 7: money requests take an `Idempotency-Key` with Stripe's semantics: the
same key and request replay the first response (the money moves once), the same key with another
request is a 422, keys are per caller and kept 24 hours; a failed request is not remembered."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core import clock
from app.core.db import Database
from app.core.idempotency import prune_keys
from app.models import Funding, IdempotentRequest, Payout
from payouts import earnings, ledger
from tests.jobs.factories import active_job
from tests.payouts.factories import assert_books_balance, balance, decide, work
from tests.support import Account, assert_problem

USD = "usd"


def _credit(http: TestClient, admin: Account, client_id: int, key: str | None, amount: int) -> Any:
    headers = {**admin.headers, **({"Idempotency-Key": key} if key else {})}
    return http.post(
        f"/v1/admin/clients/{client_id}/credits",
        json={"amount_micros": amount, "reason": "invoice 7"},
        headers=headers,
    )


def test_finding7_twelve_identical_credits_with_one_key_credit_once(
    client: TestClient, db: Database, admin: Account, make_account: Callable[..., Account]
) -> None:
    owner = make_account("client", funded=False)
    answers = [_credit(client, admin, owner.id, "credit-7", 5_000_000) for _ in range(12)]
    assert {a.status_code for a in answers} == {201}
    assert {a.json()["id"] for a in answers} == {answers[0].json()["id"]}  # the first, replayed
    assert "idempotent-replayed" not in answers[0].headers
    assert {a.headers["idempotent-replayed"] for a in answers[1:]} == {"true"}
    assert balance(db, ledger.client_available(owner.id, USD)) == 5_000_000
    # Without a key each request is a request of its own.
    assert _credit(client, admin, owner.id, None, 1).status_code == 201
    assert _credit(client, admin, owner.id, None, 1).status_code == 201
    assert balance(db, ledger.client_available(owner.id, USD)) == 5_000_002


def test_finding7_the_same_key_with_another_body_is_a_422_and_moves_nothing(
    client: TestClient, db: Database, admin: Account, make_account: Callable[..., Account]
) -> None:
    owner = make_account("client", funded=False)
    assert _credit(client, admin, owner.id, "k1", 5_000_000).status_code == 201
    other = _credit(client, admin, owner.id, "k1", 6_000_000)
    assert_problem(other, 422, "idempotency-key-reused")
    elsewhere = client.post(  # another path (another client) is another request too
        f"/v1/admin/clients/{admin.id}/credits",
        json={"amount_micros": 5_000_000, "reason": "invoice 7"},
        headers={**admin.headers, "Idempotency-Key": "k1"},
    )
    assert_problem(elsewhere, 422, "idempotency-key-reused")
    assert balance(db, ledger.client_available(owner.id, USD)) == 5_000_000


def test_finding7_keys_are_per_caller_and_kept_24_hours(
    client: TestClient, db: Database, admin: Account, make_account: Callable[..., Account]
) -> None:
    owner, second_admin = make_account("client", funded=False), make_account("admin")
    assert _credit(client, admin, owner.id, "shared", 1_000_000).status_code == 201
    assert _credit(client, second_admin, owner.id, "shared", 1_000_000).status_code == 201
    assert balance(db, ledger.client_available(owner.id, USD)) == 2_000_000
    clock.travel(timedelta(hours=23))
    assert _credit(client, admin, owner.id, "shared", 1_000_000).headers["idempotent-replayed"]
    clock.travel(timedelta(hours=1, seconds=1))  # older than 24 h: forgotten, a new request
    again = _credit(client, admin, owner.id, "shared", 1_000_000)
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert balance(db, ledger.client_available(owner.id, USD)) == 3_000_000
    clock.travel(timedelta(hours=25))
    with db.transaction() as session:
        prune_keys(_Ctx(session))  # the hourly job forgets them all
    with db.read_session() as session:
        assert session.scalars(select(IdempotentRequest)).all() == []


class _Ctx:
    def __init__(self, session: Any) -> None:
        self.session = session


def test_finding7_a_failed_request_is_not_remembered(
    client: TestClient, db: Database, client_account: Account, make_account: Callable[..., Account]
) -> None:
    poor = make_account("client", funded=False)
    job_id = active_job(client, client_account, items=1)
    headers = {**client_account.headers, "Idempotency-Key": "dep-1"}
    too_much = client.post(
        f"/v1/jobs/{job_id}/deposits", json={"amount_micros": 10**13}, headers=headers
    )
    assert_problem(too_much, 402, "insufficient-funds")
    first = client.post(
        f"/v1/jobs/{job_id}/deposits", json={"amount_micros": 1_000}, headers=headers
    )
    assert first.status_code == 200, first.text
    again = client.post(
        f"/v1/jobs/{job_id}/deposits", json={"amount_micros": 1_000}, headers=headers
    )
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["deposited_micros"] == 1_000
    # A key names a request of one caller: another client's identical key is theirs.
    theirs = client.post(
        f"/v1/jobs/{job_id}/deposits",
        json={"amount_micros": 1_000},
        headers={**poor.headers, "Idempotency-Key": "dep-1"},
    )
    assert_problem(theirs, 404, "not-found")
    with db.read_session() as session:
        assert_books_balance(session)


def test_finding7_payout_batches_and_retries_replay_with_their_key(
    client: TestClient, db: Database, admin: Account, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=3, overlap={"min": 1}, rate=2_000_000)
    for _ in range(2):
        decide(db, earnings.on_approved, work(client, db, annotator, job_id))
    headers = {**admin.headers, "Idempotency-Key": "batch-49"}
    first = client.post("/v1/admin/payouts/batches", headers=headers)
    again = client.post("/v1/admin/payouts/batches", headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert len(first.json()["payouts"]) == 1
    [payout] = first.json()["payouts"]
    client.post(
        f"/v1/admin/payouts/{payout['id']}/fail", json={"reason": "bounced"}, headers=admin.headers
    )
    retry = {**admin.headers, "Idempotency-Key": "retry-49"}
    retried = [client.post(f"/v1/admin/payouts/{payout['id']}/retry", headers=retry) for _ in "ab"]
    assert [r.status_code for r in retried] == [201, 201]
    assert retried[0].json() == retried[1].json()
    with db.read_session() as session:
        assert len(session.scalars(select(Payout)).all()) == 2


def test_finding7_a_bad_key_is_a_422(
    client: TestClient, admin: Account, make_account: Callable[..., Account]
) -> None:
    owner = make_account("client", funded=False)
    for bad in ("x" * 256, "has space"):
        assert_problem(_credit(client, admin, owner.id, bad, 1), 422, "validation-failed")


@pytest.mark.postgresql
@pytest.mark.commits
def test_finding7_concurrent_credits_with_one_key_credit_once(
    client: TestClient, db: Database, admin: Account, make_account: Callable[..., Account]
) -> None:
    owner = make_account("client", funded=False)
    start = threading.Barrier(8)
    answers: list[Any] = []

    def send() -> None:
        start.wait()
        answers.append(_credit(client, admin, owner.id, "race", 2_000_000))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert Counter(a.status_code for a in answers) == {201: 8}
    assert len({a.json()["id"] for a in answers}) == 1
    with db.read_session() as session:
        assert len(session.scalars(select(Funding).where(Funding.client_id == owner.id)).all()) == 1
    assert balance(db, ledger.client_available(owner.id, USD)) == 2_000_000
