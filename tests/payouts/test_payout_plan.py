"""Timely, reachable pay: a low platform payout minimum, an annotator's own higher threshold,
`/earnings` saying when the next payout is and why money waits, and the admin's preview of a
batch (who is paid, who waits and why) that changes nothing."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.core import clock
from app.core.db import Database
from app.core.settings import Settings
from app.models import Payout, PayoutPreference
from app.models.money import EntryKind
from payouts import ledger, payout_plan
from tests.jobs.factories import active_job
from tests.payouts.factories import post_earnings
from tests.quality.factories import do_tasks
from tests.support import Account, assert_problem


def give(db: Database, annotator_id: int, micros: int, currency: str) -> None:
    """Money in the annotator's available balance, as approved work would leave it."""
    with db.transaction() as session:
        ledger.post_entry(
            session,
            ledger.transfer(
                f"test:plan:{annotator_id}:{micros}:{clock.utcnow().timestamp()}",
                EntryKind.topup,
                ledger.external(currency),
                [(ledger.annotator_available(annotator_id, currency), micros)],
                "test",
            ),
            clock.utcnow(),
        )


def payouts_made(db: Database) -> int:
    with db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(Payout)) or 0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 12, 7, 5, 59, tzinfo=UTC), datetime(2026, 12, 7, 6, 0, tzinfo=UTC)),
        (datetime(2026, 12, 7, 6, 0, tzinfo=UTC), datetime(2026, 12, 14, 6, 0, tzinfo=UTC)),
        (datetime(2026, 12, 9, 12, 0, tzinfo=UTC), datetime(2026, 12, 14, 6, 0, tzinfo=UTC)),
        (datetime(2026, 12, 13, 23, 0, tzinfo=UTC), datetime(2026, 12, 14, 6, 0, tzinfo=UTC)),
    ],
)
def test_the_next_batch_is_the_next_monday_at_six_utc(now: datetime, expected: datetime) -> None:
    assert payout_plan.next_batch_at(now) == expected
    assert payout_plan.BATCH_CRON == "0 6 * * 1"


def test_the_platform_minimum_defaults_low() -> None:
    assert Settings(_env_file=None).payout_minimum_micros == 100_000  # type: ignore[call-arg]


def test_earnings_say_when_the_next_payout_is_and_why_money_waits(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    db: Database,
    settings: Settings,
) -> None:
    job_id = active_job(client, client_account, items=1, overlap={"min": 1})
    do_tasks(client, annotator, job_id, 1)  # pending until approved
    post_earnings(db)
    small = settings.payout_minimum_micros - 1
    give(db, annotator.id, small, settings.currency)
    body = client.get("/v1/earnings", headers=annotator.headers).json()
    payout = body["payout"]
    next_at = datetime.fromisoformat(payout["next_payout_at"])
    assert next_at == payout_plan.next_batch_at(clock.utcnow())
    assert next_at > clock.utcnow()
    assert payout["amount_micros"] == 0
    assert payout["minimum_micros"] == settings.payout_minimum_micros
    reasons = {w["reason"]: w for w in payout["waiting"]}
    assert reasons["under-minimum"]["amount_micros"] == small
    assert reasons["review-window"]["amount_micros"] == body["pending_micros"] > 0
    assert datetime.fromisoformat(reasons["review-window"]["until"]) > clock.utcnow()


def test_an_annotators_own_threshold_holds_their_payout_back(
    client: TestClient, annotator: Account, admin: Account, db: Database, settings: Settings
) -> None:
    put = "/v1/earnings/payout-threshold"
    low = settings.payout_minimum_micros - 1
    assert_problem(client.put(put, json={"minimum_micros": low}, headers=annotator.headers), 422)
    assert_problem(
        client.put(put, json={"minimum_micros": "5000000"}, headers=annotator.headers), 422
    )
    chosen = client.put(put, json={"minimum_micros": 5_000_000}, headers=annotator.headers)
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["minimum_micros"] == 5_000_000

    give(db, annotator.id, 2_000_000, settings.currency)
    preview = client.get("/v1/admin/payouts/batches/preview", headers=admin.headers).json()
    [waits] = [p for p in preview["waiting"] if p["annotator_id"] == annotator.id]
    assert [w["reason"] for w in waits["waiting"]] == ["under-minimum"]
    assert waits["minimum_micros"] == 5_000_000
    assert all(p["annotator_id"] != annotator.id for p in preview["paid"])
    batch = client.post("/v1/admin/payouts/batches", headers=admin.headers).json()
    assert all(p["annotator_id"] != annotator.id for p in batch["payouts"])

    client.put(put, json={"minimum_micros": None}, headers=annotator.headers)
    preview = client.get("/v1/admin/payouts/batches/preview", headers=admin.headers).json()
    [paid] = [p for p in preview["paid"] if p["annotator_id"] == annotator.id]
    assert paid["amount_micros"] == 2_000_000
    made = payouts_made(db)
    assert payouts_made(db) == made  # a preview pays nobody
    batch = client.post("/v1/admin/payouts/batches", headers=admin.headers).json()
    assert [p["amount_micros"] for p in batch["payouts"] if p["annotator_id"] == annotator.id] == [
        2_000_000
    ]


IBAN = "DE89 3704 0044 0532 0130 00"


def test_a_payout_destination_is_stored_encrypted_shown_masked_and_exported_in_full(
    client: TestClient, annotator: Account, admin: Account, db: Database, settings: Settings
) -> None:
    path = "/v1/payout-destination"
    assert client.get(path, headers=annotator.headers).json()["method"] is None
    bad = {"method": "carrier-pigeon", "details": IBAN}
    assert_problem(client.put(path, json=bad, headers=annotator.headers), 422)
    body = {"method": "bank_transfer", "details": IBAN}
    put = client.put(path, json=body, headers=annotator.headers)
    assert put.status_code == 200, put.text
    assert put.json()["details_masked"] == "•••• 3000"
    shown = client.get(path, headers=annotator.headers).json()
    assert (shown["method"], shown["details_masked"]) == ("bank_transfer", "•••• 3000")
    assert IBAN not in client.get(path, headers=annotator.headers).text
    with db.read_session() as session:
        row = session.get(PayoutPreference, annotator.id)
        assert row is not None
        assert IBAN not in (row.destination_ciphertext or "")
        assert "3704" not in (row.destination_ciphertext or "")

    give(db, annotator.id, 2_000_000, settings.currency)
    client.post("/v1/admin/payouts/batches", headers=admin.headers)
    exported = client.get("/v1/admin/payouts/export", headers=admin.headers)
    [row] = [
        r
        for r in csv.DictReader(io.StringIO(exported.text))
        if r["annotator_id"] == str(annotator.id)
    ]
    assert (row["destination_method"], row["destination_details"]) == ("bank_transfer", IBAN)
