"""Users, API tokens and signup invites."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, BigId, CreatedAtMixin, IdMixin, str_enum


class Role(StrEnum):
    client = "client"
    annotator = "annotator"
    admin = "admin"


class UserStatus(StrEnum):
    active = "active"
    suspended = "suspended"


class TokenKind(StrEnum):
    """`login`: minted by login or signup (expires, capped per user); `api`: made on purpose
    (`/v1/me/tokens`, the CLI) and kept until revoked or its own expiry."""

    api = "api"
    login = "login"


class User(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)  # as typed (trimmed)
    # The identity accounts are found and kept unique by (`app.accounts.emails.email_key`:
    # NFKC, case-folded), so another form of the same address cannot register beside it.
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"), index=True)
    status: Mapped[UserStatus] = mapped_column(
        str_enum(UserStatus, "user_status"), default=UserStatus.active
    )
    password_hash: Mapped[str | None] = mapped_column(String(255))
    suspended_at: Mapped[datetime | None]
    suspended_reason: Mapped[str | None] = mapped_column(Text)
    suspended_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", foreign_keys="ApiToken.user_id"
    )


class ApiToken(IdMixin, CreatedAtMixin, Base):
    """An API token. Only the SHA-256 of the secret is stored; the secret is shown once."""

    __tablename__ = "api_tokens"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise a token
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[TokenKind] = mapped_column(
        str_enum(TokenKind, "token_kind"), default=TokenKind.api, server_default=TokenKind.api.value
    )
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens", foreign_keys=[user_id])


class Invite(IdMixin, CreatedAtMixin, Base):
    """A single-use signup invitation (signup policy `invite`)."""

    __tablename__ = "invites"

    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, "invite_role"))
    email: Mapped[str | None] = mapped_column(String(320))
    created_by_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))


class AuthLimit(Base):
    """Recent login or signup attempts under one key (an account's email or a client address),
    counted in a window, and the lockout once they passed the limit. Kept in the database so
    every API process counts together; `key` is a SHA-256, so typed emails are not stored."""

    __tablename__ = "auth_limits"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_started_at: Mapped[datetime]
    attempts: Mapped[int]
    locked_until: Mapped[datetime | None]
