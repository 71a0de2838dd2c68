"""The double-entry ledger: entries of postings that sum to zero, in integer micro-units.

An account is named by its natural key (kind, owner id, currency) right in each posting, so
entries are written without first creating or looking up their accounts: `write_entries` writes
a batch of them in two statements (the earnings poster's thousands of submits a run). Balances
are derived: the sum of an account's postings, one range scan of a covering index.

Each entry carries a unique `cause` (`submit:<assignment id>`, `payout:<payout id>`, …): posting
a cause again changes nothing, so a retried request or job cannot post twice.

Balances never go negative, except the `external` account (the world outside: it goes
negative as clients pay money in). Entries that take money out of an account take that
account's lock first (a PostgreSQL transaction-level advisory lock; SQLite's single writer is
the lock there), then check the balance after posting, in the same transaction. The one
unchecked debit is a submit's draw on its job's escrow, which escrow reserved in advance for
every task slot (see `escrow`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, case, func, insert, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.core.money import format_micros
from app.models.money import AccountKind, EntryKind, LedgerEntry, LedgerPosting
from payouts.errors import InsufficientFunds

PLATFORM = 0  # owner id of the platform's own accounts (fees, external)
# The tables themselves, for batch writes without the ORM's per-row bookkeeping.
ENTRIES = cast(Table, LedgerEntry.__table__)
POSTINGS = cast(Table, LedgerPosting.__table__)


@dataclass(frozen=True, order=True)
class AccountKey:
    kind: AccountKind
    owner_id: int
    currency: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.owner_id}:{self.currency}"


def client_available(client_id: int, currency: str) -> AccountKey:
    return AccountKey(AccountKind.client_available, client_id, currency)


def job_escrow(job_id: int, currency: str) -> AccountKey:
    return AccountKey(AccountKind.job_escrow, job_id, currency)


def annotator_pending(annotator_id: int, currency: str) -> AccountKey:
    return AccountKey(AccountKind.annotator_pending, annotator_id, currency)


def annotator_available(annotator_id: int, currency: str) -> AccountKey:
    return AccountKey(AccountKind.annotator_available, annotator_id, currency)


def payouts_in_flight(annotator_id: int, currency: str) -> AccountKey:
    return AccountKey(AccountKind.payouts_in_flight, annotator_id, currency)


def platform_fees(currency: str) -> AccountKey:
    return AccountKey(AccountKind.platform_fees, PLATFORM, currency)


def external(currency: str) -> AccountKey:
    return AccountKey(AccountKind.external, PLATFORM, currency)


@dataclass(frozen=True)
class Posting:
    account: AccountKey
    amount_micros: int  # positive: into the account; negative: out of it


@dataclass(frozen=True)
class Entry:
    """A balanced entry, not yet written. Construction checks the invariants. An entry without
    postings records a decision that moved no money (its cause still counts as posted)."""

    cause: str
    kind: EntryKind
    currency: str
    postings: tuple[Posting, ...]
    reason: str
    actor_id: int | None = None
    job_id: int | None = None
    assignment_id: int | None = None

    def __post_init__(self) -> None:
        if sum(p.amount_micros for p in self.postings) != 0:
            raise ValueError(f"entry {self.cause} does not balance")
        if any(p.amount_micros == 0 for p in self.postings):
            raise ValueError(f"entry {self.cause} has a zero posting")
        if any(p.account.currency != self.currency for p in self.postings):
            raise ValueError(f"entry {self.cause} mixes currencies")
        if not self.cause or len(self.cause) > 120:
            raise ValueError("an entry's cause is 1..120 characters")

    def amount_to(self, account: AccountKey) -> int:
        """The net amount this entry moves into `account`."""
        return sum(p.amount_micros for p in self.postings if p.account == account)


def transfer(
    cause: str,
    kind: EntryKind,
    source: AccountKey,
    targets: Sequence[tuple[AccountKey, int]],
    reason: str,
    **refs: Any,
) -> Entry:
    """An entry moving the sum of `targets` out of `source` into each target (zero amounts are
    left out; nothing to move gives an entry without postings)."""
    if any(amount < 0 for _, amount in targets):
        raise ValueError(f"entry {cause}: transfer targets take money in, not out")
    legs = [Posting(account, amount) for account, amount in targets if amount != 0]
    total = sum(p.amount_micros for p in legs)
    postings = (Posting(source, -total), *legs) if total else ()
    return Entry(cause, kind, source.currency, postings, reason[:500], **refs)


# --- writing ----------------------------------------------------------------------------------


def post_entry(session: Session, entry: Entry, now: datetime) -> int | None:
    """Write `entry` in the caller's transaction; return its id, or None when its cause was
    posted before (nothing is written then). Accounts it takes money from (except `external`)
    are locked first and must not end negative: `InsufficientFunds` otherwise, and the caller's
    transaction must then roll back."""
    debited = sorted(
        {p.account for p in entry.postings if p.amount_micros < 0}
        - {p.account for p in entry.postings if p.account.kind is AccountKind.external}
    )
    lock_accounts(session, debited)
    entry_id = write_entry_rows(session, entry, now)
    if entry_id is None or not debited:
        return entry_id
    after = balances(session, debited)
    short = {key: value for key, value in after.items() if value < 0}
    if short:
        key, value = min(short.items())
        raise InsufficientFunds(
            f"{key} would fall to {format_micros(value)} {key.currency}",
            account=str(key),
            shortfall_micros=-value,
            shortfall=format_micros(-value),
        )
    return entry_id


def write_entry_rows(session: Session, entry: Entry, now: datetime) -> int | None:
    """Write `entry`'s rows without locking or checking balances (`post_entry`'s writing).
    Returns the entry id, or None when its cause was posted before."""
    return write_entries(session, [entry], now).get(entry.cause)


def write_entries(session: Session, entries: Sequence[Entry], now: datetime) -> dict[str, int]:
    """Write a batch of entries' rows in two statements, without locking or checking balances:
    for entries whose debits were reserved in advance (submits' draws on their jobs' escrow),
    and `post_entry`'s own writing. Returns the ids of the entries written now, by cause; a
    cause posted before is skipped (absent from the result)."""
    if not entries:
        return {}
    dialect = session.get_bind().dialect.name
    insert_entries = (pg_insert if dialect == "postgresql" else sqlite_insert)(ENTRIES)
    # One statement text executed over the batch (SQLAlchemy's "insertmanyvalues" pages it), so
    # its compiled form is cached; a multi-row VALUES would compile anew for each batch size.
    written = session.execute(
        insert_entries.on_conflict_do_nothing(index_elements=["cause"]).returning(
            ENTRIES.c.cause, ENTRIES.c.id
        ),
        [
            {
                "cause": entry.cause,
                "kind": entry.kind,
                "currency": entry.currency,
                "job_id": entry.job_id,
                "assignment_id": entry.assignment_id,
                "actor_id": entry.actor_id,
                "reason": entry.reason,
                "created_at": now,
            }
            for entry in entries
        ],
    )
    ids = {cause: int(entry_id) for cause, entry_id in written}
    postings = [
        {
            "entry_id": ids[entry.cause],
            "account_kind": p.account.kind,
            "owner_id": p.account.owner_id,
            "currency": p.account.currency,
            "amount_micros": p.amount_micros,
        }
        for entry in entries
        if entry.cause in ids
        for p in entry.postings
    ]
    if postings:
        session.execute(insert(POSTINGS), postings)
    return ids


def lock_accounts(session: Session, keys: Iterable[AccountKey]) -> None:
    """Serialise money taken out of these accounts until the transaction ends (PostgreSQL
    advisory locks, in key order so two transactions cannot deadlock on them; on SQLite the
    write transaction already holds the database's one write lock)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(key)})


def advisory_key(key: AccountKey) -> int:
    """A stable signed 64-bit lock id for an account."""
    digest = hashlib.blake2b(f"ledger:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def entry_exists(session: Session, cause: str) -> bool:
    return session.scalar(select(LedgerEntry.id).where(LedgerEntry.cause == cause)) is not None


def postings_of(session: Session, cause: str) -> list[Posting]:
    """The postings of the entry posted for `cause` (empty if none)."""
    rows = session.execute(
        select(
            LedgerPosting.account_kind,
            LedgerPosting.owner_id,
            LedgerPosting.currency,
            LedgerPosting.amount_micros,
        )
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(LedgerEntry.cause == cause)
        .order_by(LedgerPosting.id)
    )
    return [
        Posting(AccountKey(AccountKind(kind), owner, currency), amount)
        for kind, owner, currency, amount in rows
    ]


# --- reading ----------------------------------------------------------------------------------


def balance(session: Session, key: AccountKey) -> int:
    return balances(session, [key])[key]


def balances(session: Session, keys: Sequence[AccountKey]) -> dict[AccountKey, int]:
    """Each account's balance (0 for an account nothing was posted to)."""
    out = dict.fromkeys(keys, 0)
    if not keys:
        return out
    rows = session.execute(
        select(
            LedgerPosting.account_kind,
            LedgerPosting.owner_id,
            LedgerPosting.currency,
            func.sum(LedgerPosting.amount_micros),
        )
        .where(
            tuple_(LedgerPosting.account_kind, LedgerPosting.owner_id, LedgerPosting.currency).in_(
                [(k.kind.value, k.owner_id, k.currency) for k in keys]
            )
        )
        .group_by(LedgerPosting.account_kind, LedgerPosting.owner_id, LedgerPosting.currency)
    )
    for kind, owner, currency, total in rows:
        out[AccountKey(AccountKind(kind), owner, currency)] = int(total or 0)
    return out


@dataclass(frozen=True)
class TrialBalanceLine:
    kind: AccountKind
    currency: str
    accounts: int
    debits_micros: int  # money out (sum of negative postings, as a positive number)
    credits_micros: int  # money in
    balance_micros: int
    negative_accounts: int  # accounts below zero (only `external` may be)


def trial_balance(session: Session) -> list[TrialBalanceLine]:
    """Every account kind's totals per currency; the balances of a currency sum to zero."""
    per_account = (
        select(
            LedgerPosting.account_kind.label("kind"),
            LedgerPosting.owner_id.label("owner_id"),
            LedgerPosting.currency.label("currency"),
            func.sum(LedgerPosting.amount_micros).label("balance"),
            func.sum(
                case((LedgerPosting.amount_micros < 0, LedgerPosting.amount_micros), else_=0)
            ).label("debits"),
            func.sum(
                case((LedgerPosting.amount_micros > 0, LedgerPosting.amount_micros), else_=0)
            ).label("credits"),
        )
        .group_by(LedgerPosting.account_kind, LedgerPosting.owner_id, LedgerPosting.currency)
        .subquery()
    )
    rows = session.execute(
        select(
            per_account.c.kind,
            per_account.c.currency,
            func.count(),
            func.sum(per_account.c.debits),
            func.sum(per_account.c.credits),
            func.sum(per_account.c.balance),
            func.sum(case((per_account.c.balance < 0, 1), else_=0)),
        )
        .group_by(per_account.c.kind, per_account.c.currency)
        .order_by(per_account.c.currency, per_account.c.kind)
    )
    return [
        TrialBalanceLine(
            AccountKind(kind),
            currency,
            int(accounts),
            -int(debits or 0),
            int(credits or 0),
            int(total or 0),
            int(negative or 0),
        )
        for kind, currency, accounts, debits, credits, total, negative in rows
    ]


def unbalanced_entries(session: Session, limit: int = 100) -> list[str]:
    """Causes of entries whose postings do not sum to zero (there should be none)."""
    return list(
        session.scalars(
            select(LedgerEntry.cause)
            .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
            .group_by(LedgerEntry.id, LedgerEntry.cause)
            .having(func.sum(LedgerPosting.amount_micros) != 0)
            .limit(limit)
        )
    )


def account_postings(
    session: Session, key: AccountKey, *, after: int | None, limit: int
) -> list[Any]:
    """An account's postings with their entries, oldest first (keyset paging on posting id)."""
    stmt = (
        select(
            LedgerPosting.id,
            LedgerPosting.amount_micros,
            LedgerEntry.id.label("entry_id"),
            LedgerEntry.cause,
            LedgerEntry.kind,
            LedgerEntry.job_id,
            LedgerEntry.assignment_id,
            LedgerEntry.actor_id,
            LedgerEntry.reason,
            LedgerEntry.created_at,
        )
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(
            and_(
                LedgerPosting.account_kind == key.kind,
                LedgerPosting.owner_id == key.owner_id,
                LedgerPosting.currency == key.currency,
            )
        )
        .order_by(LedgerPosting.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(LedgerPosting.id > after)
    return list(session.execute(stmt))
