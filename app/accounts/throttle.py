"""Abuse limits on login and signup, counted in the database so every API process shares them.

Found before: 200 wrong passwords in 38 s, none refused. Now each attempt is counted under its
keys before anything else is done, in a short transaction of its own that commits whatever the
attempt's outcome; past a limit the attempt is refused with 429 and `Retry-After`
(`TooManyRequests`) without checking the password. Counting first means N concurrent guesses
count N: no burst gets more password checks than the limit.

The keys (settings in `app.core.settings`, `TESSERA_AUTH_*`):
- an account from one client address, by its normalised email, known or not, so a refusal never
  tells whether an account exists: `auth_account_failures` password checks go ahead freely,
  then each further check waits a growing delay (`auth_account_delay_seconds`, doubling, at most
  `auth_lockout_seconds`; `limits`); a successful login from that address clears it
  (`clear_account`, in the login's own transaction), so only failures add up. Keyed by account
  and address, so a third party guessing from elsewhere cannot lock the owner out of their usual
  address (once a single account-wide lock: ten wrong passwords from anywhere locked everyone out
  for 15 minutes, the right password included);
- a client address: `auth_address_logins` logins and `auth_address_signups` signups per window
  (IPv6 counted per /64, what one host usually holds), across accounts.
A key is an HMAC of its name under the secret key: the table holds no typed emails or addresses.

One flow on both databases: insert the key's row if missing (ON CONFLICT DO NOTHING), read it
locked (FOR UPDATE on PostgreSQL, keys in sorted order so two attempts never deadlock; SQLite's
`BEGIN IMMEDIATE` already serialises writers), decide (`limits.decide`), write it back. Rows
whose window and lockout are over are deleted by the periodic `accounts.prune_limits`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.accounts.limits import Counter, Rule, decide
from app.core.db import Database, rowcount
from app.core.errors import TooManyRequests
from app.core.settings import Settings
from app.models.accounts import AuthLimit

IPV6_PREFIX = 64


@dataclass(frozen=True)
class Attempt:
    """One attempt to count under one key, and what the key is called in a refusal."""

    key: str
    rule: Rule
    refusal: str


def key_of(settings: Settings, name: str) -> str:
    return hmac.new(
        settings.resolved_secret_key().encode(), name.encode(), hashlib.sha256
    ).hexdigest()


def address_of(host: str | None) -> str:
    """The client address a limit counts under: IPv6 per /64, anything else as it is."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


def _rule(settings: Settings, limit: int, first_delay: timedelta | None = None) -> Rule:
    return Rule(
        limit=limit,
        window=timedelta(seconds=settings.auth_window_seconds),
        lockout=timedelta(seconds=settings.auth_lockout_seconds),
        first_delay=first_delay,
    )


def account_key(settings: Settings, email: str, host: str | None) -> str:
    return key_of(settings, f"login-account:{address_of(host)}:{email}")


def login_attempts(settings: Settings, *, email: str, host: str | None) -> list[Attempt]:
    """What a login counts: the account (`email`, normalised) from the client address, and the
    client address."""
    return [
        Attempt(
            account_key(settings, email, host),
            _rule(
                settings,
                settings.auth_account_failures,
                timedelta(seconds=settings.auth_account_delay_seconds),
            ),
            "Too many failed logins for this account from your address",
        ),
        Attempt(
            key_of(settings, f"login-address:{address_of(host)}"),
            _rule(settings, settings.auth_address_logins),
            "Too many logins from your address",
        ),
    ]


def signup_attempts(settings: Settings, *, host: str | None) -> list[Attempt]:
    """What a signup counts: the client address."""
    return [
        Attempt(
            key_of(settings, f"signup-address:{address_of(host)}"),
            _rule(settings, settings.auth_address_signups),
            "Too many signups from your address",
        )
    ]


def admit(db: Database, attempts: Sequence[Attempt], now: datetime) -> None:
    """Count one attempt under each key, in a transaction of its own, or raise
    `TooManyRequests` (429 with `Retry-After`) when any key is over its limit; a refused
    attempt is counted under none of its keys (a lockout it starts is kept)."""
    ordered = sorted(attempts, key=lambda a: a.key)
    with db.transaction() as session:
        decisions = [
            (a, decide(_locked_counter(session, a.key, now), a.rule, now)) for a in ordered
        ]
        refused = [(a, d.retry_after) for a, d in decisions if d.retry_after is not None]
        for attempt, decision in decisions:
            if decision.admitted and refused:
                continue
            _write(session, attempt.key, decision.counter)
    if refused:
        attempt, wait = max(refused, key=lambda r: r[1])
        seconds = max(1, math.ceil(wait.total_seconds()))
        raise TooManyRequests(
            f"{attempt.refusal}; try again in {seconds} seconds",
            headers={"Retry-After": str(seconds)},
            retry_after_seconds=seconds,
        )


def clear_account(session: Session, settings: Settings, email: str, host: str | None) -> None:
    """Forget an account's counted password checks from an address (after a successful login
    from there; in the login's transaction)."""
    session.execute(delete(AuthLimit).where(AuthLimit.key == account_key(settings, email, host)))


def prune(session: Session, settings: Settings, now: datetime) -> int:
    """Delete counters whose window and lockout are over; return how many."""
    window = timedelta(seconds=settings.auth_window_seconds)
    result = session.execute(
        delete(AuthLimit).where(
            AuthLimit.window_started_at <= now - window,
            # a growing delay's count is kept for a quiet window after it ends (`limits`)
            or_(AuthLimit.locked_until.is_(None), AuthLimit.locked_until <= now - window),
        )
    )
    return rowcount(result)


def _locked_counter(session: Session, key: str, now: datetime) -> Counter | None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(AuthLimit)
        .values(key=key, window_started_at=now, attempts=0)
        .on_conflict_do_nothing(index_elements=[AuthLimit.key])
    )
    row = session.get(AuthLimit, key, with_for_update=True, populate_existing=True)
    assert row is not None
    if row.attempts == 0 and row.locked_until is None:
        return None  # new (or never admitted): no window yet
    return Counter(row.window_started_at, row.attempts, row.locked_until)


def _write(session: Session, key: str, counter: Counter) -> None:
    row = session.get(AuthLimit, key)
    assert row is not None
    row.window_started_at = counter.window_started_at
    row.attempts = counter.attempts
    row.locked_until = counter.locked_until
    session.flush()
