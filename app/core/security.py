"""Passwords, API tokens, the current user and role checks (as FastAPI dependencies).

API tokens are 256-bit random secrets; only their SHA-256 is stored (a salted slow hash adds
nothing for secrets with that much entropy, and a keyed lookup must stay fast on every request).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db import Database
from app.core.errors import Forbidden, Unauthorized
from app.models.accounts import ApiToken, Role, User, UserStatus

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
    endpoint commits once; anything uncommitted rolls back."""
    make = db.read_session if request.method in ("GET", "HEAD") else db.session
    with make() as session:
        yield session


DbSession = Annotated[Session, Depends(get_session)]
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
    now = utcnow()
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.secret_hash == hash_secret(secret))
    ).first()
    if row is None:
        raise Unauthorized("Unknown or malformed API token")
    token, user = row
    if token.revoked_at is not None:
        raise Unauthorized("This API token has been revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthorized("This API token has expired")
    if user.status is UserStatus.suspended:
        raise Forbidden("This account is suspended", reason=user.suspended_reason)
    return Principal(user=user, token_id=token.id)


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


def current_principal(
    request: Request, session: DbSession, db: Annotated[Database, Depends(get_database)]
) -> Principal:
    secret = bearer_secret(request)
    if secret is None:
        raise Unauthorized("Send an API token as 'Authorization: Bearer <token>'")
    principal = authenticate(session, secret)
    token = session.get(ApiToken, principal.token_id)
    if (
        token is None
        or token.last_used_at is None
        or (utcnow() - token.last_used_at > LAST_USED_RESOLUTION)
    ):
        # At most once a minute per token: in the request's own transaction when it writes
        # (committed with the endpoint's work), else in a short transaction of its own.
        if request.method in ("GET", "HEAD"):
            with db.transaction() as writer:
                touch_token(writer, principal.token_id)
        else:
            touch_token(session, principal.token_id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting only the given roles (403 problem+json for anyone else)."""
    allowed = frozenset(roles)

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"This endpoint is for {names} accounts only")
        return principal

    return check


AdminPrincipal = Annotated[Principal, Depends(require_role(Role.admin))]
ClientPrincipal = Annotated[Principal, Depends(require_role(Role.client, Role.admin))]
AnnotatorPrincipal = Annotated[Principal, Depends(require_role(Role.annotator))]
