"""Review decisions move money in their own transaction: the submit posted the earning to the
annotator's pending balance; approval makes it available, rejection returns it (and the fee) to
the job's escrow, an overturned appeal pays it again. Through the API, on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.core.db import Database
from payouts import ledger
from tests.jobs.factories import active_job
from tests.payouts.factories import assert_books_balance, balance, post_earnings
from tests.quality.factories import do_tasks
from tests.quality.test_appeals import appeal, resolve
from tests.support import Account

PAY = 50_000  # per task, in micros: 0.05


def test_approval_rejection_and_an_overturned_appeal_move_the_annotators_money(
    client: TestClient,
    client_account: Account,
    annotator: Account,
    admin: Account,
    db: Database,
) -> None:
    job_id = active_job(
        client,
        client_account,
        items=2,
        rate=PAY,
        overlap={"min": 1},
    )
    currency = db.settings.currency
    pending = ledger.annotator_pending(annotator.id, currency)
    available = ledger.annotator_available(annotator.id, currency)
    escrow = ledger.job_escrow(job_id, currency)
    kept, contested = (t["id"] for t in do_tasks(client, annotator, job_id, 2))
    assert (balance(db, pending), balance(db, available)) == (0, 0)  # the poster has not run
    assert post_earnings(db) == 2
    assert (balance(db, pending), balance(db, available)) == (2 * PAY, 0)
    escrow_after_work = balance(db, escrow)

    client.post(
        f"/v1/quality/jobs/{job_id}/approve",
        json={"assignment_ids": [kept]},
        headers=client_account.headers,
    )
    assert (balance(db, pending), balance(db, available)) == (PAY, PAY)

    client.post(
        f"/v1/quality/jobs/{job_id}/reject",
        json={"assignment_ids": [contested], "reason": "mislabelled"},
        headers=client_account.headers,
    )
    assert (balance(db, pending), balance(db, available)) == (0, PAY)
    assert balance(db, escrow) > escrow_after_work  # the work and its fee went back

    filed = appeal(client, annotator, contested)
    assert resolve(client, admin, filed.json()["id"], outcome="overturned").status_code == 200
    assert (balance(db, pending), balance(db, available)) == (0, 2 * PAY)
    with db.read_session() as session:
        assert_books_balance(session)
