"""Property test: any sequence of fund / activate / submit / approve / reject / appeal / payout /
cancel / complete / pause / deposit keeps every entry balanced, no balance but `external`
negative, money conserved (what is inside equals what came in minus what was paid out), and
each running job's escrow able to pay every task slot still open.

Work goes through the API (claim and submit, activation, cancel, batches, manual settlement);
approval, rejection and appeal through the service functions quality will call. The payout
minimum is one cent here, so small earnings get paid out too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.db import Database
from app.core.settings import Settings
from app.main import create_app
from app.models import Funding, JobBudget, LedgerEntry, LedgerPosting, Payout
from app.models.money import AccountKind, EntryKind, PayoutStatus
from payouts import earnings, ledger
from payouts.errors import EarningsFinal, InsufficientFunds
from tests.harness import Restart
from tests.jobs.factories import draft_job
from tests.payouts.factories import assert_books_balance, decide
from tests.support import Account

AMOUNTS = st.sampled_from([300_000, 1_000_000, 4_000_000])
RATES = st.sampled_from([0, 33_333, 120_000, 250_000])
STEPS = (
    ["submit"] * 5
    + ["approve"] * 3
    + ["reject"] * 2
    + ["appeal_overturned"] * 2
    + ["payout"] * 2
    + ["decide_again", "activate", "activate", "fund", "create_job", "change", "deposit"]
)


@pytest.fixture
def cent_db(db: Database, settings: Settings) -> Database:
    tuned = settings.model_copy(
        update={"payout_minimum_micros": 10_000, "fair_pay_floor_micros_per_hour": 6_000_000}
    )
    return db.with_settings(tuned)


@pytest.fixture
def cent_client(cent_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(cent_db.settings, cent_db)) as test_client:
        yield test_client


def test_any_sequence_of_money_events_keeps_the_books(
    cent_client: TestClient, cent_db: Database, make_account: Callable[..., Account]
) -> None:
    http, db = cent_client, cent_db
    seen: Counter[str] = Counter()
    restart = Restart(db)  # every sequence starts from empty tables

    class Books(RuleBasedStateMachine):
        @initialize(funds=st.lists(AMOUNTS, min_size=2, max_size=2), rate=RATES)
        def people_and_a_job_each(self, funds: list[int], rate: int) -> None:
            restart()
            self.admin = make_account("admin")
            self.clients = [make_account("client", funded=False) for _ in range(2)]
            self.annotators = [make_account("annotator") for _ in range(3)]
            self.jobs: list[tuple[int, Account]] = []
            self.submitted: list[int] = []
            self.rejected: list[int] = []
            self.approved: list[int] = []
            self.overturned: set[int] = set()
            for owner, amount in enumerate(funds):
                self.fund(owner, amount)
                self.create_job(owner, 3, 2, rate, owner == 1)
                self.activate(owner)

        @rule(action=st.sampled_from(STEPS), data=st.data())
        def step(self, action: str, data: st.DataObject) -> None:
            """One money event, drawn with the weights of STEPS (a plain rule per event would
            let Hypothesis's swarm testing switch the frequent ones off for whole runs)."""
            if action in ("approve", "reject") and not self.submitted:
                action = "submit"
            if action == "appeal_overturned" and not self.rejected:
                action = "reject" if self.submitted else "submit"
            if action in ("decide_again", "payout") and not self.approved:
                action = "approve" if self.submitted else "submit"
            method = getattr(self, action)
            if action == "create_job":
                method(
                    data.draw(st.integers(0, 1)),
                    data.draw(st.integers(1, 3)),
                    data.draw(st.integers(1, 2)),
                    data.draw(RATES),
                    data.draw(st.booleans()),
                )
            elif action == "fund":
                method(data.draw(st.integers(0, 1)), data.draw(AMOUNTS))
            elif action in ("activate",):
                method(data.draw(st.integers(0, 99)))
            elif action == "submit":
                method(
                    data.draw(st.integers(0, 99)),
                    data.draw(st.integers(0, 2)),
                    data.draw(st.integers(1, 3)),
                )
            elif action in ("approve", "reject", "appeal_overturned", "decide_again"):
                method(data)
            elif action == "payout":
                method(data.draw(st.lists(st.booleans(), min_size=3, max_size=3)))
            elif action == "change":
                method(
                    data.draw(st.integers(0, 99)),
                    data.draw(st.sampled_from(["cancel", "complete", "pause"])),
                )
            elif action == "deposit":
                method(data.draw(st.integers(0, 99)), data.draw(AMOUNTS))

        def create_job(self, owner: int, items: int, overlap: int, rate: int, expert: bool) -> None:
            who = self.clients[owner]
            pricing: dict[str, Any] = {"tier_multipliers_bps": {"expert": 15_000}} if expert else {}
            job_id = draft_job(
                http, who, items=items, rate=rate, overlap={"min": overlap}, pricing=pricing
            )
            self.jobs.append((job_id, who))

        def fund(self, owner: int, amount: int) -> None:
            response = http.post(
                f"/v1/admin/clients/{self.clients[owner].id}/credits",
                json={"amount_micros": amount, "reason": "property test"},
                headers=self.admin.headers,
            )
            assert response.status_code == 201, response.text

        def activate(self, pick: int) -> None:
            job_id, who = self.jobs[pick % len(self.jobs)]
            before = self._available(who)
            response = http.post(f"/v1/jobs/{job_id}/activate", headers=who.headers)
            assert response.status_code in (200, 402, 409), response.text
            seen[f"activate {response.status_code}"] += 1
            if response.status_code == 402:
                assert response.json()["shortfall_micros"] > 0
                assert self._available(who) == before  # refused: nothing moved

        def submit(self, pick: int, annotator: int, times: int) -> None:
            job_id, _ = self.jobs[pick % len(self.jobs)]
            who = self.annotators[annotator]
            for _ in range(times):
                claimed = http.post(
                    "/v1/assignments/next", json={"job_id": job_id}, headers=who.headers
                )
                if claimed.status_code != 200 or not claimed.json()["assignments"]:
                    return
                [assignment] = claimed.json()["assignments"]
                answers = [{"sentiment": "neutral"} for _ in assignment["items"]]
                done = http.post(
                    f"/v1/assignments/{assignment['id']}/submit",
                    json={"answers": answers},
                    headers=who.headers,
                )
                assert done.status_code == 200, done.text
                self.submitted.append(assignment["id"])
                seen["submit"] += 1

        def approve(self, data: st.DataObject) -> None:
            if not self.submitted:
                return
            assignment_id = data.draw(st.sampled_from(self.submitted))
            decide(db, earnings.on_approved, assignment_id)
            self.submitted.remove(assignment_id)
            self.approved.append(assignment_id)
            seen["approve"] += 1

        def reject(self, data: st.DataObject) -> None:
            if not self.submitted:
                return
            assignment_id = data.draw(st.sampled_from(self.submitted))
            decide(db, earnings.on_rejected, assignment_id)
            self.submitted.remove(assignment_id)
            self.rejected.append(assignment_id)
            seen["reject"] += 1

        def appeal_overturned(self, data: st.DataObject) -> None:
            if not self.rejected:
                return
            assignment_id = data.draw(st.sampled_from(self.rejected))
            try:
                decide(db, earnings.on_overturned, assignment_id)
            except InsufficientFunds:
                seen["overturn refused"] += 1
                return  # the client cannot cover it yet: nothing moved
            self.rejected.remove(assignment_id)
            self.approved.append(assignment_id)
            self.overturned.add(assignment_id)
            seen["overturn"] += 1

        def decide_again(self, data: st.DataObject) -> None:
            """A repeated decision changes nothing; rejecting approved work is refused (a
            rejection overturned on appeal stays a replay of that rejection)."""
            if not self.approved:
                return
            assignment_id = data.draw(st.sampled_from(self.approved))
            assert decide(db, earnings.on_approved, assignment_id).replayed
            assert decide(db, earnings.on_overturned, assignment_id).replayed
            if assignment_id in self.overturned:
                assert decide(db, earnings.on_rejected, assignment_id) == 0
            else:
                with pytest.raises(EarningsFinal):
                    decide(db, earnings.on_rejected, assignment_id)

        def payout(self, settle: list[bool]) -> None:
            made = http.post("/v1/admin/payouts/batches", headers=self.admin.headers)
            assert made.status_code == 201, made.text
            for payout, paid in zip(made.json()["payouts"], settle * 10, strict=False):
                action, body = (
                    ("settle", {"reference": "wire 1"}) if paid else ("fail", {"reason": "bounced"})
                )
                response = http.post(
                    f"/v1/admin/payouts/{payout['id']}/{action}",
                    json=body,
                    headers=self.admin.headers,
                )
                assert response.status_code == 200, response.text
                seen[f"payout {action}"] += 1

        def change(self, pick: int, action: str) -> None:
            job_id, who = self.jobs[pick % len(self.jobs)]
            response = http.post(f"/v1/jobs/{job_id}/{action}", headers=who.headers)
            assert response.status_code in (200, 409), response.text
            seen[f"{action} {response.status_code}"] += 1

        def deposit(self, pick: int, amount: int) -> None:
            job_id, who = self.jobs[pick % len(self.jobs)]
            response = http.post(
                f"/v1/jobs/{job_id}/deposits", json={"amount_micros": amount}, headers=who.headers
            )
            assert response.status_code in (200, 402, 409), response.text

        def _available(self, who: Account) -> int:
            with db.read_session() as session:
                return ledger.balance(session, ledger.client_available(who.id, "usd"))

        @invariant()
        def books_balance_and_money_is_conserved(self) -> None:
            with db.read_session() as session:
                totals = assert_books_balance(session)
                came_in = session.scalar(
                    select(func.coalesce(func.sum(Funding.credited_micros), 0))
                )
                paid_out = session.scalar(
                    select(func.coalesce(func.sum(Payout.amount_micros), 0)).where(
                        Payout.status == PayoutStatus.paid
                    )
                )
                inside = sum(v for k, v in totals.items() if k is not AccountKind.external)
                assert inside == came_in - paid_out
                assert totals.get(AccountKind.external, 0) == paid_out - came_in

        @invariant()
        def running_jobs_can_pay_every_open_slot(self) -> None:
            with db.read_session() as session:
                for budget in session.scalars(
                    select(JobBudget).where(JobBudget.closed_at.is_(None))
                ):
                    escrow = ledger.balance(session, ledger.job_escrow(budget.job_id, "usd"))
                    open_slots = max(
                        0, budget.reserved_slots - _slots_taken(session, budget.job_id)
                    )
                    assert escrow >= budget.free_micros + open_slots * budget.slot_cost_micros

    run_state_machine_as_test(
        Books,
        settings=settings(
            # PostgreSQL commits cost an fsync each: fewer (as long) sequences there.
            max_examples=25 if db.dialect == "sqlite" else 12,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    # The sequences really exercised the money paths (not only refusals).
    print("money paths exercised:", dict(seen))
    for what in ("submit", "approve", "reject", "overturn", "payout settle", "payout fail"):
        assert seen[what] > 0, (what, seen)


def _slots_taken(session: Session, job_id: int) -> int:
    """Assignments whose submit drew on a slot and was not reversed, and overturned ones (an
    overturn takes its reopened slot back, issue 22 finding 2; one paid from free escrow
    instead counts here too, which only makes the check below less strict)."""
    counts = dict(
        session.execute(
            select(LedgerEntry.kind, func.count(func.distinct(LedgerEntry.id)))
            .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
            .where(
                LedgerEntry.job_id == job_id,
                LedgerEntry.kind.in_([EntryKind.earning, EntryKind.reversal, EntryKind.overturn]),
            )
            .group_by(LedgerEntry.kind)
        ).all()
    )
    return (
        int(counts.get(EntryKind.earning, 0))
        - int(counts.get(EntryKind.reversal, 0))
        + int(counts.get(EntryKind.overturn, 0))
    )
