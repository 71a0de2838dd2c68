"""Crash test (PostgreSQL): 100 payout batches, each run by a process killed at a random point —
between two steps, at a random moment (inside a transaction or a Stripe call), or inside a send
right after the fake Stripe accepted the transfer and before the sender could commit — then the
reconciliation job. Afterwards: no payout paid twice, none lost, the books balanced.

The killed processes come from a fork server that has imported the application once, so a
round costs a fork, not an interpreter start."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.core import clock
from app.core.db import Database
from app.models import Payout, PayoutAccount
from app.models.money import EntryKind, PayoutStatus
from payouts import ledger, payouts
from payouts.providers.stripe import gateway_for
from tests.outbox import run_due_jobs
from tests.payouts.crash_child import run_round
from tests.payouts.factories import assert_books_balance
from tests.payouts.fake_stripe import FakeStripe
from tests.support import Account

pytestmark = pytest.mark.commits  # processes are killed mid-batch: only commits survive

ROUNDS = 100
ANNOTATORS = 4
USD = "usd"
GRANTS = [0, 0, 5_000, 700_000, 1_234_567, 3_000_001]  # some below the 1.00 minimum


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _killer(
    kind: str, at: Any, process: Any, killed: list[str]
) -> Callable[[dict[str, Any]], None]:
    """The fake Stripe's hook: kill the sender once its `at`-th transfer exists (before
    Stripe's answer reaches it), when this round's plan says so."""
    accepted = 0

    def on_transfer(_: dict[str, Any]) -> None:
        nonlocal accepted
        accepted += 1
        if kind == "stripe" and accepted == at and process.pid is not None:
            killed.append("after Stripe accepted a transfer, before the commit")
            _kill(process.pid)

    return on_transfer


def _reconcile_until_settled(db: Database, stats: Counter[str]) -> None:
    """The reconciliation job (and the send jobs it and the dead processes left), run until no
    payout is pending or unknown. A dead sender's row lock lasts until PostgreSQL notices the
    closed connection; a send that finds the row locked leaves it to the next pass."""
    for _ in range(100):
        with db.transaction() as session:
            found = payouts.reconcile(session, older_than=timedelta(0))
        stats["reconciled payouts"] += len(found)
        run_due_jobs(db, names=[payouts.SEND_JOB])
        with db.read_session() as session:
            left = session.scalar(
                select(func.count()).where(
                    Payout.status.in_([PayoutStatus.pending, PayoutStatus.unknown])
                )
            )
        if not left:
            return
        time.sleep(0.05)
    raise AssertionError("payouts stayed unsettled after reconciliation")


@pytest.mark.postgresql
def test_payout_batches_killed_at_random_points_pay_every_payout_exactly_once(
    stripe_db: Database, stripe: FakeStripe, make_account: Callable[..., Account]
) -> None:
    db, settings = stripe_db, stripe_db.settings
    seed = int(os.environ.get("TESSERA_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    gateway = gateway_for(settings)
    assert gateway is not None
    people = [make_account("annotator") for _ in range(ANNOTATORS)]
    accounts: dict[int, str] = {}
    now = clock.utcnow()
    with db.transaction() as session:
        for person in people:
            account = gateway.create_express_account(
                annotator_id=person.id, email=person.user.email
            )
            stripe.update_account(account.id, transfers=True)
            accounts[person.id] = account.id
            session.add(
                PayoutAccount(
                    annotator_id=person.id,
                    stripe_account_id=account.id,
                    details_submitted=True,
                    transfers_enabled=True,
                    created_at=now,
                    updated_at=now,
                )
            )

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.payouts.crash_child"])
    granted: Counter[int] = Counter()
    stats: Counter[str] = Counter()
    started = time.monotonic()

    for round_no in range(ROUNDS):
        with db.transaction() as session:  # the week's approved earnings
            for person in people:
                amount = rng.choice(GRANTS)
                if amount:
                    ledger.post_entry(
                        session,
                        ledger.transfer(
                            f"grant:{round_no}:{person.id}",
                            EntryKind.approval,
                            ledger.external(USD),
                            [(ledger.annotator_available(person.id, USD), amount)],
                            "approved work (crash test)",
                        ),
                        clock.utcnow(),
                    )
                    granted[person.id] += amount
        refused = rng.choice(people) if rng.random() < 0.15 else None
        if refused is not None:  # Stripe refuses this one's transfers this round
            stripe.accounts[accounts[refused.id]]["capabilities"]["transfers"] = "inactive"

        kind = rng.choices(["step", "stripe", "time", "none"], [3, 3, 3, 1])[0]
        at: Any = {"step": rng.randint(1, 2 + 2 * ANNOTATORS), "stripe": rng.randint(1, 3)}.get(
            kind, rng.uniform(0.0, 0.25)
        )
        pipe, child_end = context.Pipe(duplex=False)
        process = context.Process(target=run_round, args=(settings, child_end))
        killed: list[str] = []
        stripe.on_transfer_created = _killer(kind, at, process, killed)
        process.start()
        child_end.close()
        begun, steps = time.monotonic(), 0
        while process.is_alive():
            if kind == "time" and time.monotonic() - begun >= at and not killed:
                killed.append("at a random moment")
                _kill(process.pid or 0)
            if pipe.poll(0.002):
                try:
                    pipe.recv()
                except EOFError:
                    break
                steps += 1
                if kind == "step" and steps == at and not killed:
                    killed.append("between two steps")
                    _kill(process.pid or 0)
        process.join(30)
        assert process.exitcode is not None, "the batch process hung"
        stripe.on_transfer_created = None
        pipe.close()
        stats[f"killed {killed[0]}" if killed else "ran to the end"] += 1
        if refused is not None:
            stripe.accounts[accounts[refused.id]]["capabilities"]["transfers"] = "active"
        if rng.random() < 0.5:  # else the next batch runs with this one's payouts unsettled
            _reconcile_until_settled(db, stats)
    _reconcile_until_settled(db, stats)
    elapsed = time.monotonic() - started

    with db.read_session() as session:
        rows = session.scalars(select(Payout).order_by(Payout.id)).all()
        by_status = Counter(p.status.value for p in rows)
        transfers = list(stripe.transfers.values())
        per_payout = Counter(t["metadata"]["payout_id"] for t in transfers)
        doubles = [pid for pid, n in per_payout.items() if n > 1]
        paid = {str(p.id): p for p in rows if p.status is PayoutStatus.paid}
        lost = [p.id for p in rows if p.status in (PayoutStatus.pending, PayoutStatus.unknown)]
        orphans = [t["id"] for t in transfers if t["metadata"]["payout_id"] not in paid]
        recovered = sum(1 for p in paid.values() if p.attempts == 0)
        report = {
            "seed": seed,
            "rounds": ROUNDS,
            "seconds": round(elapsed, 1),
            **dict(sorted(stats.items())),
            "payouts": len(rows),
            **{f"payouts {k}": v for k, v in sorted(by_status.items())},
            "transfers at Stripe": len(transfers),
            "paid found at Stripe by reconciliation (sender died after Stripe accepted)": recovered,
            "double transfers": len(doubles),
            "transfers without a paid payout": len(orphans),
            "lost payouts": len(lost),
        }
        print("\npayout crash test:", report)
        assert doubles == []
        assert orphans == []
        assert lost == []
        assert len(transfers) == len(paid)
        for transfer in transfers:
            payout = paid[transfer["metadata"]["payout_id"]]
            assert transfer["amount"] * 10_000 == payout.amount_micros
            assert transfer["destination"] == accounts[payout.annotator_id]
            assert transfer["id"] == payout.transfer_id
        totals = assert_books_balance(session)
        for person in people:
            held = ledger.balances(
                session,
                [
                    ledger.annotator_available(person.id, USD),
                    ledger.payouts_in_flight(person.id, USD),
                ],
            )
            paid_out = sum(p.amount_micros for p in paid.values() if p.annotator_id == person.id)
            assert held[ledger.payouts_in_flight(person.id, USD)] == 0
            assert held[ledger.annotator_available(person.id, USD)] + paid_out == granted[person.id]
        assert -sum(totals.values()) == 0
    # The run really crashed where it matters.
    assert stats["killed after Stripe accepted a transfer, before the commit"] > 0
    assert recovered > 0
    assert by_status["failed"] > 0
