"""The ledger: balanced entries, causes posted once, no balance below zero but external's, and
the same rows written by one raw PostgreSQL statement (what the submit of the hot path folds
in)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.core.db import Database
from app.models import LedgerEntry, LedgerPosting, PricingMode, Tier
from app.models.money import AccountKind, EntryKind
from payouts import earnings, ledger
from payouts.errors import InsufficientFunds
from payouts.pricing import PayTerms
from tests.payouts.factories import assert_books_balance
from tests.support import Account

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
USD = "usd"


def credit(cause: str, client_id: int, amount: int) -> ledger.Entry:
    return ledger.transfer(
        cause,
        EntryKind.funding,
        ledger.external(USD),
        [(ledger.client_available(client_id, USD), amount)],
        "test credit",
    )


def test_entries_must_balance_in_one_currency_without_zero_postings() -> None:
    a, b = ledger.client_available(1, USD), ledger.external(USD)
    with pytest.raises(ValueError, match="balance"):
        ledger.Entry("x", EntryKind.funding, USD, (ledger.Posting(a, 5), ledger.Posting(b, -4)), "")
    with pytest.raises(ValueError, match="zero"):
        ledger.Entry("x", EntryKind.funding, USD, (ledger.Posting(a, 0),), "")
    with pytest.raises(ValueError, match="currencies"):
        ledger.Entry(
            "x",
            EntryKind.funding,
            USD,
            (ledger.Posting(a, 5), ledger.Posting(ledger.external("eur"), -5)),
            "",
        )
    with pytest.raises(ValueError, match="take money in"):
        ledger.transfer("x", EntryKind.funding, b, [(a, -1)], "")


def test_a_cause_posts_once(db: Database, make_account: Callable[..., Account]) -> None:
    client = make_account("client", funded=False)
    with db.transaction() as session:
        assert ledger.post_entry(session, credit("c:1", client.id, 700), NOW) is not None
        assert ledger.post_entry(session, credit("c:1", client.id, 999), NOW) is None
    with db.transaction() as session:  # also across transactions
        assert ledger.post_entry(session, credit("c:1", client.id, 999), NOW) is None
        assert ledger.balance(session, ledger.client_available(client.id, USD)) == 700
        assert ledger.balance(session, ledger.external(USD)) == -700
        assert_books_balance(session)


def test_taking_more_than_an_account_holds_fails_and_writes_nothing(
    db: Database, make_account: Callable[..., Account]
) -> None:
    client = make_account("client", funded=False)
    with db.transaction() as session:
        ledger.post_entry(session, credit("c:1", client.id, 100), NOW)
    overdraw = ledger.transfer(
        "r:1",
        EntryKind.reservation,
        ledger.client_available(client.id, USD),
        [(ledger.job_escrow(1, USD), 101)],
        "too much",
    )
    with pytest.raises(InsufficientFunds) as caught, db.transaction() as session:
        ledger.post_entry(session, overdraw, NOW)
    assert caught.value.extra["shortfall_micros"] == 1
    with db.read_session() as session:
        assert ledger.balance(session, ledger.client_available(client.id, USD)) == 100
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 1


def test_trial_balance_sums_to_zero_and_shows_debits_and_credits(
    db: Database, make_account: Callable[..., Account]
) -> None:
    one, two = make_account("client", funded=False), make_account("client", funded=False)
    with db.transaction() as session:
        ledger.post_entry(session, credit("c:1", one.id, 300), NOW)
        ledger.post_entry(session, credit("c:2", two.id, 200), NOW)
        lines = {line.kind: line for line in ledger.trial_balance(session)}
    assert lines[AccountKind.client_available].balance_micros == 500
    assert lines[AccountKind.client_available].accounts == 2
    assert lines[AccountKind.external].debits_micros == 500
    assert lines[AccountKind.external].negative_accounts == 1
    assert sum(line.balance_micros for line in lines.values()) == 0


def test_an_entry_without_postings_records_a_decision_that_moved_no_money(
    db: Database,
) -> None:
    empty = ledger.transfer(
        "approve:1", EntryKind.approval, ledger.external(USD), [(ledger.external(USD), 0)], "free"
    )
    assert empty.postings == ()
    with db.transaction() as session:
        assert ledger.post_entry(session, empty, NOW) is not None
        assert ledger.entry_exists(session, "approve:1")
        assert ledger.postings_of(session, "approve:1") == []


def test_submit_entry_is_a_pure_function_of_plain_values() -> None:
    terms = PayTerms(PricingMode.per_task, 50_000, 2000, {Tier.expert: 15_000})
    entry = earnings.submit_entry(
        terms,
        tier=Tier.expert,
        active_seconds=30,
        gold_score=None,
        assignment_id=9,
        annotator_id=4,
        job_id=2,
        currency=USD,
    )
    assert entry.cause == "submit:9"
    assert entry.kind is EntryKind.earning
    assert {(p.account.kind, p.account.owner_id, p.amount_micros) for p in entry.postings} == {
        (AccountKind.job_escrow, 2, -90_000),
        (AccountKind.annotator_pending, 4, 75_000),
        (AccountKind.platform_fees, 0, 15_000),
    }
    assert (entry.job_id, entry.assignment_id) == (2, 9)


def test_a_batch_writes_each_new_entry_once_and_skips_causes_posted_before(
    db: Database, make_account: Callable[..., Account]
) -> None:
    client = make_account("client", funded=False)
    with db.transaction() as session:
        assert ledger.write_entries(session, [credit("batch:1", client.id, 100)], NOW)
    batch = [credit(f"batch:{n}", client.id, 100 * n) for n in (1, 2, 3)]
    with db.transaction() as session:
        written = ledger.write_entries(session, batch, NOW)
    assert sorted(written) == ["batch:2", "batch:3"]  # batch:1 was posted before
    with db.read_session() as session:
        assert ledger.balance(session, ledger.client_available(client.id, USD)) == 600
        amounts = session.scalars(
            select(LedgerPosting.amount_micros)
            .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
            .where(LedgerEntry.cause == "batch:3")
            .order_by(LedgerPosting.id)
        ).all()
        assert amounts == [-300, 300]
        assert_books_balance(session)
