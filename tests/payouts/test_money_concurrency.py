"""Money under concurrency (PostgreSQL, many threads): a client's balance is never committed twice,
concurrent payout batches pay each balance once, and concurrent approvals on one job keep its
free escrow and the books right."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core import clock
from app.core.db import Database
from app.core.settings import Settings
from app.jobs import service as jobs
from app.jobs import splitting
from app.models import Assignment, Job, JobBudget, JobEarnings, Payout
from app.models.money import EntryKind
from payouts import earnings, ledger, payouts
from payouts.errors import InsufficientFunds, PayoutAlreadyRetried, PayoutInProgress
from tests.jobs.factories import active_job, draft_job
from tests.payouts.factories import assert_books_balance, balance, work
from tests.support import Account

pytestmark = pytest.mark.commits  # threads race on real commits

THREADS = 16
USD = "usd"


def _together(count: int, body: Callable[[int], Any]) -> list[Any]:
    """Run `body(i)` on `count` threads released at once; their results (or exceptions)."""
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = body(i)
        except Exception as exc:  # collected and checked by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


@pytest.fixture
def wide(db: Database, settings: Settings) -> Iterator[Database]:
    """The test database with a pool for every thread (same engine settings otherwise)."""
    wider = Database(settings.model_copy(update={"db_pool_size": THREADS + 4}))
    yield wider
    wider.dispose()


@pytest.mark.postgresql
def test_concurrent_activations_never_commit_a_balance_twice(
    client: TestClient, wide: Database, admin: Account, make_account: Callable[..., Account]
) -> None:
    owner = make_account("client", funded=False)
    job_ids = [draft_job(client, owner, items=1, overlap={"min": 1}) for _ in range(THREADS)]
    client.post(
        f"/v1/admin/clients/{owner.id}/credits",
        json={"amount_micros": 10 * 60_000, "reason": "ten tasks' worth"},
        headers=admin.headers,
    )

    def activate(i: int) -> str:
        with wide.transaction() as session:
            job = session.get_one(Job, job_ids[i], with_for_update=True)
            jobs.change_status(session, job, "activate")
            splitting.split_into_tasks(session, job)
        return "active"

    outcomes = Counter(
        "402" if isinstance(r, InsufficientFunds) else str(r) for r in _together(THREADS, activate)
    )
    assert outcomes == {"active": 10, "402": THREADS - 10}
    assert balance(wide, ledger.client_available(owner.id, USD)) == 0
    with wide.read_session() as session:
        assert_books_balance(session)


@pytest.mark.postgresql
def test_concurrent_payout_batches_pay_each_balance_once(
    wide: Database, make_account: Callable[..., Account]
) -> None:
    people = [make_account("annotator") for _ in range(8)]
    with wide.transaction() as session:
        for n, person in enumerate(people):
            ledger.post_entry(
                session,
                ledger.transfer(
                    f"grant:{person.id}",
                    EntryKind.approval,
                    ledger.external(USD),
                    [(ledger.annotator_available(person.id, USD), 1_000_000 + n * 10_001)],
                    "approved work",
                ),
                clock.utcnow(),
            )

    def run(_: int) -> int:
        with wide.transaction() as session:
            return len(payouts.run_batch(session).payouts)

    made = _together(8, run)
    assert sorted(made) == [0] * 7 + [8], made  # one batch found the balances, the rest nothing
    with wide.read_session() as session:
        rows = session.scalars(select(Payout)).all()
        assert Counter(p.annotator_id for p in rows) == {p.id: 1 for p in people}
        for n, person in enumerate(people):
            assert ledger.balance(session, ledger.annotator_available(person.id, USD)) == (
                n * 10_001 - (n * 10_001 // 10_000) * 10_000
            )
        assert_books_balance(session)


@pytest.mark.postgresql
def test_concurrent_approvals_on_one_job_keep_its_free_escrow_right(
    client: TestClient,
    db: Database,
    wide: Database,
    client_account: Account,
    make_account: Callable[..., Account],
) -> None:
    job_id = active_job(
        client,
        client_account,
        items=THREADS,
        overlap={"min": 1},
        pricing={"tier_multipliers_bps": {"expert": 20_000}},
    )
    ids = [work(client, db, make_account("annotator"), job_id) for _ in range(THREADS)]

    def approve(i: int) -> int:
        with wide.transaction() as session:
            assignment = session.get_one(Assignment, ids[i])
            return earnings.on_approved(session, assignment).earned_micros

    assert _together(THREADS, approve) == [50_000] * THREADS
    with wide.read_session() as session:
        budget = session.get_one(JobBudget, job_id)
        # each entry-tier assignment left half of its expert-priced slot (0.12 of 0.12 + 0.12)
        assert budget.free_micros == THREADS * 60_000
        assert ledger.balance(session, ledger.job_escrow(job_id, USD)) == THREADS * 60_000
        assert_books_balance(session)


@pytest.mark.postgresql
def test_the_same_decision_delivered_by_many_threads_at_once_pays_once(
    client: TestClient, db: Database, wide: Database, client_account: Account, annotator: Account
) -> None:
    job_id = active_job(client, client_account, items=2, overlap={"min": 1})
    approved, rejected = (work(client, db, annotator, job_id) for _ in range(2))
    with wide.transaction() as session:
        earnings.on_rejected(session, session.get_one(Assignment, rejected))

    def decide(i: int) -> bool:
        with wide.transaction() as session:
            if i % 2:
                return earnings.on_approved(session, session.get_one(Assignment, approved)).replayed
            return earnings.on_overturned(session, session.get_one(Assignment, rejected)).replayed

    replays = _together(8, decide)
    assert sorted(replays) == [False, False] + [True] * 6, replays
    with wide.read_session() as session:
        assert ledger.balance(session, ledger.annotator_available(annotator.id, USD)) == 100_000
        row = session.scalars(select(JobEarnings)).one()
        assert (row.approved_assignments, row.earned_micros) == (2, 100_000)
        assert_books_balance(session)


def _failed_payout(db: Database, admin_id: int, annotator_id: int, available: int) -> int:
    """A manual payout of 1.00 failed by an admin, its annotator left with `available`."""
    with db.transaction() as session:
        ledger.post_entry(
            session,
            ledger.transfer(
                f"grant:{annotator_id}",
                EntryKind.approval,
                ledger.external(USD),
                [(ledger.annotator_available(annotator_id, USD), available)],
                "approved work",
            ),
            clock.utcnow(),
        )
        [made] = payouts.run_batch(session).payouts
        payout_id = made.id
    with db.transaction() as session:
        payouts.fail_manually(session, payout_id, actor_id=admin_id, reason="bounced")
    return int(payout_id)


@pytest.mark.postgresql
def test_finding6_concurrent_retries_of_one_failed_payout_make_one_new_payout(
    wide: Database, admin: Account, make_account: Callable[..., Account]
) -> None:
    person = make_account("annotator")
    failed = _failed_payout(wide, admin.id, person.id, 1_000_000)
    # The balance could pay the payout eight times over: only the rule may stop the others.
    with wide.transaction() as session:
        ledger.post_entry(
            session,
            ledger.transfer(
                f"more:{person.id}",
                EntryKind.approval,
                ledger.external(USD),
                [(ledger.annotator_available(person.id, USD), 8_000_000)],
                "approved work",
            ),
            clock.utcnow(),
        )

    def retry(_: int) -> str:
        with wide.transaction() as session:
            return str(payouts.retry(session, failed, actor_id=admin.id).id)

    outcomes = _together(8, retry)
    made = [r for r in outcomes if isinstance(r, str)]
    assert len(made) == 1, outcomes
    refused = [r for r in outcomes if not isinstance(r, str)]
    assert all(isinstance(r, PayoutInProgress | PayoutAlreadyRetried) for r in refused), refused
    late = _together(1, retry)  # and after all of them: still one
    assert isinstance(late[0], PayoutAlreadyRetried)
    with wide.read_session() as session:
        retries = session.scalars(select(Payout).where(Payout.retry_of_id == failed)).all()
        assert [str(p.id) for p in retries] == made
        assert ledger.balance(session, ledger.annotator_available(person.id, USD)) == 8_000_000
        assert_books_balance(session)
