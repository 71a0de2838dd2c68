"""Passwords, API tokens, the current user and role checks (as FastAPI dependencies).

API tokens are 256-bit random secrets; only their SHA-256 is stored (a salted slow hash adds
nothing for secrets with that much entropy, and a keyed lookup must stay fast on every request).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core import caches
from app.core.clock import utcnow
from app.core.db import Database, check_finished, is_read_only
from app.core.errors import AccountSuspended, Forbidden, Unauthorized, raises
from app.models.accounts import ApiToken, Role, User, UserStatus

NO_TOKEN = "Send an API token as 'Authorization: Bearer <token>'"  # noqa: S105 (a message)
TOKEN_PREFIX = "tsr_"  # noqa: S105 (a prefix, not a secret)
LAST_USED_RESOLUTION = timedelta(minutes=1)

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_secret(prefix: str = TOKEN_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def pseudonym_prefix(secret_key: str, audience: str) -> str:
    return f"{secret_key}:{audience}:"


def pseudonym(secret_key: str, audience: str, value: int) -> str:
    """A stable pseudonymous id of `value` (say an annotator id) for one audience (say a client):
    the first 16 hex digits of SHA-256(secret:audience:value). Exports compute the same in SQL
    (PostgreSQL's sha256(), a registered function on SQLite), so the two must stay in step."""
    return hashlib.sha256(f"{pseudonym_prefix(secret_key, audience)}{value}".encode()).hexdigest()[
        :16
    ]


def _client_audience(client_id: int) -> str:
    return f"client:{client_id}"


def client_pseudonym_prefix(secret_key: str, client_id: int) -> str:
    """`pseudonym_prefix` of a client's audience, for pseudonyms computed in SQL (exports): the
    SHA-256 of this text followed by the annotator id, first 16 hex digits."""
    return pseudonym_prefix(secret_key, _client_audience(client_id))


def client_pseudonym(secret_key: str, client_id: int, annotator_id: int) -> str:
    """The annotator as one client knows them: the same id in the client's exports, review
    views and webhook events, and a different one for every other client."""
    return pseudonym(secret_key, _client_audience(client_id), annotator_id)


# --- request dependencies ---------------------------------------------------------------------


def get_database(request: Request) -> Database:
    db = request.app.state.db
    assert isinstance(db, Database)
    return db


def get_session(
    request: Request, db: Annotated[Database, Depends(get_database)]
) -> Iterator[Session]:
    """The request's one session, shared by authentication and the endpoint: read-only for GET
    and HEAD (on SQLite those never take the write lock), a write session otherwise. The
    endpoint commits once; anything uncommitted rolls back (see `finished_session`)."""
    make = db.read_session if request.method in ("GET", "HEAD") else db.session
    with make() as session:
        yield session


def finished_session(session: Annotated[Session, Depends(get_session)]) -> Iterator[Session]:
    """The request's session, checked as soon as the endpoint returns (before the response is
    sent: a function-scoped dependency): writes neither committed nor rolled back are a bug
    that fails the request with a 500 (`UncommittedWork`) instead of vanishing while the client
    is told all went well."""
    yield session
    check_finished(session)


DbSession = Annotated[Session, Depends(finished_session, scope="function")]
ReadSession = DbSession  # the same session; the name says the endpoint only reads


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user and the token they used."""

    user: User
    token_id: int

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def role(self) -> Role:
        return self.user.role


def bearer_secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate(session: Session, secret: str) -> Principal:
    """Resolve a token secret to its user, or raise 401 (unknown, revoked, expired) or 403
    (suspended account)."""
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.secret_hash == hash_secret(secret))
    ).first()
    if row is None:
        raise Unauthorized("Unknown or malformed API token")
    token, user = row
    _check_token(token.revoked_at, token.expires_at, user.status, user.suspended_reason)
    return Principal(user=user, token_id=token.id)


def _check_token(
    revoked_at: datetime | None,
    expires_at: datetime | None,
    user_status: UserStatus,
    suspended_reason: str | None,
) -> None:
    if revoked_at is not None:
        raise Unauthorized("This API token has been revoked")
    if expires_at is not None and expires_at <= utcnow():
        raise Unauthorized("This API token has expired")
    if user_status is UserStatus.suspended:
        raise AccountSuspended("This account is suspended", reason=suspended_reason)


def _check_role(role: Role, allowed: frozenset[Role]) -> None:
    if role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise Forbidden(f"This endpoint is for {names} accounts only")


def last_use_is_stale(last_used_at: datetime | None) -> bool:
    return last_used_at is None or utcnow() - last_used_at > LAST_USED_RESOLUTION


def touch_token(session: Session, token_id: int) -> None:
    """Record that a token was used (at one-minute resolution, so the hot path rarely writes)."""
    now = utcnow()
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id)
        .where(
            (ApiToken.last_used_at.is_(None)) | (ApiToken.last_used_at < now - LAST_USED_RESOLUTION)
        )
        .values(last_used_at=now)
    )


@raises(
    (Unauthorized, "no API token, or an unknown, revoked or expired one"),
    (AccountSuspended, "the caller's account is suspended"),
)
def current_principal(
    request: Request, session: DbSession, db: Annotated[Database, Depends(get_database)]
) -> Principal:
    return authenticate_request(request, session, db)


def authenticate_request(request: Request, session: Session, db: Database) -> Principal:
    """The caller of a request, from its bearer token, on the request's session. Records the
    token's last use at most once a minute: in the session's transaction when it writes
    (committed with the endpoint's work), else (a read-only session) in a short transaction of
    its own."""
    secret = bearer_secret(request)
    if secret is None:
        raise Unauthorized(NO_TOKEN)
    principal = authenticate(session, secret)
    token = session.get(ApiToken, principal.token_id)
    if token is None or last_use_is_stale(token.last_used_at):
        if is_read_only(session):
            with db.transaction() as writer:
                touch_token(writer, principal.token_id)
        else:
            touch_token(session, principal.token_id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting only the given roles (403 problem+json for anyone else)."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(r.value for r in allowed))

    @raises((Forbidden, f"for {names} accounts only"))
    def check(principal: CurrentPrincipal) -> Principal:
        _check_role(principal.role, allowed)
        return principal

    return check


AdminPrincipal = Annotated[Principal, Depends(require_role(Role.admin))]
ClientPrincipal = Annotated[Principal, Depends(require_role(Role.client, Role.admin))]
AnnotatorPrincipal = Annotated[Principal, Depends(require_role(Role.annotator))]


# --- the hot path's caller, without an ORM session ----------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who is calling an endpoint of the hot path (no ORM objects there)."""

    id: int
    role: Role
    token_id: int


@dataclass(frozen=True)
class KnownToken:
    """What an API token's secret resolves to, as kept in `caches.tokens`."""

    token_id: int
    revoked_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None
    user_id: int
    role: Role
    status: UserStatus
    suspended_reason: str | None

    def __post_init__(self) -> None:  # raw SQL reads the enums as strings
        object.__setattr__(self, "role", Role(self.role))
        object.__setattr__(self, "status", UserStatus(self.status))


# A token's reader on one database: the token (None when unknown), its last use recorded when
# stale (at one-minute resolution, so the hot path rarely writes).
TokenReader = Callable[[str], Awaitable[KnownToken | None]]


def read_token(db: Database, secret_hash: str) -> KnownToken | None:
    """The `TokenReader` over sessions (on a worker thread): read in a read-only session,
    last use recorded in a short transaction of its own only when stale."""
    with db.read_session() as session:
        row = session.execute(
            select(
                ApiToken.id.label("token_id"),
                ApiToken.revoked_at,
                ApiToken.expires_at,
                ApiToken.last_used_at,
                User.id.label("user_id"),
                User.role,
                User.status,
                User.suspended_reason,
            )
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.secret_hash == secret_hash)
        ).first()
    if row is None:
        return None
    known = KnownToken(**row._asdict())
    if last_use_is_stale(known.last_used_at):
        with db.transaction() as writer:
            touch_token(writer, known.token_id)
    return known


async def authenticate_caller(request: Request, read: TokenReader, *roles: Role) -> Caller:
    """`authenticate_request` and the role check for the hot path, with `read` on a cache
    miss. What a token resolves to is kept for `TESSERA_AUTH_CACHE_SECONDS` (see
    `app.core.caches`): revoking a token or suspending an account through this process takes
    effect at once, through another process within that time."""
    secret = bearer_secret(request)
    if secret is None:
        raise Unauthorized(NO_TOKEN)
    key = hash_secret(secret)
    ttl: float = request.app.state.settings.auth_cache_seconds
    known: KnownToken | None = caches.tokens.get(key, ttl)
    if known is None:
        read_at = time.monotonic()
        known = await read(key)
        if known is None:
            raise Unauthorized("Unknown or malformed API token")
        caches.tokens.put(key, known, read_at)
    _check_token(known.revoked_at, known.expires_at, known.status, known.suspended_reason)
    _check_role(known.role, frozenset(roles))
    return Caller(id=known.user_id, role=known.role, token_id=known.token_id)
